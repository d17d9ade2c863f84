"""``twopm demo``: start the local network, tour it as a wallet user, check everything, tear down.

The tour: sign in with Ethereum, stake stETH, deposit credit, sign the EIP-712 spending cap (the
gateway submits it through the signer), then for each subnet run plaintext inference and encrypted
inference on every row of its data in the column layout (one ciphertext per feature pair, all rows at
once) and in a one-row-per-ciphertext layout, and compare the decrypted logits with the plaintext ones
and the published coefficients. Then wait until every receipt is recorded on chain, prove each one
against its batch root, settle each subnet's revenue, and have every contributor claim. Any failed
check makes the command exit 1 after the summary says which.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from eth_typing import HexStr
from rich.console import Console
from rich.table import Table

from contracts import Transactor
from core.cli import CliError
from core.proc import ProcessError
from gateway import GatewaySettings
from stack.up import HOLDERS, Stack, start_stack, stop_on_signals

#: Rows a proven prediction is billed as (the gateway's ``proof_price_rows``; ``twopm up`` keeps
#: the default).
PROOF_PRICE_ROWS = GatewaySettings.proof_price_rows

LOGIT_TOLERANCE = 1e-4
STAKE_WEI = 2 * 10**17
CREDIT_WEI = 10**16


@dataclass
class Checks:
    """Named pass/fail results of the tour, in order."""

    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record one check; return whether it passed."""
        self.results.append((name, bool(ok), detail))
        return bool(ok)

    @property
    def failed(self) -> list[str]:
        """Names of the failed checks."""
        return [name for name, ok, _ in self.results if not ok]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``twopm demo`` to the ``twopm`` parser."""
    demo = subparsers.add_parser(
        "demo", help="start the local network, tour it as a wallet user, tear down"
    )
    demo.add_argument("--json", type=Path, help="also write the summary as JSON to this file")
    demo.add_argument(
        "--state-dir", type=Path, help="keep the network's state here (default: a temp dir)"
    )
    demo.add_argument("--redis-url", help="run the gateway on this Redis instead of in memory")
    demo.add_argument(
        "--chunked-training-proofs",
        action="store_true",
        help="the breast-cancer holders also prove their training, in 2-row chunks (minutes)",
    )
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``twopm demo``: 0 when every check passed, 1 otherwise."""
    console = Console()
    started = time.perf_counter()
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="twopm-demo-") as tmp, stop_on_signals():
        state_dir = args.state_dir or Path(tmp)
        try:
            stack = start_stack(
                state_dir,
                console=console,
                redis_url=args.redis_url,
                chunked_training_proofs=args.chunked_training_proofs,
            )
        except ProcessError as exc:
            raise CliError(f"the network did not start: {str(exc).splitlines()[0]}") from exc
        with stack:
            up_s = time.perf_counter() - started
            try:
                summary = tour(stack, console, checks)
            except Exception as exc:  # a crash is a failed check, reported with the others
                checks.add("the tour ran to the end", False, f"{type(exc).__name__}: {exc}")
                summary = {"subnets": []}
    summary["startup_s"] = round(up_s, 1)
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    summary["checks"] = [{"name": n, "ok": ok, "detail": d} for n, ok, d in checks.results]
    _print_summary(console, summary, checks)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        console.print(f"summary written to {args.json}")
    if checks.failed:
        console.print(f"[red]demo failed[/]: {'; '.join(checks.failed)}")
        return 1
    console.print(f"[green]every check passed[/] in {summary['wall_s']} s")
    return 0


