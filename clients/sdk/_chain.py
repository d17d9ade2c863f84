"""Chain calls of a wallet owner: stake, credit, spending authorisations, receipt proofs (web3.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from eth_utils import is_address, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, Web3Exception, Web3RPCError
from web3.logs import DISCARD
from web3.providers.rpc import HTTPProvider
from web3.types import TxReceipt

from clients.sdk._exceptions import (
    ChainError,
    InvalidInput,
    NothingToWithdraw,
    TooEarly,
    TransactionReverted,
    time_left,
    utc_time,
)
from clients.sdk._types import (
    CreditState,
    ProvenBatch,
    ProvenPrediction,
    SignedSpendingAuthorization,
    StakeWithdrawal,
)
from clients.sdk._wallet import Wallet
from contracts import ContractRevert, TransactionFailed, Transactor, load_artifact, would_revert
from contracts.deploy import LOCAL_TOKENS, TOKEN_KIND, Deployment
from contracts.eip712 import spending_authorization
from contracts.merkle import Receipt
from zk import (
    VERIFY_CALL_GAS,
    VERIFY_PROOF_ABI,
    FixedPointRangeError,
    batch_hashes,
    ensure_batch_hashes,
    inputs_hash,
)

__all__ = ["LOCAL_CHAIN_IDS", "ChainClient", "TxResult"]

LOCAL_CHAIN_IDS = (534351, 31337)
"""Chain ids a local anvil runs with: Scroll Sepolia's (``twopm up``) and anvil's default."""

T = TypeVar("T")

DEFAULT_AUTHORIZATION_TTL_S = 30 * 24 * 3600
"""Lifetime of a spending authorisation when no expiry is given: 30 days."""

_ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "function",
        "name": "allowance",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "account", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]
"""The three ERC-20 functions staking needs (EIP-20), for any token the vault lists."""

_CORE = ("StakingVault", "InferenceLedger")


@dataclass(frozen=True)
class TxResult:
    """A mined transaction and the value the SDK read from its events.

    Attributes:
        tx_hash: 0x-hex transaction hash.
        block_number: Block it was mined in.
        gas_used: Gas it used.
        value: What the call returned through its event: shares staked, a withdrawal
            request id, an amount withdrawn (wei or token units), or None.
    """

    tx_hash: str
    block_number: int
    gas_used: int
    value: int | None = None


def _rpc_message(exc: Web3RPCError) -> str:
    """The JSON-RPC error's own ``message`` (JSON-RPC 2.0, section 5.1), not web3's repr."""
    error = (exc.rpc_response or {}).get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(exc.user_message or exc.message).splitlines()[0]


def too_early(what: str, ready_at: int, now: int) -> str:
    """``"<what> ends in 2 h 13 min (at 2026-12-06 17:02 UTC)"``: the line a refusal shows.

    Args:
        what: The wait, e.g. ``"the cooldown of withdrawal request 3"``.
        ready_at: Unix time (s) it ends.
        now: Unix time (s) now, on the chain's clock.

    Returns:
        One line.
    """
    return f"{what} ends in {time_left(ready_at - now)} (at {utc_time(ready_at)})"


def _reverted(what: str, name: str, arguments: tuple[Any, ...]) -> TransactionReverted:
    """The SDK error of a decoded custom error.

    :class:`TooEarly` and :class:`NothingToWithdraw` for the withdrawal and claim refusals a
    wallet user meets, else :class:`TransactionReverted`.
    """
    if name == "StakingVaultCooldownActive":
        request_id, ready_at, now = (int(a) for a in arguments)
        message = too_early(f"the cooldown of withdrawal request {request_id}", ready_at, now)
        return TooEarly(message, name, arguments, ready_at=ready_at, now=now)
    if name == "InferenceLedgerWithdrawalNotReady":
        ready_at, now = int(arguments[1]), int(arguments[2])
        message = too_early("the credit withdrawal delay", ready_at, now)
        return TooEarly(message, name, arguments, ready_at=ready_at, now=now)
    if name == "StakingVaultAlreadyWithdrawn":
        return NothingToWithdraw(
            f"nothing to withdraw: request {arguments[0]} was paid out already", name, arguments
        )
    if name == "InferenceLedgerNoPendingWithdrawal":
        return NothingToWithdraw(
            f"nothing to withdraw: {arguments[0]} has no pending credit withdrawal", name, arguments
        )
    if name == "SubnetRegistryNotSubnetOwner":
        return TransactionReverted(
            f"{arguments[1]} does not own subnet {arguments[0]}", name, arguments
        )
    if name == "SubnetRegistryNotPendingOwner":
        return TransactionReverted(
            f"no transfer of subnet {arguments[0]} to {arguments[1]} is pending", name, arguments
        )
    if name == "SubnetRegistryUnknownSubnet":
        return TransactionReverted(f"there is no subnet {arguments[0]}", name, arguments)
    if name == "InferenceLedgerNothingToClaim":
        return NothingToWithdraw(
            f"nothing to claim: {arguments[0]} has no payouts", name, arguments
        )
    return TransactionReverted(f"{what} reverted with {name}{arguments}", name, arguments)


@contextmanager
def _chain_errors(what: str) -> Iterator[None]:
    """Translate web3, JSON-RPC and transport failures into the SDK's chain errors."""
    try:
        yield
    except ContractRevert as exc:
        raise _reverted(what, exc.name, tuple(exc.arguments)) from exc
    except TransactionFailed as exc:
        if type(exc) is TransactionFailed:  # neither reverted nor would revert: node, transport
            cause = exc.__cause__
            if isinstance(cause, Web3RPCError):
                raise ChainError(
                    f"{what} failed: the node answered: {_rpc_message(cause)}"
                ) from exc
            raise ChainError(f"{what} failed: {exc}") from exc
        raise TransactionReverted(f"{what} failed: {exc}") from exc
    except ContractLogicError as exc:  # ContractCustomError is a subclass
        decoded = would_revert(exc)
        if isinstance(decoded, ContractRevert):
            raise _reverted(what, decoded.name, tuple(decoded.arguments)) from exc
        raise TransactionReverted(f"{what} reverted: {exc}") from exc
    except Web3RPCError as exc:
        raise ChainError(f"{what} failed: the node answered: {_rpc_message(exc)}") from exc
    except (Web3Exception, requests.RequestException, OSError, ValueError, TimeoutError) as exc:
        raise ChainError(f"{what} failed: {type(exc).__name__}: {exc}") from exc


