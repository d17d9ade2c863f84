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
