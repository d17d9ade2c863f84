from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The roles walk opens the operator's dashboard with tests/web's browser helpers (web_support).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "web"))


@pytest.fixture(scope="session", autouse=True)
def _zk_keys_before_any_stack(zk_keys_cached: None) -> None:
    """Every test here may start `twopm up`: its zk keys are made first (tests/conftest.py)."""
