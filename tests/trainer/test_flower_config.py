"""The ServerApp's run config: the dropout minimum it accepts (what `flwr run` can pass directly,
without `twopm train`'s own checks)."""

from __future__ import annotations

import pytest

from trainer.flower_config import run_settings

BASE = {"features": "a,b", "label": "y", "n-nodes": 5}


def test_the_default_minimum_is_the_secagg_threshold_n_minus_1() -> None:
    assert run_settings(BASE).job.quorum == 4
    assert run_settings({**BASE, "n-nodes": 2}).job.quorum == 2


def test_a_majority_minimum_is_accepted_under_secagg() -> None:
    assert run_settings({**BASE, "min-nodes": 3}).job.quorum == 3


def test_a_minimum_below_a_majority_is_refused_under_secagg() -> None:
    with pytest.raises(ValueError, match=r"min-nodes 2 is too low .*\(at least 3\)"):
        run_settings({**BASE, "min-nodes": 2})


def test_plain_sums_may_go_below_a_majority() -> None:
    assert run_settings({**BASE, "min-nodes": 1, "secure": False}).job.quorum == 1


@pytest.mark.parametrize("min_nodes", [6, -1])
def test_a_minimum_outside_1_to_n_is_refused(min_nodes: int) -> None:
    with pytest.raises(ValueError, match=r"min_nodes must be in \[1, n_nodes=5\]"):
        run_settings({**BASE, "min-nodes": min_nodes})
