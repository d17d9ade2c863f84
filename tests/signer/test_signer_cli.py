"""``twopm signer …`` commands (run in-process through ``signer.cli.main``; serve as a process)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from signer_support import PASSWORD, Keystore, SignerProcess

from contracts.deploy import Deployment
from signer import load_policy
from signer.cli import main, register

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    for name in list(os.environ):
        if name.startswith("TWOPM_SIGNER_"):
            monkeypatch.delenv(name)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def one_line_error(err: str) -> bool:
    return err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_register_adds_the_signer_group_to_twopm() -> None:
    parser = argparse.ArgumentParser(prog="twopm")
    register(parser.add_subparsers(dest="group"))
    args = parser.parse_args(["signer", "nonce", "set", "5", "--allow-lower"])
    assert args.nonce == 5 and args.allow_lower and callable(args.handler)


def test_import_encrypts_a_key_and_prints_only_the_address(
    run: Run, tmp_path: Path, password_file: Path
) -> None:
    account = Account.create()
    key_file = tmp_path / "key"
    key_file.write_text(bytes(account.key).hex())
    key_file.chmod(0o600)
    state = tmp_path / "state"
    code, out, err = run(
        "import", "--state-dir", str(state), "--key-file", str(key_file),
        "--password-file", str(password_file),
    )  # fmt: skip
    assert code == 0, err
    assert out.strip() == account.address
    assert bytes(account.key).hex() not in out + err
    keystore = state / "keystore.json"
    assert keystore.stat().st_mode & 0o777 == 0o600
    assert bytes(account.key).hex() not in keystore.read_text()
    assert Account.decrypt(json.loads(keystore.read_text()), PASSWORD) == account.key
    code, out, _ = run("address", "--state-dir", str(state))
    assert (code, out.strip()) == (0, account.address)
    code, _, err = run(
        "import", "--state-dir", str(state), "--key-file", str(key_file),
        "--password-file", str(password_file),
    )  # fmt: skip
    assert code == 1 and one_line_error(err) and "already exists" in err


def test_keygen_refuses_a_password_file_others_can_read(
    run: Run, tmp_path: Path, password_file: Path
) -> None:
    password_file.chmod(0o644)
    code, out, err = run(
        "keygen", "--state-dir", str(tmp_path / "s"), "--password-file", str(password_file)
    )
    assert code == 1 and out == ""
    assert one_line_error(err) and "0644" in err
    assert not (tmp_path / "s" / "keystore.json").exists()


def test_import_refuses_a_key_that_is_not_32_bytes_of_hex(
    run: Run, tmp_path: Path, password_file: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("0xnot-a-key")
    key_file.chmod(0o600)
    code, _, err = run(
        "import", "--state-dir", str(tmp_path / "s"), "--key-file", str(key_file),
        "--password-file", str(password_file),
    )  # fmt: skip
    assert code == 1 and one_line_error(err) and "32 bytes" in err
    assert "not-a-key" not in err


@pytest.mark.parametrize("flag", ["--password", "--private-key", "--secret"])
def test_a_secret_is_never_taken_from_the_command_line_nor_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["keygen", "--state-dir", str(tmp_path), flag, PASSWORD])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "never from the command line" in err
    assert PASSWORD not in err
    assert not (tmp_path / "keystore.json").exists()


def test_policy_init_writes_the_operator_policy_for_a_deployment(
    run: Run, tmp_path: Path, deployment: Deployment
) -> None:
    stack = tmp_path / "stack.json"
    stack.write_text(json.dumps({"contracts": deployment.addresses}))
    code, out, err = run(
        "policy", "init", "--state-dir", str(tmp_path), "--deployment", str(stack),
        "--chain-id", str(deployment.chain_id),
    )  # fmt: skip
    assert code == 0, err
    policy = load_policy(tmp_path / "policy.toml")
    assert policy.digest in out
    code, out, _ = run("policy", "show", "--state-dir", str(tmp_path))
    assert code == 0
    assert f"policy sha256 {policy.digest}" in out
    assert "recordBatch(uint256,bytes32,address[],uint256[],uint32)" in out
    assert deployment.addresses["StakingVault"] not in out  # the operator has no business there
    code, out, _ = run("policy", "show", "--state-dir", str(tmp_path), "--json")
    assert json.loads(out)["digest"] == policy.digest
    code, _, err = run(
        "policy", "init", "--state-dir", str(tmp_path), "--deployment", str(stack),
        "--chain-id", "1",
    )  # fmt: skip
    assert code == 1 and one_line_error(err) and "--force" in err


def test_policy_show_rejects_an_invalid_policy_in_one_line(run: Run, tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text('chain_id = 534351\n[[contracts]]\naddress = "0x12"\n')
    code, _, err = run("policy", "show", "--state-dir", str(tmp_path))
    assert code == 1 and one_line_error(err) and "not an address" in err


def test_callers_add_mints_a_secret_once_and_refuses_a_duplicate(run: Run, tmp_path: Path) -> None:
    code, out, _ = run("callers", "add", "recorder", "--state-dir", str(tmp_path))
    assert code == 0
    secret = out.strip().rsplit(" ", 1)[-1]
    assert len(bytes.fromhex(secret)) == 32
    callers = tmp_path / "callers.json"
    assert callers.stat().st_mode & 0o777 == 0o600
    code, _, err = run("callers", "add", "recorder", "--state-dir", str(tmp_path))
    assert code == 1 and one_line_error(err) and "--rotate" in err
    out_file = tmp_path / "settle.secret"
    code, out, _ = run(
        "callers", "add", "settlement", "--state-dir", str(tmp_path), "--secret-out", str(out_file)
    )
    assert code == 0 and out_file.read_text().strip() not in out
    assert out_file.stat().st_mode & 0o777 == 0o600
    code, _, err = run("callers", "add", "bad id!", "--state-dir", str(tmp_path))
    assert code == 1 and one_line_error(err)
    code, _, _ = run(
        "callers", "add", "publisher", "--allow", "createSubnet", "--allow", "publishModel",
        "--state-dir", str(tmp_path),
    )  # fmt: skip
    table = json.loads(callers.read_text())["callers"]
    assert table["publisher"]["allow"] == ["createSubnet", "publishModel"]
    assert "allow" not in table["recorder"]


def test_nonce_set_refuses_while_the_signer_runs_and_lowering_without_allow_lower(
    run: Run, make_signer: Callable[..., SignerProcess], keystore: Keystore
) -> None:
    signer = make_signer()
    with signer.client() as client:
        client.sync_nonce(10)
    state = ["--state-dir", str(signer.state_dir), "--password-file", str(keystore.password_file)]
    code, _, err = run("nonce", "set", "3", *state)
    assert code == 1 and one_line_error(err) and "running signer" in err
    code, out, _ = run("nonce", "show", "--state-dir", str(signer.state_dir))
    assert code == 0 and out.strip().endswith("next nonce 10")

    assert signer.stop() == 0
    code, _, err = run("nonce", "set", "3", *state)
    assert code == 1 and one_line_error(err) and "--allow-lower" in err
    code, out, err = run("nonce", "set", "3", "--allow-lower", *state)
    assert code == 0, err
    assert out.strip().endswith("next nonce 10 -> 3")
    code, out, _ = run("audit", "verify", "--state-dir", str(signer.state_dir))
    assert code == 0, out
    last = signer.audit_entries()[-1]
    assert (last["event"], last["before"], last["after"]) == ("admin_nonce_set", 10, 3)
    code, out, _ = run("nonce", "show", "--state-dir", str(signer.state_dir))
    assert code == 0 and out.strip().endswith("next nonce 3")


# The refusals below happen before anything listens, so they run in-process.


def test_serve_refuses_a_wrong_password_in_one_line(
    run: Run, make_signer: Callable[..., SignerProcess], tmp_path: Path
) -> None:
    signer = make_signer(start=False)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password")
    wrong.chmod(0o600)
    code, _, err = run(
        "serve", "--state-dir", str(signer.state_dir), "--password-file", str(wrong),
        "--port", "0",
    )  # fmt: skip
    assert code == 1
    assert one_line_error(err) and "wrong password" in err


def test_serve_refuses_a_non_loopback_address(
    run: Run, make_signer: Callable[..., SignerProcess], keystore: Keystore
) -> None:
    signer = make_signer(start=False)
    code, _, err = run(
        "serve", "--state-dir", str(signer.state_dir),
        "--password-file", str(keystore.password_file), "--host", "0.0.0.0",
    )  # fmt: skip
    assert code == 1
    assert one_line_error(err) and "loopback" in err


def test_a_second_signer_on_the_same_state_is_refused(
    run: Run, signer: SignerProcess, keystore: Keystore
) -> None:
    code, _, err = run(
        "serve", "--state-dir", str(signer.state_dir),
        "--password-file", str(keystore.password_file), "--port", "0",
    )  # fmt: skip
    assert code == 1
    assert one_line_error(err) and "locked by a running signer" in err


def test_serve_on_a_unix_socket_is_reachable_only_by_its_owner(
    make_signer: Callable[..., SignerProcess], tmp_path: Path
) -> None:
    sock = tmp_path / "signer.sock"
    signer = make_signer(extra_args=["--uds", str(sock)])
    assert signer.url == f"unix:{sock}"
    assert sock.stat().st_mode & 0o777 == 0o600
    with signer.client() as client:
        assert client.address() == signer.address
    assert signer.stop() == 0
    assert not sock.exists()
