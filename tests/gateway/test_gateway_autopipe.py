"""Automatic pipelining against the real Redis, and group commit of the SQLite receipt queue."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from core.net import free_port
from gateway._autopipe import AutoPipeline
from gateway._errors import ServiceUnavailable
from gateway._receipts import Receipt, SqliteReceiptQueue, new_receipt_id

REDIS_URL = "redis://127.0.0.1:6379/0"


def _with_pipe(body: Callable[[AutoPipeline, str], Awaitable[Any]], url: str = REDIS_URL) -> Any:
    prefix = f"twopm-test-ap-{uuid.uuid4().hex[:8]}:"

    async def main() -> Any:
        redis = Redis.from_url(url, socket_connect_timeout=2)
        try:
            return await body(AutoPipeline(redis), prefix)
        finally:
            keys = (
                [k async for k in redis.scan_iter(match=prefix + "*")] if url == REDIS_URL else []
            )
            if keys:
                await redis.delete(*keys)
            await redis.aclose()

    return asyncio.run(main())


def test_commands_awaited_together_share_round_trips() -> None:
    async def body(pipe: AutoPipeline, prefix: str) -> tuple[list[Any], int]:
        await asyncio.gather(*(pipe.execute("SET", f"{prefix}{i}", i) for i in range(64)))
        before = pipe.round_trips
        values = await asyncio.gather(*(pipe.execute("GET", f"{prefix}{i}") for i in range(64)))
        return values, pipe.round_trips - before

    values, round_trips = _with_pipe(body)
    assert values == [str(i).encode() for i in range(64)]
    assert round_trips == 1  # 64 GETs, one pipeline


def test_a_batch_is_split_at_max_batch() -> None:
    async def body(pipe: AutoPipeline, prefix: str) -> int:
        small = AutoPipeline(pipe._redis, max_batch=10)
        await asyncio.gather(*(small.execute("GET", f"{prefix}x") for _ in range(25)))
        return small.round_trips

    assert _with_pipe(body) == 3


def test_an_error_reply_fails_only_its_own_command() -> None:
    async def body(pipe: AutoPipeline, prefix: str) -> list[Any]:
        await pipe.execute("SET", prefix + "text", "not a number")
        return await asyncio.gather(
            pipe.execute("INCR", prefix + "counter"),
            pipe.execute("INCR", prefix + "text"),
            pipe.execute("INCR", prefix + "counter"),
            return_exceptions=True,
        )

    first, failed, third = _with_pipe(body)
    assert (first, third) == (1, 2)
    assert isinstance(failed, ResponseError) and "not an integer" in str(failed)


def test_a_script_redis_lost_is_loaded_again() -> None:
    async def body(pipe: AutoPipeline, prefix: str) -> tuple[str, list[Any]]:
        script = pipe._redis.register_script("return {KEYS[1], ARGV[1]}")
        await pipe._redis.script_flush()  # as after a Redis restart
        first = await pipe.evalsha(script, [prefix + "k"], ["v"])
        second = await pipe.evalsha(script, [prefix + "k"], ["w"])
        return prefix, [first, second]

    prefix, replies = _with_pipe(body)
    key = (prefix + "k").encode()
    assert replies == [[key, b"v"], [key, b"w"]]


def test_a_cancelled_caller_sends_nothing_and_the_others_go_on() -> None:
    async def body(pipe: AutoPipeline, prefix: str) -> Any:
        task = asyncio.ensure_future(pipe.execute("SET", prefix + "k", "1"))
        await asyncio.sleep(0)  # the SET is queued for this turn's pipeline
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await pipe.execute("GET", prefix + "k")

    assert _with_pipe(body) is None


def test_an_unreachable_redis_fails_every_command_of_the_batch() -> None:
    async def body(pipe: AutoPipeline, prefix: str) -> list[Any]:
        return await asyncio.gather(
            *(pipe.execute("GET", prefix + str(i)) for i in range(3)), return_exceptions=True
        )

    errors = _with_pipe(body, url=f"redis://127.0.0.1:{free_port()}/0")
    assert len(errors) == 3 and all(isinstance(e, RedisConnectionError) for e in errors)


def test_replies_keep_the_order_of_commands_written_before_earlier_replies_came() -> None:
    async def body(pipe: AutoPipeline, prefix: str) -> tuple[list[Any], int]:
        issued = []
        for i in range(300):  # a new write every few commands, none waiting for replies
            issued.append(asyncio.ensure_future(pipe.execute("INCR", prefix + "n")))
            if i % 7 == 0:
                await asyncio.sleep(0)
        return await asyncio.gather(*issued), pipe.round_trips

    replies, writes = _with_pipe(body)
    assert replies == list(range(1, 301))
    assert writes > 1


def test_a_lost_connection_fails_what_waits_on_it_and_the_next_command_reconnects() -> None:
    async def body(pipe: AutoPipeline, prefix: str) -> tuple[Any, Any]:
        client_id = await pipe.execute("CLIENT", "ID")
        blocked = asyncio.ensure_future(pipe.execute("BLPOP", prefix + "never", 10))
        await asyncio.sleep(0.05)  # the BLPOP is written and waits in Redis
        await pipe._redis.client_kill_filter(_id=client_id)
        lost = await asyncio.gather(asyncio.wait_for(blocked, 5), return_exceptions=True)
        after = await pipe.execute("SET", prefix + "k", "v")
        return lost[0], after

    lost, after = _with_pipe(body)
    assert isinstance(lost, RedisConnectionError)
    assert after == b"OK"


def test_a_redis_py_connection_without_its_streams_fails_commands_clearly() -> None:
    class Streamless:  # what a redis-py release that renamed the attributes would hand back
        pass

    async def body(pipe: AutoPipeline, prefix: str) -> list[Any]:
        pool = pipe._redis.connection_pool
        released: list[Any] = []

        async def get_connection(*args: Any, **kwargs: Any) -> Any:
            return Streamless()

        async def release(connection: Any) -> None:
            released.append(connection)

        real = pool.get_connection, pool.release
        pool.get_connection, pool.release = get_connection, release  # type: ignore[method-assign]
        try:
            calls = (pipe.execute("GET", prefix + str(i)) for i in range(2))
            errors = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
        finally:
            pool.get_connection, pool.release = real  # type: ignore[method-assign]
        return [*list(errors), len(released)]

    first, second, released = _with_pipe(body)
    assert all(
        isinstance(e, RuntimeError) and "no longer exposes" in str(e) for e in (first, second)
    )
    assert released == 1  # handed back, not leaked


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        AutoPipeline(Redis.from_url(REDIS_URL), max_batch=0)


# ---------------------------------------------------------------- SQLite group commit


def _receipt(i: int) -> Receipt:
    return Receipt(
        receipt_id=new_receipt_id(),
        user="0x" + "ab" * 20,
        subnet_id=1,
        model_hash="0x" + "11" * 32,
        request_hash="0x" + "22" * 32,
        response_hash="0x" + "33" * 32,
        price_wei=10 + i,
        timestamp=1_700_000_000,
        rows=1,
    )


def test_concurrent_appends_share_transactions_and_all_land(tmp_path: Path) -> None:
    async def main() -> tuple[int, int]:
        queue = SqliteReceiptQueue(tmp_path / "q.sqlite3")
        commits = 0
        transaction = queue._transaction

        def counting(sql: str, rows: list[Any]) -> None:
            nonlocal commits
            commits += 1
            transaction(sql, rows)

        queue._transaction = counting  # type: ignore[method-assign]
        try:
            await asyncio.gather(*(queue.append(_receipt(i)) for i in range(200)))
            return await queue.depth(), commits
        finally:
            await queue.close()

    depth, commits = asyncio.run(main())
    assert depth == 200
    assert 1 <= commits < 20  # grouped: the appends waiting during a commit go in the next one
    reopened = SqliteReceiptQueue(tmp_path / "q.sqlite3")
    assert asyncio.run(reopened.depth()) == 200  # committed, not just counted
    asyncio.run(reopened.close())


def test_a_failed_commit_fails_its_appends_and_the_queue_keeps_working(tmp_path: Path) -> None:
    async def main() -> int:
        queue = SqliteReceiptQueue(tmp_path / "q.sqlite3")
        duplicate = _receipt(0)
        try:
            await queue.append(duplicate)
            with pytest.raises(ServiceUnavailable, match="could not be written"):
                await queue.append(duplicate)  # same id: the transaction is rolled back
            await queue.append(_receipt(1))
            return await queue.depth()
        finally:
            await queue.close()

    assert asyncio.run(main()) == 2


def test_a_full_queue_refuses_appends_counting_those_being_written(tmp_path: Path) -> None:
    async def main() -> list[Any]:
        queue = SqliteReceiptQueue(tmp_path / "q.sqlite3", max_pending=5)
        try:
            return await asyncio.gather(
                *(queue.append(_receipt(i)) for i in range(8)), return_exceptions=True
            )
        finally:
            await queue.close()

    results = asyncio.run(main())
    assert results.count(None) == 5
    assert all(isinstance(r, ServiceUnavailable) for r in results if r is not None)


async def _appended_in_turns(queue: SqliteReceiptQueue, n: int, per_turn: int) -> None:
    for start in range(0, n, per_turn):
        await asyncio.gather(*(queue.append(_receipt(i)) for i in range(start, start + per_turn)))


async def _checkpoints(queue: SqliteReceiptQueue, at_least: int) -> None:
    deadline = time.monotonic() + 10
    while queue.checkpoints < at_least:
        assert time.monotonic() < deadline, "no background checkpoint ran"
        await asyncio.sleep(0.01)


def test_checkpoints_run_in_the_background_every_so_many_rows(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"

    async def main() -> tuple[int, int]:
        queue = SqliteReceiptQueue(path, checkpoint_every=50)
        try:
            empty = path.stat().st_size  # commits go to the WAL; only checkpoints grow this
            await _appended_in_turns(queue, 400, per_turn=20)
            await _checkpoints(queue, 1)
            return empty, path.stat().st_size
        finally:
            await queue.close()

    empty, after = asyncio.run(main())
    assert after > empty


def test_a_long_wal_is_truncated_by_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"

    async def main() -> int:
        queue = SqliteReceiptQueue(path, checkpoint_every=100)
        queue.WAL_RESTART_PAGES = 1  # every checkpoint finds the WAL "long"
        try:
            await _appended_in_turns(queue, 100, per_turn=25)  # the 100th row starts one
            await _checkpoints(queue, 1)
            return Path(f"{path}-wal").stat().st_size
        finally:
            await queue.close()

    assert asyncio.run(main()) == 0


def test_an_append_cancelled_before_its_commit_is_not_written(tmp_path: Path) -> None:
    async def main() -> tuple[int, bool]:
        queue = SqliteReceiptQueue(tmp_path / "q.sqlite3")
        gone, kept = _receipt(0), _receipt(1)
        try:
            task = asyncio.create_task(queue.append(gone))
            await asyncio.sleep(0)  # queued, its commit scheduled for the next turn
            task.cancel()
            await queue.append(kept)
            return await queue.depth(), await queue.get(gone.receipt_id) is None
        finally:
            await queue.close()

    assert asyncio.run(main()) == (1, True)


def test_checkpoint_every_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="checkpoint_every"):
        SqliteReceiptQueue(tmp_path / "q.sqlite3", checkpoint_every=0)
