"""Client commands of ``twopm`` for a person at a terminal: login, stake, deposit, authorize, predict, receipt.

Each command finds the network from ``--stack FILE`` (``stack.json`` of ``twopm up``; the default is
``.state/up/stack.json``) or from ``--gateway``/``--rpc-url``/``--deployment-file``, and the wallet from
``--keystore FILE`` (password from ``--password-file`` or a prompt), ``--key-file FILE`` (mode 0600),
or, on a local stack only, ``--dev-user N``. ``twopm login`` keeps the session token in
``--session-file`` (default ``~/.config/twopm/sessions.json``, mode 0600) for the other commands,
one per gateway and address.

One identity rule: a wallet flag (``--dev-user``, ``--keystore``, ``--key-file``) always decides
whom a command acts for. A command that needs a session uses that wallet's own session, or is
refused with a line saying to log that wallet in; without a flag it uses the last ``twopm login``
for that gateway. Every command names the address it acted for.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from rich.console import Console

from clients.sdk import ChainClient, GatewayClient, ProvenPrediction, TwoPMError, Wallet
from core.cli import CliError

DEFAULT_STACK = Path(".state/up/stack.json")
DEFAULT_SESSIONS = Path.home() / ".config" / "twopm" / "sessions.json"
WEI_PER_ETH = 10**18


@dataclass
class Network:
    """Where the gateway and the chain are."""

    gateway_url: str | None
    rpc_url: str | None
    contracts: dict[str, str]
    stack: dict[str, Any] | None


def _common(parser: argparse.ArgumentParser) -> None:
    net = parser.add_argument_group("network")
    net.add_argument(
        "--stack", type=Path, help=f"stack.json of `twopm up` (default {DEFAULT_STACK} if present)"
    )
    net.add_argument("--gateway", help="gateway URL")
    net.add_argument("--rpc-url", help="chain JSON-RPC URL")
    net.add_argument("--deployment-file", type=Path, help="deployment file of `twopm chain deploy`")
    wallet = parser.add_argument_group("wallet")
    key = wallet.add_mutually_exclusive_group()
    key.add_argument("--keystore", type=Path, help="encrypted keystore (JSON v3)")
    key.add_argument("--key-file", type=Path, help="file (mode 0600) holding a hex private key")
    key.add_argument(
        "--dev-user", type=int, help="wallet user N of a local stack.json (development only)"
    )
    wallet.add_argument("--password-file", type=Path, help="keystore password file (else a prompt)")
    parser.add_argument(
        "--session-file", type=Path, default=DEFAULT_SESSIONS, help="where sessions are kept"
    )


def register_login(subparsers: argparse._SubParsersAction) -> None:
    """``twopm login``: sign in with Ethereum and keep the session."""
    p = subparsers.add_parser("login", help="sign in to the gateway with Ethereum (SIWE)")
    _common(p)
    p.set_defaults(handler=_login)


def register_logout(subparsers: argparse._SubParsersAction) -> None:
    """``twopm logout``: end the session."""
    p = subparsers.add_parser("logout", help="end the gateway session")
    _common(p)
    p.set_defaults(handler=_logout)


def register_me(subparsers: argparse._SubParsersAction) -> None:
    """``twopm me``: who the gateway thinks you are."""
    p = subparsers.add_parser("me", help="your address, stake, tier, credit and cap")
    _common(p)
    p.set_defaults(handler=_me)


def register_stake(subparsers: argparse._SubParsersAction) -> None:
    """``twopm stake``: stake or unstake liquid-staking tokens."""
    p = subparsers.add_parser("stake", help="stake stETH, wstETH or rETH in the StakingVault")
    p.add_argument("token", choices=["stETH", "wstETH", "rETH"])
    p.add_argument("amount", help="token amount in whole tokens, e.g. 0.5")
    p.add_argument(
        "--request-withdrawal", action="store_true", help="take AMOUNT (in shares) out instead"
    )
    _common(p)
    p.set_defaults(handler=_stake)


def register_deposit(subparsers: argparse._SubParsersAction) -> None:
    """``twopm deposit``: prepaid credit."""
    p = subparsers.add_parser("deposit", help="deposit ETH credit in the InferenceLedger")
    p.add_argument("amount", help="ETH, e.g. 0.01")
    _common(p)
    p.set_defaults(handler=_deposit)


def register_faucet(subparsers: argparse._SubParsersAction) -> None:
    """``twopm faucet``: local stand-in staking tokens for a dev wallet."""
    p = subparsers.add_parser(
        "faucet",
        help="get test stETH, wstETH or rETH on a local anvil chain (refused on any other)",
    )
    p.add_argument("token", choices=["stETH", "wstETH", "rETH"])
    p.add_argument("amount", help="whole tokens, e.g. 1")
    _common(p)
    p.set_defaults(handler=_faucet)


def register_authorize(subparsers: argparse._SubParsersAction) -> None:
    """``twopm authorize``: the signed spending cap."""
    p = subparsers.add_parser(
        "authorize", help="sign an EIP-712 spending cap; the gateway submits it"
    )
    p.add_argument("amount", help="most ETH the operator may debit under this authorisation")
    p.add_argument("--days", type=float, default=30.0, help="validity in days (default 30)")
    _common(p)
    p.set_defaults(handler=_authorize)


def register_predict(subparsers: argparse._SubParsersAction) -> None:
    """``twopm predict``: probabilities for the rows of a CSV file."""
    p = subparsers.add_parser(
        "predict", help="predict the rows of a CSV file (plaintext or CKKS-encrypted)"
    )
    p.add_argument("csv", type=Path, help="CSV with a header naming the subnet's features")
    p.add_argument("--subnet", type=int, default=1, help="subnet id (default 1)")
    p.add_argument(
        "--encrypted", action="store_true", help="encrypt the features (the gateway sees nothing)"
    )
    p.add_argument("--layout", choices=["row", "coeff", "column"], help="force a CKKS layout")
    p.add_argument(
        "--prove",
        action="store_true",
        help="ask a zk proof of each row's logit and check it on chain against the model version's "
        "verifier (one request per row, each billed at the gateway's proof price)",
    )
    p.add_argument("--out", type=Path, help="write the probabilities as CSV here (default: stdout)")
    _common(p)
    p.set_defaults(handler=_predict)


def register_receipt(subparsers: argparse._SubParsersAction) -> None:
    """``twopm receipt``: a receipt, its batch and its proof on chain."""
    p = subparsers.add_parser(
        "receipt", help="show a receipt and prove it against the root on chain"
    )
    p.add_argument("receipt_id", help="0x-hex receipt id")
    p.add_argument(
        "--wait", type=float, default=0.0, help="wait up to this many seconds for recording"
    )
    _common(p)
    p.set_defaults(handler=_receipt)


def register_verify(subparsers: argparse._SubParsersAction) -> None:
    """``twopm verify training --subnet N``: check a model version's proof of training on chain."""
    p = subparsers.add_parser("verify", help="check what the chain records (proof of training)")
    what = p.add_subparsers(dest="what", required=True, metavar="{training}")
    t = what.add_parser(
        "training",
        help="every holder's training proof, row counts against shares, and stationarity",
        description="Exit 0 only when every contributor's training proof verifies on chain against "
        "its DataRegistry commitment and the version's model commitment, the proven row counts give "
        "back the published shares, and the summed gradient is within the stated tolerance.",
    )
    t.add_argument("--subnet", type=int, required=True, help="subnet id")
    t.add_argument("--version", type=int, help="model version (default: the current one)")
    t.add_argument("--json", action="store_true", help="print the findings as JSON")
    _common(t)
    t.set_defaults(handler=_verify_training)


