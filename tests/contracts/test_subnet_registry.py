from __future__ import annotations

import pytest
from contract_support import events

from contracts.tx import expect_revert

H1 = b"\x11" * 32
H2 = b"\x22" * 32
RUN = b"\x33" * 32
SCHEMA = b"\x44" * 32


@pytest.fixture
def reg(c):
    return c("SubnetRegistry")


@pytest.fixture
def subnet(reg, tx):
    tx(3).transact(reg.functions.createSubnet("spector", 10**12, 10**18, 2000))
    return 1


def publish(reg, tx, who, subnet_id, contributors, shares, model_hash=H1):
    return tx(who).transact(
        reg.functions.publishModel(
            subnet_id, model_hash, "file:///models/a", SCHEMA, RUN, contributors, shares
        )
    )


def test_create_subnet_makes_the_caller_owner_and_emits_subnet_created(reg, tx, addr, anvil):
    receipt = tx(3).transact(reg.functions.createSubnet("breast-cancer", 5, 7, 1500))
    assert events(reg, receipt, "SubnetCreated") == [
        {
            "subnetId": 1,
            "owner": addr(3),
            "name": "breast-cancer",
            "pricePerRequestWei": 5,
            "minStakeWei": 7,
            "ownerShareBps": 1500,
        }
    ]
    created = anvil.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert reg.functions.subnetOf(1).call() == (addr(3), 1500, 0, created, 5, 7, "breast-cancer")
    assert reg.functions.subnetCount().call() == 1
    assert reg.functions.currentVersion(1).call() == 0


@pytest.mark.parametrize(
    ("name", "share", "error", "args"),
    [
        ("", 0, "SubnetRegistryInvalidName", (0,)),
        ("x" * 65, 0, "SubnetRegistryInvalidName", (65,)),
        ("ok", 10_001, "SubnetRegistryInvalidOwnerShare", (10_001,)),
    ],
)
def test_create_subnet_rejects_bad_names_and_shares(reg, addr, name, share, error, args):
    err = expect_revert(reg.functions.createSubnet(name, 1, 1, share), addr(3))
    assert (err.name, err.arguments) == (error, args)


def test_the_owner_sets_price_min_stake_and_share_with_events(reg, tx, subnet):
    r = tx(3).transact(reg.functions.setPrice(subnet, 99))
    assert events(reg, r, "SubnetPriceUpdated") == [
        {"subnetId": 1, "previousPriceWei": 10**12, "newPriceWei": 99}
    ]
    r = tx(3).transact(reg.functions.setMinStake(subnet, 5))
    assert events(reg, r, "SubnetMinStakeUpdated") == [
        {"subnetId": 1, "previousMinStakeWei": 10**18, "newMinStakeWei": 5}
    ]
    r = tx(3).transact(reg.functions.setOwnerShare(subnet, 0))
    assert events(reg, r, "SubnetOwnerShareUpdated") == [
        {"subnetId": 1, "previousShareBps": 2000, "newShareBps": 0}
    ]
    s = reg.functions.subnetOf(subnet).call()
    assert (s[1], s[4], s[5]) == (0, 99, 5)
    err = expect_revert(reg.functions.setOwnerShare(subnet, 10_001), tx(3).address)
    assert err.name == "SubnetRegistryInvalidOwnerShare"


def test_only_the_subnet_owner_changes_it(reg, addr, subnet):
    calls = [
        reg.functions.setPrice(subnet, 1),
        reg.functions.setMinStake(subnet, 1),
        reg.functions.setOwnerShare(subnet, 1),
        reg.functions.transferSubnetOwnership(subnet, addr(5)),
        reg.functions.publishModel(subnet, H1, "u", SCHEMA, RUN, [addr(4)], [10_000]),
    ]
    for call in calls:
        err = expect_revert(call, addr(5))
        assert (err.name, err.arguments) == ("SubnetRegistryNotSubnetOwner", (subnet, addr(5)))


