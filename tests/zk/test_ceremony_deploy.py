"""A 2^13 ceremony's batch and training keys, deployed by the real ``twopm chain deploy --zk-keys``.

As in test_ceremony_setup.py, the one test double is the ceremony list: the BLAKE2b-512 of the locally
made 2^13 development ptau is added to ``core.ptau.CEREMONY_PTAU_BLAKE2B`` for this module (so both
commands run in this process, through their ``main``: ``python -m zk ceremony`` and ``twopm chain
deploy``, which check the file against that list). Everything else is real: circom, snarkjs phase 2
with a secret contribution and a beacon, solc, anvil, the provers. ``--no-verify`` skips ``zkey
verify`` (test_ceremony_setup.py runs it) to keep the module to one phase 2 per circuit.
Then a batch, a whole-training and a chunk proof made with the ceremony keys verify on the deployed
verifiers, and a holder's chunked proofs through ``stack._training_proofs`` with ``keys_dir`` are
accepted; the same statements proven with the development keys are refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from web3 import Web3

from contracts import Anvil, Deployment, TransactionReverted, Transactor
from contracts._artifacts import load_artifact
from contracts.tx import expect_revert
from core import ptau
from core.cli import main as twopm
from stack._training_proofs import HolderCommitment, _encode, _keys, _root, prove_after_publication
from trainer import JobConfig, run_in_process
from trainer.data import load_dataset, write_csv
from zk import (
    BATCH_ROWS,
    TRAINING_SHAPES,
    check_on_chain,
    chunk_capacity,
    commit_data,
    default_cache_dir,
    deploy_version_verifier,
    encode_rows,
    ensure_batch_keys,
    ensure_keys,
    ensure_training_chunk_keys,
    ensure_training_keys,
    model_commitment,
    prove_batch,
    prove_training,
    prove_training_chunks,
    record_model_verifier,
    verify_training,
)
from zk.__main__ import main as zk_main

# five circuits' phase 2, three of them on 2^13 constraints: tens of minutes on 2 loaded cores
pytestmark = [pytest.mark.slow, pytest.mark.timeout(5400)]

BEACON = "0x" + "cd" * 32
W3 = (0.8, -1.25, 0.031)
B3 = -3.5
SALT = 123456789
#: The Groth16 verifiers of the development deployment, all of which a 2^13 file is large enough for.
GROTH16 = [
    "BatchGroth16Verifier3",
    "LogitGroth16Verifier3",
    "LogitGroth16Verifier30",
    "TrainingChunkGroth16Verifier30",
    "TrainingGroth16Verifier3",
]


@dataclass(frozen=True)
class Trusted:
    path: Path
    sha256: str


@dataclass(frozen=True)
class Made:
    directory: Path
    stdout: str


def _run(command, argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = command(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def trusted() -> Iterator[Trusted]:
    """The development 2^13 ptau, listed as a ceremony file while the module runs."""
    ensure_training_keys(3)  # makes (or finds) the 2^13 development ptau beside the dev keys
    path = default_cache_dir() / "dev_pot13_final.ptau"
    data = path.read_bytes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(
            ptau.CEREMONY_PTAU_BLAKE2B, 13, hashlib.blake2b(data, digest_size=64).hexdigest()
        )
        yield Trusted(path, hashlib.sha256(data).hexdigest())


@pytest.fixture(scope="module")
def made(trusted: Trusted, tmp_path_factory: pytest.TempPathFactory) -> Made:
    directory = tmp_path_factory.mktemp("zk-keys13") / "keys"
    code, stdout = _run(
        zk_main,
        [
            "ceremony",
            "--ptau",
            str(trusted.path),
            "--ptau-sha256",
            trusted.sha256,
            "--beacon",
            BEACON,
            "--out",
            str(directory),
            "--no-verify",
        ],
    )
    assert code == 0, stdout
    return Made(directory, stdout)


@pytest.fixture(scope="module")
def chain() -> Iterator[Anvil]:
    with Anvil.start() as node:
        yield node


def _deploy(chain: Anvil, trusted: Trusted, keys: Path, out: Path) -> tuple[int, str]:
    key_file = out.parent / "deployer.key"
    key_file.write_text(chain.accounts[0].private_key + "\n")
    key_file.chmod(0o600)
    return _run(
        twopm,
        [
            "chain",
            "deploy",
            "--rpc-url",
            chain.rpc_url,
            "--private-key-file",
            str(key_file),
            "--out",
            str(out),
            "--ptau",
            str(trusted.path),
            "--ptau-sha256",
            trusted.sha256,
            "--zk-keys",
            str(keys),
        ],
    )


@pytest.fixture(scope="module")
def deployment(
    chain: Anvil, trusted: Trusted, made: Made, tmp_path_factory: pytest.TempPathFactory
) -> Deployment:
    out = tmp_path_factory.mktemp("deploy13") / "deployment.json"
    code, stdout = _deploy(chain, trusted, made.directory, out)
    assert code == 0, stdout
    assert "no " not in stdout.split("zk setup:")[-1]  # nothing was skipped
    return Deployment.read(out, chain.w3)


def test_a_2_13_ceremony_makes_the_batch_and_training_keys_where_the_provers_look(made):
    manifest = json.loads((made.directory / "zk_setup.json").read_text())
    assert sorted(manifest["verifiers"]) == GROTH16 and manifest["skipped"] == {}
    assert manifest["power"] == 13
    assert "skipped" not in made.stdout
    for name in GROTH16:
        assert name in made.stdout
    # found in the key directory (a build there would be refused: it holds a ceremony manifest)
    for ensure, n in (
        (ensure_batch_keys, 3),
        (ensure_training_keys, 3),
        (ensure_training_chunk_keys, 30),
    ):
        keys = ensure(n, made.directory)
        assert keys.directory.parent == made.directory
        assert "CEREMONY KEYS" in keys.solidity.read_text()
        assert keys.vk() != ensure(n).vk()  # not the development keys
    assert ensure_batch_keys(3, made.directory).hashes_wasm.exists()
    assert not list(made.directory.rglob("k0.zkey")) and not list(made.directory.glob(".build-*"))


def test_the_cli_deploys_every_ceremony_verifier_and_wires_the_training_fronts(deployment, made):
    setup = deployment.zk_setup
    assert setup["kind"] == "ceremony" and setup["verifiers"] == GROTH16
    assert setup["skipped"] == {} and setup["keys_dir"] == str(made.directory.resolve())
    w3 = deployment.w3
    assert w3 is not None
    for name in GROTH16:
        code = w3.eth.get_code(Web3.to_checksum_address(deployment.addresses[name]))
        committed = load_artifact(name).deployed_bytecode
        assert code and "0x" + code.hex().removeprefix("0x") != committed
    for front, groth16 in (
        ("TrainingProofVerifier3", "TrainingGroth16Verifier3"),
        ("TrainingChunkVerifier30", "TrainingChunkGroth16Verifier30"),
    ):
        contract = deployment.contract(front)
        assert contract.functions.groth16Verifier().call() == deployment.addresses[groth16]
        assert contract.functions.dataRegistry().call() == deployment.addresses["DataRegistry"]


def test_a_ceremony_batch_proof_verifies_through_the_model_router_and_a_dev_one_does_not(
    chain, deployment, made
):
    rows = [[float(v) for v in r] for r in load_dataset("spector").x[:BATCH_ROWS]]
    sender = Transactor(chain.w3, chain.accounts[5].private_key)
    router = deploy_version_verifier(
        sender, deployment, 3, model_commitment(ensure_keys(3), W3, B3)
    )
    proof = prove_batch(ensure_batch_keys(3, made.directory), W3, B3, rows)
    assert check_on_chain(chain.w3, router, proof.proof, proof.instances).verified
    dev = prove_batch(ensure_batch_keys(3), W3, B3, rows)
    assert dev.instances == proof.instances  # the same statement, other keys
    assert not check_on_chain(chain.w3, router, dev.proof, dev.instances).verified


def _holder_rows(n_features: int, capacity: int):
    data = load_dataset("spector" if n_features == 3 else "breast-cancer")
    return encode_rows(data.x[:4].tolist(), data.y[:4].tolist(), capacity)


def test_ceremony_training_proofs_verify_on_the_fronts_and_dev_ones_do_not(deployment, made):
    whole = deployment.contract("TrainingProofVerifier3")
    rows = _holder_rows(3, TRAINING_SHAPES[3])
    proof = prove_training(rows, SALT, W3, B3, ensure_training_keys(3, made.directory))
    assert whole.functions.verifyProof(proof.proof, list(proof.instances)).call() is True
    dev = prove_training(rows, SALT, W3, B3, ensure_training_keys(3))
    assert list(dev.instances) == list(proof.instances)
    assert whole.functions.verifyProof(dev.proof, list(dev.instances)).call() is False

    chunked = deployment.contract("TrainingChunkVerifier30")
    weights = [0.01 * (i - 15) for i in range(30)]
    rows30 = _holder_rows(30, chunk_capacity(4, 30))
    chunks = prove_training_chunks(
        rows30, SALT, weights, 0.25, ensure_training_chunk_keys(30, made.directory)
    )
    dev_chunks = prove_training_chunks(rows30, SALT, weights, 0.25, ensure_training_chunk_keys(30))
    assert len(chunks) == len(dev_chunks) == 2
    for chunk, dev_chunk in zip(chunks, dev_chunks, strict=True):
        assert chunked.functions.verifyProof(chunk.proof, list(chunk.instances)).call() is True
        # the same links and model commitment; the running-sums commitments differ (fresh salts)
        same = (0, 2, 3)
        assert [dev_chunk.instances[i] for i in same] == [chunk.instances[i] for i in same]
        call = chunked.functions.verifyProof(dev_chunk.proof, list(dev_chunk.instances))
        assert call.call() is False


def test_the_cli_refuses_zk_keys_made_from_another_ptau(chain, trusted, made, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    manifest = json.loads((made.directory / "zk_setup.json").read_text())
    manifest["sha256"] = "0" * 64
    for item in made.directory.iterdir():
        (other / item.name).symlink_to(item)
    (other / "zk_setup.json").unlink()
    (other / "zk_setup.json").write_text(json.dumps(manifest))
    out = tmp_path / "deployment.json"
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code, _ = _deploy(chain, trusted, other, out)
    assert code != 0 and err.getvalue().count("\n") == 1
    assert "was made from a powers of tau with sha256 " + "0" * 64 in err.getvalue()
    assert not out.exists()


def test_a_holder_proves_its_training_with_the_key_directory_and_not_with_the_dev_keys(
    chain, deployment, made, tmp_path
):
    """The stack's holder side (stack._training_proofs) given ``keys_dir``: a chunked 30-feature
    holder of 8 rows (4 chunks) commits, the version is published, its proofs are accepted; the same
    proofs made with the development keys are refused by the ceremony deployment's front."""
    data = load_dataset("breast-cancer")
    part = data.take(list(range(8)))
    csv = tmp_path / "node-0.csv"
    write_csv(part, csv)
    result = run_in_process(
        [part], JobConfig(tuple(data.feature_names), data.label, n_nodes=1, l2_c=1.0)
    )
    weights, intercept = [float(c) for c in result.coef], float(result.intercept)
    w3 = chain.w3
    account, owner = chain.accounts[7], Transactor(w3, chain.accounts[3].private_key)
    tx = Transactor(w3, account.private_key)
    tx.transact(deployment.contract("NodeRegistry").functions.register("h", "http://127.0.0.1/h"))
    salt = 4242
    (tmp_path / "holder-0.salt").write_text(f"{salt}\n")
    rows = _encode(part.x.tolist(), part.y.tolist(), 30)
    root = _root(rows, salt, True, _keys(30, made.directory))
    holder = HolderCommitment(
        account.address, account.private_key, csv, tmp_path / "holder-0.salt",
        commit_data(tx, deployment, root), root,
    )  # fmt: skip
    registry = deployment.contract("SubnetRegistry")
    receipt = owner.transact(registry.functions.createSubnet("cancer-ceremony", 10**12, 0, 1000))
    sid = int(registry.events.SubnetCreated().process_receipt(receipt)[0]["args"]["subnetId"])
    owner.transact(
        registry.functions.publishModel(
            sid, b"\x01" * 32, "file:///nowhere", b"\x02" * 32, b"\x03" * 32, [account.address],
            [10_000],
        )
    )  # fmt: skip
    record_model_verifier(
        deployment=deployment,
        deployer=Transactor(w3, chain.accounts[5].private_key),
        owner=owner,
        subnet_id=sid,
        version=1,
        weights=weights,
        intercept=intercept,
    )
    publication = {
        "subnet_id": sid,
        "version": 1,
        "feature_names": list(data.feature_names),
        "label": data.label,
        "weights": weights,
        "intercept": intercept,
    }
    with pytest.raises(TransactionReverted):
        prove_after_publication(w3, deployment, [holder], **publication)  # development keys
    # why: the front's Groth16 verifier (the ceremony's) refuses the development proof
    first = prove_training_chunks(rows, salt, weights, intercept, ensure_training_chunk_keys(30))[0]
    call = deployment.contract("TrainingChunkVerifier30").functions.submitChunk(
        sid, 1, holder.commitment_id, first.proof, list(first.instances)
    )
    assert expect_revert(call, account.address).name == "TrainingChunkInvalid"
    done = prove_after_publication(w3, deployment, [holder], **publication, keys_dir=made.directory)
    assert [d["proofs"] for d in done] == [4]
    found = verify_training(deployment, sid, weights=weights, l2_c=1.0)
    assert found.verified, found.problems
