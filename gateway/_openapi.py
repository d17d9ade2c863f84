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
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)

from gateway._errors import PROBLEM_MEDIA_TYPE

__all__ = [
    "BINARY_BODY",
    "PAID_RESPONSES",
    "PREDICT_BODY",
    "STATUS_DESCRIPTIONS",
    "ProblemDetails",
    "operation_with_body",
    "problem_spec",
    "problems",
]

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
