"""Readiness probes of the local network's children (started and stopped by :mod:`core.proc`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx


def read_json_file(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None while it does not exist or is half-written."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def http_ok(url: str) -> bool:
    """Whether ``GET url`` answers 200."""
    return httpx.get(url, timeout=2.0, verify=False).status_code == 200