def test_unknown_subnets_are_rejected_everywhere(reg, addr):
    calls = [
        reg.functions.setPrice(9, 1),
        reg.functions.subnetOf(9),
        reg.functions.currentVersion(9),
        reg.functions.pendingOwnerOf(9),
        reg.functions.acceptSubnetOwnership(9),
        reg.functions.modelOf(9, 1),
        reg.functions.revenueSplit(9, 1),
    ]
    for call in calls:
        err = expect_revert(call, addr(3))
        assert (err.name, err.arguments) == ("SubnetRegistryUnknownSubnet", (9,))


def test_ownership_moves_in_two_steps(reg, tx, addr, subnet):
    r = tx(3).transact(reg.functions.transferSubnetOwnership(subnet, addr(5)))
    assert events(reg, r, "SubnetOwnershipTransferStarted") == [
        {"subnetId": 1, "previousOwner": addr(3), "newOwner": addr(5)}
    ]
    assert reg.functions.pendingOwnerOf(subnet).call() == addr(5)
    assert reg.functions.subnetOf(subnet).call()[0] == addr(3)
    err = expect_revert(reg.functions.acceptSubnetOwnership(subnet), addr(6))
    assert (err.name, err.arguments) == ("SubnetRegistryNotPendingOwner", (1, addr(6)))
    r = tx(5).transact(reg.functions.acceptSubnetOwnership(subnet))
    assert events(reg, r, "SubnetOwnershipTransferred") == [
        {"subnetId": 1, "previousOwner": addr(3), "newOwner": addr(5)}
    ]
    assert reg.functions.subnetOf(subnet).call()[0] == addr(5)
    assert reg.functions.pendingOwnerOf(subnet).call() == "0x" + "00" * 20
    err = expect_revert(reg.functions.transferSubnetOwnership(subnet, "0x" + "00" * 20), addr(5))
    assert err.name == "SubnetRegistryInvalidOwner"


def test_publish_model_records_a_new_current_version(reg, tx, addr, subnet, anvil):
    contributors, shares = [addr(4), addr(5), addr(6)], [5000, 3000, 2000]
    r = publish(reg, tx, 3, subnet, contributors, shares)
    assert events(reg, r, "ModelPublished") == [
        {
            "subnetId": 1,
            "version": 1,
            "modelHash": H1,
            "artifactUri": "file:///models/a",
            "featureSchemaHash": SCHEMA,
            "trainingRunId": RUN,
            "contributors": contributors,
            "sharesBps": shares,
        }
    ]
    published = anvil.w3.eth.get_block(r["blockNumber"])["timestamp"]
    assert reg.functions.modelOf(subnet, 1).call() == (
        H1,
        SCHEMA,
        RUN,
        published,
        "file:///models/a",
        contributors,
        shares,
    )
    publish(reg, tx, 3, subnet, [addr(4)], [10_000], model_hash=H2)
    assert reg.functions.currentVersion(subnet).call() == 2
    assert reg.functions.modelOf(subnet, 2).call()[0] == H2
    assert reg.functions.revenueSplit(subnet, 1).call() == [addr(3), 2000, contributors, shares]
    for version in (0, 3):
        err = expect_revert(reg.functions.modelOf(subnet, version), addr(0))
        assert (err.name, err.arguments) == ("SubnetRegistryUnknownVersion", (1, version))
        err = expect_revert(reg.functions.revenueSplit(subnet, version), addr(0))
        assert err.name == "SubnetRegistryUnknownVersion"


