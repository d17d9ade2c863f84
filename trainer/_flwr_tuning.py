"""Shorter retry back-off for Flower's object pulls (flwr 1.41 internals, one place).

Flower pulls a message's objects with exponential back-off starting at 1 s
(`PULL_INITIAL_BACKOFF`), two objects at a time, whenever an object is not there *yet*; a ClientApp started
right after its message arrived nearly always waits that second, and often 2 s more.
Measured here: 1.3-7 s per ClientApp, almost all of it in that back-off. We lower the
defaults of the two pull functions in this process only.
"""

from __future__ import annotations

__all__ = ["speed_up_object_pulls"]


def speed_up_object_pulls(
    initial_backoff_s: float = 0.02, backoff_cap_s: float = 0.25, concurrent_pulls: int = 8
) -> bool:
    """Lower Flower's object-pull back-off in this process.

    Args:
        initial_backoff_s: first retry delay in seconds (Flower: 1).
        backoff_cap_s: maximum retry delay in seconds (Flower: 10).
        concurrent_pulls: objects pulled in parallel (Flower: 2).

    Returns:
        True if both functions were patched, False if Flower's internals moved
        (then Flower's defaults stay in force; slower, still correct).
    """
    try:
        from flwr.supercore.inflatable import inflatable_utils as u
    except ImportError:
        return False
    patched = 0
    for fn in (u.pull_objects, u.pull_and_inflate_object_from_tree):
        kw = getattr(fn, "__kwdefaults__", None)
        if kw and "initial_backoff" in kw and "backoff_cap" in kw:
            kw["initial_backoff"] = initial_backoff_s
            kw["backoff_cap"] = backoff_cap_s
            kw["max_concurrent_pulls"] = concurrent_pulls
            patched += 1
    return patched == 2
