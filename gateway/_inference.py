"""The inference routes: subnets and their models, plaintext and CKKS-encrypted prediction.

Routes (bodies as the SDK in ``clients/sdk/_gateway.py`` sends and reads them)::

    GET  /v1/subnets, /v1/subnets/{id}   subnet, served model, features, price, stake, CKKS
    POST /v1/subnets/{id}/predict        {"rows": [{feature: value}, ...]} -> probabilities
    POST /v1/he/contexts                 public context frame (binary) -> {"context_id", ...}
    POST /v1/subnets/{id}/infer          request frame (binary), X-Context-Id -> response frame

``GET /v1/subnets/{id}`` also lists the named CKKS parameter sets (``ckks_parameter_sets``:
``compact``, ``precise``) with each one's ring size, primes, accepted SEAL versions and the
logit error measured on the served model, and the card's ``feature_standardisation`` those
sets take their inputs in. A request in a named set needs no uploaded context.

Paid routes run in this order: authenticate (session or API key), check the input
against the served model (400/413/422), pick the model (404 unknown subnet, 409 nothing
published, 503 not servable), then the billing guard (API-key scope, stake 403, rate 429,
credit 402), then the model; the receipt hashes the exact request and response bodies and
names the model that answered. Encrypted evaluation runs in the ``HePool`` worker
processes; a full pool answers 503 with ``Retry-After`` before anything is reserved.

The uploaded contexts are kept by :mod:`gateway._contexts`; plaintext rows are parsed by
:mod:`gateway._rows`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from typing import Annotated, Any

import msgspec
import numpy as np
import numpy.typing as npt
from litestar import Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter
from litestar.response.base import ASGIResponse

from ckks import DEFAULT_PARAMS, AffineModel, CkksParams, Layout, sets_json
from core.protocol import CONTEXT_HEADER
from gateway._auth import Caller
from gateway._contexts import context_store_for
from gateway._errors import BadRequest, GatewayError, ServiceUnavailable
from gateway._fetch import ModelSource
from gateway._models import ModelFollower, SubnetModelStatus
from gateway._onnx import LoadedModel
from gateway._openapi import (
    BINARY_BODY,
    KEY_OR_SESSION,
    PAID_RESPONSES,
    PREDICT_BODY,
    ContextAnswer,
    SubnetAnswer,
    SubnetsAnswer,
    answer,
    operation_with_body,
    problem_spec,
    problems,
)
from gateway._proofs import ProofService, word_hex
from gateway._rows import parse_rows
from gateway._services import caller_of, paid_response, paying_caller_of, services_of
from gateway._settings import GatewaySettings
from gateway._state import State
from gateway.he import (
    EncryptedInputRejected,
    HePool,
    HePoolSettings,
    Overloaded,
    PublicContextNotFound,
)

__all__ = ["Inference", "inference_route_handlers", "subnet_json"]

BINARY = "application/octet-stream"
_REFUSED_INPUT = {
    413: problem_spec("More rows or bytes than one request may carry"),
    422: problem_spec(
        "Rows, features or ciphertexts the model cannot take; says which (`he-rejected`); a "
        "SEAL object in a serialization version other than 4.1 or 4.3 (`he-seal-version`, "
        "with `supported_seal_versions`)"
    ),
}
_PREDICT_422 = problem_spec(
    "Rows or features the model cannot take; says which. With `proof=true` (`proof-unsupported`): "
    "more than one row, a value outside the proof's fixed-point range, or a model version without "
    "a verifier"
)


class PredictAnswer(msgspec.Struct):
    """``POST /v1/subnets/{id}/predict``: one entry per row, in the order sent."""

    probabilities: list[float]
    logits: list[float]
    model_version: int
    model_hash: str
    proof: str | None = None
    """With ``proof=true``: 0x-hex Groth16 proof, abi.encode(uint256[2], uint256[2][2], uint256[2])."""
    instances: list[str] | None = None
    """With ``proof=true``: public signals ``[logit, model_commitment, inputs_hash]``, 0x-hex words
    (``inputs_hash``: Poseidon hash of the fixed-point features, ``zk.inputs_hash``)."""
    proven_logit: float | None = None
    """With ``proof=true`` and one row: the logit the proof shows (fixed point 2^-56, decoded)."""
    proven_logits: list[float] | None = None
    """With ``proof=true`` and several rows: the logits the batch proof shows (decoded)."""
    logit_words: list[str] | None = None
    """With several rows: those logits as the field elements the proof hashes (0x-hex words);
    ``instances = [inputsHash, logitsHash, model_commitment]`` (``zk.batch_hashes``)."""
    pad_logit_word: str | None = None
    """With several rows: the logit of the zero rows padding the batch (the intercept, 0x-hex)."""
    verifier: str | None = None
    """With ``proof=true``: the version's verifier; ``verifyProof(proof, instances)`` there."""
    model_commitment: str | None = None
    """With ``proof=true``: the version's parameter commitment (0x-hex word), as recorded on chain."""
    proving_s: float | None = None
    """With ``proof=true``: seconds the prover worker spent."""


