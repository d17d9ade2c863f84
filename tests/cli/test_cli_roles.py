"""A wallet user's way out, from the terminal: stake withdrawal, credit withdrawal, claim.

`twopm` runs as a child process in an empty directory against the session's real anvil, acting for
a wallet of its own (``--key-file``); time passes with ``evm_increaseTime`` (cooldown 1 h, credit
delay 10 min in the session's deployment). Every refusal is one line naming the address.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from roles_support import earn_revenue

from clients.sdk import Wallet
from contracts import Anvil, Deployment

pytestmark = pytest.mark.usefixtures("chain_snapshot")

TWOPM = [sys.executable, "-m", "clients"]
WHEN = r"\(at \d{4}-\d\d-\d\d \d\d:\d\d UTC\)"


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


def refused(result: subprocess.CompletedProcess[str], *patterns: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("twopm: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for pattern in patterns:
        assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.fixture
def user(anvil: Anvil) -> Wallet:
    wallet = Wallet.create()
    anvil.w3.provider.make_request("anvil_setBalance", [wallet.address, hex(10 * 10**18)])  # type: ignore[arg-type]
    return wallet


@pytest.fixture
def flags(tmp_path: Path, anvil: Anvil, deployment: Deployment, user: Wallet) -> list[str]:
    """``--stack FILE --key-file FILE`` for ``user`` on the session's chain."""
    stack = tmp_path / "stack.json"
    stack.write_text(
        json.dumps(
            {
                "rpc_url": anvil.rpc_url,
                "chain_id": anvil.chain_id,
                "contracts": deployment.addresses,
                "gateway_url": None,
                "accounts": {"wallet_users": []},
            }
        )
    )
    key = tmp_path / "user.key"
    key.write_text(user._private_key_hex())
    key.chmod(0o600)
    return ["--stack", str(stack), "--key-file", str(key)]


def test_a_wallet_user_stakes_waits_out_the_cooldown_and_withdraws(
    tmp_path: Path, anvil: Anvil, user: Wallet, flags: list[str]
) -> None:
    a = user.address
    ok(twopm("faucet", "rETH", "2", *flags, cwd=tmp_path), a)
    ok(twopm("stake", "rETH", "2", *flags, cwd=tmp_path), a)
    refused(
        twopm("stake", "rETH", "--withdraw", "--complete", *flags, cwd=tmp_path),
        f"^twopm: error: nothing to withdraw: {a} has no pending stake withdrawal of rETH",
    )
    line = ok(twopm("stake", "rETH", "--withdraw", "0.5", *flags, cwd=tmp_path), a)
    assert re.search(
        rf"requested the withdrawal of 0.5 rETH shares \(request \d+\) in 0x[0-9a-f]{{64}};"
        rf" its cooldown ends in (1 h|59 min \d+ s) {WHEN}: then run"
        r" `twopm stake rETH --withdraw --complete`$",
        line,
    ), line
    refused(
        twopm("stake", "rETH", "--withdraw", "--complete", *flags, cwd=tmp_path),
        rf"^twopm: error: {a}: the cooldown of withdrawal request \d+ ends in (1 h|59 min) .*{WHEN}$",
    )
    anvil.increase_time(1800)
    refused(
        twopm("stake", "rETH", "--withdraw", "--complete", *flags, cwd=tmp_path),
        r"ends in (30 min|29 min \d+ s) ",
    )
    anvil.increase_time(1801)
    line = ok(twopm("stake", "rETH", "--withdraw", "--complete", *flags, cwd=tmp_path), a)
    assert re.search(r"withdrew 0.5 rETH \(request \d+\) in 0x[0-9a-f]{64}$", line), line
    refused(
        twopm("stake", "rETH", "--withdraw", "--complete", *flags, cwd=tmp_path),
        "nothing to withdraw",
    )


def test_a_wallet_user_withdraws_unused_credit_after_the_delay(
    tmp_path: Path, anvil: Anvil, user: Wallet, flags: list[str]
) -> None:
    a = user.address
    refused(
        twopm("credit", "withdraw", "--complete", *flags, cwd=tmp_path),
        f"nothing to withdraw: {a} has no pending credit withdrawal",
    )
    ok(twopm("deposit", "0.1", *flags, cwd=tmp_path), a)
    refused(
        twopm("credit", "withdraw", "0.5", *flags, cwd=tmp_path),
        f"{a} has 0.1 ETH of credit, less than the 0.5 ETH to withdraw",
    )
    line = ok(twopm("credit", "withdraw", "0.04", *flags, cwd=tmp_path), a)
    assert re.search(
        rf"asked to withdraw 0.04 ETH of credit in 0x[0-9a-f]{{64}}; the delay ends in"
        rf" (10 min|9 min \d+ s) {WHEN}: then run `twopm credit withdraw --complete`$",
        line,
    ), line
    refused(
        twopm("credit", "withdraw", "--complete", *flags, cwd=tmp_path),
        rf"^twopm: error: {a}: the credit withdrawal delay ends in (10 min|9 min \d+ s) {WHEN}$",
    )
    anvil.increase_time(601)
    line = ok(twopm("credit", "withdraw", "--complete", *flags, cwd=tmp_path), a)
    assert re.search(r"withdrew 0.04 ETH of credit in 0x[0-9a-f]{64}; credit left 0.06 ETH$", line)
    ok(twopm("credit", "withdraw", "0.01", *flags, cwd=tmp_path), a)
    line = ok(twopm("credit", "withdraw", "--cancel", *flags, cwd=tmp_path), a)
    assert "cancelled its credit withdrawal" in line
    refused(twopm("credit", "withdraw", "--cancel", *flags, cwd=tmp_path), "nothing to withdraw")


