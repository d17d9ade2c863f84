// A long-lived Groth16 prover: one JSON request per stdin line, one JSON answer per stdout line.
//
//   {"id": 1, "op": "prove", "wasm": PATH, "zkey": PATH, "input": {signal: value | [values]}}
//     -> {"id": 1, "ok": true, "proof": "0x<256 bytes>", "public": ["<decimal>", ...], "proving_s": 0.03}
//   {"id": 2, "op": "outputs", "wasm": ..., "zkey": ..., "input": {...}, "n_outputs": 2}
//     -> {"id": 2, "ok": true, "outputs": ["<logit>", "<commitment>"]}   (witness only, no proof;
//        the circuit's first n_outputs outputs, default 2)
//   {"id": 3, "op": "prepare", "wasm": ..., "zkey": ..., "engine": ..., "single_thread": ...}
//     -> {"id": 3, "ok": true, "prepare_s": 2.1, "fixed_base": true}   (loads a key before its
//        first proof; "prove" does the same when it was not done)
//   {"id": 4, "op": "ping"} -> {"id": 4, "ok": true}
//   any failure            -> {"id": N, "ok": false, "error": "<message>"}
//
// The proof bytes are abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c) in the order snarkjs's
// Solidity verifier takes them (each G2 coordinate pair swapped, as `zkey export soliditycalldata` does).
// Keys are read once and kept in memory (at most MAX_KEYS circuits). Started by zk/_prover.py.
//
// Three engines make the same Groth16 proof (all verify against the same verification key):
//   "fixed-base" (the default with "single_thread", which it needs; "prepared" is without): as
//     "prepared", and the five multi-exponentiations over precomputed window tables of the key's
//     points (fixed_base.mjs), within a per-worker memory budget (keys past it use snarkjs's).
//   "prepared": the zkey is parsed once per circuit (header, curve, coefficient and point
//     sections kept in memory); per proof, the QAP evaluation (A, B, C at the domain) is one
//     WebAssembly call (wasmcurves' qap_buildABC) instead of snarkjs 0.7.6's JavaScript loop of one
//     field multiplication per coefficient; FFTs and multi-exponentiations are snarkjs's own.
//   "snarkjs": snarkjs.groth16.prove on the in-memory zkey (re-parsed, curve fetched, every proof),
//     kept as the benchmark's baseline (bench/proofs/run.py --engine).
// "single_thread": true keeps ffjavascript's curve in this thread (no worker threads: less memory).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import * as binFileUtils from "@iden3/binfileutils";
import { WitnessCalculatorBuilder } from "circom_runtime";
import { Scalar } from "ffjavascript";
import * as snarkjs from "snarkjs";
import { FixedBaseEngine, FixedBaseThreads } from "./fixed_base.mjs";

// snarkjs exports no zkey reader; its source ships beside build/main.cjs.
const SNARKJS_SRC = join(dirname(createRequire(import.meta.url).resolve("snarkjs")), "..", "src");
const zkeyUtils = await import(pathToFileURL(join(SNARKJS_SRC, "zkey_utils.js")).href);

const MAX_KEYS = 4;
// Most bytes of fixed-base tables one worker keeps (all its keys), from TWOPM_FIXED_BASE_MIB:
// the 30-feature logit key needs ~33 MiB, the 3-feature one ~5 MiB.
const FIXED_BASE_BUDGET = Number(process.env.TWOPM_FIXED_BASE_MIB ?? 48) * 2 ** 20;
let tableBytes = 0;
const keys = new Map(); // wasm + "\0" + zkey -> {calculator, zkey: Uint8Array, prepared: Map}

async function load(wasmPath, zkeyPath) {
  const id = wasmPath + "\0" + zkeyPath;
  let entry = keys.get(id);
  if (!entry) {
    // Compiling the witness calculator's WebAssembly once per circuit, not once per proof.
    const calculator = await WitnessCalculatorBuilder(new Uint8Array(readFileSync(wasmPath)));
    entry = { calculator, zkeyPath, zkey: null, prepared: new Map() };
    if (keys.size >= MAX_KEYS) {
      const [oldId, old] = keys.entries().next().value;
      for (const key of old.prepared.values()) {
        if (key.msm) {
          tableBytes -= key.msm.bytes;
          if (key.msm.terminate) key.msm.terminate();
        }
      }
      keys.delete(oldId);
    }
    keys.set(id, entry);
  }
  return entry;
}

