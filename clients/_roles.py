"""Roles' own commands: a wallet user's ``twopm stake TOKEN --withdraw``, ``twopm credit withdraw``, ``twopm claim``; a model owner's ``twopm subnet transfer|accept|owner``.

Each has two steps where the contract has a wait:

- ``twopm stake TOKEN --withdraw AMOUNT`` asks the StakingVault to take AMOUNT (share units, in whole
  tokens) out of the active stake; it stops counting at once. ``twopm stake TOKEN --withdraw
  --complete`` pays out every request of TOKEN whose cooldown is over (``StakingVault.withdraw``).
- ``twopm credit withdraw AMOUNT`` asks the InferenceLedger to pay AMOUNT ETH of unspent credit back
  after its delay (it replaces an earlier request); ``twopm credit withdraw --complete`` pays it out;
  ``twopm credit withdraw --cancel`` drops it.
- ``twopm claim`` takes every payout credited to the wallet (pull payment, ``InferenceLedger.claim``).

Too early, each refuses with the time left on the chain's clock ("the cooldown of withdrawal request 3
ends in 2 h 13 min (at 2026-12-06 17:02 UTC)"); with nothing to take, with one line saying so. Every
line names the address the command acts for, chosen by the wallet flag (``--dev-user``,
``--keystore``, ``--key-file``) as in :mod:`clients.commands`; these commands need no session.

A subnet changes hands in two steps (``SubnetRegistry``'s own): ``twopm subnet transfer --subnet N
--to 0x…`` by its owner proposes, ``twopm subnet accept --subnet N`` by the proposed address takes
it; until then the old owner keeps it and may propose someone else instead.
"""

from __future__ import annotations

import argparse
from decimal import Decimal

from eth_utils import is_address, to_checksum_address

from clients import commands
from clients.commands import (
    _chain,
    _common,
    _eth,
    _network,
    _to_wei,
    _tokens,
    _translated,
    _wallet,
    _with_status,
)
from clients.sdk import NothingToWithdraw, TooEarly, Wallet
from clients.sdk._chain import too_early
from core.cli import CliError

__all__ = ["register_claim", "register_credit", "register_stake", "register_subnet"]

_TOKENS = ["stETH", "wstETH", "rETH"]


def register_stake(subparsers: argparse._SubParsersAction) -> None:
    """``twopm stake``: stake, request a withdrawal, or complete the withdrawals whose cooldown is over.

    Args:
        subparsers: the ``twopm`` sub-command registry.
    """
    p = subparsers.add_parser(
        "stake",
        help="stake stETH, wstETH or rETH in the StakingVault, or withdraw it",
        description="`twopm stake TOKEN AMOUNT` stakes. `twopm stake TOKEN --withdraw AMOUNT`"
        " requests a withdrawal (the stake stops counting at once); after the cooldown,"
        " `twopm stake TOKEN --withdraw --complete` pays out every matured request.",
    )
    p.add_argument("token", choices=_TOKENS)
    p.add_argument("amount", nargs="?", help="tokens to stake, in whole tokens, e.g. 0.5")
    p.add_argument(
        "--withdraw",
        nargs="?",
        const="",
        default=None,
        metavar="AMOUNT",
        help="request the withdrawal of AMOUNT (shares, in whole units); with --complete, no AMOUNT",
    )
    p.add_argument(
        "--complete",
        action="store_true",
        help="with --withdraw: pay out every request of TOKEN whose cooldown is over",
    )
    p.add_argument("--request-withdrawal", action="store_true", help=argparse.SUPPRESS)
    _common(p)
    p.set_defaults(handler=_stake)


def register_credit(subparsers: argparse._SubParsersAction) -> None:
    """``twopm credit withdraw``: take unspent credit back after the ledger's delay.

    Args:
        subparsers: the ``twopm`` sub-command registry.
    """
    p = subparsers.add_parser("credit", help="withdraw unspent InferenceLedger credit")
    actions = p.add_subparsers(dest="credit_action", metavar="ACTION", required=True)
    w = actions.add_parser(
        "withdraw",
        help="request (AMOUNT), complete (--complete) or cancel (--cancel) a credit withdrawal",
        description="`twopm credit withdraw AMOUNT` asks for AMOUNT ETH back after the ledger's"
        " delay (replacing an earlier request); `twopm credit withdraw --complete` pays it out;"
        " `--cancel` drops it.",
    )
    w.add_argument("amount", nargs="?", help="ETH to ask back, e.g. 0.01")
    step = w.add_mutually_exclusive_group()
    step.add_argument("--complete", action="store_true", help="pay out the matured request")
    step.add_argument("--cancel", action="store_true", help="drop the pending request")
    _common(w)
    w.set_defaults(handler=_credit_withdraw)