class ChainClient:
    """A wallet owner's calls to the 2PM contracts, signed with a local key.

    Reads need no wallet; transactions do. Every transaction is simulated first, so a
    revert raises :class:`TransactionReverted` with the contract's custom error before
    any gas is spent.

    Args:
        w3: web3 client of the chain.
        addresses: Contract name -> address; needs ``StakingVault`` and ``InferenceLedger``.
        wallet: The signing key (None for a read-only client).
        timeout_s: Seconds to wait for each transaction to be mined.

    Raises:
        InvalidInput: A required contract address is missing or malformed.
    """

    def __init__(
        self,
        w3: Web3,
        addresses: Mapping[str, str],
        wallet: Wallet | None = None,
        *,
        timeout_s: float = 120.0,
    ) -> None:
        for name in _CORE:
            if name not in addresses or not is_address(addresses[name]):
                raise InvalidInput(f"a {name} address is required")
        self.w3 = w3
        self.addresses = {k: to_checksum_address(v) for k, v in addresses.items() if is_address(v)}
        self.wallet = wallet
        self.vault: Contract = w3.eth.contract(
            address=self.addresses["StakingVault"], abi=load_artifact("StakingVault").abi
        )
        self.ledger: Contract = w3.eth.contract(
            address=self.addresses["InferenceLedger"], abi=load_artifact("InferenceLedger").abi
        )
        self._tx = (
            Transactor(w3, wallet._private_key_hex(), receipt_timeout_s=timeout_s)
            if wallet
            else None
        )
        self._chain_id: int | None = None
        self._tokens: dict[str, str] | None = None

    @classmethod
    def connect(
        cls,
        rpc_url: str,
        addresses: Mapping[str, str],
        wallet: Wallet | None = None,
        *,
        timeout_s: float = 120.0,
    ) -> ChainClient:
        """A client over HTTP JSON-RPC.

        Args:
            rpc_url: The node's URL.
            addresses: Contract name -> address.
            wallet: The signing key, or None for reads only.
            timeout_s: Seconds to wait for each transaction (also the RPC timeout bound).

        Returns:
            The client.

        Raises:
            InvalidInput: A required contract address is missing.
        """
        w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": min(30.0, timeout_s)}))
        return cls(w3, addresses, wallet, timeout_s=timeout_s)

    @classmethod
    def from_deployment(
        cls, deployment: Deployment, wallet: Wallet | None = None, *, w3: Web3 | None = None
    ) -> ChainClient:
        """A client for a :class:`contracts.Deployment`.

        Args:
            deployment: Where the contracts live (with its ``w3`` attached, or pass one).
            wallet: The signing key, or None for reads only.
            w3: web3 client to use instead of the deployment's.

        Returns:
            The client.

        Raises:
            InvalidInput: No web3 client is available.
        """
        client = w3 or deployment.w3
        if client is None:
            raise InvalidInput("the deployment has no web3 client; pass w3")
        return cls(client, deployment.addresses, wallet)

    @classmethod
    def from_stack_file(cls, path: str | Path, wallet: Wallet | None = None) -> ChainClient:
        """A client for the network described by ``twopm up``'s ``stack.json``.

        Args:
            path: The ``stack.json`` file (``rpc_url`` and ``contracts``).
            wallet: The signing key, or None for reads only.

        Returns:
            The client.

        Raises:
            InvalidInput: The file is missing or lacks ``rpc_url`` or ``contracts``.
        """
        try:
            stack = json.loads(Path(path).read_text())
            return cls.connect(str(stack["rpc_url"]), dict(stack["contracts"]), wallet)
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{path} is not a stack file: {exc}") from exc

    # ------------------------------------------------------------------ plumbing

    @property
    def address(self) -> str:
        """The wallet's address.

        Raises:
            InvalidInput: The client is read-only.
        """
        return self._sender().address

    def _sender(self) -> Transactor:
        if self._tx is None:
            raise InvalidInput("this ChainClient has no wallet; it can only read")
        return self._tx

    def _who(self, address: str | None) -> str:
        if address is None:
            return self.address
        if not is_address(address):
            raise InvalidInput(f"{address!r} is not an address")
        return to_checksum_address(address)

    @property
    def chain_id(self) -> int:
        """EIP-155 chain id of the node (read once).

        Raises:
            ChainError: The node is unreachable.
        """
        if self._chain_id is None:
            with _chain_errors("reading the chain id"):
                self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def _read(self, what: str, fn: Callable[[], T]) -> T:
        with _chain_errors(what):
            return fn()

    def _send(self, what: str, call: Any, *, value: int = 0) -> TxReceipt:
        sender = self._sender()
        with _chain_errors(what):
            return sender.transact(call, value_wei=value)

    @staticmethod
    def _result(receipt: TxReceipt, value: int | None = None) -> TxResult:
        return TxResult(
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            value=value,
        )

    @staticmethod
    def _event_value(contract: Contract, event: str, receipt: TxReceipt, arg: str) -> int | None:
        logs = getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD)
        return int(logs[0]["args"][arg]) if logs else None

    # ------------------------------------------------------------------ staking

    def tokens(self) -> dict[str, str]:
        """The staking tokens the vault lists, by symbol (``stETH``, ``wstETH``, ``rETH``).

        Returns:
            Symbol -> EIP-55 token address, read from ``StakingVault.tokens`` and
            ``tokenConfig`` once and then cached.

        Raises:
            ChainError: The node is unreachable.
        """
        if self._tokens is None:
            kinds = {kind: symbol for symbol, kind in TOKEN_KIND.items()}
            found: dict[str, str] = {}
            with _chain_errors("reading the vault's tokens"):
                for token in self.vault.functions.tokens().call():
                    kind = int(self.vault.functions.tokenConfig(token).call()[0])
                    if kind in kinds:
                        found[kinds[kind]] = to_checksum_address(token)
            self._tokens = found
        return dict(self._tokens)

    def token_address(self, token: str) -> str:
        """Resolve a token symbol (case-insensitive) or address to the listed token's address.

        Args:
            token: ``"stETH"``, ``"wstETH"``, ``"rETH"`` or a 0x address.

        Returns:
            EIP-55 address.

        Raises:
            InvalidInput: Unknown symbol.
            ChainError: The node is unreachable.
        """
        if is_address(token):
            return to_checksum_address(token)
        listed = {symbol.lower(): address for symbol, address in self.tokens().items()}
        if token.lower() not in listed:
            raise InvalidInput(
                f"unknown staking token {token!r}; the vault lists {', '.join(self.tokens()) or 'none'}"
            )
        return listed[token.lower()]

    def token_balance(self, token: str, address: str | None = None) -> int:
        """ERC-20 balance of a staking token.

        Args:
            token: Symbol or address.
            address: Holder; the wallet when None.

        Returns:
            Token units (wei of the token).

        Raises:
            ChainError: The node is unreachable.
        """
        erc20 = self.w3.eth.contract(
            address=to_checksum_address(self.token_address(token)), abi=_ERC20_ABI
        )
        who = self._who(address)
        return int(self._read("reading a token balance", erc20.functions.balanceOf(who).call))

    def stake(self, token: str, amount: int) -> TxResult:
        """Stake ``amount`` of a token in the StakingVault, approving the vault first if needed.

        Args:
            token: ``"stETH"``, ``"wstETH"``, ``"rETH"`` or the token's address.
            amount: Token units (wei of stETH, wstETH or rETH), > 0.

        Returns:
            The stake transaction; ``value`` is the shares credited (Lido shares for stETH).

        Raises:
            InvalidInput: Non-positive amount, unknown token, a balance below ``amount``
                (checked before any transaction), or no wallet.
            TransactionReverted: The vault refused (e.g. ``StakingVaultTokenNotAllowed``).
            ChainError: The node is unreachable.
        """
        if amount <= 0:
            raise InvalidInput("amount must be positive")
        address = self.token_address(token)
        erc20 = self.w3.eth.contract(address=to_checksum_address(address), abi=_ERC20_ABI)
        balance = int(self._read("reading a balance", erc20.functions.balanceOf(self.address).call))
        if balance < amount:
            raise InvalidInput(f"the wallet holds {balance} units of {token}, fewer than {amount}")
        allowance = self._read(
            "reading the allowance",
            erc20.functions.allowance(self.address, self.vault.address).call,
        )
        if int(allowance) < amount:
            self._send("approve", erc20.functions.approve(self.vault.address, amount))
        receipt = self._send("stake", self.vault.functions.stake(address, amount))
        return self._result(receipt, self._event_value(self.vault, "Staked", receipt, "shares"))

    def mint_test_tokens(self, token: str, amount: int) -> TxResult:
        """Get local stand-in staking tokens on a local anvil chain (a faucet for development).

        wstETH and rETH (and stETH, once its stand-in has ``mint``) are minted with
        ``mint(address,uint256)``; otherwise stETH is bought with Lido's ``submit``, paying
        ``amount`` wei of the wallet's own (local) ETH.

        Args:
            token: ``"stETH"``, ``"wstETH"`` or ``"rETH"``.
            amount: Token units (wei of the token), > 0.

        Returns:
            The minting transaction.

        Raises:
            InvalidInput: Non-positive amount, unknown token, no wallet, or a chain that is not
                a local anvil (chain id 534351 or 31337 and ``web3_clientVersion`` ``anvil/…``):
                real tokens cannot be minted.
            TransactionReverted: The token refused.
            ChainError: The node is unreachable.
        """
        if amount <= 0:
            raise InvalidInput("amount must be positive")
        client = str(self._read("reading the node's version", lambda: self.w3.client_version))
        if self.chain_id not in LOCAL_CHAIN_IDS or not client.lower().startswith("anvil"):
            raise InvalidInput(
                f"test tokens exist only on a local anvil chain (chain id 534351 or 31337);"
                f" this is chain {self.chain_id} run by {client.split('/')[0] or 'an unknown node'}"
            )
        symbol = next((s for s in LOCAL_TOKENS if s.lower() == token.lower()), None)
        if symbol is None:
            raise InvalidInput(
                f"unknown staking token {token!r}; use one of {', '.join(LOCAL_TOKENS)}"
            )
        abi = load_artifact(LOCAL_TOKENS[symbol]).abi
        contract = self.w3.eth.contract(
            address=to_checksum_address(self.token_address(symbol)), abi=abi
        )
        if any(item.get("name") == "mint" for item in abi):
            receipt = self._send(f"minting {symbol}", contract.functions.mint(self.address, amount))
        else:
            receipt = self._send(
                f"submitting ETH for {symbol}",
                contract.functions.submit(self.address),
                value=amount,
            )
        return self._result(receipt)

    def request_withdrawal(self, token: str, shares: int) -> TxResult:
        """Take shares out of active stake now; they can be withdrawn after the cooldown.

        Args:
            token: Symbol or address.
            shares: Share units of the position (see :meth:`stake_of`), > 0.

        Returns:
            The transaction; ``value`` is the withdrawal request id.

        Raises:
            InvalidInput: Non-positive shares, unknown token, or no wallet.
            TransactionReverted: E.g. ``StakingVaultInsufficientStake``.
            ChainError: The node is unreachable.
        """
        if shares <= 0:
            raise InvalidInput("shares must be positive")
        call = self.vault.functions.requestWithdrawal(self.token_address(token), shares)
        receipt = self._send("requestWithdrawal", call)
        request_id = self._event_value(self.vault, "WithdrawalRequested", receipt, "requestId")
        return self._result(receipt, request_id)

    def withdraw(self, request_id: int) -> TxResult:
        """Withdraw a matured request's tokens to the wallet.

        Args:
            request_id: From :meth:`request_withdrawal`.

        Returns:
            The transaction; ``value`` is the token units sent.

        Raises:
            TooEarly: The cooldown has not passed (``StakingVaultCooldownActive``); the
                message gives the time left and when it ends.
            NothingToWithdraw: The request was paid out already.
            TransactionReverted: E.g. ``StakingVaultNotRequestOwner``,
                ``StakingVaultUnknownRequest``.
            ChainError: The node is unreachable.
        """
        receipt = self._send("withdraw", self.vault.functions.withdraw(request_id))
        return self._result(receipt, self._event_value(self.vault, "Withdrawn", receipt, "amount"))

    def chain_time(self) -> int:
        """The latest block's timestamp: the clock cooldowns and delays are measured on.

        Returns:
            Unix time, seconds.

        Raises:
            ChainError: The node is unreachable.
        """
        block = self._read("reading the latest block", lambda: self.w3.eth.get_block("latest"))
        return int(block["timestamp"])

    def stake_withdrawals(
        self, token: str | None = None, address: str | None = None, *, from_block: int = 0
    ) -> list[StakeWithdrawal]:
        """The withdrawal requests of an account that are not paid out yet, oldest first.

        Found from the vault's ``WithdrawalRequested`` logs (``account`` is indexed), each
        then read back with ``withdrawalRequest`` for its current state.

        Args:
            token: Only this token's (symbol or address); every token when None.
            address: Whose; the wallet when None.
            from_block: First block to search the logs from (the vault's deployment block
                spares a node with a log-range limit).

        Returns:
            The pending requests.

        Raises:
            InvalidInput: Unknown token or malformed address.
            ChainError: The node is unreachable.
        """
        who = self._who(address)
        wanted = self.token_address(token) if token is not None else None
        event = self.vault.events.WithdrawalRequested
        logs = self._read(
            "reading withdrawal requests",
            lambda: event.get_logs(argument_filters={"account": who}, from_block=from_block),
        )
        pending: list[StakeWithdrawal] = []
        for log in logs:
            request_id = int(log["args"]["requestId"])
            account, token_address, ready_at, withdrawn, shares = self._read(
                "reading a withdrawal request",
                self.vault.functions.withdrawalRequest(request_id).call,
            )
            if withdrawn or to_checksum_address(account) != who:
                continue
            if wanted is not None and to_checksum_address(token_address) != wanted:
                continue
            pending.append(
                StakeWithdrawal(
                    request_id=request_id,
                    token=to_checksum_address(token_address),
                    shares=int(shares),
                    ready_at=int(ready_at),
                )
            )
        return sorted(pending, key=lambda r: r.request_id)

    def complete_withdrawals(self, token: str | None = None) -> list[TxResult]:
        """Withdraw every pending request of the wallet whose cooldown has passed.

        Args:
            token: Only this token's requests (symbol or address); all when None.

        Returns:
            One transaction per request paid (``value``: token units sent), oldest first.

        Raises:
            NothingToWithdraw: The wallet has no pending request (of ``token``).
            TooEarly: Requests are pending but none has matured; about the one that matures
                first.
            TransactionReverted: The vault refused for another reason.
            ChainError: The node is unreachable.
        """
        pending = self.stake_withdrawals(token)
        if not pending:
            of = f" of {token}" if token is not None else ""
            raise NothingToWithdraw(
                f"nothing to withdraw: {self.address} has no pending stake withdrawal{of};"
                " request one first"
            )
        now = self.chain_time()
        ready = [r for r in pending if r.ready_at <= now]
        if not ready:
            first = min(pending, key=lambda r: r.ready_at)
            message = too_early(
                f"the cooldown of withdrawal request {first.request_id}", first.ready_at, now
            )
            raise TooEarly(message, ready_at=first.ready_at, now=now)
        return [self.withdraw(r.request_id) for r in ready]

    def staked_value_wei(self, address: str | None = None) -> int:
        """Active stake over all tokens, in wei of ETH (``StakingVault.stakedValueOf``).

        Args:
            address: Whose; the wallet when None.

        Returns:
            Wei of ETH.

        Raises:
            ChainError: The node is unreachable.
        """
        who = self._who(address)
        return int(self._read("reading stake", self.vault.functions.stakedValueOf(who).call))

    def stake_of(self, token: str, address: str | None = None) -> tuple[int, int]:
        """Active position in one token.

        Args:
            token: Symbol or address.
            address: Whose; the wallet when None.

        Returns:
            ``(shares, value_wei)``.

        Raises:
            ChainError: The node is unreachable.
        """
        call = self.vault.functions.stakeOf(self._who(address), self.token_address(token))
        shares, value = self._read("reading stake", call.call)
        return int(shares), int(value)

    # ------------------------------------------------------------------ credit

    def deposit(self, amount_wei: int) -> TxResult:
        """Add ETH to the wallet's prepaid credit in the InferenceLedger.

        Args:
            amount_wei: Wei to deposit, > 0.

        Returns:
            The transaction.

        Raises:
            InvalidInput: Non-positive amount, no wallet, or the wallet holds fewer than
                ``amount_wei`` wei of ETH (checked before any transaction).
            TransactionReverted: The ledger refused.
            ChainError: The node is unreachable.
        """
        if amount_wei <= 0:
            raise InvalidInput("amount_wei must be positive")
        sender = self._sender()
        balance_wei = int(
            self._read(
                "reading the balance",
                lambda: self.w3.eth.get_balance(to_checksum_address(sender.address)),
            )
        )
        if balance_wei < amount_wei:
            raise InvalidInput(
                f"the wallet {sender.address} holds {balance_wei} wei of ETH, fewer than the"
                f" {amount_wei} wei to deposit (and the gas)"
            )
        return self._result(
            self._send("deposit", self.ledger.functions.deposit(), value=amount_wei)
        )

    def request_credit_withdrawal(self, amount_wei: int) -> TxResult:
        """Ask to withdraw unspent credit after the ledger's withdrawal delay.

        Args:
            amount_wei: Wei to withdraw, > 0 (replaces an earlier request).

        Returns:
            The transaction; ``value`` is the Unix time (s) it becomes ready.

        Raises:
            InvalidInput: Non-positive amount or no wallet.
            TransactionReverted: E.g. ``InferenceLedgerInsufficientCredit``.
            ChainError: The node is unreachable.
        """
        if amount_wei <= 0:
            raise InvalidInput("amount_wei must be positive")
        receipt = self._send(
            "requestCreditWithdrawal", self.ledger.functions.requestCreditWithdrawal(amount_wei)
        )
        ready = self._event_value(self.ledger, "CreditWithdrawalRequested", receipt, "readyAt")
        return self._result(receipt, ready)

    def cancel_credit_withdrawal(self) -> TxResult:
        """Cancel the pending credit withdrawal.

        Returns:
            The transaction.

        Raises:
            NothingToWithdraw: No withdrawal is pending (``InferenceLedgerNoPendingWithdrawal``).
            ChainError: The node is unreachable.
        """
        return self._result(
            self._send("cancelCreditWithdrawal", self.ledger.functions.cancelCreditWithdrawal())
        )

    def withdraw_credit(self) -> TxResult:
        """Pay out a matured credit withdrawal to the wallet.

        Returns:
            The transaction; ``value`` is the wei paid.

        Raises:
            TooEarly: The delay has not passed (``InferenceLedgerWithdrawalNotReady``); the
                message gives the time left and when it ends.
            NothingToWithdraw: No withdrawal is pending (``InferenceLedgerNoPendingWithdrawal``).
            ChainError: The node is unreachable.
        """
        receipt = self._send("withdrawCredit", self.ledger.functions.withdrawCredit())
        paid = self._event_value(self.ledger, "CreditWithdrawn", receipt, "amount")
        return self._result(receipt, paid)

    def credit(self, address: str | None = None) -> CreditState:
        """The ledger's account, authorisation, pending withdrawal and payouts of a user.

        Args:
            address: Whose; the wallet when None.

        Returns:
            The state.

        Raises:
            ChainError: The node is unreachable.
        """
        who = self._who(address)
        f = self.ledger.functions
        with _chain_errors("reading credit"):
            balance, cap_remaining, expiry = f.accountOf(who).call()
            max_total, _auth_expiry, nonce = f.authorizationOf(who).call()
            pending, ready_at = f.pendingWithdrawalOf(who).call()
            spendable = f.spendableOf(who).call()
            claimable = f.claimableOf(who).call()
        return CreditState(
            balance_wei=int(balance),
            cap_remaining_wei=int(cap_remaining),
            expiry=int(expiry),
            max_total_spend_wei=int(max_total),
            nonce=int(nonce),
            pending_withdrawal_wei=int(pending),
            withdrawal_ready_at=int(ready_at),
            spendable_wei=int(spendable),
            claimable_wei=int(claimable),
        )

    # ------------------------------------------------------------------ spending authorisation

    def sign_spending_authorization(
        self,
        max_total_spend_wei: int,
        *,
        expiry: int | None = None,
        nonce: int | None = None,
    ) -> SignedSpendingAuthorization:
        """Sign an EIP-712 ``SpendingAuthorization`` for the InferenceLedger (no transaction).

        Give the result to ``GatewayClient.submit_spending_authorization`` (the operator
        pays the gas) or to :meth:`authorize_spending`.

        Args:
            max_total_spend_wei: Most wei the operator may debit under it, >= 0.
            expiry: Unix time (s) it ends; 30 days from now when None.
            nonce: Must exceed the current authorisation's; current + 1 when None.

        Returns:
            The signed authorisation.

        Raises:
            InvalidInput: Out-of-range values or no wallet.
            ChainError: The node is unreachable (reading the chain id or nonce).
        """
        if not 0 <= max_total_spend_wei < 2**256:
            raise InvalidInput("max_total_spend_wei must be in [0, 2^256)")
        expiry = int(time.time()) + DEFAULT_AUTHORIZATION_TTL_S if expiry is None else expiry
        if nonce is None:
            nonce = self.credit().nonce + 1
        if not (0 < expiry < 2**64 and 0 < nonce < 2**64):
            raise InvalidInput("expiry and nonce must be in (0, 2^64)")
        wallet = self.wallet
        if wallet is None:
            raise InvalidInput("this ChainClient has no wallet; it can only read")
        typed = spending_authorization(
            chain_id=self.chain_id,
            ledger=self.ledger.address,
            user=wallet.address,
            max_total_spend_wei=max_total_spend_wei,
            expiry=expiry,
            nonce=nonce,
        )
        return SignedSpendingAuthorization(
            user=wallet.address,
            max_total_spend_wei=max_total_spend_wei,
            expiry=expiry,
            nonce=nonce,
            signature=wallet.sign_typed_data(typed),
            ledger=str(self.ledger.address),
            chain_id=self.chain_id,
        )

    def authorize_spending(self, signed: SignedSpendingAuthorization) -> TxResult:
        """Install a signed authorisation on chain yourself (paying the gas).

        Args:
            signed: From :meth:`sign_spending_authorization` (anyone's).

        Returns:
            The transaction.

        Raises:
            TransactionReverted: ``InferenceLedgerStaleNonce``,
                ``InferenceLedgerAuthorizationExpired`` or ``InferenceLedgerInvalidSignature``.
            ChainError: The node is unreachable.
        """
        call = self.ledger.functions.authorizeSpending(
            signed.user, signed.max_total_spend_wei, signed.expiry, signed.nonce, signed.signature
        )
        return self._result(self._send("authorizeSpending", call))

    def revoke_spending(self) -> TxResult:
        """Revoke the wallet's spending authorisation: no further debit until a new one.

        Returns:
            The transaction.

        Raises:
            ChainError: The node is unreachable.
        """
        return self._result(self._send("revokeSpending", self.ledger.functions.revokeSpending()))

    # ------------------------------------------------------------------ payouts and receipts

    def claimable_wei(self, address: str | None = None) -> int:
        """Payouts an address may claim from the ledger.

        Args:
            address: Whose; the wallet when None.

        Returns:
            Wei.

        Raises:
            ChainError: The node is unreachable.
        """
        who = self._who(address)
        return int(self._read("reading claimable", self.ledger.functions.claimableOf(who).call))

    def claim(self) -> TxResult:
        """Claim the wallet's payouts.

        Returns:
            The transaction; ``value`` is the wei claimed.

        Raises:
            NothingToWithdraw: Nothing to claim (``InferenceLedgerNothingToClaim``).
            ChainError: The node is unreachable.
        """
        receipt = self._send("claim", self.ledger.functions.claim())
        return self._result(receipt, self._event_value(self.ledger, "Claimed", receipt, "amount"))

    # ------------------------------------------------------------------ subnet ownership

    def _registry(self) -> Contract:
        if "SubnetRegistry" not in self.addresses:
            raise InvalidInput("a SubnetRegistry address is required for subnet ownership")
        return self.w3.eth.contract(
            address=self.addresses["SubnetRegistry"], abi=load_artifact("SubnetRegistry").abi
        )

    def subnet_owner(self, subnet_id: int) -> tuple[str, str | None]:
        """Who owns a subnet, and to whom a transfer is pending.

        Args:
            subnet_id: The subnet (ids start at 1).

        Returns:
            ``(owner, pending_owner)``, EIP-55; ``pending_owner`` None when no transfer waits.

        Raises:
            TransactionReverted: ``SubnetRegistryUnknownSubnet``.
            InvalidInput: No SubnetRegistry address.
            ChainError: The node is unreachable.
        """
        f = self._registry().functions
        with _chain_errors("reading the subnet's owner"):
            owner = str(f.subnetOf(subnet_id).call()[0])
            pending = str(f.pendingOwnerOf(subnet_id).call())
        none = int(pending, 16) == 0
        return to_checksum_address(owner), None if none else to_checksum_address(pending)

    def transfer_subnet_ownership(self, subnet_id: int, new_owner: str) -> TxResult:
        """Propose ``new_owner`` for a subnet the wallet owns (step 1 of 2; replaces a proposal).

        Args:
            subnet_id: The subnet.
            new_owner: The proposed owner's address; it must call
                :meth:`accept_subnet_ownership`.

        Returns:
            The transaction.

        Raises:
            InvalidInput: Malformed or zero address, or no wallet.
            TransactionReverted: ``SubnetRegistryNotSubnetOwner`` or
                ``SubnetRegistryUnknownSubnet``.
            ChainError: The node is unreachable.
        """
        who = self._who(new_owner)
        if int(who, 16) == 0:
            raise InvalidInput("the new owner cannot be the zero address")
        call = self._registry().functions.transferSubnetOwnership(subnet_id, who)
        return self._result(self._send("transferSubnetOwnership", call))

    def accept_subnet_ownership(self, subnet_id: int) -> TxResult:
        """Take over a subnet whose transfer to the wallet is pending (step 2 of 2).

        Args:
            subnet_id: The subnet.

        Returns:
            The transaction.

        Raises:
            TransactionReverted: ``SubnetRegistryNotPendingOwner`` or
                ``SubnetRegistryUnknownSubnet``.
            ChainError: The node is unreachable.
        """
        call = self._registry().functions.acceptSubnetOwnership(subnet_id)
        return self._result(self._send("acceptSubnetOwnership", call))

    def batch_root(self, batch_id: int) -> bytes:
        """The receipts root of a recorded batch.

        Args:
            batch_id: On-chain batch id.

        Returns:
            32 bytes.

        Raises:
            TransactionReverted: ``InferenceLedgerUnknownBatch``.
            ChainError: The node is unreachable.
        """
        return bytes(
            self._read("reading a batch root", self.ledger.functions.batchRoot(batch_id).call)
        )

    def verify_receipt_on_chain(self, batch_id: int, receipt: Receipt, proof: list[bytes]) -> bool:
        """Ask ``InferenceLedger.verifyReceipt`` whether a receipt is in a batch.

        Args:
            batch_id: On-chain batch id.
            receipt: The receipt's fields.
            proof: Sibling hashes from its leaf to the root.

        Returns:
            What the contract answers.

        Raises:
            TransactionReverted: ``InferenceLedgerUnknownBatch``.
            ChainError: The node is unreachable.
        """
        call = self.ledger.functions.verifyReceipt(batch_id, receipt.as_tuple(), proof)
        return bool(self._read("verifying a receipt", call.call))

    def verify_prediction_proof(
        self,
        subnet_id: int,
        proven: ProvenPrediction,
        features: Sequence[float],
        *,
        gas: int = VERIFY_CALL_GAS,
    ) -> bool:
        """Whether a proven prediction is what the registered model version computes for ``features``.

        Everything comes from the chain, not the gateway: the version's verifier and commitment are
        read from ``SubnetRegistry.modelVerifierOf``; the proof's instances must carry that
        commitment and the Poseidon hash of the fixed-point encoding of ``features``, recomputed
        here (``zk.inputs_hash``: a local Node witness computation, no keys); then the verifier's
        ``verifyProof(proof, instances)`` is called with at most ``gas`` gas.

        Args:
            subnet_id: The subnet.
            proven: What :meth:`GatewayClient.predict_proven` returned.
            features: The row sent, shape (n_features,), in the subnet's feature order.
            gas: Gas limit of the verifying call.

        Returns:
            True only when every check passes.

        Raises:
            InvalidInput: No SubnetRegistry address is known.
            ChainError: The node is unreachable.
            zk.SetupError, zk.ProofError: The local hash computation failed (Node missing).
        """
        if "SubnetRegistry" not in self.addresses:
            raise InvalidInput("a SubnetRegistry address is required to check proofs")
        registry = self.w3.eth.contract(
            address=self.addresses["SubnetRegistry"], abi=load_artifact("SubnetRegistry").abi
        )
        read = registry.functions.modelVerifierOf(int(subnet_id), int(proven.model_version)).call
        verifier, commitment = self._read("reading the model's verifier", read)
        if int(verifier, 16) == 0 or to_checksum_address(verifier) != to_checksum_address(
            proven.verifier
        ):
            return False
        if len(proven.instances) != 3 or proven.instances[1] != int(commitment):
            return False
        try:
            expected = inputs_hash(features)
        except FixedPointRangeError:
            return False
        if proven.instances[2] != expected:
            return False
        contract = self.w3.eth.contract(address=to_checksum_address(verifier), abi=VERIFY_PROOF_ABI)
        call = contract.functions.verifyProof(proven.proof, list(proven.instances))
        try:
            return bool(call.call({"gas": gas}))
        except (ContractLogicError, Web3RPCError, ValueError):
            return False

    def verify_batch_proof(
        self,
        subnet_id: int,
        proven: ProvenBatch,
        rows: Sequence[Sequence[float]],
        *,
        gas: int = VERIFY_CALL_GAS,
    ) -> bool:
        """Whether a batch proof shows the registered model version's logits for ``rows``.

        Reads the version's verifier and commitment from ``SubnetRegistry.modelVerifierOf``; checks
        ``instances[2]`` is that commitment; recomputes ``inputsHash`` from the rows sent and
        ``logitsHash`` from the logits received (``zk.batch_hashes``, a local Node witness
        computation with the batch circuit's hash calculator, made with ``zk.ensure_batch_hashes``);
        then calls ``verifyProof(proof, instances)`` with at most ``gas`` gas. True means every
        ``proven.logit_words[i]`` is the version's logit of ``rows[i]``.

        Args:
            subnet_id: The subnet.
            proven: What :meth:`GatewayClient.predict_proven_batch` returned.
            rows: The rows sent, shape (n, F), in the subnet's feature order.
            gas: Gas limit of the verifying call.

        Raises:
            InvalidInput: No SubnetRegistry address is known.
            ChainError: The node is unreachable.
            zk.SetupError, zk.ProofError: The local hash computation failed.
        """
        if "SubnetRegistry" not in self.addresses:
            raise InvalidInput("a SubnetRegistry address is required to check proofs")
        registry = self.w3.eth.contract(
            address=self.addresses["SubnetRegistry"], abi=load_artifact("SubnetRegistry").abi
        )
        read = registry.functions.modelVerifierOf(int(subnet_id), int(proven.model_version)).call
        verifier, commitment = self._read("reading the model's verifier", read)
        if int(verifier, 16) == 0 or to_checksum_address(verifier) != to_checksum_address(
            proven.verifier
        ):
            return False
        if len(proven.instances) != 3 or proven.instances[2] != int(commitment):
            return False
        if not rows or len(proven.logit_words) != len(rows):
            return False
        keys = ensure_batch_hashes(len(rows[0]))  # a compile, never the prover's setup
        try:
            hashes = batch_hashes(keys, rows, list(proven.logit_words), pad_logit=proven.pad_logit)
        except (FixedPointRangeError, ValueError):
            return False
        if (proven.instances[0], proven.instances[1]) != hashes:
            return False
        contract = self.w3.eth.contract(address=to_checksum_address(verifier), abi=VERIFY_PROOF_ABI)
        call = contract.functions.verifyProof(proven.proof, list(proven.instances))
        try:
            return bool(call.call({"gas": gas}))
        except (ContractLogicError, Web3RPCError, ValueError):
            return False
