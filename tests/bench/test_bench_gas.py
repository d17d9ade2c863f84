from __future__ import annotations

from bench.gas.run import chosen_batch_sizes


def row(mix: str, size: int, total: int, l1: int, fits: bool = True) -> dict[str, object]:
    return {
        "users_mix": mix,
        "batch_size": size,
        "total_fee_wei_per_request": total,
        "l1_fee_wei_per_request": l1,
        "within_gas_cap": fits,
    }


def test_the_cheapest_batch_size_within_the_gas_cap_is_chosen_per_mix():
    rows = [
        row("a", 10, 500, 50),
        row("a", 100, 300, 20),
        row("a", 1000, 200, 30),
        row("a", 4000, 100, 40, fits=False),  # cheaper but over the signer's gas cap
        row("b", 10, 90, 9),
        row("b", 100, 95, 5),
    ]
    assert chosen_batch_sizes(rows) == {"a": 1000, "b": 10}
    assert chosen_batch_sizes(rows, "l1_fee_wei_per_request") == {"a": 100, "b": 100}
