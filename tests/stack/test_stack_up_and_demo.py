"""The main job, for real: `twopm up`, the terminal client commands against it, and `twopm demo`."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_support import drop_redis_namespace

TWOPM = [sys.executable, "-m", "clients"]
STARTUP_TIMEOUT_S = 900


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


REDIS_URL = "redis://127.0.0.1:6379/0"


class Up:
    """A `twopm up --replicas 2` child process (two gateways on one Redis) and what it wrote."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.proc = subprocess.Popen(
            [*TWOPM, "up", "--state-dir", str(state), "--replicas", "2", "--redis-url", REDIS_URL],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not (state / "stack.json").exists():
            if self.proc.poll() is not None:
                raise AssertionError(
                    self.proc.stdout.read() if self.proc.stdout else "twopm up exited"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("twopm up did not finish starting")
            time.sleep(1)
        self.info: dict[str, Any] = json.loads((state / "stack.json").read_text())

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=120)
        return self.proc.returncode, out or ""


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    running = Up(tmp_path_factory.mktemp("up") / "state")
    yield running
    running.stop()
    drop_redis_namespace(REDIS_URL, running.info["redis_namespace"])


def twopm(
    up: Up, *args: str, session: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    common = ["--stack", str(up.state / "stack.json"), "--session-file", str(session)]
    return subprocess.run([*TWOPM, *args, *common], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_up_writes_stack_json_and_serves_both_subnets(up):
    info = up.info
    assert {
        "gateway_url",
        "rpc_url",
        "chain_id",
        "contracts",
        "subnets",
        "signer_url",
        "accounts",
    } <= set(info)
    assert info["chain_id"] == 534351
    assert set(info["contracts"]) >= {
        "NodeRegistry",
        "StakingVault",
        "SubnetRegistry",
        "InferenceLedger",
        "MockStETH",
        "MockWstETH",
        "MockRETH",
        "WstETHRateFeed",
    }
    names = {s["name"]: s for s in info["subnets"]}
    assert names["spector-grade"]["feature_names"] == ["GPA", "TUCE", "PSI"]
    assert len(names["breast-cancer"]["feature_names"]) == 30
    assert all(
        s["model_hash"].startswith("0x") and len(s["model_hash"]) == 66 for s in info["subnets"]
    )
    assert info["accounts"]["wallet_users"][0]["private_key"].startswith("0x")
    listed = httpx.get(info["gateway_url"] + "/v1/subnets", timeout=10).json()
    deadline = time.monotonic() + 60  # the sets' errors are measured in a worker after the load
    while time.monotonic() < deadline and any(
        pset["max_abs_logit_error"] is None
        for s in listed["subnets"]
        for pset in s["ckks_parameter_sets"].values()
    ):
        time.sleep(0.2)
        listed = httpx.get(info["gateway_url"] + "/v1/subnets", timeout=10).json()
    assert {s["model_hash"] for s in listed["subnets"]} == {
        s["model_hash"] for s in info["subnets"]
    }
    for subnet in listed["subnets"]:  # the named CKKS sets, measured on the trained models
        sets = subnet["ckks_parameter_sets"]
        assert 0 < sets["compact"]["max_abs_logit_error"] <= 2e-3
        assert 0 < sets["precise"]["max_abs_logit_error"] <= 1e-4
    config = httpx.get(info["gateway_url"] + "/v1/config", timeout=10).json()
    assert config["dev_accounts"] == [
        a["address"].lower() for a in info["accounts"]["wallet_users"]
    ]
    assert httpx.get(info["signer_url"] + "/healthz", timeout=10).status_code == 200
    # Two replicas on one Redis, both serving.
    assert len(info["gateway_urls"]) == 2 and info["gateway_urls"][0] == info["gateway_url"]
    assert info["redis_namespace"].startswith("twopm-up-")
    for url in info["gateway_urls"]:
        assert len(httpx.get(url + "/v1/subnets", timeout=10).json()["subnets"]) == 2
    assert {"anvil", "signer", "gateway", "gateway-2"} <= set(info["pids"]) and all(
        _alive(p) for p in info["pids"].values()
    )


@pytest.mark.slow
def test_a_wallet_user_at_the_terminal_logs_in_stakes_pays_predicts_and_proves(up, tmp_path):
    session = tmp_path / "sessions.json"
    user = ["--dev-user", "1"]
    result = twopm(up, "predict", str(tmp_path / "none.csv"), *user, session=session)
    assert result.returncode == 1 and "not signed in" not in result.stderr  # the CSV is read first
    result = twopm(up, "me", *user, session=session)
    assert result.returncode == 1 and "run `twopm login --dev-user 1` first" in result.stderr

    assert twopm(up, "login", *user, session=session).returncode == 0
    assert oct(session.stat().st_mode & 0o777) == "0o600"
    # one identity rule: an explicit wallet flag wins over the last session, or is refused
    users = [u["address"] for u in up.info["accounts"]["wallet_users"]]
    result = twopm(up, "me", "--dev-user", "0", session=session)
    assert result.returncode == 1 and users[1] not in result.stdout
    assert f"--dev-user 0 ({users[0]}) is not signed in" in result.stderr
    assert "run `twopm login --dev-user 0` first" in result.stderr
    assert twopm(up, "login", "--dev-user", "0", session=session).returncode == 0
    for flags, shown in ((user, users[1]), (["--dev-user", "0"], users[0]), ([], users[0])):
        result = twopm(up, "me", *flags, session=session)
        assert result.returncode == 0 and result.stdout.startswith(f"address      {shown}")
    # test stETH for the user from the local faucet
    for args in (
        ("faucet", "stETH", "0.3"),
        ("stake", "stETH", "0.2"),
        ("deposit", "0.01"),
        ("authorize", "0.01", "--days", "1"),
    ):
        result = twopm(up, *args, *user, session=session)
        assert result.returncode == 0, result.stderr
    me = twopm(up, "me", *user, session=session)
    assert "cap left     0.01 ETH" in me.stdout, me.stdout

    rows = tmp_path / "rows.csv"
    with rows.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["GPA", "TUCE", "PSI"])
        writer.writerows([[2.66, 20, 0], [3.92, 29, 1], [3.51, 26, 1]])
    plain = twopm(up, "predict", str(rows), "--subnet", "1", *user, session=session)
    encrypted = twopm(
        up, "predict", str(rows), "--subnet", "1", "--encrypted", *user, session=session
    )
    assert plain.returncode == 0 and encrypted.returncode == 0, plain.stderr + encrypted.stderr
    p_plain = [float(line.split(",")[1]) for line in plain.stdout.strip().splitlines()[1:]]
    p_enc = [float(line.split(",")[1]) for line in encrypted.stdout.strip().splitlines()[1:]]
    assert len(p_plain) == 3 and max(abs(a - b) for a, b in zip(p_plain, p_enc, strict=True)) < 1e-5
    proven = twopm(up, "predict", str(rows), "--subnet", "1", "--prove", *user, session=session)
    assert proven.returncode == 0, proven.stdout + proven.stderr
    lines = [line.split(",") for line in proven.stdout.strip().splitlines()[1:]]
    assert [line[3] for line in lines] == ["True"] * 3
    assert max(abs(float(line[1]) - p) for line, p in zip(lines, p_plain, strict=True)) < 1e-12
    assert "every proof verified on chain" in proven.stderr
    both = twopm(up, "predict", str(rows), "--prove", "--encrypted", *user, session=session)
    assert both.returncode == 1 and "drop --encrypted" in both.stderr
    receipt_id = encrypted.stderr.strip().split("receipts: ")[-1].split(",")[0].strip()
    proof = twopm(up, "receipt", receipt_id, "--wait", "120", *user, session=session)
    assert proof.returncode == 0 and "valid on chain" in proof.stdout, proof.stdout + proof.stderr

    bad = tmp_path / "bad.csv"
    bad.write_text("GPA,TUCE,PSI\n2.6,twenty,0\n")
    result = twopm(up, "predict", str(bad), *user, session=session)
    assert (
        result.returncode == 1
        and "line 2, column 'TUCE'" in result.stderr
        and "Traceback" not in result.stderr
    )
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("GPA,TUCE\n2.6,20\n")
    result = twopm(up, "predict", str(wrong), *user, session=session)
    assert result.returncode == 1 and "lacks the subnet's features: PSI" in result.stderr

    assert twopm(up, "logout", *user, session=session).returncode == 0
    result = twopm(up, "me", *user, session=session)
    assert result.returncode == 1 and "twopm login" in result.stderr
    assert twopm(up, "me", "--dev-user", "0", session=session).returncode == 0


@pytest.mark.slow
def test_anyone_verifies_the_spector_training_on_chain_and_the_unproven_one_fails(up, tmp_path):
    session = tmp_path / "sessions.json"
    ok = twopm(up, "verify", "training", "--subnet", "1", "--json", session=session)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["verified"] is True and report["n_rows"] == 32 and len(report["holders"]) == 3
    assert report["max_abs_gradient"] < min(report["tolerance"])
    # breast cancer (30 features) is proven (in chunks) only with --chunked-training-proofs: no
    # proofs here, so it cannot verify
    bc = twopm(up, "verify", "training", "--subnet", "2", session=session)
    assert bc.returncode == 1 and "training NOT verified" in bc.stdout, bc.stdout + bc.stderr


@pytest.mark.slow
def test_up_stops_every_child_on_sigterm(up):
    pids = up.info["pids"]
    code, out = up.stop()
    assert code == 0, out
    time.sleep(1)
    assert not [name for name, pid in pids.items() if _alive(pid)]


@pytest.mark.slow
def test_demo_tours_the_network_and_reports_every_subnet(tmp_path):
    out = tmp_path / "demo.json"
    result = subprocess.run(
        [*TWOPM, "demo", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT_S + 600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads(out.read_text())
    assert all(check["ok"] for check in summary["checks"]) and len(summary["checks"]) >= 15
    by_name = {s["name"]: s for s in summary["subnets"]}
    spector = by_name["spector-grade"]
    # the textbook maximum-likelihood fit (Spector & Mazzeo 1980; Greene, Econometric Analysis)
    expected = {"intercept": -13.0213, "GPA": 2.8261, "TUCE": 0.0952, "PSI": 2.3787}
    for name, value in expected.items():
        assert spector["coefficients"][name] == pytest.approx(value, abs=1e-4)
    for subnet in summary["subnets"]:
        assert subnet["max_abs_logit_error"] <= 1e-4
        assert subnet["receipts_proven"] == subnet["receipts"] > 0
        # every row three times (plaintext, two CKKS layouts), plus one proven row billed as
        # the gateway's proof_price_rows (default 10)
        assert subnet["requests_billed"] == 3 * subnet["rows"] + 10
        proof = subnet["proof"]
        assert proof["verified_on_chain"] is True and proof["proof_bytes"] == 256
        assert 100_000 < proof["verify_gas"] < 600_000 and proof["proving_s"] > 0
        assert len(subnet["payouts_claimed_wei"]) == 3 and all(
            v > 0 for v in subnet["payouts_claimed_wei"].values()
        )
    trained = spector["training_verification"]
    assert trained["verified"] is True and len(trained["holders"]) == 3
    assert all(h["proof_verified_on_chain"] for h in trained["holders"])
    assert 0 <= trained["max_abs_gradient"] <= min(trained["tolerance"])
    unproven = by_name["breast-cancer"]["training_verification"]
    assert unproven["verified"] is None and "--chunked-training-proofs" in unproven["not_proven"]


@pytest.mark.parametrize("command", ["demo", "up"])
def test_main_commands_fail_with_one_line_when_the_network_cannot_start(tmp_path, command):
    env = {**os.environ, "TWOPM_ANVIL_BIN": "/nonexistent/anvil"}
    args = [command] if command == "demo" else [command, "--state-dir", str(tmp_path)]
    result = subprocess.run([*TWOPM, *args], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 1 and "cannot run anvil" in result.stderr
    assert result.stderr.startswith("twopm: error:") and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--replicas", "0"], "--replicas must be at least 1"),
        (["--replicas", "2", "--redis-url", "redis://127.0.0.1:1/0"], "no Redis answers"),
    ],
)
def test_up_refuses_replicas_without_a_redis_in_one_line(tmp_path, args, message):
    result = subprocess.run(
        [*TWOPM, "up", "--state-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_client_commands_need_a_wallet_and_a_network(tmp_path):
    result = subprocess.run(
        [*TWOPM, "deposit", "0.1", "--stack", str(tmp_path / "missing.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "cannot read" in result.stderr
    stack = tmp_path / "stack.json"
    stack.write_text(
        json.dumps(
            {"rpc_url": "http://127.0.0.1:9", "contracts": {}, "gateway_url": "http://127.0.0.1:9"}
        )
    )
    result = subprocess.run(
        [*TWOPM, "deposit", "0.1", "--stack", str(stack)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "no wallet" in result.stderr
    key = tmp_path / "key"
    key.write_text("0x" + "11" * 32)
    key.chmod(0o644)
    result = subprocess.run(
        [*TWOPM, "deposit", "0.1", "--stack", str(stack), "--key-file", str(key)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "chmod 600" in result.stderr
    key.chmod(0o600)
    result = subprocess.run(
        [*TWOPM, "deposit", "-3", "--stack", str(stack), "--key-file", str(key)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and ("positive" in result.stderr or "no chain" in result.stderr)
    assert "Traceback" not in result.stderr
