"""A local ``anvil`` chain for development and tests, with the chain id of Scroll Sepolia.

``anvil`` comes from the pinned npm package ``@foundry-rs/anvil`` (``npm ci`` puts it in
``node_modules/.bin``); ``TWOPM_ANVIL_BIN`` or ``PATH`` may point elsewhere. The chain runs the
Shanghai hardfork, the EVM that Scroll executes, so code using Cancun opcodes fails here as it would
there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from web3 import Web3
from web3.providers.rpc import HTTPProvider

from contracts.scroll import LOCAL_L1_FEE_PARAMS, L1FeeParams, install_l1_gas_price_oracle
from core.net import free_port
from core.proc import ProcessError, spawn, terminate

#: Scroll mainnet chain id (https://docs.scroll.io/en/developers/developer-quickstart/).
SCROLL_MAINNET_CHAIN_ID = 534352
#: Scroll Sepolia chain id; the local anvil uses it so SIWE, EIP-155 and EIP-712 match Scroll Sepolia.
SCROLL_SEPOLIA_CHAIN_ID = 534351

_REPO_ROOT = Path(__file__).resolve().parent.parent


class AnvilError(RuntimeError):
    """anvil could not be found or did not start."""


@dataclass(frozen=True)
class DevAccount:
    """A funded development account of the local chain (never use its key elsewhere).

    Attributes:
        address: Checksummed address.
        private_key: ``0x``-prefixed hex private key.
    """

    address: str
    private_key: str


def find_anvil() -> str:
    """Path of the ``anvil`` binary: ``TWOPM_ANVIL_BIN``, then ``node_modules/.bin``, then ``PATH``.

    Raises:
        AnvilError: None of them has it (run ``npm ci`` in the repository).
    """
    explicit = os.environ.get("TWOPM_ANVIL_BIN")
    if explicit:
        return explicit
    local = _REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found:
        return found
    raise AnvilError("anvil not found: run `npm ci` in the repository or set TWOPM_ANVIL_BIN")


class Anvil:
    """A running ``anvil`` process; stop it with :meth:`stop` or use it as a context manager.

    Attributes:
        rpc_url: JSON-RPC endpoint, ``http://127.0.0.1:<port>``.
        chain_id: The chain id it serves (534351 unless asked otherwise).
        accounts: The funded development accounts, in anvil's order.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        rpc_url: str,
        chain_id: int,
        accounts: list[DevAccount],
    ) -> None:
        self._process = process
        self.rpc_url = rpc_url
        self.chain_id = chain_id
        self.accounts = accounts
        self._w3: Web3 | None = None

    @classmethod
    def start(
        cls,
        *,
        chain_id: int = SCROLL_SEPOLIA_CHAIN_ID,
        host: str = "127.0.0.1",
        port: int | None = None,
        accounts: int = 10,
        balance_eth: int = 10_000,
        block_time_s: float | None = None,
        hardfork: str = "shanghai",
        state_path: Path | None = None,
        log_path: Path | None = None,
        timeout_s: float = 30.0,
        l1_fee_params: L1FeeParams | None = LOCAL_L1_FEE_PARAMS,
    ) -> Anvil:
        """Start anvil and wait until it answers JSON-RPC.

        Args:
            chain_id: EIP-155 chain id to serve.
            host: Interface to listen on (loopback by default).
            port: TCP port; a free one when ``None``.
            accounts: Number of funded development accounts.
            balance_eth: Balance of each account, in ether.
            block_time_s: Seconds between blocks; ``None`` mines one block per transaction.
            hardfork: EVM rules; ``shanghai`` is what Scroll runs.
            state_path: If given, anvil loads its state from this file at start and dumps it on exit.
            log_path: File for anvil's output (discarded when ``None``).
            timeout_s: How long to wait for the first answer, in seconds.
            l1_fee_params: Install Scroll's ``L1GasPriceOracle`` stand-in at its predeploy address with
                these inputs (:mod:`contracts.scroll`); ``None`` leaves the address empty.

        Returns:
            The running chain.

        Raises:
            AnvilError: anvil is missing, exited, or did not answer within ``timeout_s``.
        """
        binary = find_anvil()
        port = port or free_port(host)
        config_dir = Path(tempfile.mkdtemp(prefix="twopm-anvil-"))
        config_out = config_dir / "anvil.json"
        argv = [
            binary,
            "--host", host,
            "--port", str(port),
            "--chain-id", str(chain_id),
            "--accounts", str(accounts),
            "--balance", str(balance_eth),
            "--hardfork", hardfork,
            "--config-out", str(config_out),
        ]  # fmt: skip
        if block_time_s is not None:
            argv += ["--block-time", str(block_time_s)]
        if state_path is not None:
            argv += ["--state", str(state_path)]
        try:
            process = spawn(argv, log_path=log_path, name="anvil")
        except ProcessError as exc:
            reason = getattr(exc.__cause__, "strerror", None) or exc
            raise AnvilError(f"cannot run anvil at {binary}: {reason}") from exc
        rpc_url = f"http://{host}:{port}"
        w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 5}))
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise AnvilError(
                    f"anvil exited with code {process.returncode} (port {port} taken?)"
                )
            try:
                if w3.eth.chain_id == chain_id and config_out.exists():
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                process.kill()
                raise AnvilError(f"anvil did not answer on {rpc_url} within {timeout_s} s")
            time.sleep(0.05)
        config = json.loads(config_out.read_text())
        shutil.rmtree(config_dir, ignore_errors=True)
        dev_accounts = [
            DevAccount(Web3.to_checksum_address(a), k)
            for a, k in zip(config["available_accounts"], config["private_keys"], strict=True)
        ]
        chain = cls(process, rpc_url, chain_id, dev_accounts)
        chain._w3 = w3
        if l1_fee_params is not None:
            install_l1_gas_price_oracle(w3, l1_fee_params)
        return chain

    @property
    def pid(self) -> int:
        """Process id of anvil."""
        return self._process.pid

    @property
    def w3(self) -> Web3:
        """A web3 client over HTTP to this chain."""
        if self._w3 is None:
            self._w3 = Web3(HTTPProvider(self.rpc_url))
        return self._w3

    def increase_time(self, seconds: int) -> None:
        """Move the chain's clock forward by ``seconds`` and mine a block (``evm_increaseTime``)."""
        self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def snapshot(self) -> str:
        """Take an ``evm_snapshot`` and return its id."""
        result: str = self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        return result

    def revert(self, snapshot_id: str) -> None:
        """Return the chain to a snapshot taken with :meth:`snapshot` (which it consumes)."""
        self.w3.provider.make_request("evm_revert", [snapshot_id])  # type: ignore[arg-type]

    def running(self) -> bool:
        """Whether the process is still alive."""
        return self._process.poll() is None

    def wait(self) -> int:
        """Block until anvil exits; return its exit code."""
        return self._process.wait()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop anvil (SIGTERM, then SIGKILL after ``timeout_s``). Safe to call twice."""
        terminate(self._process, timeout_s)

    def __enter__(self) -> Anvil:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def is_local_chain(w3: Web3) -> bool:
    """Whether ``w3`` talks to a local development chain.

    Local means an anvil node serving a chain id in ``core.ptau.LOCAL_CHAIN_IDS``; only there may
    development zk keys be deployed. Any RPC error counts as not local.
    """
    from core.ptau import LOCAL_CHAIN_IDS

    try:
        version = str(w3.client_version)
        chain_id = int(w3.eth.chain_id)
    except Exception:  # any transport or RPC error: not provably local
        return False
    return version.lower().startswith("anvil") and chain_id in LOCAL_CHAIN_IDS
