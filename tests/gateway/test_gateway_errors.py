"""Every gateway error has a status, a problem type, a place in the drawn tree and an SDK error.

Like httpx's ``test_httpcore_all_exceptions_mapped``: the classes are found by walking the
``gateway`` package and enumerating ``GatewayError``'s subclasses, so a new error that is not
drawn in ``gateway/_errors.py``'s docstring, or that the SDK does not map, fails here.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from typing import Any

import httpx
import pytest
from litestar import Request
from litestar.exceptions import HTTPException

import clients.sdk as sdk
import gateway
from clients.sdk._exceptions import PROBLEM_TYPES, error_from_response
from core.protocol import PROBLEM_TYPE_BASE
from gateway._errors import (
    SIGN_IN_REASONS,
    ConfigurationError,
    GatewayError,
    SignInRejected,
    problem_response,
)

for _module in pkgutil.walk_packages(gateway.__path__, "gateway."):
    importlib.import_module(_module.name)

_TREE_LINE = re.compile(
    r"^(?P<indent>(?:[│ ] {3}|[├└]── )*)(?P<name>[A-Z]\w+)\s+(?P<status>\d{3}|---)\s+(?P<slug>[a-z0-9-]+)"
)
_SAMPLE_ARGUMENTS: dict[str, Any] = {"retry_after_s": 2.5, "reason": "nonce-reused"}
"""Values for the required keyword-only arguments of an error's constructor."""


def _all_errors() -> list[type[GatewayError]]:
    seen: list[type[GatewayError]] = []
    todo: list[type[GatewayError]] = [GatewayError]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.append(cls)
            todo.extend(cls.__subclasses__())
    return sorted(seen, key=lambda c: c.__name__)


def _drawn_tree() -> dict[str, tuple[str | None, str, str]]:
    """Name -> (parent name, status or ``---``, slug), from the docstring of ``gateway._errors``."""
    doc = importlib.import_module("gateway._errors").__doc__ or ""
    tree: dict[str, tuple[str | None, str, str]] = {}
    parents: list[str] = []
    for line in doc.splitlines():
        match = _TREE_LINE.match(line.strip("\n")[4:])
        if match is None:
            continue
        depth = len(match["indent"]) // 4
        parents = parents[:depth]
        tree[match["name"]] = (parents[-1] if parents else None, match["status"], match["slug"])
        parents.append(match["name"])
    return tree


def _instance(cls: type[GatewayError]) -> GatewayError:
    params = inspect.signature(cls.__init__).parameters.values()
    kwargs = {
        p.name: _SAMPLE_ARGUMENTS[p.name]
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    }
    return cls("what went wrong", **kwargs)


def _request() -> Request[Any, Any, Any]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/thing",
        "raw_path": b"/v1/thing",
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "headers": [(b"host", b"gw.test")],
        "server": ("gw.test", 80),
        "client": ("127.0.0.1", 1234),
    }
    return Request(scope)  # type: ignore[arg-type]


def _as_httpx(cls_or_exc: Exception) -> httpx.Response:
    rendered = problem_response(_request(), cls_or_exc)
    body = json.dumps(rendered.content).encode()
    headers = {"content-type": rendered.media_type, **(rendered.headers or {})}
    return httpx.Response(rendered.status_code, content=body, headers=headers)


ERRORS = _all_errors()
TREE = _drawn_tree()


def test_the_walk_finds_the_errors_defined_outside_the_errors_module() -> None:
    names = {cls.__name__ for cls in ERRORS}
    assert {"SignInRejected", "InvalidRows", "PublicContextNotFound", "ModelUnavailable"} <= names


def test_the_drawn_tree_names_only_classes_that_exist() -> None:
    assert set(TREE) == {cls.__name__ for cls in ERRORS}


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_is_drawn_under_its_base_with_its_status_and_slug(
    cls: type[GatewayError],
) -> None:
    assert cls.__name__ in TREE, f"draw {cls.__name__} in gateway/_errors.py's tree"
    parent, status, slug = TREE[cls.__name__]
    base = cls.__mro__[1]
    assert parent == (None if cls is GatewayError else base.__name__)
    assert slug == cls.slug
    expected_status = "---" if cls is ConfigurationError else str(cls.status_code)
    assert status == expected_status
    assert cls.__doc__ and cls.title


def test_every_error_has_its_own_problem_type() -> None:
    slugs = [cls.slug for cls in ERRORS]
    assert len(slugs) == len(set(slugs))


@pytest.mark.parametrize(
    "cls", [c for c in ERRORS if c is not ConfigurationError], ids=lambda c: c.__name__
)
def test_every_error_renders_as_its_problem_and_the_sdk_maps_it(cls: type[GatewayError]) -> None:
    response = _as_httpx(_instance(cls))
    hidden = cls.status_code >= 500 and cls.status_code not in (502, 503)
    assert response.status_code == (500 if hidden else cls.status_code)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == response.status_code
    assert body["type"] == PROBLEM_TYPE_BASE + (GatewayError.slug if hidden else cls.slug)
    assert cls.slug in PROBLEM_TYPES, f"map {cls.slug!r} in clients/sdk/_exceptions.py"
    error = error_from_response(response)
    assert type(error) is PROBLEM_TYPES[GatewayError.slug if hidden else cls.slug]
    assert error.status_code == response.status_code


@pytest.mark.parametrize("status", [400, 401, 404, 405, 413])
def test_litestars_own_refusals_are_problems_the_sdk_maps_by_type(status: int) -> None:
    response = _as_httpx(HTTPException(status_code=status, detail="refused"))
    assert response.status_code == status
    slug = response.json()["type"].removeprefix(PROBLEM_TYPE_BASE)
    assert slug in PROBLEM_TYPES
    assert isinstance(error_from_response(response), PROBLEM_TYPES[slug])


def test_the_sdk_maps_no_problem_type_the_gateway_never_renders() -> None:
    rendered = {cls.slug for cls in ERRORS} | {
        "method-not-allowed",
        "request-entity-too-large",
    }
    assert set(PROBLEM_TYPES) <= rendered


@pytest.mark.parametrize("reason", sorted(SIGN_IN_REASONS))
def test_a_sign_in_refusal_carries_its_reason_to_the_sdk(reason: str) -> None:
    error = error_from_response(_as_httpx(SignInRejected("refused", reason=reason)))
    assert isinstance(error, sdk.SignInRejected) and error.reason == reason


def test_a_sign_in_refusal_with_an_undocumented_reason_cannot_be_raised() -> None:
    with pytest.raises(ValueError, match="unknown sign-in refusal reason"):
        SignInRejected("refused", reason="because")
