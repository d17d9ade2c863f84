from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from contracts import CONTRACT_NAMES, load_artifact
from contracts._artifacts import artifact_names

ROOT = Path(__file__).resolve().parents[2]

# Opcodes Scroll does not run (Cancun's blob opcodes) or that we do not want (transient storage, MCOPY,
# SELFDESTRUCT) -- we target Shanghai. Source: https://docs.scroll.io/en/technology/chain/differences/
FORBIDDEN = {
    0x49: "BLOBHASH",
    0x4A: "BLOBBASEFEE",
    0x5C: "TLOAD",
    0x5D: "TSTORE",
    0x5E: "MCOPY",
    0xFF: "SELFDESTRUCT",
}


def opcodes(code: bytes) -> list[int]:
    """Opcodes of runtime code, skipping PUSH data and the trailing CBOR metadata."""
    metadata_length = int.from_bytes(code[-2:], "big") + 2
    code = code[:-metadata_length]
    out, i = [], 0
    while i < len(code):
        op = code[i]
        out.append(op)
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
    return out


def test_committed_artifacts_match_the_solidity_sources():
    result = subprocess.run(
        ["node", "contracts/build.mjs", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("name", artifact_names())
def test_runtime_code_uses_no_opcode_scroll_lacks(name):
    code = bytes.fromhex(load_artifact(name).deployed_bytecode[2:])
    used = {FORBIDDEN[op] for op in opcodes(code) if op in FORBIDDEN}
    assert not used, f"{name} uses {sorted(used)}"


def test_the_scan_finds_a_forbidden_opcode_when_there_is_one():
    code = bytes([0x60, 0x5E, 0x5E, 0x00]) + bytes.fromhex("a1646970667358")[:0] + b"\x00\x00"
    assert 0x5E in opcodes(code) and opcodes(code).count(0x5E) == 1  # the PUSH1 argument is skipped


def test_every_core_contract_has_an_artifact_with_abi_and_code():
    for name in CONTRACT_NAMES:
        artifact = load_artifact(name)
        assert (
            artifact.abi and len(artifact.bytecode) > 1000 and artifact.source_hash.startswith("0x")
        )
    with pytest.raises(FileNotFoundError):
        load_artifact("NoSuchContract")
