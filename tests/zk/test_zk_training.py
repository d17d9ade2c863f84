"""Proof of training: holders commit to rows, prove their local sums at the published model, and the chain
(TrainingProofVerifier on a real anvil) refuses rows other than the committed ones; `verify_training` and
`twopm verify training` check shares and stationarity, and fail when they do not hold."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from contracts import Anvil, Deployment, Transactor
from contracts.tx import expect_revert
from trainer import JobConfig, load_dataset, run_in_process, split_rows
from trainer.publish import contributor_shares
from zk import (
    SIGMOID_ERROR,
    TRAINING_SHAPES,
    EncodedRows,
    FixedPointRangeError,
    TrainingProof,
    commit_data,
    data_root,
    encode_rows,
    ensure_training_keys,
    fixed_training_sums,
    prove_training,
    record_model_verifier,
    stationarity_tolerance,
    submit_training_proof,
    training_proof_verifier_name,
    verify_training,
)
from zk._training import SIGMOID_TABLE_ERROR, fixed_sigmoid, shares_from_rows, sigmoid_table

ROOT = Path(__file__).resolve().parents[2]
HOLDERS = (7, 8, 9)
OWNER = 3
SALTS = (11, 22, 33)


# ----------------------------------------------------------------------------- no chain, no Node


def test_the_sigmoid_table_error_bound_holds_for_every_input_of_the_circuit():
    table = np.array(sigmoid_table(), dtype=np.float64) / 2.0**32
    v = np.arange(1 << 21, dtype=np.float64)
    seg, u = (v // 65536).astype(int), (v % 65536) / 65536.0
    approx = table[0][seg] + table[1][seg] * u + table[2][seg] * u**2 + table[3][seg] * u**3
    exact = 1.0 / (1.0 + np.exp(-((v - 2**20) / 65536.0)))
    assert np.max(np.abs(approx - exact)) <= SIGMOID_TABLE_ERROR
    # the integer evaluation is the float one, and clamping holds outside [-16, 16)
    for t in (-(1 << 40), -(1 << 20) - 1, -5, 0, 123_456, (1 << 20) - 1, 1 << 20, 1 << 50):
        eta = t / 65536.0
        assert abs(fixed_sigmoid(t) / 2.0**80 - 0.5 * (1 + math.tanh(eta / 2))) <= SIGMOID_ERROR


def test_rows_outside_the_circuit_are_refused_before_proving():
    with pytest.raises(ValueError, match="do not fit"):
        encode_rows([[1.0, 2.0, 3.0]] * 17, [0] * 17, 16)
    with pytest.raises(ValueError, match="label"):
        encode_rows([[1.0, 2.0, 3.0]], [2], 16)
    with pytest.raises(FixedPointRangeError, match="outside"):
        encode_rows([[1.0, 9000.0, 3.0]], [1], 16)
    with pytest.raises(FixedPointRangeError):
        encode_rows([[1.0, float("nan"), 3.0]], [1], 16)
    with pytest.raises(ValueError, match="labels"):
        encode_rows([[1.0, 2.0, 3.0]], [1, 0], 16)


def test_the_shares_rule_is_the_publishers():
    rows = {
        "0x00000000000000000000000000000000000000aA": 11,
        "0x00000000000000000000000000000000000000bB": 11,
        "0x00000000000000000000000000000000000000cC": 10,
        "0x00000000000000000000000000000000000000dD": 1,
    }
    addrs, shares = contributor_shares(
        [
            {"operator_address": a, "n_rows": n, "node_id": i}
            for i, (a, n) in enumerate(rows.items())
        ]
    )
    assert shares_from_rows(dict(zip(addrs, (rows[a] for a in rows), strict=True))) == dict(
        zip(addrs, shares, strict=True)
    )


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
    proofs: list[TrainingProof]
    result: object


def _spector_fit() -> tuple[list[float], float, list, object]:
    data = load_dataset("spector")
    parts = [data.take(r) for r in split_rows(data, 3, mode="iid")]
    result = run_in_process(parts, JobConfig(tuple(data.feature_names), data.label, n_nodes=3))
    return [float(c) for c in result.coef], float(result.intercept), parts, result


@pytest.fixture(scope="module")
def keys():
    return ensure_training_keys(3)


@pytest.fixture(scope="module")
def fit(keys) -> Fit:
    weights, intercept, parts, result = _spector_fit()
    holders, proofs = [], []
    for part, salt in zip(parts, SALTS, strict=True):
        rows = encode_rows(part.x.tolist(), part.y.tolist(), TRAINING_SHAPES[3])
        holders.append(Holder(rows, salt, data_root(rows, salt, keys)))
        proofs.append(prove_training(rows, salt, weights, intercept, keys))
    return Fit(weights, intercept, holders, proofs, result)


def _publish(
    anvil: Anvil, deployment: Deployment, fit: Fit, weights, intercept, shares=None, artifact=None
):
    """Register and commit the holders, publish a version with its model commitment; (subnet, version)."""
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
    receipt = owner.transact(registry.functions.createSubnet("spector-proven", 10**12, 0, 1000))
    sid = int(registry.events.SubnetCreated().process_receipt(receipt)[0]["args"]["subnetId"])
    addrs, computed = contributor_shares(
        [
            {
                "operator_address": anvil.accounts[index].address,
                "n_rows": h.rows.n_rows,
                "node_id": i,
            }
            for i, (index, h) in enumerate(zip(HOLDERS, fit.holders, strict=True))
        ]
    )
    owner.transact(
        registry.functions.publishModel(
            sid, *(artifact or (b"\x01" * 32, "file:///nowhere")), b"\x02" * 32, b"\x03" * 32, addrs,
            shares or computed,
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


def _submit_all(anvil, deployment, sid, version, ids, proofs, holders=HOLDERS):
    for index, cid, proof in zip(holders, ids, proofs, strict=True):
        submit_training_proof(
            Transactor(anvil.w3, anvil.accounts[index].private_key),
            deployment,
            sid,
            version,
            cid,
            proof,
        )


def _front(deployment: Deployment):
    return deployment.contract(training_proof_verifier_name(3))


@pytest.mark.slow
def test_the_circuit_computes_the_integer_reference_and_the_float_gradient(fit):
    for holder, proof in zip(fit.holders, fit.proofs, strict=True):
        n, grad, sumsq = fixed_training_sums(holder.rows, fit.weights, fit.intercept)
        sums = proof.sums
        assert sums.n_rows == n == holder.rows.n_rows
        assert sums.data_root == holder.root
        assert sums.grad[0] * 2.0**80 == pytest.approx(grad[0], rel=1e-12)
        assert [s * 2.0**32 for s in sums.sumsq] == pytest.approx(sumsq, rel=1e-12)
        # against the float gradient on the float rows, within the stated tolerance
        x = np.array(holder.rows.x[: holder.rows.n_rows], dtype=np.float64) / 65536.0
        y = np.array(holder.rows.y[: holder.rows.n_rows], dtype=np.float64)
        p = 1 / (1 + np.exp(-(x @ np.array(fit.weights) + fit.intercept)))
        exact = [float(np.sum(y - p)), *(x.T @ (y - p)).tolist()]
        tol = stationarity_tolerance(n, sums.sumsq, fit.weights)
        assert all(abs(a - b) <= t for a, b, t in zip(sums.grad, exact, tol, strict=True))
    assert max(p.proving_s for p in fit.proofs) < 120  # minutes, not hours (not a timing assertion)


@pytest.mark.slow
def test_an_honest_training_verifies_on_chain_and_is_stationary(
    anvil, deployment, chain_snapshot, fit
):
    sid, version, ids = _publish(anvil, deployment, fit, fit.weights, fit.intercept)
    _submit_all(anvil, deployment, sid, version, ids, fit.proofs)
    found = verify_training(deployment, sid, weights=fit.weights)
    assert found.verified, found.problems
    assert found.n_rows == 32 and found.shares_match and found.stationary
    assert len(found.holders) == 3 and all(h["proof_verified_on_chain"] for h in found.holders)
    assert found.max_abs_gradient is not None
    assert found.max_abs_gradient <= max(found.tolerance)
    recorded = _front(deployment).functions.provenOf(
        sid, version, anvil.accounts[HOLDERS[0]].address
    )
    assert recorded.call()[0] == ids[0]


@pytest.mark.slow
def test_a_proof_over_rows_other_than_the_committed_ones_is_refused_on_chain(
    anvil, deployment, chain_snapshot, fit, keys
):
    sid, version, ids = _publish(anvil, deployment, fit, fit.weights, fit.intercept)
    honest = fit.holders[0]
    # the holder changes one value after committing (and proves honestly over the changed rows)
    x = [list(r) for r in honest.rows.x]
    x[0][1] += 65536
    other = replace(honest.rows, x=tuple(tuple(r) for r in x))
    proof = prove_training(other, honest.salt, fit.weights, fit.intercept, keys)
    front = _front(deployment)
    holder = anvil.accounts[HOLDERS[0]].address
    call = front.functions.submit(sid, version, ids[0], proof.proof, list(proof.instances))
    assert expect_revert(call, holder).name == "TrainingProofWrongDataRoot"
    # the same with a row dropped (a lie about the row count)
    dropped = replace(
        honest.rows,
        x=(*honest.rows.x[1:], honest.rows.x[0]),
        y=(*honest.rows.y[1:], 0),
        present=(*honest.rows.present[1:], 0),
    )
    dropped = replace(dropped, x=(*dropped.x[:-1], (0, 0, 0)))
    proof = prove_training(dropped, honest.salt, fit.weights, fit.intercept, keys)
    assert proof.sums.n_rows == honest.rows.n_rows - 1
    call = front.functions.submit(sid, version, ids[0], proof.proof, list(proof.instances))
    assert expect_revert(call, holder).name == "TrainingProofWrongDataRoot"


@pytest.mark.slow
def test_a_holder_lying_about_its_sums_is_refused(anvil, deployment, chain_snapshot, fit):
    sid, version, ids = _publish(anvil, deployment, fit, fit.weights, fit.intercept)
    front = _front(deployment)
    holder = anvil.accounts[HOLDERS[0]].address
    good = fit.proofs[0]
    assert front.functions.verifyProof(good.proof, list(good.instances)).call() is True
    for index in (0, 1, 3, 4):  # n, the intercept gradient, a feature gradient, a sum of squares
        lied = list(good.instances)
        lied[index] = (lied[index] + 1) % (1 << 254)
        assert front.functions.verifyProof(good.proof, lied).call() is False
        call = front.functions.submit(sid, version, ids[0], good.proof, lied)
        assert expect_revert(call, holder).name == "TrainingProofInvalid"
    flipped = bytearray(good.proof)
    flipped[40] ^= 1
    call = front.functions.submit(sid, version, ids[0], bytes(flipped), list(good.instances))
    assert expect_revert(call, holder).name == "TrainingProofInvalid"


@pytest.mark.slow
def test_someone_elses_commitment_a_non_contributor_and_other_parameters_are_refused(
    anvil, deployment, chain_snapshot, fit, keys
):
    sid, version, ids = _publish(anvil, deployment, fit, fit.weights, fit.intercept)
    front = _front(deployment)
    good = fit.proofs[0]
    holder0, holder1 = (anvil.accounts[i].address for i in HOLDERS[:2])
    call = front.functions.submit(sid, version, ids[0], good.proof, list(good.instances))
    assert expect_revert(call, holder1).name == "TrainingProofNotYourCommitment"
    outsider = anvil.accounts[OWNER].address
    assert expect_revert(call, outsider).name == "TrainingProofNotContributor"
    # a proof at other coefficients than the version's commitment
    other = prove_training(
        fit.holders[0].rows,
        fit.holders[0].salt,
        [w * 1.01 for w in fit.weights],
        fit.intercept,
        keys,
    )
    call = front.functions.submit(sid, version, ids[0], other.proof, list(other.instances))
    assert expect_revert(call, holder0).name == "TrainingProofWrongModel"
    # a commitment made after publication
    anvil.w3.provider.make_request("evm_increaseTime", [60])
    late = commit_data(
        Transactor(anvil.w3, anvil.accounts[HOLDERS[0]].private_key),
        deployment,
        fit.holders[0].root,
    )
    call = front.functions.submit(sid, version, late, good.proof, list(good.instances))
    assert expect_revert(call, holder0).name == "TrainingProofCommitmentTooLate"


@pytest.mark.slow
def test_stationarity_fails_for_coefficients_that_are_not_the_fit(
    anvil, deployment, chain_snapshot, fit, keys
):
    weights = [fit.weights[0], fit.weights[1] * 1.01, fit.weights[2]]
    sid, version, ids = _publish(anvil, deployment, fit, weights, fit.intercept)
    proofs = [prove_training(h.rows, h.salt, weights, fit.intercept, keys) for h in fit.holders]
    _submit_all(anvil, deployment, sid, version, ids, proofs)
    found = verify_training(deployment, sid, weights=weights)
    assert all(h["proof_verified_on_chain"] for h in found.holders) and found.shares_match
    assert not found.stationary and not found.verified
    assert any("not within the tolerance" in p for p in found.problems)


@pytest.mark.slow
def test_row_counts_that_do_not_give_the_published_shares_fail(
    anvil, deployment, chain_snapshot, fit
):
    sid, version, ids = _publish(
        anvil, deployment, fit, fit.weights, fit.intercept, shares=[5000, 3000, 2000]
    )
    _submit_all(anvil, deployment, sid, version, ids, fit.proofs)
    found = verify_training(deployment, sid, weights=fit.weights)
    assert found.stationary and not found.shares_match and not found.verified


@pytest.mark.slow
def test_a_missing_holder_proof_fails_verification(anvil, deployment, chain_snapshot, fit):
    sid, version, ids = _publish(anvil, deployment, fit, fit.weights, fit.intercept)
    _submit_all(anvil, deployment, sid, version, ids[:2], fit.proofs[:2], HOLDERS[:2])
    found = verify_training(deployment, sid, weights=fit.weights)
    assert not found.verified
    assert any("no training proof" in p for p in found.problems)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients", "verify", "training", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_twopm_verify_training_exits_0_only_when_everything_holds(
    anvil, deployment, chain_snapshot, fit, tmp_path
):
    from trainer.bundle import result_to_card, write_bundle

    written = write_bundle(result_to_card(fit.result, secure=False), tmp_path / "store")
    artifact = (bytes.fromhex(written.sha256), Path(written.path).resolve().as_uri())
    deployment.write(tmp_path / "deployment.json")
    net = ["--rpc-url", anvil.rpc_url, "--deployment-file", str(tmp_path / "deployment.json")]
    sid, version, ids = _publish(
        anvil, deployment, fit, fit.weights, fit.intercept, artifact=artifact
    )
    _submit_all(anvil, deployment, sid, version, ids[:2], fit.proofs[:2], HOLDERS[:2])
    partial = _cli("--subnet", str(sid), *net, cwd=tmp_path)
    assert partial.returncode == 1, partial.stdout + partial.stderr
    assert "no training proof" in partial.stderr
    _submit_all(anvil, deployment, sid, version, ids[2:], fit.proofs[2:], HOLDERS[2:])
    whole = _cli("--subnet", str(sid), "--json", *net, cwd=tmp_path)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    report = json.loads(whole.stdout)
    assert report["verified"] is True and len(report["holders"]) == 3
    assert report["max_abs_gradient"] < max(report["tolerance"])
    unknown = _cli("--subnet", "999", *net, cwd=tmp_path)
    assert unknown.returncode != 0 and unknown.stderr.strip().count("\n") == 0
    nochain = _cli("--subnet", "1", cwd=tmp_path)
    assert nochain.returncode != 0 and "no chain" in nochain.stderr


@pytest.mark.slow
def test_the_committed_training_verifier_is_the_one_the_cached_keys_export(keys):
    committed = ROOT / "contracts" / "src" / "zk" / keys.solidity.name
    assert committed.read_text() == keys.solidity.read_text(), (
        "run: python -m zk setup --write-verifiers && npm run build:contracts"
    )
    assert "DEVELOPMENT KEYS" in committed.read_text()
