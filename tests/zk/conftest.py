from __future__ import annotations

import pytest

from zk import CircuitKeys, ensure_keys


@pytest.fixture(scope="session")
def keys3() -> CircuitKeys:
    """Keys of the 3-feature circuit (made once per machine, minutes; then read from the cache)."""
    return ensure_keys(3)


@pytest.fixture(scope="session")
def keys30() -> CircuitKeys:
    return ensure_keys(30)
