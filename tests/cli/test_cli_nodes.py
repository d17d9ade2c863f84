"""A data holder's own entry in NodeRegistry, from the terminal: ``twopm node register|update|leave``.

`twopm` runs as a child process in an empty directory against the session's real anvil and
deployment, acting for a fresh wallet of its own (``--key-file``) or a stack file's dev user
(``--dev-user``). Every refusal is one line with a non-zero exit, and nothing is sent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from clients.sdk import Wallet
from contracts import Anvil, Deployment

pytestmark = pytest.mark.usefixtures("chain_snapshot")

TWOPM = [sys.executable, "-m", "clients"]
TX = r"0x[0-9a-f]{64}"


def twopm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(cwd)}
    return subprocess.run(
        [*TWOPM, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def ok(result: subprocess.CompletedProcess[str], address: str) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(address), result.stdout
    return lines[0]


def refused(result: subprocess.CompletedProcess[str], pattern: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("twopm: error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.fixture
def stack(tmp_path: Path, anvil: Anvil, deployment: Deployment, holder: Wallet) -> Path:
    path = tmp_path / "stack.json"
    path.write_text(
        json.dumps(
            {
                "rpc_url": anvil.rpc_url,
                "chain_id": anvil.chain_id,
                "contracts": deployment.addresses,
                "accounts": {"wallet_users": [{"private_key": holder._private_key_hex()}]},
            }
        )
    )
    return path


def on_chain(deployment: Deployment, address: str) -> tuple[str, str] | None:
    registry = deployment.contract("NodeRegistry")
    if not registry.functions.isRegistered(address).call():
        return None
    node = registry.functions.nodeOf(address).call()
    return node[1], node[2]


def test_a_data_holder_registers_updates_and_leaves_with_its_own_key(
    tmp_path: Path, deployment: Deployment, holder: Wallet, key_flags: list[str]
) -> None:
    a = holder.address
    node = ["node"]
    refused(
        twopm(*node, "update", "--name", "x", *key_flags, cwd=tmp_path),
        rf"^twopm: error: {a} is not registered; run `twopm node register` first$",
    )
    refused(
        twopm(*node, "leave", *key_flags, cwd=tmp_path),
        rf"^twopm: error: {a} is not registered; there is nothing to leave$",
    )
    line = ok(
        twopm(*node, "register", "--name", "alice", "--url", "https://alice.example:9092",
              *key_flags, cwd=tmp_path),
        a,
    )  # fmt: skip
    assert re.fullmatch(
        rf"{a} registered as 'alice' at https://alice.example:9092 in NodeRegistry in {TX}", line
    ), line
    assert on_chain(deployment, a) == ("alice", "https://alice.example:9092")
    refused(
        twopm(*node, "register", "--name", "again", "--url", "https://b.example",
              *key_flags, cwd=tmp_path),
        rf"^twopm: error: {a} is registered already as 'alice' at https://alice.example:9092;",
    )  # fmt: skip
    line = ok(
        twopm(*node, "update", "--url", "https://alice.example:9093", *key_flags, cwd=tmp_path), a
    )
    assert re.fullmatch(
        rf"{a} is now 'alice' at https://alice.example:9093 in NodeRegistry, updated in {TX}", line
    ), line
    assert on_chain(deployment, a) == ("alice", "https://alice.example:9093")
    line = ok(twopm(*node, "leave", *key_flags, cwd=tmp_path), a)
    assert re.fullmatch(rf"{a} \('alice'\) left NodeRegistry in {TX}", line), line
    assert on_chain(deployment, a) is None


def test_dev_user_acts_for_the_stack_files_wallet(
    tmp_path: Path, deployment: Deployment, holder: Wallet, stack: Path
) -> None:
    line = ok(
        twopm("node", "register", "--name", "dev", "--url", "http://127.0.0.1:9092",
              "--stack", str(stack), "--dev-user", "0", cwd=tmp_path),
        holder.address,
    )  # fmt: skip
    assert "registered as 'dev'" in line
    assert on_chain(deployment, holder.address) == ("dev", "http://127.0.0.1:9092")
    refused(
        twopm("node", "leave", "--stack", str(stack), "--dev-user", "3", cwd=tmp_path),
        r"^twopm: error: --dev-user 3: the stack file lists 1 wallet users$",
    )


@pytest.mark.parametrize(
    ("name", "url", "pattern"),
    [
        ("", "https://a.example", r"--name must be 1 to 64 bytes, got 0"),
        ("n" * 65, "https://a.example", r"--name must be 1 to 64 bytes, got 65"),
        ("ok", "a.example:9092", r"--url 'a.example:9092' is not a URL"),
        ("ok", "https://" + "u" * 250, r"--url must be 1 to 256 bytes, got 258"),
    ],
)
def test_bad_names_and_urls_are_refused_before_sending(
    tmp_path: Path, deployment: Deployment, holder: Wallet, key_flags: list[str],
    name: str, url: str, pattern: str,
) -> None:  # fmt: skip
    refused(
        twopm("node", "register", "--name", name, "--url", url, *key_flags, cwd=tmp_path),
        pattern,
    )
    assert on_chain(deployment, holder.address) is None


def test_a_wallet_without_eth_is_refused(
    tmp_path: Path, anvil: Anvil, deployment: Deployment, holder: Wallet, key_flags: list[str]
) -> None:
    anvil.w3.provider.make_request("anvil_setBalance", [holder.address, "0x0"])  # type: ignore[arg-type]
    refused(
        twopm("node", "register", "--name", "poor", "--url", "https://p.example",
              *key_flags, cwd=tmp_path),
        rf"^twopm: error: {holder.address} holds no ETH to pay the gas of registering; fund it first$",
    )  # fmt: skip
    assert on_chain(deployment, holder.address) is None


def test_no_wallet_and_no_node_flags_are_one_line_each(tmp_path: Path, stack: Path) -> None:
    refused(
        twopm("node", "leave", "--stack", str(stack), cwd=tmp_path),
        r"^twopm: error: no wallet: give --keystore, --key-file, or --dev-user N$",
    )
    refused(
        twopm("node", "--label", "GRADE", cwd=tmp_path),
        r"^twopm: error: running a node needs --data, --superlink \(or an action:",
    )


def test_a_keystore_with_rpc_url_and_deployment_acts_without_a_stack_file(
    tmp_path: Path, anvil: Anvil, deployment: Deployment, holder: Wallet
) -> None:
    from eth_account import Account

    keystore = tmp_path / "holder.json"
    keystore.write_text(json.dumps(Account.encrypt(holder._private_key_hex(), "pw")))
    password = tmp_path / "password"
    password.write_text("pw\n")
    password.chmod(0o600)
    deployment_file = tmp_path / "deployment.json"
    deployment.write(deployment_file)
    flags = ["--rpc-url", anvil.rpc_url, "--deployment", str(deployment_file)]
    flags += ["--keystore", str(keystore), "--password-file", str(password)]
    line = ok(
        twopm("node", "register", "--name", "ks", "--url", "https://ks.example", *flags,
              cwd=tmp_path),
        holder.address,
    )  # fmt: skip
    assert "registered as 'ks'" in line
    assert on_chain(deployment, holder.address) == ("ks", "https://ks.example")
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    wrong.chmod(0o600)
    refused(
        twopm("node", "leave", *flags[:-1], str(wrong), cwd=tmp_path),
        rf"^twopm: error: wrong password for keystore {keystore} \(from {wrong}\)$",
    )


def test_a_revert_the_checks_did_not_foresee_is_decoded_by_name(
    anvil: Anvil, deployment: Deployment, holder: Wallet, stack: Path
) -> None:
    """As if another transaction had made the holder leave between the check and the send."""
    import argparse

    from core.cli import CliError
    from trainer.nodes import _Registry

    args = argparse.Namespace(
        stack=stack, rpc_url=None, deployment=None, dev_user=0, keystore=None, key_file=None,
        password_file=None,
    )  # fmt: skip
    registry = _Registry(args)
    with pytest.raises(CliError) as refused_:
        registry.send(registry.registry.functions.leave(), "leaving")
    assert str(refused_.value) == (
        f"{holder.address}: NodeRegistry refused leaving with"
        f" NodeRegistryNotRegistered({holder.address}): the address is not registered"
    )
