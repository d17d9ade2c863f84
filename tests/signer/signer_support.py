"""Helpers shared by the signer tests: signer processes, and request bodies for allowed calls.

Test modules import these from here, not from ``conftest``: several suites have a ``conftest``
module, so ``from conftest import ...`` picks whichever was imported first in a combined run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.deploy import Deployment
from signer import Limits, SignerClient

PASSWORD = "correct horse battery staple"
LEDGER_DOMAIN = "2PM InferenceLedger"


@dataclass
class Keystore:
    path: Path
    password_file: Path
    address: str
    private_key: bytes


@dataclass
class SignerProcess:
    """One signer process and its state directory."""

    state_dir: Path
    password_file: Path
    secrets: dict[str, bytes]
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    address: str = ""
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.state_dir / "serve.log"

    @property
    def audit_path(self) -> Path:
        return self.state_dir / "audit.jsonl"

    def start(self, *, timeout_s: float = 30.0) -> SignerProcess:
        ready = self.state_dir / "ready.json"
        ready.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "signer", "serve",
            "--state-dir", str(self.state_dir),
            "--password-file", str(self.password_file),
            "--port", "0",
            "--ready-file", str(ready),
            *self.extra_args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("TWOPM_SIGNER_")}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + timeout_s
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"signer exited: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.kill9()
                raise RuntimeError("signer did not become ready")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.url, self.address = info["url"], info["address"]
        assert self.client().health()["address"] == self.address
        return self

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()
        return int(self.proc.returncode)

    def client(self, caller: str = "tester", **kwargs: Any) -> SignerClient:
        return SignerClient(self.url, caller, self.secrets[caller], **kwargs)

    def audit_entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]


DEFAULT_LIMITS = Limits(
    max_value_per_tx_wei=1000,
    max_value_per_window_wei=1500,
    value_window_s=3600,
    max_gas_per_tx=3_000_000,
    max_fee_per_gas_wei=100 * 10**9,
    max_tx_per_hour=10_000,
)


def ledger_tx(deployment: Deployment, **overrides: Any) -> dict[str, Any]:
    """An allowed call (InferenceLedger.settle(1, 1)) as signer request fields."""
    ledger = deployment.contract("InferenceLedger")
    data = ledger.functions.settle(1, 1)._encode_transaction_data()
    tx: dict[str, Any] = {
        "chainId": deployment.chain_id,
        "to": ledger.address,
        "data": data,
        "value": 0,
        "gas": 200_000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**8,
    }
    tx.update(overrides)
    return tx


def create_subnet_tx(deployment: Deployment, name: str, **overrides: Any) -> dict[str, Any]:
    """SubnetRegistry.createSubnet(name, 1 gwei, 0, 1000): succeeds any number of times."""
    registry = deployment.contract("SubnetRegistry")
    data = registry.functions.createSubnet(name, 10**9, 0, 1000)._encode_transaction_data()
    return ledger_tx(deployment, to=registry.address, data=data, gas=400_000, **overrides)


def voucher(deployment: Deployment, amount: int, domain_name: str) -> dict[str, Any]:
    """EIP-712 typed data in the InferenceLedger's domain (primary type OperatorVoucher)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "OperatorVoucher": [{"name": "amount", "type": "uint256"}],
        },
        "primaryType": "OperatorVoucher",
        "domain": {
            "name": domain_name,
            "version": "1",
            "chainId": deployment.chain_id,
            "verifyingContract": deployment.addresses["InferenceLedger"],
        },
        "message": {"amount": amount},
    }