def tour(stack: Stack, console: Console, checks: Checks) -> dict[str, Any]:
    """Play the wallet user against a running stack; record every check in ``checks``."""
    from clients.sdk import ChainClient, GatewayClient, Wallet
    from trainer.data import load_dataset

    accounts = stack.info["accounts"]
    user_key = accounts["wallet_users"][0]["private_key"]
    wallet = Wallet.from_key(user_key)
    chain = ChainClient.from_deployment(stack.deployment, wallet)
    w3 = stack.chain.w3
    console.print(f"[bold]•[/] wallet user {wallet.address}: stake, deposit, sign in, authorise")

    steth = stack.deployment.contract("MockStETH")
    Transactor(w3, user_key).transact(steth.functions.submit(wallet.address), value_wei=STAKE_WEI)
    chain.stake("stETH", STAKE_WEI)
    staked = chain.staked_value_wei()
    checks.add("stake counted in wei of ETH", staked >= STAKE_WEI - 1, f"{staked / 1e18:.3f} ETH")
    # wstETH as on Scroll: a test token anyone may mint, valued through the rate feed stand-in
    wsteth = stack.deployment.contract("MockWstETH")
    feed = stack.deployment.contract("WstETHRateFeed")
    wsteth_wei = STAKE_WEI // 10
    Transactor(w3, user_key).transact(wsteth.functions.mint(wallet.address, wsteth_wei))
    chain.stake("wstETH", wsteth_wei)
    answer = int(feed.functions.latestRoundData().call()[1])
    with_wsteth = chain.staked_value_wei()
    expected = staked + wsteth_wei * answer // 10**18
    checks.add(
        "wstETH valued through WstETHRateFeed (as on Scroll)",
        with_wsteth == expected,
        f"{wsteth_wei / 1e18:.3f} wstETH at {answer / 1e18:.4f} = {(with_wsteth - staked) / 1e18:.4f} ETH",
    )
    chain.deposit(CREDIT_WEI)

    gateway = GatewayClient(stack.gateway_url)
    summary: dict[str, Any] = {
        "gateway_url": stack.gateway_url,
        "rpc_url": stack.chain.rpc_url,
        "subnets": [],
    }
    with gateway:
        gateway.sign_in(wallet)
        me = gateway.me()
        checks.add(
            "signed in with Ethereum", me.address.lower() == wallet.address.lower(), me.address
        )
        gateway.submit_spending_authorization(chain.sign_spending_authorization(CREDIT_WEI))
        me = gateway.me()
        checks.add(
            "spending cap installed through the signer",
            _cap_left(me) > 0,
            f"{_cap_left(me)} wei left",
        )

        receipt_ids: dict[int, list[str]] = {}
        billed_rows: dict[int, int] = {}
        for subnet in stack.subnets:
            sid = int(subnet["id"])
            data = load_dataset(subnet["dataset"])
            console.print(
                f"[bold]•[/] subnet {sid} ({subnet['name']}): {len(data.y)} rows, plaintext and encrypted"
            )
            rows = [dict(zip(data.feature_names, map(float, r), strict=True)) for r in data.x]
            card = _card(stack, subnet)
            coef = np.array([card["coefficients"][n] for n in data.feature_names])
            reference = data.x @ coef + float(card["intercept"])

            plain = gateway.predict(sid, rows)
            plain_logits = plain.logits if plain.logits is not None else _logit(plain.probabilities)
            column = gateway.predict_encrypted(sid, rows, layout="column")
            single_layout = _single_row_layout(gateway, sid)
            single = gateway.predict_encrypted(sid, rows, layout=single_layout)
            assert column.logits is not None and single.logits is not None
            error_column = float(np.max(np.abs(column.logits - plain_logits)))
            error_single = float(np.max(np.abs(single.logits - plain_logits)))
            error_card = float(np.max(np.abs(plain_logits - reference)))
            checks.add(
                f"subnet {sid}: encrypted logits equal plaintext ones (column)",
                error_column <= LOGIT_TOLERANCE,
                f"max |error| {error_column:.1e}",
            )
            checks.add(
                f"subnet {sid}: encrypted logits equal plaintext ones ({single_layout})",
                error_single <= LOGIT_TOLERANCE,
                f"max |error| {error_single:.1e}",
            )
            checks.add(
                f"subnet {sid}: plaintext logits match the published coefficients",
                error_card <= 1e-6 * max(1.0, float(np.max(np.abs(reference)))),
                f"max |error| {error_card:.1e}",
            )
            accuracy = float(np.mean((plain.probabilities >= 0.5) == (data.y == 1)))
            receipt_ids[sid] = [*plain.receipt_ids, *column.receipt_ids, *single.receipt_ids]
            billed_rows[sid] = 3 * len(rows)
            proof_entry, proof_receipt = _prove_one(
                gateway, chain, w3, user_key, sid, rows[0], list(data.feature_names), checks
            )
            if proof_receipt:
                receipt_ids[sid].append(proof_receipt)
                billed_rows[sid] += PROOF_PRICE_ROWS
            training_verification = _verify_training(stack, subnet, checks)
            summary["subnets"].append(
                {
                    "id": sid,
                    "name": subnet["name"],
                    "model_hash": subnet["model_hash"],
                    "coefficients": {**card["coefficients"], "intercept": card["intercept"]},
                    "rounds": len(card.get("training", {}).get("history", [])),
                    "training_wall_s": subnet["training"].get("wall_s"),
                    "training_round_trips": subnet["training"].get("round_trips"),
                    "accuracy": round(accuracy, 4),
                    "max_abs_logit_error": max(error_column, error_single),
                    "max_abs_logit_error_by_layout": {
                        "column": error_column,
                        single_layout: error_single,
                    },
                    "rows": len(rows),
                    "proof": proof_entry,
                    "training_verification": training_verification,
                    "requests_billed": billed_rows[sid],
                    "receipts": len(receipt_ids[sid]),
                }
            )

        console.print(
            "[bold]•[/] waiting for every receipt to be recorded on chain, then proving each"
        )
        for entry in summary["subnets"]:
            sid = entry["id"]
            proven, rows_billed = 0, 0
            tx_hashes: set[str] = set()
            for rid in receipt_ids[sid]:
                record = gateway.wait_for_receipt(rid, timeout_s=120)
                rows_billed += record.rows
                if record.batch and record.batch.tx_hash:
                    tx_hashes.add(record.batch.tx_hash)
                proven += int(gateway.verify_receipt(record, chain).valid)
            gas = sum(int(w3.eth.get_transaction_receipt(HexStr(h))["gasUsed"]) for h in tx_hashes)
            entry.update(
                {"receipts_proven": proven, "batches": len(tx_hashes), "recording_gas": gas}
            )
            checks.add(
                f"subnet {sid}: every receipt proven on chain",
                proven == len(receipt_ids[sid]),
                f"{proven}/{len(receipt_ids[sid])} in {len(tx_hashes)} batch(es), {gas:,} gas",
            )
            checks.add(
                f"subnet {sid}: billed one request per row",
                rows_billed == billed_rows[sid],
                f"{rows_billed} rows",
            )

    console.print("[bold]•[/] settling revenue and claiming payouts")
    ledger = stack.deployment.contract("InferenceLedger")
    registry = stack.deployment.contract("SubnetRegistry")
    holder_keys = {
        a["address"]: a["private_key"]
        for holders in accounts["data_holders"].values()
        for a in holders
    }
    for entry, subnet in zip(summary["subnets"], stack.subnets, strict=True):
        sid = entry["id"]
        version = registry.functions.currentVersion(sid).call()
        unsettled = ledger.functions.revenueOf(sid, version).call()[0]
        first_holder = subnet["contributors"][0]
        if unsettled:
            Transactor(w3, holder_keys[first_holder]).transact(
                ledger.functions.settle(sid, version)
            )
        payouts: dict[str, int] = {}
        for contributor in subnet["contributors"]:
            owed = ledger.functions.claimableOf(contributor).call()
            if owed:
                Transactor(w3, holder_keys[contributor]).transact(ledger.functions.claim())
            payouts[contributor] = owed
        entry["payouts_claimed_wei"] = payouts
        checks.add(
            f"subnet {sid}: every contributor claimed a payout",
            len(payouts) == len(HOLDERS[subnet["dataset"]])
            and all(v > 0 for v in payouts.values()),
            f"{sum(payouts.values()):,} wei to {len(payouts)} contributors",
        )
    spent = ledger.functions.spentOf(wallet.address).call()
    expected = sum(
        e["requests_billed"] * s["price_wei"]
        for e, s in zip(summary["subnets"], stack.subnets, strict=True)
    )
    checks.add("the user was charged exactly price x rows", spent == expected, f"{spent:,} wei")
    return summary


