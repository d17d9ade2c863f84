from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway import GatewaySettings
from gateway._state import MemoryState, RedisState, State


def _run(base_settings: GatewaySettings, body: Callable[[State], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        if base_settings.redis_url:
            state: State = RedisState.from_url(
                base_settings.redis_url, base_settings.redis_namespace
            )
        else:
            state = MemoryState(bucket_max_entries=4)
        try:
            return await body(state)
        finally:
            await state.close()

    return asyncio.run(main())


def test_reservations_are_exact_beyond_64_bits(base_settings: GatewaySettings) -> None:
    big = 10**30 + 7  # wei amounts far past Lua doubles and Redis INCRBY

    async def body(state: State) -> None:
        assert (await state.reserve("u", big, 2 * big)).ok
        assert (await state.reserve("u", big, 2 * big)).outstanding_wei == 2 * big
        refused = await state.reserve("u", 1, 2 * big)
        assert not refused.ok and refused.outstanding_wei == 2 * big
        assert await state.release("u", big - 1) == big + 1
        assert await state.release("u", 10 * big) == 0  # never below zero
        assert await state.outstanding("u") == 0

    _run(base_settings, body)


def test_reservations_carry_and_borrow_exactly_across_every_digit_boundary(
    base_settings: GatewaySettings,
) -> None:
    # Redis adds below 10^15 as doubles and above in limbs of 14 digits: cross both borders.
    amounts = [1, 9, 10**14 - 1, 1, 10**15 - 2, 3, 2**53, 10**28 - 10**14]
    amounts.append(10**14 - sum(amounts) % 10**14)  # a low limb that sums to exactly 10^14
    amounts += [2**128 - 1, 7]

    async def body(state: State) -> None:
        total = 0
        for amount in amounts:
            total += amount
            result = await state.reserve("c", amount, 2**130)
            assert result.ok and result.outstanding_wei == total, amount
        for amount in reversed(amounts[1:]):
            total -= amount
            assert await state.release("c", amount) == total, amount
        assert await state.release("c", 1) == 0
        assert (await state.reserve("c", 10**28, 2**130)).ok
        assert await state.release("c", 1) == 10**28 - 1  # a borrow through every limb
        assert await state.release("c", 10**28 - 2) == 1

    _run(base_settings, body)


def test_concurrent_reservations_never_exceed_the_limit(base_settings: GatewaySettings) -> None:
    async def body(state: State) -> list[bool]:
        results = await asyncio.gather(*(state.reserve("u", 3, 10) for _ in range(20)))
        return [r.ok for r in results]

    assert sum(_run(base_settings, body)) == 3


def test_a_token_bucket_refills_at_its_rate(base_settings: GatewaySettings) -> None:
    async def body(state: State) -> None:
        take = lambda now: state.take_token("b", rate_per_s=2.0, burst=2, now_s=now)  # noqa: E731
        assert await take(100.0) == 0 and await take(100.0) == 0
        assert await take(100.0) == pytest.approx(0.5)
        assert await take(100.25) == pytest.approx(0.25)  # the failed take refilled half
        assert await take(100.5) == 0

    _run(base_settings, body)


def test_admit_takes_a_token_before_it_reserves(base_settings: GatewaySettings) -> None:
    async def body(state: State) -> None:
        args = {"rate_per_s": 1.0, "burst": 1, "now_s": 5.0, "amount_wei": 4, "limit_wei": 6}
        wait, result = await state.admit("u", **args)  # type: ignore[arg-type]
        assert wait == 0 and result is not None and result.ok
        wait, result = await state.admit("u", **args)  # type: ignore[arg-type]
        assert wait == pytest.approx(1.0) and result is None
        assert await state.outstanding("u") == 4  # the refused call reserved nothing

    _run(base_settings, body)


def test_a_record_is_consumed_once_under_concurrency(base_settings: GatewaySettings) -> None:
    async def body(state: State) -> list[bytes | None]:
        await state.store.set("nonce:n", b"1", expires_in=60)
        return list(await asyncio.gather(*(state.consume("nonce:n") for _ in range(10))))

    assert [v for v in _run(base_settings, body) if v is not None] == [b"1"]


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_memory_token_buckets_are_bounded(base_settings: GatewaySettings) -> None:
    async def body(state: State) -> int:
        for i in range(10):
            await state.take_token(f"b{i}", rate_per_s=1, burst=1, now_s=0)
        assert isinstance(state, MemoryState)
        return len(state._buckets)

    assert _run(base_settings, body) == 4


def test_a_batch_is_released_once_however_often_it_is_retried(
    base_settings: GatewaySettings,
) -> None:
    async def body(state: State) -> tuple[bool, bool, int, int]:
        assert (await state.reserve("a", 10**30 + 5, 10**31)).ok  # past 64 bits, as wei is
        assert (await state.reserve("b", 7, 100)).ok
        first = await state.release_batch("k1", {"a": 10**30, "b": 3})
        again = await state.release_batch("k1", {"a": 10**30, "b": 3})  # a resumed batch
        return first, again, await state.outstanding("a"), await state.outstanding("b")

    assert _run(base_settings, body) == (True, False, 5, 4)


def test_releasing_a_batch_never_goes_below_zero(base_settings: GatewaySettings) -> None:
    async def body(state: State) -> int:
        assert (await state.reserve("a", 5, 100)).ok
        assert await state.release_batch("k2", {"a": 9})
        return await state.outstanding("a")

    assert _run(base_settings, body) == 0
