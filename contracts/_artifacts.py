"""Loading the committed ABI + bytecode artifacts written by ``contracts/build.mjs``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"

#: Contracts deployed on every chain, in deployment order.
CONTRACT_NAMES: tuple[str, ...] = (
    "NodeRegistry",
    "StakingVault",
    "SubnetRegistry",
    "InferenceLedger",
)
#: Stand-ins for the liquid-staking tokens, deployed only on local chains.
LOCAL_TOKEN_NAMES: tuple[str, ...] = ("MockStETH", "MockWstETH", "MockRETH")


@dataclass(frozen=True)
class Artifact:
    """One compiled contract.

    Attributes:
        name: Contract name, e.g. ``"InferenceLedger"``.
        abi: The JSON ABI (list of entries).
        bytecode: Creation bytecode, ``0x``-prefixed hex.
        deployed_bytecode: Runtime bytecode, ``0x``-prefixed hex.
        source_hash: sha256 over every source file and the compiler settings the build used.
    """

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    source_hash: str


def read_artifact(path: Path) -> Artifact:
    """Read one artifact file written by ``contracts/build.mjs`` (also ``--source FILE --out DIR``).

    Raises:
        OSError: The file cannot be read.
        ValueError: It is not an artifact.
    """
    try:
        data = json.loads(Path(path).read_text())
        return Artifact(
            name=data["contractName"],
            abi=data["abi"],
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
            source_hash=data["sourceHash"],
        )
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a contract artifact: {exc}") from exc


#: Opcodes Scroll does not run (Cancun's blob opcodes) or that we do not want (transient storage,
#: MCOPY, SELFDESTRUCT); we target Shanghai. Source: https://docs.scroll.io/en/technology/chain/differences/
FORBIDDEN_OPCODES = {
    0x49: "BLOBHASH",
    0x4A: "BLOBBASEFEE",
    0x5C: "TLOAD",
    0x5D: "TSTORE",
    0x5E: "MCOPY",
    0xFF: "SELFDESTRUCT",
}


def opcodes(code: bytes) -> list[int]:
    """Opcodes of runtime code, skipping PUSH data and the trailing CBOR metadata.

    The metadata's length is in the code's last two bytes, as solc appends it.
    """
    metadata_length = int.from_bytes(code[-2:], "big") + 2
    code = code[:-metadata_length]
    out, i = [], 0
    while i < len(code):
        op = code[i]
        out.append(op)
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
    return out


def forbidden_opcodes(deployed_bytecode: str) -> list[str]:
    """Names of :data:`FORBIDDEN_OPCODES` that runtime code (``0x`` hex) uses, sorted."""
    code = bytes.fromhex(deployed_bytecode.removeprefix("0x"))
    return sorted({FORBIDDEN_OPCODES[op] for op in opcodes(code) if op in FORBIDDEN_OPCODES})


@cache
def load_artifact(name: str) -> Artifact:
    """Load the artifact of contract ``name`` from ``contracts/artifacts``.

    Args:
        name: Contract name as in Solidity, e.g. ``"StakingVault"``.

    Returns:
        The parsed artifact (cached per process).

    Raises:
        FileNotFoundError: No artifact has that name (run ``npm run build:contracts``).
    """
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no artifact for contract {name!r} in {ARTIFACTS_DIR}")
    data = json.loads(path.read_text())
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        source_hash=data["sourceHash"],
    )


def artifact_names() -> list[str]:
    """Names of every committed artifact, sorted."""
    return sorted(p.stem for p in ARTIFACTS_DIR.glob("*.json"))
