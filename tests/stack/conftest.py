from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _zk_keys_before_any_stack(zk_keys_cached: None) -> None:
    """Every test here may start `twopm up`: its zk keys are made first (tests/conftest.py)."""