PREDICT_RESPONSES = {
    **PAID_RESPONSES,
    **_REFUSED_INPUT,
    200: ResponseSpec(
        data_container=PredictAnswer,
        description="Probabilities and logits (with `proof=true` also the proof fields); "
        "X-Receipt-Id and X-Model-Version headers",
        media_type="application/json",
        generate_examples=False,
    ),
    422: _PREDICT_422,
    503: problem_spec(
        "The model is loading or was refused, or billing is unavailable; `prover-busy` (with "
        "`Retry-After`) when the prover queue is full or its keys are still being made"
    ),
}
"""OpenAPI ``responses`` of ``predict``."""
INFER_RESPONSES = {
    **PAID_RESPONSES,
    **_REFUSED_INPUT,
    200: ResponseSpec(
        data_container=bytes,
        description="The response frame (encrypted logits); X-Receipt-Id, X-Model-Version",
        media_type=BINARY,
        generate_examples=False,
    ),
    404: problem_spec("No such subnet, or an X-Context-Id that is unknown or expired"),
    503: problem_spec("The model is loading or refused, the worker pool is full, or a worker died"),
}
"""OpenAPI ``responses`` of ``infer``."""
INLINE_PREDICT_ROWS = 256
"""Batches up to this many rows run onnxruntime on the event loop (tens of µs); larger ones
run in a thread."""
_CONTEXT_ID = re.compile(r"^[0-9a-f]{64}$")
SET_ERROR_CACHE = 64
"""Most models whose parameter-set errors are kept (a few floats each), and most measurements
running at once."""
_log = logging.getLogger("gateway.inference")


# ---------------------------------------------------------------------------- service