function zkeyBytes(entry) {
  if (!entry.zkey) entry.zkey = new Uint8Array(readFileSync(entry.zkeyPath));
  return entry.zkey;
}

// The parsed proving key: header (with its curve) and sections 4 (coefficients) to 9 (H points).
async function prepared(entry, singleThread, fixedBase, msmThreads = 1) {
  const which = `${singleThread}/${fixedBase}/${msmThreads}`;
  let key = entry.prepared.get(which);
  if (!key) {
    const data = new Uint8Array(readFileSync(entry.zkeyPath));
    const { fd, sections } = await binFileUtils.readBinFile(
      { type: "mem", data }, "zkey", 2, 1 << 25, 1 << 23);
    const zkey = await zkeyUtils.readHeader(fd, sections, undefined, { singleThread });
    if (zkey.protocol != "groth16") throw new Error("zkey file is not groth16");
    const read = (s) => binFileUtils.readSection(fd, sections, s);
    key = {
      zkey,
      coeffs: await read(4),
      nCoeffs: 0,
      pointsA: await read(5),
      pointsB1: await read(6),
      pointsB2: await read(7),
      pointsC: await read(8),
      pointsH: await read(9),
    };
    key.nCoeffs = new DataView(key.coeffs.buffer, key.coeffs.byteOffset, 4).getUint32(0, true);
    key.coeffs = key.coeffs.slice(4);
    await fd.close();
    // Sections past readBinFile's page size come back as BigBuffers: such keys (the training
    // circuits) keep snarkjs's own path, which pages through them.
    const parts = [key.coeffs, key.pointsA, key.pointsB1, key.pointsB2, key.pointsC, key.pointsH];
    if (!parts.every((p) => p instanceof Uint8Array)) key = { tooBig: true };
    else if (fixedBase) {
      const sections = [
        { group: "G1", bases: key.pointsA },
        { group: "G1", bases: key.pointsB1 },
        { group: "G2", bases: key.pointsB2 },
        { group: "G1", bases: key.pointsC },
        { group: "G1", bases: key.pointsH },
      ];
      const bytes = FixedBaseEngine.bytes(sections);
      // Keys whose tables would pass the budget (the batch circuits) use snarkjs's MSM.
      if (tableBytes + bytes <= FIXED_BASE_BUDGET) {
        key.msm = msmThreads > 1
          ? await FixedBaseThreads.build(zkey.curve.tm.code, sections, msmThreads)
          : await FixedBaseEngine.build(zkey.curve.tm.code, sections);
        tableBytes += bytes;
        for (const k of ["pointsA", "pointsB1", "pointsB2", "pointsC", "pointsH"]) key[k] = null;
      }
    }
    entry.prepared.set(which, key);
  }
  return key;
}

// groth16_prove.js of snarkjs 0.7.6 on a prepared key and a witness (Uint8Array of nVars field
// elements, 32 bytes each, little-endian, normal form), with buildABC1 done in one WebAssembly call.
// Stage clock: CPU seconds of this process (all threads) per named stage, summed into `stages`.
function stageClock(stages) {
  let last = cpuS();
  return (name) => {
    const t = cpuS();
    stages[name] = (stages[name] ?? 0) + (t - last);
    last = t;
  };
}

