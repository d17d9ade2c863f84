"""Chunked proof of training (30 features): holders commit to the last link of a Poseidon chain over
2-row chunks, prove each chunk's sums into private running sums (a salted commitment per chunk, 5 public
signals), open the totals after the last chunk, and the chains (TrainingChunkVerifier on a real anvil,
real snarkjs proofs) and `verify_training` refuse other rows, dropped, reordered or altered chunks,
running sums that do not continue, an altered opening and bit-flipped proofs; the L2-penalised
first-order condition is what is checked."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from contracts import Anvil, Deployment, Transactor
from contracts.tx import expect_revert
from trainer import JobConfig, load_dataset, run_in_process
from trainer.publish import contributor_shares
from zk import (
    CHUNK_COUNT_BITS,
    ChunkOpening,
    ChunkProof,
    EncodedRows,
    ProverPool,
    check_chunk_chain,
    chunk_capacity,
    chunked_data_root,
    commit_data,
    commit_fields,
    encode_rows,
    ensure_training_chunk_keys,
    fixed_training_sums,
    open_chunk_totals,
    pack_chunk_sums,
    penalised_stationarity,
    prove_training_chunks,
    record_model_verifier,
    split_chunks,
    stationarity_tolerance,
    submit_and_open_chunks,
    submit_chunk_proofs,
    training_chunk_verifier_name,
    unpack_running_sums,
    verify_training,
)
from zk._training import chunk_circuit_input

ROOT = Path(__file__).resolve().parents[2]
HOLDERS = (7, 8, 9)
OWNER = 3
SALTS = (101, 202, 303)
#: Rows per holder: 6, 5 (padding in its last chunk) and 6 of the breast-cancer data (3 chunks each).
SIZES = (6, 5, 6)
C = 1.0


# ----------------------------------------------------------------------------- no chain, no Node


def test_rows_are_padded_to_whole_chunks_and_split_in_order():
    assert chunk_capacity(5, 30) == 6 and chunk_capacity(6, 30) == 6
    with pytest.raises(ValueError, match="no training chunk circuit"):
        chunk_capacity(10, 3)
    rows = encode_rows([[float(i)] * 30 for i in range(5)], [1] * 5, 6)
    chunks = split_chunks(rows)
    assert [c.n_rows for c in chunks] == [2, 2, 1]
    assert chunks[1].x[0][0] == 2 * 65536
    with pytest.raises(ValueError, match="multiple"):
        split_chunks(encode_rows([[0.0] * 30] * 5, [0] * 5, 5))


def test_packed_running_sums_of_the_most_chunks_at_the_extreme_values_unpack_exactly():
    # every feature at an end of the circuit's range (-2^35 or 2^35 - 1 at 2^16), residuals at
    # their extremes: the widest sums any chunk can add, 2^CHUNK_COUNT_BITS times, never carry
    lo, hi = -(1 << 35), (1 << 35) - 1
    weights, intercept = [0.0] * 30, 1000.0  # p ~ 1: r = -2^80 for y = 0
    chunks = [
        EncodedRows(((lo,) * 30, (hi,) * 15 + (lo,) * 15), (0, 0), (1, 1)),
        EncodedRows(((lo,) * 30, (lo,) * 30), (0, 0), (1, 1)),
        EncodedRows(((hi,) * 30, (0,) * 30), (1, 0), (1, 0)),
    ]
    k = 1 << CHUNK_COUNT_BITS
    for chunk in chunks:
        packed = [0] * 31
        for _ in range(k):
            packed = [
                a + b
                for a, b in zip(packed, pack_chunk_sums(chunk, weights, intercept), strict=True)
            ]
        assert all(0 <= v < 1 << 253 for v in packed)
        totals = unpack_running_sums(packed, k, 2)
        n, grad, sumsq = fixed_training_sums(chunk, weights, intercept)
        assert totals.n_rows == k * n
        assert totals.grad[0] * 2.0**80 == pytest.approx(k * grad[0], rel=1e-15)
        assert [g * 2.0**96 for g in totals.grad[1:]] == pytest.approx(
            [k * g for g in grad[1:]], rel=1e-15
        )
        assert [s * 2.0**32 for s in totals.sumsq] == pytest.approx(
            [k * s for s in sumsq], rel=1e-15
        )
        assert totals.sumx == pytest.approx(
            [k * sum(r[j] for r in chunk.x) / 65536.0 for j in range(30)], rel=1e-15
        )
        # a carry between slots would move a value by a whole slot (a factor >= 2^45)
        assert totals.sumsq[0] > 0 or n == 0
    with pytest.raises(ValueError, match="a chain has 1 to"):
        unpack_running_sums(packed, k + 1, 2)
    with pytest.raises(ValueError, match="wider than their slots"):
        unpack_running_sums([1 << 253, *packed[1:]], k, 2)


def test_the_penalised_condition_is_the_trainers_first_order_condition():
    # a hand-made point where g_j - m_j g_0 = s_j^2 w_j / C holds exactly
    n, m, s2, w = 10, [2.0], [3.0], [0.5]
    sumx, sumsq = [n * m[0]], [n * (s2[0] + m[0] ** 2)]
    g0 = 0.0
    grad = [g0, m[0] * g0 + s2[0] * w[0] / C]
    residual, tol = penalised_stationarity(n, grad, sumsq, sumx, w, C)
    assert residual == pytest.approx([0.0, 0.0])
    assert all(t > 0 for t in tol)
    # unpenalised, the same gradient is not stationary beyond the tolerance
    plain, plain_tol = penalised_stationarity(n, grad, sumsq, sumx, w, None)
    assert abs(plain[1]) > plain_tol[1]


# ----------------------------------------------------------------------------- real proofs


@dataclass(frozen=True)
class Holder:
    rows: EncodedRows
    salt: int
    root: int


@dataclass(frozen=True)
class Fit:
    weights: list[float]
    intercept: float
    holders: list[Holder]
    proofs: list[list[ChunkProof]]
    result: object


@pytest.fixture(scope="module")
def keys():
    return ensure_training_chunk_keys(30)


@pytest.fixture(scope="module")
def fit(keys) -> Fit:
    data = load_dataset("breast-cancer")
    # a fixed sample with both labels (the file's first rows are nearly all one label)
    rows = np.random.default_rng(0).permutation(len(data.y))[: sum(SIZES)]
    starts = np.cumsum((0, *SIZES))
    parts = [data.take(rows[a:b]) for a, b in itertools.pairwise(starts)]
    result = run_in_process(
        parts, JobConfig(tuple(data.feature_names), data.label, n_nodes=3, l2_c=C)
    )
    weights, intercept = [float(c) for c in result.coef], float(result.intercept)
    holders, proofs = [], []
    for part, salt in zip(parts, SALTS, strict=True):
        rows = encode_rows(
            part.x.tolist(), part.y.tolist(), chunk_capacity(len(part.y), len(weights))
        )
        holders.append(Holder(rows, salt, chunked_data_root(rows, salt, keys)))
        proofs.append(prove_training_chunks(rows, salt, weights, intercept, keys))
    return Fit(weights, intercept, holders, proofs, result)


def _publish(anvil: Anvil, deployment: Deployment, fit: Fit, weights, intercept, artifact=None):
    """Register and commit the holders, publish a version with its model commitment."""
    w3 = anvil.w3
    owner = Transactor(w3, anvil.accounts[OWNER].private_key)
    nodes = deployment.contract("NodeRegistry")
    ids = []
    for i, (index, holder) in enumerate(zip(HOLDERS, fit.holders, strict=True)):
        tx = Transactor(w3, anvil.accounts[index].private_key)
        if not nodes.functions.isRegistered(tx.address).call():
            tx.transact(nodes.functions.register(f"holder-{i}", f"http://127.0.0.1/{i}"))
        ids.append(commit_data(tx, deployment, holder.root))
    registry = deployment.contract("SubnetRegistry")
    receipt = owner.transact(registry.functions.createSubnet("cancer-proven", 10**12, 0, 1000))
    sid = int(registry.events.SubnetCreated().process_receipt(receipt)[0]["args"]["subnetId"])
    addrs, shares = contributor_shares(
        [
            {"operator_address": anvil.accounts[index].address, "n_rows": h.rows.n_rows, "node_id": i}
            for i, (index, h) in enumerate(zip(HOLDERS, fit.holders, strict=True))
        ]
    )  # fmt: skip
    owner.transact(
        registry.functions.publishModel(
            sid, *(artifact or (b"\x01" * 32, "file:///nowhere")), b"\x02" * 32, b"\x03" * 32, addrs,
            shares,
        )
    )  # fmt: skip
    record_model_verifier(
        deployment=deployment,
        deployer=Transactor(w3, anvil.accounts[5].private_key),
        owner=owner,
        subnet_id=sid,
        version=1,
        weights=weights,
        intercept=intercept,
    )
    return sid, 1, ids


def _tx(anvil: Anvil, i: int) -> Transactor:
    return Transactor(anvil.w3, anvil.accounts[HOLDERS[i]].private_key)


def _submit_all(anvil, deployment, sid, version, ids, proofs, first=0):
    """Holders ``first``, ``first + 1``, ... submit their chunks and open their totals."""
    for i, (cid, chunks) in enumerate(zip(ids, proofs, strict=True), start=first):
        submit_and_open_chunks(_tx(anvil, i), deployment, sid, version, cid, chunks)


def _prove_one(keys, chunk, salt, link_in, weights, intercept, acc_in, opening, salt_out):
    """One chunk proof with chosen running sums (what a cheating holder can make)."""

    async def run():
        async with ProverPool(workers=1, max_pending=1) as pool:
            return await pool._call(
                {
                    "op": "prove",
                    "wasm": str(keys.wasm),
                    "zkey": str(keys.zkey),
                    "input": chunk_circuit_input(
                        chunk, salt, link_in, weights, intercept, acc_in, opening, salt_out
                    ),
                }
            )

    answer = asyncio.run(run())
    return bytes.fromhex(str(answer["proof"])[2:]), [int(v) for v in answer["public"]]


def _front(deployment: Deployment):
    return deployment.contract(training_chunk_verifier_name(30))


@pytest.mark.slow
def test_the_chunks_sum_to_the_integer_reference_and_end_at_the_committed_root(fit):
    for holder, chunks in zip(fit.holders, fit.proofs, strict=True):
        assert len(chunks) == 3
        # only the links, the running-sums commitments and the model commitment are public
        assert all(len(c.instances) == 5 for c in chunks)
        n, grad, sumsq = fixed_training_sums(holder.rows, fit.weights, fit.intercept)
        found = check_chunk_chain(
            [(c.proof, c.instances) for c in chunks],
            30,
            holder.root,
            chunks[0].signals.model_commitment,
            lambda proof, instances: True,
            chunks[-1].opening,
        )
        assert found.ok, found.problems
        assert found.n_rows == n == holder.rows.n_rows
        assert found.grad[0] * 2.0**80 == pytest.approx(grad[0], rel=1e-9)
        assert [s * 2.0**32 for s in found.sumsq] == pytest.approx(sumsq, rel=1e-12)
        x = np.array(holder.rows.x[:n], dtype=np.float64) / 65536.0
        assert found.sumx == pytest.approx(x.sum(axis=0).tolist(), rel=1e-12, abs=1e-9)
        # against the float gradient on the float rows, within the stated tolerance
        y = np.array(holder.rows.y[:n], dtype=np.float64)
        p = 1 / (1 + np.exp(-(x @ np.array(fit.weights) + fit.intercept)))
        exact = [float(np.sum(y - p)), *(x.T @ (y - p)).tolist()]
        tol = stationarity_tolerance(n, found.sumsq, fit.weights)
        assert all(abs(a - b) <= t for a, b, t in zip(found.grad, exact, tol, strict=True))


@pytest.mark.slow
def test_an_honest_chunked_training_verifies_and_meets_the_penalised_condition(
    anvil, deployment, chain_snapshot, fit
):
    sid, version, ids = _publish(anvil, deployment, fit, fit.weights, fit.intercept)
    _submit_all(anvil, deployment, sid, version, ids, fit.proofs)
    found = verify_training(deployment, sid, weights=fit.weights, l2_c=C)
    assert found.verified, found.problems
    assert found.n_rows == sum(SIZES) and found.shares_match and found.stationary
    assert [h["chunks"] for h in found.holders] == [3, 3, 3]
    chain, complete = (
        _front(deployment)
        .functions.chainOf(sid, version, anvil.accounts[HOLDERS[1]].address)
        .call()
    )
    assert complete and chain[0] == ids[1] and chain[3] == 3
    assert chain[2] == fit.proofs[1][-1].signals.acc_out
    assert found.holders[1]["n_rows"] == SIZES[1]
    # the same proofs against the unpenalised condition: the w / C term is what makes it hold
    plain = verify_training(deployment, sid, weights=fit.weights, l2_c=None)
    assert not plain.stationary and not plain.verified


@pytest.mark.slow
def test_chunks_over_other_rows_than_committed_are_caught(
    anvil, deployment, chain_snapshot, fit, keys
):
    sid, version, ids = _publish(anvil, deployment, fit, fit.weights, fit.intercept)
    honest = fit.holders[0]
    x = [list(r) for r in honest.rows.x]
    x[3][3] += 65536  # one value of the second chunk changed after committing
    other = replace(honest.rows, x=tuple(tuple(r) for r in x))
    chunks = prove_training_chunks(other, honest.salt, fit.weights, fit.intercept, keys)
    # the first chunk's link is the same
    assert chunks[0].signals.link_out == fit.proofs[0][0].signals.link_out
    # each chunk is a valid proof and continues the chains, so the chain accepts them; it just never
    # reaches the committed root, and the totals cannot be opened
    submit_chunk_proofs(_tx(anvil, 0), deployment, sid, version, ids[0], chunks)
    call = _front(deployment).functions.openTotals(
        sid, version, chunks[-1].opening.salt, list(chunks[-1].opening.packed)
    )
    holder = anvil.accounts[HOLDERS[0]].address
    assert expect_revert(call, holder).name == "TrainingChunkChainIncomplete"
    _submit_all(anvil, deployment, sid, version, ids[1:], fit.proofs[1:], first=1)
    _, complete = (
        _front(deployment)
        .functions.chainOf(sid, version, anvil.accounts[HOLDERS[0]].address)
        .call()
    )
    assert not complete
    found = verify_training(deployment, sid, weights=fit.weights, l2_c=C)
    assert not found.verified
    assert any("does not end at the committed data root" in p for p in found.problems)


@pytest.mark.slow
def test_a_dropped_or_reordered_chunk_is_refused(anvil, deployment, chain_snapshot, fit):
    sid, version, ids = _publish(anvil, deployment, fit, fit.weights, fit.intercept)
    front = _front(deployment)
    holder = anvil.accounts[HOLDERS[0]].address
    c0, c1, c2 = fit.proofs[0]
    # reordered: a chunk other than the first cannot start a chain
    call = front.functions.submitChunk(sid, version, ids[0], c1.proof, list(c1.instances))
    assert expect_revert(call, holder).name == "TrainingChunkOutOfOrder"
    submit_chunk_proofs(_tx(anvil, 0), deployment, sid, version, ids[0], [c0])
    # dropped: chunk 2 right after chunk 0
    call = front.functions.submitChunk(sid, version, ids[0], c2.proof, list(c2.instances))
    assert expect_revert(call, holder).name == "TrainingChunkOutOfOrder"
    # the last chunk dropped: every submitted chunk is fine, the chain stops short of the root
    submit_chunk_proofs(_tx(anvil, 0), deployment, sid, version, ids[0], [c1])
    _submit_all(anvil, deployment, sid, version, ids[1:], fit.proofs[1:], first=1)
    found = verify_training(deployment, sid, weights=fit.weights, l2_c=C)
    assert not found.verified
    assert any("does not end at the committed data root" in p for p in found.problems)
    # off chain, the same walk refuses a reordered or gapped list of otherwise valid chunks
    model = c0.signals.model_commitment
    root = fit.holders[0].root
    for order in ([c0, c2, c1], [c1, c0, c2], [c0, c2]):
        walk = check_chunk_chain(
            [(c.proof, c.instances) for c in order], 30, root, model, _ok, c2.opening, _no_commit
        )
        assert not walk.ok and any("does not continue the chain" in p for p in walk.problems)


def _no_commit(values) -> int:
    return -1


@pytest.mark.slow
def test_running_sums_that_do_not_continue_the_previous_chunks_are_refused(
    anvil, deployment, chain_snapshot, fit, keys
):
    sid, version, ids = _publish(anvil, deployment, fit, fit.weights, fit.intercept)
    front = _front(deployment)
    holder = anvil.accounts[HOLDERS[0]].address
    honest = fit.holders[0]
    c0, c1, c2 = fit.proofs[0]
    first = split_chunks(honest.rows)[0]
    # a first chunk (link 0) that starts from running sums other than 0: here chunk 0's own, so the
    # totals would count it twice; a valid proof, refused because a chain starts at accumulator 0
    proof, instances = _prove_one(
        keys, first, honest.salt, 0, fit.weights, fit.intercept, c0.signals.acc_out, c0.opening, 7
    )
    assert instances[3] == 0 and instances[4] == c0.signals.acc_out
    assert front.functions.verifyProof(proof, instances).call() is True
    call = front.functions.submitChunk(sid, version, ids[0], proof, instances)
    revert = expect_revert(call, holder)
    assert revert.name == "TrainingChunkAccumulatorMismatch" and revert.arguments == (
        0,
        instances[4],
    )
    # a second run's chunk 1 (the same link, other running-sums salts) after the first run's chunk 0
    again = prove_training_chunks(honest.rows, honest.salt, fit.weights, fit.intercept, keys)
    assert again[1].signals.link_in == c1.signals.link_in
    assert again[1].signals.acc_in != c1.signals.acc_in
    submit_chunk_proofs(_tx(anvil, 0), deployment, sid, version, ids[0], [c0])
    call = front.functions.submitChunk(
        sid, version, ids[0], again[1].proof, list(again[1].instances)
    )
    revert = expect_revert(call, holder)
    assert revert.name == "TrainingChunkAccumulatorMismatch"
    assert revert.arguments == (c0.signals.acc_out, again[1].signals.acc_in)
    # the off-chain walk refuses the same mixes
    model, root = c0.signals.model_commitment, honest.root
    for chunks in ([(proof, instances), (c1.proof, c1.instances), (c2.proof, c2.instances)],
                   [(c0.proof, c0.instances), (again[1].proof, again[1].instances),
                    (again[2].proof, again[2].instances)]):  # fmt: skip
        walk = check_chunk_chain(chunks, 30, root, model, _ok, again[2].opening, _no_commit)
        assert not walk.ok
        assert any("running sums do not continue" in p for p in walk.problems)


def _ok(proof: bytes, instances: list[int]) -> bool:
    return True


@pytest.mark.slow
def test_an_altered_partial_sum_or_a_flipped_proof_bit_is_refused(
    anvil, deployment, chain_snapshot, fit
):
    sid, version, ids = _publish(anvil, deployment, fit, fit.weights, fit.intercept)
    front = _front(deployment)
    holder = anvil.accounts[HOLDERS[0]].address
    good = fit.proofs[0][0]
    assert front.functions.verifyProof(good.proof, list(good.instances)).call() is True
    # every public signal: linkOut, accOut, model commitment, linkIn, accIn
    expected = ("TrainingChunkInvalid", "TrainingChunkInvalid", "TrainingChunkWrongModel",
                "TrainingChunkOutOfOrder", "TrainingChunkAccumulatorMismatch")  # fmt: skip
    for index, name in enumerate(expected):
        lied = list(good.instances)
        lied[index] = (lied[index] + 1) % (1 << 254)
        assert front.functions.verifyProof(good.proof, lied).call() is False
        call = front.functions.submitChunk(sid, version, ids[0], good.proof, lied)
        assert expect_revert(call, holder).name == name
    flipped = bytearray(good.proof)
    flipped[40] ^= 1
    call = front.functions.submitChunk(sid, version, ids[0], bytes(flipped), list(good.instances))
    assert expect_revert(call, holder).name == "TrainingChunkInvalid"
    # the verifier's own walk re-checks each recorded proof through eth_call
    walk = check_chunk_chain(
        [(bytes(flipped), good.instances)],
        30,
        good.signals.link_out,
        good.signals.model_commitment,
        lambda proof, instances: front.functions.verifyProof(proof, instances).call(),
        good.opening,
    )
    assert not walk.ok and any("does not verify" in p for p in walk.problems)


@pytest.mark.slow
def test_an_altered_opening_of_the_totals_is_refused(anvil, deployment, chain_snapshot, fit):
    sid, version, ids = _publish(anvil, deployment, fit, fit.weights, fit.intercept)
    front = _front(deployment)
    holder = anvil.accounts[HOLDERS[0]].address
    _submit_all(anvil, deployment, sid, version, ids, fit.proofs)
    assert verify_training(deployment, sid, weights=fit.weights, l2_c=C).verified
    honest = fit.proofs[0][-1].opening
    assert commit_fields([honest.salt, *honest.packed]) == fit.proofs[0][-1].signals.acc_out
    call = front.functions.openTotals(sid, version, honest.salt, list(honest.packed[:-1]))
    assert expect_revert(call, holder).name == "TrainingChunkBadOpening"
    # one more row, a larger intercept gradient, another salt: recorded (the contract does not
    # hash), refused by the verifier's recompute; the latest opening is the one that counts
    for lied in (
        ChunkOpening(honest.salt, (honest.packed[0] + 1, *honest.packed[1:])),
        ChunkOpening(honest.salt, (honest.packed[0] + (1 << 100), *honest.packed[1:])),
        ChunkOpening(honest.salt + 1, honest.packed),
    ):
        open_chunk_totals(_tx(anvil, 0), deployment, sid, version, 30, lied)
        found = verify_training(deployment, sid, weights=fit.weights, l2_c=C)
        assert not found.verified
        assert any("do not match the last running-sums commitment" in p for p in found.problems)
    open_chunk_totals(_tx(anvil, 0), deployment, sid, version, 30, honest)
    assert verify_training(deployment, sid, weights=fit.weights, l2_c=C).verified


@pytest.mark.slow
def test_someone_elses_commitment_a_non_contributor_and_other_parameters_are_refused(
    anvil, deployment, chain_snapshot, fit, keys
):
    sid, version, ids = _publish(anvil, deployment, fit, fit.weights, fit.intercept)
    front = _front(deployment)
    good = fit.proofs[0][0]
    holder0, holder1 = (anvil.accounts[i].address for i in HOLDERS[:2])
    call = front.functions.submitChunk(sid, version, ids[0], good.proof, list(good.instances))
    assert expect_revert(call, holder1).name == "TrainingChunkNotYourCommitment"
    assert expect_revert(call, anvil.accounts[OWNER].address).name == "TrainingChunkNotContributor"
    first = split_chunks(fit.holders[0].rows)[0]
    other = prove_training_chunks(
        first, fit.holders[0].salt, [w * 1.01 for w in fit.weights], fit.intercept, keys
    )[0]
    call = front.functions.submitChunk(sid, version, ids[0], other.proof, list(other.instances))
    assert expect_revert(call, holder0).name == "TrainingChunkWrongModel"
    # a non-contributor has no chain to open
    call = front.functions.openTotals(sid, version, 1, [0] * 31)
    assert expect_revert(call, anvil.accounts[OWNER].address).name == "TrainingChunkChainIncomplete"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients", "verify", "training", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_twopm_verify_training_checks_a_chunked_30_feature_subnet(
    anvil, deployment, chain_snapshot, fit, tmp_path
):
    from trainer.bundle import result_to_card, write_bundle

    card = result_to_card(fit.result, secure=False)
    assert card["penalty"] == {"type": "l2", "C": C, "on": card["penalty"]["on"]}
    written = write_bundle(card, tmp_path / "store")
    artifact = (bytes.fromhex(written.sha256), Path(written.path).resolve().as_uri())
    deployment.write(tmp_path / "deployment.json")
    net = ["--rpc-url", anvil.rpc_url, "--deployment-file", str(tmp_path / "deployment.json")]
    sid, version, ids = _publish(
        anvil, deployment, fit, fit.weights, fit.intercept, artifact=artifact
    )
    _submit_all(anvil, deployment, sid, version, ids[:2], fit.proofs[:2])
    partial = _cli("--subnet", str(sid), *net, cwd=tmp_path)
    assert partial.returncode == 1, partial.stdout + partial.stderr
    assert "no training proof" in partial.stderr
    _submit_all(anvil, deployment, sid, version, ids[2:], fit.proofs[2:], first=2)
    whole = _cli("--subnet", str(sid), "--json", *net, cwd=tmp_path)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    report = json.loads(whole.stdout)
    assert report["verified"] is True and report["penalty_c"] == C
    assert [h["chunks"] for h in report["holders"]] == [3, 3, 3]


@pytest.mark.slow
def test_the_committed_chunk_verifier_is_the_one_the_cached_keys_export(keys):
    committed = ROOT / "contracts" / "src" / "zk" / keys.solidity.name
    assert committed.read_text() == keys.solidity.read_text(), (
        "run: python -m zk setup --write-verifiers && npm run build:contracts"
    )
    assert "DEVELOPMENT KEYS" in committed.read_text()