class Inference:
    """Everything the inference routes use; one per app, in ``app.state.inference``.

    Args:
        settings: Gateway settings (model source, pool and context bounds).
        state: The gateway's shared state (contexts go where it lives).
        chain: Chain reader; None when the gateway runs without a chain.
        registry: Prometheus registry for the follower's metrics.
        params: The CKKS parameters every subnet advertises.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        state: State,
        chain: Any,
        registry: Any,
        *,
        params: CkksParams = DEFAULT_PARAMS,
    ) -> None:
        self.settings = settings
        self.params = params
        self.params_json = params.to_dict()
        self.follower: ModelFollower | None = None
        if chain is not None:
            source = ModelSource(
                model_store=settings.model_store,
                fetch_max_bytes=settings.model_fetch_max_bytes,
                fetch_timeout_s=settings.model_fetch_timeout_s,
            )
            self.follower = ModelFollower(
                chain, source, registry, cache_max_entries=settings.model_cache_max_entries
            )
        self.pool = HePool(
            params,
            HePoolSettings(
                workers=settings.he_workers,
                max_queue=settings.he_max_queue,
                retry_after_s=settings.he_retry_after_s,
            ),
        )
        self.contexts = context_store_for(state, settings)
        self.proofs = ProofService(settings, chain)
        self._set_errors: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._measuring: dict[str, asyncio.Task[None]] = {}
        if self.follower is not None:
            self.follower.on_loaded = self.measure_soon

    def measure_soon(self, model: LoadedModel) -> None:
        """Start measuring the parameter sets' logit errors on ``model`` in the background.

        Called by the follower when it has loaded and verified a model, so that the first
        ``GET /v1/subnets/{id}`` finds the errors ready. The measurement
        (``gateway.he.measure_set_errors``: 192 rows of the model's input ball per set, about
        0.5 s) runs in one of the evaluation workers, off the event loop and its GIL, and its
        result is kept per model hash (at most ``SET_ERROR_CACHE`` models, least recently used
        dropped). Nothing happens when the errors are known or being measured, or when
        ``SET_ERROR_CACHE`` measurements already run; a model the sets cannot evaluate (e.g.
        all-zero weights, 422 on ``/infer``) is remembered with no errors. When the pool is
        full or a worker dies nothing is kept, and the next listing starts it again.

        Args:
            model: A verified model.
        """
        key = model.model_hash
        if key in self._set_errors or key in self._measuring:
            return
        try:
            affine = model.linear.affine()
        except ValueError:  # no standardised form: the sets list no errors for it
            self._keep_errors(key, {})
            return
        if len(self._measuring) >= SET_ERROR_CACHE:
            return
        self._measuring[key] = asyncio.create_task(self._measure(key, affine))

    async def _measure(self, key: str, affine: AffineModel) -> None:
        try:
            errors = await self.pool.measure_sets(affine)
        except EncryptedInputRejected:
            errors = {}  # the sets cannot evaluate this model: nothing to measure
        except GatewayError as exc:  # pool full or a worker died: the next listing retries
            _log.info("model %s: parameter-set errors not measured (%s)", key, exc)
            return
        except Exception:
            _log.exception("model %s: measuring the parameter sets failed", key)
            return
        finally:
            self._measuring.pop(key, None)
        self._keep_errors(key, errors)

    def _keep_errors(self, key: str, errors: dict[str, float]) -> None:
        self._set_errors[key] = errors
        while len(self._set_errors) > SET_ERROR_CACHE:
            self._set_errors.popitem(last=False)

    async def parameter_sets(self, model: LoadedModel | None) -> dict[str, Any]:
        """``ckks_parameter_sets`` for a subnet serving ``model`` (None: nothing served yet).

        Never waits for a measurement: each set's ``max_abs_logit_error`` is the one measured
        on the model when it was loaded (:meth:`measure_soon`), or null while that
        measurement is still running (or could not run; it is started again here then, and
        a later listing shows it). A model the sets refuse keeps null errors.

        Args:
            model: The served model.

        Returns:
            Set name -> its JSON (``ckks.sets_json``).
        """
        if model is None:
            return sets_json(None, {})
        try:
            affine = model.linear.affine()
        except ValueError:
            return sets_json(None, {})
        errors = self._set_errors.get(model.model_hash)
        if errors is None:
            self.measure_soon(model)
            return sets_json(affine, {})
        self._set_errors.move_to_end(model.model_hash)
        return sets_json(affine, errors)

    async def start(self) -> None:
        """Start following the registry and preparing the proving keys (workers start on first use)."""
        if self.follower is not None:
            await self.follower.start(self.settings.event_poll_interval_s)
        await self.proofs.start()

    async def stop(self) -> None:
        """Stop the follower and the worker processes."""
        if self.follower is not None:
            await self.follower.stop()
        for task in list(self._measuring.values()):
            task.cancel()
        await self.proofs.stop()
        await asyncio.to_thread(self.pool.close)

    def need_follower(self) -> ModelFollower:
        """The model follower, or 503 when the gateway runs without a chain.

        Returns:
            The follower.

        Raises:
            ServiceUnavailable: No chain configured.
        """
        if self.follower is None:
            raise ServiceUnavailable("this gateway has no chain connection configured")
        return self.follower


def subnet_json(status: SubnetModelStatus, params_json: dict[str, Any]) -> dict[str, Any]:
    """The JSON of one subnet for ``GET /v1/subnets[/{id}]``.

    ``model_version``/``model_hash`` name the model that answers requests now (the
    published one until a model is served); ``published_*`` are the registry's current
    version, ``model_status`` says whether it is served, loading or refused.

    Args:
        status: The follower's view of the subnet.
        params_json: ``CkksParams.to_dict()`` of the advertised parameters.

    Returns:
        The JSON object.
    """
    info = status.info
    served = status.serving_version > 0
    return {
        "id": info.subnet_id,
        "name": info.name,
        "owner": info.owner,
        "price_per_row_wei": str(info.price_wei),
        "min_stake_wei": str(info.min_stake_wei),
        "model_version": status.serving_version if served else info.current_version,
        "model_hash": status.serving_hash if served else info.model_hash,
        "model_status": status.state,
        "model_error": status.error,
        "published_version": info.current_version,
        "published_model_hash": info.model_hash,
        "artifact_uri": info.artifact_uri,
        "feature_schema_hash": info.feature_schema_hash,
        "feature_names": list(status.feature_names),
        "ckks": params_json,
    }


# ---------------------------------------------------------------------------- routes


def _inference(request: Request[Any, Any, Any]) -> Inference:
    inference: Inference = request.app.state.inference
    return inference


@get(
    "/v1/subnets",
    tags=["subnets"],
    responses={200: answer(SubnetsAnswer, "The subnets"), **problems(503)},
)
async def list_subnets(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Subnets on the registry (at most the 1000 newest), each with its served model."""
    inference = _inference(request)
    follower = inference.need_follower()
    count = await follower.chain.subnet_count()
    ids = range(max(1, count - 999), count + 1)
    statuses = [await follower.status(i) for i in ids]
    return {"subnets": [await _subnet_with_proofs(inference, s) for s in statuses]}