async function provePrepared(key, witness, stage) {
  const { zkey } = key;
  const curve = zkey.curve;
  const Fr = curve.Fr, G1 = curve.G1, G2 = curve.G2;
  const n8 = Fr.n8;
  if (witness.byteLength != zkey.nVars * n8) {
    throw new Error(`Invalid witness length. Circuit: ${zkey.nVars}, witness: ${witness.byteLength / n8}`);
  }
  const domain = zkey.domainSize;
  const [buffA_T, buffB_T, buffC_T] = await curve.tm.queueAction([
    { cmd: "ALLOCSET", var: 0, buff: key.coeffs },
    { cmd: "ALLOCSET", var: 1, buff: witness },
    { cmd: "ALLOC", var: 2, len: domain * n8 },
    { cmd: "ALLOC", var: 3, len: domain * n8 },
    { cmd: "ALLOC", var: 4, len: domain * n8 },
    { cmd: "CALL", fnName: "qap_buildABC", params: [
      { var: 0 }, { val: key.nCoeffs }, { var: 1 }, { var: 2 }, { var: 3 }, { var: 4 },
      { val: 0 }, { val: domain }, { val: 0 }, { val: zkey.nVars },
    ] },
    { cmd: "GET", out: 0, var: 2, len: domain * n8 },
    { cmd: "GET", out: 1, var: 3, len: domain * n8 },
    { cmd: "GET", out: 2, var: 4, len: domain * n8 },
  ]);
  stage("qap_s");
  const power = Math.log2(domain);
  const inc = power == Fr.s ? Fr.shift : Fr.w[power + 1];
  const odd = async (t) => Fr.fft(await Fr.batchApplyKey(await Fr.ifft(t), Fr.e(1), inc));
  const buffAodd_T = await odd(buffA_T);
  const buffBodd_T = await odd(buffB_T);
  const buffCodd_T = await odd(buffC_T);
  const [buffPodd_T] = await curve.tm.queueAction([
    { cmd: "ALLOCSET", var: 0, buff: buffAodd_T },
    { cmd: "ALLOCSET", var: 1, buff: buffBodd_T },
    { cmd: "ALLOCSET", var: 2, buff: buffCodd_T },
    { cmd: "ALLOC", var: 3, len: domain * n8 },
    { cmd: "CALL", fnName: "qap_joinABC", params: [
      { var: 0 }, { var: 1 }, { var: 2 }, { val: domain }, { var: 3 }] },
    { cmd: "CALL", fnName: "frm_batchFromMontgomery", params: [
      { var: 3 }, { val: domain }, { var: 3 }] },
    { cmd: "GET", out: 0, var: 3, len: domain * n8 },
  ]);

  const privateWitness = witness.slice((zkey.nPublic + 1) * n8);
  stage("fft_s");
  let piA, pib1, piB, piC, resH;
  if (key.msm) {
    const parts = await key.msm.partials([witness, witness, witness, privateWitness, buffPodd_T]);
    const groups = [G1, G1, G2, G1, G1];
    [piA, pib1, piB, piC, resH] = groups.map((G, s) =>
      parts.reduce((sum, part) => G.add(sum, part[s]), G.zero));
  } else {
    piA = await G1.multiExpAffine(key.pointsA, witness);
    pib1 = await G1.multiExpAffine(key.pointsB1, witness);
    piB = await G2.multiExpAffine(key.pointsB2, witness);
    piC = await G1.multiExpAffine(key.pointsC, privateWitness);
    resH = await G1.multiExpAffine(key.pointsH, buffPodd_T);
  }

  stage("msm_s");
  const r = Fr.random();
  const s = Fr.random();
  piA = G1.add(G1.add(piA, zkey.vk_alpha_1), G1.timesFr(zkey.vk_delta_1, r));
  piB = G2.add(G2.add(piB, zkey.vk_beta_2), G2.timesFr(zkey.vk_delta_2, s));
  pib1 = G1.add(G1.add(pib1, zkey.vk_beta_1), G1.timesFr(zkey.vk_delta_1, s));
  piC = G1.add(piC, resH);
  piC = G1.add(piC, G1.timesFr(piA, s));
  piC = G1.add(piC, G1.timesFr(pib1, r));
  piC = G1.add(piC, G1.timesFr(zkey.vk_delta_1, Fr.neg(Fr.mul(r, s))));

  const publicSignals = [];
  for (let i = 1; i <= zkey.nPublic; i++) {
    publicSignals.push(Scalar.fromRprLE(witness.slice(i * n8, (i + 1) * n8)).toString());
  }
  const str = (v) => Array.isArray(v) ? v.map(str) : v.toString();
  const proof = {
    pi_a: str(G1.toObject(G1.toAffine(piA))),
    pi_b: str(G2.toObject(G2.toAffine(piB))),
    pi_c: str(G1.toObject(G1.toAffine(piC))),
  };
  stage("finish_s");
  return { proof, publicSignals };
}

function word(decimal) {
  return BigInt(decimal).toString(16).padStart(64, "0");
}

function encodeProof(p) {
  const words = [
    p.pi_a[0], p.pi_a[1],
    p.pi_b[0][1], p.pi_b[0][0], p.pi_b[1][1], p.pi_b[1][0],
    p.pi_c[0], p.pi_c[1],
  ];
  return "0x" + words.map(word).join("");
}

function toBig(v) {
  return Array.isArray(v) ? v.map(toBig) : BigInt(v);
}

function signals(input) {
  return Object.fromEntries(Object.entries(input).map(([k, v]) => [k, toBig(v)]));
}

