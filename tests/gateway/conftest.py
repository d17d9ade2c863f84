from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_support import PUBLIC_URL
from service_support import drop_redis_namespace

from gateway import GatewaySettings

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, object]]:
    """Settings overrides for one backend; Redis gets a fresh namespace, wiped afterwards."""
    if request.param == "memory":
        yield {"queue_path": tmp_path / "receipts.sqlite3"}
        return
    namespace = f"twopm-test-{uuid.uuid4().hex[:12]}"
    yield {"redis_url": REDIS_URL, "redis_namespace": namespace}
    drop_redis_namespace(REDIS_URL, namespace)


@pytest.fixture
def base_settings(backend: dict[str, object]) -> GatewaySettings:
    return GatewaySettings(public_url=PUBLIC_URL, recorder_enabled=False).with_(**backend)


# ----------------------------------------------------------------------------- chain side

from eth_account import Account  # noqa: E402
from gateway_chain import World  # noqa: E402
from service_support import SignerProcess, deploy_for_operator, start_signer  # noqa: E402

from contracts.chain import Anvil  # noqa: E402
from contracts.deploy import Deployment  # noqa: E402


@pytest.fixture(scope="session")
def operator_key() -> bytes:
    return bytes(Account.create().key)


@pytest.fixture(scope="session")
def deployment(anvil: Anvil, operator_key: bytes) -> Deployment:
    """Overrides the suite-wide deployment: the operator is the gateway tests' signer key."""
    operator = Account.from_key(operator_key).address
    return deploy_for_operator(anvil, operator, staking_cooldown_s=3600)


@pytest.fixture(scope="session")
def signer_proc(
    tmp_path_factory: pytest.TempPathFactory, deployment: Deployment, operator_key: bytes
) -> Iterator[SignerProcess]:
    proc = start_signer(tmp_path_factory.mktemp("gw-signer"), deployment, operator_key)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def world(anvil: Anvil, deployment: Deployment) -> World:
    return World(anvil.w3, deployment, anvil.accounts[0].private_key)


@pytest.fixture
def new_user(world: World, anvil: Anvil) -> Callable[..., Any]:
    def make(**kwargs: Any) -> Any:
        return world.new_user(funder_key=anvil.accounts[4].private_key, **kwargs)

    return make


@pytest.fixture
def chain_settings(
    base_settings: GatewaySettings, anvil: Anvil, deployment: Deployment, signer_proc: SignerProcess
) -> GatewaySettings:
    return base_settings.with_(
        rpc_url=anvil.rpc_url,
        contracts=dict(deployment.addresses),
        signer_url=signer_proc.url,
        signer_secret=signer_proc.secret_hex,
        signer_caller_id="gateway",
        enable_noop_route=True,
        recorder_enabled=False,
        batch_max_age_s=0.2,
        event_poll_interval_s=0.2,
        settle_interval_s=0,
    )


@pytest.fixture(scope="module")
def module_chain(anvil: Anvil, deployment: Deployment, world: Any) -> Iterator[None]:
    """Revert the chain after the module (``world`` first: its session subnet must survive)."""
    snapshot = anvil.snapshot()
    yield
    anvil.revert(snapshot)
