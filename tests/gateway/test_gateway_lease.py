"""The recorder lease: one recorder at a time on a shared Redis, stale holders fenced out.

In process, two gateways' services on one Redis namespace, a real anvil and signer. The
real-process runs (SIGKILL, SIGSTOP) are in ``test_gateway_replicas.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from gateway_chain import PRICE_WEI, World

from gateway import Caller, GatewaySettings
from gateway._lease import Fence, RedisLease
from gateway._recorder import Recorder
from gateway._services import Services, build_services

redis_only = pytest.mark.parametrize("backend", ["redis"], indirect=True)


@asynccontextmanager
async def _replica(settings: GatewaySettings) -> AsyncIterator[tuple[Services, Recorder]]:
    services = build_services(settings)
    recorder = Recorder.from_services(services)
    services.recorder = recorder
    try:
        yield services, recorder
    finally:
        await services.queue.close()
        await services.state.close()
        assert services.chain is not None
        await services.chain.close()


async def _bill(services: Services, user: Any, subnet_id: int, n: int) -> list[str]:
    assert services.billing is not None
    caller = Caller(address=user.address, via="session")
    ids = []
    for i in range(n):
        async with services.billing.billed(caller, subnet_id, rows=1) as charge:
            receipt = await charge.complete(b"req%d" % i, b"resp")
        ids.append(receipt.receipt_id)
    return ids


def _run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())  # type: ignore[arg-type]


@redis_only
def test_only_the_lease_holder_records_and_every_receipt_once(
    chain_settings: GatewaySettings, world: World, new_user: Any
) -> None:
    user = new_user()
    settings = chain_settings.with_(batch_max_age_s=0, batch_max_receipts=4)

    async def scenario() -> tuple[list[int], list[int], list[str], list[int]]:
        async with _replica(settings) as (a, rec_a), _replica(settings) as (b, rec_b):
            ids = await _bill(a, user, world.subnet_id, 5) + await _bill(
                b, user, world.subnet_id, 5
            )
            counts_a, counts_b = [], []
            for _ in range(4):  # both tick at once, as two replicas' background tasks would
                ra, rb = await asyncio.gather(rec_a.tick(), rec_b.tick())
                counts_a.append(ra)
                counts_b.append(rb)
            statuses = [(await b.queue.get(i)).status for i in ids]  # type: ignore[union-attr]
            leaders = [int(x.metrics.recorder_leader._value.get()) for x in (a, b)]
            return counts_a, counts_b, statuses, leaders

    counts_a, counts_b, statuses, leaders = _run(scenario)
    # Whichever took the lease first did all the recording; the other did none.
    assert sorted([sum(counts_a), sum(counts_b)]) == [0, 10]
    assert leaders == ([1, 0] if sum(counts_a) else [0, 1])
    assert statuses == ["recorded"] * 10
    assert int(world.ledger.functions.spentOf(user.address).call()) == 10 * PRICE_WEI


@redis_only
def test_a_stale_fence_cuts_nothing(
    chain_settings: GatewaySettings, world: World, new_user: Any
) -> None:
    user = new_user()
    settings = chain_settings.with_(recorder_lease_ttl_s=0.2)

    async def scenario() -> None:
        async with _replica(settings) as (a, rec_a), _replica(settings) as (b, rec_b):
            await _bill(a, user, world.subnet_id, 3)
            stale = await rec_a.lease.acquire()
            assert stale is not None
            assert await rec_b.lease.acquire() is None  # held by a
            await asyncio.sleep(0.4)  # a "pauses" past its TTL
            fresh = await rec_b.lease.acquire()
            assert fresh is not None and fresh.token > stale.token
            assert not await rec_a.lease.holds(stale)
            candidates, cursor = await a.queue.candidates(10)
            batches = rec_a._cut(candidates)
            assert not await a.queue.create_batches(batches, cursor, stale)
            assert await a.queue.open_batches() == []
            again, _ = await a.queue.candidates(10)
            assert [c.status for c in again] == ["queued"] * 3  # nothing was cut
            assert await b.queue.create_batches(batches, cursor, fresh)
            assert [x.key for x in await a.queue.open_batches()] == [batches[0].key]

    _run(scenario)


@redis_only
def test_a_recorder_that_lost_its_lease_stops_before_signing_and_the_new_holder_finishes(
    chain_settings: GatewaySettings, world: World, new_user: Any
) -> None:
    user = new_user()
    settings = chain_settings.with_(recorder_lease_ttl_s=0.2, batch_max_age_s=0)

    async def scenario() -> tuple[int, int, Any]:
        async with _replica(settings) as (a, rec_a), _replica(settings) as (_b, rec_b):
            await _bill(a, user, world.subnet_id, 2)
            fence = await rec_a.lease.acquire()
            assert fence is not None
            candidates, cursor = await a.queue.candidates(10)
            (batch,) = rec_a._cut(candidates)
            assert await a.queue.create_batches([batch], cursor, fence)
            await asyncio.sleep(0.4)  # a is paused with a cut batch, past its lease
            assert await rec_b.lease.acquire() is not None
            stale = await rec_a._record(batch, fence)  # a wakes up
            signed = await asyncio.to_thread(
                rec_a._tx.signer.client.record, "gw-batch-" + batch.key
            )
            fresh = await rec_b.tick()  # the new holder resumes the same open batch
            return stale, fresh, signed

    stale, fresh, signed = _run(scenario)
    assert stale == 0 and signed is None  # the stale holder never asked the signer
    assert fresh == 2
    assert int(world.ledger.functions.spentOf(user.address).call()) == 2 * PRICE_WEI


@redis_only
def test_the_lease_is_released_on_shutdown_and_taken_over_at_once(
    chain_settings: GatewaySettings,
) -> None:
    async def scenario() -> tuple[Fence | None, Fence | None]:
        async with _replica(chain_settings) as (_a, rec_a), _replica(chain_settings) as (_, rec_b):
            task = asyncio.create_task(rec_a.run_forever(interval_s=0.05))
            await asyncio.sleep(0.2)
            held = await rec_b.lease.acquire()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return held, await rec_b.lease.acquire()

    held, after = _run(scenario)
    assert held is None and after is not None


def test_a_lease_needs_a_positive_ttl() -> None:
    with pytest.raises(ValueError, match="positive"):
        RedisLease(None, "x", ttl_s=0)  # type: ignore[arg-type]
