"""Setup trust: `twopm chain deploy` takes a ceremony powers of tau with its sha256 (checked), refuses a
locally generated one, and the development keys never reach a chain that is not local (real anvil)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import Anvil, deploy_all
from contracts._artifacts import load_artifact
from contracts.chain import is_local_chain
from contracts.deploy import DEV_TRAINING_CHUNK_VERIFIERS, DEV_TRAINING_VERIFIERS
from core import ptau
from core.ptau import PtauError, check_ceremony_ptau
from zk import default_cache_dir

TWOPM = [sys.executable, "-m", "clients"]


@pytest.fixture
def local_ptau(tmp_path: Path) -> Path:
    """A powers of tau made here: the development one from the cache, else a same-shaped stand-in."""
    cached = default_cache_dir() / "dev_pot12_final.ptau"
    if cached.exists():
        return cached
    path = tmp_path / "pot.ptau"
    path.write_bytes(b"ptau" + os.urandom(4096))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_ceremony_file_is_accepted_only_with_its_sha256_and_a_known_blake2b(
    tmp_path, monkeypatch
):
    path = tmp_path / "powersOfTau28_hez_final_12.ptau"
    path.write_bytes(os.urandom(3000))
    blake = hashlib.blake2b(path.read_bytes(), digest_size=64).hexdigest()
    # stand in for the 2^12 ceremony file's digest (the real one is 4.6 MB and not downloadable here)
    monkeypatch.setitem(ptau.CEREMONY_PTAU_BLAKE2B, 12, blake)
    checked = check_ceremony_ptau(path, "0x" + sha256(path).upper())
    assert checked.power == 12 and checked.name == "powersOfTau28_hez_final_12.ptau"
    with pytest.raises(PtauError, match="not the expected"):
        check_ceremony_ptau(path, "0" * 64)
    with pytest.raises(PtauError, match="64 hex digits"):
        check_ceremony_ptau(path, "abc")
    with pytest.raises(PtauError, match="cannot read"):
        check_ceremony_ptau(tmp_path / "missing.ptau", "0" * 64)


def test_a_locally_generated_powers_of_tau_is_refused(local_ptau):
    with pytest.raises(PtauError, match="development only"):
        check_ceremony_ptau(local_ptau, sha256(local_ptau))


def test_the_table_is_snarkjs_readme_list():
    readme = (Path(__file__).resolve().parents[2] / "node_modules/snarkjs/README.md").read_text()
    for power, digest in ptau.CEREMONY_PTAU_BLAKE2B.items():
        assert f"{ptau.ceremony_file_name(power)}](" in readme and digest in readme


@pytest.fixture(scope="module")
def mainnet_like() -> Iterator[Anvil]:
    """An anvil serving chain id 1: not a local chain id."""
    with Anvil.start(chain_id=1) as chain:
        yield chain


def test_development_keys_are_refused_on_a_chain_that_is_not_local(mainnet_like):
    w3 = mainnet_like.w3
    assert not is_local_chain(w3)
    key = mainnet_like.accounts[0].private_key
    with pytest.raises(ValueError, match="refusing the development zk setup on chain id 1"):
        deploy_all(w3, key, operator=mainnet_like.accounts[1].address, dev_zk_verifiers=True)
    deployment = deploy_all(w3, key, operator=mainnet_like.accounts[1].address)
    assert deployment.zk_setup == {"kind": "none"}
    assert not [
        name for name in deployment.addresses if "Groth16" in name or "ProofVerifier" in name
    ]


def test_development_keys_go_to_a_local_chain(anvil, deployment):
    assert is_local_chain(anvil.w3)
    assert deployment.zk_setup == {"kind": "development"}
    assert "LogitGroth16Verifier3" in deployment.addresses


@pytest.mark.parametrize(
    ("verifiers", "front"),
    [
        (DEV_TRAINING_VERIFIERS, "TrainingProofVerifier"),
        (DEV_TRAINING_CHUNK_VERIFIERS, "TrainingChunkVerifier"),
    ],
)
def test_each_training_front_checks_proofs_with_its_own_circuits_verifier(
    anvil, deployment, verifiers, front
):
    assert verifiers
    for n_features, groth16 in verifiers.items():
        contract = anvil.w3.eth.contract(
            address=deployment.addresses[f"{front}{n_features}"], abi=load_artifact(front).abi
        )
        assert contract.functions.groth16Verifier().call() == deployment.addresses[groth16]
        assert contract.functions.numFeatures().call() == n_features
        assert contract.functions.dataRegistry().call() == deployment.addresses["DataRegistry"]
        assert contract.functions.subnetRegistry().call() == deployment.addresses["SubnetRegistry"]


def deploy(
    rpc_url: str, key_file: Path, out: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *TWOPM,
            "chain",
            "deploy",
            "--rpc-url",
            rpc_url,
            "--private-key-file",
            str(key_file),
            "--out",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def key_file(tmp_path: Path, mainnet_like: Anvil) -> Path:
    path = tmp_path / "deployer.key"
    path.write_text(mainnet_like.accounts[0].private_key + "\n")
    path.chmod(0o600)
    return path


def test_chain_deploy_refuses_a_local_ptau_a_wrong_hash_and_a_missing_hash(
    mainnet_like, key_file, local_ptau, tmp_path
):
    out = tmp_path / "deployment.json"
    rpc = mainnet_like.rpc_url
    local = deploy(
        rpc, key_file, out, "--ptau", str(local_ptau), "--ptau-sha256", sha256(local_ptau)
    )
    assert local.returncode == 1 and "development only" in local.stderr
    wrong = deploy(rpc, key_file, out, "--ptau", str(local_ptau), "--ptau-sha256", "1" * 64)
    assert wrong.returncode == 1 and "not the expected" in wrong.stderr
    alone = deploy(rpc, key_file, out, "--ptau", str(local_ptau))
    assert alone.returncode == 1 and "together with --ptau-sha256" in alone.stderr
    for result in (local, wrong, alone):
        assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert not out.exists()


def test_chain_deploy_without_a_ceremony_file_deploys_no_verifier_on_a_chain_that_is_not_local(
    mainnet_like, key_file, tmp_path
):
    out = tmp_path / "deployment.json"
    result = deploy(mainnet_like.rpc_url, key_file, out)
    assert result.returncode == 0, result.stderr
    assert "zk setup: none" in result.stdout
    written = json.loads(out.read_text())
    assert written["zk_setup"] == {"kind": "none"}
    assert "LogitGroth16Verifier3" not in written["contracts"]


def test_the_key_cache_follows_twopm_zk_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWOPM_ZK_CACHE", str(tmp_path / "keys"))
    assert default_cache_dir() == tmp_path / "keys"
    monkeypatch.delenv("TWOPM_ZK_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "twopm" / "zk"


def test_the_dev_keys_twopm_up_needs_are_all_made_by_one_call(zk_keys_cached: None) -> None:
    from zk import (
        SUPPORTED_FEATURE_COUNTS,
        ensure_batch_keys,
        ensure_dev_keys,
        ensure_keys,
        ensure_training_chunk_keys,
        ensure_training_keys,
    )

    ensure_dev_keys()  # cached by the fixture: only file checks
    for n_features in SUPPORTED_FEATURE_COUNTS:
        assert ensure_keys(n_features).zkey.is_file()
    assert ensure_training_keys(3).zkey.is_file()
    assert ensure_batch_keys(3).zkey.is_file()
    assert ensure_training_chunk_keys(30).zkey.is_file()