def register_claim(subparsers: argparse._SubParsersAction) -> None:
    """``twopm claim``: take the payouts credited to the wallet.

    Args:
        subparsers: the ``twopm`` sub-command registry.
    """
    p = subparsers.add_parser(
        "claim", help="claim your payouts (revenue shares) from the InferenceLedger"
    )
    _common(p)
    p.set_defaults(handler=_claim)


def register_subnet(subparsers: argparse._SubParsersAction) -> None:
    """``twopm subnet transfer|accept|owner``: two-step ownership of a subnet.

    Args:
        subparsers: the ``twopm`` sub-command registry.
    """
    p = subparsers.add_parser(
        "subnet",
        help="hand a subnet to another owner in two steps (transfer, then accept)",
        description="`twopm subnet transfer --subnet N --to 0x…` (by the owner) proposes a new"
        " owner; `twopm subnet accept --subnet N` (by that address) completes the transfer;"
        " `twopm subnet owner --subnet N` shows the owner and any pending transfer.",
    )
    actions = p.add_subparsers(dest="subnet_action", metavar="ACTION", required=True)
    t = actions.add_parser("transfer", help="propose a new owner (you must own the subnet)")
    t.add_argument("--subnet", type=int, required=True, help="subnet id")
    t.add_argument("--to", required=True, help="the proposed owner's 0x address")
    _common(t)
    t.set_defaults(handler=_subnet_transfer)
    a = actions.add_parser("accept", help="accept a transfer proposed to you")
    a.add_argument("--subnet", type=int, required=True, help="subnet id")
    _common(a)
    a.set_defaults(handler=_subnet_accept)
    o = actions.add_parser("owner", help="show the owner and any pending transfer")
    o.add_argument("--subnet", type=int, required=True, help="subnet id")
    _common(o)
    o.set_defaults(handler=_subnet_owner)


# ----------------------------------------------------------------- handlers


def _refusal(wallet: Wallet, exc: TooEarly | NothingToWithdraw, hint: str = "") -> CliError:
    text = str(exc)
    return CliError(text + hint if wallet.address in text else f"{wallet.address}: {text}{hint}")


def _stake(args: argparse.Namespace) -> int:
    if args.complete:
        if args.withdraw is None:
            raise CliError(
                "--complete goes with --withdraw: `twopm stake TOKEN --withdraw --complete`"
            )
        if args.withdraw or args.amount:
            raise CliError(
                "--withdraw --complete takes no amount: it pays out every matured request"
            )
        return _complete_stake_withdrawals(args)
    if args.withdraw is not None or args.request_withdrawal:
        text = args.withdraw or args.amount
        if not text:
            raise CliError(
                "--withdraw needs an AMOUNT to request (e.g. --withdraw 0.5), or --complete"
            )
        return _request_stake_withdrawal(args, text)
    if args.amount is None:
        raise CliError(
            "give an AMOUNT to stake, --withdraw AMOUNT to request a withdrawal,"
            " or --withdraw --complete"
        )
    return commands._stake(args)


def _request_stake_withdrawal(args: argparse.Namespace, text: str) -> int:
    network = _network(args)
    shares = _to_wei(text, "the amount to withdraw")
    wallet = _wallet(args, network)
    chain = _chain(args, network, wallet)
    with _translated():
        held, _value = chain.stake_of(args.token)
        if held < shares:
            raise CliError(
                f"{wallet.address} has {_tokens(held, args.token)} shares staked,"
                f" less than the {text} to withdraw"
            )
        result = _with_status(
            commands.Console(stderr=True),
            f"requesting the withdrawal of {text} {args.token}",
            lambda: chain.request_withdrawal(args.token, shares),
        )
        request = next(
            (r for r in chain.stake_withdrawals(args.token) if r.request_id == result.value), None
        )
        now = chain.chain_time()
    wait = (
        too_early("its cooldown", request.ready_at, now)
        if request is not None and request.ready_at > now
        else "its cooldown is over"
    )
    print(
        f"{wallet.address} requested the withdrawal of {text} {args.token} shares"
        f" (request {result.value}) in {result.tx_hash}; {wait}:"
        f" then run `twopm stake {args.token} --withdraw --complete`"
    )
    return 0


def _complete_stake_withdrawals(args: argparse.Namespace) -> int:
    network = _network(args)
    wallet = _wallet(args, network)
    chain = _chain(args, network, wallet)
    with _translated():
        try:
            pending = {r.request_id: r for r in chain.stake_withdrawals(args.token)}
            results = _with_status(
                commands.Console(stderr=True),
                f"withdrawing {args.token}",
                lambda: chain.complete_withdrawals(args.token),
            )
        except (TooEarly, NothingToWithdraw) as exc:
            raise _refusal(wallet, exc) from exc
        left = chain.stake_withdrawals(args.token)
    paid = sum(r.value or 0 for r in results)
    ids = [
        r.request_id for r in pending.values() if r.request_id not in {x.request_id for x in left}
    ]
    still = f"; {len(left)} request(s) still cooling down" if left else ""
    print(
        f"{wallet.address} withdrew {_tokens(paid, args.token)}"
        f" (request {', '.join(map(str, ids))}) in {', '.join(r.tx_hash for r in results)}{still}"
    )
    return 0


