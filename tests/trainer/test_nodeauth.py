"""SuperNode authentication bound to NodeRegistry: real anvil, real SuperLink over TLS, real nodes."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from contracts import Anvil, Deployment
from core.net import free_port
from trainer.data import Dataset, split_rows, write_csv
from trainer.deployment import (
    DeploymentError,
    LocalFederation,
    NodeAuth,
    _write_flower_home,
    start_supernode,
)
from trainer.nodeauth import (
    NodeAdmissionError,
    admit_node,
    make_node_key,
    make_tls_files,
    read_public_key_line,
    recover_holder,
    sign_node_key,
)

HOLDERS = (5, 6, 7)


@pytest.fixture
def registered(anvil: Anvil, deployment: Deployment, chain_snapshot: None) -> Iterator[list[str]]:
    """Accounts 5, 6, 7 registered in NodeRegistry (their private keys)."""
    nodes = deployment.contract("NodeRegistry")
    for i in HOLDERS:
        acct = anvil.accounts[i]
        tx = nodes.functions.register(f"holder-{i}", f"https://h{i}.example").transact(
            {"from": acct.address}
        )
        anvil.w3.eth.wait_for_transaction_receipt(tx)
    yield [anvil.accounts[i].private_key for i in HOLDERS]


def _admit(deployment: Deployment, anvil: Anvil, pub: Path, signature: str, home: Path) -> None:
    admit_node(public_key_file=pub, signature=signature, registry=deployment.contract("NodeRegistry"),
               chain_id=anvil.w3.eth.chain_id, flwr_home=home)  # fmt: skip


def test_a_node_key_signed_by_an_unregistered_address_is_refused_before_the_superlink(
    anvil: Anvil, deployment: Deployment, tmp_path: Path
) -> None:
    key = make_node_key(tmp_path / "node")
    registry = deployment.contract("NodeRegistry")
    stranger = Account.create()
    sig = sign_node_key(key.public_line, stranger.key, anvil.w3.eth.chain_id, registry.address)
    with pytest.raises(NodeAdmissionError, match=f"{stranger.address} .* not registered"):
        _admit(deployment, anvil, key.public_key, sig, tmp_path / "no-superlink-needed")


def test_a_registered_holders_signature_over_another_key_is_refused(
    anvil: Anvil, deployment: Deployment, registered: list[str], tmp_path: Path
) -> None:
    signed, presented = make_node_key(tmp_path / "a"), make_node_key(tmp_path / "b")
    registry = deployment.contract("NodeRegistry")
    sig = sign_node_key(signed.public_line, registered[0], anvil.w3.eth.chain_id, registry.address)
    assert recover_holder(signed.public_line, sig, anvil.w3.eth.chain_id, registry.address) == (
        anvil.accounts[HOLDERS[0]].address
    )
    with pytest.raises(NodeAdmissionError, match="not registered in NodeRegistry"):
        _admit(deployment, anvil, presented.public_key, sig, tmp_path / "home")


def test_a_signature_for_another_chain_recovers_another_address(
    anvil: Anvil, deployment: Deployment, registered: list[str], tmp_path: Path
) -> None:
    key = make_node_key(tmp_path / "node")
    registry = deployment.contract("NodeRegistry")
    sig = sign_node_key(key.public_line, registered[0], 1, registry.address)
    with pytest.raises(NodeAdmissionError, match="not registered"):
        _admit(deployment, anvil, key.public_key, sig, tmp_path / "home")


def test_the_signature_binds_chain_registry_and_key_each(tmp_path: Path) -> None:
    holder = Account.create()
    line = make_node_key(tmp_path / "a").public_line
    other_line = make_node_key(tmp_path / "b").public_line
    registry, other_registry = "0x" + "aa" * 20, "0x" + "bb" * 20
    sig = sign_node_key(line, holder.key, 31337, registry)
    assert recover_holder(line, sig, 31337, registry) == holder.address
    assert recover_holder(line, sig, 31337, registry.upper().replace("0X", "0x")) == holder.address
    for changed in (
        (line, 1, registry),  # another chain
        (line, 31337, other_registry),  # another deployment's NodeRegistry
        (other_line, 31337, registry),  # another node key
    ):
        assert recover_holder(changed[0], sig, changed[1], changed[2]) != holder.address, changed


def test_a_superlink_that_never_answers_is_a_refusal_within_the_deadline(
    anvil: Anvil, deployment: Deployment, registered: list[str], tmp_path: Path
) -> None:
    key = make_node_key(tmp_path / "node")
    registry = deployment.contract("NodeRegistry")
    sig = sign_node_key(key.public_line, registered[0], anvil.w3.eth.chain_id, registry.address)
    ca = make_tls_files(tmp_path / "tls").ca_cert
    with socket.socket() as silent:  # accepts TCP (backlog), never speaks TLS
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        home = tmp_path / "home"
        _write_flower_home(home, f"127.0.0.1:{silent.getsockname()[1]}", ca)
        with pytest.raises(NodeAdmissionError, match=r"did not answer within 3 s"):
            admit_node(public_key_file=key.public_key, signature=sig, registry=registry,
                       chain_id=anvil.w3.eth.chain_id, flwr_home=home, timeout_s=3)  # fmt: skip


@pytest.mark.parametrize(
    ("signature", "message"),
    [("0xzz", "not hex"), ("0x" + "11" * 64, "64 bytes, expected 65")],
)
def test_a_malformed_signature_is_refused(
    anvil: Anvil, deployment: Deployment, tmp_path: Path, signature: str, message: str
) -> None:
    key = make_node_key(tmp_path / "node")
    with pytest.raises(NodeAdmissionError, match=message):
        _admit(deployment, anvil, key.public_key, signature, tmp_path / "home")


def test_keys_flower_would_refuse_are_refused_with_a_reason(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    (tmp_path / "ed.pub").write_bytes(
        ed.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    k1 = ec.generate_private_key(ec.SECP256K1()).public_key()  # the Ethereum curve
    (tmp_path / "k1.pub").write_bytes(
        k1.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(NodeAdmissionError, match="not an EC key on a NIST curve"):
        read_public_key_line(tmp_path / "ed.pub")
    with pytest.raises(NodeAdmissionError, match="not an OpenSSH public key"):
        read_public_key_line(tmp_path / "k1.pub")
    with pytest.raises(NodeAdmissionError, match="cannot read"):
        read_public_key_line(tmp_path / "missing.pub")
    key = make_node_key(tmp_path / "node")
    assert read_public_key_line(key.public_key).startswith("ecdsa-sha2-nistp384 ")
    assert (key.private_key.stat().st_mode & 0o777) == 0o600
    with pytest.raises(FileExistsError):
        make_node_key(tmp_path / "node")


def _csvs(data: Dataset, tmp_path: Path) -> list[Path]:
    paths = []
    for i, rows in enumerate(split_rows(data, 3, mode="iid")):
        path = tmp_path / f"node-{i}.csv"
        write_csv(data.take(rows), path)
        paths.append(path)
    return paths


def _config(data: Dataset, tmp_path: Path) -> dict[str, object]:
    return {"features": ",".join(data.feature_names), "label": data.label, "n-nodes": 3,
            "secure": True, "round-timeout-s": 60.0, "job-name": "auth"}  # fmt: skip


def test_registered_holders_train_over_tls_and_a_node_with_an_unadmitted_key_is_refused(
    anvil: Anvil, deployment: Deployment, registered: list[str], spector: Dataset, tmp_path: Path
) -> None:
    auth = NodeAuth(registered, deployment.contract("NodeRegistry"), anvil.w3.eth.chain_id)
    with LocalFederation(_csvs(spector, tmp_path), auth=auth, workdir=tmp_path / "fed") as fed:
        assert [a.address for a in fed.admissions] == [anvil.accounts[i].address for i in HOLDERS]
        result = fed.run(_config(spector, tmp_path), timeout_s=300)
        intruder_key = make_node_key(tmp_path / "intruder")
        log = tmp_path / "intruder.log"
        intruder = start_supernode(superlink=fed.superlink_address, data_path=tmp_path / "node-0.csv",
                                   operator_address=anvil.accounts[HOLDERS[0]].address,
                                   runtime_port=free_port(), flwr_home=tmp_path / "intruder-home",
                                   log_path=log, root_certificates=fed.ca_cert,
                                   auth_key=intruder_key.private_key)  # fmt: skip
        try:
            code = intruder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            intruder.kill()
            pytest.fail("a SuperNode with an unadmitted key stayed up")
    card = result["card"]
    assert sorted(n["operator_address"] for n in card["nodes"]) == sorted(
        anvil.accounts[i].address for i in HOLDERS
    )
    assert card["training"]["converged"]
    assert code != 0
    assert "Failed to activate SuperNode" in log.read_text(errors="replace")


def test_a_node_reporting_another_operator_address_than_its_admitted_one_aborts_the_run(
    anvil: Anvil, deployment: Deployment, registered: list[str], spector: Dataset, tmp_path: Path
) -> None:
    auth = NodeAuth(registered, deployment.contract("NodeRegistry"), anvil.w3.eth.chain_id)
    claimed = [anvil.accounts[i].address for i in HOLDERS]
    claimed[2] = anvil.accounts[HOLDERS[0]].address  # node 2 claims holder 0's address
    with (
        LocalFederation(
            _csvs(spector, tmp_path), claimed, auth=auth, workdir=tmp_path / "fed"
        ) as fed,
        pytest.raises(DeploymentError, match=r"was admitted for 0x[0-9a-fA-F]{40} but reports"),
    ):
        fed.run(_config(spector, tmp_path), timeout_s=300)
