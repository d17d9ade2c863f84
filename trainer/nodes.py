"""A data holder's own entry in ``NodeRegistry``: ``twopm node register|update|leave|key|admit``.

``twopm node key`` makes the holder's SuperNode key and signs it with the holder's wallet (no
transaction); ``twopm node admit`` is run by whoever runs the SuperLink: it checks the signature's
address in ``NodeRegistry`` and registers the key with the SuperLink (see :mod:`trainer.nodeauth`).

Each command sends one transaction from the holder's own wallet, named by a wallet flag
(``--key-file FILE``, ``--keystore FILE`` with ``--password-file``, or ``--dev-user N`` for the
N-th wallet user of a local stack file), and prints one line that starts with the address it acted
for. The chain is ``--stack FILE`` (the stack file of ``twopm up``; ``.state/up/stack.json`` when
present) or ``--rpc-url`` with ``--deployment``.

Every refusal is checked before anything is sent and is one line with a non-zero exit: a name or URL
that ``NodeRegistry`` would refuse (1..64 and 1..256 bytes; a URL must read ``scheme://host...``),
registering twice, updating or leaving while not registered, a wallet without ETH for the gas. A
revert that still happens (a race with another transaction) is decoded with
:func:`contracts.would_revert` and named by its custom error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.cli import CliError

__all__ = ["MAX_NAME_BYTES", "MAX_URL_BYTES", "add_node_actions", "check_fields"]

#: ``NodeRegistry.MAX_NAME_BYTES`` (contracts/src/NodeRegistry.sol).
MAX_NAME_BYTES = 64
#: ``NodeRegistry.MAX_URL_BYTES`` (contracts/src/NodeRegistry.sol).
MAX_URL_BYTES = 256

_LOCAL_STACK = Path(".state/up/stack.json")

_MEANINGS = {
    "NodeRegistryAlreadyRegistered": "the address is registered already",
    "NodeRegistryNotRegistered": "the address is not registered",
    "NodeRegistryInvalidName": "the name is empty or over 64 bytes",
    "NodeRegistryInvalidUrl": "the URL is empty or over 256 bytes",
}
"""What each custom error of contracts/src/NodeRegistry.sol means, for the refusal's line."""


def add_node_actions(node_parser: argparse.ArgumentParser) -> None:
    """Add ``register``, ``update`` and ``leave`` under ``twopm node``.

    Without an action, ``twopm node --data …`` still runs a SuperNode (``trainer.cli``).

    Args:
        node_parser: the parser of ``twopm node``.
    """
    actions = node_parser.add_subparsers(dest="node_action", metavar="ACTION")
    r = actions.add_parser(
        "register",
        help="register your address in NodeRegistry (name and URL), from your own wallet",
        description="Send NodeRegistry.register(name, url) from your wallet: the address that"
        " the model's contributor shares pay.",
    )
    r.add_argument("--name", required=True, help=f"node name, 1..{MAX_NAME_BYTES} bytes")
    r.add_argument("--url", required=True, help="where the node is reached, scheme://host…")
    _wallet_flags(r)
    r.set_defaults(handler=_register)
    u = actions.add_parser(
        "update",
        help="change your node's name and/or URL",
        description="Send NodeRegistry.update(name, url); a field not given keeps its value.",
    )
    u.add_argument("--name", help=f"new name, 1..{MAX_NAME_BYTES} bytes")
    u.add_argument("--url", help="new URL, scheme://host…")
    _wallet_flags(u)
    u.set_defaults(handler=_update)
    leave = actions.add_parser(
        "leave",
        help="remove your node from NodeRegistry",
        description="Send NodeRegistry.leave(); the address may register again later.",
    )
    _wallet_flags(leave)
    leave.set_defaults(handler=_leave)
    k = actions.add_parser(
        "key",
        help="make your SuperNode's key and sign it with your wallet (for `twopm node admit`)",
        description="Make a P-384 OpenSSH key for your SuperNode (or reuse the one at --out) and"
        " sign its public key with your wallet, binding it to your NodeRegistry entry; no"
        " transaction is sent. Writes --out, --out.pub and --out.pub.sig.",
    )
    k.add_argument("--out", required=True, type=Path, help="the node's private key file")
    _wallet_flags(k)
    k.set_defaults(handler=_key)
    a = actions.add_parser(
        "admit",
        help="admit a holder's SuperNode key to your SuperLink after checking NodeRegistry",
        description="Recover the address that signed the node key, refuse it unless it is"
        " registered in NodeRegistry, then `flwr supernode register` the key with the holder's"
        " address as its name (the SuperLink must run with TLS and --enable-supernode-auth;"
        " its port also serves the unauthenticated Control API: keep it on loopback).",
    )
    a.add_argument("public_key", type=Path, help="the node's public key file (.pub)")
    a.add_argument("--signature-file", type=Path, help="the holder's signature (default: KEY.sig)")
    a.add_argument("--superlink", required=True, help="SuperLink address host:port")
    a.add_argument("--root-certificates", required=True, type=Path, help="the SuperLink's CA")
    a.add_argument("--stack", type=Path, help="stack file of `twopm up`")
    a.add_argument("--rpc-url", help="JSON-RPC URL of the chain")
    a.add_argument("--deployment", help="deployment file naming the contracts")
    a.set_defaults(handler=_admit, dev_user=None, keystore=None, key_file=None)


