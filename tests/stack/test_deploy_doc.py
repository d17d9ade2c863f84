"""docs/deploy.md's checked blocks, run unchanged against a local chain standing in for Scroll Sepolia."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from contracts import Anvil, Transactor, load_artifact
from contracts.scroll import read_l1_fee_params
from core.net import free_port

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploy.md"


def checked_blocks(text: str) -> list[str]:
    """The ```sh blocks that follow a ``<!-- checked -->`` line, in order."""
    return re.findall(r"<!-- checked -->\n```sh\n(.*?)```", text, flags=re.S)


def test_the_doc_has_the_steps_it_promises() -> None:
    blocks = checked_blocks(DOC.read_text())
    assert len(blocks) == 5
    joined = "\n".join(blocks)
    for command in (
        "twopm signer keygen",
        "twopm chain deploy",
        "twopm chain feed",
        "twopm signer policy init",
        "twopm signer serve",
        "twopm gateway serve --cert",
    ):
        assert command in joined, command


def test_the_deploy_guide_runs_against_a_local_scroll_sepolia(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with Anvil.start(log_path=tmp_path / "anvil.log") as chain:
        assert chain.chain_id == 534351 and read_l1_fee_params(chain.w3) is not None
        deployer = chain.accounts[0]
        # Lido's wstETH on Sepolia is a plain ERC-20 to the vault (valued through the feed only)
        wsteth = Transactor(chain.w3, deployer.private_key).deploy(
            "MockWstETH", deployer.address, 10**18
        )
        key_file = state / "deployer.key"
        key_file.write_text(deployer.private_key + "\n")
        key_file.chmod(0o600)
        signer_port, gateway_port = free_port(), free_port()
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "RPC": chain.rpc_url,
            "WSTETH": wsteth.address,
            "STATE": str(state),
            "SIGNER_PORT": str(signer_port),
            "GATEWAY_PORT": str(gateway_port),
        }
        script = "set -euo pipefail\n" + "\n".join(checked_blocks(DOC.read_text()))
        log = tmp_path / "script.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", script],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
            operator = (state / "operator.address").read_text().strip()
            deployment = json.loads((state / "deployment.json").read_text())
            assert deployment["chain_id"] == 534351
            assert deployment["operator"].lower() == operator.lower()
            assert deployment["tokens"] == {"wstETH": wsteth.address}
            feed = deployment["contracts"]["WstETHRateFeed"]
            assert deployment["rate_feeds"] == {"wstETH": feed}
            assert "round 2, answer 1210000000000000000" in log.read_text()
            assert "[l1_fee]" in (state / "signer" / "policy.toml").read_text()
            url = f"https://127.0.0.1:{gateway_port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    with httpx.Client(verify=False, timeout=5) as client:  # the self-signed cert
                        health = client.get(f"{url}/healthz")
                        config = client.get(f"{url}/v1/config").json()
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, log.read_text()[-3000:]
                    time.sleep(0.5)
            assert health.status_code == 200
            assert config["chain_id"] == 534351
            assert config["tokens"] == [{"symbol": "wstETH", "address": wsteth.address}]
            vault = chain.w3.eth.contract(
                address=deployment["contracts"]["StakingVault"],
                abi=load_artifact("StakingVault").abi,
            )
            assert vault.functions.rateOf(wsteth.address).call() == 121 * 10**16
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # the script's session: signer and gateway
            time.sleep(1)
