"""``twopm chain``: run a local anvil chain and deploy the contracts.

twopm chain up [--state-dir DIR] [--port N] [--deploy]
twopm chain deploy --rpc-url URL (--private-key-file FILE | --dev-account N) --out FILE
                   [--operator ADDRESS] [--fee-recipient ADDRESS] [--token SYMBOL=ADDRESS[:feed=FEED[:max_age=S][:min=N][:max=N]] ...]
                   [--ptau CEREMONY.ptau --ptau-sha256 HEX [--zk-keys KEYDIR]]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType

from eth_account import Account
from web3 import Web3
from web3.providers.rpc import HTTPProvider

from contracts._errors import ContractRevert
from contracts.chain import SCROLL_SEPOLIA_CHAIN_ID, Anvil, AnvilError
from contracts.deploy import (
    NEW_FEED,
    TOKEN_KIND,
    Deployment,
    RateFeedConfig,
    deploy_all,
    read_zk_keys,
)
from contracts.keys import KeyLoadError, load_key_file
from contracts.tx import Transactor
from core.cli import CliError
from core.ptau import PtauError, check_ceremony_ptau
from core.transactions import TransactionFailed

#: anvil's well-known development mnemonic: its keys are public, so they are for local chains only.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``chain`` command group to the ``twopm`` parser."""
    chain = subparsers.add_parser("chain", help="run a local chain, deploy the contracts")
    commands = chain.add_subparsers(dest="chain_command", metavar="COMMAND", required=True)

    up = commands.add_parser(
        "up", help="start a local anvil (Scroll Sepolia chain id) until Ctrl-C"
    )
    up.add_argument(
        "--state-dir", type=Path, default=Path(".state/chain"), help="where chain.json goes"
    )
    up.add_argument(
        "--port", type=int, default=8545, help="JSON-RPC port (default 8545; 0: any free)"
    )
    up.add_argument("--chain-id", type=int, default=SCROLL_SEPOLIA_CHAIN_ID)
    up.add_argument(
        "--deploy", action="store_true", help="also deploy the contracts (deployment.json)"
    )
    up.set_defaults(handler=_up)

    deploy = commands.add_parser(
        "deploy", help="deploy the contract set and write a deployment file"
    )
    deploy.add_argument("--rpc-url", default="http://127.0.0.1:8545")
    key = deploy.add_mutually_exclusive_group(required=True)
    key.add_argument(
        "--private-key-file", type=Path, help="file (mode 0600) holding the deployer key"
    )
    key.add_argument(
        "--dev-account", type=int, help="index of an anvil development account (local only)"
    )
    deploy.add_argument(
        "--operator", help="InferenceLedger operator address (default: the deployer)"
    )
    deploy.add_argument("--fee-recipient", help="protocol fee recipient (default: the deployer)")
    deploy.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="SYMBOL=ADDRESS[:feed=FEED]",
        help=(
            "list an existing staking token (stETH, wstETH, rETH), optionally valued through a Chainlink-style "
            "rate feed (':feed=FEED', with optional ':max_age=SECONDS', ':min=N', ':max=N' in the feed's units; "
            "bridged wstETH on Scroll needs one; ':feed=new[:answer=WEI]' deploys the WstETHRateFeed stand-in, "
            "for Scroll Sepolia); without any --token, local stand-ins are deployed"
        ),
    )
    deploy.add_argument(
        "--ptau",
        type=Path,
        help="the ceremony powers of tau the zk setup rests on (powersOfTau28_hez_final_<k>.ptau); "
        "a locally generated one is refused; without it a local chain gets the development setup "
        "and any other chain none",
    )
    deploy.add_argument("--ptau-sha256", help="the sha256 the --ptau file must have (hex)")
    deploy.add_argument(
        "--zk-keys",
        type=Path,
        help="key directory made from --ptau by 'python -m zk ceremony': deploy its Groth16 verifiers",
    )
    deploy.add_argument("--out", type=Path, default=Path(".state/chain/deployment.json"))
    deploy.set_defaults(handler=_deploy)

    feed = commands.add_parser(
        "feed", help="post a fresh answer to the deployment's WstETHRateFeed stand-in"
    )
    feed.add_argument("--rpc-url", default="http://127.0.0.1:8545")
    feed_key = feed.add_mutually_exclusive_group(required=True)
    feed_key.add_argument(
        "--private-key-file", type=Path, help="file (mode 0600) holding the feed owner's key"
    )
    feed_key.add_argument(
        "--dev-account", type=int, help="index of an anvil development account (local only)"
    )
    feed.add_argument("--deployment", type=Path, required=True, help="the deployment file")
    feed.add_argument(
        "--answer", type=int, required=True, help="stETH wei per 1e18 wstETH (18 decimals)"
    )
    feed.set_defaults(handler=_feed)


def dev_private_key(index: int) -> str:
    """Private key of anvil's development account ``index`` (from its public mnemonic)."""
    if not 0 <= index < 100:
        raise CliError(f"--dev-account must be between 0 and 99, not {index}")
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return str(account.key.to_0x_hex())


