"""The data holders' side of proof of training in ``twopm up``: commit before the fit, prove after it.

Each holder of a data set with a training circuit (``zk.TRAINING_SHAPES``: the 3-feature Spector run;
``zk.TRAINING_CHUNK_SHAPES``: the 30-feature breast-cancer run, proven in chunks of 2 rows whose hash
chain ends at the committed root and whose sums stay private in committed running sums, opened after
the last chunk) encodes the rows it will train on, draws a secret salt (kept 0600 beside its CSV) and commits to the
Poseidon root in ``DataRegistry`` *before* training. After the model version is published and its model
commitment recorded, each holder reads back the CSV its SuperNode trained on, proves its local sums at
the published coefficients and submits the proof to ``TrainingProofVerifier`` with its own key; the
chain refuses it if those rows are not the committed ones.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import Transactor
from trainer.data import load_dataset, read_node_csv, split_rows


@dataclass(frozen=True)
class HolderCommitment:
    """One holder's commitment, as the holder keeps it.

    Attributes:
        address: The holder's address.
        private_key: Its key (0x-hex; a local dev account).
        csv_path: Where its SuperNode reads its rows.
        salt_path: Its secret salt (0600).
        commitment_id: The DataRegistry id.
        data_root: The committed root.
    """

    address: str
    private_key: str
    csv_path: Path
    salt_path: Path
    commitment_id: int
    data_root: int


def commit_before_training(
    w3: Any,
    deployment: Any,
    dataset: str,
    holders: list[tuple[str, str]],
    workdir: Path,
    keys_dir: Path | None = None,
) -> list[HolderCommitment]:
    """Commit each holder's rows of ``dataset`` in DataRegistry (the split ``train_locally`` makes).

    Args:
        w3: Chain client.
        deployment: The deployment (with ``DataRegistry``).
        dataset: A bundled data set whose feature count has a training circuit.
        holders: ``(address, private key)`` per node, in node order.
        workdir: The training work directory; ``node-<i>.csv`` there is what node i trains on.
        keys_dir: The zk key directory (a deployment's ``python -m zk ceremony`` output, whose
            verifiers ``twopm chain deploy --zk-keys`` deployed); the development cache when None.

    Returns:
        One commitment per holder.
    """
    from zk import TRAINING_CHUNK_SHAPES, new_salt
    from zk import commit_data as commit

    data = load_dataset(dataset)
    chunked = len(data.feature_names) in TRAINING_CHUNK_SHAPES
    keys = _keys(len(data.feature_names), keys_dir)
    workdir.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (rows, (address, key)) in enumerate(
        zip(split_rows(data, len(holders), mode="iid"), holders, strict=True)
    ):
        part = data.take(rows)
        encoded = _encode(part.x.tolist(), part.y.tolist(), len(data.feature_names))
        salt = new_salt()
        salt_path = workdir / f"holder-{i}.salt"
        fd = os.open(salt_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{salt}\n")
        root = _root(encoded, salt, chunked, keys)
        commitment_id = commit(Transactor(w3, key), deployment, root)
        out.append(
            HolderCommitment(
                address, key, workdir / f"node-{i}.csv", salt_path, commitment_id, root
            )
        )
    return out


def prove_after_publication(
    w3: Any,
    deployment: Any,
    commitments: list[HolderCommitment],
    *,
    subnet_id: int,
    version: int,
    feature_names: list[str],
    label: str,
    weights: list[float],
    intercept: float,
    keys_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Each holder proves its local sums on the CSV it trained on and submits the proof.

    ``keys_dir`` is the zk key directory the proofs are made with (as for
    :func:`commit_before_training`); the development cache when None.

    Returns:
        Per holder: ``address``, ``proving_s`` (witness + proof in the worker), ``wall_s`` (with Node
        start-up), ``submit_gas`` (every transaction: the chunks and the opening of their totals),
        ``proofs`` (chunks, or 1).

    Raises:
        contracts.ContractError: The chain refused a proof (for example the CSV is not what was
            committed).
    """
    from zk import (
        TRAINING_CHUNK_SHAPES,
        prove_training,
        prove_training_chunks,
        submit_and_open_chunks,
        submit_training_proof,
    )

    f = len(feature_names)
    keys = _keys(f, keys_dir)
    out = []
    for holder in commitments:
        started = time.perf_counter()
        data = read_node_csv(holder.csv_path, label=label, features=tuple(feature_names))
        rows = _encode(data.x.tolist(), data.y.tolist(), f)
        salt = int(holder.salt_path.read_text().strip())
        tx = Transactor(w3, holder.private_key)
        if f in TRAINING_CHUNK_SHAPES:
            chunks = prove_training_chunks(rows, salt, weights, intercept, keys)
            receipts = submit_and_open_chunks(
                tx, deployment, subnet_id, version, holder.commitment_id, chunks
            )
            proving_s = sum(c.proving_s for c in chunks)
            n_proofs = len(chunks)
        else:
            proof = prove_training(rows, salt, weights, intercept, keys)
            receipts = [
                submit_training_proof(
                    tx, deployment, subnet_id, version, holder.commitment_id, proof
                )
            ]
            proving_s = proof.proving_s
            n_proofs = 1
        out.append(
            {
                "address": holder.address,
                "proving_s": round(proving_s, 3),
                "wall_s": round(time.perf_counter() - started, 3),
                "submit_gas": sum(int(r["gasUsed"]) for r in receipts),
                "proofs": n_proofs,
            }
        )
    return out


def _encode(x: list[list[float]], y: list[float], n_features: int) -> Any:
    """A holder's rows for its training circuit: one circuit's capacity, or whole chunks."""
    from zk import TRAINING_CHUNK_SHAPES, TRAINING_SHAPES, chunk_capacity, encode_rows

    if n_features in TRAINING_CHUNK_SHAPES:
        return encode_rows(x, y, chunk_capacity(len(x), n_features))
    return encode_rows(x, y, TRAINING_SHAPES[n_features])


def _root(rows: Any, salt: int, chunked: bool, keys: Any = None) -> int:
    """The root a holder commits to: one circuit's commitment, or the last link of its chunk chain.

    ``keys`` are the circuit's keys (:func:`_keys`); the development keys when None.
    """
    from zk import chunked_data_root, data_root

    return chunked_data_root(rows, salt, keys) if chunked else data_root(rows, salt, keys)


def _keys(n_features: int, keys_dir: Path | None) -> Any:
    """The training (or chunk) circuit keys of ``n_features`` in ``keys_dir`` (dev cache when None)."""
    from zk import TRAINING_CHUNK_SHAPES, ensure_training_chunk_keys, ensure_training_keys

    if n_features in TRAINING_CHUNK_SHAPES:
        return ensure_training_chunk_keys(n_features, keys_dir)
    return ensure_training_keys(n_features, keys_dir)
