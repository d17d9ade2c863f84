"""Functions that run inside the pool's worker processes (one evaluator per process)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from clients.ckks import CkksParams, FrameLimits
from gateway.he._context import PublicContextInfo
from gateway.he._kernels import Evaluation, HeEvaluator, LinearModel

_evaluator: HeEvaluator | None = None


@dataclass(frozen=True)
class Spilled:
    """A large payload the pool wrote to a tmpfs file instead of the pipe.

    Attributes:
        path: File to read; the pool deletes it when the task is done.
    """

    path: str


def _read(payload: bytes | Spilled | None) -> bytes | None:
    if isinstance(payload, Spilled):
        with open(payload.path, "rb") as f:
            return f.read()
    return payload


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
    request: bytes | Spilled,
    model: LinearModel,
    context_id: str | None,
    context_blob: bytes | Spilled | None,
) -> Evaluation:
    """Evaluate one request (see ``HeEvaluator.evaluate``)."""
    body = _read(request)
    assert body is not None
    return _get().evaluate(body, model, context_id=context_id, context_blob=_read(context_blob))


def validate(blob: bytes | Spilled) -> PublicContextInfo:
    """Validate a public context and keep it loaded in this worker."""
    body = _read(blob)
    assert body is not None
    return _get().add_context(body).info


def pid() -> int:
    """This worker's process id (lets tests see that a worker survived)."""
    return os.getpid()
