"""Every role does its whole job with its own key, on `twopm up`'s local chain, from the terminal.

Fresh wallets (funded with ETH by the local chain's deployer, which is setup, not a role):

* three data holders register in NodeRegistry, make and sign their SuperNode keys, run their
  SuperNodes with them, settle and claim their revenue shares;
* the operator runs a SuperLink over TLS that admits only registered holders' keys (`twopm node
  admit`), records the paid requests on chain through its signer (the gateway does), and reads
  the dashboard with the admin key;
* the model owner trains against that SuperLink (`twopm train`) and publishes from its own wallet
  (`twopm publish --key-file`), then claims its owner share;
* a wallet user signs in, stakes test stETH, deposits, authorises spending, predicts on the new
  subnet and checks a receipt on chain.

At the end the operator opens the dashboard (/app/operator/) in headless Chromium with the admin
key `twopm up` wrote; a screenshot goes to test-artifacts/web/roles-walk-operator-dashboard.png and
the page's text must show this run's numbers, each read from the chain, the run's model card or
the overview JSON: the training run and its rounds, the subnet's model version, the receipts
recorded and the batch, revenue settled and claimable per account, the signer's recordBatch entry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from eth_account import Account
from playwright.sync_api import Page, sync_playwright
from service_support import drop_redis_namespace
from test_stack_up_and_demo import REDIS_URL, Up
from web3 import Web3
from web_support import CHROMIUM, CHROMIUM_ARGS, PageOpener, screenshot

from contracts import Transactor, load_artifact
from core.net import free_port
from core.proc import spawn, terminate
from trainer.data import load_dataset, split_rows, write_csv
from trainer.deployment import _env, _wait_port, flwr_bin
from trainer.nodeauth import make_tls_files

TWOPM = [sys.executable, "-m", "clients"]

pytestmark = pytest.mark.skipif(
    os.environ.get("TWOPM_SLOW_TESTS") != "1",
    reason="starts `twopm up` and trains over authenticated SuperNodes (minutes); "
    "set TWOPM_SLOW_TESTS=1",
)


def run(*args: str, cwd: Path, timeout: float = 300) -> str:
    """Run `twopm ARGS`; assert exit 0; return stdout."""
    env = {**os.environ, "HOME": str(cwd)}
    done = subprocess.run(
        [*TWOPM, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )
    assert done.returncode == 0, f"twopm {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _key_file(path: Path, account: object) -> Path:
    path.write_text("0x" + bytes(account.key).hex() + "\n")  # type: ignore[attr-defined]
    path.chmod(0o600)
    return path


@pytest.mark.slow
def test_every_role_does_its_whole_job_with_its_own_key(tmp_path: Path) -> None:
    up = Up(tmp_path / "state")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        _walk(up, tmp_path, procs)
    finally:
        for proc in reversed(procs):
            terminate(proc, 5.0)
        up.stop()
        # the shared Redis keeps nothing of this stack (its gateways' keys, queue and lease)
        drop_redis_namespace(REDIS_URL, up.info["redis_namespace"])


def _walk(up: Up, tmp: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    info = up.info
    stack = ["--stack", str(up.state / "stack.json")]
    w3 = Web3(Web3.HTTPProvider(info["rpc_url"]))
    funder = info["accounts"]["deployer"]["address"]
    holders = [Account.create() for _ in range(3)]
    owner, user = Account.create(), Account.create()
    for acct in [*holders, owner, user]:
        tx = w3.eth.send_transaction({"from": funder, "to": acct.address, "value": 10**18})
        w3.eth.wait_for_transaction_receipt(tx)
    keys = tmp / "keys"
    keys.mkdir()
    holder_keys = [_key_file(keys / f"holder-{i}.key", h) for i, h in enumerate(holders)]
    owner_key, user_key = _key_file(keys / "owner.key", owner), _key_file(keys / "user.key", user)

    # data holders: their own NodeRegistry entries and node keys signed with their wallets
    for i, key in enumerate(holder_keys):
        out = run("node", "register", "--name", f"walk-{i}", "--url", f"https://walk{i}.example",
                  "--key-file", str(key), *stack, cwd=tmp)  # fmt: skip
        assert out.startswith(holders[i].address)
        out = run("node", "key", "--out", str(keys / f"node-{i}"), "--key-file", str(key), *stack,
                  cwd=tmp)  # fmt: skip
        assert out.startswith(holders[i].address) and len(out.strip().splitlines()) == 1

    # the operator's SuperLink admits only keys whose signer NodeRegistry lists
    tls = make_tls_files(tmp / "tls")
    port = free_port()
    superlink = f"127.0.0.1:{port}"
    log = tmp / "superlink.log"
    link = spawn([flwr_bin("flower-superlink"), *tls.superlink_args(), "--enable-supernode-auth",
                  "--host", "127.0.0.1", "--port", str(port)], log_path=log,
                 env=_env(tmp / "superlink-home"))  # fmt: skip
    procs.append(link)
    _wait_port(port, link, log, 30.0)
    for i, holder in enumerate(holders):
        out = run("node", "admit", str(keys / f"node-{i}.pub"), "--superlink", superlink,
                  "--root-certificates", str(tls.ca_cert), *stack, cwd=tmp)  # fmt: skip
        assert out.startswith(f"{holder.address} admitted: SuperNode ")

    # the holders run their SuperNodes on their own rows with their admitted keys
    data = load_dataset("spector")
    for i, rows in enumerate(split_rows(data, 3, mode="iid")):
        csv = tmp / f"holder-{i}.csv"
        write_csv(data.take(rows), csv)
        node_log = (tmp / f"node-{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    *TWOPM,
                    "node",
                    "--data",
                    str(csv),
                    "--label",
                    data.label,
                    "--superlink",
                    superlink,
                    "--root-certificates",
                    str(tls.ca_cert),
                    "--auth-key",
                    str(keys / f"node-{i}"),
                    "--operator-address",
                    holders[i].address,
                    "--runtime-port",
                    str(free_port()),
                ],
                stdout=node_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=tmp,
            )
        )

    # the model owner trains against the SuperLink and publishes from its own wallet
    result_file = tmp / "train.json"
    run("train", "--superlink", superlink, "--root-certificates", str(tls.ca_cert), "--dataset",
        "spector", "--nodes", "3", "--model-store", info["model_store"], "--output-dir",
        str(tmp / "run"), "--json", str(result_file), cwd=tmp, timeout=600)  # fmt: skip
    trained = json.loads(result_file.read_text())
    card = trained["card"]
    assert sorted(n["operator_address"] for n in card["nodes"]) == sorted(
        h.address for h in holders
    )
    published = json.loads(
        run(
            "publish",
            *stack,
            "--bundle",
            info["model_store"],
            "--sha256",
            trained["sha256"],
            "--name",
            "walk",
            "--key-file",
            str(owner_key),
            cwd=tmp,
        )
    )
    subnet_id = int(published["subnet_id"])
    assert published["owner"] == owner.address
    assert sorted(published["contributors"]) == sorted(h.address for h in holders)

    # the wallet user pays for predictions on the new subnet
    session = ["--key-file", str(user_key), "--session-file", str(tmp / "sessions.json"), *stack]
    run("login", *session, cwd=tmp)
    for step in (("faucet", "stETH", "0.3"), ("stake", "stETH", "0.2"), ("deposit", "0.01"),
                 ("authorize", "0.01", "--days", "1")):  # fmt: skip
        run(*step, *session, cwd=tmp)
    rows = tmp / "rows.csv"
    rows.write_text("GPA,TUCE,PSI\n2.66,20,0\n3.92,29,1\n3.51,26,1\n")
    env = {**os.environ, "HOME": str(tmp)}
    predicted = subprocess.run(
        [*TWOPM, "predict", str(rows), "--subnet", str(subnet_id), *session],
        cwd=tmp, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    assert len(predicted.stdout.strip().splitlines()) == 4
    receipt_id = predicted.stderr.strip().split("receipts: ")[-1].split(",")[0].strip()
    proof = run("receipt", receipt_id, "--wait", "120", *session, cwd=tmp)
    assert "valid on chain" in proof

    # the holders settle the subnet's revenue and each claims its share; so does the owner
    ledger = w3.eth.contract(
        address=info["contracts"]["InferenceLedger"], abi=load_artifact("InferenceLedger").abi
    )
    version = int(published["version"])
    assert int(ledger.functions.revenueOf(subnet_id, version).call()[0]) > 0
    Transactor(w3, "0x" + bytes(holders[0].key).hex()).transact(
        ledger.functions.settle(subnet_id, version)
    )
    for acct, key in [*zip(holders, holder_keys, strict=True), (owner, owner_key)]:
        out = run("claim", "--key-file", str(key), *stack, cwd=tmp)
        assert out.startswith(f"{acct.address} claimed ")

    # the operator's dashboard shows the run, its rounds, the batch and the signer's entries
    admin_key = Path(info["admin_key_file"]).read_text().strip()
    body = httpx.get(
        info["gateway_url"] + "/v1/operator/overview",
        headers={"X-Admin-Key": admin_key},
        timeout=60,
    ).json()
    run_seen = next(r for r in body["training_runs"] if r["subnet_id"] == subnet_id)
    assert run_seen["rounds"] == card["training"]["rounds"] == len(run_seen["history"])
    assert sorted(n["operator_address"] for n in run_seen["nodes"]) == sorted(
        h.address for h in holders
    )
    assert any(b["subnet_id"] == subnet_id and b["requests"] == 3 for b in body["batches"]), body[
        "batches"
    ]
    assert any(
        e.get("function", "").startswith("recordBatch") for e in body["signer_audit"]["entries"]
    )
    assert {n["address"] for n in body["nodes"]} >= {h.address for h in holders}
    _dashboard_shows_the_run(info, admin_key, body, w3, trained, published)


def _eth(wei: int) -> str:
    """Wei as the dashboard writes it (operator.js ``eth``): exact, trailing zeros dropped."""
    whole, frac = divmod(wei, 10**18)
    text = f"{frac:018d}".rstrip("0")
    return f"{whole}.{text} ETH" if text else f"{whole} ETH"


def _rows(page: Page, tbody: str) -> list[list[str]]:
    """The text of every cell of every row of table body ``#TBODY``."""
    return page.eval_on_selector_all(
        f"#{tbody} tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )


def _dashboard_shows_the_run(
    info: dict[str, Any],
    admin_key: str,
    body: dict[str, Any],
    w3: Web3,
    trained: dict[str, Any],
    published: dict[str, Any],
) -> None:
    """Open /app/operator/ in Chromium with the admin key; check this run's numbers in its text."""
    contract = {
        name: w3.eth.contract(address=info["contracts"][name], abi=load_artifact(name).abi)
        for name in ("InferenceLedger", "NodeRegistry", "SubnetRegistry")
    }
    ledger = contract["InferenceLedger"]
    subnet_id, version = int(published["subnet_id"]), int(published["version"])
    card = trained["card"]
    # what happened, from the chain
    recorded = ledger.events.BatchRecorded.get_logs(from_block=0)
    (batch,) = [log for log in recorded if int(log["args"]["subnetId"]) == subnet_id]
    batch_tx = "0x" + bytes(batch["transactionHash"]).hex()
    gas_used = int(w3.eth.get_transaction_receipt(batch["transactionHash"])["gasUsed"])
    payouts = ledger.events.PayoutAccrued.get_logs(from_block=0)
    settled_to: dict[str, int] = {}
    for log in payouts:
        account = str(log["args"]["account"])
        settled_to[account] = settled_to.get(account, 0) + int(log["args"]["amountWei"])
    paid_here = {
        str(log["args"]["account"]) for log in payouts if log["args"]["subnetId"] == subnet_id
    }
    assert paid_here >= {published["owner"], *published["contributors"]}, paid_here
    unsettled_wei, settled_wei = ledger.functions.revenueOf(subnet_id, version).call()
    assert int(settled_wei) > 0

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        opener = PageOpener(browser, SimpleNamespace(url=info["gateway_url"]))  # type: ignore[arg-type]
        try:
            page, _ = opener.open(0, wallet=False)
            page.goto(info["gateway_url"] + "/app/operator/")
            page.wait_for_selector("body[data-status='401']")
            page.fill("#admin-key", admin_key)
            page.click("#admin-form button")
            page.wait_for_selector("#dashboard:not([hidden])")
            shot = screenshot(page, "roles-walk-operator-dashboard")
            assert shot.stat().st_size > 20_000  # a rendered page of tables, not a blank one
            text = page.text_content

            assert text("#who") == "Signed in: admin key"
            assert text("#operator") == ledger.functions.operator().call()
            assert text("#node-count") == str(contract["NodeRegistry"].functions.nodeCount().call())
            subnets = int(contract["SubnetRegistry"].functions.subnetCount().call())
            assert text("#subnet-count") == str(subnets)
            assert text("#receipts-recorded") == str(
                sum(int(log["args"]["requestCount"]) for log in recorded)
            )
            assert text("#revenue-settled") == _eth(sum(settled_to.values()))
            claimable = {
                r["account"]: int(ledger.functions.claimableOf(r["account"]).call())
                for r in body["revenue"]
            }
            assert text("#revenue-claimable") == _eth(sum(claimable.values()))

            # the training run of this walk and each of its rounds, as its model card says
            training = card["training"]
            (run_row,) = [
                r for r in _rows(page, "training") if r[:2] == [str(subnet_id), str(version)]
            ]
            assert run_row[2:9] == [
                card["job_name"],
                str(training["rounds"]),
                "yes" if training["converged"] else "no",
                str(card["n_rows"]),
                run_row[6],  # the nodes, checked below
                ", ".join(map(str, training["dropped_nodes"])) or "none",
                "" if training["min_nodes"] is None else str(training["min_nodes"]),
            ], run_row
            for node in card["nodes"]:
                assert f"{node['operator_address'][:10]}… ({node['n_rows']})" in run_row[6]
            rounds = [r for r in _rows(page, "rounds") if r[:2] == [str(subnet_id), str(version)]]
            assert [r[2:4] for r in rounds] == [
                [str(i), f"{h['loglik']:.6f}"] for i, h in enumerate(training["history"], 1)
            ]

            # the subnet's model version: hash, contributors, revenue settled and left
            (version_row,) = [
                r for r in _rows(page, "subnets") if r[0] == str(subnet_id) and r[3] == str(version)
            ]
            assert version_row[1:5] == [
                "walk",
                published["owner"],
                str(version),
                "0x" + trained["sha256"][:16] + "…",
            ], version_row
            for holder in published["contributors"]:
                assert holder[:10] + "…" in version_row[6]
            assert version_row[7:9] == [_eth(int(settled_wei)), _eth(int(unsettled_wei))]

            # the batch of the walk's three paid requests
            (batch_row,) = [r for r in _rows(page, "batches") if r[7] == batch_tx]
            args = batch["args"]
            assert batch_row[:7] == [
                str(args["batchId"]), str(subnet_id), str(args["version"]),
                str(args["requestCount"]), _eth(int(args["totalWei"])), str(gas_used),
                str(batch["blockNumber"]),
            ], batch_row  # fmt: skip
            assert page.locator("#chart rect.bar").count() == len(recorded)
            assert text("#revenue-total") == _eth(sum(int(g["args"]["totalWei"]) for g in recorded))

            # revenue per account: each contributor's and the owner's settled share, claimable now
            revenue = {r[0]: r[1:] for r in _rows(page, "revenue")}
            for account in paid_here:
                assert revenue[account] == [_eth(settled_to[account]), _eth(claimable[account])]

            # the signer's audit entry of the recordBatch transaction that recorded the batch
            assert any(
                r[4] == "signed" and r[5].startswith("recordBatch(") and r[6] == batch_tx
                for r in _rows(page, "audit")
            ), _rows(page, "audit")
        finally:
            opener.close()
            browser.close()
