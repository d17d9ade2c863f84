"""bench/proofs/training: proof of training (zk/circuits/training.circom), per data holder.

The demo's Spector run (3 features, split over 3 holders as ``twopm up`` splits it, 10-11 rows each,
circuit capacity 16 rows): for each holder, the Groth16 proving time in the Node worker, the round trip
from Python, the worker's peak RSS (VmHWM) beside this process's, proof bytes, the gas of a real
``TrainingProofVerifier.submit`` transaction (registry checks + Groth16 + event) and of a bare
``verifyProof`` transaction, on a local Shanghai anvil. Baseline in the same process: the holder's
plain local sums (NumPy, the gradient at the published coefficients; best of many): the ratio says what
the proof costs on top. ``--constraints`` compiles the circuit for 30 features at two row capacities
and extrapolates the constraint count linearly to the breast-cancer holders' 190 rows (what size of
powers of tau that shape would need). ``--setup`` times the circuit's setup in a fresh cache (reusing
the cached 2^13 powers of tau).

    .venv/bin/python -m bench.proofs.training [--constraints] [--setup] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import peak_rss_mib, write_report
from bench.proofs.run import vm_hwm_mib
from contracts import Anvil, Transactor, deploy_all
from trainer import JobConfig, load_dataset, run_in_process, split_rows
from zk import (
    TRAINING_SHAPES,
    ProverPool,
    check_on_chain,
    commit_data,
    default_cache_dir,
    encode_rows,
    ensure_training_keys,
    record_model_verifier,
    submit_training_proof,
    training_proof_verifier_name,
)
from zk._setup import ROOT
from zk._training import TRAIN_X_BITS, TRAINING_PTAU_POWER, TrainingProof, circuit_input

HERE = Path(__file__).resolve().parent


def plain_sums_s(
    x: np.ndarray, y: np.ndarray, coef: list[float], b: float, reps: int = 2000
) -> float:
    """Best time of one holder's plain gradient at the coefficients (NumPy), seconds."""
    w = np.asarray(coef)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        r = y - p
        np.concatenate([[r.sum()], x.T @ r, (x * x).sum(axis=0)])
        best = min(best, time.perf_counter() - t)
    return best


