"""Imports between the parts of 2PM point one way, and no part imports another part's private module.

The parts and what each may import (besides itself, the standard library and third-party packages):

    core                         nothing of 2PM
    contracts, ckks              core
    signer                       core, contracts
    zk (proofs of inference)     core, contracts
    trainer                      core, contracts, signer (its client library, to publish)
    gateway                      core, contracts, ckks, signer (its client library), zk
    clients (SDK, user commands) core, contracts, ckks, zk
    stack                        every part

A module is private when a component of its dotted name starts with ``_`` (``signer._errors``,
``ckks._packing``); a name imported with a leading ``_`` is private too. Every import is
read with :mod:`ast`, including those inside functions and ``TYPE_CHECKING`` blocks. ``tests/``
and ``bench/`` are outside the rule: they exercise internals on purpose.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PARTS = (
    "core",
    "contracts",
    "ckks",
    "clients",
    "signer",
    "zk",
    "trainer",
    "gateway",
    "stack",
)
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "contracts": frozenset({"core"}),
    "ckks": frozenset({"core"}),
    "signer": frozenset({"core", "contracts"}),
    "zk": frozenset({"core", "contracts"}),
    "trainer": frozenset({"core", "contracts", "signer"}),
    "gateway": frozenset({"core", "contracts", "ckks", "signer", "zk"}),
    "clients": frozenset({"core", "contracts", "ckks", "zk"}),
    "stack": frozenset(PARTS),
}


def part_of(module: str) -> str | None:
    """The part a dotted module name belongs to (the longest matching prefix), or None."""
    for part in sorted(PARTS, key=len, reverse=True):
        if module == part or module.startswith(part + "."):
            return part
    return None


@dataclass(frozen=True)
class Import:
    """One imported name: ``module`` (dotted), ``name`` (for ``from m import name``), where."""

    module: str
    name: str | None
    where: str


def imports_of(source: str, module: str, where: str) -> Iterator[Import]:
    """Every import in ``source``, the source of ``module`` (for relative imports)."""
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, None, f"{where}:{node.lineno}")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                yield Import(base, alias.name, f"{where}:{node.lineno}")


def violations(source: str, module: str, where: str) -> list[str]:
    """What in ``source`` (the code of ``module``) breaks the direction or reaches a private name."""
    own = part_of(module)
    assert own is not None, module
    found = []
    for imp in imports_of(source, module, where):
        target = part_of(imp.module)
        if target is None or target == own:
            continue
        shown = imp.module + (f" import {imp.name}" if imp.name else "")
        if target not in ALLOWED[own]:
            found.append(f"{imp.where}: {own} may not import {target} ({shown})")
        elif any(c.startswith("_") for c in imp.module.split(".")) or (
            imp.name is not None and imp.name.startswith("_")
        ):
            found.append(f"{imp.where}: {own} imports a private name of {target} ({shown})")
    return found


def product_modules() -> Iterator[tuple[str, Path]]:
    """(dotted name, path) of every module of the product packages."""
    for top in ("core", "contracts", "clients", "signer", "trainer", "gateway", "stack"):
        for path in sorted((REPO / top).rglob("*.py")):
            # a package's ``__init__`` keeps its name, so relative imports resolve against the package
            yield ".".join(path.relative_to(REPO).with_suffix("").parts), path


@pytest.mark.parametrize("module,path", list(product_modules()), ids=lambda v: str(v))
def test_a_module_imports_only_the_parts_beneath_it_and_only_their_public_names(
    module: str, path: Path
) -> None:
    found = violations(path.read_text(), module, str(path.relative_to(REPO)))
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "module,source,expected",
    [
        ("gateway._models", "from trainer.bundle import load_bundle", "may not import trainer"),
        ("gateway.he._kernels", "from ckks._packing import x", "private name"),
        ("trainer.publish", "def f():\n    from signer._errors import E", "private name"),
        ("core.cli", "import contracts", "may not import contracts"),
        ("contracts.tx", "from signer import SignerClient", "may not import signer"),
        ("ckks.cli", "from clients.sdk import Wallet", "may not import clients"),
        ("ckks._codec", "import gateway.he", "may not import gateway"),
        ("clients.sdk._chain", "from gateway import app", "may not import gateway"),
        ("signer._policy", "from gateway._errors import BadRequest", "may not import gateway"),
        ("stack.up", "from gateway._models import _verify", "private name"),
        ("trainer.cli", "from signer import _policy", "private name"),
    ],
)
def test_the_check_rejects_a_forbidden_import(module: str, source: str, expected: str) -> None:
    found = violations(source, module, "x.py")
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(
    "module,source",
    [
        ("gateway.he._kernels", "from ckks import reversed_weights"),
        ("gateway._models", "from core.bundle import verify_bundle"),
        ("trainer.publish", "from signer import SignerClient"),
        ("stack.up", "from trainer.bundle import load_bundle"),
        ("gateway._auth", "from gateway._errors import BadRequest"),
        ("clients.sdk._gateway", "from clients.sdk._types import Subnet"),
        ("clients.sdk._gateway", "from . import _types"),
    ],
)
def test_the_check_accepts_an_allowed_import(module: str, source: str) -> None:
    assert violations(source, module, "x.py") == []
