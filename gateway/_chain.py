"""Chain reads for the gate and billing, cached briefly and dropped on contract events."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak, to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import ContractLogicError

from gateway._cache import TTLCache
from gateway._errors import ConfigurationError, NotFound, ServiceUnavailable
from gateway._metrics import Metrics

__all__ = ["ChainReader", "CreditView", "SubnetInfo", "load_abi"]

_log = logging.getLogger("gateway.chain")

REQUIRED_CONTRACTS = ("StakingVault", "SubnetRegistry", "InferenceLedger")


def load_abi(name: str) -> list[dict[str, Any]]:
    """ABI of a 2PM contract from the committed artifacts.

    Args:
        name: Contract name, e.g. ``"InferenceLedger"``.

    Returns:
        The ABI list.
    """
    from contracts.deploy import load_artifact

    return list(load_artifact(name).abi)


@dataclass(frozen=True)
class SubnetInfo:
    """A subnet as the registry has it.

    Attributes:
        subnet_id: Id.
        name: Name.
        owner: EIP-55 owner address.
        price_wei: Price per request (row), wei.
        min_stake_wei: Minimum active stake to call it, wei of ETH.
        current_version: Current model version (0 before the first publication).
        model_hash: 0x-hex content hash of the current model (zero before publication).
        artifact_uri: Where the current model's artifact lives.
        feature_schema_hash: 0x-hex hash of the feature schema.
    """

    subnet_id: int
    name: str
    owner: str
    price_wei: int
    min_stake_wei: int
    current_version: int
    model_hash: str
    artifact_uri: str
    feature_schema_hash: str


@dataclass(frozen=True)
class CreditView:
    """Why a user can or cannot be charged, from ``InferenceLedger``.

    Attributes:
        balance_wei: Deposited credit.
        pending_withdrawal_wei: Credit promised to a pending withdrawal.
        cap_wei: ``maxTotalSpend`` of the signed authorisation (0 when none).
        cap_left_wei: What may still be debited under the authorisation.
        cap_expiry_s: Unix time the authorisation expires (0 when none).
        spendable_wei: ``spendableOf``: what may still be debited.
    """

    balance_wei: int
    pending_withdrawal_wei: int
    cap_wei: int
    cap_left_wei: int
    cap_expiry_s: int
    spendable_wei: int


def _topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


# Events that change a user's stake, by topic0 -> index of the topic holding the account.
_STAKE_EVENTS = {
    _topic("Staked(address,address,uint256,uint256)"): 1,
    _topic("WithdrawalRequested(uint256,address,address,uint256,uint64)"): 2,
    _topic("Withdrawn(uint256,address,address,uint256,uint256)"): 2,
}
_LEDGER_USER_EVENTS = {
    _topic("Deposited(address,address,uint256)"): 1,
    _topic("CreditWithdrawalRequested(address,uint256,uint64)"): 1,
    _topic("CreditWithdrawalCancelled(address)"): 1,
    _topic("CreditWithdrawn(address,uint256)"): 1,
    _topic("SpendingAuthorized(address,uint256,uint64,uint64)"): 1,
    _topic("SpendingRevoked(address)"): 1,
}


def _topic_address(topic: Any) -> str:
    raw = bytes(topic)
    return "0x" + raw[-20:].hex()


_HIT_KEYS = (("subnet", "hit"), ("stake", "hit"), ("spendable", "hit"))


class ChainReader:
    """Reads stake, subnets and credit; caches them and follows contract logs.

    Args:
        w3: Async web3 client.
        addresses: Contract name -> address (needs StakingVault, SubnetRegistry,
            InferenceLedger).
        metrics: Cache hit/miss counters.
        cache_ttl_s: Seconds a read is served from the cache.
        cache_max_entries: Bound of each cache.
        head_max_age_s: Seconds a head block read is shared by every caller in the process
            (:meth:`head_block`); the gateway passes ``event_poll_interval_s``, the period of
            its followers' polls. 0 (default): every call reads, only concurrent ones share.
        clock: Monotonic seconds (tests pass a fake).

    Raises:
        ConfigurationError: A required contract address is missing.
    """

    def __init__(
        self,
        w3: AsyncWeb3,
        addresses: dict[str, str],
        metrics: Metrics,
        *,
        cache_ttl_s: float = 5.0,
        cache_max_entries: int = 10_000,
        head_max_age_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        missing = [n for n in REQUIRED_CONTRACTS if n not in addresses]
        if missing:
            raise ConfigurationError(f"contract addresses missing: {', '.join(missing)}")
        self.w3 = w3
        try:
            self.addresses = {k: to_checksum_address(v) for k, v in addresses.items()}
        except ValueError as exc:
            raise ConfigurationError(f"a contract address is not an address: {exc}") from exc
        self.vault = w3.eth.contract(
            address=self.addresses["StakingVault"], abi=load_abi("StakingVault")
        )
        self.registry = w3.eth.contract(
            address=self.addresses["SubnetRegistry"], abi=load_abi("SubnetRegistry")
        )
        self.ledger = w3.eth.contract(
            address=self.addresses["InferenceLedger"], abi=load_abi("InferenceLedger")
        )
        self._metrics = metrics
        account_abi: Any = next(
            e for e in load_abi("InferenceLedger") if e.get("name") == "accountOf"
        )
        self._account_fields = [c["name"] for c in account_abi["outputs"][0]["components"]]
        self._stake: TTLCache[str, int] = TTLCache(cache_max_entries, cache_ttl_s)
        self._spendable: TTLCache[str, int] = TTLCache(cache_max_entries, cache_ttl_s)
        self._subnets: TTLCache[int, SubnetInfo] = TTLCache(cache_max_entries, cache_ttl_s)
        self._last_block: int | None = None
        self.head_max_age_s = head_max_age_s
        self._clock = clock
        self._head: tuple[float, int] | None = None  # (clock when asked, block): one value
        self._head_read: asyncio.Future[int] | None = None  # the one eth_blockNumber in flight
        self.restaking: Any = None
        """A :class:`gateway._restaking.RestakingReader` whose value adds to the vault's, or None."""

    @classmethod
    def connect(
        cls, rpc_url: str, addresses: dict[str, str], metrics: Metrics, **kwargs: Any
    ) -> ChainReader:
        """Build a reader over HTTP JSON-RPC.

        Args:
            rpc_url: JSON-RPC URL.
            addresses: Contract name -> address.
            metrics: Metrics.
            **kwargs: ``cache_ttl_s``, ``cache_max_entries``, ``head_max_age_s``.

        Returns:
            The reader.
        """
        w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
        return cls(w3, addresses, metrics, **kwargs)

    def _count(self, kind: str, hit: bool) -> None:
        key = (kind, "hit" if hit else "miss")
        counts = self._metrics.cache_counts
        counts[key] = counts.get(key, 0) + 1

    async def _call(self, fn: Any) -> Any:
        try:
            return await fn.call()
        except ContractLogicError:
            raise
        except Exception as exc:
            raise ServiceUnavailable("the chain is unreachable") from exc

    async def stake_wei(self, user: str) -> int:
        """Active stake of ``user`` (``StakingVault.stakedValueOf``), wei of ETH.

        Args:
            user: Address (any case).

        Returns:
            Wei of ETH.

        Raises:
            ServiceUnavailable: The chain is unreachable.
        """

        async def load() -> int:
            fn = self.vault.functions.stakedValueOf(to_checksum_address(user))
            value = int(await self._call(fn))
            if self.restaking is not None:
                value += await self.restaking.restaked_wei(user)
            return value

        value, hit = await self._stake.get_or_load(user.lower(), load)
        self._count("stake", hit)
        return value

    async def spendable_wei(self, user: str) -> int:
        """What ``user`` may still be charged (``InferenceLedger.spendableOf``), wei.

        Args:
            user: Address (any case).

        Returns:
            Wei.

        Raises:
            ServiceUnavailable: The chain is unreachable.
        """

        async def load() -> int:
            fn = self.ledger.functions.spendableOf(to_checksum_address(user))
            return int(await self._call(fn))

        value, hit = await self._spendable.get_or_load(user.lower(), load)
        self._count("spendable", hit)
        return value

    async def credit_view(self, user: str) -> CreditView:
        """The ledger's account, authorisation and withdrawal of ``user`` (uncached).

        Args:
            user: Address (any case).

        Returns:
            The view.

        Raises:
            ServiceUnavailable: The chain is unreachable.
        """
        addr = to_checksum_address(user)
        f = self.ledger.functions
        account, auth, pending, spendable = await asyncio.gather(
            self._call(f.accountOf(addr)),
            self._call(f.authorizationOf(addr)),
            self._call(f.pendingWithdrawalOf(addr)),
            self._call(f.spendableOf(addr)),
        )
        acc = dict(zip(self._account_fields, account, strict=False))
        if "capRemaining" in acc:
            cap_left = int(acc["capRemaining"])
            expiry = int(acc.get("expiry", auth[1]))
        else:  # earlier ledger layout: (balance, spent)
            cap_left = max(0, int(auth[0]) - int(acc.get("spent", 0)))
            expiry = int(auth[1])
        return CreditView(
            balance_wei=int(acc["balance"]),
            pending_withdrawal_wei=int(pending[0]),
            cap_wei=int(auth[0]),
            cap_left_wei=cap_left,
            cap_expiry_s=expiry,
            spendable_wei=int(spendable),
        )

    def cached_admission(self, subnet_id: int, user: str) -> tuple[SubnetInfo, int, int] | None:
        """The subnet, stake and spendable credit a paid request needs, when all are cached.

        The billing guard's fast path: three dictionary lookups and no await, where
        :meth:`subnet`, :meth:`stake_wei` and :meth:`spendable_wei` each cost a coroutine
        (and the two per-user reads a closure) even on a hit. On any miss it returns None
        and counts nothing; the caller then awaits those three, which load and count.

        Args:
            subnet_id: Subnet id.
            user: Lower-case address.

        Returns:
            ``(subnet, stake_wei, spendable_wei)``, or None unless all three are cached.
        """
        subnet = self._subnets.get(subnet_id)
        if subnet is None:
            return None
        stake = self._stake.get(user)
        if stake is None:
            return None
        spendable = self._spendable.get(user)
        if spendable is None:
            return None
        counts = self._metrics.cache_counts
        for key in _HIT_KEYS:
            counts[key] = counts.get(key, 0) + 1
        return subnet, stake, spendable

    async def subnet(self, subnet_id: int) -> SubnetInfo:
        """A subnet and its current model.

        Args:
            subnet_id: Id.

        Returns:
            The subnet.

        Raises:
            NotFound: No such subnet.
            ServiceUnavailable: The chain is unreachable.
        """
        if subnet_id < 1 or subnet_id >= 2**256:
            raise NotFound(f"no subnet {subnet_id}")
        info, hit = await self._subnets.get_or_load(subnet_id, lambda: self.read_subnet(subnet_id))
        self._count("subnet", hit)
        return info

    async def read_subnet(self, subnet_id: int) -> SubnetInfo:
        """:meth:`subnet` straight from ``SubnetRegistry`` (no cache; the model follower's read).

        Args:
            subnet_id: Id.

        Returns:
            The subnet and its current model.

        Raises:
            NotFound: No such subnet (or the registry reverts for it).
            ServiceUnavailable: The chain is unreachable.
        """
        if subnet_id < 1 or subnet_id >= 2**256:
            raise NotFound(f"no subnet {subnet_id}")
        try:
            s = await self._call(self.registry.functions.subnetOf(subnet_id))
            owner, _share, version, _created, price, min_stake, name = s
            model_hash = schema_hash = "0x" + "00" * 32
            uri = ""
            if version:
                m = await self._call(self.registry.functions.modelOf(subnet_id, version))
                model_hash = "0x" + bytes(m[0]).hex()
                schema_hash = "0x" + bytes(m[1]).hex()
                uri = str(m[4])
        except ContractLogicError as exc:
            raise NotFound(f"no subnet {subnet_id}") from exc
        return SubnetInfo(
            subnet_id=subnet_id,
            name=str(name),
            owner=to_checksum_address(owner),
            price_wei=int(price),
            min_stake_wei=int(min_stake),
            current_version=int(version),
            model_hash=model_hash,
            artifact_uri=uri,
            feature_schema_hash=schema_hash,
        )

    async def subnet_count(self) -> int:
        """Number of subnets (ids run from 1 to this).

        Returns:
            The count.
        """
        return int(await self._call(self.registry.functions.subnetCount()))

    def forget_user(self, user: str) -> None:
        """Drop a user's cached stake and credit.

        Args:
            user: Address (any case).
        """
        self._stake.drop(user.lower())
        self._spendable.drop(user.lower())

    def forget_spendable(self, user: str) -> None:
        """Drop a user's cached spendable credit (after a batch debited them).

        Args:
            user: Address (any case).
        """
        self._spendable.drop(user.lower())

    async def head_block(self) -> int:
        """The chain's head block number, shared by every reader in this gateway process.

        The registry follower (:mod:`gateway._models`) and this reader's event poll ask here,
        so one ``eth_blockNumber`` serves both (a receipt's confirmation depth, in
        :mod:`gateway._recorder`, still reads its own head, to report an exact depth):
        a value read less than ``head_max_age_s`` ago is returned as is, and callers arriving
        while a read is in flight wait for that read instead of sending their own. It keeps
        one value and at most one pending call; no thread.

        Returns:
            The block number (at most ``head_max_age_s`` old).

        Raises:
            ServiceUnavailable: The chain is unreachable (every waiter of that read gets it).
        """
        asked = self._clock()
        if self._head is not None and asked - self._head[0] < self.head_max_age_s:
            return self._head[1]
        pending = self._head_read
        if pending is not None:
            return await asyncio.shield(pending)
        read: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._head_read = read
        try:
            head = int(await self.w3.eth.block_number)
        except BaseException as exc:
            unavailable = ServiceUnavailable("the chain is unreachable")
            read.set_exception(unavailable)
            read.exception()  # retrieved: waiters get it through shield
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise unavailable from exc
        finally:
            self._head_read = None
        self._head = (asked, head)
        read.set_result(head)
        return head

    async def poll_events(self) -> int:
        """Read new logs of the three contracts once and drop the cache entries they touch.

        Returns:
            Number of logs seen.

        Raises:
            ServiceUnavailable: The chain is unreachable.
        """
        head = await self.head_block()
        try:
            if self._last_block is None:
                self._last_block = head
                return 0
            if head <= self._last_block:
                return 0
            logs = await self.w3.eth.get_logs(
                {
                    "fromBlock": self._last_block + 1,
                    "toBlock": head,
                    "address": [
                        self.addresses["StakingVault"],
                        self.addresses["SubnetRegistry"],
                        self.addresses["InferenceLedger"],
                    ],
                }
            )
        except Exception as exc:
            raise ServiceUnavailable("the chain is unreachable") from exc
        vault = self.addresses["StakingVault"].lower()
        registry = self.addresses["SubnetRegistry"].lower()
        for log in logs:
            topics = log["topics"]
            if not topics:
                continue
            t0 = "0x" + bytes(topics[0]).hex()
            where = str(log["address"]).lower()
            if where == vault:
                idx = _STAKE_EVENTS.get(t0)
                if idx is not None and len(topics) > idx:
                    self._stake.drop(_topic_address(topics[idx]))
                elif idx is None:  # token reconfigured: every value may change
                    self._stake.clear()
            elif where == registry:
                if len(topics) > 1:
                    self._subnets.drop(int.from_bytes(bytes(topics[1]), "big"))
            else:
                idx = _LEDGER_USER_EVENTS.get(t0)
                if idx is not None and len(topics) > idx:
                    self._spendable.drop(_topic_address(topics[idx]))
        self._last_block = head
        return len(logs)

    async def close(self) -> None:
        """Close the JSON-RPC session (and the L1 one of restaking)."""
        providers = [self.w3.provider]
        if self.restaking is not None:
            providers.append(self.restaking.w3.provider)
        for provider in providers:
            disconnect = getattr(provider, "disconnect", None)
            if disconnect is not None:
                await disconnect()

    async def follow_events(self, interval_s: float) -> None:
        """Poll logs forever (run as a background task).

        Args:
            interval_s: Seconds between polls.
        """
        while True:
            try:
                await self.poll_events()
            except ServiceUnavailable:
                _log.warning("event poll failed; retrying")
            await asyncio.sleep(interval_s)
