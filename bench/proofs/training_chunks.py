"""bench/proofs/training_chunks: chunked proof of training for the 30-feature breast-cancer holders.

The demo's breast-cancer run (569 rows split over 3 holders as ``twopm up`` splits them, 189-190 rows
each, L2 fit with C = 1): for each holder, its rows padded to whole 2-row chunks, the chain root it
commits to, then every chunk proved in one Node worker (``zk/circuits/training_chunk.circom``, 2 rows and
the private running sums, 7,382 constraints, the 2^13 development powers of tau): summed and per-chunk
Groth16 proving time, the worker's peak RSS (VmHWM) beside this process's, the gas of each real
``TrainingChunkVerifier.submitChunk`` transaction (registry and chain checks + Groth16 over 5 public
signals + event), of the ``openTotals`` transaction and of one bare ``verifyProof`` transaction, on a
local Shanghai anvil; then ``verify_training`` over the chain (every chunk re-verified by ``eth_call``,
both chains walked, the opening recomputed, penalised stationarity) and its wall time.

    .venv/bin/python -m bench.proofs.training_chunks [--holders K] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from bench._report import peak_rss_mib, write_report
from bench.proofs.run import vm_hwm_mib
from contracts import Anvil, Transactor, deploy_all
from trainer import JobConfig, load_dataset, run_in_process, split_rows
from trainer.publish import contributor_shares
from zk import (
    ChunkOpening,
    ChunkProof,
    ProverPool,
    check_on_chain,
    chunk_capacity,
    chunked_data_root,
    commit_data,
    encode_rows,
    ensure_training_chunk_keys,
    new_salt,
    pack_chunk_sums,
    record_model_verifier,
    split_chunks,
    submit_and_open_chunks,
    training_chunk_verifier_name,
    verify_training,
)
from zk._training import TRAINING_PTAU_POWER, chunk_circuit_input

HERE = Path(__file__).resolve().parent
C = 1.0


async def prove_all(keys: Any, rows: Any, salt: int, coef: list[float], b: float) -> dict[str, Any]:
    """Every chunk of one holder, in chain order, in one worker; proofs, wall time, worker VmHWM."""
    proofs: list[ChunkProof] = []
    async with ProverPool(workers=1, max_pending=1, timeout_s=600) as pool:
        pid = pool._all[0].process.pid
        t = time.perf_counter()
        link, acc, opening = 0, 0, None
        for chunk in split_chunks(rows):
            salt_out = new_salt()
            answer = await pool._call(
                {
                    "op": "prove",
                    "wasm": str(keys.wasm),
                    "zkey": str(keys.zkey),
                    "input": chunk_circuit_input(
                        chunk, salt, link, coef, b, acc, opening, salt_out
                    ),
                }
            )
            before = opening.packed if opening else (0,) * (len(coef) + 1)
            added = pack_chunk_sums(chunk, coef, b)
            opening = ChunkOpening(
                salt_out, tuple(x + y for x, y in zip(before, added, strict=True))
            )
            proof = ChunkProof(
                bytes.fromhex(answer["proof"][2:]),
                tuple(int(v) for v in answer["public"]),
                len(coef),
                float(answer["proving_s"]),
                opening,
            )
            link, acc = proof.signals.link_out, proof.signals.acc_out
            proofs.append(proof)
        wall = time.perf_counter() - t
        rss = vm_hwm_mib(pid)
    return {"proofs": proofs, "wall": wall, "rss": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--holders", type=int, default=3, help="prove only the first K holders")
    parser.add_argument("--out", type=Path, default=HERE / "training_chunks_results.json")
    args = parser.parse_args()

    data = load_dataset("breast-cancer")
    parts = [data.take(r) for r in split_rows(data, 3, mode="iid")]
    result = run_in_process(
        parts, JobConfig(tuple(data.feature_names), data.label, n_nodes=3, l2_c=C)
    )
    coef, b = [float(c) for c in result.coef], float(result.intercept)
    t = time.perf_counter()
    keys = ensure_training_chunk_keys(30)
    keys_s = time.perf_counter() - t
    table: list[dict[str, Any]] = []
    with Anvil.start() as chain:
        acc = chain.accounts
        deployment = deploy_all(chain.w3, acc[0].private_key, operator=acc[1].address)
        owner = Transactor(chain.w3, acc[3].private_key)
        holders = [Transactor(chain.w3, acc[i].private_key) for i in (4, 5, 6)]
        nodes = deployment.contract("NodeRegistry")
        encoded, ids, salts, commit_s = [], [], [], []
        for i, (tx, part) in enumerate(zip(holders, parts, strict=True)):
            tx.transact(nodes.functions.register(f"h{i}", f"http://127.0.0.1/{i}"))
            rows = encode_rows(part.x.tolist(), part.y.tolist(), chunk_capacity(len(part.y), 30))
            salt = new_salt()
            t = time.perf_counter()
            root = chunked_data_root(rows, salt, keys)
            commit_s.append(time.perf_counter() - t)
            encoded.append(rows)
            salts.append(salt)
            ids.append(commit_data(tx, deployment, root))
        registry = deployment.contract("SubnetRegistry")
        receipt = owner.transact(registry.functions.createSubnet("bench", 1, 0, 1000))
        sid = int(registry.events.SubnetCreated().process_receipt(receipt)[0]["args"]["subnetId"])
        addrs, shares = contributor_shares(
            [
                {"operator_address": h.address, "n_rows": r.n_rows, "node_id": i}
                for i, (h, r) in enumerate(zip(holders, encoded, strict=True))
            ]
        )
        owner.transact(
            registry.functions.publishModel(
                sid, b"\x01" * 32, "file:///bench", b"\x02" * 32, b"\x03" * 32, addrs, shares
            )
        )
        record_model_verifier(
            deployment=deployment,
            deployer=owner,
            owner=owner,
            subnet_id=sid,
            version=1,
            weights=coef,
            intercept=b,
        )
        front = deployment.addresses[training_chunk_verifier_name(30)]
        for i, (tx, rows, salt, cid) in enumerate(zip(holders, encoded, salts, ids, strict=True)):
            if i >= args.holders:
                break
            got = asyncio.run(prove_all(keys, rows, salt, coef, b))
            proofs: list[ChunkProof] = got["proofs"]
            receipts = submit_and_open_chunks(tx, deployment, sid, 1, cid, proofs)
            gas = [int(r["gasUsed"]) for r in receipts[:-1]]
            open_gas = int(receipts[-1]["gasUsed"])
            verify = check_on_chain(
                chain.w3, front, proofs[0].proof, proofs[0].instances, gas=2_000_000, sender=tx
            )
            each = [p.proving_s for p in proofs]
            table.append(
                {
                    "holder": f"breast-cancer holder {i + 1}",
                    "rows": rows.n_rows,
                    "chunks": len(proofs),
                    "rows per chunk": len(split_chunks(rows)[0].x),
                    "constraints per chunk": 7382,
                    "commit root s": round(commit_s[i], 2),
                    "prove s (sum)": round(sum(each), 1),
                    "prove s per chunk (median)": round(statistics.median(each), 2),
                    "prove s per chunk (max)": round(max(each), 2),
                    "round trip s": round(got["wall"], 1),
                    "worker peak RSS MiB": round(got["rss"], 1),
                    "bench peak RSS MiB": round(peak_rss_mib(), 1),
                    "proof B per chunk": len(proofs[0].proof),
                    "submitChunk gas (median)": int(statistics.median(gas)),
                    "submitChunk gas (sum)": sum(gas),
                    "openTotals gas": open_gas,
                    "gas per holder (chunks + opening)": sum(gas) + open_gas,
                    "verifyProof gas per chunk": int(verify.gas or 0),
                    "verified": bool(verify.verified),
                }
            )
        t = time.perf_counter()
        found = verify_training(deployment, sid, weights=coef, l2_c=C)
        verify_s = time.perf_counter() - t
    notes: dict[str, Any] = {
        "ptau": f"2^{TRAINING_PTAU_POWER} development powers of tau (shared with the 3-feature circuit)",
        "keys": {
            "zkey B": keys.zkey.stat().st_size,
            "wasm B": keys.wasm.stat().st_size,
            "ensure_training_chunk_keys s (cached or made now)": round(keys_s, 1),
        },
        "verify_training": {
            "holders proven": min(args.holders, 3),
            "wall s": round(verify_s, 1),
            "verified": found.verified,
            "max_abs_penalised_gradient": found.max_abs_gradient,
            "problems": found.problems,
        },
        "submit_gas": "TrainingChunkVerifier.submitChunk: contributor, commitment, model and chain "
        "checks + Groth16 (5 public signals) + TrainingChunkProven event with proof and signals; "
        "openTotals: the last accumulator's salt and 31 packed totals in TrainingTotalsOpened (the "
        "Poseidon recompute is off chain, in verify_training)",
    }
    write_report(
        "bench/proofs/training_chunks: chunked Groth16 proof of training, 30 features "
        "(circom2 + snarkjs)",
        table,
        args.out,
        notes=notes,
    )


if __name__ == "__main__":
    main()
