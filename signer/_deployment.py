"""The policy file that lets 2PM's operator run one deployment, and nothing more.

The generic policy (its format, parsing and checks) is :mod:`signer._policy`; what 2PM's operator
calls is :mod:`contracts.operator`, kept next to the contracts. This module writes the one from
the other, for ``twopm signer policy init`` and ``twopm up``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from signer._errors import ConfigError
from signer._policy import L1FeeCap, Limits, TypedDataDomain, _address, parse_policy

__all__ = ["policy_for_deployment"]


def policy_for_deployment(
    addresses: Mapping[str, str],
    *,
    chain_id: int,
    limits: Limits | None = None,
    abis: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    typed_data: Sequence[TypedDataDomain] = (),
    l1_fee: L1FeeCap | None = None,
) -> str:
    """Write the policy TOML that lets the operator run a 2PM deployment, and nothing more.

    Allows the functions in ``contracts.operator.OPERATOR_FUNCTIONS`` on those of ``addresses``
    that are ``InferenceLedger``, ``SubnetRegistry`` or ``NodeRegistry`` (other names, such as
    the staking vault and the mock tokens, are left out: the operator has no business there).

    Args:
        addresses: Contract name -> address (``Deployment.addresses``).
        chain_id: The chain id.
        limits: The caps; :class:`Limits` defaults (no value, 3M gas, 200 gwei, 600 tx/h) when
            None.
        abis: Contract name -> ABI, to take exact signatures from; when a name is missing, its
            committed artifact (``contracts.load_artifact``) is.
        typed_data: EIP-712 domains to allow.
        l1_fee: The ``[l1_fee]`` cap on the fee including Scroll's L1 data fee (none when None).

    Returns:
        The TOML text; it parses with :func:`parse_policy`.

    Raises:
        ConfigError: An address is invalid or an ABI lacks an operator function.
    """
    lim = limits or Limits()
    lines = [
        "# 2PM signer policy, written by signer.policy_for_deployment",
        f"chain_id = {int(chain_id)}",
        "",
        "[limits]",
        f'max_value_per_tx_wei = "{lim.max_value_per_tx_wei}"',
        f'max_value_per_window_wei = "{lim.max_value_per_window_wei}"',
        f"value_window_s = {lim.value_window_s}",
        f"max_gas_per_tx = {lim.max_gas_per_tx}",
        f'max_fee_per_gas_wei = "{lim.max_fee_per_gas_wei}"',
        f"max_tx_per_hour = {lim.max_tx_per_hour}",
        f"max_typed_data_per_hour = {lim.max_typed_data_per_hour}",
    ]
    if l1_fee is not None:
        lines += l1_fee.toml_lines()
    # imported here: the service (``import signer``) does not load web3 and the contract set
    from contracts.operator import operator_signatures

    try:
        signatures_of = operator_signatures(list(addresses), abis)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    for name, signatures in signatures_of.items():
        address = _address(addresses[name], name)
        lines += [
            "",
            "[[contracts]]",
            f"name = {json.dumps(name)}",
            f'address = "{address}"',
            "functions = [",
            *(f"    {json.dumps(s)}," for s in signatures),
            "]",
        ]
    for d in typed_data:
        lines += [
            "",
            "[[typed_data]]",
            f"name = {json.dumps(d.name)}",
            f"version = {json.dumps(d.version)}",
            f"chain_id = {d.chain_id}",
            f'verifying_contract = "{d.verifying_contract}"',
            f"primary_types = {json.dumps(sorted(d.primary_types))}",
        ]
    text = "\n".join(lines) + "\n"
    parse_policy(text, source="generated policy")
    return text
