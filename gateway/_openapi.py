"""What the OpenAPI document says a route answers besides its success: RFC 9457 problems.

Every refusal the gateway sends is an ``application/problem+json`` body
(:func:`gateway._errors.problem_response`), so every route lists each status it can refuse
with, with that media type and the :class:`ProblemDetails` schema, through Litestar's
``responses={status: ResponseSpec}``. A route that lists a status here replaces the
``application/json`` 400 Litestar documents by itself. ``tests/gateway/test_gateway_openapi.py``
runs schemathesis against a gateway process and fails on any status or media type a route
answers that its entry does not name.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
    SecurityScheme,
)

from core.protocol import SESSION_COOKIE
from gateway._errors import PROBLEM_MEDIA_TYPE

__all__ = [
    "BINARY_BODY",
    "COMPONENTS",
    "KEY_OR_SESSION",
    "PAID_RESPONSES",
    "PREDICT_BODY",
    "SESSION_ONLY",
    "STATUS_DESCRIPTIONS",
    "ProblemDetails",
    "operation_with_body",
    "problem_spec",
    "problems",
]

COMPONENTS = Components(
    security_schemes={
        "apiKey": SecurityScheme(
            type="http",
            scheme="bearer",
            description="An API key, `twopm_<id>_<secret>` (POST /v1/keys), as a Bearer token",
        ),
        "session": SecurityScheme(
            type="apiKey",
            name=SESSION_COOKIE,
            security_scheme_in="cookie",
            description="The session cookie POST /v1/auth/verify sets after a SIWE sign-in",
        ),
    }
)
"""The document's security schemes (``OpenAPIConfig(components=...)``)."""
KEY_OR_SESSION: list[dict[str, list[str]]] = [{"apiKey": []}, {"session": []}]
"""``security=`` of the routes an API key or a session may call."""
SESSION_ONLY: list[dict[str, list[str]]] = [{"session": []}]
"""``security=`` of key management: a signed-in session, never a key."""

STATUS_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: a body, header, path or query parameter that does not parse",
    401: "No credential, a malformed one, or a session or API key that ended",
    402: "Credit or signed spending cap does not cover the price; says what is missing",
    403: "The caller may not do this (an API key where a session is needed, another user)",
    404: "No such resource, or not the caller's",
    409: "The request conflicts with the current state",
    413: "The body is larger than the route accepts",
    422: "The body parses but its content is refused; says which part",
    429: "Over the caller's request rate; see Retry-After",
    502: "The signer or the chain answered with an error",
    503: "A dependency is down or a bound is reached; retry later",
}
"""The default description of each refusal status in the OpenAPI document."""


