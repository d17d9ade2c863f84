"""The bounded process pool: real worker processes, typed errors, survival, back-pressure."""

import asyncio
import os
import time

import numpy as np
import pytest

from ckks import DEFAULT_PARAMS, CkksParams, ClientContext, Layout, Wire
from gateway.he import (
    EncryptedFrameMalformed,
    EncryptedInputRejected,
    HePool,
    HePoolSettings,
    LinearModel,
    Overloaded,
    PublicContextNotFound,
    PublicContextRejected,
    WorkerFailed,
    _worker,
)

MODEL = LinearModel.from_arrays([0.5, -1.25, 2.0], 0.25)
X = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
EXPECTED = X @ np.array(MODEL.weights) + MODEL.intercept


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def pool():
    pool = HePool(DEFAULT_PARAMS, HePoolSettings(workers=1, max_queue=1))
    pool.start()
    yield pool
    pool.close()


def test_pool_evaluates_every_layout_in_a_worker_process(pool, row_client):
    store = {row_client.context_id: row_client.public_bytes()}
    fetched = []

    async def load(context_id):
        fetched.append(context_id)
        return store.get(context_id)

    async def go():
        out = {}
        for layout in Layout:
            result = await pool.evaluate(
                row_client.encrypt(X, layout),
                model=MODEL,
                context_id=row_client.context_id,
                load_context=load,
            )
            out[layout] = row_client.decrypt_logits(result.response, expected_rows=2)
        return out

    for logits in run(go()).values():
        assert np.abs(logits - EXPECTED).max() < 1e-4
    assert fetched == [row_client.context_id]  # loaded once, then cached in the worker


def test_pool_validates_contexts_and_rejects_secret_keys(pool, row_client):
    info = run(pool.validate_context(row_client.public_bytes()))
    assert info.context_id == row_client.context_id
    with pytest.raises(PublicContextRejected, match="secret key") as caught:
        run(pool.validate_context(row_client.to_bytes()))
    assert caught.value.status_code == 422


def test_a_worker_survives_bad_input_and_keeps_serving(pool, column_client):
    async def go():
        (pid_before,) = await pool.warm_up()
        with pytest.raises(EncryptedFrameMalformed):
            await pool._run(
                __import__("gateway.he._worker", fromlist=["x"]).evaluate,
                b"junk",
                MODEL,
                None,
                None,
            )
        other = ClientContext.create(CkksParams(8192, (60, 40, 40, 60), 40))
        with pytest.raises(EncryptedInputRejected, match="does not load"):
            await pool.evaluate(other.encrypt(X, wire=Wire.COMPACT), model=MODEL)  # SEAL refuses it
        with pytest.raises(EncryptedInputRejected, match="takes 3"):
            await pool.evaluate(column_client.encrypt(np.ones((2, 4))), model=MODEL)
        result = await pool.evaluate(column_client.encrypt(X), model=MODEL)
        (pid_after,) = await pool.warm_up()
        return pid_before, pid_after, result

    pid_before, pid_after, result = run(go())
    assert pid_before == pid_after
    assert np.abs(column_client.decrypt_logits(result.response) - EXPECTED).max() < 1e-4


def test_parse_rejects_bad_frames_on_the_callers_thread_with_4xx(pool):
    with pytest.raises(EncryptedFrameMalformed) as caught:
        pool.parse(b"2PMQ")
    assert caught.value.status_code == 400


def test_an_expired_context_is_reported_as_not_found(pool, column_client):
    fresh = ClientContext.create(layout=Layout.ROW, n_features=3)

    async def gone(_context_id):
        return None

    with pytest.raises(PublicContextNotFound) as caught:
        run(
            pool.evaluate(
                fresh.encrypt(X, Layout.ROW),
                model=MODEL,
                context_id=fresh.context_id,
                load_context=gone,
            )
        )
    assert caught.value.status_code == 404


def test_a_full_queue_raises_overloaded_with_retry_after(pool):
    async def go():
        busy = [asyncio.ensure_future(pool._run(time.sleep, 1.0)) for _ in range(pool.capacity)]
        await asyncio.sleep(0)
        assert pool.in_flight == pool.capacity
        with pytest.raises(Overloaded) as caught:
            await pool._run(os.getpid)
        await asyncio.gather(*busy)
        assert pool.in_flight == 0
        return caught.value

    exc = run(go())
    assert exc.status_code == 503
    assert exc.headers["Retry-After"] == "1"


def test_a_dead_worker_fails_its_request_and_the_pool_recovers(pool, column_client):
    async def go():
        with pytest.raises(WorkerFailed):
            await pool._run(os._exit, 3)  # injected fault: the worker process dies
        return await pool.evaluate(column_client.encrypt(X), model=MODEL)

    result = run(go())
    assert np.abs(column_client.decrypt_logits(result.response) - EXPECTED).max() < 1e-4


def test_large_requests_travel_through_a_spool_file_that_is_removed(pool, column_client):
    fast = column_client.encrypt(X, wire=Wire.FAST)  # 2 x 262 KB: over the threshold
    compact = column_client.encrypt(X, wire=Wire.COMPACT)  # 2 x 115 KB: through the pipe
    assert len(compact) < pool.settings.spool_threshold_bytes <= len(fast)

    async def go():
        return [await pool.evaluate(body, model=MODEL) for body in (fast, compact)]

    for result in run(go()):
        assert np.abs(column_client.decrypt_logits(result.response) - EXPECTED).max() < 1e-4
    assert pool._spool is not None and pool._spool.is_dir()
    assert list(pool._spool.iterdir()) == []  # each spool file went with its answer


def test_a_spool_file_removed_under_the_worker_is_a_503_not_a_crash(pool, column_client, tmp_path):
    gone = _worker.Spooled(str(tmp_path / "vanished"), 10)

    async def go():
        with pytest.raises(WorkerFailed, match="spooled request"):
            await pool._run(_worker.evaluate, gone, MODEL, None, None)
        return await pool.evaluate(column_client.encrypt(X), model=MODEL)

    result = run(go())  # and the worker keeps serving
    assert np.abs(column_client.decrypt_logits(result.response) - EXPECTED).max() < 1e-4


def test_a_short_spool_file_is_refused(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(b"12345")
    with pytest.raises(OSError, match="holds 5 of 10 bytes"):
        _worker.Spooled(str(path), 10).read()


def test_closing_the_pool_removes_its_spool_directory(column_client):
    pool = HePool(DEFAULT_PARAMS, HePoolSettings(workers=1, max_queue=0))
    pool.start()
    spool = pool._spool
    assert spool is not None and spool.is_dir()
    pool.close()
    assert not spool.exists()
