"""Support for the SDK's gateway tests (a real signer process and a real gateway on loopback).

``start_signer``, ``SignerProcess``, ``serve`` and ``free_port`` come from ``service_support``.

The encrypted-inference routes below stand in for the gateway's own until they land
(issue 5): they follow the shapes in DESIGN.md and the SDK's wire constants, evaluate with
the real ``gateway.he.HeEvaluator`` and bill through the gateway's real billing guard.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
from litestar import Request, Response, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from service_support import SignerProcess, free_port, serve, start_signer

from ckks import CkksError, parse_request, sigmoid
from gateway._auth import Caller
from gateway._services import caller_of as _caller
from gateway.he import (
    ContextNotCached,
    HeEvaluator,
    LinearModel,
    PublicContextNotFound,
    translate,
)

__all__ = [
    "PUBLIC_URL",
    "SignerProcess",
    "free_port",
    "he_routes",
    "serve",
    "start_signer",
    "wait_until",
]

PUBLIC_URL = "https://gw.test"


def he_routes(evaluator: HeEvaluator, model: LinearModel) -> list[Any]:
    """Stand-ins for ``/v1/he/contexts``, ``/v1/subnets/{id}/infer`` and ``/predict``.

    The plaintext stand-in reads the features in sorted name order (the tests name them so).
    """

    @post("/v1/he/contexts", status_code=201, dependencies={"caller": Provide(_caller)})
    async def upload_context(
        request: Request[Any, Any, Any], caller: NamedDependency[Caller]
    ) -> dict[str, Any]:
        try:
            loaded = evaluator.add_context(await request.body())
        except CkksError as exc:
            raise translate(exc) from exc
        return {"context_id": loaded.info.context_id, "layout": loaded.info.layout.label}

    @post(
        "/v1/subnets/{subnet_id:int}/infer",
        status_code=200,
        dependencies={"caller": Provide(_caller)},
    )
    async def infer(
        request: Request[Any, Any, Any], caller: NamedDependency[Caller], subnet_id: FromPath[int]
    ) -> Response[bytes]:
        body = await request.body()
        billing = request.app.state.services.need_billing()
        try:
            frame = parse_request(body, evaluator.params)
        except CkksError as exc:
            raise translate(exc) from exc
        async with billing.billed(caller, subnet_id, rows=frame.n_rows) as charge:
            try:
                evaluation = evaluator.evaluate(
                    body, model, context_id=request.headers.get("x-context-id")
                )
            except ContextNotCached as exc:
                raise PublicContextNotFound("public context unknown or expired") from exc
            except CkksError as exc:
                raise translate(exc) from exc
            receipt = await charge.complete(body, evaluation.response)
        return Response(
            evaluation.response,
            media_type="application/octet-stream",
            headers={"X-Receipt-Id": receipt.receipt_id},
        )

    @post(
        "/v1/subnets/{subnet_id:int}/predict",
        status_code=200,
        dependencies={"caller": Provide(_caller)},
    )
    async def predict(
        request: Request[Any, Any, Any], caller: NamedDependency[Caller], subnet_id: FromPath[int]
    ) -> Response[dict[str, Any]]:
        body = await request.body()
        rows = json.loads(body)["rows"]
        names = [f"f{i}" for i in range(model.n_features)] if not rows else list(rows[0])
        x = np.array([[float(r[n]) for n in sorted(names)] for r in rows])
        logits = x @ np.asarray(model.weights) + model.intercept
        billing = request.app.state.services.need_billing()
        answer = {"probabilities": sigmoid(logits).tolist(), "logits": logits.tolist()}
        async with billing.billed(caller, subnet_id, rows=len(rows)) as charge:
            receipt = await charge.complete(body, json.dumps(answer).encode())
        return Response(answer, headers={"X-Receipt-Id": receipt.receipt_id})

    return [upload_context, infer, predict]


def wait_until(predicate: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)
