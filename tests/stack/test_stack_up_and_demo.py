"""The main job, for real: `twopm up` and `twopm demo` as child processes, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

TWOPM = [sys.executable, "-m", "clients"]
STARTUP_TIMEOUT_S = 900


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_up_writes_stack_json_serves_the_subnets_and_stops_every_child_on_sigterm(tmp_path):
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [*TWOPM, "up", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not (state / "stack.json").exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "twopm up did not finish starting"
            time.sleep(1)
        info = json.loads((state / "stack.json").read_text())
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
        }
        names = {s["name"]: s for s in info["subnets"]}
        assert names["spector-grade"]["feature_names"] == ["GPA", "TUCE", "PSI"]
        assert len(names["breast-cancer"]["feature_names"]) == 30
        assert all(
            s["model_hash"].startswith("0x") and len(s["model_hash"]) == 66 for s in info["subnets"]
        )
        assert info["accounts"]["wallet_users"][0]["private_key"].startswith("0x")
        listed = httpx.get(info["gateway_url"] + "/v1/subnets", timeout=10).json()
        assert {s["model_hash"] for s in listed["subnets"]} == {
            s["model_hash"] for s in info["subnets"]
        }
        assert httpx.get(info["signer_url"] + "/healthz", timeout=10).status_code == 200
        pids = info["pids"]
        assert {"anvil", "signer", "gateway"} <= set(pids) and all(_alive(p) for p in pids.values())
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
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
        assert subnet["requests_billed"] == 3 * subnet["rows"]
        assert len(subnet["payouts_claimed_wei"]) == 3 and all(
            v > 0 for v in subnet["payouts_claimed_wei"].values()
        )


def test_demo_fails_with_one_line_when_the_network_cannot_start(tmp_path):
    env = {**os.environ, "TWOPM_ANVIL_BIN": "/nonexistent/anvil"}
    result = subprocess.run([*TWOPM, "demo"], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 1
    assert "twopm: error: the network did not start: cannot run anvil" in result.stderr
    assert "Traceback" not in result.stderr


def test_up_fails_with_one_line_when_the_network_cannot_start(tmp_path):
    env = {**os.environ, "TWOPM_ANVIL_BIN": "/nonexistent/anvil"}
    result = subprocess.run(
        [*TWOPM, "up", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert (
        result.returncode == 1
        and "twopm: error: twopm up failed: cannot run anvil" in result.stderr
    )
    assert "Traceback" not in result.stderr
