"""Decoding of Solidity custom errors from revert data, against every committed ABI.

:class:`ContractRevert` is the decoded form of :class:`core.transactions.WouldRevert`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from contracts._artifacts import artifact_names, load_artifact
from core.transactions import WouldRevert, revert_data_of


class ContractRevert(WouldRevert):
    """A call reverts with a known custom error (the decoded form of :class:`WouldRevert`).

    Attributes:
        name: Error name, e.g. ``"InferenceLedgerCapExceeded"``.
        args: Decoded arguments in declaration order (addresses checksummed).
        data: The raw revert data.
    """

    def __init__(self, name: str, args: tuple[Any, ...], data: bytes) -> None:
        super().__init__(f"{name}{args}", data)
        self.name = name
        self.args_ = args

    @property
    def arguments(self) -> tuple[Any, ...]:
        """The decoded error arguments."""
        return self.args_


def would_revert(exc: BaseException, what: str = "gas estimation failed") -> WouldRevert:
    """The :class:`WouldRevert` of a web3 revert error, decoded when its data is a known error.

    Args:
        exc: The web3.py ``ContractLogicError`` (or ``ContractCustomError``).
        what: The start of the message of an undecoded one.

    Returns:
        A :class:`ContractRevert` when the revert data decodes to a custom error of a committed
        ABI, else a :class:`WouldRevert` carrying the data as bytes.
    """
    data = revert_data_of(exc)
    return revert_error(data) or WouldRevert(f"{what}: {exc}", data)


def revert_error(data: bytes) -> ContractRevert | None:
    """:func:`decode_revert`, but None for a known selector with malformed arguments too.

    Args:
        data: Revert data.

    Returns:
        The decoded error, or None.
    """
    try:
        return decode_revert(data)
    except Exception:  # eth_abi raises several types on malformed data
        return None


def _canonical_type(entry: dict[str, Any]) -> str:
    """ABI type of an input, with tuples expanded (``(uint256,address)[]``)."""
    kind: str = entry["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in entry["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


@cache
def _error_table() -> dict[bytes, tuple[str, list[str]]]:
    table: dict[bytes, tuple[str, list[str]]] = {
        function_signature_to_4byte_selector("Error(string)"): ("Error", ["string"]),
        function_signature_to_4byte_selector("Panic(uint256)"): ("Panic", ["uint256"]),
    }
    for name in artifact_names():
        for entry in load_artifact(name).abi:
            if entry["type"] != "error":
                continue
            types = [_canonical_type(i) for i in entry["inputs"]]
            selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(types)})")
            table[selector] = (entry["name"], types)
    return table


def decode_revert(data: bytes | str) -> ContractRevert | None:
    """Decode revert data into a :class:`ContractRevert`.

    Args:
        data: Revert data as bytes or ``0x`` hex (4-byte selector, then ABI-encoded arguments).

    Returns:
        The decoded error, or ``None`` when the selector matches no error of any committed ABI
        (including empty revert data).
    """
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else data
    )
    if len(raw) < 4:
        return None
    known = _error_table().get(raw[:4])
    if known is None:
        return None
    name, types = known
    values = abi_decode(types, raw[4:])
    normalised = tuple(_normalise(t, v) for t, v in zip(types, values, strict=True))
    return ContractRevert(name, normalised, raw)


def _normalise(kind: str, value: Any) -> Any:
    if kind == "address":
        return to_checksum_address(value)
    return value