def constraints(n_rows: int, n_features: int) -> int:
    """Non-linear constraints of TrainingSums(n_rows, n_features) as circom2 compiles it (--O2)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        shutil.copytree(
            ROOT / "node_modules" / "circomlib" / "circuits", src / "circomlib" / "circuits"
        )
        for circuit in (ROOT / "zk" / "circuits").glob("*.circom"):
            shutil.copy(circuit, src / circuit.name)
        (src / "main.circom").write_text(
            'pragma circom 2.1.0;\ninclude "training.circom";\n'
            f"component main = TrainingSums({n_rows}, {n_features}, {TRAIN_X_BITS});\n"
        )
        circom = str(ROOT / "node_modules" / "circom2" / "cli.js")
        out = subprocess.run(
            ["node", circom, "main.circom", "--r1cs", "--O2", "-o", "."],
            cwd=src,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    match = re.search(r"non-linear constraints: (\d+)", out)
    assert match, out
    return int(match.group(1))


async def prove(keys: Any, rows: Any, salt: int, coef: list[float], b: float) -> dict[str, Any]:
    async with ProverPool(workers=1, max_pending=1, timeout_s=600) as pool:
        pid = pool._all[0].process.pid
        t = time.perf_counter()
        answer = await pool._call(
            {
                "op": "prove",
                "wasm": str(keys.wasm),
                "zkey": str(keys.zkey),
                "input": circuit_input(rows, salt, coef, b),
            }
        )
        wall = time.perf_counter() - t
        rss = vm_hwm_mib(pid)
    proof = TrainingProof(
        bytes.fromhex(answer["proof"][2:]),
        tuple(int(v) for v in answer["public"]),
        len(coef),
        float(answer["proving_s"]),
    )
    return {"proof": proof, "wall": wall, "rss": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--constraints", action="store_true", help="count 30-feature constraints")
    parser.add_argument("--setup", action="store_true", help="time the setup in a fresh cache")
    parser.add_argument("--out", type=Path, default=HERE / "training_results.json")
    args = parser.parse_args()

    data = load_dataset("spector")
    parts = [data.take(r) for r in split_rows(data, 3, mode="iid")]
    result = run_in_process(parts, JobConfig(tuple(data.feature_names), data.label, n_nodes=3))
    coef, b = [float(c) for c in result.coef], float(result.intercept)
    keys = ensure_training_keys(3)
    setup_s = float("nan")
    if args.setup:
        with tempfile.TemporaryDirectory() as tmp:
            ptau = default_cache_dir() / f"dev_pot{TRAINING_PTAU_POWER}_final.ptau"
            shutil.copy(ptau, Path(tmp) / ptau.name)
            t = time.perf_counter()
            ensure_training_keys(3, Path(tmp))
            setup_s = time.perf_counter() - t
    table: list[dict[str, Any]] = []
    with Anvil.start() as chain:
        acc = chain.accounts
        deployment = deploy_all(chain.w3, acc[0].private_key, operator=acc[1].address)
        owner = Transactor(chain.w3, acc[3].private_key)
        holders = [Transactor(chain.w3, acc[i].private_key) for i in (4, 5, 6)]
        nodes = deployment.contract("NodeRegistry")
        encoded, ids, salts = [], [], []
        from zk import data_root, new_salt

        for i, (tx, part) in enumerate(zip(holders, parts, strict=True)):
            tx.transact(nodes.functions.register(f"h{i}", f"http://127.0.0.1/{i}"))
            rows = encode_rows(part.x.tolist(), part.y.tolist(), TRAINING_SHAPES[3])
            salt = new_salt()
            encoded.append(rows)
            salts.append(salt)
            ids.append(commit_data(tx, deployment, data_root(rows, salt, keys)))
        registry = deployment.contract("SubnetRegistry")
        receipt = owner.transact(registry.functions.createSubnet("bench", 1, 0, 1000))
        sid = int(registry.events.SubnetCreated().process_receipt(receipt)[0]["args"]["subnetId"])
        total = sum(r.n_rows for r in encoded)
        shares = [round(10_000 * r.n_rows / total) for r in encoded]
        shares[-1] = 10_000 - sum(shares[:-1])
        owner.transact(
            registry.functions.publishModel(
                sid, b"\x01" * 32, "file:///bench", b"\x02" * 32, b"\x03" * 32,
                [h.address for h in holders], shares,
            )
        )  # fmt: skip
        record_model_verifier(
            deployment=deployment,
            deployer=owner,
            owner=owner,
            subnet_id=sid,
            version=1,
            weights=coef,
            intercept=b,
        )
        front = deployment.addresses[training_proof_verifier_name(3)]
        for i, (tx, rows, salt, cid, part) in enumerate(
            zip(holders, encoded, salts, ids, parts, strict=True)
        ):
            got = asyncio.run(prove(keys, rows, salt, coef, b))
            proof: TrainingProof = got["proof"]
            submitted = submit_training_proof(tx, deployment, sid, 1, cid, proof)
            verify = check_on_chain(chain.w3, front, proof.proof, proof.instances, sender=tx)
            base = plain_sums_s(np.asarray(part.x), np.asarray(part.y), coef, b)
            table.append(
                {
                    "circuit": f"spector holder {i + 1} ({rows.n_rows} rows, capacity 16, 3 features)",
                    "constraints": 5546,
                    "prove s": round(proof.proving_s, 3),
                    "round trip s": round(got["wall"], 3),
                    "plain sums us": round(base * 1e6, 1),
                    "prove / plain": round(proof.proving_s / base),
                    "proof B": len(proof.proof),
                    "submit gas": int(submitted["gasUsed"]),
                    "verifyProof gas": int(verify.gas or 0),
                    "verified": bool(verify.verified),
                    "zkey B": keys.zkey.stat().st_size,
                    "wasm B": keys.wasm.stat().st_size,
                    "worker peak RSS MiB": round(got["rss"], 1),
                    "bench peak RSS MiB": round(peak_rss_mib(), 1),
                    "setup s": round(setup_s, 1),
                }
            )
    notes: dict[str, Any] = {
        "ptau": f"2^{TRAINING_PTAU_POWER} development powers of tau (378 s to make on 2 loaded cores)",
        "sigmoid": "32 cubic pieces on [-16, 16), |error| <= 4.0e-5 (zk/_training.py)",
        "submit_gas": "TrainingProofVerifier.submit: contributor, commitment, model checks + Groth16 "
        "(10 public signals) + TrainingProven event with proof and signals",
    }
    if args.constraints:
        c4, c8 = constraints(4, 30), constraints(8, 30)
        per_row = (c8 - c4) / 4
        at_190 = c4 + per_row * (192 - 4)
        notes["breast_cancer_30_features"] = {
            "constraints_n4": c4,
            "constraints_n8": c8,
            "per_row": per_row,
            "constraints_n192_extrapolated": int(at_190),
            "ptau_power_needed": math.ceil(math.log2(at_190)),
        }
    write_report(
        "bench/proofs/training: Groth16 proof of a holder's local sums (circom2 + snarkjs)",
        table,
        args.out,
        notes=notes,
    )
    if args.constraints:
        print(notes["breast_cancer_30_features"])


if __name__ == "__main__":
    main()
