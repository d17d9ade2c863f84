"""A deployment's own phase 2 on a ceremony powers of tau (zk/_ceremony.py), end to end on a real anvil.

The Hermez ceremony files cannot be downloaded here, so the one test double is the ceremony list: the
module adds the BLAKE2b-512 of the locally made development ptau to ``core.ptau.CEREMONY_PTAU_BLAKE2B``
(a monkeypatch, undone afterwards). Everything else is real: circom, snarkjs phase 2 with secret
contributions and a beacon, solc, anvil, the prover.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from web3 import Web3

from contracts import Anvil, Deployment, Transactor, deploy_all
from contracts._artifacts import load_artifact
from contracts.deploy import read_zk_keys
from core import ptau
from zk import (
    CircuitKeys,
    LogitProof,
    ProverPool,
    SetupError,
    check_on_chain,
    default_cache_dir,
    deploy_model_verifier,
    ensure_batch_keys,
    ensure_keys,
    ensure_training_keys,
    make_ceremony_keys,
    model_commitment,
)
from zk.__main__ import main as zk_main

# phase 2 of two circuits takes 5-6 min on 2 quiet cores, more than 10 under load
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

W3 = (0.8, -1.25, 0.031)
B3 = -3.5
ROW3 = (2.66, 20.0, -0.5)
BEACON = "0x" + "ab" * 32


def prove(keys, weights, intercept, row) -> LogitProof:
    async def run() -> LogitProof:
        async with ProverPool(workers=1, max_pending=2) as pool:
            return await pool.prove(keys, weights, intercept, row)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def dev_ptau() -> Path:
    path = default_cache_dir() / "dev_pot12_final.ptau"
    if not path.exists():
        ensure_keys(3)  # makes the development powers of tau (minutes, once per machine)
    return path


@dataclass(frozen=True)
class Ceremony:
    """What ``python -m zk ceremony`` left: the key directory, its logit keys and its output."""

    directory: Path
    keys: dict[int, CircuitKeys]
    stdout: str


@pytest.fixture(scope="module")
def ceremony(dev_ptau: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ceremony]:
    """``python -m zk ceremony`` (its main, in this process) on the 2^12 dev ptau posing as a ceremony
    file: phase 2 of the 3- and 30-feature logit circuits; the 2^13 circuits are skipped."""
    blake = hashlib.blake2b(dev_ptau.read_bytes(), digest_size=64).hexdigest()
    sha = hashlib.sha256(dev_ptau.read_bytes()).hexdigest()
    directory = tmp_path_factory.mktemp("zk-keys") / "keys"
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setitem(ptau.CEREMONY_PTAU_BLAKE2B, 12, blake)  # the test double: the trusted list
        argv = ["ceremony", "--ptau", str(dev_ptau), "--ptau-sha256", sha, "--beacon", BEACON]
        code = zk_main([*argv, "--out", str(directory)])
    assert code == 0, out.getvalue()
    keys = {n: ensure_keys(n, directory) for n in (3, 30)}
    yield Ceremony(directory, keys, out.getvalue())


@pytest.fixture(scope="module")
def chain() -> Iterator[Anvil]:
    with Anvil.start() as node:
        yield node


@pytest.fixture(scope="module")
def deployment(chain: Anvil, ceremony: Ceremony) -> Deployment:
    return deploy_all(
        chain.w3,
        chain.accounts[0].private_key,
        operator=chain.accounts[1].address,
        zk_keys=ceremony.directory,
    )


def test_the_key_directory_holds_keys_verifiers_and_a_manifest(ceremony, dev_ptau):
    manifest = json.loads((ceremony.directory / "zk_setup.json").read_text())
    assert manifest["kind"] == "ceremony" and manifest["contributions"] >= 1
    assert manifest["beacon"] == "ab" * 32
    assert manifest["sha256"] == hashlib.sha256(dev_ptau.read_bytes()).hexdigest()
    assert sorted(manifest["verifiers"]) == ["LogitGroth16Verifier3", "LogitGroth16Verifier30"]
    # the 2^13 circuits do not fit a 2^12 file: named in the manifest and in one line of output
    skipped = [
        "BatchGroth16Verifier3",
        "TrainingGroth16Verifier3",
        "TrainingChunkGroth16Verifier30",
    ]
    assert sorted(manifest["skipped"]) == sorted(skipped)
    assert all("needs 2^13" in why for why in manifest["skipped"].values())
    (line,) = [line for line in ceremony.stdout.splitlines() if "skipped" in line]
    assert all(name in line for name in skipped) and "needs 2^13 constraints" in line
    for n, keys in ceremony.keys.items():
        assert keys.zkey.exists() and keys.verification_key.exists() and keys.wasm.exists()
        assert "CEREMONY KEYS" in keys.solidity.read_text()
        # the prover finds them where the gateway looks (proof_keys_dir = the key directory)
        assert ensure_keys(n, ceremony.directory) == keys
        # and they are not the development keys
        assert keys.vk() != ensure_keys(n).vk()
    # no temporary files (the intermediate zkeys of the contributions) are left behind
    leftovers = [p for p in ceremony.directory.rglob("*.zkey") if p.name != "logit.zkey"]
    assert not leftovers and not list(ceremony.directory.glob("tmp*"))


def test_the_deployment_records_the_ceremony_and_deploys_its_verifiers(deployment, ceremony):
    setup = deployment.zk_setup
    assert setup["kind"] == "ceremony" and setup["keys_dir"] == str(ceremony.directory.resolve())
    assert setup["verifiers"] == ["LogitGroth16Verifier3", "LogitGroth16Verifier30"]
    w3 = deployment.w3
    assert w3 is not None
    for name in setup["verifiers"]:
        code = w3.eth.get_code(Web3.to_checksum_address(deployment.addresses[name]))
        assert (
            code and "0x" + code.hex().removeprefix("0x") != load_artifact(name).deployed_bytecode
        )
    # no development verifier or training verifier goes with a ceremony setup
    assert "BatchGroth16Verifier3" not in deployment.addresses
    assert "TrainingGroth16Verifier3" not in deployment.addresses


def test_a_proof_with_the_new_keys_verifies_on_chain_and_a_dev_key_proof_is_refused(
    chain, deployment, ceremony
):
    keys = ensure_keys(3, ceremony.directory)
    sender = Transactor(chain.w3, chain.accounts[5].private_key)
    verifier = deploy_model_verifier(sender, deployment, 3, model_commitment(keys, W3, B3))
    proof = prove(keys, W3, B3, ROW3)
    assert check_on_chain(chain.w3, verifier, proof.proof, proof.instances).verified
    dev = prove(ensure_keys(3), W3, B3, ROW3)
    assert dev.instances == proof.instances  # same statement, other keys
    assert not check_on_chain(chain.w3, verifier, dev.proof, dev.instances).verified
    # the Groth16 verifier only calls the BN254 precompiles Scroll runs (0x06 add, 0x07 mul, 0x08 pairing)
    trace = chain.w3.provider.make_request(
        "debug_traceCall",
        [
            {
                "to": verifier,
                "data": _verify_calldata(chain.w3, verifier, proof),
                "gas": hex(1_000_000),
            },
            "latest",
            {"tracer": "callTracer"},
        ],
    )
    targets = set()
    stack = [trace["result"]]
    while stack:
        frame = stack.pop()
        targets.add(int(frame["to"], 16))
        stack.extend(frame.get("calls", []))
    precompiles = {t for t in targets if t < 0x100}
    assert precompiles and precompiles <= {0x06, 0x07, 0x08}


def _verify_calldata(w3: Web3, verifier: str, proof: LogitProof) -> str:
    from zk import VERIFY_PROOF_ABI

    contract = w3.eth.contract(address=Web3.to_checksum_address(verifier), abi=VERIFY_PROOF_ABI)
    return str(
        contract.functions.verifyProof(
            proof.proof, list(proof.instances)
        )._encode_transaction_data()
    )


def test_the_30_feature_ceremony_circuit_proves_what_the_chain_accepts(chain, deployment, ceremony):
    keys = ensure_keys(30, ceremony.directory)
    weights = tuple(0.01 * (i - 15) for i in range(30))
    row = tuple(0.5 * i for i in range(30))
    sender = Transactor(chain.w3, chain.accounts[5].private_key)
    verifier = deploy_model_verifier(sender, deployment, 30, model_commitment(keys, weights, 0.25))
    proof = prove(keys, weights, 0.25, row)
    assert check_on_chain(chain.w3, verifier, proof.proof, proof.instances).verified


def test_a_key_directory_gets_no_development_keys_and_no_second_ceremony(ceremony, dev_ptau):
    with pytest.raises(SetupError, match="refusing to add development keys"):
        ensure_keys(5, ceremony.directory)
    # the gateway also asks for batch keys in its keys directory: none are made there
    with pytest.raises(SetupError, match="batch circuit: refusing to add development keys"):
        ensure_batch_keys(3, ceremony.directory)
    with pytest.raises(SetupError, match="training circuit: refusing to add development keys"):
        ensure_training_keys(3, ceremony.directory)
    checked_like = ceremony  # a non-empty directory is refused before any work
    with pytest.raises(SetupError, match="not empty"):
        make_ceremony_keys(_fake_checked(dev_ptau), checked_like.directory, BEACON)
    with pytest.raises(ValueError, match="beacon must be hex"):
        make_ceremony_keys(_fake_checked(dev_ptau), checked_like.directory / "new", "not hex")


def _fake_checked(path: Path) -> ptau.CeremonyPtau:
    return ptau.CeremonyPtau(path, 12, "0" * 64, ptau.ceremony_file_name(12))


def test_deploy_refuses_bad_key_directories(chain, ceremony, tmp_path):
    key = chain.accounts[0].private_key
    operator = chain.accounts[1].address
    with pytest.raises(ValueError, match="no zk key manifest"):
        deploy_all(chain.w3, key, operator=operator, zk_keys=tmp_path)
    with pytest.raises(ValueError, match="either the development zk setup or a ceremony"):
        deploy_all(
            chain.w3, key, operator=operator, zk_keys=ceremony.directory, dev_zk_verifiers=True
        )
    # a verifier whose runtime code uses MCOPY (0x5e), which Scroll does not run, is refused
    bad = tmp_path / "bad"
    shutil.copytree(ceremony.directory, bad)
    manifest = json.loads((bad / "zk_setup.json").read_text())
    artifact_path = bad / manifest["verifiers"]["LogitGroth16Verifier3"]["artifact"]
    artifact = json.loads(artifact_path.read_text())
    artifact["deployedBytecode"] = "0x5e" + artifact["deployedBytecode"][2:]
    artifact_path.write_text(json.dumps(artifact))
    with pytest.raises(ValueError, match="MCOPY"):
        read_zk_keys(bad)
    (bad / "zk_setup.json").write_text(json.dumps({"kind": "development"}))
    with pytest.raises(ValueError, match="does not describe ceremony keys"):
        read_zk_keys(bad)


def test_the_commands_refuse_a_local_ptau_and_zk_keys_without_their_ptau(
    chain, ceremony, dev_ptau, tmp_path
):
    sha = hashlib.sha256(dev_ptau.read_bytes()).hexdigest()
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "zk",
            "ceremony",
            "--ptau",
            str(dev_ptau),
            "--ptau-sha256",
            sha,
            "--beacon",
            BEACON,
            "--out",
            str(tmp_path / "keys"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 1 and "development only" in made.stderr
    assert not (tmp_path / "keys").exists()
    key_file = tmp_path / "deployer.key"
    key_file.write_text(chain.accounts[0].private_key + "\n")
    key_file.chmod(0o600)
    out = tmp_path / "deployment.json"
    deployed = subprocess.run(
        [
            sys.executable,
            "-m",
            "clients",
            "chain",
            "deploy",
            "--rpc-url",
            chain.rpc_url,
            "--private-key-file",
            str(key_file),
            "--out",
            str(out),
            "--zk-keys",
            str(ceremony.directory),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert deployed.returncode == 1 and "--zk-keys needs the ceremony file" in deployed.stderr
    assert deployed.stderr.strip().count("\n") == 0 and not out.exists()
