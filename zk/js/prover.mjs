// A long-lived Groth16 prover: one JSON request per stdin line, one JSON answer per stdout line.
//
//   {"id": 1, "op": "prove", "wasm": PATH, "zkey": PATH, "input": {signal: value | [values]}}
//     -> {"id": 1, "ok": true, "proof": "0x<256 bytes>", "public": ["<decimal>", ...], "proving_s": 0.03}
//   {"id": 2, "op": "outputs", "wasm": ..., "zkey": ..., "input": {...}, "n_outputs": 2}
//     -> {"id": 2, "ok": true, "outputs": ["<logit>", "<commitment>"]}   (witness only, no proof;
//        the circuit's first n_outputs outputs, default 2)
//   {"id": 3, "op": "ping"} -> {"id": 3, "ok": true}
//   any failure            -> {"id": N, "ok": false, "error": "<message>"}
//
// The proof bytes are abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c) in the order snarkjs's
// Solidity verifier takes them (each G2 coordinate pair swapped, as `zkey export soliditycalldata` does).
// Keys are read once and kept in memory (at most MAX_KEYS circuits). Started by zk/_prover.py.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { WitnessCalculatorBuilder } from "circom_runtime";
import * as snarkjs from "snarkjs";

const MAX_KEYS = 4;
const keys = new Map(); // wasm + "\0" + zkey -> {calculator, zkey: Uint8Array}

async function load(wasmPath, zkeyPath) {
  const id = wasmPath + "\0" + zkeyPath;
  let entry = keys.get(id);
  if (!entry) {
    // Compiling the witness calculator's WebAssembly once per circuit, not once per proof.
    const calculator = await WitnessCalculatorBuilder(new Uint8Array(readFileSync(wasmPath)));
    entry = { calculator, zkey: new Uint8Array(readFileSync(zkeyPath)) };
    if (keys.size >= MAX_KEYS) keys.delete(keys.keys().next().value);
    keys.set(id, entry);
  }
  return entry;
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

async function prove(req) {
  const { calculator, zkey } = await load(req.wasm, req.zkey);
  const started = process.hrtime.bigint();
  const input = signals(req.input);
  const wtns = await calculator.calculateWTNSBin(input, true);
  const { proof, publicSignals } = await snarkjs.groth16.prove(
    { type: "mem", data: zkey },
    { type: "mem", data: wtns },
    undefined,
    { singleThread: Boolean(req.single_thread) },
  );
  const provingS = Number(process.hrtime.bigint() - started) / 1e9;
  return { proof: encodeProof(proof), public: publicSignals, proving_s: provingS };
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
    else if (req.op === "outputs") out({ id: req.id, ok: true, ...(await outputs(req)) });
    else if (req.op === "prove") out({ id: req.id, ok: true, ...(await prove(req)) });
    else out({ id: req.id, ok: false, error: `unknown op ${req.op}` });
  } catch (err) {
    out({ id: req.id, ok: false, error: String(err && err.message ? err.message : err) });
  }
}
process.exit(0);