def _credit_withdraw(args: argparse.Namespace) -> int:
    network = _network(args)
    if not (args.complete or args.cancel) and args.amount is None:
        raise CliError("give an AMOUNT of ETH to request, or --complete, or --cancel")
    if (args.complete or args.cancel) and args.amount is not None:
        raise CliError("--complete and --cancel take no amount")
    amount = _to_wei(args.amount, "the amount") if args.amount is not None else 0
    wallet = _wallet(args, network)
    chain = _chain(args, network, wallet)
    console = commands.Console(stderr=True)
    with _translated():
        try:
            if args.cancel:
                result = _with_status(
                    console, "cancelling", lambda: chain.cancel_credit_withdrawal()
                )
                print(f"{wallet.address} cancelled its credit withdrawal in {result.tx_hash}")
                return 0
            if args.complete:
                result = _with_status(
                    console, "withdrawing credit", lambda: chain.withdraw_credit()
                )
                print(
                    f"{wallet.address} withdrew {_eth(result.value)} of credit in {result.tx_hash};"
                    f" credit left {_eth(chain.credit().balance_wei)}"
                )
                return 0
        except (TooEarly, NothingToWithdraw) as exc:
            raise _refusal(wallet, exc) from exc
        balance = chain.credit().balance_wei
        if balance < amount:
            raise CliError(
                f"{wallet.address} has {_eth(balance)} of credit, less than the"
                f" {_eth(amount)} to withdraw"
            )
        result = _with_status(
            console,
            "requesting the credit withdrawal",
            lambda: chain.request_credit_withdrawal(amount),
        )
        now = chain.chain_time()
    ready_at = int(result.value or now)
    wait = too_early("the delay", ready_at, now) if ready_at > now else "the delay is over"
    print(
        f"{wallet.address} asked to withdraw {Decimal(args.amount).normalize():f} ETH of credit"
        f" in {result.tx_hash}; {wait}: then run `twopm credit withdraw --complete`"
    )
    return 0


def _claim(args: argparse.Namespace) -> int:
    network = _network(args)
    wallet = _wallet(args, network)
    chain = _chain(args, network, wallet)
    with _translated():
        try:
            result = _with_status(commands.Console(stderr=True), "claiming", lambda: chain.claim())
        except NothingToWithdraw as exc:
            raise _refusal(wallet, exc) from exc
    print(f"{wallet.address} claimed {_eth(result.value)} in {result.tx_hash}")
    return 0


def _subnet_transfer(args: argparse.Namespace) -> int:
    if not is_address(args.to) or int(args.to, 16) == 0:
        raise CliError(f"--to {args.to!r} is not a non-zero 0x address")
    network = _network(args)
    wallet = _wallet(args, network)
    chain = _chain(args, network, wallet)
    with _translated():
        owner, _pending = chain.subnet_owner(args.subnet)
        if owner != wallet.address:
            raise CliError(f"{wallet.address} does not own subnet {args.subnet}; {owner} does")
        result = chain.transfer_subnet_ownership(args.subnet, args.to)
    to = to_checksum_address(args.to)
    print(
        f"{wallet.address} proposed {to} as the owner of subnet {args.subnet} in {result.tx_hash};"
        f" it becomes theirs when they run `twopm subnet accept --subnet {args.subnet}`"
    )
    return 0


def _subnet_accept(args: argparse.Namespace) -> int:
    network = _network(args)
    wallet = _wallet(args, network)
    chain = _chain(args, network, wallet)
    with _translated():
        owner, pending = chain.subnet_owner(args.subnet)
        if owner == wallet.address:
            raise CliError(f"{wallet.address} owns subnet {args.subnet} already")
        if pending != wallet.address:
            to = f"to {pending}" if pending else "to anyone"
            raise CliError(
                f"{wallet.address}: no transfer of subnet {args.subnet} to you is pending"
                f" (its owner {owner} has proposed it {to})"
            )
        result = chain.accept_subnet_ownership(args.subnet)
    print(f"{wallet.address} now owns subnet {args.subnet} (from {owner}) in {result.tx_hash}")
    return 0


def _subnet_owner(args: argparse.Namespace) -> int:
    network = _network(args)
    chain = _chain(args, network, None)
    with _translated():
        owner, pending = chain.subnet_owner(args.subnet)
    waiting = f"; transfer to {pending} pending" if pending else ""
    print(f"subnet {args.subnet} is owned by {owner}{waiting}")
    return 0
