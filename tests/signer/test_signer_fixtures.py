"""The signer fixtures stop what they start: a test's signers end with the test, not the session
(they used to pile up, ~12-17 processes, until the session ended)."""

from __future__ import annotations

from collections.abc import Callable

from signer_support import SignerProcess

_started: list[SignerProcess] = []


def test_a_test_starts_a_signer(make_signer: Callable[..., SignerProcess]) -> None:
    signer = make_signer()
    assert signer.proc is not None and signer.proc.poll() is None
    assert signer.client().health()["address"] == signer.address
    _started.append(signer)


def test_the_signer_of_the_previous_test_is_gone(
    make_signer: Callable[..., SignerProcess],
) -> None:
    assert len(_started) == 1, "runs after test_a_test_starts_a_signer"
    proc = _started[0].proc
    assert proc is not None and proc.poll() is not None  # killed at that test's teardown
    unstarted = make_signer(start=False)  # not started: nothing to stop, no error at teardown
    assert unstarted.proc is None
