// Fixed-base multi-exponentiation for Groth16 proving keys (the bases never change per key).
//
// snarkjs's MSM (ffjavascript 0.3.1, Pippenger) runs ceil(254 / w) windows over the bases and pays,
// per window, a bucket reduction of 2^(w+1) projective additions plus w doublings. Since the bases
// are fixed, each is stored once per window already multiplied by 2^(w*k) (k = 0..K-1, K =
// ceil(254 / w), w = windowBits(n): 12 for the 30-feature key): one proof is then a single bucket
// pass over the K*n digits (each a w-bit slice of its scalar) and one reduction, no doublings; the
// same sum, ~40% fewer group operations.
// Points at infinity (variables absent from a section) are dropped when the table is built.
//
// The tables live in this module's own instance of ffjavascript's curve WebAssembly (its code,
// its exported g1m_/g2m_ functions, its own memory), written once when a key is prepared:
// G1 64 B and G2 128 B per point and window, ~30 MiB for the 30-feature logit key.
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

// Bits per digit for n points: fewest group operations, ceil(254 / w) * n mixed additions in the
// bucket pass (BN254 scalars are < 2^254) plus ~3 * 2^w for the reduction (2^(w+1) projective
// additions, each ~1.5 mixed ones). 12 for the 30-feature key's ~4,000 points, 10 for ~700.
function windowBits(n) {
  let best = 12, cost = Infinity;
  for (let w = 6; w <= 14; w++) {
    const c = Math.ceil(254 / w) * n + 3 * (1 << w);
    if (c < cost) { best = w; cost = c; }
  }
  return best;
}
const PAGE = 65536;

export class FixedBaseEngine {
  // code: curve.tm.code (ffjavascript's curve WebAssembly bytes); sections: [{group: "G1"|"G2",
  // bases: Uint8Array of affine Montgomery points}], built in this order.
  // Bytes of the tables of `sections` (upper bound: no point dropped) and of the scratch space.
  static bytes(sections) {
    let tables = 0, scratch = 0;
    for (const { group, bases } of sections) {
      const n = bases.byteLength / (group == "G1" ? 64 : 128);
      const windows = Math.ceil(254 / windowBits(n));
      tables += windows * bases.byteLength;
      scratch = Math.max(scratch, windows * n * 2 + (1 << windowBits(n)) * 192);
    }
    // Digits and buckets (2^w projective G2 points at most), conversion batches.
    return tables + scratch + 2 * BATCH * 192 + 4096;
  }

  static async build(code, sections) {
    const module = await WebAssembly.compile(code);
    const probe = new WebAssembly.Memory({ initial: 25 });
    await WebAssembly.instantiate(module, { env: { memory: probe } });
    const base = new Uint32Array(probe.buffer)[0];
    const pages = Math.ceil((base + FixedBaseEngine.bytes(sections) + 64 * 1024) / PAGE);
    const memory = new WebAssembly.Memory({ initial: pages });
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    const engine = new FixedBaseEngine(instance, memory);
    engine.tables = sections.map(({ group, bases }) => engine.#table(group, bases));
    engine.freeFrom = engine.next;
    engine.bytes = FixedBaseEngine.bytes(sections);
    return engine;
  }

  constructor(instance, memory) {
    this.x = instance.exports;
    this.memory = memory;
    this.u8 = new Uint8Array(memory.buffer);
    this.next = align(new Uint32Array(memory.buffer)[0]);
  }

  #alloc(bytes) {
    const p = this.next;
    this.next = align(p + bytes);
    if (this.next > this.u8.byteLength) throw new Error("fixed-base tables: out of memory");
    return p;
  }

