"""Fixtures: a real anvil with the 2PM contracts, and real signer processes.

Every signer runs as its own ``python -m signer serve`` process on a free loopback port with
its own state directory; they share one operator keystore (encrypted once per session, since
scrypt takes about a second).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3.types import Wei

from contracts.chain import Anvil
from contracts.deploy import Deployment, deploy_all
from signer import Limits, SignerClient, TypedDataDomain, init_state, policy_for_deployment
from signer._keystore import write_keystore

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


@pytest.fixture(scope="session")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> Keystore:
    root = tmp_path_factory.mktemp("keystore")
    password_file = root / "password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    account = Account.create()
    path = root / "keystore.json"
    # A throwaway key: a cheap scrypt cost keeps each signer start fast.
    address = write_keystore(path, bytes(account.key), PASSWORD, scrypt_n=2**12)
    return Keystore(path, password_file, address, bytes(account.key))


@pytest.fixture(scope="session")
def deployment(anvil: Anvil, keystore: Keystore) -> Deployment:
    """Overrides the suite-wide deployment: here the operator is the signer's own key."""
    deployed = deploy_all(anvil.w3, anvil.accounts[0].private_key, operator=keystore.address)
    tx = anvil.w3.eth.send_transaction(
        {"from": anvil.accounts[3].address, "to": keystore.address, "value": Wei(10**20)}
    )
    anvil.w3.eth.wait_for_transaction_receipt(tx)
    return deployed


DEFAULT_LIMITS = Limits(
    max_value_per_tx_wei=1000,
    max_value_per_window_wei=1500,
    value_window_s=3600,
    max_gas_per_tx=3_000_000,
    max_fee_per_gas_wei=100 * 10**9,
    max_tx_per_hour=10_000,
)


@pytest.fixture(scope="session")
def make_signer(
    tmp_path_factory: pytest.TempPathFactory,
    keystore: Keystore,
    deployment: Deployment,
) -> Iterator[Callable[..., SignerProcess]]:
    """Start a signer on a fresh state directory: ``make_signer(limits=..., extra_args=[...])``."""
    started: list[SignerProcess] = []

    def make(
        limits: Limits = DEFAULT_LIMITS, extra_args: list[str] | None = None, start: bool = True
    ) -> SignerProcess:
        state = tmp_path_factory.mktemp("signer")
        domain = TypedDataDomain(
            name=LEDGER_DOMAIN,
            version="1",
            chain_id=deployment.chain_id,
            verifying_contract=deployment.addresses["InferenceLedger"],
            primary_types=frozenset({"OperatorVoucher"}),
        )
        policy = policy_for_deployment(
            deployment.addresses, chain_id=deployment.chain_id, limits=limits, typed_data=[domain]
        )
        made = init_state(
            state,
            private_key=keystore.private_key,
            password=PASSWORD,
            policy_toml=policy,
            callers={"tester": None, "recorder": None, "settler": ["settle"]},
            scrypt_n=2**12,  # a throwaway key: a cheap scrypt cost keeps each start fast
        )
        assert made.address == keystore.address
        proc = SignerProcess(state, made.password_file, made.secrets, extra_args or [])
        started.append(proc)
        return proc.start() if start else proc

    yield make
    for proc in started:
        proc.kill9()


@pytest.fixture(scope="session")
def signer(make_signer: Callable[..., SignerProcess]) -> SignerProcess:
    """A signer shared by the tests that sign without broadcasting (and never stop it)."""
    return make_signer()