def read_private_key_file(path: Path) -> str:
    """Read a hex private key from a file that only its owner can read.

    Raises:
        CliError: The file is missing, readable by others, or holds no valid key.
    """
    try:
        return "0x" + bytes(load_key_file(path).key).hex()
    except KeyLoadError as exc:
        raise CliError(str(exc)) from None


_FEED_OPTIONS = ("feed", "max_age", "min", "max", "answer")


def parse_tokens(items: list[str]) -> tuple[dict[str, str], dict[str, RateFeedConfig]]:
    """Parse ``--token SYMBOL=ADDRESS[:feed=FEED[:max_age=S][:min=N][:max=N]]`` options.

    Args:
        items: The option values as given.

    Returns:
        (symbol -> token address, symbol -> rate feed configuration for the tokens that name a feed).

    Raises:
        CliError: An unknown symbol, a bad address, an unknown or repeated option, a feed on stETH, or a
            non-integer age or bound.
    """
    tokens: dict[str, str] = {}
    feeds: dict[str, RateFeedConfig] = {}
    for item in items:
        head, *options = item.split(":")
        symbol, _, address = head.partition("=")
        if symbol not in TOKEN_KIND or not Web3.is_address(address):
            raise CliError(
                f"--token {item!r}: expected SYMBOL=ADDRESS with SYMBOL in {sorted(TOKEN_KIND)}"
            )
        tokens[symbol] = Web3.to_checksum_address(address)
        values: dict[str, str] = {}
        for option in options:
            key, sep, value = option.partition("=")
            if key not in _FEED_OPTIONS or not sep or key in values:
                raise CliError(
                    f"--token {item!r}: unknown or repeated option {option!r}; "
                    "expected feed=ADDRESS|new, max_age=SECONDS, min=N, max=N, answer=WEI"
                )
            values[key] = value
        if not values:
            continue
        new = values.get("feed") == NEW_FEED
        if "feed" not in values or not (new or Web3.is_address(values["feed"])):
            raise CliError(
                f"--token {item!r}: the options need feed=ADDRESS (a 0x address) or feed=new"
            )
        if new and symbol != "wstETH":
            raise CliError(f"--token {item!r}: feed=new deploys a wstETH/stETH stand-in only")
        if "answer" in values and not new:
            raise CliError(f"--token {item!r}: answer= is the first answer of feed=new only")
        if symbol == "stETH":
            raise CliError(f"--token {item!r}: stETH is valued by its shares, not through a feed")
        try:
            numbers = {k: int(v) for k, v in values.items() if k != "feed"}
        except ValueError:
            raise CliError(
                f"--token {item!r}: max_age, min, max and answer must be integers"
            ) from None
        extra: dict[str, int] = {}
        if "max_age" in numbers:
            extra["max_age_s"] = numbers["max_age"]
        if "answer" in numbers:
            extra["initial_answer"] = numbers["answer"]
        feeds[symbol] = RateFeedConfig(
            NEW_FEED if new else Web3.to_checksum_address(values["feed"]),
            min_answer=numbers.get("min"),
            max_answer=numbers.get("max"),
            **extra,
        )
    return tokens, feeds


def _connect(rpc_url: str) -> Web3:
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
    try:
        w3.eth.chain_id  # noqa: B018 - a round trip to check the endpoint
    except Exception as exc:
        raise CliError(f"cannot reach a JSON-RPC endpoint at {rpc_url}") from exc
    return w3


def _address_flag(flag: str, value: str | None) -> str | None:
    """A checked, checksummed address from a flag, or None when the flag was not given."""
    if value is None:
        return None
    if not Web3.is_address(value):
        raise CliError(f"{flag} {value!r} is not an address: expected 0x and 40 hex digits")
    return Web3.to_checksum_address(value)


