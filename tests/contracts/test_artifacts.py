from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from contracts import CONTRACT_NAMES, load_artifact
from contracts._artifacts import FORBIDDEN_OPCODES, artifact_names, forbidden_opcodes, opcodes

ROOT = Path(__file__).resolve().parents[2]


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
    used = forbidden_opcodes(load_artifact(name).deployed_bytecode)
    assert not used, f"{name} uses {used}"


def test_the_forbidden_table_holds_what_scroll_does_not_run():
    # Scroll has no blob opcodes and SELFDESTRUCT halts there:
    # https://docs.scroll.io/en/technology/chain/differences/
    assert FORBIDDEN_OPCODES[0x49] == "BLOBHASH"
    assert FORBIDDEN_OPCODES[0x4A] == "BLOBBASEFEE"
    assert FORBIDDEN_OPCODES[0xFF] == "SELFDESTRUCT"


# Runtime code ends with solc's CBOR metadata and its length in two bytes; these stand-ins carry an
# empty one (length 0), which the scan strips.
NO_METADATA = b"\x00\x00"


@pytest.mark.parametrize(("opcode", "name"), sorted(FORBIDDEN_OPCODES.items()))
def test_the_scan_finds_a_planted_forbidden_opcode(opcode, name):
    # PUSH1 0x01, <planted>, STOP
    code = "0x" + (bytes([0x60, 0x01, opcode, 0x00]) + NO_METADATA).hex()
    assert forbidden_opcodes(code) == [name]


def test_the_scan_skips_push_data_and_metadata():
    # PUSH1 0x49 (BLOBHASH as data), PUSH2 0xff5e (SELFDESTRUCT, MCOPY as data), STOP; then a
    # 3-byte metadata blob holding TLOAD, TSTORE, MCOPY, and its length.
    body = bytes([0x60, 0x49, 0x61, 0xFF, 0x5E, 0x00])
    code = body + bytes([0x5C, 0x5D, 0x5E]) + (3).to_bytes(2, "big")
    assert opcodes(code) == [0x60, 0x61, 0x00]
    assert forbidden_opcodes("0x" + code.hex()) == []


def test_every_core_contract_has_an_artifact_with_abi_and_code():
    for name in CONTRACT_NAMES:
        artifact = load_artifact(name)
        assert (
            artifact.abi and len(artifact.bytecode) > 1000 and artifact.source_hash.startswith("0x")
        )
    with pytest.raises(FileNotFoundError):
        load_artifact("NoSuchContract")