async def _subnet_with_proofs(inference: Inference, status: SubnetModelStatus) -> dict[str, Any]:
    body = subnet_json(status, inference.params_json)
    body.update(await inference.proofs.fields(body["id"], int(body["model_version"])))
    model: LoadedModel | None = None
    if status.serving_version > 0 and inference.follower is not None:
        try:
            _, model = await inference.follower.model_for(status.info.subnet_id)
        except GatewayError:
            model = None
    sets = await inference.parameter_sets(model)
    body["ckks_parameter_sets"] = sets
    affine = None if model is None else _affine_or_none(model)
    body["feature_standardisation"] = None if affine is None else affine.standardisation_json()
    return body


def _affine_or_none(model: LoadedModel) -> AffineModel | None:
    try:
        return model.linear.affine()
    except ValueError:
        return None


@get(
    "/v1/subnets/{subnet_id:int}",
    tags=["subnets"],
    responses={200: answer(SubnetAnswer, "The subnet"), **problems(400, 404, 503)},
)
async def get_subnet(request: Request[Any, Any, Any], subnet_id: FromPath[int]) -> dict[str, Any]:
    """One subnet: price, stake, served model, features, CKKS parameters, proof verifier.

    ``verifier`` and ``model_commitment`` are the served version's (null when none is recorded).
    """
    inference = _inference(request)
    status = await inference.need_follower().status(subnet_id)
    return await _subnet_with_proofs(inference, status)


@post(
    "/v1/subnets/{subnet_id:int}/predict",
    status_code=200,
    tags=["inference"],
    responses=PREDICT_RESPONSES,
    security=KEY_OR_SESSION,
    operation_class=operation_with_body(
        "application/json", PREDICT_BODY, '{"rows": [{feature: number, ...}, ...]}'
    ),
)
async def predict(
    request: Request[Any, Any, Any],
    subnet_id: FromPath[int],
    proof: Annotated[
        bool,
        QueryParameter(
            name="proof",
            description="Also prove the logits (billed as `proof_price_rows` rows per row): the "
            "answer gains `proof` (0x-hex), `instances`, `verifier`, `model_commitment`; one row "
            "gets a one-row proof (`proven_logit`), 2 to 24 rows of a 3-feature model one batch "
            "proof (`proven_logits`, `logit_words`); more rows are a 422.",
        ),
    ] = False,
) -> ASGIResponse:
    """Plaintext rows (named features) -> probabilities and logits; billed per row.

    With ``?proof=true``, one Groth16 proof that the model version's committed parameters produced
    the logit (one row) or the logits (a batch of up to ``zk.BATCH_ROWS`` rows, 3 features),
    checkable with ``verifyProof(proof, instances)`` at ``verifier``.
    """
    caller = await paying_caller_of(request)
    inference = _inference(request)
    billing = services_of(request).need_billing()
    body = await request.body()
    version, model = await inference.need_follower().model_for(subnet_id)
    x = parse_rows(body, model.feature_names, inference.settings.predict_max_rows)
    rows_billed = x.shape[0]
    verifier, commitment = None, 0
    batched = proof and x.shape[0] > 1
    if batched:
        verifier, commitment = await inference.proofs.prepare_batch(
            subnet_id, version, model, x.shape[0]
        )
        rows_billed = inference.settings.proof_price_rows * x.shape[0]
    elif proof:
        verifier, commitment = await inference.proofs.prepare(subnet_id, version, model)
        rows_billed = inference.settings.proof_price_rows
    async with billing.billed(caller, subnet_id, rows=rows_billed) as charge:
        logits, proba = await _run_onnx(model, x)
        payload: dict[str, Any] = {
            "probabilities": proba.tolist(),
            "logits": logits.tolist(),
            "model_version": version,
            "model_hash": model.model_hash,
        }
        if batched:
            batch = await inference.proofs.prove_batch(model, x.tolist(), commitment)
            payload.update(
                proof="0x" + batch.proof.hex(),
                instances=[word_hex(v) for v in batch.instances],
                proven_logits=batch.real_logits,
                logit_words=[word_hex(v) for v in batch.logits],
                pad_logit_word=word_hex(batch.pad_logit),
                verifier=verifier,
                model_commitment=word_hex(commitment),
                proving_s=round(batch.proving_s, 4),
            )
        elif proof:
            proven = await inference.proofs.prove(model, x[0].tolist(), commitment)
            payload.update(
                proof="0x" + proven.proof.hex(),
                instances=[word_hex(v) for v in proven.instances],
                proven_logit=proven.logit,
                verifier=verifier,
                model_commitment=word_hex(commitment),
                proving_s=round(proven.proving_s, 4),
            )
        answer = msgspec.json.encode(payload)
        receipt = await charge.complete(body, answer, model_hash=model.model_hash)
    return paid_response(
        answer,
        media_type="application/json",
        receipt_id=receipt.receipt_id,
        model_version=version,
    )


