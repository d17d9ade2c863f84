"""Batched proofs: 24 rows of one request in one Groth16 proof, checked on a real anvil through the version's
BatchProofVerifier, with the client recomputing both Poseidon hashes."""

from __future__ import annotations

import pytest

from contracts import Anvil, Deployment, Transactor
from trainer import load_dataset
from zk import (
    BATCH_ROWS,
    batch_hashes,
    check_on_chain,
    deploy_batch_verifier,
    encode_features,
    encode_model,
    ensure_batch_keys,
    fixed_logit,
    model_commitment,
    prove_batch,
    to_field,
)

pytestmark = pytest.mark.slow

W3 = (2.8261, 0.0952, 2.3787)
B3 = -13.0213


@pytest.fixture(scope="module")
def keys():
    return ensure_batch_keys(3)


@pytest.fixture(scope="module")
def rows() -> list[list[float]]:
    return [[float(v) for v in r] for r in load_dataset("spector").x[:BATCH_ROWS]]


@pytest.fixture(scope="module")
def proof(keys, rows):
    return prove_batch(keys, W3, B3, rows)


@pytest.fixture
def verifier(anvil: Anvil, deployment: Deployment, chain_snapshot: None, keys3) -> str:
    return deploy_batch_verifier(
        Transactor(anvil.w3, anvil.accounts[5].private_key),
        deployment,
        3,
        model_commitment(keys3, W3, B3),
    )


def test_a_full_batch_of_rows_verifies_on_chain_for_under_10k_gas_a_prediction(
    anvil, keys, rows, proof, verifier
):
    w, b = encode_model(W3, B3)
    assert list(proof.logits) == [to_field(fixed_logit(w, b, encode_features(r))) for r in rows]
    # the client's own hashes of what it sent and got are the proof's public signals
    assert batch_hashes(keys, rows, proof.logits, B3) == proof.instances[:2]
    sender = Transactor(anvil.w3, anvil.accounts[6].private_key)
    check = check_on_chain(anvil.w3, verifier, proof.proof, proof.instances, sender=sender)
    assert check.verified and check.gas is not None
    assert check.gas / len(rows) <= 10_000


def test_a_changed_logit_or_row_no_longer_matches_and_is_refused_on_chain(
    anvil, keys, rows, proof, verifier
):
    lied = list(proof.logits)
    lied[3] = (lied[3] + 1) % (1 << 254)
    inputs_hash, logits_hash = batch_hashes(keys, rows, lied, B3)
    assert inputs_hash == proof.instances[0] and logits_hash != proof.instances[1]
    assert not check_on_chain(
        anvil.w3, verifier, proof.proof, [inputs_hash, logits_hash, proof.instances[2]]
    ).verified
    other_rows = [list(r) for r in rows]
    other_rows[0][0] += 0.01
    inputs_hash, _ = batch_hashes(keys, other_rows, proof.logits, B3)
    assert inputs_hash != proof.instances[0]
    assert not check_on_chain(
        anvil.w3, verifier, proof.proof, [inputs_hash, proof.instances[1], proof.instances[2]]
    ).verified
    flipped = bytearray(proof.proof)
    flipped[9] ^= 1
    assert not check_on_chain(anvil.w3, verifier, bytes(flipped), proof.instances).verified


def test_a_batch_proof_for_another_model_version_is_refused(
    anvil, deployment, chain_snapshot, keys3, proof
):
    other = deploy_batch_verifier(
        Transactor(anvil.w3, anvil.accounts[5].private_key),
        deployment,
        3,
        model_commitment(keys3, W3, B3 + 0.5),
    )
    assert not check_on_chain(anvil.w3, other, proof.proof, proof.instances).verified


def test_a_short_batch_is_padded_and_a_long_one_refused(anvil, keys, rows, verifier):
    short = prove_batch(keys, W3, B3, rows[:5])
    assert len(short.logits) == 5
    assert batch_hashes(keys, rows[:5], short.logits, B3) == short.instances[:2]
    assert check_on_chain(anvil.w3, verifier, short.proof, short.instances).verified
    with pytest.raises(ValueError, match=f"1 to {BATCH_ROWS} rows"):
        prove_batch(keys, W3, B3, rows + rows[:1])
    with pytest.raises(ValueError, match=f"1 to {BATCH_ROWS} rows"):
        prove_batch(keys, W3, B3, [])


def test_the_committed_batch_verifier_is_the_one_the_cached_keys_export(keys):
    from pathlib import Path

    committed = (
        Path(__file__).resolve().parents[2] / "contracts" / "src" / "zk" / keys.solidity.name
    )
    assert committed.read_text() == keys.solidity.read_text(), (
        "run: python -m zk setup --write-verifiers && npm run build:contracts"
    )


def test_a_client_checks_batch_hashes_without_the_provers_setup(tmp_path, keys, rows, proof):
    """What the SDK's verify_batch_proof needs is a compile (seconds), not the 2^13 ptau + phase 2."""
    from zk import ensure_batch_hashes

    client = ensure_batch_hashes(3, tmp_path)
    assert client.hashes_wasm.is_file()
    assert not client.zkey.exists() and not list(tmp_path.glob("*.ptau"))
    assert client.directory.name == keys.directory.name  # same content address as the prover's
    assert batch_hashes(client, rows, proof.logits, B3) == proof.instances[:2]


def test_a_setup_finishing_into_a_directory_that_exists_adds_only_what_is_missing(tmp_path):
    """The batch directory may hold the client's hash calculator before the prover's keys land."""
    from zk._setup import PTAU_POWER, X_BITS, _build_circuit, _ensure_ptau, default_cache_dir

    target = tmp_path / "keys"
    target.mkdir()
    (target / "hashes.wasm").write_bytes(b"compiled first")
    _build_circuit(
        main=f'include "proven_logit.circom";\ncomponent main = ProvenLogit(3, {X_BITS});\n',
        ptau=_ensure_ptau(default_cache_dir(), PTAU_POWER),
        target=target,
        wasm_name="logit.wasm",
        zkey_name="logit.zkey",
        contract="LogitGroth16Verifier3",
        what="test",
    )
    assert (target / "hashes.wasm").read_bytes() == b"compiled first"
    for name in ("logit.wasm", "logit.zkey", "verification_key.json", "LogitGroth16Verifier3.sol"):
        assert (target / name).is_file(), name
