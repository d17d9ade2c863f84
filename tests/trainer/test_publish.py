"""`twopm publish` against a real anvil and a real signer process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from service_support import deploy_for_operator, start_signer

from contracts import Anvil, Deployment, Transactor
from core.cli import CliError
from signer import Limits, RemoteSigner, SignerClient
from trainer.bundle import ModelBundle, WrittenBundle, load_bundle, result_to_card, write_bundle
from trainer.data import Dataset, split_rows
from trainer.publish import PublishError, contributor_shares, publish_bundle
from trainer.task import JobConfig, run_in_process

PASSWORD = "trainer test password"


def test_shares_are_proportional_to_rows_and_sum_to_10000() -> None:
    nodes = [
        {"node_id": 1, "operator_address": "0x" + "11" * 20, "n_rows": 11},
        {"node_id": 2, "operator_address": "0x" + "22" * 20, "n_rows": 11},
        {"node_id": 3, "operator_address": "0x" + "33" * 20, "n_rows": 10},
    ]
    addrs, shares = contributor_shares(nodes)
    assert sum(shares) == 10_000
    assert shares == [3438, 3437, 3125]  # 10000 * (11, 11, 10) / 32, largest remainders
    assert addrs[0].lower() == "0x" + "11" * 20


def test_shares_merge_nodes_of_the_same_operator_and_never_round_to_zero() -> None:
    big = {"node_id": 1, "operator_address": "0x" + "aa" * 20, "n_rows": 10**9}
    same = {"node_id": 2, "operator_address": "0x" + "AA" * 20, "n_rows": 1}
    tiny = {"node_id": 3, "operator_address": "0x" + "bb" * 20, "n_rows": 1}
    addrs, shares = contributor_shares([big, same, tiny])
    assert len(addrs) == 2 and sum(shares) == 10_000 and min(shares) == 1


def test_shares_reject_a_node_without_an_operator_address() -> None:
    with pytest.raises(PublishError, match="no valid operator address"):
        contributor_shares([{"node_id": 7, "operator_address": "", "n_rows": 3}])


@pytest.fixture(scope="module")
def operator_chain(
    anvil: Anvil, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("trainer-signer")
    root.chmod(0o700)
    account = Account.create()
    deployment = deploy_for_operator(anvil, account.address)
    limits = Limits(
        max_value_per_tx_wei=0,
        max_value_per_window_wei=0,
        value_window_s=3600,
        max_gas_per_tx=3_000_000,
        max_fee_per_gas_wei=100 * 10**9,
        max_tx_per_hour=1000,
    )
    signer = start_signer(
        root,
        deployment,
        bytes(account.key),
        caller_id="trainer",
        password=PASSWORD,
        limits=limits,
        scrypt_n=2**12,
    )
    (root / "secret").write_text(signer.secret_hex)
    (root / "secret").chmod(0o600)
    deployment_file = root / "deployment.json"
    deployment.write(deployment_file)
    yield {
        "deployment": deployment,
        "deployment_file": deployment_file,
        "url": signer.url,
        "secret": signer.secret,
        "secret_file": root / "secret",
    }
    signer.proc.kill()
    signer.proc.wait()


def _register(anvil: Anvil, deployment: Deployment, index: int) -> str:
    acct = anvil.accounts[index]
    nodes = deployment.contract("NodeRegistry")
    tx = nodes.functions.register(f"node-{index}", f"https://node{index}.example").transact(
        {"from": acct.address}
    )
    anvil.w3.eth.wait_for_transaction_receipt(tx)
    return acct.address


@pytest.fixture(scope="module")
def written(
    anvil: Anvil, spector: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> WrittenBundle:
    parts = [spector.take(ix) for ix in split_rows(spector, 3)]
    result = run_in_process(parts, JobConfig(spector.feature_names, spector.label, n_nodes=3))
    card = result_to_card(result, secure=True, job_name="spector")
    for node, idx in zip(card["nodes"], (5, 6, 7), strict=True):
        node["operator_address"] = anvil.accounts[idx].address
    return write_bundle(card, tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def bundle(written: WrittenBundle) -> ModelBundle:
    return load_bundle(written.path, written.sha256)


def test_publish_refuses_a_contributor_missing_from_the_node_registry(
    anvil: Anvil, operator_chain: dict[str, Any], bundle: ModelBundle
) -> None:
    dep = operator_chain["deployment"]
    with (
        SignerClient(operator_chain["url"], "trainer", operator_chain["secret"]) as client,
        pytest.raises(PublishError, match="not a registered node"),
    ):
        publish_bundle(deployment=dep, transactor=Transactor(anvil.w3, RemoteSigner(client)), bundle=bundle,
                           artifact_uri="file:///x", subnet_name="spector")  # fmt: skip


def test_publish_refuses_a_card_whose_node_rows_exceed_the_secure_count_before_sending(
    anvil: Anvil, operator_chain: dict[str, Any], bundle: ModelBundle, tmp_path: Path
) -> None:
    card = json.loads(json.dumps(bundle.card))
    card["nodes"][0]["n_rows"] += 4
    forged = load_bundle(*_written(write_bundle(card, tmp_path)))
    dep = operator_chain["deployment"]
    block = anvil.w3.eth.block_number
    with (
        SignerClient(operator_chain["url"], "trainer", operator_chain["secret"]) as client,
        pytest.raises(PublishError, match=r"the nodes claim 36 rows but the secure sum counted 32"),
    ):
        publish_bundle(deployment=dep, transactor=Transactor(anvil.w3, RemoteSigner(client)), bundle=forged,
                       artifact_uri="file:///x", subnet_name="spector")  # fmt: skip
    assert anvil.w3.eth.block_number == block  # nothing sent


def _written(w: WrittenBundle) -> tuple[Path, str]:
    return w.path, w.sha256


def test_publish_creates_a_subnet_with_row_shares_and_a_repeat_sends_nothing_new(
    anvil: Anvil, operator_chain: dict[str, Any], bundle: ModelBundle
) -> None:
    dep = operator_chain["deployment"]
    for idx in (5, 6, 7):
        _register(anvil, dep, idx)
    with SignerClient(operator_chain["url"], "trainer", operator_chain["secret"]) as client:
        tx = Transactor(anvil.w3, RemoteSigner(client))
        first = publish_bundle(deployment=dep, transactor=tx, bundle=bundle,
                               artifact_uri="file:///store/x", subnet_name="spector")  # fmt: skip
        second = publish_bundle(deployment=dep, transactor=tx, bundle=bundle,
                                artifact_uri="file:///store/x", subnet_id=first.subnet_id)  # fmt: skip
    assert first.created and first.version == 1
    # same bundle, same subnet: the signer's idempotency key returns the same transaction
    assert not second.created and second.version == 1
    assert second.tx_hashes == first.tx_hashes[-1:]
    model = dep.contract("SubnetRegistry").functions.modelOf(first.subnet_id, 1).call()
    assert model[0].hex() == bundle.sha256
    assert model[1].hex() == bundle.card["feature_schema_sha256"]
    rows = {n["operator_address"].lower(): n["n_rows"] for n in bundle.card["nodes"]}
    shares = dict(zip([a.lower() for a in model[5]], model[6], strict=True))
    assert sum(shares.values()) == 10_000
    for addr, share in shares.items():
        assert abs(share - 10_000 * rows[addr] / 32) <= 1


def test_publish_cli_rejects_a_bundle_with_the_wrong_digest(
    operator_chain: dict[str, Any], written: WrittenBundle, anvil: Anvil
) -> None:
    from trainer.publish import _publish

    args = _publish_args(operator_chain, anvil, written, sha256="00" * 32)
    with pytest.raises(CliError, match="does not match expected"):
        _publish(args)


def test_publish_cli_rejects_an_unreachable_rpc(
    operator_chain: dict[str, Any], written: WrittenBundle, anvil: Anvil
) -> None:
    from trainer.publish import _publish

    args = _publish_args(operator_chain, anvil, written, rpc_url="http://127.0.0.1:9")
    with pytest.raises(CliError, match="no JSON-RPC node"):
        _publish(args)


def test_publish_cli_publishes_and_prints_the_version(
    operator_chain: dict[str, Any], written: WrittenBundle, anvil: Anvil, capsys: Any
) -> None:
    from trainer.publish import _publish

    assert _publish(_publish_args(operator_chain, anvil, written)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == 1 and out["created"] and out["model_hash"] == "0x" + written.sha256


def test_publish_cli_refuses_a_subnet_the_operator_does_not_own(
    operator_chain: dict[str, Any], written: WrittenBundle, anvil: Anvil
) -> None:
    from trainer.publish import _publish

    dep = operator_chain["deployment"]
    reg = dep.contract("SubnetRegistry")
    tx = reg.functions.createSubnet("someone-else", 1, 0, 0).transact(
        {"from": anvil.accounts[8].address}
    )
    anvil.w3.eth.wait_for_transaction_receipt(tx)
    foreign = reg.functions.subnetCount().call()
    args = _publish_args(operator_chain, anvil, written, subnet_id=foreign)
    with pytest.raises(CliError, match="not the operator"):
        _publish(args)


def _publish_args(chain: dict[str, Any], anvil: Anvil, written: WrittenBundle, **over: Any) -> Any:
    import argparse

    ns = argparse.Namespace(
        bundle=str(written.path),
        sha256=written.sha256,
        rpc_url=anvil.rpc_url,
        deployment=str(chain["deployment_file"]),
        signer_url=chain["url"],
        signer_caller="trainer",
        signer_secret_file=str(chain["secret_file"]),
        subnet_id=None,
        name="cli",
        price_wei=10**12,
        min_stake_wei=0,
        owner_share_bps=1000,
        artifact_uri=None,
        stack=None,
    )
    for k, v in over.items():
        setattr(ns, k, v)
    return ns


def test_publish_cli_refuses_a_secret_file_others_can_read(
    operator_chain: dict[str, Any], written: WrittenBundle, anvil: Anvil, tmp_path: Path
) -> None:
    from trainer.publish import _publish

    loose = tmp_path / "secret"
    loose.write_text(bytes(operator_chain["secret"]).hex())
    loose.chmod(0o644)
    args = _publish_args(operator_chain, anvil, written, signer_secret_file=str(loose))
    with pytest.raises(CliError, match=r"mode 0644.*chmod 600"):
        _publish(args)


def _stack_file(tmp_path: Path, chain: dict[str, Any], anvil: Anvil, store: Path) -> Path:
    stack = tmp_path / "stack.json"
    stack.write_text(
        json.dumps(
            {
                "rpc_url": anvil.rpc_url,
                "deployment_file": str(chain["deployment_file"]),
                "signer_url": chain["url"],
                "publisher": {"caller": "trainer", "secret_file": str(chain["secret_file"])},
                "model_store": str(store),
            }
        )
    )
    return stack


def test_publish_to_a_stack_refuses_a_bundle_outside_its_gateways_model_store_before_sending(
    operator_chain: dict[str, Any], written: WrittenBundle, anvil: Anvil, tmp_path: Path
) -> None:
    from trainer.publish import _publish

    store = tmp_path / "gateway-store"
    store.mkdir()
    stack = _stack_file(tmp_path, operator_chain, anvil, store)
    registry = operator_chain["deployment"].contract("SubnetRegistry")
    before = registry.functions.subnetCount().call()
    args = _publish_args(
        operator_chain, anvil, written, stack=stack, rpc_url=None, deployment=None,
        signer_url=None, signer_caller=None, signer_secret_file=None, name="outside",
    )  # fmt: skip
    with pytest.raises(CliError, match="loads bundles only from its model store") as caught:
        _publish(args)
    assert "--model-store" in str(caught.value) and "nothing was written" in str(caught.value)
    assert registry.functions.subnetCount().call() == before


def test_publish_to_a_stack_refuses_an_artifact_url_that_does_not_answer(
    operator_chain: dict[str, Any], written: WrittenBundle, anvil: Anvil, tmp_path: Path
) -> None:
    from contracts.chain import free_port
    from trainer.publish import _publish

    stack = _stack_file(tmp_path, operator_chain, anvil, written.path.parent)
    uri = f"http://127.0.0.1:{free_port()}/bundles/{written.sha256}/"
    args = _publish_args(operator_chain, anvil, written, stack=stack, artifact_uri=uri)
    with pytest.raises(CliError, match="could not fetch the bundle"):
        _publish(args)


def test_publish_names_the_missing_network_flags_or_the_stack_file(
    operator_chain: dict[str, Any], written: WrittenBundle, anvil: Anvil, tmp_path: Path
) -> None:
    from trainer.publish import _publish

    args = _publish_args(operator_chain, anvil, written, signer_url=None)
    with pytest.raises(CliError, match=r"missing --signer-url: .* --stack FILE"):
        _publish(args)
    args = _publish_args(operator_chain, anvil, written, stack=tmp_path / "absent.json")
    with pytest.raises(CliError, match="start `twopm up` first"):
        _publish(args)


def test_publish_by_flags_to_the_local_stack_still_checks_its_gateways_model_store(
    operator_chain: dict[str, Any],
    written: WrittenBundle,
    anvil: Anvil,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trainer.publish import _publish

    store = tmp_path / "gateway-store"
    store.mkdir()
    (tmp_path / ".state" / "up").mkdir(parents=True)
    _stack_file(tmp_path, operator_chain, anvil, store).rename(
        tmp_path / ".state" / "up" / "stack.json"
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CliError, match="loads bundles only from its model store"):
        _publish(_publish_args(operator_chain, anvil, written, name="by-flags"))


def _own_key_file(anvil: Anvil, tmp_path: Path, *, funded: bool = True) -> tuple[str, Path]:
    from clients.sdk import Wallet

    wallet = Wallet.create()
    if funded:
        anvil.w3.provider.make_request("anvil_setBalance", [wallet.address, hex(10**19)])  # type: ignore[arg-type]
    key = tmp_path / f"{wallet.address}.key"
    key.write_text(wallet._private_key_hex())
    key.chmod(0o600)
    return wallet.address, key


def _registered(anvil: Anvil, deployment: Deployment) -> None:
    nodes = deployment.contract("NodeRegistry")
    for idx in (5, 6, 7):
        if not nodes.functions.isRegistered(anvil.accounts[idx].address).call():
            _register(anvil, deployment, idx)


def test_a_model_owner_publishes_from_their_own_wallet_and_owns_the_subnet(
    operator_chain: dict[str, Any],
    written: WrittenBundle,
    anvil: Anvil,
    tmp_path: Path,
    capsys: Any,
) -> None:
    from trainer.publish import _publish

    dep = operator_chain["deployment"]
    _registered(anvil, dep)
    owner, key = _own_key_file(anvil, tmp_path)
    no_signer = {"signer_url": None, "signer_caller": None, "signer_secret_file": None}
    args = _publish_args(operator_chain, anvil, written, key_file=key, name="mine", **no_signer)
    assert _publish(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["owner"] == owner and out["created"] and out["version"] == 1
    reg = dep.contract("SubnetRegistry")
    assert reg.functions.subnetOf(out["subnet_id"]).call()[0] == owner
    # the next version of the same subnet, from the same wallet
    args = _publish_args(
        operator_chain, anvil, written, key_file=key, subnet_id=out["subnet_id"], **no_signer
    )
    assert _publish(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["subnet_id"], again["version"], again["created"]) == (out["subnet_id"], 2, False)


def test_a_model_owner_cannot_publish_to_a_subnet_that_is_not_theirs(
    operator_chain: dict[str, Any], written: WrittenBundle, anvil: Anvil, tmp_path: Path
) -> None:
    from trainer.publish import _publish

    dep = operator_chain["deployment"]
    _registered(anvil, dep)
    reg = dep.contract("SubnetRegistry")
    tx = reg.functions.createSubnet("not-yours", 1, 0, 0).transact(
        {"from": anvil.accounts[8].address}
    )
    anvil.w3.eth.wait_for_transaction_receipt(tx)
    foreign = reg.functions.subnetCount().call()
    owner, key = _own_key_file(anvil, tmp_path)
    args = _publish_args(operator_chain, anvil, written, key_file=key, subnet_id=foreign)
    with pytest.raises(CliError, match=rf"subnet {foreign} is owned by .*, not you, {owner}"):
        _publish(args)


def test_a_model_owner_without_eth_for_gas_is_told_before_anything_is_sent(
    operator_chain: dict[str, Any], written: WrittenBundle, anvil: Anvil, tmp_path: Path
) -> None:
    from trainer.publish import _publish

    owner, key = _own_key_file(anvil, tmp_path, funded=False)
    args = _publish_args(operator_chain, anvil, written, key_file=key, signer_url=None)
    with pytest.raises(CliError, match=f"{owner} holds no ETH to pay the gas"):
        _publish(args)


def test_a_model_owner_with_a_key_file_others_can_read_is_refused(
    operator_chain: dict[str, Any], written: WrittenBundle, anvil: Anvil, tmp_path: Path
) -> None:
    from trainer.publish import _publish

    _owner, key = _own_key_file(anvil, tmp_path)
    key.chmod(0o644)
    args = _publish_args(operator_chain, anvil, written, key_file=key)
    with pytest.raises(CliError, match="0644"):
        _publish(args)


def test_a_model_owner_hands_the_subnet_over_and_only_the_new_owner_publishes_next(
    operator_chain: dict[str, Any],
    written: WrittenBundle,
    anvil: Anvil,
    tmp_path: Path,
    capsys: Any,
) -> None:
    from clients.sdk import ChainClient, Wallet
    from trainer.publish import _publish

    dep = operator_chain["deployment"]
    _registered(anvil, dep)
    owner, owner_key = _own_key_file(anvil, tmp_path)
    heir, heir_key = _own_key_file(anvil, tmp_path)
    no_signer = {"signer_url": None, "signer_caller": None, "signer_secret_file": None}
    assert _publish(_publish_args(operator_chain, anvil, written, key_file=owner_key, name="handed", **no_signer)) == 0  # fmt: skip
    subnet = json.loads(capsys.readouterr().out)["subnet_id"]
    by_owner = ChainClient.from_deployment(dep, Wallet.from_key_file(owner_key), w3=anvil.w3)
    by_heir = ChainClient.from_deployment(dep, Wallet.from_key_file(heir_key), w3=anvil.w3)
    by_owner.transfer_subnet_ownership(subnet, heir)
    # proposed, not yet accepted: the old owner still publishes, the heir cannot
    with pytest.raises(CliError, match=rf"owned by {owner}, not you, {heir}"):
        _publish(_publish_args(operator_chain, anvil, written, key_file=heir_key, subnet_id=subnet, **no_signer))  # fmt: skip
    by_heir.accept_subnet_ownership(subnet)
    with pytest.raises(CliError, match=rf"owned by {heir}, not you, {owner}"):
        _publish(_publish_args(operator_chain, anvil, written, key_file=owner_key, subnet_id=subnet, **no_signer))  # fmt: skip
    assert _publish(_publish_args(operator_chain, anvil, written, key_file=heir_key, subnet_id=subnet, **no_signer)) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert (out["owner"], out["version"]) == (heir, 2)
