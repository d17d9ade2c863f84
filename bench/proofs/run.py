"""bench/proofs: Groth16 proofs of a logistic-regression logit (circom + snarkjs), per model shape.

For Spector (3 features) and breast cancer (30), per proving engine of the Node worker the gateway
uses (``--engines``; the first, the old path ``snarkjs.groth16.prove`` with its worker threads, is
the baseline measured in the same run): proving time per prediction (median and p90 of ``--rows``
proofs, wall clock), the worker's CPU seconds per proof (all its threads; robust to the load other
work puts on the machine, which is recorded beside: the 1-minute load average), the ratio of that
CPU time to the baseline's, the round trip from Python, the key load (parse, tables), the worker's
peak RSS (VmHWM) beside this process's, proof bytes, the gas of ``verifyProof`` in a real
transaction on a local Shanghai anvil through the version's ``LogitProofVerifier`` (every proof
measured is also checked on chain), key size, the logit error of the fixed-point circuit, and the
client's cost of recomputing the proof's ``inputsHash`` from its row (``zk.inputs_hash``: a
one-off Node worker, start-up included). A plain prediction (NumPy, best of many) is shown for
scale. ``--setup`` also times the per-shape setup (compile + Groth16 setup + beacon) in a fresh
cache, reusing the cached powers of tau (``--ptau`` times those too: minutes).

    .venv/bin/python -m bench.proofs.run [--rows N] [--engines E:M,...] [--setup] [--ptau]
        [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from bench._report import peak_rss_mib, write_report
from contracts import Anvil, Transactor, deploy_all
from trainer.data import load_dataset
from zk import (
    ProverPool,
    check_on_chain,
    default_cache_dir,
    deploy_model_verifier,
    ensure_keys,
    inputs_hash,
    model_commitment,
)
from zk._setup import PTAU_POWER

HERE = Path(__file__).resolve().parent


def fitted(name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Rows (raw units), coefficients (raw units) and intercept of a pooled fit."""
    data = load_dataset(name)
    x = np.asarray(data.x, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    lr = LogisticRegression(max_iter=5000).fit((x - mean) / scale, data.y)
    coef = lr.coef_[0] / scale
    intercept = float(lr.intercept_[0] - np.sum(lr.coef_[0] * mean / scale))
    return x, coef, intercept


def plain_predict_s(x: np.ndarray, coef: np.ndarray, intercept: float, reps: int = 2000) -> float:
    """Best time of one plain prediction (one row: dot product and sigmoid), seconds."""
    row = x[0]
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        1.0 / (1.0 + np.exp(-(row @ coef + intercept)))
        best = min(best, time.perf_counter() - t)
    return best


def vm_hwm_mib(pid: int) -> float:
    """Peak RSS (VmHWM) of a live process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


#: Engines measured, in order: the old path first (snarkjs.groth16.prove with its worker threads,
#: the pool's default before the fixed-base engine), then each change on its own.
ENGINES = (
    ("snarkjs", False, 1),
    ("prepared", False, 1),
    ("prepared", True, 1),
    ("fixed-base", True, 1),
    ("fixed-base", True, 2),
)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def prove_rows(
    keys: Any,
    coef: np.ndarray,
    intercept: float,
    x: np.ndarray,
    rows: int,
    engine: str = "fixed-base",
    single_thread: bool = True,
    msm_threads: int = 1,
) -> dict[str, Any]:
    """Prove ``rows`` rows (cycling through ``x``) in one fresh worker, after loading the key."""
    async with ProverPool(
        workers=1,
        max_pending=1,
        engine=engine,
        single_thread=single_thread,
        msm_threads=msm_threads,
    ) as pool:
        worker_pid = pool._all[0].process.pid
        load_before = os.getloadavg()[0]
        prepared = await pool.prepare(keys)
        proofs, walls = [], []
        for i in range(rows):
            t = time.perf_counter()
            row = x[i % len(x)]
            proofs.append(await pool.prove(keys, coef.tolist(), intercept, row.tolist()))
            walls.append(time.perf_counter() - t)
        rss = vm_hwm_mib(worker_pid)
        load_after = os.getloadavg()[0]
    return {
        "proofs": proofs,
        "walls": walls,
        "worker_rss_mib": rss,
        "prepare_s": float(prepared[0]["prepare_s"]),
        "load": (load_before + load_after) / 2,
    }


def setup_s(n_features: int, with_ptau: bool) -> float:
    """Seconds to make one shape's keys in a fresh cache (with or without the powers of tau)."""
    with tempfile.TemporaryDirectory() as tmp:
        ptau = default_cache_dir() / f"dev_pot{PTAU_POWER}_final.ptau"
        if not with_ptau and ptau.exists():
            shutil.copy(ptau, Path(tmp) / ptau.name)
        t = time.perf_counter()
        ensure_keys(n_features, Path(tmp))
        return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=30, help="proofs per model and engine")
    parser.add_argument(
        "--engines",
        default=",".join(f"{e}:{'single' if st else 'threads'}:{m}" for e, st, m in ENGINES),
        help="comma-separated ENGINE:single|threads:MSM_THREADS, the first being the baseline",
    )
    parser.add_argument("--setup", action="store_true", help="time the per-shape setup")
    parser.add_argument("--ptau", action="store_true", help="include the powers of tau (minutes)")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    engines = [
        (name, mode == "single", int(m))
        for name, mode, m in (item.split(":") for item in args.engines.split(","))
    ]

    table: list[dict[str, Any]] = []
    with Anvil.start() as chain:
        accounts = chain.accounts
        deployment = deploy_all(chain.w3, accounts[0].private_key, operator=accounts[1].address)
        sender = Transactor(chain.w3, accounts[2].private_key)
        for name in ("spector", "breast-cancer"):
            x, coef, intercept = fitted(name)
            n = x.shape[1]
            keys = ensure_keys(n)
            base_s = plain_predict_s(x, coef, intercept)
            commitment = model_commitment(keys, coef.tolist(), intercept)
            verifier = deploy_model_verifier(sender, deployment, n, commitment)
            t = time.perf_counter()
            hashed = inputs_hash(x[0].tolist())
            hash_s = time.perf_counter() - t
            baseline_cpu = float("nan")
            for engine, single_thread, msm_threads in engines:
                result = asyncio.run(
                    prove_rows(
                        keys, coef, intercept, x, args.rows, engine, single_thread, msm_threads
                    )
                )
                proofs = result["proofs"]
                # Every proof measured must verify on chain; gas from 3 real transactions.
                for p in proofs:
                    if not check_on_chain(chain.w3, verifier, p.proof, p.instances).verified:
                        raise SystemExit(f"{name} {engine}: a proof did not verify on chain")
                gas = [
                    check_on_chain(chain.w3, verifier, p.proof, p.instances, sender=sender).gas
                    for p in proofs[:3]
                ]
                if hashed != proofs[0].inputs_hash:
                    raise SystemExit(f"{name}: the recomputed inputs hash differs from the proof's")
                errors = [
                    abs(p.logit - (x[i % len(x)] @ coef + intercept)) for i, p in enumerate(proofs)
                ]
                walls = [p.proving_s for p in proofs]
                cpus = [p.cpu_s for p in proofs]
                cpu_median = statistics.median(cpus)
                if baseline_cpu != baseline_cpu:
                    baseline_cpu = cpu_median
                table.append(
                    {
                        "model": f"{name} ({n} features)",
                        "engine": f"{engine} ({'1 thread' if single_thread else 'threads'}"
                        + (f", MSM in {msm_threads} threads)" if msm_threads > 1 else ")"),
                        "proofs": len(proofs),
                        "prove median s": statistics.median(walls),
                        "prove p90 s": percentile(walls, 90),
                        "cpu median s": cpu_median,
                        "cpu p90 s": percentile(cpus, 90),
                        "cpu / baseline": cpu_median / baseline_cpu,
                        "load avg": round(result["load"], 2),
                        "round trip median s": statistics.median(result["walls"]),
                        "key load s": round(result["prepare_s"], 2),
                        "worker peak RSS MiB": round(result["worker_rss_mib"], 1),
                        "plain predict us": base_s * 1e6,
                        "proof B": len(proofs[0].proof),
                        "client hash s": round(hash_s, 3),
                        "verify gas": int(max(g or 0 for g in gas)),
                        "zkey B": keys.zkey.stat().st_size,
                        "bench peak RSS MiB": round(peak_rss_mib(), 1),
                        "max logit error": max(errors),
                        "setup s": round(setup_s(n, args.ptau), 1)
                        if args.setup and engine == engines[0][0]
                        else float("nan"),
                    }
                )
    write_report(
        "bench/proofs: Groth16 (circom2 0.2.23 + snarkjs 0.7.6) proofs of the logit",
        table,
        args.out,
        notes={
            "proofs_per_model_and_engine": args.rows,
            "engines": "snarkjs = snarkjs.groth16.prove on the in-memory zkey (the old path, "
            "baseline); prepared = zkey parsed once per worker, QAP in one wasm call; "
            "fixed-base = prepared + window tables of the key's points (zk/js/fixed_base.mjs); "
            "threads = ffjavascript worker threads (one per core), 1 thread = single_thread; "
            "MSM in N threads = fixed-base tables split by points over N worker threads",
            "cpu": "CPU seconds of the worker process (all threads) per proof: robust to load",
            "load_avg": "1-minute load average of the machine (2 cores) around each run",
            "key_load_s": "the prepare op: witness calculator, zkey parse, fixed-base tables",
            "fixed_point": "features 2^24, weights 2^32, logit 2^56",
            "goal": "<= 0.5 s, <= 250k gas, <= 256 MB per proof (issue 21)",
            "setup": "development keys from public beacons (zk/_setup.py); setup s excludes the "
            f"2^{PTAU_POWER} powers of tau unless --ptau",
            "verify_gas": "gasUsed of a transaction calling LogitProofVerifier.verifyProof; "
            "every measured proof is also checked with an eth_call",
        },
    )


if __name__ == "__main__":
    main()
