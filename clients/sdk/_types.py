"""Typed views of what the gateway and the chain answer (wei as Python ints, never floats)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from contracts.merkle import Receipt

__all__ = [
    "ApiKey",
    "BatchInfo",
    "CreditState",
    "Me",
    "NewApiKey",
    "Prediction",
    "ReceiptCheck",
    "ReceiptRecord",
    "SignedSpendingAuthorization",
    "StakeWithdrawal",
    "Subnet",
]


def _opt_int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    return None if value is None else int(value)


def _hex32(value: str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError("expected 32 bytes of hex")
    return raw


@dataclass(frozen=True)
class Me:
    """``GET /v1/me``: who the gateway thinks you are, and what you may spend.

    Attributes:
        address: EIP-55 address of the session or of the API key's owner.
        via: ``"session"`` or ``"key"``.
        key_id: The API key's id when ``via == "key"``.
        outstanding_wei: Billed by the gateway but not yet recorded on chain.
        stake_wei: Active stake in wei of ETH (None when the gateway has no chain).
        tier: Rate tier name.
        credit_wei: Deposited credit in the InferenceLedger.
        pending_withdrawal_wei: Credit promised to a pending withdrawal.
        cap_wei: ``maxTotalSpend`` of the signed spending authorisation (0: none).
        cap_left_wei: What may still be debited under it.
        cap_expiry: Unix time (s) it expires.
        spendable_wei: What the ledger would still let the operator debit.
    """

    address: str
    via: str
    key_id: str | None
    outstanding_wei: int
    stake_wei: int | None = None
    tier: str | None = None
    credit_wei: int | None = None
    pending_withdrawal_wei: int | None = None
    cap_wei: int | None = None
    cap_left_wei: int | None = None
    cap_expiry: int | None = None
    spendable_wei: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Me:
        """Parse the JSON body.

        Args:
            data: The decoded body.

        Returns:
            The view.

        Raises:
            KeyError, ValueError, TypeError: A field is missing or malformed.
        """
        return cls(
            address=str(data["address"]),
            via=str(data["via"]),
            key_id=data.get("key_id"),
            outstanding_wei=int(data.get("outstanding_wei", 0)),
            stake_wei=_opt_int(data, "stake_wei"),
            tier=data.get("tier"),
            credit_wei=_opt_int(data, "credit_wei"),
            pending_withdrawal_wei=_opt_int(data, "pending_withdrawal_wei"),
            cap_wei=_opt_int(data, "cap_wei"),
            cap_left_wei=_opt_int(data, "cap_left_wei"),
            cap_expiry=_opt_int(data, "cap_expiry"),
            spendable_wei=_opt_int(data, "spendable_wei"),
        )


@dataclass(frozen=True)
class ApiKey:
    """An API key's public record (``GET /v1/keys``).

    Attributes:
        id: Key id (16 hex digits).
        name: The owner's label.
        owner: EIP-55 address of the owner.
        subnets: Subnet ids the key may bill, or None for every subnet.
        created_at: Unix time (s).
    """

    id: str
    name: str
    owner: str
    subnets: tuple[int, ...] | None
    created_at: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ApiKey:
        """Parse one key record.

        Args:
            data: The decoded record.

        Returns:
            The key.

        Raises:
            KeyError, ValueError, TypeError: A field is missing or malformed.
        """
        subnets = data.get("subnets")
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            owner=str(data["owner"]),
            subnets=None if subnets is None else tuple(int(s) for s in subnets),
            created_at=int(data["created_at"]),
        )


@dataclass(frozen=True)
class NewApiKey(ApiKey):
    """A key just created: its record plus the secret, shown only this once.

    Attributes:
        secret: The bearer token ``twopm_<id>_<secret>``; store it like a password.
    """

    secret: str = field(default="", repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NewApiKey:
        """Parse ``POST /v1/keys``.

        Args:
            data: The decoded body.

        Returns:
            The key with its secret.

        Raises:
            KeyError, ValueError, TypeError: A field is missing or malformed.
        """
        base = ApiKey.from_json(data)
        return cls(base.id, base.name, base.owner, base.subnets, base.created_at, str(data["key"]))


@dataclass(frozen=True)
class Subnet:
    """A published subnet (``GET /v1/subnets/{id}``).

    Attributes:
        id: Subnet id.
        name: Name.
        owner: EIP-55 address of the model owner.
        price_per_row_wei: Price of one predicted row, wei.
        min_stake_wei: Active stake needed to call it, wei of ETH.
        model_version: Current model version (0: nothing published).
        model_hash: 0x-hex content hash of the current model.
        feature_names: Feature order the model expects (empty if not advertised).
        ckks: The advertised CKKS parameters (``CkksParams.to_dict`` form), or None.
        raw: The whole JSON object, for fields this SDK does not know yet.
    """

    id: int
    name: str
    owner: str
    price_per_row_wei: int
    min_stake_wei: int
    model_version: int
    model_hash: str
    feature_names: tuple[str, ...] = ()
    ckks: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Subnet:
        """Parse one subnet object.

        ``price_per_row_wei`` is also read as ``price_wei``; the CKKS parameters as
        ``ckks`` or ``ckks_params``; the features as ``feature_names`` or ``features``.

        Args:
            data: The decoded object.

        Returns:
            The subnet.

        Raises:
            KeyError, ValueError, TypeError: A field is missing or malformed.
        """
        price = data.get("price_per_row_wei", data.get("price_wei"))
        if price is None:
            raise KeyError("price_per_row_wei")
        ckks = data.get("ckks", data.get("ckks_params"))
        features = data.get("feature_names", data.get("features")) or ()
        return cls(
            id=int(data["id"]),
            name=str(data.get("name", "")),
            owner=str(data.get("owner", "")),
            price_per_row_wei=int(price),
            min_stake_wei=int(data.get("min_stake_wei", 0)),
            model_version=int(data.get("model_version", 0)),
            model_hash=str(data.get("model_hash", "")),
            feature_names=tuple(str(f) for f in features),
            ckks=dict(ckks) if isinstance(ckks, Mapping) else None,
            raw=dict(data),
        )


@dataclass(frozen=True)
class Prediction:
    """Probabilities for a batch of rows, and the receipts that billed them.

    Attributes:
        probabilities: float64 array of shape (n_rows,), P(y = 1 | x) per row.
        logits: float64 array of shape (n_rows,), w.x + b (None if the gateway did not
            return them).
        receipt_ids: One 0x-hex receipt id per request sent (large batches are split).
        layout: ``"plain"``, or the CKKS layout used: ``"row"``, ``"coeff"``, ``"column"``.
        param_set: The named CKKS parameter set used (``"compact"``, ``"precise"``), or None.
    """

    probabilities: npt.NDArray[np.float64]
    logits: npt.NDArray[np.float64] | None
    receipt_ids: tuple[str, ...]
    layout: str
    param_set: str | None = None


@dataclass(frozen=True)
class ProvenBatch:
    """Several rows' predictions with one zk batch proof of their logits (``?proof=true``, 2-24 rows).

    Attributes:
        probabilities: P(y = 1 | x) per row as the gateway computed it, shape (n,).
        logits: w.x + b per row as the gateway computed it, shape (n,).
        proven_logits: The logits the proof shows (decoded), shape (n,).
        logit_words: Those logits as field elements (what the proof hashes), shape (n,).
        pad_logit: Logit of the zero rows padding the batch (the intercept, field element).
        proof: Groth16 proof bytes (256).
        instances: ``(inputs_hash, logits_hash, model_commitment)``, field elements.
        verifier: Address answering ``verifyProof(bytes proof, uint256[] instances)``.
        model_commitment: The version's parameter commitment the gateway names.
        model_version: The version that answered.
        proving_s: Seconds the gateway's prover spent.
        receipt_id: 0x-hex receipt id of the billed request.
    """

    probabilities: tuple[float, ...]
    logits: tuple[float, ...]
    proven_logits: tuple[float, ...]
    logit_words: tuple[int, ...]
    pad_logit: int
    proof: bytes
    instances: tuple[int, ...]
    verifier: str
    model_commitment: int
    model_version: int
    proving_s: float
    receipt_id: str | None


@dataclass(frozen=True)
class ProvenPrediction:
    """One row's prediction with a zk proof that the model version produced its logit.

    Attributes:
        probability: P(y = 1 | x) as the gateway computed it (onnxruntime).
        logit: w.x + b as the gateway computed it.
        proven_logit: The logit the proof shows (fixed point, 2^-56 resolution, decoded).
        proof: Groth16 proof bytes (256), ``abi.encode(uint256[2], uint256[2][2], uint256[2])``.
        instances: Public signals ``(logit, model_commitment, inputs_hash)``, field elements
            (``inputs_hash``: Poseidon chain over the fixed-point features, ``zk.inputs_hash``).
        verifier: Address answering ``verifyProof(bytes proof, uint256[] instances)``.
        model_commitment: The version's parameter commitment the gateway names.
        model_version: The version that answered.
        proving_s: Seconds the gateway's prover spent.
        receipt_id: 0x-hex receipt id of the billed request.
    """

    probability: float
    logit: float
    proven_logit: float
    proof: bytes
    instances: tuple[int, ...]
    verifier: str
    model_commitment: int
    model_version: int
    proving_s: float
    receipt_id: str | None


@dataclass(frozen=True)
class BatchInfo:
    """The batch a receipt was put in, and how far it got.

    Attributes:
        status: ``open``, ``recorded`` or ``failed``.
        batch_id: On-chain batch id once mined.
        subnet_id: Subnet.
        root: 0x-hex Merkle root the gateway computed.
        tx_hash: The recording transaction.
        block_number: Block it was mined in.
        size: Receipts in the batch.
        error: Why it failed, if it did.
    """

    status: str
    batch_id: int | None
    subnet_id: int
    root: str
    tx_hash: str | None
    block_number: int | None
    size: int
    error: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchInfo:
        """Parse the ``batch`` member of ``GET /v1/receipts/{id}``.

        Args:
            data: The decoded object.

        Returns:
            The batch.

        Raises:
            KeyError, ValueError, TypeError: A field is missing or malformed.
        """
        return cls(
            status=str(data["status"]),
            batch_id=_opt_int(data, "batch_id"),
            subnet_id=int(data["subnet_id"]),
            root=str(data["root"]),
            tx_hash=data.get("tx_hash"),
            block_number=_opt_int(data, "block_number"),
            size=int(data.get("size", 0)),
            error=data.get("error"),
        )


@dataclass(frozen=True)
class ReceiptRecord:
    """``GET /v1/receipts/{id}``: a receipt, where it stands, and its Merkle proof.

    Attributes:
        receipt: The receipt's on-chain fields (its leaf is ``receipt.leaf()``).
        rows: Rows billed by it.
        status: ``queued``, ``batched``, ``recorded`` or ``failed``.
        batch: Its batch, once batched.
        leaf: 0x-hex leaf as the gateway computed it, once recorded.
        proof: 32-byte sibling hashes up to the batch root, once recorded.
    """

    receipt: Receipt
    rows: int
    status: str
    batch: BatchInfo | None
    leaf: str | None
    proof: tuple[bytes, ...] | None

    @property
    def receipt_id(self) -> str:
        """0x-hex receipt id."""
        return "0x" + self.receipt.receipt_id.hex()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReceiptRecord:
        """Parse the body.

        Args:
            data: The decoded body.

        Returns:
            The record.

        Raises:
            KeyError, ValueError, TypeError: A field is missing or malformed.
        """
        r = data["receipt"]
        receipt = Receipt(
            receipt_id=_hex32(r["receipt_id"]),
            user=str(r["user"]),
            subnet_id=int(r["subnet_id"]),
            model_hash=_hex32(r["model_hash"]),
            request_hash=_hex32(r["request_hash"]),
            response_hash=_hex32(r["response_hash"]),
            price_wei=int(r["price_wei"]),
            timestamp=int(r["timestamp"]),
        )
        batch = data.get("batch")
        proof = data.get("proof")
        return cls(
            receipt=receipt,
            rows=int(r.get("rows", 1)),
            status=str(data["status"]),
            batch=None if batch is None else BatchInfo.from_json(batch),
            leaf=data.get("leaf"),
            proof=None if proof is None else tuple(_hex32(p) for p in proof),
        )


@dataclass(frozen=True)
class ReceiptCheck:
    """The outcome of checking a receipt against the root recorded on chain.

    Attributes:
        valid: True when the proof takes the receipt's leaf to the on-chain root, both
            by local hashing and by ``InferenceLedger.verifyReceipt``.
        reason: Why it is not valid (None when valid).
        batch_id: On-chain batch id.
        root: 0x-hex root read from the chain (None if it could not be read).
        leaf: 0x-hex leaf computed here from the receipt's fields.
        proven_locally: The local Merkle check passed.
        proven_on_chain: ``InferenceLedger.verifyReceipt`` returned true.
    """

    valid: bool
    reason: str | None
    batch_id: int | None
    root: str | None
    leaf: str
    proven_locally: bool = False
    proven_on_chain: bool = False

    def __bool__(self) -> bool:
        return self.valid


@dataclass(frozen=True)
class SignedSpendingAuthorization:
    """An EIP-712 ``SpendingAuthorization`` signed by its user.

    Attributes:
        user: EIP-55 address that authorises spending.
        max_total_spend_wei: Most the operator may debit under it, wei.
        expiry: Unix time (s) after which nothing may be debited.
        nonce: Above the user's previous authorisation nonce.
        signature: 65 bytes ``r || s || v``.
        ledger: The InferenceLedger address it is bound to (EIP-712 domain).
        chain_id: The chain it is bound to.
    """

    user: str
    max_total_spend_wei: int
    expiry: int
    nonce: int
    signature: bytes = field(repr=False)
    ledger: str = ""
    chain_id: int = 0

    def to_json(self) -> dict[str, Any]:
        """The body ``POST /v1/spending-authorizations`` takes.

        Returns:
            ``{user, max_total_spend_wei (decimal string), expiry, nonce, signature (0x-hex)}``.
        """
        return {
            "user": self.user,
            "max_total_spend_wei": str(self.max_total_spend_wei),
            "expiry": self.expiry,
            "nonce": self.nonce,
            "signature": "0x" + self.signature.hex(),
        }


@dataclass(frozen=True)
class CreditState:
    """A user's account in the InferenceLedger.

    Attributes:
        balance_wei: Deposited credit.
        cap_remaining_wei: What may still be debited under the current authorisation.
        expiry: Unix time (s) the authorisation expires (0: none).
        max_total_spend_wei: ``maxTotalSpend`` of the current authorisation.
        nonce: Nonce of the current authorisation (the next one must be larger).
        pending_withdrawal_wei: Credit promised to a pending withdrawal.
        withdrawal_ready_at: Unix time (s) it may be withdrawn (0: none pending).
        spendable_wei: What the operator may still debit (``spendableOf``).
        claimable_wei: Payouts this address may claim.
    """

    balance_wei: int
    cap_remaining_wei: int
    expiry: int
    max_total_spend_wei: int
    nonce: int
    pending_withdrawal_wei: int
    withdrawal_ready_at: int
    spendable_wei: int
    claimable_wei: int


@dataclass(frozen=True)
class StakeWithdrawal:
    """A StakingVault withdrawal request not paid out yet (``StakingVault.withdrawalRequest``).

    Attributes:
        request_id: The vault's request id (pass it to ``ChainClient.withdraw``).
        token: EIP-55 address of the staked token.
        shares: Share units requested (Lido shares for stETH, token units otherwise).
        ready_at: Unix time (s, chain clock) the cooldown ends.
    """

    request_id: int
    token: str
    shares: int
    ready_at: int