def _verify_training(args: argparse.Namespace) -> int:
    from web3 import HTTPProvider, Web3
    from web3.exceptions import ContractLogicError

    from contracts import Deployment
    from zk import verify_training

    network = _network(args)
    if not network.rpc_url or "SubnetRegistry" not in network.contracts:
        raise CliError(f"no chain: {_no_stack_hint()}, or --rpc-url with --deployment-file")
    if args.subnet < 1:
        raise CliError("--subnet must be a subnet id (1 or more)")
    w3 = Web3(HTTPProvider(network.rpc_url, request_kwargs={"timeout": 30}))
    try:
        deployment = Deployment(
            chain_id=int(w3.eth.chain_id),
            addresses=network.contracts,
            block=0,
            deployer="",
            operator="",
            w3=w3,
        )
        found = verify_training(deployment, args.subnet, args.version)
    except ContractLogicError as exc:
        raise CliError(f"subnet {args.subnet} has no such model version: {exc}") from exc
    except (OSError, ConnectionError) as exc:
        raise CliError(f"cannot reach the chain at {network.rpc_url}: {exc}") from exc
    if args.json:
        print(json.dumps(found.as_dict(), indent=2))
        return 0 if found.verified else 1
    print(f"subnet {found.subnet_id} version {found.version}")
    for h in found.holders:
        state = "proof verified on chain" if h.get("proof_verified_on_chain") else "NOT PROVEN"
        chunks = f"  chunks {h['chunks']}" if "chunks" in h else ""
        print(f"  holder {h['address']}  rows {h.get('n_rows', '-')}{chunks}  {state}")
    print(f"rows {found.n_rows}, shares {'match' if found.shares_match else 'DO NOT MATCH'}")
    if found.residual:
        condition = (
            "gradient" if found.penalty_c is None else f"gradient - w/C (C = {found.penalty_c})"
        )
        print(
            f"{condition} / tolerance: "
            + ", ".join(
                f"{g:.2e}/{t:.2e}" for g, t in zip(found.residual, found.tolerance, strict=False)
            )
        )
    for problem in found.problems:
        print(f"problem: {problem}", file=sys.stderr)
    print("training verified" if found.verified else "training NOT verified")
    return 0 if found.verified else 1