@pytest.mark.parametrize(
    ("contributors", "shares", "error", "args"),
    [
        ([4, 5], [10_000], "SubnetRegistryLengthMismatch", (2, 1)),
        ([], [], "SubnetRegistryInvalidContributorCount", (0,)),
        ([4, 5], [5000, 4999], "SubnetRegistryInvalidShareSum", (9999,)),
        ([4, 4], [5000, 5000], "SubnetRegistryDuplicateContributor", ("a4",)),
        ([4, None], [5000, 5000], "SubnetRegistryInvalidContributor", (1, "zero", 5000)),
        ([4, 5], [10_000, 0], "SubnetRegistryInvalidContributor", (1, "a5", 0)),
    ],
)
def test_publish_model_rejects_bad_contributor_lists(
    reg, addr, subnet, contributors, shares, error, args
):
    zero = "0x" + "00" * 20
    people = [addr(i) if i is not None else zero for i in contributors]
    err = expect_revert(
        reg.functions.publishModel(subnet, H1, "u", SCHEMA, RUN, people, shares), addr(3)
    )
    expected = tuple(
        addr(int(a[1:])) if isinstance(a, str) and a.startswith("a") else zero if a == "zero" else a
        for a in args
    )
    assert (err.name, err.arguments) == (error, expected)


def test_publish_model_rejects_too_many_contributors_a_zero_hash_and_bad_uris(reg, addr, subnet):
    from web3 import Web3

    many = [Web3.to_checksum_address(f"0x{i + 1:040x}") for i in range(65)]
    err = expect_revert(
        reg.functions.publishModel(subnet, H1, "u", SCHEMA, RUN, many, [1] * 65), addr(3)
    )
    assert (err.name, err.arguments) == ("SubnetRegistryInvalidContributorCount", (65,))
    err = expect_revert(
        reg.functions.publishModel(subnet, b"\0" * 32, "u", SCHEMA, RUN, [addr(4)], [10_000]),
        addr(3),
    )
    assert err.name == "SubnetRegistryZeroModelHash"
    for uri in ("", "u" * 513):
        err = expect_revert(
            reg.functions.publishModel(subnet, H1, uri, SCHEMA, RUN, [addr(4)], [10_000]), addr(3)
        )
        assert (err.name, err.arguments) == ("SubnetRegistryInvalidUri", (len(uri),))


def test_set_model_verifier_records_the_verifier_once_and_emits_an_event(reg, tx, addr, subnet, c):
    publish(reg, tx, 3, subnet, [addr(4)], [10_000])
    verifier = c("LogitGroth16Verifier3").address  # any contract with code
    receipt = tx(3).transact(reg.functions.setModelVerifier(subnet, 1, verifier, 42))
    assert events(reg, receipt, "ModelVerifierSet") == [
        {"subnetId": subnet, "version": 1, "verifier": verifier, "modelCommitment": 42}
    ]
    assert tuple(reg.functions.modelVerifierOf(subnet, 1).call()) == (verifier, 42)
    err = expect_revert(reg.functions.setModelVerifier(subnet, 1, verifier, 43), addr(3))
    assert (err.name, err.args_) == ("SubnetRegistryVerifierAlreadySet", (subnet, 1))


def test_set_model_verifier_refuses_strangers_unknown_versions_and_codeless_verifiers(
    reg, tx, addr, subnet, c
):
    verifier = c("LogitGroth16Verifier3").address
    err = expect_revert(reg.functions.setModelVerifier(subnet, 1, verifier, 1), addr(3))
    assert (err.name, err.args_) == ("SubnetRegistryUnknownVersion", (subnet, 1))
    publish(reg, tx, 3, subnet, [addr(4)], [10_000])
    err = expect_revert(reg.functions.setModelVerifier(subnet, 1, verifier, 1), addr(5))
    assert (err.name, err.args_) == ("SubnetRegistryNotSubnetOwner", (subnet, addr(5)))
    err = expect_revert(reg.functions.setModelVerifier(subnet, 1, addr(6), 1), addr(3))
    assert (err.name, err.args_) == ("SubnetRegistryInvalidVerifier", (addr(6), 1))
    err = expect_revert(reg.functions.setModelVerifier(subnet, 1, verifier, 0), addr(3))
    assert (err.name, err.args_) == ("SubnetRegistryInvalidVerifier", (verifier, 0))
    assert tuple(reg.functions.modelVerifierOf(subnet, 1).call()) == (
        "0x0000000000000000000000000000000000000000",
        0,
    )