class ProblemDetails(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem body, as the gateway's errors render (for the OpenAPI document).

    Extension members (``reason``, ``errors``, ``retry_after_s``, ``missing_wei`` ...) may
    follow; ``gateway/_errors.py`` names them per problem type.
    """

    type: str
    title: str
    status: int
    detail: str = ""
    instance: str = ""


def problem_spec(description: str) -> ResponseSpec:
    """An OpenAPI response entry for an RFC 9457 problem body.

    Args:
        description: When the route answers with it.

    Returns:
        For a route's ``responses={status: ...}``.
    """
    return ResponseSpec(
        data_container=ProblemDetails,
        description=description,
        media_type=PROBLEM_MEDIA_TYPE,
        generate_examples=False,
    )


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """Problem entries for ``statuses``, each with its :data:`STATUS_DESCRIPTIONS` text.

    Args:
        *statuses: HTTP statuses the route may refuse with (keys of
            :data:`STATUS_DESCRIPTIONS`).

    Returns:
        For a route's ``responses=``; merge a ``{status: problem_spec(...)}`` after it to say
        more about one status.

    Raises:
        KeyError: A status without a default description.
    """
    return {status: problem_spec(STATUS_DESCRIPTIONS[status]) for status in statuses}


PAID_RESPONSES: dict[int, ResponseSpec] = {
    **problems(400, 401, 413),
    402: problem_spec(STATUS_DESCRIPTIONS[402]),
    403: problem_spec("Stake below the subnet's minimum, or an API key scoped to other subnets"),
    404: problem_spec("No such subnet"),
    409: problem_spec("The subnet has no published model yet"),
    429: problem_spec("Over the stake tier's request rate; see Retry-After"),
    503: problem_spec("Receipt queue full or down, or no chain configured"),
}
"""OpenAPI ``responses`` of the paid routes: the refusals billing can answer with."""


def operation_with_body(media_type: str, schema: Schema, description: str) -> type[Operation]:
    """An ``operation_class`` documenting a body the handler reads itself.

    The paid routes read ``await request.body()`` instead of a ``data`` parameter (Litestar's
    decoding costs what ``gateway._services`` explains), so Litestar cannot see their body.

    Args:
        media_type: The body's media type.
        schema: Its JSON schema.
        description: What it carries.

    Returns:
        For a route decorator's ``operation_class=``.
    """

    @dataclass
    class OperationWithBody(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={media_type: OpenAPIMediaType(schema=schema)},
                description=description,
                required=True,
            )

    return OperationWithBody


PREDICT_BODY = Schema(
    type=OpenAPIType.OBJECT,
    required=["rows"],
    properties={
        "rows": Schema(
            type=OpenAPIType.ARRAY,
            min_items=1,
            items=Schema(
                type=OpenAPIType.OBJECT,
                additional_properties=Schema(type=OpenAPIType.NUMBER),
                description="One row: every feature of the subnet's model by name",
            ),
        )
    },
)
"""The body of ``POST /v1/subnets/{id}/predict``."""
BINARY_BODY = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
"""A binary frame (``application/octet-stream``)."""


# ---------------------------------------------------------------------------- answers
# What the JSON routes answer on success. The handlers build plain dicts (or pre-encoded
# bytes); these types only document them, and the schemathesis test checks every answer it
# gets against them (``response_schema_conformance``).


class NonceAnswer(msgspec.Struct):
    """``GET /v1/auth/nonce``."""

    nonce: str
    domain: str
    uri: str
    chain_id: int
    expires_in_s: int


class SessionAnswer(msgspec.Struct):
    """``POST /v1/auth/verify`` (the session itself is the ``twopm_session`` cookie)."""

    address: str
    expires_in_s: int


class MeAnswer(msgspec.Struct, kw_only=True):
    """``GET /v1/me``; the stake and credit members only when the gateway has a chain."""

    address: str
    via: str
    key_id: str | None
    outstanding_wei: str
    stake_wei: str = ""
    tier: str = ""
    credit_wei: str = ""
    pending_withdrawal_wei: str = ""
    cap_wei: str = ""
    cap_left_wei: str = ""
    cap_expiry: int = 0
    spendable_wei: str = ""


class KeyAnswer(msgspec.Struct):
    """An API key without its secret."""

    id: str
    name: str
    owner: str
    subnets: list[int] | None
    created_at: int


class NewKeyAnswer(KeyAnswer):
    """``POST /v1/keys``: the key record and its secret, shown this once."""

    key: str


class KeysAnswer(msgspec.Struct):
    """``GET /v1/keys``."""

    keys: list[KeyAnswer]


class SubnetAnswer(msgspec.Struct):
    """One subnet of ``GET /v1/subnets[/{id}]`` (``gateway._inference.subnet_json``)."""

    id: int
    name: str
    owner: str
    price_per_row_wei: str
    min_stake_wei: str
    model_version: int
    model_hash: str
    model_status: str
    model_error: str | None
    published_version: int
    published_model_hash: str
    artifact_uri: str
    feature_schema_hash: str
    feature_names: list[str]
    ckks: dict[str, object]
    ckks_parameter_sets: dict[str, dict[str, object]]
    """Named CKKS sets (``compact``, ``precise``): N, primes, ``seal_versions``,
    ``input_radius_sd``, ``logit_bound`` and ``max_abs_logit_error`` measured on the served model."""
    feature_standardisation: dict[str, list[float]] | None
    """The card's ``{mean, scale}``: the named sets take z = (x - mean) / scale; null if none."""
    verifier: str | None
    """The served version's proof verifier (``verifyProof(bytes, uint256[])``), null when none."""
    model_commitment: str | None
    """The served version's parameter commitment (0x-hex word), null when no verifier."""


class SubnetsAnswer(msgspec.Struct):
    """``GET /v1/subnets``."""

    subnets: list[SubnetAnswer]


class ContextAnswer(msgspec.Struct):
    """``POST /v1/he/contexts``."""

    context_id: str
    layout: str
    row_slots: int
    size_bytes: int
    expires_in_s: int


class AuthorizationAnswer(msgspec.Struct):
    """``POST /v1/spending-authorizations``."""

    tx_hash: str
    user: str
    max_total_spend_wei: str


class ReceiptFields(msgspec.Struct):
    """A receipt as recorded (wei as decimal strings)."""

    receipt_id: str
    user: str
    subnet_id: int
    model_hash: str
    request_hash: str
    response_hash: str
    price_wei: str
    timestamp: int
    rows: int


class BatchFields(msgspec.Struct):
    """The batch a receipt was cut into."""

    status: str
    batch_id: int | None
    subnet_id: int
    root: str
    tx_hash: str | None
    block_number: int | None
    size: int
    error: str | None
    confirmations: int
    confirmations_required: int


class ReceiptAnswer(msgspec.Struct, kw_only=True):
    """``GET /v1/receipts/{id}``; ``leaf`` and ``proof`` once the batch is recorded."""

    receipt: ReceiptFields
    status: str
    batch: BatchFields | None
    proof: list[str] | None
    leaf: str = ""


class ConfigAnswer(msgspec.Struct):
    """``GET /v1/config``: what the web page needs to talk to the chain."""

    chain_id: int
    public_url: str
    contracts: dict[str, str]
    tokens: list[dict[str, str]]
    eip712: dict[str, str]
    dev_accounts: list[str] | None = None
    """Only on a local ``twopm up``: addresses of the development wallet the page offers."""


def answer(container: type[msgspec.Struct], description: str) -> ResponseSpec:
    """An OpenAPI response entry for a JSON success body.

    Args:
        container: The type documenting the body.
        description: What it carries.

    Returns:
        For a route's ``responses={status: ...}`` (the route's own success status).
    """
    return ResponseSpec(
        data_container=container,
        description=description,
        media_type="application/json",
        generate_examples=False,
    )
