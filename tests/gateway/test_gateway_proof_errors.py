"""How ``ProofService`` turns the prover's errors into problem responses, for one-row and batch proofs.

The prover pool is replaced by an in-memory stand-in that raises what ``zk.ProverPool`` raises
(``FixedPointRangeError``, ``ProverBusy``, ``ProofError`` for a timeout or a dead worker); the real
pool and the real routes are tested in ``test_gateway_proofs.py``.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from gateway import GatewaySettings
from gateway._errors import GatewayError, ServiceUnavailable
from gateway._proofs import ProofService, ProofUnsupported, ProverOverloaded
from zk import BatchProof, FixedPointRangeError, LogitProof, ProofError, ProverBusy

COMMITMENT = 0xC0FFEE
RETRY_AFTER_S = 7.0


class _Pool:
    """Answers ``prove``/``prove_batch`` with ``outcome``: an exception to raise or a proof."""

    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.pending, self.max_pending = 0, 1

    async def _answer(self) -> Any:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    async def prove(self, keys: Any, weights: Any, intercept: float, row: Any) -> LogitProof:
        return await self._answer()

    async def prove_batch(self, keys: Any, weights: Any, intercept: float, rows: Any) -> Any:
        return await self._answer()


def _service(outcome: Any) -> ProofService:
    service = ProofService(GatewaySettings(proof_retry_after_s=RETRY_AFTER_S), chain=None)
    service.pool = _Pool(outcome)  # type: ignore[assignment]
    service._keys[3] = service._batch_keys[3] = object()  # type: ignore[assignment]
    return service


MODEL: Any = SimpleNamespace(n_features=3, linear=SimpleNamespace(weights=[1.0] * 3, intercept=0.0))
PROOFS = {
    "one row": lambda s: s.prove(MODEL, [0.0] * 3, COMMITMENT),
    "batch": lambda s: s.prove_batch(MODEL, [[0.0] * 3] * 2, COMMITMENT),
}
OUTCOMES: dict[str, tuple[Exception, type[GatewayError], int]] = {
    "out of range": (FixedPointRangeError("feature 0 is outside +-2^20"), ProofUnsupported, 422),
    "queue full": (ProverBusy("1 proofs are already queued or running"), ProverOverloaded, 503),
    "timeout": (ProofError("prover worker failed: TimeoutError()"), ServiceUnavailable, 503),
    "worker died": (ProofError("the prover worker exited"), ServiceUnavailable, 503),
}


@pytest.mark.parametrize("kind", PROOFS)
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_a_prover_error_becomes_its_problem_response(kind: str, outcome: str) -> None:
    raised, expected, status = OUTCOMES[outcome]
    with pytest.raises(expected) as caught:
        asyncio.run(PROOFS[kind](_service(raised)))
    assert type(caught.value) is expected and caught.value.status_code == status
    assert caught.value.__cause__ is raised and str(raised) in caught.value.detail
    if expected is ProverOverloaded:
        assert caught.value.headers == {"Retry-After": "7"}
        assert caught.value.extra == {"retry_after_s": 7}


@pytest.mark.parametrize(
    ("kind", "proof"),
    [
        ("one row", LogitProof(b"\0" * 256, (5, COMMITMENT + 1, 9), 0.1)),
        ("batch", BatchProof(b"\0" * 256, (1, 2, COMMITMENT + 1), (5, 6), 0.1)),
    ],
)
def test_a_proof_under_another_commitment_than_the_chains_is_a_503(kind: str, proof: Any) -> None:
    with pytest.raises(ServiceUnavailable, match="do not match the commitment") as caught:
        asyncio.run(PROOFS[kind](_service(proof)))
    assert type(caught.value) is ServiceUnavailable


@pytest.mark.parametrize(
    ("kind", "proof"),
    [
        ("one row", LogitProof(b"\0" * 256, (5, COMMITMENT, 9), 0.1)),
        ("batch", BatchProof(b"\0" * 256, (1, 2, COMMITMENT), (5, 6), 0.1)),
    ],
)
def test_a_proof_under_the_chains_commitment_is_returned_as_made(kind: str, proof: Any) -> None:
    assert asyncio.run(PROOFS[kind](_service(proof))) is proof


def test_keys_are_loaded_into_the_prover_before_they_are_served_and_a_failed_load_hides_none():
    """``_prepare_keys`` (the real cached keys) loads each shape into the pool, then serves it."""
    from gateway._proofs import SUPPORTED_FEATURE_COUNTS

    service = ProofService(GatewaySettings(), chain=None)
    loaded: list[tuple[int, bool]] = []

    class Loading(_Pool):
        async def prepare(self, keys: Any) -> list[dict[str, Any]]:
            loaded.append((keys.n_features, keys.n_features in service._keys))
            if keys.n_features == SUPPORTED_FEATURE_COUNTS[-1]:
                raise ProofError("the prover worker exited")
            return [{"prepare_s": 0.1, "fixed_base": True}]

    service.pool = Loading(None)  # type: ignore[assignment]
    asyncio.run(service._prepare_keys())
    # Each shape was loaded before it was served (not yet in _keys), and a failed load (the first
    # proof then loads the key) still serves the shape.
    assert loaded == [(n, False) for n in SUPPORTED_FEATURE_COUNTS]
    assert set(service._keys) == set(SUPPORTED_FEATURE_COUNTS)


def test_the_msm_threads_setting_reaches_the_pool_and_a_bad_value_is_refused():
    assert ProofService(GatewaySettings(proof_msm_threads=2), chain=None).pool.msm_threads == 2
    assert ProofService(GatewaySettings(), chain=None).pool.msm_threads == 1
    with pytest.raises(ValueError, match="msm_threads"):
        ProofService(GatewaySettings(proof_msm_threads=0), chain=None)