def _deploy(args: argparse.Namespace) -> int:
    operator = _address_flag("--operator", args.operator)
    fee_recipient = _address_flag("--fee-recipient", args.fee_recipient)
    w3 = _connect(args.rpc_url)
    chain_id = w3.eth.chain_id
    tokens, feeds = parse_tokens(args.token)
    ceremony = None
    if args.ptau is not None or args.ptau_sha256 is not None:
        if args.ptau is None or args.ptau_sha256 is None:
            raise CliError("give --ptau FILE together with --ptau-sha256 HEX")
        try:
            ceremony = check_ceremony_ptau(args.ptau, args.ptau_sha256)
        except PtauError as exc:
            raise CliError(str(exc)) from exc
    if args.zk_keys is not None:
        if ceremony is None:
            raise CliError(
                "--zk-keys needs the ceremony file it was made from: --ptau and --ptau-sha256"
            )
        try:
            manifest, _ = read_zk_keys(args.zk_keys)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        if manifest.get("sha256") != ceremony.sha256:
            raise CliError(
                f"{args.zk_keys} was made from a powers of tau with sha256 {manifest.get('sha256')}, "
                f"not from {args.ptau}"
            )
    if args.dev_account is not None:
        if chain_id not in (SCROLL_SEPOLIA_CHAIN_ID, 31337) or not _is_anvil(w3):
            raise CliError("--dev-account is for a local anvil chain only; use --private-key-file")
        key = dev_private_key(args.dev_account)
    else:
        key = read_private_key_file(args.private_key_file)
    if not tokens and not _is_anvil(w3):
        raise CliError("not a local chain: give the staking tokens with --token SYMBOL=ADDRESS")
    deployer = Account.from_key(key).address
    if w3.eth.get_balance(deployer) == 0:
        raise CliError(f"deployer {deployer} has no ETH on chain {chain_id}")
    try:
        deployment = deploy_all(
            w3,
            key,
            operator=operator or deployer,
            fee_recipient=fee_recipient,
            local_tokens=not tokens,
            tokens=tokens or None,
            rate_feeds=feeds or None,
            # a ceremony file replaces the development setup
            dev_zk_verifiers=False if ceremony is not None else None,
            zk_keys=args.zk_keys,
        )
    except ContractRevert as exc:
        raise CliError(f"deployment reverted: {exc}") from exc
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if ceremony is not None and args.zk_keys is None:
        deployment.zk_setup = {
            "kind": "ceremony",
            "ptau": ceremony.name,
            "power": ceremony.power,
            "sha256": ceremony.sha256,
        }
    deployment.write(args.out)
    for name, address in deployment.addresses.items():
        print(f"{name:16} {address}")
    setup = deployment.zk_setup.get("kind")
    if setup == "development":
        print("zk setup: DEVELOPMENT keys (public beacon; local chain only)")
    elif setup == "ceremony" and args.zk_keys is not None:
        print(
            f"zk setup: ceremony {ceremony.name if ceremony else ''} (sha256 checked), phase 2 keys "
            f"{args.zk_keys}; give the gateway TWOPM_GATEWAY_PROOF_KEYS_DIR={args.zk_keys}"
        )
        skipped = deployment.zk_setup.get("skipped") or {}
        if skipped:
            print(f"zk setup: no {', '.join(skipped)} ({'; '.join(sorted(set(skipped.values())))})")
    elif setup == "ceremony":
        print(
            f"zk setup: ceremony {ceremony.name if ceremony else ''} (sha256 checked); no --zk-keys, so "
            "no proof verifier was deployed (make them with python -m zk ceremony)"
        )
    else:
        print("zk setup: none (no proof verifiers on this chain; give --ptau with a ceremony file)")
    print(f"deployment file: {args.out}")
    return 0


def _feed(args: argparse.Namespace) -> int:
    w3 = _connect(args.rpc_url)
    key = (
        dev_private_key(args.dev_account)
        if args.dev_account is not None
        else read_private_key_file(args.private_key_file)
    )
    try:
        deployment = Deployment.read(args.deployment, w3)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the deployment file {args.deployment}: {exc}") from exc
    if "WstETHRateFeed" not in deployment.addresses:
        raise CliError(f"{args.deployment} has no WstETHRateFeed stand-in (deploy with feed=new)")
    if args.answer <= 0:
        raise CliError(f"--answer must be positive wei, not {args.answer}")
    feed = deployment.contract("WstETHRateFeed")
    try:
        receipt = Transactor(w3, key).transact(feed.functions.setAnswer(args.answer))
    except (ContractRevert, TransactionFailed) as exc:
        raise CliError(f"the feed refused the answer: {exc}") from exc
    round_id = int(feed.functions.latestRoundData().call()[0])
    print(f"WstETHRateFeed {feed.address}: round {round_id}, answer {args.answer}")
    print(f"transaction {receipt['transactionHash'].to_0x_hex()}")
    return 0


def _is_anvil(w3: Web3) -> bool:
    try:
        version = w3.client_version
    except Exception:
        return False
    return version.lower().startswith("anvil")


def _up(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise CliError(
            f"--port {args.port} is not a TCP port: give 1 to 65535, or 0 for any free one"
        )
    state_dir: Path = args.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        chain = Anvil.start(
            chain_id=args.chain_id, port=args.port or None, log_path=state_dir / "anvil.log"
        )
    except AnvilError as exc:
        raise CliError(str(exc)) from exc
    with chain:
        info = {
            "rpc_url": chain.rpc_url,
            "chain_id": chain.chain_id,
            "pid": chain.pid,
            "accounts": [
                {"address": a.address, "private_key": a.private_key} for a in chain.accounts
            ],
        }
        if args.deploy:
            deployment = deploy_all(
                chain.w3, chain.accounts[0].private_key, operator=chain.accounts[0].address
            )
            deployment.write(state_dir / "deployment.json")
            info["contracts"] = deployment.addresses
        (state_dir / "chain.json").write_text(json.dumps(info, indent=2) + "\n")
        print(
            f"anvil on {chain.rpc_url} (chain id {chain.chain_id}); details in {state_dir / 'chain.json'}"
        )
        if args.deploy:
            print(f"contracts deployed; deployment file: {state_dir / 'deployment.json'}")
        print("press Ctrl-C to stop", flush=True)

        def _stop(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _stop)
        try:
            code = chain.wait()
        except KeyboardInterrupt:
            print("stopping anvil", file=sys.stderr)
            return 0
    raise CliError(f"anvil exited unexpectedly with code {code}; see {state_dir / 'anvil.log'}")
