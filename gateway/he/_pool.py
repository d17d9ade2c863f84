"""A bounded pool of worker processes for CKKS evaluation, usable from the event loop.

TenSEAL/SEAL hold the GIL, so evaluation runs in processes. They come from a
``forkserver`` (not a plain fork: the gateway has threads) that imports the worker
module once, so starting or replacing a worker is a cheap fork rather than a fresh
interpreter importing the whole gateway. At most ``workers + max_queue`` requests are admitted at once;
the next one gets :class:`Overloaded` (503 with ``Retry-After``) immediately instead of
waiting. Bad inputs raise typed errors inside the worker, which keeps serving; if a
worker process dies anyway, the pool is rebuilt and the request fails with
:class:`WorkerFailed`.

Large requests do not travel through the executor's pipe (pickled, then written in
64 KiB pieces the worker reads back: about 9 ms for a 3.9 MB column batch here) but
through a file in a per-pool spool directory on ``/dev/shm`` (tmpfs: one write, one
read, about 3 ms), removed as soon as the worker answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ckks import (
    DEFAULT_LIMITS,
    DEFAULT_PARAMS,
    AffineModel,
    CkksError,
    CkksParams,
    FrameLimits,
    RequestFrame,
    parse_request,
)
from gateway.he import _worker
from gateway.he._context import PublicContextInfo
from gateway.he._errors import Overloaded, PublicContextNotFound, WorkerFailed, translate
from gateway.he._kernels import ContextNotCached, Evaluation, LinearModel

__all__ = ["ContextLoader", "HePool", "HePoolSettings"]

T = TypeVar("T")

ContextLoader = Callable[[str], Awaitable[bytes | None]]
"""Fetches a public context's bytes by id from the gateway's store (``None``: expired)."""


@dataclass(frozen=True)
class HePoolSettings:
    """Sizing of the evaluation pool (the gateway fills it from ``TWOPM_GATEWAY_*``).

    Attributes:
        workers: Worker processes (one core each; 2 on the reference machine).
        max_queue: Requests admitted beyond those running; one more gets ``Overloaded``.
        context_cache_size: Public contexts each worker keeps loaded (LRU).
        model_cache_size: Encoded models each worker keeps (LRU).
        retry_after_s: Seconds advertised in ``Retry-After`` when overloaded.
        limits: Frame parsing bounds.
        spool_threshold_bytes: Requests at least this large reach the worker through a
            spool file instead of the pipe.
    """

    workers: int = 2
    max_queue: int = 8
    context_cache_size: int = 32
    model_cache_size: int = 16
    retry_after_s: float = 1.0
    limits: FrameLimits = DEFAULT_LIMITS
    spool_threshold_bytes: int = 256 << 10


class HePool:
    """Runs CKKS evaluation in worker processes with a bounded queue.

    Use ``async with HePool(params, settings) as pool:``, or :meth:`start` and
    :meth:`close`.

    Args:
        params: The advertised CKKS parameters.
        settings: Pool sizing and bounds.
    """

    def __init__(
        self, params: CkksParams = DEFAULT_PARAMS, settings: HePoolSettings | None = None
    ) -> None:
        params.check()
        self.params = params
        self.settings = settings or HePoolSettings()
        self._executor: ProcessPoolExecutor | None = None
        self._in_flight = 0
        self._spool: Path | None = None
        self._spool_names = itertools.count()

    @property
    def capacity(self) -> int:
        """Most requests admitted at once: ``workers + max_queue``."""
        return self.settings.workers + self.settings.max_queue

    @property
    def in_flight(self) -> int:
        """Requests running or queued now."""
        return self._in_flight

    def start(self) -> None:
        """Spawn the worker processes (idempotent)."""
        if self._spool is None:
            root = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
            self._spool = Path(tempfile.mkdtemp(prefix="twopm-he-", dir=root))
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.settings.workers,
                mp_context=_mp_context(),
                initializer=_worker.init,
                initargs=(
                    self.params,
                    self.settings.limits,
                    self.settings.context_cache_size,
                    self.settings.model_cache_size,
                ),
            )

    async def warm_up(self) -> list[int]:
        """Start every worker now rather than on the first request.

        Returns:
            The worker process ids.
        """
        return list(
            await asyncio.gather(*(self._run(_worker.pid) for _ in range(self.settings.workers)))
        )

    def close(self) -> None:
        """Stop the workers (waits for running tasks)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._spool is not None:
            shutil.rmtree(self._spool, ignore_errors=True)
            self._spool = None

    async def __aenter__(self) -> HePool:
        self.start()
        await self.warm_up()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def parse(self, request: bytes) -> RequestFrame:
        """Check a request frame cheaply on the caller's thread (no SEAL).

        Args:
            request: The request body.

        Returns:
            The frame; bill ``n_rows`` before evaluating.

        Raises:
            GatewayError: 400/413 for malformed or oversized frames.
        """
        try:
            return parse_request(request, self.params, self.settings.limits)
        except CkksError as exc:
            raise translate(exc) from exc

    async def validate_context(self, blob: bytes) -> PublicContextInfo:
        """Validate an uploaded public context in a worker (``POST /v1/he/contexts``).

        Args:
            blob: The uploaded bytes.

        Returns:
            Its id (sha256 hex), layout, row width and size; store it under the id.

        Raises:
            GatewayError: 400/413/422 for refused contexts; 503 ``Overloaded`` or
                ``WorkerFailed``.
        """
        return await self._run(_worker.validate, blob)

    async def measure_sets(self, model: AffineModel) -> dict[str, float]:
        """Measure each named parameter set's logit error on ``model`` in a worker.

        Args:
            model: The served model, standardised.

        Returns:
            Set name -> measured max |logit error|.

        Raises:
            GatewayError: 503 ``Overloaded`` or ``WorkerFailed``.
        """
        return await self._run(_worker.measure_sets, model)

    async def evaluate(
        self,
        request: bytes,
        *,
        model: LinearModel,
        context_id: str | None = None,
        load_context: ContextLoader | None = None,
    ) -> Evaluation:
        """Evaluate ``model`` on an encrypted request in a worker.

        Args:
            request: The request frame.
            model: The subnet's current model.
            context_id: The caller's public context (needed by the row layout).
            load_context: Fetches the context's bytes when the chosen worker has not
                loaded it yet.

        Returns:
            The response frame, the row count and timings.

        Raises:
            GatewayError: 400/413/422 for bad input, 404 ``PublicContextNotFound`` when the
                context expired, 503 ``Overloaded`` or ``WorkerFailed``.
        """
        with self._spooled(request) as payload:
            try:
                return await self._run(_worker.evaluate, payload, model, context_id, None)
            except _NeedContext:
                pass
            blob = (
                None
                if load_context is None or context_id is None
                else await load_context(context_id)
            )
            if blob is None:
                raise PublicContextNotFound(f"public context {context_id} is unknown or expired")
            return await self._run(_worker.evaluate, payload, model, context_id, blob)

    @contextlib.contextmanager
    def _spooled(self, request: bytes) -> Iterator[bytes | _worker.Spooled]:
        """``request`` itself if small, else a spool file holding it (removed on exit)."""
        if len(request) < self.settings.spool_threshold_bytes:
            yield request
            return
        self.start()
        assert self._spool is not None
        path = self._spool / f"{os.getpid()}-{next(self._spool_names)}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                os.write(fd, request)
            finally:
                os.close(fd)
            yield _worker.Spooled(str(path), len(request))
        finally:
            path.unlink(missing_ok=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._in_flight >= self.capacity:
            raise Overloaded(
                f"all {self.settings.workers} workers busy and {self.settings.max_queue} queued",
                retry_after_s=self.settings.retry_after_s,
            )
        self.start()
        executor = self._executor
        assert executor is not None
        self._in_flight += 1
        try:
            return await asyncio.wrap_future(executor.submit(fn, *args))
        except ContextNotCached as exc:
            raise _NeedContext from exc
        except CkksError as exc:
            raise translate(exc) from exc
        except BrokenProcessPool as exc:
            self._restart(executor)
            raise WorkerFailed("an evaluation worker died; the pool was restarted") from exc
        except OSError as exc:  # only the spool file can raise it: removed under us
            raise WorkerFailed(f"the worker could not read the spooled request: {exc}") from exc
        finally:
            self._in_flight -= 1

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        if self._executor is broken:
            broken.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            self.start()


def _mp_context() -> multiprocessing.context.BaseContext:
    try:
        context = multiprocessing.get_context("forkserver")
    except ValueError:  # pragma: no cover - platforms without forkserver
        return multiprocessing.get_context("spawn")
    context.set_forkserver_preload([_worker.__name__])
    return context


class _NeedContext(Exception):
    """The worker asked for the context's bytes."""