def test_a_wallet_user_claims_its_payouts_once(
    tmp_path: Path, anvil: Anvil, deployment: Deployment, user: Wallet, flags: list[str]
) -> None:
    a = user.address
    refused(
        twopm("claim", *flags, cwd=tmp_path),
        f"^twopm: error: nothing to claim: {a} has no payouts$",
    )
    earned = earn_revenue(anvil, deployment, user, 10**15)
    line = ok(twopm("claim", *flags, cwd=tmp_path), a)
    assert re.search(rf"claimed {earned / 10**18:f}".rstrip("0") + r" ETH in 0x[0-9a-f]{64}$", line)
    refused(twopm("claim", *flags, cwd=tmp_path), "nothing to claim")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stake", "rETH"], "give an AMOUNT to stake, --withdraw AMOUNT"),
        (["stake", "rETH", "--withdraw"], "--withdraw needs an AMOUNT to request"),
        (["stake", "rETH", "--complete"], "--complete goes with --withdraw"),
        (
            ["stake", "rETH", "--withdraw", "1", "--complete"],
            "--withdraw --complete takes no amount",
        ),
        (["stake", "rETH", "--withdraw", "abc"], "must be a number, not 'abc'"),
        (["stake", "rETH", "--withdraw", "-1"], "must be a positive number"),
        (
            ["stake", "rETH", "--withdraw", "1"],
            r"has 0 rETH shares staked, less than the 1 to withdraw",
        ),
        (["credit", "withdraw"], "give an AMOUNT of ETH to request, or --complete, or --cancel"),
        (["credit", "withdraw", "1", "--complete"], "--complete and --cancel take no amount"),
        (["credit", "withdraw", "0"], "must be a positive number"),
        (["credit", "withdraw", "1"], r"has 0 ETH of credit, less than the 1 ETH to withdraw"),
    ],
)
def test_bad_input_is_refused_in_one_line_before_anything_is_sent(
    tmp_path: Path, anvil: Anvil, user: Wallet, flags: list[str], args: list[str], message: str
) -> None:
    sent = anvil.w3.eth.get_transaction_count(user.address)
    refused(twopm(*args, *flags, cwd=tmp_path), message)
    assert anvil.w3.eth.get_transaction_count(user.address) == sent


@pytest.mark.parametrize(
    "args",
    [
        ["claim"],
        ["credit", "withdraw", "--complete"],
        ["stake", "rETH", "--withdraw", "--complete"],
    ],
)
def test_without_a_wallet_flag_the_commands_say_which_to_give(
    tmp_path: Path, flags: list[str], args: list[str]
) -> None:
    refused(
        twopm(*args, *flags[:2], cwd=tmp_path),
        "no wallet: give --keystore, --key-file, or --dev-user",
    )


def test_a_subnet_changes_hands_in_two_steps_and_each_wrong_step_is_refused(
    tmp_path: Path, anvil: Anvil, deployment: Deployment, user: Wallet, flags: list[str]
) -> None:
    from contracts import Transactor

    reg = deployment.contract("SubnetRegistry")
    Transactor(anvil.w3, user._private_key_hex()).transact(
        reg.functions.createSubnet("handed-over", 1, 0, 0)
    )
    n = str(reg.functions.subnetCount().call())
    heir = Wallet.create()
    anvil.w3.provider.make_request("anvil_setBalance", [heir.address, hex(10**18)])  # type: ignore[arg-type]
    heir_key = tmp_path / "heir.key"
    heir_key.write_text(heir._private_key_hex())
    heir_key.chmod(0o600)
    as_heir = [*flags[:2], "--key-file", str(heir_key)]
    a, b = user.address, heir.address

    line = twopm("subnet", "owner", "--subnet", n, *flags[:2], cwd=tmp_path).stdout.strip()
    assert line == f"subnet {n} is owned by {a}"
    refused(
        twopm("subnet", "accept", "--subnet", n, *as_heir, cwd=tmp_path),
        rf"{b}: no transfer of subnet {n} to you is pending \(its owner {a} has proposed it to anyone\)",
    )
    refused(
        twopm("subnet", "transfer", "--subnet", n, "--to", a, *as_heir, cwd=tmp_path),
        f"{b} does not own subnet {n}; {a} does",
    )
    refused(
        twopm("subnet", "transfer", "--subnet", n, "--to", "0x12", *flags, cwd=tmp_path),
        "--to '0x12' is not a non-zero 0x address",
    )
    refused(
        twopm("subnet", "transfer", "--subnet", "9999", "--to", b, *flags, cwd=tmp_path),
        "there is no subnet 9999",
    )
    line = ok(
        twopm("subnet", "transfer", "--subnet", n, "--to", b.lower(), *flags, cwd=tmp_path), a
    )
    assert f"proposed {b} as the owner of subnet {n} in 0x" in line
    assert f"`twopm subnet accept --subnet {n}`" in line
    line = twopm("subnet", "owner", "--subnet", n, *flags[:2], cwd=tmp_path).stdout.strip()
    assert line == f"subnet {n} is owned by {a}; transfer to {b} pending"
    refused(
        twopm("subnet", "accept", "--subnet", n, *flags, cwd=tmp_path),
        f"{a} owns subnet {n} already",
    )
    line = ok(twopm("subnet", "accept", "--subnet", n, *as_heir, cwd=tmp_path), b)
    assert f"now owns subnet {n} (from {a}) in 0x" in line
    assert reg.functions.subnetOf(int(n)).call()[0] == b
    refused(
        twopm("subnet", "transfer", "--subnet", n, "--to", b, *flags, cwd=tmp_path),
        f"{a} does not own subnet {n}; {b} does",
    )
