"""``GET /v1/config`` of a gateway without a chain, or with a chain it cannot reach."""

from __future__ import annotations

from pathlib import Path

import httpx
from service_support import serve

from core.net import free_port
from gateway import GatewaySettings, create_app

VAULT = "0x" + "11" * 20
LEDGER = "0x" + "22" * 20
REGISTRY = "0x" + "33" * 20


def settings(tmp_path: Path, **changes: object) -> GatewaySettings:
    return GatewaySettings(
        public_url="https://gw.test",
        contracts={"StakingVault": VAULT, "InferenceLedger": LEDGER, "SubnetRegistry": REGISTRY,
                   "SomethingElse": "0x" + "44" * 20},
        queue_path=tmp_path / "receipts.sqlite3",
        recorder_enabled=False,
    ).with_(**changes)  # fmt: skip


def test_config_without_a_chain_names_the_configured_contracts_and_no_tokens(
    tmp_path: Path,
) -> None:
    app = create_app(settings(tmp_path))
    with serve(app, start_timeout_s=20) as url:
        r = httpx.get(url + "/v1/config")
    assert r.status_code == 200
    assert r.json() == {
        "chain_id": 534351,
        "public_url": "https://gw.test",
        "contracts": {"StakingVault": VAULT, "InferenceLedger": LEDGER, "SubnetRegistry": REGISTRY},
        "tokens": [],
        "eip712": {"name": "2PM InferenceLedger", "version": "1"},
    }


def test_config_answers_503_when_the_chain_cannot_be_reached(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    app = create_app(
        settings(tmp_path, rpc_url=closed, event_poll_interval_s=60.0),
    )
    with serve(app, start_timeout_s=20) as url:
        r = httpx.get(url + "/v1/config", timeout=30)
        page = httpx.get(url + "/app/")
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == "the chain is unreachable"
    assert page.status_code == 200  # the page itself still loads and can show the problem
