"""Chain-side fixtures support: a real signer process and funded users on a real anvil."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_typed_data

from contracts.deploy import Deployment
from contracts.tx import Transactor as DevTransactor
from signer import Limits, policy_for_deployment
from signer._auth import add_caller
from signer._keystore import write_keystore

PASSWORD = "gateway tests password"
LEDGER_DOMAIN = "2PM InferenceLedger"
PRICE_WEI = 10**12
MIN_STAKE_WEI = 10**18
MODEL_HASH = bytes.fromhex("ab" * 32)


@dataclass
class Signer:
    url: str
    address: str
    secret_hex: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def start_signer(root: Path, deployment: Deployment, operator_key: bytes) -> Signer:
    state = root / "signer"
    state.mkdir(mode=0o700)
    write_keystore(state / "keystore.json", operator_key, PASSWORD)
    (state / "keystore.json").chmod(0o600)
    password = root / "password"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    limits = Limits(
        max_value_per_tx_wei=0,
        max_value_per_window_wei=0,
        value_window_s=3600,
        max_gas_per_tx=5_000_000,
        max_fee_per_gas_wei=100 * 10**9,
        max_tx_per_hour=100_000,
    )
    (state / "policy.toml").write_text(
        policy_for_deployment(deployment.addresses, chain_id=deployment.chain_id, limits=limits)
    )
    secret = add_caller(state / "callers.json", "gateway")
    ready = state / "ready.json"
    argv = [
        sys.executable, "-m", "signer", "serve", "--state-dir", str(state),
        "--password-file", str(password), "--port", "0", "--ready-file", str(ready),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWOPM_")}
    with (state / "serve.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError((state / "serve.log").read_text()[-2000:])
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    httpx.get(info["url"] + "/healthz", timeout=5).raise_for_status()
    return Signer(info["url"], info["address"], secret.hex(), proc)


def copy_tree_quietly(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)


class World:
    """The deployed contracts, one published subnet, and helpers to fund users."""

    def __init__(self, w3: Any, deployment: Deployment, owner_key: str) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.owner_key = owner_key
        self.owner = DevTransactor(w3, owner_key)
        self.registry = deployment.contract("SubnetRegistry")
        self.vault = deployment.contract("StakingVault")
        self.ledger = deployment.contract("InferenceLedger")
        self.reth = deployment.contract("MockRETH")
        self.subnet_id = self.create_subnet(PRICE_WEI, MIN_STAKE_WEI)

    def create_subnet(self, price_wei: int, min_stake_wei: int, publish: bool = True) -> int:
        self.owner.transact(
            self.registry.functions.createSubnet("test", price_wei, min_stake_wei, 1000)
        )
        subnet_id = int(self.registry.functions.subnetCount().call())
        if publish:
            contributor = Account.create().address
            self.owner.transact(
                self.registry.functions.publishModel(
                    subnet_id, MODEL_HASH, "file:///model.onnx", b"\x01" * 32, b"\x02" * 32,
                    [contributor], [10_000],
                )
            )  # fmt: skip
        return subnet_id

    def new_user(
        self,
        *,
        stake_wei: int = 2 * 10**18,
        credit_wei: int = 10**16,
        cap_wei: int | None = 10**16,
        funder_key: str,
    ) -> Any:
        user = Account.create()
        funder = DevTransactor(self.w3, funder_key)
        funder.send({"to": user.address, "value": 10**18})
        tx = DevTransactor(self.w3, user.key.hex())
        if stake_wei:
            tx.transact(self.reth.functions.mint(user.address, stake_wei))
            tx.transact(self.reth.functions.approve(self.vault.address, stake_wei))
            tx.transact(self.vault.functions.stake(self.reth.address, stake_wei))
        if credit_wei:
            tx.transact(self.ledger.functions.deposit(), value=credit_wei)
        if cap_wei is not None:
            expiry, nonce = int(time.time()) + 86_400, 1
            signature = self.sign_cap(user.key.hex(), cap_wei, expiry, nonce)
            tx.transact(
                self.ledger.functions.authorizeSpending(
                    user.address, cap_wei, expiry, nonce, signature
                )
            )
        return user

    def sign_cap(self, key: str, cap_wei: int, expiry: int, nonce: int) -> bytes:
        account = Account.from_key(key)
        data = {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "SpendingAuthorization": [
                    {"name": "user", "type": "address"},
                    {"name": "maxTotalSpend", "type": "uint256"},
                    {"name": "expiry", "type": "uint64"},
                    {"name": "nonce", "type": "uint64"},
                ],
            },
            "primaryType": "SpendingAuthorization",
            "domain": {
                "name": LEDGER_DOMAIN,
                "version": "1",
                "chainId": self.deployment.chain_id,
                "verifyingContract": self.ledger.address,
            },
            "message": {
                "user": account.address,
                "maxTotalSpend": cap_wei,
                "expiry": expiry,
                "nonce": nonce,
            },
        }
        signed = Account.sign_message(encode_typed_data(full_message=data), key)
        return bytes(signed.signature)
