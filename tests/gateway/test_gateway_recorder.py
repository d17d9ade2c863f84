from __future__ import annotations

import asyncio
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
from gateway_chain import PRICE_WEI, World
from gateway_support import free_port, serve, session_headers, sign_in

from contracts.tx import Transactor as DevTransactor
from gateway import Caller, GatewaySettings, create_app
from gateway._recorder import (
    SCROLL_CONFIRMATIONS,
    Recorder,
    confirmations_of,
    required_confirmations,
)
from gateway._services import build_services


def _spent(world: World, address: str) -> int:
    """Wei debited from ``address`` under its current authorisation."""
    if any(e.get("name") == "spentOf" for e in world.ledger.abi):
        return int(world.ledger.functions.spentOf(address).call())
    return int(world.ledger.functions.accountOf(address).call()[1])


def _wait_recorded(
    client: httpx.Client, token: str, receipt_id: str, timeout_s: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/v1/receipts/{receipt_id}", headers=session_headers(token)).json()
        if body["status"] in ("recorded", "failed"):
            return dict(body)
        time.sleep(0.1)
    raise AssertionError(f"receipt {receipt_id} not recorded: {body}")


def _verify_on_chain(world: World, body: dict[str, Any]) -> bool:
    r = body["receipt"]
    receipt = (
        bytes.fromhex(r["receipt_id"][2:]),
        r["user"],
        r["subnet_id"],
        bytes.fromhex(r["model_hash"][2:]),
        bytes.fromhex(r["request_hash"][2:]),
        bytes.fromhex(r["response_hash"][2:]),
        int(r["price_wei"]),
        r["timestamp"],
    )
    proof = [bytes.fromhex(p[2:]) for p in body["proof"]]
    batch_id = body["batch"]["batch_id"]
    assert world.ledger.functions.batchRoot(batch_id).call().hex() == body["batch"]["root"][2:]
    return bool(world.ledger.functions.verifyReceipt(batch_id, receipt, proof).call())


@pytest.fixture
def recording(chain_settings: GatewaySettings) -> Iterator[httpx.Client]:
    settings = chain_settings.with_(recorder_enabled=True, settle_interval_s=0.5)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def test_receipts_are_recorded_and_their_proofs_verify_on_chain(
    recording: httpx.Client, world: World, new_user: Any
) -> None:
    users = [new_user(), new_user()]
    tokens = [sign_in(recording, u.key.hex()) for u in users]
    ids = []
    for token in tokens:
        for rows in (1, 2):
            r = recording.post(
                f"/v1/subnets/{world.subnet_id}/noop",
                json={"rows": rows},
                headers=session_headers(token),
            )
            assert r.status_code == 200, r.text
            ids.append((token, r.headers["x-receipt-id"]))
    for token, receipt_id in ids:
        body = _wait_recorded(recording, token, receipt_id)
        assert body["status"] == "recorded" and body["batch"]["tx_hash"]
        assert body["batch"]["confirmations_required"] == 1  # anvil's default depth
        assert body["batch"]["confirmations"] >= 1
        assert _verify_on_chain(world, body)
    for user, token in zip(users, tokens, strict=True):
        spent = _spent(world, user.address)
        assert spent == 3 * PRICE_WEI
        me = recording.get("/v1/me", headers=session_headers(token)).json()
        assert me["outstanding_wei"] == "0"
    metrics = recording.get("/metrics").text
    assert 'gateway_batches_total{outcome="recorded"}' in metrics


def test_the_settlement_job_settles_recorded_revenue(
    recording: httpx.Client, world: World, new_user: Any
) -> None:
    subnet_id = world.create_subnet(PRICE_WEI, 0)
    token = sign_in(recording, new_user().key.hex())
    r = recording.post(
        f"/v1/subnets/{subnet_id}/noop", json={"rows": 5}, headers=session_headers(token)
    )
    _wait_recorded(recording, token, r.headers["x-receipt-id"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        unsettled, settled = world.ledger.functions.revenueOf(subnet_id, 1).call()
        if settled:
            break
        time.sleep(0.2)
    assert (unsettled, settled) == (0, 5 * PRICE_WEI)


@pytest.fixture
def recording_with_slow_events(chain_settings: GatewaySettings) -> Iterator[httpx.Client]:
    """A recording gateway whose event poll waits a minute, so its caches outlive a revocation."""
    settings = chain_settings.with_(
        recorder_enabled=True,
        settle_interval_s=0.5,
        event_poll_interval_s=60.0,
        stake_cache_ttl_s=60.0,
    )
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def test_a_batch_the_ledger_would_refuse_fails_and_releases_the_reservation(
    recording_with_slow_events: httpx.Client, world: World, new_user: Any
) -> None:
    recording = recording_with_slow_events
    user = new_user()
    token = sign_in(recording, user.key.hex())
    # Revoke, then call while the gateway's cache still holds the old cap: it admits the call.
    spendable_before = world.ledger.functions.spendableOf(user.address).call()
    assert spendable_before > 0
    subnet_id = world.create_subnet(PRICE_WEI, 0)
    assert (
        recording.post(
            f"/v1/subnets/{subnet_id}/noop", json={"rows": 1}, headers=session_headers(token)
        ).status_code
        == 200
    )  # warms the spendable cache
    DevTransactor(world.w3, user.key.hex()).transact(world.ledger.functions.revokeSpending())
    r = recording.post(
        f"/v1/subnets/{subnet_id}/noop", json={"rows": 1}, headers=session_headers(token)
    )
    assert r.status_code == 200, (
        r.text
    )  # admitted on the cached cap: the ledger will refuse the batch
    body = _wait_recorded(recording, token, r.headers["x-receipt-id"])
    assert body["status"] == "failed" and "spendableOf" in body["batch"]["error"]
    assert recording.get("/v1/me", headers=session_headers(token)).json()["outstanding_wei"] == "0"


def test_one_users_revoked_cap_does_not_fail_the_others_receipts(
    recording_with_slow_events: httpx.Client, world: World, new_user: Any
) -> None:
    recording = recording_with_slow_events
    good, revoking = new_user(), new_user()
    tokens = {u.address: sign_in(recording, u.key.hex()) for u in (good, revoking)}
    subnet_id = world.create_subnet(PRICE_WEI, 0)

    def call(user: Any) -> str:
        r = recording.post(
            f"/v1/subnets/{subnet_id}/noop",
            json={"rows": 1},
            headers=session_headers(tokens[user.address]),
        )
        assert r.status_code == 200, r.text
        return str(r.headers["x-receipt-id"])

    spent_before = _spent(world, good.address)
    call(revoking)  # warms the spendable cache
    DevTransactor(world.w3, revoking.key.hex()).transact(world.ledger.functions.revokeSpending())
    mine = [call(good), call(revoking), call(good)]  # one batch, on the cached cap
    bodies = [_wait_recorded(recording, tokens[u.address], rid) for u, rid in
              zip((good, revoking, good), mine, strict=True)]  # fmt: skip
    assert [b["status"] for b in bodies] == ["recorded", "failed", "recorded"]
    assert all(_verify_on_chain(world, b) for b in (bodies[0], bodies[2]))
    assert "spendableOf" in bodies[1]["batch"]["error"]
    assert _spent(world, good.address) - spent_before == 2 * PRICE_WEI
    for user in (good, revoking):
        me = recording.get("/v1/me", headers=session_headers(tokens[user.address])).json()
        assert me["outstanding_wei"] == "0"


class _CrashAfterMining:
    """Injected fault: the transaction is mined, then the process 'dies' before the ack."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.signer = inner.signer

    def transact(self, call: Any, *, idempotency_key: str) -> Any:
        self.inner.transact(call, idempotency_key=idempotency_key)
        raise SystemExit("crash after mining")


def test_a_crash_between_mining_and_ack_records_the_batch_exactly_once(
    chain_settings: GatewaySettings, world: World, new_user: Any
) -> None:
    user = new_user()

    async def scenario() -> None:
        services = build_services(chain_settings.with_(batch_max_age_s=0, recorder_lease_ttl_s=0.2))
        recorder = Recorder.from_services(services)
        services.recorder = recorder
        assert services.billing is not None
        caller = Caller(address=user.address, via="session")
        async with services.billing.billed(caller, world.subnet_id, rows=2) as charge:
            await charge.complete(b"req", b"resp")
        honest_tx = recorder._tx
        recorder._tx = _CrashAfterMining(honest_tx)
        with pytest.raises(SystemExit):
            await recorder.tick()
        assert [b.status for b in await services.queue.open_batches()] == ["open"]
        # "Restart": a fresh recorder over the same durable queue resumes the open batch (in
        # Redis mode once the dead one's lease has expired).
        await asyncio.sleep(0.3)
        again = Recorder.from_services(services)
        assert await again.tick() == 1
        assert await services.queue.open_batches() == []
        assert await again.tick() == 0
        await services.queue.close()
        await services.state.close()
        assert services.chain is not None
        await services.chain.close()

    asyncio.run(scenario())
    assert _spent(world, user.address) == 2 * PRICE_WEI


class _CrashBeforeFinish:
    """Injected fault: the batch is released, then the process 'dies' before finishing it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def finish_batch(self, batch: Any) -> None:
        raise SystemExit("crash before finish_batch")


def test_a_crash_between_release_and_finish_releases_once_and_records_once(
    chain_settings: GatewaySettings, world: World, new_user: Any
) -> None:
    user = new_user()

    async def scenario() -> tuple[int, int]:
        services = build_services(chain_settings.with_(batch_max_age_s=0, recorder_lease_ttl_s=0.2))
        assert services.billing is not None
        caller = Caller(address=user.address, via="session")
        async with services.billing.billed(caller, world.subnet_id, rows=2) as charge:
            await charge.complete(b"req", b"resp")
        durable = services.queue
        services.queue = _CrashBeforeFinish(durable)  # type: ignore[assignment]
        recorder = Recorder.from_services(services)
        with pytest.raises(SystemExit):
            await recorder.tick()  # mined and released, not finished
        services.queue = durable
        # A reservation admitted meanwhile must survive the resumed batch's release.
        held = await services.billing.admit(caller, world.subnet_id, rows=1)
        await asyncio.sleep(0.3)  # the dead recorder's lease expires (Redis mode)
        again = Recorder.from_services(services)
        recorded = await again.tick()
        outstanding = await services.state.outstanding(user.address.lower())
        await services.billing.release(held)
        await services.queue.close()
        await services.state.close()
        assert services.chain is not None
        await services.chain.close()
        return recorded, outstanding

    recorded, outstanding = asyncio.run(scenario())
    assert recorded == 1
    assert outstanding == PRICE_WEI  # only the held reservation: the batch was released once
    assert _spent(world, user.address) == 2 * PRICE_WEI


def _start_gateway(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "--factory", "gateway.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TWOPM_")} | env
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, env=full_env, cwd=Path.cwd())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(log.read_text()[-3000:])
        time.sleep(0.1)


def _env(settings: GatewaySettings) -> dict[str, str]:
    import json

    env = {
        "TWOPM_GATEWAY_PUBLIC_URL": settings.public_url,
        "TWOPM_GATEWAY_RPC_URL": str(settings.rpc_url),
        "TWOPM_GATEWAY_CONTRACTS": json.dumps(dict(settings.contracts)),
        "TWOPM_GATEWAY_SIGNER_URL": str(settings.signer_url),
        "TWOPM_GATEWAY_SIGNER_SECRET": str(settings.signer_secret),
        "TWOPM_GATEWAY_SIGNER_CALLER_ID": settings.signer_caller_id,
        "TWOPM_GATEWAY_ENABLE_NOOP_ROUTE": "1",
        "TWOPM_GATEWAY_QUEUE_PATH": str(settings.queue_path),
        "TWOPM_GATEWAY_SETTLE_INTERVAL_S": "0",
        # A killed process's recorder lease (Redis) passes on after this, not the default 10 s.
        "TWOPM_GATEWAY_RECORDER_LEASE_TTL_S": "2",
    }
    if settings.redis_url:
        env["TWOPM_GATEWAY_REDIS_URL"] = settings.redis_url
        env["TWOPM_GATEWAY_REDIS_NAMESPACE"] = settings.redis_namespace
    return env


@pytest.mark.slow
def test_a_kill_9_between_response_and_recording_loses_no_receipt_and_records_none_twice(
    chain_settings: GatewaySettings, world: World, new_user: Any, tmp_path: Path
) -> None:
    user = new_user()
    env = _env(chain_settings)
    # First life: never records (huge batch age), so every receipt is only in the queue.
    proc, url = _start_gateway(
        env | {"TWOPM_GATEWAY_BATCH_MAX_AGE_S": "3600", "TWOPM_GATEWAY_BATCH_MAX_RECEIPTS": "1000"},
        tmp_path / "first.log",
    )
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            token = sign_in(client, user.key.hex())
            ids = []
            for _ in range(5):
                r = client.post(
                    f"/v1/subnets/{world.subnet_id}/noop",
                    json={"rows": 1},
                    headers=session_headers(token),
                )
                assert r.status_code == 200, r.text
                ids.append(r.headers["x-receipt-id"])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _spent(world, user.address) == 0
    # Second life: records what the first one queued.
    proc, url = _start_gateway(
        env | {"TWOPM_GATEWAY_BATCH_MAX_AGE_S": "0.1"}, tmp_path / "second.log"
    )
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            token = sign_in(client, user.key.hex())
            for receipt_id in ids:
                body = _wait_recorded(client, token, receipt_id)
                assert body["status"] == "recorded"
                assert _verify_on_chain(world, body)
            time.sleep(0.5)  # a second recording, if any, would land meanwhile
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert _spent(world, user.address) == 5 * PRICE_WEI


def test_spendable_reads_span_json_rpc_batches_and_keep_each_user_s_value(
    chain_settings: GatewaySettings, world: World, new_user: Any
) -> None:
    from eth_account import Account

    funded = new_user().address
    strangers = [Account.create().address.lower() for _ in range(150)]
    users = [*strangers[:120], funded.lower(), *strangers[120:]]  # in the second batch of 100

    async def scenario() -> dict[str, int]:
        services = build_services(chain_settings)
        try:
            return await asyncio.to_thread(Recorder.from_services(services)._spendable_of, users)
        finally:
            await services.queue.close()
            await services.state.close()
            assert services.chain is not None
            await services.chain.close()

    spendable = asyncio.run(scenario())
    assert list(spendable) == users
    assert spendable[funded.lower()] == world.ledger.functions.spendableOf(funded).call() > 0
    assert all(spendable[s] == 0 for s in strangers)


def test_a_batch_is_recorded_only_at_the_confirmation_depth_and_a_reorg_sends_it_again(
    chain_settings: GatewaySettings, world: World, new_user: Any, anvil: Any
) -> None:
    user = new_user()
    w3 = anvil.w3

    async def scenario() -> None:
        settings = chain_settings.with_(
            batch_max_age_s=0, recorder_lease_ttl_s=0.2, confirmations=3
        )
        services = build_services(settings)
        recorder = Recorder.from_services(services)
        services.recorder = recorder
        assert services.billing is not None
        caller = Caller(address=user.address, via="session")
        async with services.billing.billed(caller, world.subnet_id, rows=2) as charge:
            await charge.complete(b"req", b"resp")
        # mined, but only 1 of 3 confirmations: the batch stays open with its transaction
        assert await recorder.tick() == 0
        [batch] = await services.queue.open_batches()
        assert batch.status == "open" and batch.tx_hash and batch.block_number is not None
        first_hash, first_block = batch.tx_hash, batch.block_number
        assert _spent(world, user.address) == 2 * PRICE_WEI  # on chain already
        view = await confirmations_of(services, batch)
        assert view == {"confirmations": 1, "confirmations_required": 3}
        # a reorganisation of the last block drops the transaction: the batch loses it ...
        w3.provider.make_request("anvil_reorg", [1, []])
        assert _spent(world, user.address) == 0
        assert await recorder.tick() == 0
        [batch] = await services.queue.open_batches()
        assert batch.tx_hash is None and batch.block_number is None
        # ... and the next tick sends the same signed bytes again (same key, same nonce)
        assert await recorder.tick() == 0
        [batch] = await services.queue.open_batches()
        assert batch.tx_hash == first_hash and batch.block_number is not None
        assert _spent(world, user.address) == 2 * PRICE_WEI
        w3.provider.make_request("evm_mine", [])
        assert await recorder.tick() == 0  # 2 of 3
        w3.provider.make_request("evm_mine", [])
        assert await recorder.tick() == 1  # 3 of 3: recorded, once
        assert await services.queue.open_batches() == []
        done = await services.queue.get_batch(batch.key)
        assert done is not None and done.status == "recorded"
        assert (await confirmations_of(services, done))["confirmations"] == 3
        assert done.block_number is not None and done.block_number >= first_block
        await services.queue.close()
        await services.state.close()
        assert services.chain is not None
        await services.chain.close()

    asyncio.run(scenario())
    assert _spent(world, user.address) == 2 * PRICE_WEI


def test_the_default_depth_is_scrolls_and_one_on_anvil() -> None:
    assert required_confirmations(0, "anvil/v1.3.0") == 1
    assert required_confirmations(0, "Geth/v5.8.0-mainnet/scroll") == SCROLL_CONFIRMATIONS == 18
    assert required_confirmations(5, "anvil/v1.3.0") == 5
