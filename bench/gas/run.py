"""Gas of every state-changing contract function, and of recording paid requests in batches.

Run: ``python -m bench.gas.run [--out bench/gas/results.json]``. Starts its own anvil (Shanghai rules,
chain id 534351). The batch figures sit beside two baselines measured in the same run on the same
chain: one transaction per request (the original 2PM) and one event per request inside a batch
transaction (``PerRequestLedger``, a benchmark-only contract).

Target (issue 2): at 1 000 receipts from 10 users, at most 150 gas per recorded request.

On Scroll every transaction also pays an L1 data fee (Galileo: it grows faster than linearly in the
zstd-compressed size). ``l1.json`` gives, for each batch size and two mixes of users (every request from
a new user; ten requests per user), the L2 fee (gas x an assumed L2 gas price), the L1 fee read from the
``L1GasPriceOracle`` stand-in at its predeploy address (``contracts.scroll``) and their sum per recorded
request, and picks the batch size that minimises the sum among those within the signer's gas cap.
"""

from __future__ import annotations

import argparse
import secrets
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from web3.types import TxReceipt

from bench._report import peak_rss_mib, write_report
from contracts import Anvil, MerkleTree, Receipt, Transactor, deploy_all
from contracts.eip712 import sign_typed_data, spending_authorization
from contracts.scroll import compress, onchain_l1_fee_wei, read_l1_fee_params

PRICE_WEI = 10**12  # price of one request; the per-user debit is a sum of these
TARGET_GAS_PER_REQUEST = 150
#: Assumed Scroll L2 gas price, wei (0.02 gwei); the L2 fee is gasUsed times this. Pass --l2-gas-price-wei.
DEFAULT_L2_GAS_PRICE_WEI = 20_000_000
#: The signer policy's default gas cap per transaction (signer.Limits.max_gas_per_tx).
MAX_GAS_PER_TX = 3_000_000
#: Batch sizes (recorded requests per recordBatch) compared for the L1 + L2 cost.
L1_BATCH_SIZES = (1, 10, 50, 100, 200, 400, 800, 1600, 3200)
#: Mixes of users: name -> requests per distinct user in a batch.
USER_MIXES = {"new user per request": 1, "10 requests per user": 10}


def _gas(receipt: TxReceipt) -> int:
    return int(receipt["gasUsed"])