async def _run_onnx(
    model: LoadedModel, x: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    if x.shape[0] <= INLINE_PREDICT_ROWS:
        return model.predict(x)
    return await asyncio.to_thread(model.predict, x)


@post(
    "/v1/he/contexts",
    status_code=201,
    tags=["inference"],
    dependencies={"caller": Provide(caller_of)},
    security=KEY_OR_SESSION,
    responses={
        201: answer(ContextAnswer, "Stored; send its id as X-Context-Id"),
        **problems(400, 401, 413, 422, 503),
    },
    operation_class=operation_with_body(
        BINARY, BINARY_BODY, "A public CKKS context frame (no secret key)"
    ),
)
async def upload_context(
    request: Request[Any, Any, Any], caller: NamedDependency[Caller]
) -> dict[str, Any]:
    """Store a public CKKS context (binary frame, no secret key) and return its id."""
    inference = _inference(request)
    body = await request.body()
    if not body:
        raise BadRequest("the body must be a public context frame")
    info = await inference.pool.validate_context(body)
    await inference.contexts.put(info.context_id, body)
    return {
        "context_id": info.context_id,
        "layout": info.layout.label,
        "row_slots": info.row_slots,
        "size_bytes": info.size_bytes,
        "expires_in_s": inference.contexts.ttl_s,
    }


@post(
    "/v1/subnets/{subnet_id:int}/infer",
    status_code=200,
    tags=["inference"],
    responses=INFER_RESPONSES,
    security=KEY_OR_SESSION,
    operation_class=operation_with_body(
        BINARY, BINARY_BODY, "A CKKS request frame (ckks); X-Context-Id for rows"
    ),
)
async def infer(request: Request[Any, Any, Any], subnet_id: FromPath[int]) -> ASGIResponse:
    """Encrypted features (request frame) -> encrypted logits (response frame); billed per row."""
    caller = await paying_caller_of(request)
    inference = _inference(request)
    billing = services_of(request).need_billing()
    pool = inference.pool
    body = await request.body()
    frame = pool.parse(body)
    version, model = await inference.need_follower().model_for(subnet_id)
    if frame.n_features != model.n_features:
        raise EncryptedInputRejected(
            f"the request has {frame.n_features} features; model version {version} takes "
            f"{model.n_features}"
        )
    context_id: str | None = None
    if frame.layout is Layout.ROW:
        context_id = (request.headers.get(CONTEXT_HEADER) or "").strip().lower()
        if not _CONTEXT_ID.match(context_id):
            raise BadRequest("the row layout needs X-Context-Id: the id of an uploaded context")
        if not await inference.contexts.exists(context_id):
            raise PublicContextNotFound(
                f"public context {context_id} is unknown or expired; upload it again"
            )
    if pool.in_flight >= pool.capacity:  # refuse before reserving anything
        raise Overloaded(
            f"all {pool.settings.workers} workers busy and {pool.settings.max_queue} queued",
            retry_after_s=pool.settings.retry_after_s,
        )
    async with billing.billed(caller, subnet_id, rows=frame.n_rows) as charge:
        evaluation = await pool.evaluate(
            body,
            model=model.linear,
            context_id=context_id,
            load_context=inference.contexts.get,
        )
        receipt = await charge.complete(body, evaluation.response, model_hash=model.model_hash)
    return paid_response(
        evaluation.response,
        media_type=BINARY,
        receipt_id=receipt.receipt_id,
        model_version=version,
    )


def inference_route_handlers() -> list[Any]:
    """The route handlers of this module (the app mounts them).

    Returns:
        Handlers for the subnet, predict, context and infer routes.
    """
    return [list_subnets, get_subnet, predict, upload_context, infer]