def _wallet_flags(p: argparse.ArgumentParser) -> None:
    key = p.add_mutually_exclusive_group()
    key.add_argument("--keystore", help="your encrypted keystore (JSON v3)")
    key.add_argument("--key-file", help="file holding your 0x private key (mode 0600)")
    key.add_argument(
        "--dev-user", type=int, metavar="N", help="the N-th wallet user of a local stack file"
    )
    p.add_argument("--password-file", type=Path, help="keystore password file (else a prompt)")
    p.add_argument("--stack", type=Path, help="stack file of `twopm up`")
    p.add_argument("--rpc-url", help="JSON-RPC URL of the chain")
    p.add_argument("--deployment", help="deployment file naming the contracts")


def check_fields(name: str, url: str) -> None:
    """Refuse a name or URL that ``NodeRegistry._checkFields`` would refuse, or a URL without a host.

    Args:
        name: Node name; 1..64 bytes of UTF-8.
        url: Node URL; 1..256 bytes, ``scheme://host[...]``.

    Raises:
        CliError: One line naming the field and the rule.
    """
    name_bytes = len(name.encode())
    if not 0 < name_bytes <= MAX_NAME_BYTES:
        raise CliError(
            f"--name must be 1 to {MAX_NAME_BYTES} bytes, got {name_bytes} (NodeRegistry's limit)"
        )
    url_bytes = len(url.encode())
    if not 0 < url_bytes <= MAX_URL_BYTES:
        raise CliError(
            f"--url must be 1 to {MAX_URL_BYTES} bytes, got {url_bytes} (NodeRegistry's limit)"
        )
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc or any(c.isspace() for c in url):
        raise CliError(
            f"--url {url!r} is not a URL: give scheme://host[:port][/path],"
            " e.g. https://node.example:9092"
        )


class _Registry:
    """The holder's wallet, the chain and ``NodeRegistry`` bound together for one command."""

    def __init__(self, args: argparse.Namespace, *, wallet: bool = True) -> None:
        from web3 import Web3

        from contracts.deploy import Deployment
        from trainer.publish import _own_wallet

        stack = self._stack(args)
        rpc_url = args.rpc_url or (stack or {}).get("rpc_url")
        deployment_file = args.deployment or (stack or {}).get("deployment_file")
        self.account: Any = None
        if not wallet:
            pass
        elif args.dev_user is not None:
            users = ((stack or {}).get("accounts") or {}).get("wallet_users") or []
            if stack is None:
                raise CliError("--dev-user needs the stack file of `twopm up` (--stack FILE)")
            if not 0 <= args.dev_user < len(users):
                raise CliError(
                    f"--dev-user {args.dev_user}: the stack file lists {len(users)} wallet users"
                )
            from eth_account import Account

            self.account = Account.from_key(users[args.dev_user]["private_key"])
        else:
            self.account = _own_wallet(args)
            if self.account is None:
                raise CliError("no wallet: give --keystore, --key-file, or --dev-user N")
        if not rpc_url:
            raise CliError(
                "no chain: give --stack FILE of `twopm up`, or --rpc-url and --deployment"
            )
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        if not self.w3.is_connected():
            raise CliError(f"no JSON-RPC node answers at {rpc_url}")
        try:
            if deployment_file:
                deployment = Deployment.read(Path(deployment_file), self.w3)
                self.registry = deployment.contract("NodeRegistry")
            else:
                contracts = (stack or {}).get("contracts") or {}
                if "NodeRegistry" not in contracts:
                    raise CliError("no deployment: give --deployment, or a stack file naming it")
                from contracts import load_artifact

                self.registry = self.w3.eth.contract(
                    address=contracts["NodeRegistry"], abi=load_artifact("NodeRegistry").abi
                )
        except (OSError, ValueError, KeyError) as exc:
            raise CliError(f"--deployment: {exc}") from None
        self.address = str(self.account.address) if self.account is not None else ""

    @staticmethod
    def _stack(args: argparse.Namespace) -> dict[str, Any] | None:
        path: Path | None = args.stack
        if path is None and args.rpc_url is None and _LOCAL_STACK.is_file():
            path = _LOCAL_STACK
        if path is None:
            return None
        try:
            stack = json.loads(Path(path).read_text())
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}; start `twopm up` first") from None
        except ValueError:
            raise CliError(f"{path} is not a stack file of `twopm up`") from None
        if not isinstance(stack, dict):
            raise CliError(f"{path} is not a stack file of `twopm up`")
        return stack

    def record(self) -> tuple[str, str] | None:
        """The holder's (name, url), or None when it is not registered."""
        if not self.registry.functions.isRegistered(self.address).call():
            return None
        node = self.registry.functions.nodeOf(self.address).call()
        return str(node[1]), str(node[2])

    def send(self, call: Any, what: str) -> str:
        """Send ``call`` from the holder's wallet; return the transaction hash (0x hex)."""
        from contracts import ContractRevert, Transactor, WouldRevert

        if int(self.w3.eth.get_balance(self.account.address)) == 0:
            raise CliError(f"{self.address} holds no ETH to pay the gas of {what}; fund it first")
        try:
            receipt = Transactor(self.w3, "0x" + bytes(self.account.key).hex()).transact(call)
        except ContractRevert as exc:
            named = f"{exc.name}({', '.join(str(a) for a in exc.arguments)})"
            meaning = _MEANINGS.get(exc.name)
            raise CliError(
                f"{self.address}: NodeRegistry refused {what} with {named}"
                + (f": {meaning}" if meaning else "")
            ) from None
        except WouldRevert as exc:
            raise CliError(f"{self.address}: NodeRegistry refused {what}: {exc}") from None
        except Exception as exc:  # chain errors: funds, timeouts
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CliError(f"{self.address}: {what} failed: {first}") from None
        tx_hash = receipt["transactionHash"]
        return tx_hash if isinstance(tx_hash, str) else "0x" + bytes(tx_hash).hex()