def _prove_one(
    gateway: Any,
    chain: Any,
    w3: Any,
    user_key: str,
    sid: int,
    row: dict[str, float],
    feature_names: list[str],
    checks: Checks,
) -> tuple[dict[str, Any], str | None]:
    """Prove one row's logit, check it on chain twice (a call, then a transaction for its gas)."""
    from clients.sdk import Overloaded
    from zk import check_on_chain

    deadline = time.monotonic() + 600  # the gateway makes its proving keys at start (cached)
    while True:
        try:
            proven = gateway.predict_proven(sid, row)
            break
        except Overloaded:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    features = [float(row[n]) for n in feature_names]
    verified = chain.verify_prediction_proof(sid, proven, features)
    measured = check_on_chain(
        w3, proven.verifier, proven.proof, proven.instances, sender=Transactor(w3, user_key)
    )
    flipped = bytearray(proven.proof)
    flipped[7] ^= 0x01
    tampered = check_on_chain(w3, proven.verifier, bytes(flipped), proven.instances)
    checks.add(
        f"subnet {sid}: a proven prediction verifies on chain",
        verified and measured.verified,
        f"{proven.proving_s:.2f} s to prove, {measured.gas:,} gas to verify",
    )
    checks.add(
        f"subnet {sid}: a proof with one bit flipped is refused on chain",
        not tampered.verified,
        "verifyProof returned false",
    )
    entry = {
        "proving_s": round(proven.proving_s, 4),
        "proof_bytes": len(proven.proof),
        "verify_gas": measured.gas,
        "verified_on_chain": bool(verified and measured.verified),
        "verifier": proven.verifier,
        "proven_logit_error": abs(proven.proven_logit - proven.logit),
    }
    return entry, proven.receipt_id


