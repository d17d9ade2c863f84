"""The billing guard every paid route calls: gate, reserve, run, receipt (or release).

Usage in an inference handler (issue 5)::

    async with services.billing.billed(caller, subnet_id, rows=len(rows)) as charge:
        response_body = await run_model(...)            # may raise: the price is released
        receipt = await charge.complete(request_body, response_body)
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway._auth import Caller
from gateway._chain import ChainReader, SubnetInfo
from gateway._errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InsufficientStake,
    NotAuthenticated,
    PaymentRequired,
    RateLimited,
)
from gateway._metrics import Metrics
from gateway._receipts import Receipt, ReceiptQueue, new_receipt_id
from gateway._settings import RateTier
from gateway._state import CredentialGone, State

__all__ = ["Billing", "Charge", "content_hash"]

MAX_ROWS_PER_REQUEST = 65_536
"""Most rows one request may bill (CKKS N=8192 packs 4096 slots; 16 such ciphertexts)."""


def content_hash(body: bytes) -> str:
    """SHA-256 of a request or response body, as receipts carry it (``contracts.merkle.Receipt``).

    SHA-256 (FIPS 180-4) rather than Keccak: clients check it with any standard library, and it
    costs about 1 µs per kilobyte here against 35 µs for a Keccak call through eth-hash.

    Args:
        body: Raw bytes.

    Returns:
        0x-hex bytes32.
    """
    return "0x" + hashlib.sha256(body).hexdigest()


@dataclass
class Charge:
    """A reserved price, waiting for the response.

    Attributes:
        caller: Who pays.
        subnet: The subnet serving it.
        rows: Rows billed.
        price_wei: Reserved amount, wei (``subnet.price_wei * rows``).
        receipt: The receipt, once :meth:`complete` ran.
    """

    caller: Caller
    subnet: SubnetInfo
    rows: int
    price_wei: int
    _billing: Billing = field(repr=False)
    receipt: Receipt | None = None

    async def complete(
        self, request_body: bytes, response_body: bytes, *, model_hash: str | None = None
    ) -> Receipt:
        """Turn the reservation into a receipt queued durably; call before responding.

        Args:
            request_body: Bytes the client sent (hashed into the receipt).
            response_body: Bytes about to be returned (hashed into the receipt).
            model_hash: 0x-hex hash of the model that answered, when it is not the
                subnet's current one on chain (a newer version still loading or refused).

        Returns:
            The queued receipt.

        Raises:
            ServiceUnavailable: The queue is full or down (the price is then released).
        """
        receipt = Receipt(
            receipt_id=new_receipt_id(),
            user=self.caller.address,
            subnet_id=self.subnet.subnet_id,
            model_hash=model_hash or self.subnet.model_hash,
            request_hash=content_hash(request_body),
            response_hash=content_hash(response_body),
            price_wei=self.price_wei,
            timestamp=int(self._billing.now_s()),
            rows=self.rows,
        )
        await self._billing.queue.append(receipt)
        self.receipt = receipt
        self._billing.metrics.billed_charged.inc()
        return receipt


class Billing:
    """Stake gate, rate limit, credit reservation and receipts.

    Args:
        state: Shared state (token buckets, outstanding amounts).
        chain: Chain reader (stake, subnet, spendable credit).
        queue: Durable receipt queue.
        metrics: Counters.
        tiers: Stake tiers, ascending by ``min_stake_wei``.
        now_s: Clock, seconds since the epoch (injectable).
        on_credential_gone: Called with :attr:`Caller.credential` when admission finds the
            caller's session or key gone (``Auth.forget``).
    """

    def __init__(
        self,
        state: State,
        chain: ChainReader,
        queue: ReceiptQueue,
        metrics: Metrics,
        tiers: tuple[RateTier, ...],
        now_s: Callable[[], float] = time.time,
        on_credential_gone: Callable[[str], None] = lambda credential: None,
    ) -> None:
        self.state = state
        self.chain = chain
        self.queue = queue
        self.metrics = metrics
        self.tiers = tiers
        self.now_s = now_s
        self.on_credential_gone = on_credential_gone

    def tier_for(self, stake_wei: int) -> RateTier:
        """The highest tier whose minimum the stake reaches.

        Args:
            stake_wei: Active stake, wei of ETH.

        Returns:
            The tier (the lowest one when none is reached).
        """
        chosen = self.tiers[0]
        for tier in self.tiers:
            if stake_wei >= tier.min_stake_wei:
                chosen = tier
        return chosen

    async def admit(self, caller: Caller, subnet_id: int, rows: int) -> Charge:
        """Gate and reserve: key scope, subnet, stake, rate, then credit, in that order.

        Args:
            caller: Authenticated caller.
            subnet_id: Subnet to bill.
            rows: Rows in the request (billing is per row), 1..65536.

        Returns:
            The reservation; the caller must :meth:`Charge.complete` or :meth:`release` it.

        Raises:
            BadRequest: Row count out of range.
            Forbidden: An API key scoped to other subnets.
            NotFound: No such subnet.
            Conflict: The subnet has no model yet.
            NotAuthenticated: The caller's session or key ended meanwhile (401).
            InsufficientStake: Stake below the subnet's minimum (403).
            RateLimited: Token bucket empty (429).
            PaymentRequired: Credit or cap does not cover the price (402).
        """
        if not 1 <= rows <= MAX_ROWS_PER_REQUEST:
            raise BadRequest(f"rows must be between 1 and {MAX_ROWS_PER_REQUEST}")
        if not caller.may_use_subnet(subnet_id):
            raise Forbidden(f"this API key may not be used on subnet {subnet_id}")
        user = caller.user
        cached = self.chain.cached_admission(subnet_id, user)
        if cached is not None:
            subnet, stake_wei, spendable_wei = cached
            if subnet.current_version == 0:
                raise Conflict(f"subnet {subnet_id} has no published model yet")
        else:
            subnet = await self.chain.subnet(subnet_id)
            if subnet.current_version == 0:
                raise Conflict(f"subnet {subnet_id} has no published model yet")
            stake_wei = await self.chain.stake_wei(caller.address)
            spendable_wei = -1  # read below, once the stake passed
        if stake_wei < subnet.min_stake_wei:
            raise InsufficientStake(
                f"subnet {subnet_id} needs {subnet.min_stake_wei} wei of active stake,"
                f" {caller.address} has {stake_wei}",
                extra={
                    "required_stake_wei": str(subnet.min_stake_wei),
                    "actual_stake_wei": str(stake_wei),
                },
            )
        tier = self.tier_for(stake_wei)
        price_wei = subnet.price_wei * rows
        if spendable_wei < 0:
            spendable_wei = await self.chain.spendable_wei(caller.address)
        try:
            wait_s, result = await self.state.admit(
                user,
                rate_per_s=tier.rate_per_s,
                burst=tier.burst,
                now_s=self.now_s(),
                amount_wei=price_wei,
                limit_wei=spendable_wei,
                credential=caller.credential,
            )
        except CredentialGone:
            assert caller.credential is not None
            self.on_credential_gone(caller.credential)
            if caller.via == "session":
                raise NotAuthenticated("the session has ended; sign in again") from None
            raise NotAuthenticated("unknown or revoked API key") from None
        if result is None:
            raise RateLimited(
                f"tier {tier.name} allows {tier.rate_per_s:g} requests/s (burst {tier.burst})",
                retry_after_s=wait_s,
            )
        if not result.ok:
            await self._refuse(caller, price_wei, spendable_wei, result.outstanding_wei)
        return Charge(caller, subnet, rows, price_wei, self)

    async def _refuse(
        self, caller: Caller, price_wei: int, spendable_wei: int, outstanding_wei: int
    ) -> None:
        view = await self.chain.credit_view(caller.address)
        credit_left = max(0, view.balance_wei - view.pending_withdrawal_wei)
        cap_left = view.cap_left_wei
        if view.cap_wei == 0:
            reason = "no spending authorisation: POST /v1/spending-authorizations"
        elif view.cap_expiry_s <= self.now_s():
            reason = "the spending authorisation has expired"
        elif cap_left <= credit_left:
            reason = "the signed spending cap is used up"
        else:
            reason = "not enough credit: deposit to InferenceLedger"
        missing = price_wei + outstanding_wei - view.spendable_wei
        raise PaymentRequired(
            reason,
            extra={
                "price_wei": str(price_wei),
                "missing_wei": str(max(1, missing)),
                "spendable_wei": str(view.spendable_wei),
                "outstanding_wei": str(outstanding_wei),
                "credit_wei": str(credit_left),
                "cap_left_wei": str(cap_left),
                "cap_expiry": view.cap_expiry_s,
            },
        )

    async def release(self, charge: Charge) -> None:
        """Give a reservation back (the request failed before its receipt).

        Args:
            charge: From :meth:`admit`, not completed.
        """
        await self.state.release(charge.caller.user, charge.price_wei)
        self.metrics.billed_released.inc()

    def billed(self, caller: Caller, subnet_id: int, rows: int) -> _Billed:
        """``async with``: admit, give the charge, and release it unless it was completed.

        Args:
            caller: Authenticated caller.
            subnet_id: Subnet to bill.
            rows: Rows in the request.

        Returns:
            An async context manager whose value is the charge (call
            :meth:`Charge.complete` before responding); on leaving, an uncompleted charge
            is released, whatever ended the block (an exception, a cancellation).
        """
        return _Billed(self, caller, subnet_id, rows)


class _Billed:
    """:meth:`Billing.billed`'s context manager.

    A class rather than ``contextlib.asynccontextmanager``: the generator-based one costs
    a generator, its frames and two extra resumptions per paid request (about 3 us here,
    cProfile of ``bench/gateway``), for the same ``try``/``finally``.
    """

    __slots__ = ("_billing", "_caller", "_charge", "_rows", "_subnet_id")

    def __init__(self, billing: Billing, caller: Caller, subnet_id: int, rows: int) -> None:
        self._billing = billing
        self._caller = caller
        self._subnet_id = subnet_id
        self._rows = rows
        self._charge: Charge | None = None

    async def __aenter__(self) -> Charge:
        self._charge = await self._billing.admit(self._caller, self._subnet_id, self._rows)
        return self._charge

    async def __aexit__(self, *exc_info: object) -> None:
        charge = self._charge
        if charge is not None and charge.receipt is None:
            await self._billing.release(charge)