  // Writes the K windows of 2^(W*k) * P for every finite P of `bases`; returns the table.
  #table(group, bases) {
    const g = group == "G1" ? "g1m" : "g2m";
    const sA = group == "G1" ? 64 : 128, sJ = sA * 3 / 2;
    const n = bases.byteLength / sA;
    const keep = [];
    for (let i = 0; i < n; i++) {
      const p = bases.subarray(i * sA, (i + 1) * sA);
      if (p.some((b) => b != 0)) keep.push(i);
    }
    const m = keep.length;
    const bits = windowBits(n), windows = Math.ceil(254 / bits);
    const pTable = this.#alloc(windows * m * sA);
    const start = this.next;
    const pIn = this.#alloc(BATCH * sA), pJac = this.#alloc(BATCH * sJ);
    // batchToAffine keeps its scratch past the free pointer at address 0.
    new Uint32Array(this.memory.buffer)[0] = this.next;
    const toJacobian = this.x[g + "_toJacobian"], double = this.x[g + "_double"];
    const batchToAffine = this.x[g + "_batchToAffine"];
    for (let b = 0; b < m; b += BATCH) {
      const count = Math.min(BATCH, m - b);
      for (let j = 0; j < count; j++) {
        const i = keep[b + j];
        this.u8.set(bases.subarray(i * sA, (i + 1) * sA), pIn + j * sA);
        toJacobian(pIn + j * sA, pJac + j * sJ);
      }
      for (let k = 0; k < windows; k++) {
        batchToAffine(pJac, count, pTable + (k * m + b) * sA);
        if (k == windows - 1) break;
        for (let j = 0; j < count; j++) {
          const p = pJac + j * sJ;
          for (let d = 0; d < bits; d++) double(p, p);
        }
      }
    }
    this.next = start; // the conversion buffers were scratch
    return { g, sA, sJ, n, keep, m, pTable, bits, windows };
  }

  // sum_i scalars[i] * bases[i] of table `t` (index into the build's sections); scalars: Uint8Array
  // of n 32-byte little-endian normal-form field elements. Returns the projective Montgomery point
  // (Uint8Array, 96 or 192 bytes) that ffjavascript's G1 / G2 take.
  multiExp(t, scalars) {
    const { g, sJ, n, keep, m, pTable, bits, windows } = this.tables[t];
    if (scalars.byteLength != n * 32) {
      throw new Error(`scalars: ${scalars.byteLength / 32}, bases: ${n}`);
    }
    this.next = this.freeFrom;
    const pDigits = this.#alloc(windows * m * 2);
    const pOut = this.#alloc(sJ);
    const digits = new Uint16Array(this.memory.buffer, pDigits, windows * m);
    const padded = new Uint8Array(36);
    const view = new DataView(padded.buffer);
    const mask = (1 << bits) - 1;
    for (let j = 0; j < m; j++) {
      const i = keep[j];
      padded.set(scalars.subarray(i * 32, i * 32 + 32));
      for (let k = 0; k < windows; k++) {
        const bit = k * bits;
        digits[k * m + j] = (view.getUint32(bit >> 3, true) >>> (bit & 7)) & mask;
      }
    }
    // The chunk function keeps its buckets past the free pointer at address 0.
    new Uint32Array(this.memory.buffer)[0] = this.next;
    this.x[g + "_multiexpAffine_chunk"](pTable, pDigits, 2, windows * m, 0, bits, pOut);
    return this.u8.slice(pOut, pOut + sJ);
  }
}

const BATCH = 256; // points converted at once while building a table

function align(p) {
  return (p + 7) & ~7;
}

// The multi-exponentiations of a proof at once: `scalars` one Uint8Array per section. Returns
// partial sums [part][section] (here one part), to be added by the caller.
FixedBaseEngine.prototype.partials = async function (scalars) {
  return [scalars.map((s, t) => this.multiExp(t, s))];
};

// The same tables split by points between `threads` worker threads (each its own WebAssembly
// instance and memory, holding its share of every section): the sums are computed in parallel and
// added here. Same memory for the tables, plus each thread's own (~10 MiB).
export class FixedBaseThreads {
  static async build(code, sections, threads) {
    const parts = [];
    for (let t = 0; t < threads; t++) {
      parts.push(sections.map(({ group, bases }) => {
        const sA = group == "G1" ? 64 : 128;
        const n = bases.byteLength / sA;
        const lo = Math.floor(n * t / threads), hi = Math.floor(n * (t + 1) / threads);
        return { group, bases: bases.slice(lo * sA, hi * sA), lo, hi };
      }));
    }
    const workers = parts.map((part) => new Worker(new URL(import.meta.url), {
      workerData: { fixedBase: true, code, sections: part.map(({ group, bases }) => ({ group, bases })) },
    }));
    const pool = new FixedBaseThreads(workers, parts);
    await Promise.all(workers.map((w) => pool.#next(w)));
    pool.bytes = parts.reduce((sum, part) => sum + FixedBaseEngine.bytes(part), 0);
    return pool;
  }

  constructor(workers, parts) {
    this.workers = workers;
    this.parts = parts;
  }

  #next(worker) {
    return new Promise((resolve, reject) => {
      const onMessage = (msg) => { cleanup(); msg.error ? reject(new Error(msg.error)) : resolve(msg); };
      const onError = (err) => { cleanup(); reject(err); };
      const cleanup = () => { worker.off("message", onMessage); worker.off("error", onError); };
      worker.on("message", onMessage);
      worker.on("error", onError);
    });
  }

  // Returns the partial sums of every thread: [thread][section] projective points.
  async partials(scalars) {
    return Promise.all(this.workers.map((worker, t) => {
      const answer = this.#next(worker);
      worker.postMessage(this.parts[t].map(({ lo, hi }, s) => scalars[s].slice(lo * 32, hi * 32)));
      return answer.then((msg) => msg.points);
    }));
  }

  async terminate() {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

if (!isMainThread && workerData && workerData.fixedBase) {
  const engine = await FixedBaseEngine.build(workerData.code, workerData.sections);
  parentPort.postMessage({ ready: true });
  parentPort.on("message", async (scalars) => {
    try {
      parentPort.postMessage({ points: (await engine.partials(scalars))[0] });
    } catch (err) {
      parentPort.postMessage({ error: String(err && err.message ? err.message : err) });
    }
  });
}
