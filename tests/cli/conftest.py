"""Fixtures the terminal-command tests share: a funded data holder and the flags that act for it.

Each test module defines its own ``stack`` fixture (the stack.json its commands read); ``key_flags``
uses the requesting module's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.sdk import Wallet
from contracts import Anvil


@pytest.fixture
def holder(anvil: Anvil) -> Wallet:
    """A fresh wallet holding 1 ETH on the session's anvil."""
    wallet = Wallet.create()
    anvil.w3.provider.make_request("anvil_setBalance", [wallet.address, hex(10**18)])  # type: ignore[arg-type]
    return wallet


@pytest.fixture
def key_flags(tmp_path: Path, stack: Path, holder: Wallet) -> list[str]:
    """``--stack FILE --key-file FILE``: act as ``holder`` (key file mode 0600 in ``tmp_path``)."""
    key = tmp_path / "holder.key"
    key.write_text(holder._private_key_hex())
    key.chmod(0o600)
    return ["--stack", str(stack), "--key-file", str(key)]
