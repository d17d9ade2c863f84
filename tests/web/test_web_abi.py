"""The page's hard-coded selectors and errors (gateway/web/abi.js) against the committed ABIs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

WEB = Path(__file__).resolve().parents[2] / "gateway" / "web"
ARTIFACTS = Path(__file__).resolve().parents[2] / "contracts" / "artifacts"
ENTRY = re.compile(
    r'"(?P<key>[A-Za-z0-9]+\.[A-Za-z0-9_]+\([^"]*\))":\s*"(?P<selector>0x[0-9a-f]{8})"'
)


def table(name: str) -> dict[str, str]:
    """The entries of ``export const <name> = Object.freeze({...});`` in abi.js."""
    source = (WEB / "abi.js").read_text()
    body = source.split(f"export const {name} = Object.freeze({{", 1)[1].split("});", 1)[0]
    entries = {m["key"]: m["selector"] for m in ENTRY.finditer(body)}
    assert len(entries) == len(re.findall(r'":\s', body)), f"an entry of {name} does not parse"
    return entries


def split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]] if text else parts


def parse_key(key: str) -> tuple[str, str, list[tuple[str, str]]]:
    contract, rest = key.split(".", 1)
    name, inner = rest.split("(", 1)
    params = [tuple(p.rsplit(" ", 1)) for p in split_top_level(inner[:-1])]
    return contract, name, [(t, n) for t, n in params]


def canonical(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(canonical(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


def abi_entry(contract: str, kind: str, name: str, types: list[str]) -> dict[str, Any]:
    abi = json.loads((ARTIFACTS / f"{contract}.json").read_text())["abi"]
    matches = [
        e
        for e in abi
        if e["type"] == kind and e["name"] == name and [canonical(i) for i in e["inputs"]] == types
    ]
    assert matches, f"{contract} has no {kind} {name}({','.join(types)}) in its committed ABI"
    return dict(matches[0])


@pytest.mark.parametrize(("kind", "name"), [("function", "SELECTORS"), ("error", "ERRORS")])
def test_every_hard_coded_selector_matches_the_committed_abi(kind: str, name: str) -> None:
    entries = table(name)
    assert entries
    for key, selector in entries.items():
        contract, fn, params = parse_key(key)
        types = [t for t, _ in params]
        entry = abi_entry(contract, kind, fn, types)
        assert [n for _, n in params] == [i["name"] for i in entry["inputs"]], key
        signature = f"{fn}({','.join(types)})"
        assert selector == "0x" + keccak(text=signature)[:4].hex(), key


def test_the_page_calls_only_functions_listed_with_their_selectors() -> None:
    app = (WEB / "app.js").read_text()
    used = set(re.findall(r'"((?:MockStETH|StakingVault|InferenceLedger)\.[^"]+)"', app))
    assert used, "app.js names no contract function"
    assert used <= set(table("SELECTORS")), used - set(table("SELECTORS"))
    assert not re.search(r"0x[0-9a-fA-F]{8}\b", app), "selectors belong in abi.js"


def test_a_drifted_selector_would_be_caught() -> None:
    # The check above must be able to fail: a wrong type or a wrong name finds no ABI entry.
    with pytest.raises(AssertionError, match="no function stake"):
        abi_entry("StakingVault", "function", "stake", ["address", "uint128"])
    with pytest.raises(AssertionError, match="no function stakeTokens"):
        abi_entry("StakingVault", "function", "stakeTokens", ["address", "uint256"])


def test_the_page_loads_nothing_from_other_origins() -> None:
    # It must work offline: no CDN, no remote module, font, image or style.
    remote = re.compile(r"""(?:from\s*|import\(\s*|src=|href=|url\()\s*["']?(?:https?:)?//""")
    # every page: the wallet page and the operator dashboard beneath it
    files = sorted(path for path in WEB.rglob("*") if path.is_file())
    names = {str(f.relative_to(WEB)) for f in files}
    assert names >= {"index.html", "app.js", "abi.js", "style.css", "operator/index.html"}
    for path in files:
        assert not remote.search(path.read_text()), path.relative_to(WEB)
    assert remote.search('import x from "https://cdn.example/x.js"')  # the check can fail
