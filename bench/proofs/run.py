"""bench/proofs: Groth16 proofs of a logistic-regression logit (circom + snarkjs), per model shape.

For Spector (3 features) and breast cancer (30): proving time per prediction in the Node worker the
gateway uses (best and median of ``--rows`` rows), the round trip from Python, proof bytes, the
gas of ``verifyProof`` in a real transaction on a local Shanghai anvil through the version's
``LogitProofVerifier``, key sizes, the worker's peak RSS (VmHWM) beside this process's, and the
logit error of the fixed-point circuit, and the client's cost of recomputing the proof's
``inputsHash`` from its row (``zk.inputs_hash``: a one-off Node worker, start-up included; the
features are private, only their Poseidon hash is public). The baseline, measured in the same process, is a plain
prediction (``w . x + b`` and the sigmoid in NumPy, best of many): the ratio says what a proof
costs on top of an answer. ``--setup`` also times the per-shape setup (compile + Groth16 setup +
beacon) in a fresh cache, reusing the cached powers of tau (``--ptau`` times those too: minutes).

    .venv/bin/python -m bench.proofs.run [--rows N] [--setup] [--ptau] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
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


async def prove_rows(
    keys: Any, coef: np.ndarray, intercept: float, x: np.ndarray, rows: int
) -> dict[str, Any]:
    async with ProverPool(workers=1, max_pending=1) as pool:
        worker_pid = pool._all[0].process.pid
        proofs, walls = [], []
        for row in x[:rows]:
            t = time.perf_counter()
            proofs.append(await pool.prove(keys, coef.tolist(), intercept, row.tolist()))
            walls.append(time.perf_counter() - t)
        rss = vm_hwm_mib(worker_pid)
    return {"proofs": proofs, "walls": walls, "worker_rss_mib": rss}


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
    parser.add_argument("--rows", type=int, default=10, help="rows proven per model")
    parser.add_argument("--setup", action="store_true", help="time the per-shape setup")
    parser.add_argument("--ptau", action="store_true", help="include the powers of tau (minutes)")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()

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
            result = asyncio.run(prove_rows(keys, coef, intercept, x, args.rows))
            proofs = result["proofs"]
            commitment = model_commitment(keys, coef.tolist(), intercept)
            verifier = deploy_model_verifier(sender, deployment, n, commitment)
            gas = [
                check_on_chain(chain.w3, verifier, p.proof, p.instances, sender=sender).gas
                for p in proofs[:3]
            ]
            t = time.perf_counter()
            hashed = inputs_hash(x[0].tolist())
            hash_s = time.perf_counter() - t
            if hashed != proofs[0].inputs_hash:
                raise SystemExit(f"{name}: the recomputed inputs hash differs from the proof's")
            errors = [
                abs(p.logit - (row @ coef + intercept)) for p, row in zip(proofs, x, strict=False)
            ]
            prove_best = min(p.proving_s for p in proofs)
            table.append(
                {
                    "model": f"{name} ({n} features)",
                    "prove best s": prove_best,
                    "prove median s": statistics.median(p.proving_s for p in proofs),
                    "round trip median s": statistics.median(result["walls"]),
                    "plain predict us": base_s * 1e6,
                    "prove / plain": prove_best / base_s,
                    "proof B": len(proofs[0].proof),
                    "public signals": len(proofs[0].instances),
                    "client hash s": round(hash_s, 3),
                    "verify gas": int(max(g or 0 for g in gas)),
                    "zkey B": keys.zkey.stat().st_size,
                    "wasm B": keys.wasm.stat().st_size,
                    "worker peak RSS MiB": round(result["worker_rss_mib"], 1),
                    "bench peak RSS MiB": round(peak_rss_mib(), 1),
                    "max logit error": max(errors),
                    "setup s": round(setup_s(n, args.ptau), 1) if args.setup else float("nan"),
                }
            )
    write_report(
        "bench/proofs: Groth16 (circom2 0.2.23 + snarkjs 0.7.6) proofs of the logit",
        table,
        args.out,
        notes={
            "rows_proven_per_model": args.rows,
            "fixed_point": "features 2^24, weights 2^32, logit 2^56",
            "goal": "<= 0.5 s, <= 250k gas, <= 256 MB per proof (issue 21)",
            "setup": "development keys from public beacons (zk/_setup.py); setup s excludes the "
            f"2^{PTAU_POWER} powers of tau unless --ptau",
            "verify_gas": "gasUsed of a transaction calling LogitProofVerifier.verifyProof",
            "public_signals": "[logit, model_commitment, inputs_hash]; before (features public) "
            "30 features took 428,833 gas (docs/proofs.md)",
        },
    )


if __name__ == "__main__":
    main()
