"""The terminal client commands' refusals: one line on stderr, a non-zero exit, the cause and the fix.

These run `twopm` as a user would (a child process, in an empty directory) against the session's
real anvil; the commands that need a gateway are exercised against `twopm up` in tests/stack.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clients.sdk import Wallet
from contracts import Anvil, Deployment

TWOPM = [sys.executable, "-m", "clients"]
FAST_SCRYPT = 2**4


def twopm(*args: str, cwd: Path, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "HOME": str(home or cwd)}
    return subprocess.run(
        [*TWOPM, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("twopm: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def stack_file(tmp_path: Path, anvil: Anvil, deployment: Deployment) -> Path:
    """A stack.json naming the session's anvil and contracts (no gateway), as `twopm up` writes."""
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
    return stack


@pytest.fixture
def key_file(tmp_path: Path, anvil: Anvil) -> Path:
    """A fresh wallet's key file (mode 0600), funded with 1 ETH."""
    wallet = Wallet.create()
    anvil.w3.provider.make_request("anvil_setBalance", [wallet.address, hex(10**18)])  # type: ignore[arg-type]
    return private(tmp_path / "wallet.key", wallet._private_key_hex())


def test_dev_user_without_a_stack_file_says_to_start_twopm_up(tmp_path: Path) -> None:
    result = twopm("login", "--dev-user", "0", cwd=tmp_path)
    one_line_error(result, "--dev-user needs the stack file of `twopm up`", "start `twopm up`")
    assert "lists 0 wallet users" not in result.stderr


def test_a_command_without_a_stack_file_or_gateway_says_what_to_give(tmp_path: Path) -> None:
    result = twopm("me", cwd=tmp_path)
    one_line_error(result, "no gateway", ".state/up/stack.json does not exist", "--gateway URL")


def test_login_with_a_missing_keystore_is_one_line(tmp_path: Path) -> None:
    result = twopm("login", "--keystore", "missing.json", cwd=tmp_path)
    one_line_error(result, "cannot read keystore missing.json")


def test_login_with_a_wrong_keystore_password_is_one_line(tmp_path: Path) -> None:
    Wallet.create().to_keystore(tmp_path / "key.json", "right", iterations=FAST_SCRYPT)
    password = private(tmp_path / "password.txt", "wrong\n")
    result = twopm(
        "login", "--keystore", "key.json", "--password-file", str(password), "--gateway",
        "http://127.0.0.1:9", cwd=tmp_path,
    )  # fmt: skip
    one_line_error(result, "wrong password for keystore key.json")


def test_a_password_file_others_can_read_is_refused(tmp_path: Path) -> None:
    Wallet.create().to_keystore(tmp_path / "key.json", "right", iterations=FAST_SCRYPT)
    password = private(tmp_path / "password.txt", "right\n", mode=0o644)
    result = twopm(
        "login", "--keystore", "key.json", "--password-file", "password.txt", "--gateway",
        "http://127.0.0.1:9", cwd=tmp_path,
    )  # fmt: skip
    one_line_error(result, "password file password.txt has mode 0644", "chmod 600 password.txt")
    assert password.exists()


def test_a_key_file_others_can_read_is_refused(tmp_path: Path, stack_file: Path) -> None:
    loose = private(tmp_path / "k", "0x" + "11" * 32, mode=0o640)
    result = twopm(
        "deposit", "0.1", "--stack", str(stack_file), "--key-file", str(loose), cwd=tmp_path
    )
    one_line_error(result, "mode 0640", f"chmod 600 {loose}")


def test_depositing_more_than_the_wallet_holds_names_the_balance_not_an_rpc_error(
    tmp_path: Path, stack_file: Path, key_file: Path
) -> None:
    result = twopm(
        "deposit", "1000000", "--stack", str(stack_file), "--key-file", str(key_file), cwd=tmp_path
    )
    line = one_line_error(result, "holds 1000000000000000000 wei of ETH, fewer than")
    assert "Web3RPCError" not in line and "{" not in line


@pytest.mark.parametrize("amount", ["0", "-1", "NaN", "ten"])
def test_a_bad_amount_is_refused_before_anything_is_sent(
    tmp_path: Path, stack_file: Path, key_file: Path, amount: str
) -> None:
    result = twopm(
        "deposit", amount, "--stack", str(stack_file), "--key-file", str(key_file), cwd=tmp_path
    )
    one_line_error(result, "the amount must be")


def test_the_faucet_gives_test_tokens_on_a_local_chain(
    tmp_path: Path, stack_file: Path, key_file: Path, anvil: Anvil, deployment: Deployment
) -> None:
    address = Wallet.from_key_file(key_file).address
    for token in ("stETH", "wstETH", "rETH"):
        result = twopm(
            "faucet", token, "0.25", "--stack", str(stack_file), "--key-file", str(key_file),
            cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"{address} got 0.25 test {token} in 0x"), result.stdout
        assert result.stdout.rstrip().endswith(f"balance 0.25 {token}"), result.stdout
    staked = twopm(
        "stake", "stETH", "0.25", "--stack", str(stack_file), "--key-file", str(key_file),
        cwd=tmp_path,
    )  # fmt: skip
    assert staked.returncode == 0 and staked.stdout.startswith(f"{address} staked 0.25 stETH")


def test_staking_without_tokens_points_at_the_faucet(
    tmp_path: Path, stack_file: Path, key_file: Path
) -> None:
    result = twopm(
        "stake", "rETH", "0.2", "--stack", str(stack_file), "--key-file", str(key_file),
        cwd=tmp_path,
    )  # fmt: skip
    one_line_error(result, "holds 0 rETH, less than 0.2", "`twopm faucet rETH 0.2 --key-file")


def test_the_faucet_is_refused_on_a_chain_that_is_not_a_local_anvil(
    tmp_path: Path, key_file: Path, deployment: Deployment
) -> None:
    with Anvil.start(chain_id=1) as mainnet_id:
        stack = tmp_path / "other.json"
        stack.write_text(
            json.dumps({"rpc_url": mainnet_id.rpc_url, "contracts": deployment.addresses})
        )
        result = twopm(
            "faucet", "stETH", "1", "--stack", str(stack), "--key-file", str(key_file), cwd=tmp_path
        )
    one_line_error(result, "test tokens exist only on a local anvil chain", "this is chain 1")


def test_a_wallet_flag_without_its_own_session_is_refused_even_after_another_login(
    tmp_path: Path,
) -> None:
    # a session exists for another address; --keystore names its address without a password
    keystore = Wallet.create().to_keystore(tmp_path / "key.json", "pw", iterations=FAST_SCRYPT)
    mine = Wallet.from_keystore(keystore, password="pw").address
    gateway = "http://127.0.0.1:9"
    other = Wallet.create().address.lower()
    sessions = private(
        tmp_path / "sessions.json",
        json.dumps({gateway: {"current": other, "tokens": {other: "token"}}}),
    )
    result = twopm(
        "me", "--keystore", "key.json", "--gateway", gateway, "--session-file", str(sessions),
        cwd=tmp_path,
    )  # fmt: skip
    one_line_error(
        result,
        f"--keystore key.json ({mine}) is not signed in to {gateway}",
        "run `twopm login --keystore key.json` first",
    )