# ----------------------------------------------------------------- plumbing


def _network(args: argparse.Namespace) -> Network:
    stack_path: Path | None = args.stack or (DEFAULT_STACK if DEFAULT_STACK.is_file() else None)
    stack: dict[str, Any] | None = None
    if stack_path is not None:
        try:
            stack = json.loads(stack_path.read_text())
        except OSError as exc:
            raise CliError(f"cannot read {stack_path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise CliError(f"{stack_path} is not a stack file") from exc
        if not isinstance(stack, dict):
            raise CliError(f"{stack_path} is not a stack file")
    contracts = dict((stack or {}).get("contracts", {}))
    if args.deployment_file:
        try:
            contracts = dict(json.loads(args.deployment_file.read_text())["contracts"])
        except (OSError, ValueError, KeyError) as exc:
            raise CliError(f"{args.deployment_file} is not a deployment file") from exc
    return Network(
        gateway_url=args.gateway or (stack or {}).get("gateway_url"),
        rpc_url=args.rpc_url or (stack or {}).get("rpc_url"),
        contracts=contracts,
        stack=stack,
    )


def _no_stack_hint() -> str:
    return f"{DEFAULT_STACK} does not exist here: start `twopm up` in this directory, or pass --stack FILE"


def _flag(args: argparse.Namespace) -> str | None:
    """The wallet flag as typed (``--dev-user 0``), or None when none was given."""
    if args.keystore:
        return f"--keystore {args.keystore}"
    if args.key_file:
        return f"--key-file {args.key_file}"
    if args.dev_user is not None:
        return f"--dev-user {args.dev_user}"
    return None


def _dev_key(args: argparse.Namespace, network: Network) -> str:
    if network.stack is None:
        raise CliError(f"--dev-user needs the stack file of `twopm up`; {_no_stack_hint()}")
    users = ((network.stack.get("accounts") or {}).get("wallet_users")) or []
    if not users:
        raise CliError("--dev-user: this stack file lists no dev wallet users (not a local stack)")
    if not 0 <= args.dev_user < len(users):
        raise CliError(
            f"--dev-user {args.dev_user}: the stack file lists {len(users)} wallet users,"
            f" numbered 0 to {len(users) - 1}"
        )
    return str(users[args.dev_user]["private_key"])


def _wallet(args: argparse.Namespace, network: Network) -> Wallet:
    with _translated():
        if args.keystore:
            return Wallet.from_keystore(args.keystore, password_file=args.password_file)
        if args.key_file:
            return Wallet.from_key_file(args.key_file)
        if args.dev_user is not None:
            return Wallet.from_key(_dev_key(args, network))
    raise CliError("no wallet: give --keystore, --key-file, or --dev-user N on a local stack")


def _flag_address(args: argparse.Namespace, network: Network) -> str | None:
    """The address a wallet flag names, without asking for a keystore's password if it can."""
    if _flag(args) is None:
        return None
    if args.keystore:
        try:
            listed = json.loads(args.keystore.read_text()).get("address")
        except (OSError, ValueError, AttributeError):
            listed = None
        if isinstance(listed, str) and len(listed.removeprefix("0x")) == 40:
            return to_checksum_address("0x" + listed.removeprefix("0x"))
    return _wallet(args, network).address


def _chain(args: argparse.Namespace, network: Network, wallet: Wallet | None) -> ChainClient:
    if not network.rpc_url or not network.contracts:
        if network.stack is None and not (args.rpc_url or args.deployment_file):
            raise CliError(f"no chain: {_no_stack_hint()}, or --rpc-url with --deployment-file")
        raise CliError("no chain: give --stack, or --rpc-url with --deployment-file")
    with _translated():
        return ChainClient.connect(network.rpc_url, network.contracts, wallet)


def _load_sessions(path: Path) -> dict[str, dict[str, Any]]:
    """``{gateway_url: {"current": address, "tokens": {address: token}}}``; addresses lower-case."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(url): entry
        for url, entry in data.items()
        if isinstance(entry, dict) and isinstance(entry.get("tokens"), dict)
    }


def _save_sessions(path: Path, sessions: dict[str, dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(sessions, out, indent=2)


def _gateway_url(network: Network) -> str:
    if not network.gateway_url:
        if network.stack is None:
            raise CliError(f"no gateway: {_no_stack_hint()}, or --gateway URL")
        raise CliError("no gateway: the stack file names none; give --gateway URL")
    return network.gateway_url


def _session(args: argparse.Namespace, network: Network) -> tuple[str, str]:
    """The (address, token) of the session this command acts with, by the identity rule."""
    url = _gateway_url(network)
    entry = _load_sessions(args.session_file).get(url, {})
    tokens: dict[str, str] = entry.get("tokens", {})
    wanted = _flag_address(args, network)
    if wanted is not None:
        token = tokens.get(wanted.lower())
        if token is None:
            raise CliError(
                f"{_flag(args)} ({wanted}) is not signed in to {url}:"
                f" run `twopm login {_flag(args)}` first"
            )
        return wanted, token
    current = entry.get("current")
    if not current or current not in tokens:
        raise CliError(f"not signed in to {url}: run `twopm login` first")
    return to_checksum_address(current), tokens[current]


def _gateway(
    args: argparse.Namespace, network: Network, *, signed_in: bool = True
) -> tuple[str | None, GatewayClient]:
    url = _gateway_url(network)
    if not signed_in:
        return None, GatewayClient(url)
    address, token = _session(args, network)
    return address, GatewayClient(url, session_token=token)


def _check_me(address: str | None, me_address: str) -> None:
    if address is not None and me_address.lower() != address.lower():
        raise CliError(
            f"the gateway's session belongs to {me_address}, not {address}: run `twopm login` again"
        )


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except TwoPMError as exc:
        raise CliError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc


def _to_wei(text: str, what: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise CliError(f"{what} must be a number, not {text!r}") from exc
    if not value.is_finite() or value <= 0:
        raise CliError(f"{what} must be a positive number, not {text!r}")
    return int(value * WEI_PER_ETH)


def _eth(wei: int | None) -> str:
    return "n/a" if wei is None else f"{(Decimal(wei) / WEI_PER_ETH).normalize():f} ETH"


def _tokens(wei: int, symbol: str) -> str:
    return f"{(Decimal(wei) / WEI_PER_ETH).normalize():f} {symbol}"


def _with_status(console: Console, text: str, action: Callable[[], Any]) -> Any:
    with console.status(text):
        return action()


# ----------------------------------------------------------------- handlers


def _login(args: argparse.Namespace) -> int:
    network = _network(args)
    wallet = _wallet(args, network)
    url = _gateway_url(network)
    with _translated(), GatewayClient(url) as gateway:
        token = gateway.sign_in(wallet)
        me = gateway.me()
    _check_me(wallet.address, me.address)
    sessions = _load_sessions(args.session_file)
    entry = sessions.setdefault(url, {"current": None, "tokens": {}})
    entry["tokens"][wallet.address.lower()] = token
    entry["current"] = wallet.address.lower()
    _save_sessions(args.session_file, sessions)
    print(
        f"signed in to {url} as {me.address} (tier {me.tier},"
        f" stake {_eth(me.stake_wei)}, credit {_eth(me.credit_wei)})"
    )
    return 0


def _logout(args: argparse.Namespace) -> int:
    network = _network(args)
    address, gateway = _gateway(args, network)
    url = _gateway_url(network)
    with _translated(), gateway:
        gateway.logout()
    sessions = _load_sessions(args.session_file)
    entry = sessions.get(url)
    if entry is not None and address is not None:
        entry["tokens"].pop(address.lower(), None)
        if entry.get("current") == address.lower():
            entry["current"] = None
        if not entry["tokens"]:
            sessions.pop(url)
    _save_sessions(args.session_file, sessions)
    print(f"signed {address} out of {url}")
    return 0


def _me(args: argparse.Namespace) -> int:
    network = _network(args)
    address, gateway = _gateway(args, network)
    with _translated(), gateway:
        me = gateway.me()
    _check_me(address, me.address)
    print(f"address      {me.address}")
    print(f"tier         {me.tier}")
    print(f"stake        {_eth(me.stake_wei)}")
    print(f"credit       {_eth(me.credit_wei)}")
    print(f"cap left     {_eth(me.cap_left_wei)}")
    print(f"unrecorded   {_eth(me.outstanding_wei)}")
    return 0


def _faucet(args: argparse.Namespace) -> int:
    network = _network(args)
    amount = _to_wei(args.amount, "the amount")
    wallet = _wallet(args, network)
    chain = _chain(args, network, wallet)
    with _translated():
        result = _with_status(
            Console(stderr=True),
            f"getting {args.amount} {args.token}",
            lambda: chain.mint_test_tokens(args.token, amount),
        )
        balance = chain.token_balance(args.token)
    print(
        f"{wallet.address} got {args.amount} test {args.token} in {result.tx_hash};"
        f" balance {_tokens(balance, args.token)}"
    )
    return 0


def _stake(args: argparse.Namespace) -> int:
    network = _network(args)
    amount = _to_wei(args.amount, "the amount")
    wallet = _wallet(args, network)
    chain = _chain(args, network, wallet)
    console = Console(stderr=True)
    with _translated():
        if args.request_withdrawal:
            result = _with_status(
                console,
                "requesting the withdrawal",
                lambda: chain.request_withdrawal(args.token, amount),
            )
            print(
                f"{wallet.address} requested a withdrawal in {result.tx_hash};"
                " run `twopm stake` again after the cooldown to withdraw"
            )
            return 0
        held = chain.token_balance(args.token)
        if held < amount:
            hint = (
                f"; on a local stack, `twopm faucet {args.token} {args.amount} {_flag(args)}` gets test tokens"
                if network.stack is not None
                else ""
            )
            raise CliError(
                f"{wallet.address} holds {_tokens(held, args.token)}, less than {args.amount}{hint}"
            )
        result = _with_status(
            console,
            f"staking {args.amount} {args.token}",
            lambda: chain.stake(args.token, amount),
        )
        print(
            f"{wallet.address} staked {args.amount} {args.token} in {result.tx_hash};"
            f" active stake {_eth(chain.staked_value_wei())}"
        )
    return 0


def _deposit(args: argparse.Namespace) -> int:
    network = _network(args)
    amount = _to_wei(args.amount, "the amount")
    wallet = _wallet(args, network)
    chain = _chain(args, network, wallet)
    with _translated():
        result = _with_status(Console(stderr=True), "depositing", lambda: chain.deposit(amount))
        print(
            f"{wallet.address} deposited {args.amount} ETH in {result.tx_hash};"
            f" credit {_eth(chain.credit().balance_wei)}"
        )
    return 0


def _authorize(args: argparse.Namespace) -> int:
    import time

    network = _network(args)
    amount = _to_wei(args.amount, "the amount")
    if not args.days > 0:
        raise CliError("--days must be positive")
    wallet = _wallet(args, network)
    chain = _chain(args, network, wallet)
    address, gateway = _gateway(args, network)
    _check_me(address, wallet.address)
    with _translated(), gateway:
        signed = chain.sign_spending_authorization(
            amount, expiry=int(time.time() + args.days * 86400)
        )
        tx_hash = _with_status(
            Console(stderr=True),
            "submitting through the gateway",
            lambda: gateway.submit_spending_authorization(signed),
        )
    print(
        f"{wallet.address} may now be charged up to {args.amount} ETH; cap installed in {tx_hash}"
    )
    return 0


def _read_rows(path: Path) -> list[dict[str, float]]:
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            rows = []
            for line, row in enumerate(reader, start=2):
                parsed = {}
                for column, value in row.items():
                    try:
                        parsed[str(column)] = float(value)
                    except (TypeError, ValueError) as exc:
                        raise CliError(
                            f"{path}, line {line}, column {column!r}: {value!r} is not a number"
                        ) from exc
                rows.append(parsed)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    if not rows:
        raise CliError(f"{path} has no rows")
    return rows


def _predict(args: argparse.Namespace) -> int:
    network = _network(args)
    rows = _read_rows(args.csv)
    console = Console(stderr=True)
    address, gateway = _gateway(args, network)
    with _translated(), gateway:
        subnet = gateway.subnet(args.subnet)
        status = subnet.raw.get("model_status")
        refused = (
            f"the gateway refused its published model version"
            f" {subnet.raw.get('published_version')}: {subnet.raw.get('model_error')}"
        )
        if not subnet.feature_names:
            if status == "refused":
                raise CliError(f"subnet {args.subnet}: {refused}")
            raise CliError(
                f"subnet {args.subnet}: the gateway serves no model yet (model status"
                f" {status or 'unknown'}); try again in a few seconds"
            )
        if status == "refused":
            console.print(
                f"twopm: warning: subnet {args.subnet}: {refused}; predicting with version"
                f" {subnet.model_version}",
                soft_wrap=True,
                markup=False,
            )
        names = list(subnet.feature_names)
        missing = [n for n in names if n not in rows[0]]
        if missing:
            raise CliError(f"{args.csv} lacks the subnet's features: {', '.join(missing)}")
        rows = [{n: r[n] for n in names} for r in rows]
        if args.prove:
            if args.encrypted:
                raise CliError("--prove proves plaintext predictions; drop --encrypted")
            return _predict_proven(args, network, console, address, gateway, subnet, names, rows)
        if args.encrypted:
            result = _with_status(
                console,
                f"encrypting {len(rows)} rows and evaluating on ciphertexts",
                lambda: gateway.predict_encrypted(subnet, rows, layout=args.layout),
            )
        else:
            result = _with_status(
                console, f"predicting {len(rows)} rows", lambda: gateway.predict(subnet, rows)
            )
    out = args.out.open("w", newline="") if args.out else sys.stdout
    try:
        writer = csv.writer(out)
        writer.writerow(["row", "probability"])
        for i, p in enumerate(result.probabilities):
            writer.writerow([i, f"{float(p):.12g}"])
    finally:
        if args.out:
            out.close()
    console.print(
        f"{address} predicted {len(rows)} rows via {result.layout};"
        f" receipts: {', '.join(result.receipt_ids)}",
        soft_wrap=True,
    )
    return 0


def _predict_proven(
    args: argparse.Namespace,
    network: Network,
    console: Console,
    address: str | None,
    gateway: GatewayClient,
    subnet: Any,
    names: list[str],
    rows: list[dict[str, Any]],
) -> int:
    """``twopm predict --prove``: one proven request per row, each proof checked on chain."""
    chain = _chain(args, network, None)
    results: list[tuple[ProvenPrediction, bool]] = []
    for i, row in enumerate(rows):

        def ask(row: dict[str, Any] = row) -> ProvenPrediction:
            return gateway.predict_proven(subnet, row)

        proven = _with_status(console, f"proving row {i + 1} of {len(rows)}", ask)
        with _translated():
            ok = chain.verify_prediction_proof(subnet.id, proven, [float(row[n]) for n in names])
        results.append((proven, ok))
    out = args.out.open("w", newline="") if args.out else sys.stdout
    try:
        writer = csv.writer(out)
        writer.writerow(["row", "probability", "proven_logit", "verified_on_chain", "receipt"])
        for i, (proven, ok) in enumerate(results):
            writer.writerow(
                [
                    i,
                    f"{proven.probability:.12g}",
                    f"{proven.proven_logit:.12g}",
                    ok,
                    proven.receipt_id,
                ]
            )
    finally:
        if args.out:
            out.close()
    failed = [i for i, (_, ok) in enumerate(results) if not ok]
    if failed:
        raise CliError(
            f"the proofs of rows {', '.join(map(str, failed))} do not verify against the model "
            f"version's verifier on chain"
        )
    console.print(
        f"{address} predicted {len(rows)} rows with proofs; every proof verified on chain by "
        f"{results[0][0].verifier}",
        soft_wrap=True,
    )
    return 0


def _receipt(args: argparse.Namespace) -> int:
    network = _network(args)
    _, gateway = _gateway(args, network)
    with _translated(), gateway:
        if args.wait > 0:
            record = _with_status(
                Console(stderr=True),
                "waiting for the batch to be recorded",
                lambda: gateway.wait_for_receipt(args.receipt_id, timeout_s=args.wait),
            )
        else:
            record = gateway.receipt(args.receipt_id)
        r = record.receipt
        print(f"receipt      {record.receipt_id}")
        print(f"user         {r.user}")
        print(f"subnet       {r.subnet_id}   rows {record.rows}   price {r.price_wei} wei")
        print(f"model        0x{r.model_hash.hex()}")
        print(f"status       {record.status}")
        if record.batch is not None:
            print(
                f"batch        {record.batch.batch_id} (root {record.batch.root}, tx {record.batch.tx_hash})"
            )
        if record.status != "recorded":
            return 0 if record.status != "failed" else 1
        check = gateway.verify_receipt(record, _chain(args, network, None))
    print(f"proof        {'valid on chain' if check.valid else 'INVALID: ' + str(check.reason)}")
    return 0 if check.valid else 1
