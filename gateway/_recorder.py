"""The recorder: receipts -> Merkle batches -> ``InferenceLedger.recordBatch`` via the signer.

Crash safety, step by step:

1. Candidates are grouped per subnet into batches that are written durably (``open``) with
   their receipt ids and Merkle root before anything is signed.
2. Each open batch is sent with :class:`contracts.Transactor` (signing with ``signer.RemoteSigner``) under the idempotency key
   ``gw-batch-<key>``: the signer returns the same signed bytes for the same key, even after
   a restart, so a batch is mined at most once.
3. Only after the transaction is mined (status 1) *and* buried under enough blocks
   (:func:`required_confirmations`: 18 on Scroll, whose blocks can be reorganised up to 17 deep
   before L1 finality) is the batch completed: the users' outstanding amounts are released
   (once per batch key, ``State.release_batch``), then its receipts become ``recorded`` and
   leave the queue. Until then the batch stays ``open`` with its transaction hash and block;
   each tick looks the transaction up again, and if a reorganisation dropped it, the batch
   loses its hash and block and is sent again under the same key (the very same signed bytes,
   same nonce), so its receipts go back to waiting and are recorded once.

A crash before the end of 3 leaves the batch ``open``; the next start resumes it with the
same key, and the release is not repeated.

Several replicas on one Redis: only the holder of the recorder lease (``gateway._lease``)
ticks. Its fencing token is checked in the script that moves the cursor and creates the
batches (step 1) and again right before each batch is sent to the signer (step 2), so a
recorder that lost its lease (paused past the TTL, partitioned) cuts nothing and signs
nothing more; a batch it cut before is resumed by the new holder under the same key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, cast

import anyio.to_thread
from eth_typing import HexStr
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3

from contracts.merkle import MerkleTree
from core.transactions import TransactionFailed, TransactionReverted, WouldRevert
from gateway._chain import load_abi
from gateway._errors import BadRequest, UpstreamError
from gateway._lease import Fence, LocalLease, RecorderLease, RedisLease
from gateway._receipts import BatchRecord, Receipt, StoredReceipt

if TYPE_CHECKING:
    from gateway._services import Services

__all__ = [
    "SCROLL_CONFIRMATIONS",
    "Recorder",
    "confirmations_of",
    "leaf_of",
    "required_confirmations",
    "tree_of",
    "unaffordable_reason",
]

SCROLL_CONFIRMATIONS = 18
"""Default depth: Scroll documented reorgs of up to 17 blocks before L1 finality (2024; its
``safe`` tag is unsupported and ``finalized`` needs ``--rollup.verify``, see docs/gateway.md)."""


def required_confirmations(configured: int, client_version: str) -> int:
    """The confirmation depth a batch needs before it counts as recorded.

    Args:
        configured: ``GatewaySettings.confirmations``; 0 picks the default.
        client_version: The node's ``web3_clientVersion``.

    Returns:
        ``configured`` when positive; else 1 on anvil (a local chain that mines only when a
        transaction arrives and never reorganises by itself) and :data:`SCROLL_CONFIRMATIONS`
        on any other node.
    """
    if configured > 0:
        return configured
    return 1 if client_version.lower().startswith("anvil") else SCROLL_CONFIRMATIONS


_DEPTHS: dict[tuple[str, int], int] = {}
"""Resolved depth per (RPC URL, configured value); bounded by the settings a process has."""


async def confirmations_of(services: Services, batch: BatchRecord) -> dict[str, int]:
    """How deep ``batch``'s transaction is, for ``GET /v1/receipts/{id}``.

    Returns:
        ``confirmations`` (0 until mined; head - block + 1 after) and ``confirmations_required``.
    """
    chain = services.chain
    if chain is None:
        return {"confirmations": 0, "confirmations_required": services.settings.confirmations}
    where = (services.settings.rpc_url or "", services.settings.confirmations)
    try:
        if where not in _DEPTHS:
            version = str(await chain.w3.client_version)
            _DEPTHS[where] = required_confirmations(services.settings.confirmations, version)
        head = int(await chain.w3.eth.block_number) if batch.block_number is not None else 0
    except Exception:  # the chain is down: report what is known
        head = 0
    required = _DEPTHS.get(where, services.settings.confirmations)
    depth = head - batch.block_number + 1 if batch.block_number is not None and head else 0
    return {"confirmations": max(depth, 0), "confirmations_required": required}


_SPENDABLE_BATCH = 100
"""``spendableOf`` calls per JSON-RPC batch when a cut spans many users."""

_log = logging.getLogger("gateway.recorder")

_TREE_CACHE_MAX = 256
"""Merkle trees of recent batches kept for proofs (batches, least recently used evicted)."""


async def _in_thread(fn: Any, *args: Any) -> Any:
    """Run blocking web3/signer calls off the loop; cancelling abandons the thread."""
    return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)


def revert_reason(exc: BaseException) -> str:
    """Name the contract revert of a :class:`~core.transactions.WouldRevert` in an exception chain.

    Args:
        exc: The error, usually the transactor's ``WouldRevert`` (revert data as bytes).

    Returns:
        The decoded custom error (``InferenceLedgerStaleNonce(...)``), or the exception text cut
        to 200 characters when no error in the chain carries known revert data.
    """
    from contracts import revert_error

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, WouldRevert):
            decoded = revert_error(seen.data)
            if decoded is not None:
                return str(decoded)
        seen = seen.__cause__ or seen.__context__
    return str(exc)[:200]


def leaf_of(receipt: Receipt) -> bytes:
    """The receipt's Merkle leaf, as ``InferenceLedger.receiptLeaf`` computes it.

    Args:
        receipt: The receipt.

    Returns:
        32 bytes.
    """
    return receipt.on_chain().leaf()


def unaffordable_reason(batch: BatchRecord) -> str:
    """Why the receipts of a batch cut from unaffordable receipts failed."""
    return (
        f"{len(batch.receipt_ids)} receipt(s) exceed what InferenceLedger.spendableOf allows "
        "their users now (cap revoked or expired, or credit withdrawn): not recorded"
    )


def tree_of(receipts: list[Receipt]) -> MerkleTree:
    """The OpenZeppelin-compatible tree of a batch.

    Args:
        receipts: The batch's receipts.

    Returns:
        The tree.
    """
    return MerkleTree([leaf_of(r) for r in receipts])


class Recorder:
    """Batches receipts and records them on chain; also runs the settlement job.

    Args:
        services: The app's services (queue, state, chain reader, metrics, settings).
        transactor: A ``contracts.Transactor`` signing with ``signer.RemoteSigner``, bound to a
            synchronous web3.
        w3: Synchronous web3 (for the ledger contract object).
        lease: Who may record; by default a :class:`RedisLease` of ``recorder_lease_ttl_s``
            when the state is in Redis, else a :class:`LocalLease`.
    """

    def __init__(
        self, services: Services, transactor: Any, w3: Web3, lease: RecorderLease | None = None
    ) -> None:
        self._s = services
        if lease is None:
            redis = getattr(services.state, "redis", None)
            lease = (
                RedisLease(
                    redis,
                    services.settings.redis_namespace,
                    ttl_s=services.settings.recorder_lease_ttl_s,
                )
                if services.state.shared and redis is not None
                else LocalLease()
            )
        self.lease = lease
        """The recorder lease (tests look at it)."""
        self._tx = transactor
        self._w3 = w3
        addresses = services.settings.contract_addresses()
        self._ledger = w3.eth.contract(
            address=to_checksum_address(addresses["InferenceLedger"]),
            abi=load_abi("InferenceLedger"),
        )
        self._registry = w3.eth.contract(
            address=to_checksum_address(addresses["SubnetRegistry"]),
            abi=load_abi("SubnetRegistry"),
        )
        self._trees: OrderedDict[str, MerkleTree] = OrderedDict()
        self._backoff_s = 0.0
        self._authorization_budget: int | None = None
        self._depth: int | None = None

    @classmethod
    def from_services(cls, services: Services) -> Recorder:
        """Build from settings: signer URL, caller id and secret, RPC URL.

        Args:
            services: The app's services.

        Returns:
            The recorder.
        """
        from contracts import Transactor
        from signer import RemoteSigner, SignerClient

        s = services.settings
        assert s.signer_url and s.signer_secret and s.rpc_url
        w3 = Web3(HTTPProvider(s.rpc_url, request_kwargs={"timeout": 30}))
        client = SignerClient(s.signer_url, s.signer_caller_id, s.signer_secret)
        return cls(
            services, Transactor(w3, RemoteSigner(client), receipt_timeout_s=s.tx_timeout_s), w3
        )

    # ------------------------------------------------------------------ batching

    async def tick(self) -> int:
        """Resume open batches, then cut and record new ones if due.

        Only the holder of the recorder lease does anything; the others return 0.

        Returns:
            Number of receipts recorded in this tick.
        """
        fence = await self.lease.acquire()
        self._s.metrics.recorder_leader.set(0 if fence is None else 1)
        if fence is None:
            return 0
        recorded = 0
        for batch in await self._s.queue.open_batches():
            recorded += await self._record(batch, fence)
        s = self._s.settings
        candidates, cursor = await self._s.queue.candidates(s.batch_max_receipts)
        if not candidates:
            return recorded
        age_s = time.time() - candidates[0].enqueued_at
        if len(candidates) < s.batch_max_receipts and age_s < s.batch_max_age_s:
            return recorded
        affordable, unaffordable = await self._split_affordable(candidates)
        batches = self._cut(affordable)
        refused = self._cut(unaffordable)
        if not await self._s.queue.create_batches(batches + refused, cursor, fence):
            _log.warning("recorder lease lost before cutting; another replica records")
            return recorded
        for batch in refused:
            await self._fail(batch, await self._receipts(batch), unaffordable_reason(batch))
        for batch in batches:
            recorded += await self._record(batch, fence)
        return recorded

    async def _split_affordable(
        self, candidates: list[StoredReceipt]
    ) -> tuple[list[StoredReceipt], list[StoredReceipt]]:
        """Receipts the ledger will accept, and those it would refuse.

        ``recordBatch`` reverts as a whole if one user's debit exceeds
        ``InferenceLedger.spendableOf(user)`` (a cap revoked or expired, credit withdrawn
        after the gateway admitted the call on its cached view). So each user's receipts
        are taken in arrival order while they fit what the ledger says now; the rest fail
        on their own instead of taking every other user's receipts down with them.

        Args:
            candidates: Receipts in arrival order.

        Returns:
            (affordable, unaffordable), each in arrival order.
        """
        users = sorted({c.receipt.user.lower() for c in candidates})
        spendable = await _in_thread(self._spendable_of, users)
        affordable: list[StoredReceipt] = []
        unaffordable: list[StoredReceipt] = []
        for c in candidates:
            user = c.receipt.user.lower()
            if c.receipt.price_wei <= spendable[user]:
                spendable[user] -= c.receipt.price_wei
                affordable.append(c)
            else:
                unaffordable.append(c)
        return affordable, unaffordable

    def _spendable_of(self, users: list[str]) -> dict[str, int]:
        """``InferenceLedger.spendableOf`` of each user, 100 calls per HTTP round trip.

        Uses JSON-RPC 2.0 batches (spec §6) through web3.py's ``batch_requests``.

        Args:
            users: Lower-case addresses.

        Returns:
            Address -> spendable wei.
        """
        spendable: dict[str, int] = {}
        for start in range(0, len(users), _SPENDABLE_BATCH):
            chunk = users[start : start + _SPENDABLE_BATCH]
            with self._w3.batch_requests() as batch:
                for user in chunk:
                    batch.add(self._ledger.functions.spendableOf(to_checksum_address(user)))
                values = cast(list[Any], batch.execute())  # decoded call results
            spendable.update(zip(chunk, (int(v) for v in values), strict=True))
        return spendable

    def _cut(self, candidates: list[StoredReceipt]) -> list[BatchRecord]:
        """One batch per subnet (none for no candidates)."""
        by_subnet: dict[int, list[Receipt]] = {}
        for c in candidates:
            by_subnet.setdefault(c.receipt.subnet_id, []).append(c.receipt)
        batches = []
        for subnet_id, receipts in by_subnet.items():
            tree = tree_of(receipts)
            key = f"{int(time.time() * 1000)}-{secrets.token_hex(6)}"
            self._remember(key, tree)
            batches.append(
                BatchRecord(
                    key=key,
                    subnet_id=subnet_id,
                    receipt_ids=[r.receipt_id for r in receipts],
                    root="0x" + tree.root.hex(),
                )
            )
        return batches

    def _remember(self, key: str, tree: MerkleTree) -> None:
        self._trees[key] = tree
        self._trees.move_to_end(key)
        while len(self._trees) > _TREE_CACHE_MAX:
            self._trees.popitem(last=False)

    async def _receipts(self, batch: BatchRecord) -> list[Receipt]:
        out = []
        for rid in batch.receipt_ids:
            stored = await self._s.queue.get(rid)
            if stored is None:  # cannot happen unless the store was wiped
                raise RuntimeError(f"receipt {rid} of batch {batch.key} is missing")
            out.append(stored.receipt)
        return out

    async def _record(self, batch: BatchRecord, fence: Fence) -> int:
        from signer import SignerRefused

        receipts = await self._receipts(batch)
        totals: dict[str, int] = {}
        rows = 0
        for r in receipts:
            checksummed = str(to_checksum_address(r.user))
            totals[checksummed] = totals.get(checksummed, 0) + r.price_wei
            rows += r.rows
        call = self._ledger.functions.recordBatch(
            batch.subnet_id,
            bytes.fromhex(batch.root[2:]),
            list(totals),
            list(totals.values()),
            min(rows, 2**32 - 1),
        )
        key = "gw-batch-" + batch.key
        if batch.tx_hash is not None and batch.block_number is not None:
            # Mined before: is it still in the chain, and deep enough?
            return await self._confirm(batch, receipts, totals)
        if not await self.lease.holds(fence):
            # Stop before signing: the new holder resumes this open batch under the same key.
            _log.warning("recorder lease lost; batch %s is left to its holder", batch.key)
            return 0
        try:
            receipt = await _in_thread(lambda: self._tx.transact(call, idempotency_key=key))
        except TransactionReverted as exc:
            return await self._fail(batch, receipts, f"reverted: {exc}")
        except WouldRevert as exc:
            signed = await _in_thread(lambda: self._tx.signer.client.record(key))
            if signed is None:
                # Never signed and the call would revert (a user's cap expired or credit
                # went away): record nobody's receipts under this root.
                return await self._fail(batch, receipts, revert_reason(exc))
            _log.warning("batch %s not recorded yet: %s", batch.key, exc)
            return 0
        except TransactionFailed as exc:
            _log.warning("batch %s not recorded yet: %s", batch.key, exc)
            return 0
        except SignerRefused as exc:
            _log.error("signer refused batch %s: %s", batch.key, exc)
            self._s.metrics.batches.labels("refused").inc()
            return 0
        events = self._ledger.events.BatchRecorded().process_receipt(receipt)
        batch.batch_id = int(events[0]["args"]["batchId"]) if events else None
        batch.tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        batch.block_number = int(receipt["blockNumber"])
        return await self._confirm(batch, receipts, totals)

    async def _confirm(
        self, batch: BatchRecord, receipts: list[Receipt], totals: dict[str, int]
    ) -> int:
        """Complete a mined batch once deep enough; re-open it if a reorg dropped it."""
        assert batch.tx_hash is not None and batch.block_number is not None
        tx_hash = batch.tx_hash
        required, head, mined = await _in_thread(lambda: self._chain_view(tx_hash))
        if mined is None:
            _log.warning(
                "batch %s: transaction %s is gone from the chain (reorganised); sending again",
                batch.key,
                batch.tx_hash,
            )
            batch.tx_hash = batch.block_number = batch.batch_id = None
            await self._s.queue.save_batch(batch)
            self._s.metrics.batches.labels("reorged").inc()
            return 0
        block, batch_id = mined
        if block != batch.block_number or (batch_id is not None and batch_id != batch.batch_id):
            batch.block_number, batch.batch_id = block, batch_id
        if head - block + 1 < required:
            await self._s.queue.save_batch(batch)  # open, with its hash and block
            return 0
        batch.status = "recorded"
        chain = self._s.chain
        for debited in totals:
            if chain is not None:
                chain.forget_spendable(debited)
        # Release first, once per batch key: a crash before finish_batch leaves the batch
        # open, its resumption releases nothing twice, then finishes it.
        await self._s.state.release_batch(
            batch.key, {u.lower(): amount for u, amount in totals.items()}
        )
        await self._s.queue.finish_batch(batch)
        self._s.metrics.batches.labels("recorded").inc()
        self._s.metrics.batch_receipts.inc(len(receipts))
        _log.info("batch %s recorded as #%s in %s", batch.key, batch.batch_id, batch.tx_hash)
        return len(receipts)

    async def _fail(self, batch: BatchRecord, receipts: list[Receipt], error: str) -> int:
        batch.status = "failed"
        batch.error = error
        totals: dict[str, int] = {}
        for r in receipts:
            totals[r.user.lower()] = totals.get(r.user.lower(), 0) + r.price_wei
        await self._s.state.release_batch(batch.key, totals)  # once, as in _record
        await self._s.queue.finish_batch(batch)
        self._s.metrics.batches.labels("failed").inc()
        _log.error("batch %s failed: %s", batch.key, error)
        return 0

    def _chain_view(self, tx_hash: str) -> tuple[int, int, tuple[int, int | None] | None]:
        """(required depth, head block, (block, batch id) of the mined transaction or None)."""
        if self._depth is None:
            self._depth = required_confirmations(
                self._s.settings.confirmations, str(self._w3.client_version)
            )
        head = int(self._w3.eth.block_number)
        try:
            receipt = self._w3.eth.get_transaction_receipt(HexStr(tx_hash))
        except Exception:  # TransactionNotFound: dropped by a reorganisation (or not seen yet)
            return self._depth, head, None
        if receipt is None or int(receipt["status"]) != 1:
            return self._depth, head, None
        events = self._ledger.events.BatchRecorded().process_receipt(receipt)
        batch_id = int(events[0]["args"]["batchId"]) if events else None
        return self._depth, head, (int(receipt["blockNumber"]), batch_id)

    def _transact(self, call: Any, key: str) -> Any:
        return self._tx.transact(call, idempotency_key=key)

    async def run_forever(self, interval_s: float = 0.25) -> None:
        """Tick forever (background task); errors are logged and retried with backoff.

        Args:
            interval_s: Seconds between ticks when idle.
        """
        try:
            while True:
                try:
                    await self.tick()
                    self._backoff_s = 0.0
                except Exception:
                    self._backoff_s = min(30.0, max(1.0, self._backoff_s * 2))
                    _log.exception("recorder tick failed; retrying in %.0f s", self._backoff_s)
                await asyncio.sleep(max(interval_s, self._backoff_s))
        finally:
            with contextlib.suppress(Exception):  # on shutdown: another replica takes over now
                await self.lease.release()

    # ------------------------------------------------------------------ authorisations

    async def authorization_budget_per_hour(self) -> int:
        """Spending-authorisation submissions allowed per hour, all addresses together.

        ``authorization_global_per_hour``, but never more than half the signer's
        ``max_tx_per_hour`` (read once from its policy), so that however the
        authorisations are spent the other half of the window stays for ``recordBatch``.

        Returns:
            Submissions per hour (at least 1).
        """
        if self._authorization_budget is None:
            wanted = self._s.settings.authorization_global_per_hour
            try:
                policy = await _in_thread(self._tx.signer.client.policy)
                signer_cap = int(policy["policy"]["limits"]["max_tx_per_hour"])
            except Exception as exc:  # signer down or odd: the setting alone, read again later
                _log.warning(
                    "signer policy unavailable (%s); authorisations capped by settings", exc
                )
                return max(1, wanted)
            self._authorization_budget = max(1, min(wanted, signer_cap // 2))
        return self._authorization_budget

    async def submit_authorization(
        self, user: str, cap_wei: int, expiry: int, nonce: int, signature: bytes
    ) -> str:
        """Submit a user's signed EIP-712 spending cap through the signer and wait for it.

        Args:
            user: The signing account (EOA or EIP-1271 wallet).
            cap_wei: ``maxTotalSpend``, wei.
            expiry: Unix time (s).
            nonce: Above the user's current authorisation nonce.
            signature: The user's signature over ``spendingAuthorizationDigest``.

        Returns:
            The mined transaction hash.

        Raises:
            BadRequest: The ledger would reject it (bad signature, stale nonce, expired).
            UpstreamError: The signer refused or the transaction failed.
        """
        from signer import ClientError

        call = self._ledger.functions.authorizeSpending(
            to_checksum_address(user), cap_wei, expiry, nonce, signature
        )
        key = f"gw-auth-{user.lower()}-{nonce}-{keccak(signature).hex()[:16]}"
        try:
            receipt = await _in_thread(self._transact, call, key)
        except WouldRevert as exc:
            raise BadRequest(
                f"the ledger refuses this authorisation: {revert_reason(exc)}"
            ) from exc
        except TransactionFailed as exc:
            raise UpstreamError("the authorisation transaction failed") from exc
        except ClientError as exc:
            raise UpstreamError(f"the signer refused: {exc}"[:300]) from exc
        if self._s.chain is not None:
            self._s.chain.forget_spendable(user)
        return "0x" + bytes(receipt["transactionHash"]).hex()

    # ------------------------------------------------------------------ proofs

    async def proof(self, batch: BatchRecord, receipt: Receipt) -> list[str]:
        """The Merkle proof of a receipt in its batch.

        Args:
            batch: The receipt's batch.
            receipt: The receipt.

        Returns:
            Sibling hashes, 0x-hex, for ``InferenceLedger.verifyReceipt``.
        """
        tree = self._trees.get(batch.key)
        if tree is None:
            tree = tree_of(await self._receipts(batch))
            self._remember(batch.key, tree)
        return ["0x" + p.hex() for p in tree.proof(leaf_of(receipt))]

    # ------------------------------------------------------------------ settlement

    async def settle_once(self) -> int:
        """Settle every subnet's current model version that has unsettled revenue.

        Only the holder of the recorder lease settles (one replica does it).

        Returns:
            Number of settlement transactions mined.
        """
        from signer import ClientError

        if await self.lease.acquire() is None:
            return 0

        count = int(await _in_thread(self._registry.functions.subnetCount().call))
        done = 0
        for subnet_id in range(1, count + 1):
            version = int(await _in_thread(self._registry.functions.currentVersion(subnet_id).call))
            if version == 0:
                continue
            revenue = await _in_thread(self._ledger.functions.revenueOf(subnet_id, version).call)
            if int(revenue[0]) == 0:
                continue
            # One key per (subnet, version, settled-so-far): a retry after a crash reuses it.
            key = f"gw-settle-{subnet_id}-{version}-{int(revenue[1])}"
            call = self._ledger.functions.settle(subnet_id, version)
            try:
                await _in_thread(self._transact, call, key)
            except (ClientError, TransactionFailed) as exc:
                self._s.metrics.settlements.labels("failed").inc()
                _log.warning("settling subnet %s v%s failed: %s", subnet_id, version, exc)
                continue
            self._s.metrics.settlements.labels("settled").inc()
            done += 1
        return done

    async def settle_forever(self) -> None:
        """Run :meth:`settle_once` every ``settle_interval_s`` (background task)."""
        while True:
            await asyncio.sleep(self._s.settings.settle_interval_s)
            try:
                await self.settle_once()
            except Exception:
                _log.exception("settlement run failed")
