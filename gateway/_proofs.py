"""Proofs of inference for ``POST /v1/subnets/{id}/predict?proof=true`` (see the ``zk`` package).

A proven answer carries a Groth16 proof that the model version's committed parameters map the row's
features to the returned logit, its public signals (``instances``), and the version's ``verifier``
address and ``model_commitment`` as ``SubnetRegistry.modelVerifierOf`` records them; anyone checks it
with ``verifyProof(proof, instances)`` on that address. Proofs are made in Node worker processes
behind a bounded queue (503 + Retry-After when full); the circuit keys are made once per feature
count at start-up (development keys: see ``zk._setup``) and kept by each worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable
from typing import Any, TypeVar

from gateway._errors import GatewayError, ServiceUnavailable
from gateway._onnx import LoadedModel
from gateway._settings import GatewaySettings
from zk import (
    BATCH_FEATURE_COUNTS,
    BATCH_ROWS,
    SUPPORTED_FEATURE_COUNTS,
    BatchCircuitKeys,
    BatchProof,
    CircuitKeys,
    FixedPointRangeError,
    LogitProof,
    ProofError,
    ProverBusy,
    ProverPool,
    SetupError,
    ensure_batch_keys,
    ensure_keys,
)

_log = logging.getLogger("gateway.proofs")
P = TypeVar("P")
ZERO_ADDRESS = "0x" + "00" * 20
_BATCH_VERIFIER_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "batchVerifier",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "address"}],
    }
]


class ProofUnsupported(GatewayError):
    """The model version has no verifier on chain, or the request cannot be proven as sent."""

    status_code = 422
    title = "Proof not available for this request"
    slug = "proof-unsupported"


class ProverOverloaded(ServiceUnavailable):
    """The prover queue is full or its keys are still being made; retry after ``retry_after_s``."""

    title = "Prover busy"
    slug = "prover-busy"

    def __init__(self, detail: str, *, retry_after_s: float) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        super().__init__(
            detail, headers={"Retry-After": str(seconds)}, extra={"retry_after_s": seconds}
        )


def word_hex(value: int) -> str:
    """A uint256 as 0x-prefixed 64 hex digits (how ``instances`` and commitments are written)."""
    return "0x" + int(value).to_bytes(32, "big").hex()


class ProofService:
    """The prover pool, the circuit keys and the on-chain verifier records the gateway uses.

    Args:
        settings: Gateway settings (``proof_*`` fields).
        chain: ``ChainReader`` (its ``registry`` contract answers ``modelVerifierOf``); None
            without a chain, when every proof request is refused.
    """

    def __init__(self, settings: GatewaySettings, chain: Any) -> None:
        self.settings = settings
        self.chain = chain
        self.pool = ProverPool(
            workers=settings.proof_workers,
            max_pending=max(settings.proof_max_pending, settings.proof_workers),
            timeout_s=settings.proof_timeout_s,
            msm_threads=settings.proof_msm_threads,
        )
        self._keys: dict[int, CircuitKeys] = {}
        self._batch_keys: dict[int, BatchCircuitKeys] = {}
        # verifier address -> whether it routes batch proofs (ModelProofVerifier.batchVerifier != 0);
        # fixed per address, bounded like _verifiers.
        self._batch_capable: dict[str, bool] = {}
        self._keys_failed: dict[int, str] = {}
        self._keys_task: asyncio.Task[None] | None = None
        # (subnet, version) -> (verifier, commitment); a record is fixed once set, so found ones
        # are kept (bounded by the number of versions served); missing ones are read again.
        self._verifiers: dict[tuple[int, int], tuple[str, int]] = {}
        self._max_verifiers = 1024

    async def start(self) -> None:
        """Make (or find in the cache) the keys of every supported shape, in the background."""
        if self.chain is not None and self._keys_task is None:
            self._keys_task = asyncio.create_task(self._prepare_keys())

    async def _prepare_keys(self) -> None:
        for n in SUPPORTED_FEATURE_COUNTS:
            try:
                keys = await asyncio.to_thread(ensure_keys, n, self.settings.proof_keys_dir)
            except (SetupError, OSError) as exc:
                self._keys_failed[n] = str(exc)
                _log.error("proof keys for %d features could not be made: %s", n, exc)
                continue
            try:
                # Parse the key and build its fixed-base tables now, not in the first proof
                # (requests for this shape meanwhile hear "still being prepared").
                await self.pool.prepare(keys)
            except ProofError as exc:  # the first proof loads the key instead
                _log.warning("proof keys for %d features not preloaded: %s", n, exc)
            self._keys[n] = keys
        for n in BATCH_FEATURE_COUNTS:
            try:
                self._batch_keys[n] = await asyncio.to_thread(
                    ensure_batch_keys, n, self.settings.proof_keys_dir
                )
            except (SetupError, OSError) as exc:
                _log.error("batch proof keys for %d features could not be made: %s", n, exc)

    async def stop(self) -> None:
        """Stop the key preparation and the prover workers."""
        if self._keys_task is not None:
            self._keys_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._keys_task
        await self.pool.close()

    async def verifier_of(self, subnet_id: int, version: int) -> tuple[str | None, int]:
        """The verifier and model commitment recorded for a model version.

        Returns:
            ``(address, commitment)``, or ``(None, 0)`` when none is recorded (or no chain).

        Raises:
            ServiceUnavailable: The chain is unreachable.
        """
        key = (int(subnet_id), int(version))
        found = self._verifiers.get(key)
        if found is not None:
            return found
        if self.chain is None or version < 1:
            return None, 0
        try:
            address, commitment = await self.chain.registry.functions.modelVerifierOf(
                key[0], key[1]
            ).call()
        except Exception as exc:
            raise ServiceUnavailable("the chain is unreachable") from exc
        if str(address).lower() == ZERO_ADDRESS:
            return None, 0
        if len(self._verifiers) >= self._max_verifiers:
            self._verifiers.pop(next(iter(self._verifiers)))
        self._verifiers[key] = (str(address), int(commitment))
        return self._verifiers[key]

    async def fields(self, subnet_id: int, version: int) -> dict[str, Any]:
        """``verifier`` and ``model_commitment`` for ``GET /v1/subnets/{id}`` (nulls when none)."""
        verifier, commitment = await self.verifier_of(subnet_id, version)
        return {
            "verifier": verifier,
            "model_commitment": word_hex(commitment) if verifier else None,
        }

    def check_capacity(self) -> None:
        """Refuse at once (before anything is reserved) when the prover queue is full.

        Raises:
            ProverOverloaded: The queue is full.
        """
        if self.pool.pending >= self.pool.max_pending:
            raise ProverOverloaded(
                f"{self.pool.pending} proofs queued or running (bound {self.pool.max_pending})",
                retry_after_s=self.settings.proof_retry_after_s,
            )

    async def prepare(self, subnet_id: int, version: int, model: LoadedModel) -> tuple[str, int]:
        """Check that a proof can be made for this version, before billing.

        Returns:
            ``(verifier, commitment)`` of the version.

        Raises:
            ProofUnsupported: No verifier recorded, or no circuit for the model's feature count.
            ProverOverloaded: Queue full, or the keys are still being made.
            ServiceUnavailable: The chain is unreachable.
        """
        verifier, commitment = await self.verifier_of(subnet_id, version)
        if verifier is None:
            raise ProofUnsupported(
                f"model version {version} of subnet {subnet_id} has no proof verifier recorded "
                "in SubnetRegistry"
            )
        if model.n_features not in SUPPORTED_FEATURE_COUNTS:
            raise ProofUnsupported(
                f"no circuit for {model.n_features} features (supported: "
                f"{', '.join(map(str, SUPPORTED_FEATURE_COUNTS))})"
            )
        if model.n_features in self._keys_failed:
            raise ServiceUnavailable(
                f"this gateway could not make its proving keys for {model.n_features} features"
            )
        if model.n_features not in self._keys:
            raise ProverOverloaded(
                "the proving keys are still being prepared",
                retry_after_s=self.settings.proof_retry_after_s,
            )
        self.check_capacity()
        return verifier, commitment

    async def prove(self, model: LoadedModel, row: list[float], commitment: int) -> LogitProof:
        """Prove one row's logit under the model's parameters.

        Raises:
            ProofUnsupported: A value outside the fixed-point range (422).
            ProverOverloaded: The queue filled up meanwhile.
            ServiceUnavailable: The prover failed, or the served model does not match the
                commitment recorded on chain.
        """
        keys = self._keys[model.n_features]
        job = self.pool.prove(keys, model.linear.weights, model.linear.intercept, row)
        proof = await self._proven(job)
        self._check_commitment(proof.model_commitment, commitment)
        return proof

    async def _proven(self, job: Awaitable[P]) -> P:
        """Await a prover job, its errors translated into problem responses (the one place).

        Args:
            job: A ``ProverPool.prove`` or ``prove_batch`` call, not yet awaited.

        Returns:
            What the job returns.

        Raises:
            ProofUnsupported: A value outside the fixed-point range (422).
            ProverOverloaded: The queue is full (503 with Retry-After ``proof_retry_after_s``).
            ServiceUnavailable: The prover failed or timed out (503).
        """
        try:
            return await job
        except FixedPointRangeError as exc:
            raise ProofUnsupported(str(exc)) from exc
        except ProverBusy as exc:
            raise ProverOverloaded(
                str(exc), retry_after_s=self.settings.proof_retry_after_s
            ) from exc
        except ProofError as exc:
            raise ServiceUnavailable(f"the proof could not be made: {exc}") from exc

    @staticmethod
    def _check_commitment(proven: int, recorded: int) -> None:
        """Raise ServiceUnavailable (503) when the proof's model commitment is not the chain's."""
        if proven != recorded:
            raise ServiceUnavailable(
                "the served model's parameters do not match the commitment recorded on chain"
            )

    async def _routes_batches(self, verifier: str) -> bool:
        found = self._batch_capable.get(verifier)
        if found is not None:
            return found
        contract = self.chain.w3.eth.contract(address=verifier, abi=_BATCH_VERIFIER_ABI)
        try:
            batch = await contract.functions.batchVerifier().call()
            capable = str(batch).lower() != ZERO_ADDRESS
        except Exception:  # a LogitProofVerifier has no batchVerifier(): one-row proofs only
            capable = False
        if len(self._batch_capable) >= self._max_verifiers:
            self._batch_capable.pop(next(iter(self._batch_capable)))
        self._batch_capable[verifier] = capable
        return capable

    async def prepare_batch(
        self, subnet_id: int, version: int, model: LoadedModel, n_rows: int
    ) -> tuple[str, int]:
        """Check that ``n_rows`` rows can be proven with one batch proof, before billing.

        Returns:
            ``(verifier, commitment)`` of the version.

        Raises:
            ProofUnsupported: More than ``BATCH_ROWS`` rows, no batch circuit for the feature count,
                or the version's verifier does not route batch proofs (422).
            ProverOverloaded: Queue full, or the batch keys are still being made.
            ServiceUnavailable: The chain is unreachable.
        """
        if n_rows > BATCH_ROWS:
            raise ProofUnsupported(
                f"proof=true proves at most {BATCH_ROWS} rows in one batch proof; the request has "
                f"{n_rows} (split it)"
            )
        verifier, commitment = await self.prepare(subnet_id, version, model)
        if model.n_features not in BATCH_FEATURE_COUNTS:
            raise ProofUnsupported(
                f"batch proofs (more than one row) exist for "
                f"{', '.join(map(str, BATCH_FEATURE_COUNTS))} features, not {model.n_features}; "
                "prove one row per request"
            )
        if not await self._routes_batches(verifier):
            raise ProofUnsupported(
                f"the verifier of model version {version} checks one-row proofs only"
            )
        if model.n_features not in self._batch_keys:
            raise ProverOverloaded(
                "the batch proving keys are still being prepared",
                retry_after_s=self.settings.proof_retry_after_s,
            )
        return verifier, commitment

    async def prove_batch(
        self, model: LoadedModel, rows: list[list[float]], commitment: int
    ) -> BatchProof:
        """Prove the rows' logits with one batch proof under the model's parameters.

        Raises:
            ProofUnsupported: A value outside the fixed-point range (422).
            ProverOverloaded: The queue filled up meanwhile.
            ServiceUnavailable: The prover failed, or the served model does not match the
                commitment recorded on chain.
        """
        keys = self._batch_keys[model.n_features]
        job = self.pool.prove_batch(keys, model.linear.weights, model.linear.intercept, rows)
        proof: BatchProof = await self._proven(job)
        self._check_commitment(proof.instances[2], commitment)
        return proof
