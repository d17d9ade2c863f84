"""Encrypted inference in the gateway: public-context validation, evaluation kernels, pool.

The gateway calls :meth:`HePool.validate_context` for ``POST /v1/he/contexts`` and
:meth:`HePool.evaluate` for ``POST /v1/subnets/{id}/infer``; both run in worker
processes and raise :class:`gateway._errors.GatewayError` subclasses (400/404/413/422/503).
:class:`HeEvaluator` and :func:`validate_public_context` are the same work in-process.

Wiring, in outline::

    pool = HePool(params, HePoolSettings(workers=2, max_queue=8))
    pool.start(); await pool.warm_up()                      # at app start; pool.close() at stop

    # POST /v1/he/contexts (body: the context frame)
    info = await pool.validate_context(body)                # 400/413/422 on refusal
    await store.set(f"he:ctx:{info.context_id}", body, expires_in=ttl_s)

    # POST /v1/subnets/{id}/infer (body: the request frame)
    frame = pool.parse(body)                                # 400/413 at once; bill frame.n_rows
    result = await pool.evaluate(
        body,
        model=LinearModel.from_arrays(coefficients, intercept),
        context_id=context_id,                              # needed by the row layout only
        load_context=lambda cid: store.get(f"he:ctx:{cid}"),
    )                                                       # 404 expired context, 422, 503
    return result.response                                  # binary response frame
"""

from gateway.he._context import PublicContextInfo, ServerContext, validate_public_context
from gateway.he._errors import (
    EncryptedFrameMalformed,
    EncryptedInputRejected,
    EncryptedPayloadTooLarge,
    Overloaded,
    PublicContextNotFound,
    PublicContextRejected,
    SealVersionNotSupported,
    WorkerFailed,
    translate,
)
from gateway.he._kernels import ContextNotCached, Evaluation, HeEvaluator, LinearModel
from gateway.he._pool import ContextLoader, HePool, HePoolSettings
from gateway.he._sets import SetEvaluation, SetKernels, measure_logit_error, measure_set_errors

__all__ = [
    "ContextLoader",
    "ContextNotCached",
    "EncryptedFrameMalformed",
    "EncryptedInputRejected",
    "EncryptedPayloadTooLarge",
    "Evaluation",
    "HeEvaluator",
    "HePool",
    "HePoolSettings",
    "LinearModel",
    "Overloaded",
    "PublicContextInfo",
    "PublicContextNotFound",
    "PublicContextRejected",
    "SealVersionNotSupported",
    "ServerContext",
    "SetEvaluation",
    "SetKernels",
    "WorkerFailed",
    "measure_logit_error",
    "measure_set_errors",
    "translate",
    "validate_public_context",
]
