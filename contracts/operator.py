"""What 2PM's operator key may call: the operator functions of each contract, by exact signature.

The isolated signer is generic (it signs what its policy allows); this module is the 2PM half of
its policy, kept next to the contracts it describes. ``signer.policy_for_deployment`` turns it
into a policy file for one deployment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contracts._artifacts import load_artifact

__all__ = ["OPERATOR_FUNCTIONS", "function_signatures", "operator_signatures"]

#: The functions the operator calls, per contract (``twopm up`` allows these and nothing else:
#: the staking vault and the tokens are left out, the operator has no business there).
OPERATOR_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "InferenceLedger": ("recordBatch", "settle", "authorizeSpending"),
    "SubnetRegistry": (
        "createSubnet",
        "publishModel",
        "setPrice",
        "setMinStake",
        "setOwnerShare",
        "transferSubnetOwnership",
        "acceptSubnetOwnership",
        "setModelVerifier",
    ),
    "NodeRegistry": ("register", "update"),
}


def _abi_type(param: Mapping[str, Any]) -> str:
    typ = str(param["type"])
    if typ.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param.get("components", []))
        return f"({inner}){typ[len('tuple') :]}"
    return typ


def function_signatures(abi: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """Canonical signatures (Solidity ABI spec, "Function Selector") of named functions of an ABI.

    Args:
        abi: The contract's JSON ABI.
        names: Function names; every overload of each name is included.

    Returns:
        The signatures, in the order of ``names``, e.g. ``settle(uint256,uint64)``.

    Raises:
        ValueError: A name is not a function of the ABI.
    """
    out = []
    for name in names:
        found = [
            f"{name}({','.join(_abi_type(i) for i in item.get('inputs', []))})"
            for item in abi
            if item.get("type") == "function" and item.get("name") == name
        ]
        if not found:
            raise ValueError(f"{name} is not a function of the contract ABI")
        out.extend(found)
    return out


def operator_signatures(
    names: Sequence[str], abis: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
) -> dict[str, list[str]]:
    """The operator functions of the named contracts, as exact signatures.

    Args:
        names: Contract names; those not in :data:`OPERATOR_FUNCTIONS` are left out.
        abis: Contract name -> ABI to take the signatures from; a name missing here is read from
            its committed artifact (``contracts/artifacts/<Name>.json``).

    Returns:
        Contract name -> signatures, in the order of :data:`OPERATOR_FUNCTIONS`.

    Raises:
        ValueError: An ABI lacks an operator function.
    """
    out: dict[str, list[str]] = {}
    for name, functions in OPERATOR_FUNCTIONS.items():
        if name not in names:
            continue
        abi = (abis or {}).get(name) or load_artifact(name).abi
        out[name] = function_signatures(abi, functions)
    return out
