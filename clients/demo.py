"""``twopm demo``: the scripted tour of a 2PM network on a local chain.

This first tour covers what is on chain: it starts anvil, deploys the contracts, registers three data
holders, creates and publishes a subnet, then plays a wallet user (stake stETH, deposit credit, sign an
EIP-712 spending cap) and the operator (record the user's paid requests as one Merkle-rooted batch),
proves every receipt on chain, settles the revenue and lets each contributor claim. It exits non-zero
if any check fails. Later parts (the signer, federated training, the gateway and encrypted inference)
join the same tour.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from clients.errors import CliError
from contracts import Anvil, AnvilError, ContractRevert, MerkleTree, Receipt, Transactor, deploy_all
from contracts.eip712 import sign_typed_data, spending_authorization

PRICE_WEI = 10**13  # 0.00001 ETH per request
MIN_STAKE_WEI = 10**17  # 0.1 ETH of stake to call the subnet
REQUESTS = 32


@dataclass
class Checks:
    """Named pass/fail results of the tour."""

    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        """Record one check."""
        self.results.append((name, bool(ok), detail))

    @property
    def failed(self) -> list[str]:
        """Names of the checks that failed."""
        return [name for name, ok, _ in self.results if not ok]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``twopm demo`` to the ``twopm`` parser."""
    demo = subparsers.add_parser("demo", help="run the scripted tour of a local 2PM network")
    demo.add_argument("--json", type=Path, help="also write the summary as JSON to this file")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the tour; return 0 when every check passed, 1 otherwise."""
    console = Console()
    try:
        chain = Anvil.start()
    except AnvilError as exc:
        raise CliError(str(exc)) from exc
    with chain:
        checks = Checks()
        started = time.perf_counter()
        summary = _tour(chain, console, checks)
        summary["wall_s"] = round(time.perf_counter() - started, 2)
    summary["checks"] = [{"name": n, "ok": ok, "detail": d} for n, ok, d in checks.results]
    table = Table(title="2PM demo: on-chain tour")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for name, ok, detail in checks.results:
        table.add_row(name, "[green]ok[/]" if ok else "[red]FAILED[/]", detail)
    console.print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        console.print(f"summary written to {args.json}")
    if checks.failed:
        console.print(f"[red]demo failed:[/] {', '.join(checks.failed)}")
        return 1
    console.print("[green]every check passed[/]")
    return 0


def _tour(chain: Anvil, console: Console, checks: Checks) -> dict[str, Any]:
    a = chain.accounts
    deployer, operator_acct, fees, owner = a[0], a[1], a[2], a[3]
    holders, user = a[4:7], a[7]
    w3 = chain.w3
    with console.status("deploying contracts"):
        d = deploy_all(
            w3, deployer.private_key, operator=operator_acct.address, fee_recipient=fees.address
        )
    console.print(f"contracts deployed on {chain.rpc_url} (chain id {chain.chain_id})")
    nodes, vault, reg, ledger, steth = (
        d.contract(n)
        for n in ("NodeRegistry", "StakingVault", "SubnetRegistry", "InferenceLedger", "MockStETH")
    )
    tx = {acct.address: Transactor(w3, acct.private_key) for acct in a}
    gas: dict[str, int] = {}

    def send(acct: Any, call: Any, label: str, value: int = 0) -> Any:
        receipt = tx[acct.address].transact(call, value=value)
        gas[label] = gas.get(label, 0) + int(receipt["gasUsed"])
        return receipt

    # Data holders register; the model owner creates and publishes a subnet crediting them.
    rows = [12, 10, 10]  # Spector data split over three holders
    for i, holder in enumerate(holders):
        send(
            holder,
            nodes.functions.register(f"holder-{i + 1}", f"http://127.0.0.1:{9100 + i}"),
            "register node",
        )
    checks.add("three data holders registered", nodes.functions.nodeCount().call() == 3)
    send(
        owner,
        reg.functions.createSubnet("spector", PRICE_WEI, MIN_STAKE_WEI, 1000),
        "create subnet",
    )
    shares = [r * 10_000 // sum(rows) for r in rows]
    shares[0] += 10_000 - sum(shares)
    model_hash = hashlib.sha256(b"demo model bundle").digest()
    schema_hash = hashlib.sha256(b'["GPA","TUCE","PSI"]').digest()
    send(
        owner,
        reg.functions.publishModel(
            1,
            model_hash,
            "file:///models/demo",
            schema_hash,
            secrets.token_bytes(32),
            [h.address for h in holders],
            shares,
        ),
        "publish model",
    )
    checks.add("subnet published", reg.functions.currentVersion(1).call() == 1)

    # The wallet user stakes stETH, deposits credit and signs a spending cap.
    send(user, steth.functions.submit(user.address), "get stETH", value=2 * 10**17)
    send(user, steth.functions.approve(vault.address, 2 * 10**17), "approve stETH")
    send(user, vault.functions.stake(steth.address, 2 * 10**17), "stake")
    stake = vault.functions.stakedValueOf(user.address).call()
    checks.add("stake meets the subnet minimum", stake >= MIN_STAKE_WEI, f"{stake / 1e18:.3f} ETH")
    send(user, ledger.functions.deposit(), "deposit", value=10**16)
    expiry = w3.eth.get_block("latest")["timestamp"] + 3600
    cap = REQUESTS * PRICE_WEI
    typed = spending_authorization(
        chain_id=chain.chain_id,
        ledger=ledger.address,
        user=user.address,
        max_total_spend_wei=cap,
        expiry=expiry,
        nonce=1,
    )
    signature = sign_typed_data(user.private_key, typed)
    send(
        operator_acct,
        ledger.functions.authorizeSpending(user.address, cap, expiry, 1, signature),
        "authorize spending",
    )

    # The operator records the user's paid requests as one batch.
    now = int(time.time())
    receipts = [
        Receipt(
            secrets.token_bytes(32),
            user.address,
            1,
            model_hash,
            secrets.token_bytes(32),
            secrets.token_bytes(32),
            PRICE_WEI,
            now,
        )
        for _ in range(REQUESTS)
    ]
    tree = MerkleTree([r.leaf() for r in receipts])
    send(
        operator_acct,
        ledger.functions.recordBatch(1, tree.root, [user.address], [cap], REQUESTS),
        "record batch",
    )
    proven = sum(
        ledger.functions.verifyReceipt(1, r.as_tuple(), tree.proof(r.leaf())).call()
        for r in receipts
    )
    checks.add("every receipt proven on chain", proven == REQUESTS, f"{proven}/{REQUESTS}")
    try:
        send(
            operator_acct,
            ledger.functions.recordBatch(1, tree.root, [user.address], [PRICE_WEI], 1),
            "over cap",
        )
        checks.add("a debit beyond the signed cap is refused", False)
    except ContractRevert as exc:
        checks.add(
            "a debit beyond the signed cap is refused",
            exc.name == "InferenceLedgerCapExceeded",
            exc.name,
        )

    # Settlement and pull payments.
    send(owner, ledger.functions.settle(1, 1), "settle")
    claimed: dict[str, int] = {}
    for holder in holders:
        owed = ledger.functions.claimableOf(holder.address).call()
        send(holder, ledger.functions.claim(), "claim")
        claimed[holder.address] = owed
    total = cap
    fee = total * 500 // 10_000
    checks.add(
        "contributors claimed their shares",
        sum(claimed.values()) + fee + ledger.functions.claimableOf(owner.address).call() == total,
        f"{sum(claimed.values())} wei to {len(claimed)} holders",
    )
    checks.add(
        "the ledger holds exactly the unspent credit",
        w3.eth.get_balance(ledger.address)
        == 10**16
        - total
        + ledger.functions.claimableOf(owner.address).call()
        + ledger.functions.claimableOf(fees.address).call(),
    )
    return {
        "rpc_url": chain.rpc_url,
        "chain_id": chain.chain_id,
        "contracts": d.addresses,
        "subnets": [
            {"id": 1, "name": "spector", "requests_billed": REQUESTS, "receipts_proven": proven}
        ],
        "payouts_claimed_wei": claimed,
        "gas": gas,
    }
