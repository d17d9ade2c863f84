"""Real Groth16 proofs (snarkjs in Node workers) checked by the deployed verifiers on a real anvil."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from contracts import Anvil, Deployment, Transactor
from contracts.tx import expect_revert
from zk import (
    PROOF_BYTES,
    FixedPointRangeError,
    LogitProof,
    ProofError,
    ProverBusy,
    ProverPool,
    check_on_chain,
    decode_logit,
    deploy_model_verifier,
    encode_features,
    encode_model,
    fixed_logit,
    inputs_hash,
    model_commitment,
    to_field,
)

pytestmark = pytest.mark.slow

ZERO = "0x" + "00" * 20

W3 = (0.8, -1.25, 0.031)
B3 = -3.5
ROW3 = (2.66, 20.0, -0.5)


def prove(keys, weights, intercept, row) -> LogitProof:
    async def run() -> LogitProof:
        async with ProverPool(workers=1, max_pending=2) as pool:
            return await pool.prove(keys, weights, intercept, row)

    return asyncio.run(run())


@pytest.fixture
def verifier3(anvil: Anvil, deployment: Deployment, chain_snapshot: None, keys3) -> str:
    commitment = model_commitment(keys3, W3, B3)
    return deploy_model_verifier(
        Transactor(anvil.w3, anvil.accounts[5].private_key), deployment, 3, commitment
    )


def test_a_real_proof_verifies_on_anvil_through_the_version_verifier(anvil, verifier3, keys3):
    proof = prove(keys3, W3, B3, ROW3)
    assert len(proof.proof) == PROOF_BYTES and len(proof.instances) == 3
    w, b = encode_model(W3, B3)
    x = encode_features(ROW3)
    assert proof.instances[0] == to_field(fixed_logit(w, b, x))
    # The features are private; the proof carries their Poseidon hash, which the client recomputes.
    assert proof.inputs_hash == inputs_hash(ROW3)
    assert inputs_hash((2.67, 20.0, -0.5)) != proof.inputs_hash
    assert abs(proof.logit - (np.dot(W3, ROW3) + B3)) < 1e-3
    sender = Transactor(anvil.w3, anvil.accounts[6].private_key)
    check = check_on_chain(anvil.w3, verifier3, proof.proof, proof.instances, sender=sender)
    assert check.verified is True
    assert check.gas is not None and 150_000 < check.gas < 300_000


@pytest.mark.parametrize(
    ("engine", "single_thread", "msm_threads"),
    [
        ("fixed-base", True, 1),
        ("fixed-base", True, 2),
        ("prepared", True, 1),
        ("prepared", False, 1),
        ("snarkjs", False, 1),
    ],
)
def test_every_proving_engine_makes_proofs_the_chain_accepts(
    anvil, verifier3, keys3, engine, single_thread, msm_threads
):
    async def run() -> tuple[list[dict[str, object]], list[LogitProof]]:
        async with ProverPool(
            workers=1,
            max_pending=2,
            engine=engine,
            single_thread=single_thread,
            msm_threads=msm_threads,
        ) as pool:
            prepared = await pool.prepare(keys3)
            # Two proofs: the second one reuses what the first (or prepare) loaded.
            proofs = [await pool.prove(keys3, W3, B3, row) for row in (ROW3, (1.0, 2.0, 3.0))]
            return prepared, proofs

    prepared, proofs = asyncio.run(run())
    assert prepared[0]["fixed_base"] is (engine == "fixed-base")
    sender = Transactor(anvil.w3, anvil.accounts[6].private_key)
    for proof, row in zip(proofs, (ROW3, (1.0, 2.0, 3.0)), strict=True):
        assert proof.inputs_hash == inputs_hash(row)
        assert proof.cpu_s > 0
        check = check_on_chain(anvil.w3, verifier3, proof.proof, proof.instances, sender=sender)
        assert check.verified is True
        bad = bytearray(proof.proof)
        bad[40] ^= 1
        assert not check_on_chain(anvil.w3, verifier3, bytes(bad), proof.instances).verified
    # Groth16 proofs are randomised: two proofs of one statement differ.
    assert proofs[0].proof != prove(keys3, W3, B3, ROW3).proof


def test_loading_keys_takes_no_place_in_the_bounded_queue(keys3):
    async def run() -> tuple[int, LogitProof, list[dict[str, object]]]:
        async with ProverPool(workers=1, max_pending=1) as pool:
            loading = asyncio.create_task(pool.prepare(keys3))
            await asyncio.sleep(0.2)
            pending = pool.pending
            proof = await pool.prove(keys3, W3, B3, ROW3)  # waits for the worker, not refused
            return pending, proof, await loading

    pending, proof, prepared = asyncio.run(run())
    assert pending == 0
    assert prepared[0]["fixed_base"] is True and float(str(prepared[0]["prepare_s"])) > 0
    assert len(proof.proof) == PROOF_BYTES


def test_an_unknown_engine_bad_msm_threads_or_fixed_base_with_threads_are_refused(keys3):
    with pytest.raises(ValueError, match="engine"):
        ProverPool(engine="rapid")
    with pytest.raises(ValueError, match="msm_threads"):
        ProverPool(msm_threads=0)

    async def run() -> None:
        async with ProverPool(engine="fixed-base", single_thread=False) as pool:
            await pool.prove(keys3, W3, B3, ROW3)

    with pytest.raises(ProofError, match="fixed-base needs single_thread"):
        asyncio.run(run())


def test_a_proof_with_one_bit_flipped_is_refused_with_bounded_gas(anvil, verifier3, keys3):
    proof = prove(keys3, W3, B3, ROW3)
    for byte in (0, 31, 100, 255):  # a's x, a's low byte, inside b, c's low byte
        tampered = bytearray(proof.proof)
        tampered[byte] ^= 0x01
        sender = Transactor(anvil.w3, anvil.accounts[6].private_key)
        check = check_on_chain(anvil.w3, verifier3, bytes(tampered), proof.instances, sender=sender)
        assert check.verified is False
        assert check.gas is not None and check.gas < 500_000  # the adapter bounds the burn


def test_a_proof_for_other_inputs_or_another_logit_is_refused(anvil, verifier3, keys3):
    proof = prove(keys3, W3, B3, ROW3)
    other_x = list(proof.instances)
    other_x[2] = inputs_hash((2.67, 20.0, -0.5))  # another row's hash
    assert not check_on_chain(anvil.w3, verifier3, proof.proof, other_x).verified
    other_x[2] = proof.inputs_hash + 1
    assert not check_on_chain(anvil.w3, verifier3, proof.proof, other_x).verified
    # Instances of the old, features-public layout are refused (wrong length) before the pairing.
    longer = [*proof.instances, 0]
    assert not check_on_chain(anvil.w3, verifier3, proof.proof, longer).verified
    other_logit = list(proof.instances)
    other_logit[0] = (other_logit[0] + 1) % (1 << 254)
    assert not check_on_chain(anvil.w3, verifier3, proof.proof, other_logit).verified
    assert not check_on_chain(anvil.w3, verifier3, proof.proof, proof.instances[:-1]).verified
    assert not check_on_chain(anvil.w3, verifier3, proof.proof[:-1], proof.instances).verified


def test_a_proof_for_another_model_version_is_refused(anvil, deployment, verifier3, keys3):
    other = prove(keys3, (0.8, -1.25, 0.032), B3, ROW3)  # one weight differs in the 3rd decimal
    assert not check_on_chain(anvil.w3, verifier3, other.proof, other.instances).verified
    other_verifier = deploy_model_verifier(
        Transactor(anvil.w3, anvil.accounts[5].private_key),
        deployment,
        3,
        other.model_commitment,
    )
    assert check_on_chain(anvil.w3, other_verifier, other.proof, other.instances).verified
    mine = prove(keys3, W3, B3, ROW3)
    assert not check_on_chain(anvil.w3, other_verifier, mine.proof, mine.instances).verified


def test_the_30_feature_circuit_proves_a_logit_the_chain_accepts(
    anvil, deployment, chain_snapshot, keys30
):
    rng = np.random.default_rng(7)
    weights = rng.normal(0, 2, 30)
    intercept = 0.37
    row = rng.normal(0, 50, 30)
    proof = prove(keys30, weights, intercept, row)
    assert abs(proof.logit - (weights @ row + intercept)) < 1e-2
    verifier = deploy_model_verifier(
        Transactor(anvil.w3, anvil.accounts[5].private_key), deployment, 30, proof.model_commitment
    )
    sender = Transactor(anvil.w3, anvil.accounts[6].private_key)
    check = check_on_chain(anvil.w3, verifier, proof.proof, proof.instances, sender=sender)
    # Three public signals whatever F is: the goal is <= 250k (429k with the features public).
    assert check.verified and check.gas is not None and check.gas <= 250_000
    assert proof.inputs_hash == inputs_hash(row)


def test_the_adapter_refuses_a_groth16_verifier_without_code_or_a_zero_commitment(
    anvil, deployment
):
    sender = Transactor(anvil.w3, anvil.accounts[5].private_key)
    groth16 = deployment.addresses["LogitGroth16Verifier3"]
    with pytest.raises(Exception, match="LogitProofVerifierInvalidSetup"):
        sender.deploy("LogitProofVerifier", groth16, 3, 0)
    with pytest.raises(Exception, match="LogitProofVerifierInvalidSetup"):
        sender.deploy("LogitProofVerifier", anvil.accounts[6].address, 3, 1)
    assert expect_revert  # imported for symmetry with the contract suites


def test_features_outside_the_fixed_point_range_are_refused_before_proving(keys3):
    with pytest.raises(FixedPointRangeError, match="feature 1"):
        prove(keys3, W3, B3, (1.0, 2.0**24, 0.0))
    with pytest.raises(FixedPointRangeError, match="not finite"):
        prove(keys3, W3, B3, (1.0, float("nan"), 0.0))
    with pytest.raises(ValueError, match="expected 3 features"):
        prove(keys3, W3, B3, (1.0, 2.0))


def test_the_circuit_itself_refuses_a_feature_outside_its_range(keys3):
    """A prover that skips the Python check still cannot prove an out-of-range feature."""
    from zk._prover import circuit_input

    payload = circuit_input(W3, B3, ROW3)
    payload["x"][0] = str(1 << 50)  # X_BITS = 49 signed: |x| < 2^48

    async def run() -> None:
        async with ProverPool() as pool:
            await pool._call(
                {"op": "prove", "wasm": str(keys3.wasm), "zkey": str(keys3.zkey), "input": payload}
            )

    with pytest.raises(ProofError, match="prover:"):
        asyncio.run(run())


def test_a_full_queue_refuses_at_once_with_prover_busy(keys3):
    async def run() -> tuple[list[object], int]:
        async with ProverPool(workers=1, max_pending=2) as pool:
            jobs = [asyncio.create_task(pool.prove(keys3, W3, B3, ROW3)) for _ in range(3)]
            results = await asyncio.gather(*jobs, return_exceptions=True)
            return results, pool.pending

    results, pending = asyncio.run(run())
    assert sum(isinstance(r, ProverBusy) for r in results) == 1
    assert sum(isinstance(r, LogitProof) for r in results) == 2
    assert pending == 0


def test_decode_logit_reads_negative_field_elements(keys3):
    assert decode_logit(to_field(-(3 << 56))) == -3.0
    assert Path(keys3.zkey).exists()


def test_a_worker_that_dies_fails_its_proof_and_is_replaced(keys3):
    async def run() -> tuple[str, LogitProof]:
        async with ProverPool(workers=1, max_pending=2) as pool:
            pool._all[0].process.kill()
            try:
                await pool.prove(keys3, W3, B3, ROW3)
            except ProofError as exc:
                message = str(exc)
            else:  # pragma: no cover - the test fails below
                message = ""
            return message, await pool.prove(keys3, W3, B3, ROW3)

    message, proof = asyncio.run(run())
    assert "exited" in message or "failed" in message
    assert len(proof.proof) == PROOF_BYTES


def test_the_version_router_routes_by_the_commitment_position_and_refuses_the_rest(
    anvil, deployment, verifier3, keys3
):
    sender = Transactor(anvil.w3, anvil.accounts[5].private_key)
    proof = prove(keys3, W3, B3, ROW3)
    commitment = proof.model_commitment
    no_batch = sender.deploy("ModelProofVerifier", verifier3, ZERO, commitment).address
    assert check_on_chain(anvil.w3, no_batch, proof.proof, proof.instances).verified
    # Commitment in the batch position with no batch verifier, in neither position, or 4 signals.
    as_batch = [proof.instances[2], proof.instances[0], commitment]
    assert not check_on_chain(anvil.w3, no_batch, proof.proof, as_batch).verified
    nowhere = [proof.instances[0], commitment + 1, proof.instances[2]]
    assert not check_on_chain(anvil.w3, no_batch, proof.proof, nowhere).verified
    assert not check_on_chain(anvil.w3, no_batch, proof.proof, [*proof.instances, 0]).verified
    with pytest.raises(Exception, match="ModelProofVerifierInvalidSetup"):
        sender.deploy("ModelProofVerifier", verifier3, ZERO, 0)
    with pytest.raises(Exception, match="ModelProofVerifierInvalidSetup"):
        sender.deploy("ModelProofVerifier", anvil.accounts[6].address, ZERO, commitment)
    with pytest.raises(Exception, match="ModelProofVerifierInvalidSetup"):
        sender.deploy("ModelProofVerifier", verifier3, anvil.accounts[6].address, commitment)
