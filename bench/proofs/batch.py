"""bench/proofs/batch: many Spector predictions proven together (zk/circuits/batch.circom).

One Groth16 proof for ``BATCH_ROWS`` (24) rows of one request, inputs and logits hashed into one Poseidon
value each; against the baseline measured in the same process, one single-row proof per prediction
(``zk/circuits/logit.circom``, the proof ``predict?proof=true`` serves): proving time, the worker's peak
RSS (VmHWM) beside this process's, proof bytes, and the gas of a real ``verifyProof`` transaction on a
local Shanghai anvil, in total and per prediction; plus the client's time to recompute both hashes.

    .venv/bin/python -m bench.proofs.batch [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from bench._report import peak_rss_mib, write_report
from bench.proofs.run import vm_hwm_mib
from contracts import Anvil, Transactor, deploy_all
from trainer.data import load_dataset
from zk import (
    BATCH_ROWS,
    ProverPool,
    batch_hashes,
    check_on_chain,
    deploy_batch_verifier,
    deploy_model_verifier,
    ensure_batch_keys,
    ensure_keys,
    model_commitment,
)
from zk._batch import BatchProof, batch_input

HERE = Path(__file__).resolve().parent
W3 = [2.8261, 0.0952, 2.3787]
B3 = -13.0213


async def prove_batch_measured(keys: Any, rows: list[list[float]]) -> dict[str, Any]:
    async with ProverPool(workers=1, max_pending=1, timeout_s=600) as pool:
        pid = pool._all[0].process.pid
        t = time.perf_counter()
        answer = await pool._call(
            {
                "op": "prove",
                "wasm": str(keys.wasm),
                "zkey": str(keys.zkey),
                "input": batch_input(keys, W3, B3, rows),
            }
        )
        wall = time.perf_counter() - t
        rss = vm_hwm_mib(pid)
    public = [int(v) for v in answer["public"]]
    proof = BatchProof(
        bytes.fromhex(answer["proof"][2:]),
        (public[0], public[1], public[2]),
        (),
        float(answer["proving_s"]),
    )
    return {"proof": proof, "wall": wall, "rss": rss}


async def prove_singles(keys: Any, rows: list[list[float]]) -> dict[str, Any]:
    async with ProverPool(workers=1, max_pending=1) as pool:
        pid = pool._all[0].process.pid
        proofs = [await pool.prove(keys, W3, B3, r) for r in rows]
        rss = vm_hwm_mib(pid)
    return {"proofs": proofs, "rss": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--singles", type=int, default=8, help="single-row proofs for the baseline")
    parser.add_argument("--out", type=Path, default=HERE / "batch_results.json")
    args = parser.parse_args()
    rows = [[float(v) for v in r] for r in load_dataset("spector").x[:BATCH_ROWS]]
    batch_keys, single_keys = ensure_batch_keys(3), ensure_keys(3)
    with Anvil.start() as chain:
        acc = chain.accounts
        deployment = deploy_all(chain.w3, acc[0].private_key, operator=acc[1].address)
        sender = Transactor(chain.w3, acc[2].private_key)
        commitment = model_commitment(single_keys, W3, B3)
        single_verifier = deploy_model_verifier(sender, deployment, 3, commitment)
        batch_verifier = deploy_batch_verifier(sender, deployment, 3, commitment)
        # What SubnetRegistry records for a 3-feature version: the router in front of both.
        router = str(
            sender.deploy("ModelProofVerifier", single_verifier, batch_verifier, commitment).address
        )

        singles = asyncio.run(prove_singles(single_keys, rows[: args.singles]))
        single_gas = [
            check_on_chain(chain.w3, single_verifier, p.proof, p.instances, sender=sender).gas or 0
            for p in singles["proofs"][:3]
        ]
        single_routed_gas = [
            check_on_chain(chain.w3, router, p.proof, p.instances, sender=sender).gas or 0
            for p in singles["proofs"][:3]
        ]
        single_s = min(p.proving_s for p in singles["proofs"])
        batch = asyncio.run(prove_batch_measured(batch_keys, rows))
        proof: BatchProof = batch["proof"]
        check = check_on_chain(
            chain.w3, batch_verifier, proof.proof, proof.instances, sender=sender
        )
        routed = check_on_chain(chain.w3, router, proof.proof, proof.instances, sender=sender)
        assert routed.verified
        from zk._fixed import encode_features, encode_model, fixed_logit, to_field

        w, b = encode_model(W3, B3)
        logits = [to_field(fixed_logit(w, b, encode_features(r))) for r in rows]
        t = time.perf_counter()
        hashes = batch_hashes(batch_keys, rows, logits, B3)
        hash_s = time.perf_counter() - t
        assert check.verified and hashes == proof.instances[:2]
        table = [
            {
                "proof": "one row per proof (proven_logit.circom, baseline)",
                "rows": 1,
                "constraints": 708,
                "prove s": round(single_s, 3),
                "prove s / prediction": round(single_s, 3),
                "proof B": 256,
                "verify gas": max(single_gas),
                "gas / prediction": max(single_gas),
                "verify gas via ModelProofVerifier": max(single_routed_gas),
                "worker peak RSS MiB": round(singles["rss"], 1),
                "bench peak RSS MiB": round(peak_rss_mib(), 1),
                "client hash s": 0.0,
            },
            {
                "proof": f"{BATCH_ROWS} rows in one proof (batch.circom)",
                "rows": BATCH_ROWS,
                "constraints": 7863,
                "prove s": round(proof.proving_s, 3),
                "prove s / prediction": round(proof.proving_s / BATCH_ROWS, 4),
                "proof B": len(proof.proof),
                "verify gas": int(check.gas or 0),
                "gas / prediction": round((check.gas or 0) / BATCH_ROWS),
                "verify gas via ModelProofVerifier": int(routed.gas or 0),
                "worker peak RSS MiB": round(batch["rss"], 1),
                "bench peak RSS MiB": round(peak_rss_mib(), 1),
                "client hash s": round(hash_s, 3),
            },
        ]
    write_report(
        "bench/proofs/batch: 24 Spector predictions in one Groth16 proof vs one proof each",
        table,
        args.out,
        notes={
            "goal": "<= 10k gas per prediction (issue 21)",
            "ratio_gas_per_prediction": round(
                table[1]["gas / prediction"] / table[0]["gas / prediction"], 4
            ),
            "ratio_prove_s_per_prediction": round(
                table[1]["prove s / prediction"] / table[0]["prove s / prediction"], 3
            ),
            "ptau": "2^13 development powers of tau (the training circuit's)",
            "client hash s": "BatchHashes witness in a fresh Node worker (includes its start-up)",
        },
    )


if __name__ == "__main__":
    main()
