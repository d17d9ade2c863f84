"""Functions that run inside the pool's worker processes (one evaluator per process)."""

from __future__ import annotations

import os

from clients.ckks import CkksParams, FrameLimits
from gateway.he._context import PublicContextInfo
from gateway.he._kernels import Evaluation, HeEvaluator, LinearModel

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


def evaluate(
    request: bytes, model: LinearModel, context_id: str | None, context_blob: bytes | None
) -> Evaluation:
    """Evaluate one request (see ``HeEvaluator.evaluate``)."""
    return _get().evaluate(request, model, context_id=context_id, context_blob=context_blob)


def validate(blob: bytes) -> PublicContextInfo:
    """Validate a public context and keep it loaded in this worker."""
    return _get().add_context(blob).info


def pid() -> int:
    """This worker's process id (lets tests see that a worker survived)."""
    return os.getpid()
