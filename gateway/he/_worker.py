"""Functions that run inside the pool's worker processes (one evaluator per process)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ckks import AffineModel, CkksParams, FrameLimits
from gateway.he._context import PublicContextInfo
from gateway.he._kernels import Evaluation, HeEvaluator, LinearModel
from gateway.he._sets import measure_set_errors

_evaluator: HeEvaluator | None = None


def init(
    params: CkksParams, limits: FrameLimits, context_cache_size: int, model_cache_size: int
) -> None:
    """Pool initializer: make this process's evaluator (and its bounded caches)."""
    global _evaluator
    _evaluator = HeEvaluator(
        params,
        limits,
        context_cache_size=context_cache_size,
        model_cache_size=model_cache_size,
    )


def _get() -> HeEvaluator:
    if _evaluator is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker not initialised")
    return _evaluator


@dataclass(frozen=True)
class Spooled:
    """A request the pool wrote to a spool file rather than sending through its pipe.

    Attributes:
        path: The file (on tmpfs where there is one); the pool removes it.
        size: Its length in bytes.
    """

    path: str
    size: int

    def read(self) -> bytes:
        """The request bytes.

        Raises:
            OSError: The file is gone or shorter than ``size``.
        """
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, self.size, 0)
        finally:
            os.close(fd)
        if len(data) != self.size:
            raise OSError(f"spool file {self.path} holds {len(data)} of {self.size} bytes")
        return data


def evaluate(
    request: bytes | Spooled,
    model: LinearModel,
    context_id: str | None,
    context_blob: bytes | None,
) -> Evaluation:
    """Evaluate one request (see ``HeEvaluator.evaluate``)."""
    body = request.read() if isinstance(request, Spooled) else request
    return _get().evaluate(body, model, context_id=context_id, context_blob=context_blob)


def validate(blob: bytes) -> PublicContextInfo:
    """Validate a public context and keep it loaded in this worker."""
    return _get().add_context(blob).info


def measure_sets(model: AffineModel) -> dict[str, float]:
    """Each named set's measured logit error on ``model`` (see ``measure_set_errors``)."""
    return measure_set_errors(model)


def pid() -> int:
    """This worker's process id (lets tests see that a worker survived)."""
    return os.getpid()