async function outputs(req) {
  const { calculator } = await load(req.wasm, req.zkey);
  const witness = await calculator.calculateWitness(signals(req.input), true);
  // Witness layout: [1, outputs..., inputs..., internals...].
  const count = Number(req.n_outputs ?? 2);
  return { outputs: Array.from({ length: count }, (_, i) => witness[1 + i].toString()) };
}

// Worker threads of the fixed-base multi-exponentiations (1: in this thread).
function msmThreads(req) {
  const n = Number(req.msm_threads ?? 1);
  if (!Number.isInteger(n) || n < 1 || n > 16) throw new Error(`msm_threads must be 1..16, not ${n}`);
  return n;
}

function checkEngine(engine, singleThread) {
  if (!["fixed-base", "prepared", "snarkjs"].includes(engine)) {
    throw new Error(`unknown engine ${engine}`);
  }
  if (engine == "fixed-base" && !singleThread) throw new Error("fixed-base needs single_thread");
}

// Loads a key before its first proof (witness calculator, parsed zkey, fixed-base tables).
async function prepare(req) {
  const started = process.hrtime.bigint();
  const entry = await load(req.wasm, req.zkey);
  const engine = req.engine ?? (req.single_thread ? "fixed-base" : "prepared");
  checkEngine(engine, Boolean(req.single_thread));
  if (engine != "snarkjs") {
    const key = await prepared(
      entry, Boolean(req.single_thread), engine == "fixed-base", msmThreads(req));
    return { prepare_s: Number(process.hrtime.bigint() - started) / 1e9, fixed_base: Boolean(key.msm) };
  }
  return { prepare_s: Number(process.hrtime.bigint() - started) / 1e9, fixed_base: false };
}

function cpuS() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

async function prove(req) {
  const entry = await load(req.wasm, req.zkey);
  const singleThread = Boolean(req.single_thread);
  const engine = req.engine ?? (req.single_thread ? "fixed-base" : "prepared");
  checkEngine(engine, singleThread);
  let key = engine == "snarkjs"
    ? null
    : await prepared(entry, singleThread, engine == "fixed-base", msmThreads(req));
  if (key && key.tooBig) key = null;
  const started = process.hrtime.bigint();
  const cpu = cpuS();
  const stages = {};
  const stage = stageClock(stages);
  const input = signals(req.input);
  let proof, publicSignals;
  if (key) {
    const wtns = await entry.calculator.calculateWTNSBin(input, true);
    const { fd, sections } = await binFileUtils.readBinFile(
      { type: "mem", data: wtns }, "wtns", 2, 1 << 25, 1 << 23);
    const witness = await binFileUtils.readSection(fd, sections, 2);
    stage("witness_s");
    await fd.close();
    ({ proof, publicSignals } = await provePrepared(key, witness, stage));
  } else {
    const wtns = await entry.calculator.calculateWTNSBin(input, true);
    ({ proof, publicSignals } = await snarkjs.groth16.prove(
      { type: "mem", data: zkeyBytes(entry) },
      { type: "mem", data: wtns },
      undefined,
      { singleThread },
    ));
  }
  const provingS = Number(process.hrtime.bigint() - started) / 1e9;
  // Process CPU (every thread of this worker), seconds: robust to other load on the machine.
  const cpuProvingS = cpuS() - cpu;
  return {
    proof: encodeProof(proof), public: publicSignals, proving_s: provingS, cpu_s: cpuProvingS,
    cpu_stages: stages,
  };
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
// Requests are served one at a time: the Python pool gives each worker one job at once.
for await (const line of rl) {
  if (!line.trim()) continue;
  let req;
  try {
    req = JSON.parse(line);
  } catch (err) {
    out({ id: null, ok: false, error: `not JSON: ${err.message}` });
    continue;
  }
  try {
    if (req.op === "ping") out({ id: req.id, ok: true });
    else if (req.op === "prepare") out({ id: req.id, ok: true, ...(await prepare(req)) });
    else if (req.op === "outputs") out({ id: req.id, ok: true, ...(await outputs(req)) });
    else if (req.op === "prove") out({ id: req.id, ok: true, ...(await prove(req)) });
    else out({ id: req.id, ok: false, error: `unknown op ${req.op}` });
  } catch (err) {
    out({ id: req.id, ok: false, error: String(err && err.message ? err.message : err) });
  }
}
process.exit(0);
