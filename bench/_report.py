"""Shared output of the benchmarks: a JSON file of figures and a table on the terminal."""

from __future__ import annotations

import json
import platform
import resource
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (``getrusage``; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_report(
    name: str, rows: list[dict[str, Any]], out: Path, *, notes: dict[str, Any] | None = None
) -> None:
    """Write ``rows`` as JSON to ``out`` and print them as a table.

    Args:
        name: Benchmark name (the table title).
        rows: One dict per measurement; every row has the same keys.
        out: Path of the JSON file.
        notes: Extra context stored beside the rows (targets, parameters).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "notes": notes or {},
        "rows": rows,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    table = Table(title=name)
    for key in rows[0]:
        table.add_column(key, justify="right" if isinstance(rows[0][key], int | float) else "left")
    for row in rows:
        table.add_row(
            *(
                f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
                for v in row.values()
            )
        )
    console = Console(width=max(120, 16 * len(rows[0])))
    console.print(table)
    console.print(f"figures written to {out}")
