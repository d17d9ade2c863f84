"""Support shared by the suites that run real services: uvicorn in a thread, signer processes, worlds.

Test modules import it by bare name (``tests/`` is on ``sys.path`` through ``tests/conftest.py``),
as they import their suite's own support module.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from eth_account import Account
from web3.types import Wei

from contracts.chain import Anvil
from contracts.deploy import Deployment, deploy_all
from contracts.tx import Transactor
from core.net import free_port
from core.proc import ProcessError, spawn, terminate, wait_for
from signer import Limits, policy_for_deployment
from signer._auth import add_caller
from signer._keystore import write_keystore

__all__ = [
    "SIGNER_LIMITS",
    "SignerProcess",
    "create_subnet",
    "deploy_for_operator",
    "drop_redis_namespace",
    "free_port",
    "serve",
    "start_signer",
]


def drop_redis_namespace(redis_url: str, namespace: str | None) -> int:
    """Delete every key a gateway (or ``twopm up``) wrote under ``namespace`` on a shared Redis.

    Keys are ``<namespace>:<name>`` (``gateway._state.RedisState``, Litestar's ``RedisStore``,
    the recorder's lease); the match is ``<namespace>*``, so give a namespace no other one
    starts with (the tests' are random hex of one length).

    Args:
        redis_url: The Redis.
        namespace: The prefix; None (the stack ran without Redis) deletes nothing.

    Returns:
        How many keys were deleted.
    """
    if not namespace:
        return 0
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


#: Value-free operator limits for a test signer: no ETH may leave, gas and rate generous.
SIGNER_LIMITS = Limits(
    max_value_per_tx_wei=0,
    max_value_per_window_wei=0,
    value_window_s=3600,
    max_gas_per_tx=5_000_000,
    max_fee_per_gas_wei=100 * 10**9,
    max_tx_per_hour=100_000,
)


@contextlib.contextmanager
def serve(app: Any, *, start_timeout_s: float = 10.0) -> Iterator[str]:
    """Run an ASGI ``app`` on uvicorn in a thread on a free loopback port; yield its base URL.

    Args:
        app: The ASGI application (a Litestar app in these suites); its lifespan runs.
        start_timeout_s: How long uvicorn may take to start listening.

    Yields:
        ``http://127.0.0.1:<port>``.

    Raises:
        RuntimeError: uvicorn did not start in time, or its thread died.
    """
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class SignerProcess:
    """A running ``python -m signer serve`` process and the one caller it was given.

    Attributes:
        url: Its base URL on loopback.
        address: The operator address it signs for.
        secret_hex: The caller's HMAC secret, hex.
        proc: The process.
        state_dir: Its state directory (keystore, policy, callers, ``serve.log``).
    """

    url: str
    address: str
    secret_hex: str
    proc: subprocess.Popen[bytes]
    state_dir: Path

    @property
    def secret(self) -> bytes:
        """The caller's HMAC secret as bytes."""
        return bytes.fromhex(self.secret_hex)

    def stop(self) -> None:
        """Stop it with SIGTERM, then SIGKILL if it has not exited within 10 s."""
        terminate(self.proc, 10.0)


def start_signer(
    root: Path,
    deployment: Deployment,
    operator_key: bytes | str,
    *,
    caller_id: str = "gateway",
    password: str = "service tests password",
    limits: Limits | None = SIGNER_LIMITS,
    scrypt_n: int | None = None,
    ready_timeout_s: float = 30.0,
) -> SignerProcess:
    """Run ``python -m signer serve`` for ``deployment`` with the operator key in a fresh keystore.

    The state directory is ``root/signer``; the password file is ``root/password``. The policy is
    ``signer.policy_for_deployment`` with ``limits``; one caller, ``caller_id``, is added. The
    child gets the environment without any ``TWOPM_*`` variable.

    Args:
        root: An empty directory of the test's own.
        deployment: The contracts the signer may call.
        operator_key: The operator's private key (32 bytes, or hex with or without ``0x``).
        caller_id: The caller to add.
        password: The keystore password.
        limits: The policy's limits (``None``: ``policy_for_deployment``'s defaults).
        scrypt_n: The keystore's scrypt cost (``None``: the keystore module's default).
        ready_timeout_s: How long the process may take to write its ready file.

    Returns:
        The running signer; its ``/healthz`` has answered 200.

    Raises:
        RuntimeError: It exited or did not become ready in time (the message ends its log).
    """
    state = root / "signer"
    state.mkdir(mode=0o700)
    key = (
        operator_key
        if isinstance(operator_key, bytes)
        else bytes.fromhex(operator_key.removeprefix("0x"))
    )
    keystore_kwargs: dict[str, Any] = {} if scrypt_n is None else {"scrypt_n": scrypt_n}
    write_keystore(state / "keystore.json", key, password, **keystore_kwargs)
    (state / "keystore.json").chmod(0o600)
    password_file = root / "password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    (state / "policy.toml").write_text(
        policy_for_deployment(deployment.addresses, chain_id=deployment.chain_id, limits=limits)
    )
    secret = add_caller(state / "callers.json", caller_id)
    ready = state / "ready.json"
    argv = [
        sys.executable, "-m", "signer", "serve", "--state-dir", str(state),
        "--password-file", str(password_file), "--port", "0", "--ready-file", str(ready),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWOPM_")}
    proc = spawn(argv, log_path=state / "serve.log", env=env)
    try:
        wait_for("signer", ready.exists, process=proc, timeout_s=ready_timeout_s, interval_s=0.05)
    except ProcessError as exc:
        terminate(proc, 0)
        raise RuntimeError((state / "serve.log").read_text()[-2000:]) from exc
    info = json.loads(ready.read_text())
    httpx.get(info["url"] + "/healthz", timeout=5).raise_for_status()
    return SignerProcess(info["url"], info["address"], secret.hex(), proc, state)


def deploy_for_operator(
    anvil: Anvil, operator: str, *, funding_wei: int = 10**20, **deploy_kwargs: Any
) -> Deployment:
    """Deploy the contract set (by dev account 0) with ``operator``, and give the operator ETH.

    Args:
        anvil: The running chain.
        operator: The operator address (the key a test signer holds).
        funding_wei: ETH sent to the operator from dev account 3, for gas.
        **deploy_kwargs: Passed on to ``contracts.deploy.deploy_all``.

    Returns:
        The deployment.
    """
    deployed = deploy_all(
        anvil.w3, anvil.accounts[0].private_key, operator=operator, **deploy_kwargs
    )
    tx = anvil.w3.eth.send_transaction(
        {"from": anvil.accounts[3].address, "to": operator, "value": Wei(funding_wei)}
    )
    anvil.w3.eth.wait_for_transaction_receipt(tx)
    return deployed


def create_subnet(
    w3: Any,
    deployment: Deployment,
    owner_key: str,
    *,
    name: str,
    price_wei: int,
    min_stake_wei: int,
    model_hash: bytes = b"\xab" * 32,
    contributor: str | None = None,
    publish: bool = True,
) -> int:
    """Create a subnet (owner share 1000 bps) and, by default, publish one model version to it.

    The version has artifact ``file:///model.onnx``, schema hash ``01…``, run id ``02…`` and one
    contributor with all 10000 bps.

    Args:
        w3: Web3 connected to the chain.
        deployment: The contracts.
        owner_key: The subnet owner's private key (hex).
        name: The subnet's name.
        price_wei: Price per request.
        min_stake_wei: Minimum stake to call it.
        model_hash: The published model's hash (32 bytes).
        contributor: The one contributor (default: a fresh random address).
        publish: Whether to publish the version.

    Returns:
        The new subnet's id.
    """
    owner = Transactor(w3, owner_key)
    registry = deployment.contract("SubnetRegistry")
    owner.transact(registry.functions.createSubnet(name, price_wei, min_stake_wei, 1000))
    subnet_id = int(registry.functions.subnetCount().call())
    if publish:
        contributor = contributor or Account.create().address
        owner.transact(
            registry.functions.publishModel(
                subnet_id, model_hash, "file:///model.onnx", b"\x01" * 32, b"\x02" * 32,
                [contributor], [10_000],
            )
        )  # fmt: skip
    return subnet_id