def function_gas(chain: Anvil) -> list[dict[str, Any]]:
    """Gas used by one call of every state-changing function, in a realistic state."""
    a = chain.accounts
    d = deploy_all(
        chain.w3,
        a[0].private_key,
        operator=a[1].address,
        staking_cooldown_s=60,
        credit_withdrawal_delay_s=60,
    )
    tx = {i: Transactor(chain.w3, a[i].private_key) for i in range(10)}
    nodes, vault, reg, ledger = (
        d.contract(n) for n in ("NodeRegistry", "StakingVault", "SubnetRegistry", "InferenceLedger")
    )
    steth, wsteth, reth = (d.contract(n) for n in ("MockStETH", "MockWstETH", "MockRETH"))
    rows: list[dict[str, Any]] = []

    def measure(contract: str, function: str, receipt: TxReceipt) -> None:
        rows.append({"contract": contract, "function": function, "gas": _gas(receipt)})

    measure(
        "NodeRegistry",
        "register",
        tx[4].transact(nodes.functions.register("hospital-a", "https://a.example:9092")),
    )
    measure(
        "NodeRegistry",
        "update",
        tx[4].transact(nodes.functions.update("hospital-a", "https://a2.example:9092")),
    )
    tx[5].transact(nodes.functions.register("b", "u"))
    measure("NodeRegistry", "leave", tx[5].transact(nodes.functions.leave()))

    measure("StakingVault", "setCooldown", tx[0].transact(vault.functions.setCooldown(60)))
    measure(
        "StakingVault",
        "configureToken",
        tx[0].transact(vault.functions.configureToken(reth.address, 3, True)),
    )
    tx[7].transact(steth.functions.submit(a[0].address), value_wei=10**18)
    tx[7].transact(steth.functions.approve(vault.address, 10**18))
    measure(
        "StakingVault",
        "stake (stETH)",
        tx[7].transact(vault.functions.stake(steth.address, 10**18)),
    )
    for token, label in ((wsteth, "wstETH"), (reth, "rETH")):
        tx[7].transact(token.functions.mint(a[7].address, 10**18))
        tx[7].transact(token.functions.approve(vault.address, 10**18))
        measure(
            "StakingVault",
            f"stake ({label})",
            tx[7].transact(vault.functions.stake(token.address, 10**18)),
        )
    measure(
        "StakingVault",
        "requestWithdrawal",
        tx[7].transact(vault.functions.requestWithdrawal(wsteth.address, 10**17)),
    )
    chain.increase_time(60)
    measure("StakingVault", "withdraw", tx[7].transact(vault.functions.withdraw(1)))

    measure(
        "SubnetRegistry",
        "createSubnet",
        tx[3].transact(reg.functions.createSubnet("spector", PRICE_WEI, 10**18, 2000)),
    )
    measure("SubnetRegistry", "setPrice", tx[3].transact(reg.functions.setPrice(1, PRICE_WEI)))
    measure("SubnetRegistry", "setMinStake", tx[3].transact(reg.functions.setMinStake(1, 0)))
    measure("SubnetRegistry", "setOwnerShare", tx[3].transact(reg.functions.setOwnerShare(1, 2000)))
    contributors = [a[4].address, a[5].address, a[6].address]
    publish = reg.functions.publishModel(
        1,
        b"\x01" * 32,
        "file:///models/" + "ab" * 32,
        b"\x02" * 32,
        b"\x03" * 32,
        contributors,
        [5000, 3000, 2000],
    )
    measure("SubnetRegistry", "publishModel (3 contributors)", tx[3].transact(publish))
    measure(
        "SubnetRegistry",
        "transferSubnetOwnership",
        tx[3].transact(reg.functions.transferSubnetOwnership(1, a[8].address)),
    )
    measure(
        "SubnetRegistry",
        "acceptSubnetOwnership",
        tx[8].transact(reg.functions.acceptSubnetOwnership(1)),
    )

    measure(
        "InferenceLedger", "deposit", tx[7].transact(ledger.functions.deposit(), value_wei=10**18)
    )
    measure(
        "InferenceLedger",
        "depositFor",
        tx[0].transact(ledger.functions.depositFor(a[7].address), value_wei=10**18),
    )
    expiry = chain.w3.eth.get_block("latest")["timestamp"] + 86400
    typed = spending_authorization(
        chain_id=chain.chain_id,
        ledger=ledger.address,
        user=a[7].address,
        max_total_spend_wei=10**18,
        expiry=expiry,
        nonce=1,
    )
    signature = sign_typed_data(a[7].private_key, typed)
    measure(
        "InferenceLedger",
        "authorizeSpending",
        tx[1].transact(
            ledger.functions.authorizeSpending(a[7].address, 10**18, expiry, 1, signature)
        ),
    )
    measure(
        "InferenceLedger",
        "recordBatch (1 user)",
        tx[1].transact(
            ledger.functions.recordBatch(1, b"\x09" * 32, [a[7].address], [PRICE_WEI], 1)
        ),
    )
    measure(
        "InferenceLedger", "settle (3 contributors)", tx[0].transact(ledger.functions.settle(1, 1))
    )
    measure("InferenceLedger", "claim", tx[4].transact(ledger.functions.claim()))
    measure(
        "InferenceLedger",
        "requestCreditWithdrawal",
        tx[7].transact(ledger.functions.requestCreditWithdrawal(10**17)),
    )
    measure(
        "InferenceLedger",
        "cancelCreditWithdrawal",
        tx[7].transact(ledger.functions.cancelCreditWithdrawal()),
    )
    tx[7].transact(ledger.functions.requestCreditWithdrawal(10**17))
    chain.increase_time(60)
    measure("InferenceLedger", "withdrawCredit", tx[7].transact(ledger.functions.withdrawCredit()))
    measure("InferenceLedger", "revokeSpending", tx[7].transact(ledger.functions.revokeSpending()))
    measure(
        "InferenceLedger", "setProtocolFee", tx[0].transact(ledger.functions.setProtocolFee(300))
    )
    measure(
        "InferenceLedger",
        "setFeeRecipient",
        tx[0].transact(ledger.functions.setFeeRecipient(a[2].address)),
    )
    measure(
        "InferenceLedger",
        "setWithdrawalDelay",
        tx[0].transact(ledger.functions.setWithdrawalDelay(120)),
    )
    measure(
        "InferenceLedger", "setOperator", tx[0].transact(ledger.functions.setOperator(a[9].address))
    )
    return rows