def _register(args: argparse.Namespace) -> int:
    check_fields(args.name, args.url)
    reg = _Registry(args)
    current = reg.record()
    if current is not None:
        raise CliError(
            f"{reg.address} is registered already as {current[0]!r} at {current[1]};"
            " change it with `twopm node update`, or `twopm node leave` first"
        )
    tx = reg.send(reg.registry.functions.register(args.name, args.url), "registering")
    print(f"{reg.address} registered as {args.name!r} at {args.url} in NodeRegistry in {tx}")
    return 0


def _update(args: argparse.Namespace) -> int:
    if args.name is None and args.url is None:
        raise CliError("give --name, --url or both to change")
    reg = _Registry(args)
    current = reg.record()
    if current is None:
        raise CliError(f"{reg.address} is not registered; run `twopm node register` first")
    name = current[0] if args.name is None else args.name
    url = current[1] if args.url is None else args.url
    check_fields(name, url)
    tx = reg.send(reg.registry.functions.update(name, url), "the update")
    print(f"{reg.address} is now {name!r} at {url} in NodeRegistry, updated in {tx}")
    return 0


def _leave(args: argparse.Namespace) -> int:
    reg = _Registry(args)
    current = reg.record()
    if current is None:
        raise CliError(f"{reg.address} is not registered; there is nothing to leave")
    tx = reg.send(reg.registry.functions.leave(), "leaving")
    print(f"{reg.address} ({current[0]!r}) left NodeRegistry in {tx}")
    return 0


def _key(args: argparse.Namespace) -> int:
    from trainer.nodeauth import (
        NodeAdmissionError,
        make_node_key,
        read_public_key_line,
        sign_node_key,
    )

    out: Path = args.out
    public = Path(f"{out}.pub")
    if out.exists() != public.exists():
        raise CliError(f"{out} and {public} must both exist (reuse) or both be absent (new key)")
    if out.is_dir():
        raise CliError(f"--out {out} is a directory; give the private key's file name")
    reg = _Registry(args)
    if reg.record() is None:
        raise CliError(f"{reg.address} is not registered; run `twopm node register` first")
    try:
        line = read_public_key_line(public) if out.exists() else make_node_key(out).public_line
    except NodeAdmissionError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror}") from None
    chain_id = int(reg.w3.eth.chain_id)
    signature = sign_node_key(line, reg.account, chain_id, str(reg.registry.address))
    sig_file = Path(f"{public}.sig")
    sig_file.write_text(signature + "\n", encoding="utf-8")
    print(f"{reg.address} signed node key {public} (signature in {sig_file}); give both files to"
          " the SuperLink's operator for `twopm node admit`")  # fmt: skip
    return 0


def _admit(args: argparse.Namespace) -> int:
    import tempfile

    from trainer.deployment import _write_flower_home
    from trainer.nodeauth import NodeAdmissionError, admit_node

    sig_file: Path = args.signature_file or Path(f"{args.public_key}.sig")
    try:
        signature = sig_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CliError(f"cannot read the signature {sig_file}: {exc.strerror}") from None
    if not args.root_certificates.is_file():
        raise CliError(f"--root-certificates: no such file {args.root_certificates}")
    host, _, port = args.superlink.rpartition(":")
    if not host or not port.isdigit():
        raise CliError(f"--superlink {args.superlink!r} is not host:port")
    reg = _Registry(args, wallet=False)
    with tempfile.TemporaryDirectory(prefix="twopm-admit-") as tmp:
        home = Path(tmp) / "flwr-home"
        _write_flower_home(home, args.superlink, args.root_certificates)
        try:
            admission = admit_node(
                public_key_file=args.public_key,
                signature=signature,
                registry=reg.registry,
                chain_id=int(reg.w3.eth.chain_id),
                flwr_home=home,
            )
        except NodeAdmissionError as exc:
            raise CliError(str(exc)) from None
    print(f"{admission.address} admitted: SuperNode {admission.node_id} at {args.superlink}")
    return 0
