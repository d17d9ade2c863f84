from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contracts import Deployment
from core.net import free_port

TWOPM = [sys.executable, "-m", "clients"]


def run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TWOPM, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_chain_up_serves_and_deploys_until_sigterm_then_stops_anvil(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [*TWOPM, "chain", "up", "--port", str(port), "--state-dir", str(tmp_path), "--deploy"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "chain.json").exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline
            time.sleep(0.2)
        info = json.loads((tmp_path / "chain.json").read_text())
        assert info["chain_id"] == 534351 and info["rpc_url"] == f"http://127.0.0.1:{port}"
        assert len(info["accounts"]) == 10 and info["accounts"][0]["private_key"].startswith("0x")
        deployment = Deployment.read(tmp_path / "deployment.json")
        assert set(deployment.addresses) >= {
            "NodeRegistry",
            "StakingVault",
            "SubnetRegistry",
            "InferenceLedger",
        }
        anvil_pid = info["pid"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(anvil_pid, 0)


def test_chain_deploy_writes_a_deployment_file_for_a_running_chain(tmp_path, anvil):
    out = tmp_path / "deployment.json"
    result = run(
        "chain",
        "deploy",
        "--rpc-url",
        anvil.rpc_url,
        "--dev-account",
        "3",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    deployment = Deployment.read(out, anvil.w3)
    assert deployment.chain_id == 534351 and deployment.deployer == anvil.accounts[3].address
    assert (
        deployment.contract("InferenceLedger").functions.operator().call()
        == anvil.accounts[3].address
    )
    assert deployment.contract("StakingVault").functions.tokens().call() == list(
        deployment.tokens.values()
    )


def test_chain_deploy_reads_the_key_from_a_private_file_only(tmp_path, anvil):
    key_file = tmp_path / "deployer.key"
    key_file.write_text(anvil.accounts[5].private_key + "\n")
    key_file.chmod(0o644)
    result = run(
        "chain",
        "deploy",
        "--rpc-url",
        anvil.rpc_url,
        "--private-key-file",
        str(key_file),
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip().startswith("twopm: error: key file") and "chmod 600" in result.stderr
    )
    assert "Traceback" not in result.stderr
    key_file.chmod(0o600)
    out = tmp_path / "d.json"
    result = run(
        "chain",
        "deploy",
        "--rpc-url",
        anvil.rpc_url,
        "--private-key-file",
        str(key_file),
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert Deployment.read(out).deployer == anvil.accounts[5].address


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["chain", "deploy", "--rpc-url", "http://127.0.0.1:9", "--dev-account", "0"],
            "cannot reach a JSON-RPC endpoint",
        ),
        (["chain", "deploy", "--private-key-file", "/nonexistent/key"], "cannot read key file"),
        (["chain", "deploy", "--dev-account", "0", "--token", "DAI=0x0"], "--token 'DAI=0x0'"),
        (["chain", "deploy", "--dev-account", "100"], "--dev-account must be between 0 and 99"),
        (
            ["chain", "deploy", "--dev-account", "0", "--operator", "0xnothex"],
            "--operator '0xnothex' is not an address",
        ),
        (
            ["chain", "deploy", "--dev-account", "0", "--fee-recipient", "0x12"],
            "--fee-recipient '0x12' is not an address",
        ),
        (["chain", "up", "--port", "99999999"], "--port 99999999 is not a TCP port"),
        (["chain", "up", "--port", "-1"], "--port -1 is not a TCP port"),
    ],
)
def test_chain_commands_refuse_bad_input_with_one_line(tmp_path, anvil, args, message):
    if "--rpc-url" not in args and args[1] == "deploy":
        args = [*args, "--rpc-url", anvil.rpc_url]
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_a_key_file_with_garbage_is_refused(tmp_path, anvil):
    key_file = tmp_path / "k"
    key_file.write_text("not a key")
    key_file.chmod(0o600)
    result = run(
        "chain",
        "deploy",
        "--rpc-url",
        anvil.rpc_url,
        "--private-key-file",
        str(key_file),
        cwd=tmp_path,
    )
    assert result.returncode == 1 and "does not hold a valid private key" in result.stderr


def test_twopm_without_a_command_prints_usage_and_fails(tmp_path):
    result = run(cwd=tmp_path)
    assert result.returncode == 2 and "usage: twopm" in result.stderr


def test_an_anvil_that_cannot_start_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TWOPM_ANVIL_BIN", "/nonexistent/anvil")
    result = subprocess.run(
        [*TWOPM, "chain", "up", "--port", "0", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert result.returncode == 1 and result.stderr.startswith("twopm: error:"), result.stderr
    assert "Traceback" not in result.stderr


def test_chain_deploy_lists_existing_tokens_and_values_wsteth_through_its_feed(
    tmp_path, anvil, deployment
):
    a = deployment.addresses
    out = tmp_path / "scroll.json"
    result = run(
        "chain", "deploy",
        "--rpc-url", anvil.rpc_url,
        "--dev-account", "4",
        "--token", f"stETH={a['MockStETH']}",
        "--token", f"wstETH={a['MockWstETH']}:feed={a['WstETHRateFeed']}:max_age=3600",
        "--token", f"rETH={a['MockRETH']}",
        "--out", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    scroll = Deployment.read(out, anvil.w3)
    assert scroll.tokens == {
        "stETH": a["MockStETH"],
        "wstETH": a["MockWstETH"],
        "rETH": a["MockRETH"],
    }
    assert scroll.rate_feeds == {"wstETH": a["WstETHRateFeed"]}
    assert "WstETHRateFeed" not in scroll.addresses  # an existing feed is not deployed again
    vault = scroll.contract("StakingVault")
    assert vault.functions.rateFeed(a["MockWstETH"]).call() == (
        a["WstETHRateFeed"],
        3600,
        10**18,
        2 * 10**18,
    )
    assert vault.functions.rateFeed(a["MockRETH"]).call()[0] == "0x" + "00" * 20
    feed = deployment.contract("WstETHRateFeed")
    answer = feed.functions.latestRoundData().call()[1]
    assert vault.functions.rateOf(a["MockWstETH"]).call() in (answer, 0)  # 0 only if stale by now


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("wstETH={w}:feed=0x12", "the options need feed=ADDRESS"),
        ("wstETH={w}:max_age=60", "the options need feed=ADDRESS"),
        ("wstETH={w}:feed={f}:colour=red", "unknown or repeated option 'colour=red'"),
        ("wstETH={w}:feed={f}:feed={f}", "unknown or repeated option"),
        ("wstETH={w}:feed={f}:max_age=soon", "max_age, min, max and answer must be integers"),
        ("rETH={w}:feed=new", "feed=new deploys a wstETH/stETH stand-in only"),
        ("wstETH={w}:feed={f}:answer=5", "answer= is the first answer of feed=new only"),
        ("stETH={s}:feed={f}", "stETH is valued by its shares"),
        ("wstETH={w}:feed={s}", "not an AggregatorV3Interface feed"),
        (
            "wstETH={w}:feed=0x000000000000000000000000000000000000dEaD",
            "not an AggregatorV3Interface feed",
        ),
        ("wstETH={w}:feed={f}:max_age=0", "StakingVaultInvalidRateFeed"),
        ("wstETH={w}:feed={f}:min=3:max=2", "StakingVaultInvalidRateFeed"),
    ],
)
def test_chain_deploy_refuses_bad_feed_options_with_one_line(
    tmp_path, anvil, deployment, token, message
):
    a = deployment.addresses
    value = token.format(w=a["MockWstETH"], f=a["WstETHRateFeed"], s=a["MockStETH"])
    result = run(
        "chain", "deploy", "--rpc-url", anvil.rpc_url, "--dev-account", "4", "--token", value,
        "--out", str(tmp_path / "d.json"),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "d.json").exists()


def test_feed_new_deploys_the_stand_in_and_twopm_chain_feed_keeps_it_fresh(
    tmp_path, anvil, deployment
):
    a = deployment.addresses
    out = tmp_path / "sepolia.json"
    result = run(
        "chain", "deploy", "--rpc-url", anvil.rpc_url, "--dev-account", "4",
        "--token", f"wstETH={a['MockWstETH']}:feed=new:answer=1230000000000000000",
        "--out", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sepolia = Deployment.read(out, anvil.w3)
    feed_address = sepolia.addresses["WstETHRateFeed"]
    assert sepolia.rate_feeds == {"wstETH": feed_address} and feed_address != a["WstETHRateFeed"]
    feed = sepolia.contract("WstETHRateFeed")
    assert feed.functions.owner().call() == anvil.accounts[4].address
    vault = sepolia.contract("StakingVault")
    assert vault.functions.rateOf(a["MockWstETH"]).call() == 123 * 10**16
    result = run(
        "chain", "feed", "--rpc-url", anvil.rpc_url, "--dev-account", "4",
        "--deployment", str(out), "--answer", "1240000000000000000",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "round 2, answer 1240000000000000000" in result.stdout
    assert vault.functions.rateOf(a["MockWstETH"]).call() == 124 * 10**16
    # another key does not own the stand-in; a bad answer or a deployment without it is refused
    for args, message in [
        (["--dev-account", "5", "--answer", "1"], "the feed refused the answer"),
        (["--dev-account", "4", "--answer", "0"], "--answer must be positive"),
    ]:
        result = run(
            "chain", "feed", "--rpc-url", anvil.rpc_url, "--deployment", str(out), *args,
            cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    bare = tmp_path / "bare.json"
    bare.write_text(out.read_text().replace('"WstETHRateFeed"', '"Other"'))
    result = run(
        "chain", "feed", "--rpc-url", anvil.rpc_url, "--dev-account", "4",
        "--deployment", str(bare), "--answer", "1",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1 and "has no WstETHRateFeed" in result.stderr
    result = run(
        "chain", "feed", "--rpc-url", anvil.rpc_url, "--dev-account", "4",
        "--deployment", str(tmp_path / "missing.json"), "--answer", "1",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1 and "cannot read the deployment file" in result.stderr