def batch_gas(chain: Anvil, receipts: int, users: int) -> dict[str, Any]:
    """Gas of recording ``receipts`` paid requests from ``users`` users, ours beside both baselines."""
    a = chain.accounts
    snapshot = chain.snapshot()
    started = time.perf_counter()
    d = deploy_all(chain.w3, a[0].private_key, operator=a[1].address)
    funder, operator = (
        Transactor(chain.w3, a[0].private_key),
        Transactor(chain.w3, a[1].private_key),
    )
    reg, ledger = d.contract("SubnetRegistry"), d.contract("InferenceLedger")
    funder.transact(reg.functions.createSubnet("bench", PRICE_WEI, 0, 0))
    funder.transact(
        reg.functions.publishModel(
            1, b"\x01" * 32, "u", b"\x02" * 32, b"\x03" * 32, [a[4].address], [10_000]
        )
    )
    baseline = funder.deploy("PerRequestLedger")
    keys = [Account.create() for _ in range(users)]
    expiry = chain.w3.eth.get_block("latest")["timestamp"] + 86400
    for key in keys:
        funder.transact(ledger.functions.depositFor(key.address), value_wei=10**16)
        funder.transact(baseline.functions.depositFor(key.address), value_wei=10**16)
        typed = spending_authorization(
            chain_id=chain.chain_id,
            ledger=ledger.address,
            user=key.address,
            max_total_spend_wei=10**16,
            expiry=expiry,
            nonce=1,
        )
        operator.transact(
            ledger.functions.authorizeSpending(
                key.address, 10**16, expiry, 1, sign_typed_data(key.key.to_0x_hex(), typed)
            )
        )
    owners = [keys[i % users].address for i in range(receipts)]
    batch = [
        Receipt(
            secrets.token_bytes(32),
            owners[i],
            1,
            b"\x01" * 32,
            secrets.token_bytes(32),
            secrets.token_bytes(32),
            PRICE_WEI,
            1_790_000_000 + i,
        )
        for i in range(receipts)
    ]
    tree = MerkleTree([r.leaf() for r in batch])
    debits: dict[str, int] = {}
    for r in batch:
        debits[r.user] = debits.get(r.user, 0) + r.price_wei
    # Warm-up batch: a live subnet has unsettled revenue already, so its revenue slot is non-zero and a
    # batch pays the 2 900-gas update, not the 20 000-gas first write (that one-off is reported apart).
    warm_up = ledger.functions.recordBatch(1, b"\x01" * 32, [keys[0].address], [1], 1)
    first = _gas(operator.transact(warm_up))
    ours = _gas(
        operator.transact(
            ledger.functions.recordBatch(
                1, tree.root, list(debits), list(debits.values()), receipts
            )
        )
    )
    leaves = [r.leaf() for r in batch]
    per_event = _gas(
        operator.transact(baseline.functions.recordRequests(leaves, owners, [PRICE_WEI] * receipts))
    )
    per_tx_sample = min(receipts, 5)  # every such transaction costs the same; measure a few
    per_tx = (
        sum(
            _gas(
                operator.transact(baseline.functions.recordRequest(leaves[i], owners[i], PRICE_WEI))
            )
            for i in range(per_tx_sample)
        )
        / per_tx_sample
    )
    chain.revert(snapshot)
    per_request = ours / receipts
    return {
        "receipts": receipts,
        "users": users,
        "recordBatch_gas": ours,
        "first_batch_1_request_gas": first,
        "gas_per_request": round(per_request, 1),
        "event_per_request_gas_per_request": round(per_event / receipts, 1),
        "tx_per_request_gas_per_request": round(per_tx, 1),
        "vs_event_per_request": round(per_request / (per_event / receipts), 4),
        "vs_tx_per_request": round(per_request / per_tx, 4),
        "wall_s": round(time.perf_counter() - started, 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def l1_costs(chain: Anvil, l2_gas_price_wei: int) -> list[dict[str, Any]]:
    """L2 + L1 cost of recording a batch, per recorded request, for each size in :data:`L1_BATCH_SIZES`.

    Args:
        chain: The anvil, with the L1GasPriceOracle stand-in installed.
        l2_gas_price_wei: Price of one unit of L2 gas, wei.

    Returns:
        One row per (mix, size) with gas, the signed transaction's raw and compressed bytes, the L2 and L1
        fees in wei, their sum per request, and whether the gas fits :data:`MAX_GAS_PER_TX`.

    Raises:
        RuntimeError: The chain has no Galileo L1GasPriceOracle.
    """
    params = read_l1_fee_params(chain.w3)
    if params is None:
        raise RuntimeError("no L1GasPriceOracle at 0x5300..02: start anvil with its stand-in")
    a = chain.accounts
    top = chain.snapshot()
    d = deploy_all(chain.w3, a[0].private_key, operator=a[1].address)
    funder, operator = (
        Transactor(chain.w3, a[0].private_key),
        Transactor(chain.w3, a[1].private_key),
    )
    reg, ledger = d.contract("SubnetRegistry"), d.contract("InferenceLedger")
    funder.transact(reg.functions.createSubnet("bench", PRICE_WEI, 0, 0))
    funder.transact(
        reg.functions.publishModel(
            1, b"\x01" * 32, "u", b"\x02" * 32, b"\x03" * 32, [a[4].address], [10_000]
        )
    )
    most_users = max(
        -(-size // per_user) for size in L1_BATCH_SIZES for per_user in USER_MIXES.values()
    )
    most_users = min(most_users, 400)  # beyond ~400 users a batch is over the gas cap anyway
    keys = [Account.create() for _ in range(most_users)]
    expiry = chain.w3.eth.get_block("latest")["timestamp"] + 86400
    for key in keys:
        funder.transact(ledger.functions.depositFor(key.address), value_wei=10**16)
        typed = spending_authorization(
            chain_id=chain.chain_id,
            ledger=ledger.address,
            user=key.address,
            max_total_spend_wei=10**16,
            expiry=expiry,
            nonce=1,
        )
        operator.transact(
            ledger.functions.authorizeSpending(
                key.address, 10**16, expiry, 1, sign_typed_data(key.key.to_0x_hex(), typed)
            )
        )
    # a live subnet has unsettled revenue already (see batch_gas)
    operator.transact(ledger.functions.recordBatch(1, b"\x01" * 32, [keys[0].address], [1], 1))
    rows: list[dict[str, Any]] = []
    for mix, per_user in USER_MIXES.items():
        for size in L1_BATCH_SIZES:
            users = -(-size // per_user)
            if users > len(keys):
                continue
            owners = [keys[i % users].address for i in range(size)]
            debits: dict[str, int] = {}
            for owner in owners:
                debits[owner] = debits.get(owner, 0) + PRICE_WEI
            root = secrets.token_bytes(32)  # the root's value does not change gas or size
            snapshot = chain.snapshot()
            receipt = operator.transact(
                ledger.functions.recordBatch(1, root, list(debits), list(debits.values()), size)
            )
            raw = bytes(chain.w3.eth.get_raw_transaction(receipt["transactionHash"]))
            chain.revert(snapshot)
            gas = _gas(receipt)
            l1_fee = onchain_l1_fee_wei(chain.w3, raw)
            assert l1_fee is not None
            l2_fee = gas * l2_gas_price_wei
            rows.append(
                {
                    "users_mix": mix,
                    "batch_size": size,
                    "users": users,
                    "gas": gas,
                    "tx_bytes": len(raw),
                    "compressed_bytes": len(compress(raw)),
                    "l2_fee_wei_per_request": l2_fee // size,
                    "l1_fee_wei_per_request": l1_fee // size,
                    "total_fee_wei_per_request": (l2_fee + l1_fee) // size,
                    "within_gas_cap": gas <= MAX_GAS_PER_TX,
                }
            )
    chain.revert(top)
    return rows


def chosen_batch_sizes(
    rows: list[dict[str, Any]], key: str = "total_fee_wei_per_request"
) -> dict[str, int]:
    """For each users mix, the batch size with the lowest ``key`` per request within the gas cap."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        if not row["within_gas_cap"]:
            continue
        current = best.get(row["users_mix"])
        if current is None or row[key] < current[key]:
            best[row["users_mix"]] = row
    return {mix: row["batch_size"] for mix, row in best.items()}


def main(argv: list[str] | None = None) -> int:
    """Measure and report; exit 1 if the per-request target is missed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument(
        "--l2-gas-price-wei",
        type=int,
        default=DEFAULT_L2_GAS_PRICE_WEI,
        help="assumed Scroll L2 gas price (default 0.02 gwei)",
    )
    parser.add_argument(
        "--only-l1", action="store_true", help="measure only the L2 + L1 cost per batch size"
    )
    args = parser.parse_args(argv)
    with Anvil.start(accounts=10) as chain:
        l1_rows = l1_costs(chain, args.l2_gas_price_wei)
        params = read_l1_fee_params(chain.w3)
    chosen = chosen_batch_sizes(l1_rows)
    write_report(
        "L2 + L1 fee per recorded request by batch size",
        l1_rows,
        args.out.with_name("l1.json"),
        notes={
            "l2_gas_price_wei": args.l2_gas_price_wei,
            "l1_fee_params": params.__dict__ if params else None,
            "max_gas_per_tx": MAX_GAS_PER_TX,
            "chosen_batch_size": chosen,
            "l1_fee_alone_minimised_at": chosen_batch_sizes(l1_rows, "l1_fee_wei_per_request"),
        },
    )
    for mix, size in chosen.items():
        print(f"{mix}: batch size {size} minimises the L2 + L1 fee per recorded request")
    if args.only_l1:
        return 0
    with Anvil.start(accounts=10) as chain:
        functions = function_gas(chain)
        batches = [
            batch_gas(chain, receipts, users)
            for receipts in (1, 100, 1000)
            for users in (1, 10, 100)
            if users <= receipts
        ]
    write_report("gas of state-changing functions", functions, args.out.with_name("functions.json"))
    target = next(b for b in batches if b["receipts"] == 1000 and b["users"] == 10)
    write_report(
        "recordBatch gas beside per-request baselines",
        batches,
        args.out,
        notes={
            "target_gas_per_request_at_1000_receipts_10_users": TARGET_GAS_PER_REQUEST,
            "functions": functions,
        },
    )
    met = target["gas_per_request"] <= TARGET_GAS_PER_REQUEST
    print(
        f"1 000 receipts from 10 users: {target['gas_per_request']} gas per request (target <= {TARGET_GAS_PER_REQUEST}): {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