def _cap_left(me: Any) -> int:
    return int(me.cap_left_wei or 0)


def _single_row_layout(gateway: Any, subnet_id: int) -> str:
    layouts = gateway.subnet(subnet_id).ckks.get("layouts", [])
    return "coeff" if "coeff" in layouts else "row"


def _card(stack: Stack, subnet: dict[str, Any]) -> dict[str, Any]:
    sha = subnet["model_hash"].removeprefix("0x")
    card: dict[str, Any] = json.loads(
        (stack.state_dir / "model-store" / sha / "card.json").read_text()
    )
    return card


def _verify_training(stack: Stack, subnet: dict[str, Any], checks: Checks) -> dict[str, Any]:
    """Verify a subnet's training from the chain (``twopm verify training``'s check) when proven."""
    from zk import verify_training

    proofs = subnet.get("training_proofs") or []
    if not proofs:
        return {
            "verified": None,
            "holders": [],
            "max_abs_gradient": None,
            "not_proven": (
                "chunked proofs (30 features) take minutes: twopm demo --chunked-training-proofs"
                if len(subnet.get("feature_names") or []) == 30
                else "no training circuit for this feature count (docs/proofs.md)"
            ),
        }
    found = verify_training(stack.deployment, int(subnet["id"]))
    checks.add(
        f"subnet {subnet['id']}: every holder's training proof and the stationarity check pass",
        found.verified,
        f"{len(found.holders)} holders, {found.n_rows} rows, max |gradient| "
        f"{found.max_abs_gradient or 0:.2e}"
        + ("; " + "; ".join(found.problems) if found.problems else ""),
    )
    entry = found.as_dict()
    entry["proving_s"] = [p["proving_s"] for p in proofs]
    entry["submit_gas"] = [p["submit_gas"] for p in proofs]
    entry["proofs"] = [p.get("proofs", 1) for p in proofs]
    return entry


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    return np.log(clipped / (1 - clipped))


def _print_summary(console: Console, summary: dict[str, Any], checks: Checks) -> None:
    if summary.get("subnets"):
        table = Table(title="2PM demo: subnets")
        for column in (
            "subnet",
            "rounds",
            "training s",
            "accuracy",
            "max logit error",
            "billed",
            "proven",
            "gas",
            "zk prove s",
            "zk verify gas",
            "claimed wei",
        ):
            table.add_column(column, justify="right")
        for s in summary["subnets"]:
            table.add_row(
                f"{s['id']} {s['name']}",
                str(s.get("rounds")),
                f"{s.get('training_wall_s') or math.nan:.1f}",
                f"{s['accuracy']:.3f}",
                f"{s['max_abs_logit_error']:.1e}",
                str(s["requests_billed"]),
                f"{s.get('receipts_proven', 0)}/{s['receipts']}",
                f"{s.get('recording_gas', 0):,}",
                f"{(s.get('proof') or {}).get('proving_s', math.nan):.2f}",
                f"{(s.get('proof') or {}).get('verify_gas') or 0:,}",
                f"{sum(s.get('payouts_claimed_wei', {}).values()):,}",
            )
        console.print(table)
    table = Table(title="2PM demo: checks")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for name, ok, detail in checks.results:
        table.add_row(name, "[green]ok[/]" if ok else "[red]FAILED[/]", detail)
    console.print(table)
