"""The operator's dashboard at /app/operator/, in headless Chromium against the real stack.

The chain gets what a demo leaves behind (a node registered from its own key, a subnet with a model
version, a batch recorded by the operator, revenue settled and claimable), each a real transaction
on the session's anvil. The operator signs in with SIWE on the wallet page (anvil account 1 holds
the ledger's operator role) and the dashboard shows the numbers; the admin key opens it too. An
anonymous caller gets 401 and a signed-in address that is not the operator's 403, on the JSON
route and on the page.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page
from roles_support import earn_revenue
from web_support import WebStack

from clients.sdk import Wallet
from contracts import Transactor
from signer import SignerClient
from trainer.bundle import result_to_card, write_bundle
from trainer.data import load_dataset, split_rows
from trainer.task import JobConfig, NodeReport, TrainingJob, compute_reply

OVERVIEW = "/v1/operator/overview"
PRICE_WEI = 3 * 10**15


@pytest.fixture(scope="module")
def demo(stack: WebStack) -> dict[str, Any]:
    """Put a node, a published subnet, a recorded batch and settled revenue on the chain."""
    w3 = stack.anvil.w3
    nodes = stack.deployment.contract("NodeRegistry")
    holder = Wallet.create()
    w3.provider.make_request("anvil_setBalance", [holder.address, hex(10**18)])  # type: ignore[arg-type]
    Transactor(w3, holder._private_key_hex()).transact(
        nodes.functions.register("dash-node", "https://dash.example:9092")
    )
    earner = Wallet.create()
    w3.provider.make_request("anvil_setBalance", [earner.address, hex(10**19)])  # type: ignore[arg-type]
    claimable_wei = earn_revenue(stack.anvil, stack.deployment, earner, PRICE_WEI)
    # a second subnet's batch an hour later, so the chart has a time axis
    stack.anvil.increase_time(3600)
    later = Wallet.create()
    w3.provider.make_request("anvil_setBalance", [later.address, hex(10**19)])  # type: ignore[arg-type]
    earn_revenue(stack.anvil, stack.deployment, later, 2 * PRICE_WEI)
    ledger = stack.deployment.contract("InferenceLedger")
    logs = ledger.events.BatchRecorded.get_logs(from_block=0)
    run = _published_training_run(stack)
    with SignerClient(stack.signer.url, "gateway", stack.signer.secret) as signer:
        signer.address()  # an entry in the signer's audit log
    return {
        "run": run,
        "holder": holder.address,
        "earner": earner.address,
        "claimable_wei": claimable_wei,
        "node_count": int(nodes.functions.nodeCount().call()),
        "recorded": sum(int(log["args"]["requestCount"]) for log in logs),
        "recorded_wei": sum(int(log["args"]["totalWei"]) for log in logs),
        "batches": logs,
        "tx_hash": "0x" + bytes(logs[-1]["transactionHash"]).hex(),
        "gas_used": int(w3.eth.get_transaction_receipt(logs[-1]["transactionHash"])["gasUsed"]),
    }


def _published_training_run(stack: WebStack) -> dict[str, Any]:
    """Train on Spector over three in-process nodes, one dropping out after round 1; publish it.

    The bundle goes into the gateway's model store and its hash on chain as a new subnet's
    version, as `twopm up` and `twopm publish` do.
    """
    data = load_dataset("spector")
    parts = [data.take(ix) for ix in split_rows(data, 3, mode="iid")]
    job = TrainingJob(JobConfig(data.feature_names, data.label, n_nodes=3))
    holders = [Wallet.create().address for _ in parts]
    ids = [0, 1, 2]
    while not job.done:
        request = job.request()
        replies = [compute_reply(parts[i], request, job.config) for i in ids]
        job.absorb(
            np.sum([r.secure_vector() for r in replies], axis=0),
            [NodeReport(i, holders[i], r.n_rows, r.n_holdout, r.metrics)
             for i, r in zip(ids, replies, strict=True)],
        )  # fmt: skip
        ids = [0, 1]  # node 2 drops out after round 1
    result = job.result()
    assert stack.model_store is not None
    written = write_bundle(
        result_to_card(result, secure=True, job_name="dash-run"), stack.model_store
    )
    w3 = stack.anvil.w3
    registry = stack.deployment.contract("SubnetRegistry")
    owner = Transactor(w3, stack.account(0).private_key)
    subnet_id = int(registry.functions.subnetCount().call()) + 1
    owner.transact(registry.functions.createSubnet("trained", PRICE_WEI, 0, 1000))
    digest = bytes.fromhex(written.sha256)
    owner.transact(
        registry.functions.publishModel(subnet_id, digest, Path(written.path).as_uri(), digest,
                                        digest, holders[:2], [5000, 5000])
    )  # fmt: skip
    return {
        "subnet_id": subnet_id,
        "rounds": result.iterations,
        "n_rows": result.n_rows,
        "dropped": result.dropped_nodes,
        "last_grad": result.history[-1]["grad_max_abs"],
    }


def _eth(wei: int) -> str:
    whole, frac = divmod(wei, 10**18)
    text = f"{frac:018d}".rstrip("0")
    return f"{whole}.{text} ETH" if text else f"{whole} ETH"


def test_anonymous_and_wrong_keys_are_refused(stack: WebStack, demo: dict[str, Any]) -> None:
    r = httpx.get(stack.url + OVERVIEW)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = httpx.get(stack.url + OVERVIEW, headers={"X-Admin-Key": "not-the-key"})
    assert r.status_code == 401 and r.json()["detail"] == "wrong admin key", r.text
    r = httpx.get(stack.url + OVERVIEW, headers={"Authorization": "Bearer twopm_x_y"})
    assert r.status_code == 403, r.text


def test_the_admin_key_opens_the_json_route(stack: WebStack, demo: dict[str, Any]) -> None:
    r = httpx.get(stack.url + OVERVIEW, headers={"X-Admin-Key": stack.admin_key})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["operator"] == stack.account(1).address
    assert body["signed_in_as"] == "admin key"
    assert len(body["nodes"]) == demo["node_count"]
    assert {"address": demo["holder"], "name": "dash-node"}.items() <= next(
        n for n in body["nodes"] if n["name"] == "dash-node"
    ).items()
    assert body["receipts"]["recorded"] == demo["recorded"]
    batch = next(b for b in body["batches"] if b["tx_hash"] == demo["tx_hash"])
    assert batch["gas_used"] == demo["gas_used"] and batch["requests"] == 1
    block = stack.anvil.w3.eth.get_block(batch["block_number"])
    assert batch["recorded_at"] == block["timestamp"]
    assert batch["total_wei"] == str(2 * PRICE_WEI)  # the newest: the later subnet's
    earner = next(r for r in body["revenue"] if r["account"] == demo["earner"])
    assert earner["claimable_wei"] == str(demo["claimable_wei"]) == earner["settled_wei"]
    versions = [
        v for s in body["subnets"] for v in s["versions"] if demo["earner"] in v["contributors"]
    ]
    assert len(versions) == 1 and versions[0]["settled_wei"] == str(PRICE_WEI)
    assert versions[0]["training_run_id"] == "0x" + "22" * 32  # as roles_support publishes it
    run = next(r for r in body["training_runs"] if r["subnet_id"] == demo["run"]["subnet_id"])
    assert run["rounds"] == demo["run"]["rounds"] == len(run["history"])
    assert run["n_rows"] == demo["run"]["n_rows"] == 22  # the two nodes that finished
    assert run["dropped_nodes"] == demo["run"]["dropped"] == [2]
    assert run["min_nodes"] == 2 and run["converged"] and run["job_name"] == "dash-run"
    assert [h["round"] for h in run["history"]] == list(range(1, run["rounds"] + 1))
    audit = body["signer_audit"]
    assert audit["error"] is None and audit["entries"]
    assert any(e["event"] == "address" and e["caller"] == "gateway" for e in audit["entries"])


def _sign_in(open_page: Callable[..., tuple[Page, Any]], index: int) -> Page:
    page, _bridge = open_page(index)
    page.click("#connect")
    page.wait_for_selector("#signin:not([disabled])")
    page.click("#signin")
    page.wait_for_selector("#screen-account:not([hidden])")
    page.goto(page.url.split("/app/")[0] + "/app/operator/")
    page.wait_for_selector("body[data-ready]")
    return page


def test_the_operator_signs_in_and_sees_what_the_network_did(
    stack: WebStack,
    demo: dict[str, Any],
    open_page: Callable[..., tuple[Page, Any]],
    artifacts: Callable[[Page, str], Path],
) -> None:
    page = _sign_in(open_page, 1)
    page.wait_for_selector("#dashboard:not([hidden])")
    assert page.text_content("#who") == f"Signed in: {stack.account(1).address}"
    assert page.text_content("#node-count") == str(demo["node_count"])
    assert page.text_content("#receipts-recorded") == str(demo["recorded"])
    assert page.is_visible(f"#batches td:text-is('{demo['tx_hash']}')")
    assert page.is_visible(f"#batches td:text-is('{demo['gas_used']}')")
    assert page.is_visible("#nodes td:text-is('dash-node')")
    row = page.locator("#revenue tr", has_text=demo["earner"])
    assert row.locator("td").nth(2).text_content() == _eth(demo["claimable_wei"])
    assert page.locator("#chart rect.bar").count() == len(demo["batches"])
    assert page.text_content("#revenue-total") == _eth(demo["recorded_wei"])
    run = page.locator("#training tr", has_text="dash-run").locator("td")
    assert run.nth(3).text_content() == str(demo["run"]["rounds"])
    assert run.nth(5).text_content() == "22"
    assert run.nth(7).text_content() == "2"  # the node that dropped out
    assert page.locator("#training svg.spark polyline").count() >= 1
    assert page.locator("#rounds tr").count() >= demo["run"]["rounds"]
    assert page.is_visible("#audit td:text-is('address')")
    assert "newest entries of the signer's hash-chained log" in (
        page.text_content("#audit-status") or ""
    )
    shot = artifacts(page, "operator-dashboard")
    assert shot.stat().st_size > 20_000  # a rendered page of tables, not a blank one


def test_a_signed_in_user_who_is_not_the_operator_gets_403(
    stack: WebStack, demo: dict[str, Any], open_page: Callable[..., tuple[Page, Any]]
) -> None:
    page = _sign_in(open_page, 9)
    page.wait_for_selector("body[data-status='403']")
    assert page.is_hidden("#dashboard")
    assert f"{stack.account(9).address} is not this network's operator" in (
        page.text_content("#error") or ""
    )


def test_the_admin_key_opens_the_page_and_a_wrong_one_is_shown(
    stack: WebStack, demo: dict[str, Any], open_page: Callable[..., tuple[Page, Any]]
) -> None:
    page, _ = open_page(0, wallet=False)
    page.goto(stack.url + "/app/operator/")
    page.wait_for_selector("body[data-status='401']")
    assert page.is_visible("#signin") and page.is_hidden("#error")
    page.fill("#admin-key", "wrong")
    page.click("#admin-form button")
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "wrong admin key"
    page.fill("#admin-key", stack.admin_key)
    page.click("#admin-form button")
    page.wait_for_selector("#dashboard:not([hidden])")
    assert page.text_content("#who") == "Signed in: admin key"
    assert page.text_content("#receipts-recorded") == str(demo["recorded"])
