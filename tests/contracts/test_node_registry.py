from __future__ import annotations

import pytest
from contract_support import events

from contracts import ContractRevert
from contracts.tx import expect_revert


@pytest.fixture
def registry(c):
    return c("NodeRegistry")


def test_register_stores_the_node_and_emits_node_registered(registry, tx, addr, anvil):
    receipt = tx(4).transact(registry.functions.register("hospital-a", "https://a.example:9092"))
    assert events(registry, receipt, "NodeRegistered") == [
        {"account": addr(4), "name": "hospital-a", "url": "https://a.example:9092"}
    ]
    node = registry.functions.nodeOf(addr(4)).call()
    block_time = anvil.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert node == (addr(4), "hospital-a", "https://a.example:9092", block_time, block_time)
    assert registry.functions.isRegistered(addr(4)).call()
    assert registry.functions.nodeCount().call() == 1


def test_register_rejects_a_second_registration(registry, tx, addr):
    tx(4).transact(registry.functions.register("a", "u"))
    err = expect_revert(registry.functions.register("a", "u"), addr(4))
    assert (err.name, err.arguments) == ("NodeRegistryAlreadyRegistered", (addr(4),))


@pytest.mark.parametrize(
    ("name", "url", "error", "length"),
    [
        ("", "u", "NodeRegistryInvalidName", 0),
        ("n" * 65, "u", "NodeRegistryInvalidName", 65),
        ("n", "", "NodeRegistryInvalidUrl", 0),
        ("n", "u" * 257, "NodeRegistryInvalidUrl", 257),
    ],
)
def test_register_and_update_reject_empty_or_oversized_fields(
    registry, tx, addr, name, url, error, length
):
    err = expect_revert(registry.functions.register(name, url), addr(4))
    assert (err.name, err.arguments) == (error, (length,))
    tx(5).transact(registry.functions.register("ok", "ok"))
    err = expect_revert(registry.functions.update(name, url), addr(5))
    assert (err.name, err.arguments) == (error, (length,))


def test_update_changes_name_and_url_and_emits_node_updated(registry, tx, addr):
    tx(4).transact(registry.functions.register("a", "u1"))
    receipt = tx(4).transact(registry.functions.update("b", "u2"))
    assert events(registry, receipt, "NodeUpdated") == [
        {"account": addr(4), "name": "b", "url": "u2"}
    ]
    assert registry.functions.nodeOf(addr(4)).call()[1:3] == ("b", "u2")


def test_update_and_leave_reject_an_unregistered_account(registry, addr):
    for call in (registry.functions.update("a", "u"), registry.functions.leave()):
        err = expect_revert(call, addr(6))
        assert (err.name, err.arguments) == ("NodeRegistryNotRegistered", (addr(6),))
    err = expect_revert(registry.functions.nodeOf(addr(6)), addr(0))
    assert err.name == "NodeRegistryNotRegistered"


def test_leave_deletes_the_record_and_allows_registering_again(registry, tx, addr):
    tx(4).transact(registry.functions.register("a", "u"))
    receipt = tx(4).transact(registry.functions.leave())
    assert events(registry, receipt, "NodeLeft") == [{"account": addr(4)}]
    assert not registry.functions.isRegistered(addr(4)).call()
    assert registry.functions.nodeCount().call() == 0
    tx(4).transact(registry.functions.register("again", "u"))
    assert registry.functions.nodeOf(addr(4)).call()[1] == "again"


def test_nodes_pages_through_every_registered_node(registry, tx, addr):
    for i in range(3, 8):
        tx(i).transact(registry.functions.register(f"node-{i}", f"http://n{i}"))
    page, total = registry.functions.nodes(0, 2).call()
    assert total == 5 and [n[1] for n in page] == ["node-3", "node-4"]
    page, _ = registry.functions.nodes(4, 2).call()
    assert [n[0] for n in page] == [addr(7)]
    page, total = registry.functions.nodes(5, 10).call()
    assert page == [] and total == 5


@pytest.mark.parametrize("limit", [0, 101])
def test_nodes_rejects_a_page_size_out_of_range(registry, addr, limit):
    err = expect_revert(registry.functions.nodes(0, limit), addr(0))
    assert isinstance(err, ContractRevert)
    assert (err.name, err.arguments) == ("NodeRegistryInvalidPageSize", (limit,))
