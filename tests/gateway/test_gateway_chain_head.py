"""One head block for the whole gateway process: the registry follower, the reader's event
poll and the receipts share one ``eth_blockNumber`` per ``head_max_age_s``, counted at a
recording JSON-RPC proxy in front of a real anvil."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from service_support import free_port

from bench._rpc_proxy import RecordingRpcProxy
from contracts.chain import Anvil
from contracts.deploy import Deployment
from gateway._chain import ChainReader
from gateway._errors import ServiceUnavailable
from gateway._fetch import ModelSource
from gateway._metrics import Metrics
from gateway._models import ModelFollower


@pytest.fixture
def proxy(anvil: Anvil) -> Iterator[RecordingRpcProxy]:
    with RecordingRpcProxy(anvil.rpc_url) as recording:
        yield recording


class _Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_the_follower_and_the_event_poll_share_one_head_read_per_interval(
    proxy: RecordingRpcProxy, deployment: Deployment
) -> None:
    clock = _Clock()

    async def go() -> list[int]:
        chain = ChainReader.connect(
            proxy.url, dict(deployment.addresses), Metrics(), head_max_age_s=1.0, clock=clock
        )
        follower = ModelFollower(chain, ModelSource(), CollectorRegistry())
        counts = []
        try:
            proxy.reset()
            # at the same moment: one read for the three of them
            await asyncio.gather(chain.poll_events(), follower.poll(), chain.head_block())
            counts.append(proxy.snapshot().get("eth_blockNumber", 0))
            clock.now_s += 0.5  # within the interval: the same head again
            await chain.poll_events()
            await follower.poll()
            counts.append(proxy.snapshot().get("eth_blockNumber", 0))
            clock.now_s += 0.6  # one interval later: one new read, shared again
            await follower.poll()
            await chain.poll_events()
            counts.append(proxy.snapshot().get("eth_blockNumber", 0))
        finally:
            await follower.stop()
            await chain.close()
        return counts

    assert asyncio.run(go()) == [1, 1, 2]  # was 3, 5, 7: each poller asked on its own


def test_without_a_max_age_every_call_reads_and_only_concurrent_ones_share(
    proxy: RecordingRpcProxy, deployment: Deployment
) -> None:
    async def go() -> tuple[int, int]:
        chain = ChainReader.connect(proxy.url, dict(deployment.addresses), Metrics())
        try:
            proxy.reset()
            await asyncio.gather(*(chain.head_block() for _ in range(5)))
            together = proxy.snapshot().get("eth_blockNumber", 0)
            await chain.head_block()
            await chain.head_block()
            return together, proxy.snapshot().get("eth_blockNumber", 0)
        finally:
            await chain.close()

    assert asyncio.run(go()) == (1, 3)


def test_an_unreachable_chain_fails_every_waiter_of_the_read_and_is_asked_again(
    deployment: Deployment,
) -> None:
    async def go() -> tuple[list[BaseException | int], BaseException | int]:
        dead = f"http://127.0.0.1:{free_port()}"
        chain = ChainReader.connect(dead, dict(deployment.addresses), Metrics(), head_max_age_s=60)
        try:
            together = await asyncio.gather(
                chain.head_block(), chain.head_block(), return_exceptions=True
            )
            again = (await asyncio.gather(chain.head_block(), return_exceptions=True))[0]
            return together, again
        finally:
            await chain.close()

    together, again = asyncio.run(go())
    assert all(isinstance(e, ServiceUnavailable) for e in together), together
    assert isinstance(again, ServiceUnavailable)  # a failure is not kept as a head
