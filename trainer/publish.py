"""Publish a trained bundle as a subnet model version in `SubnetRegistry`, from the owner's wallet or the signer.

A model owner publishes from their own wallet (``--keystore FILE`` or ``--key-file FILE``): the
subnet is created by, and belongs to, that address, which receives the owner share of its revenue;
the operator keeps only the protocol fee. For an operator-run subnet the operator key lives only
in the signer; this module builds the calls, the signer signs them (its policy allows
`createSubnet` and `publishModel`), and the `Transactor` broadcasts and waits. Contributors are the nodes' operator addresses (each must be registered
in `NodeRegistry`) with shares in proportion to their rows, in basis points that sum to
exactly 10000 (largest-remainder apportionment, every contributor at least 1 bp).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from contracts.keys import KeyLoadError, load_key_file, load_keystore
from core.cli import CliError

__all__ = [
    "PublishError",
    "PublishResult",
    "add_publish_parser",
    "contributor_shares",
    "publish_bundle",
    "training_run_id",
]

TOTAL_BPS = 10_000


class PublishError(ValueError):
    """The bundle cannot be published as asked (the message says why)."""


def contributor_shares(nodes: list[dict[str, Any]]) -> tuple[list[str], list[int]]:
    """Contributors and their shares in basis points, proportional to rows.

    Nodes with the same operator address are merged. Hamilton's largest-remainder method
    on `10000 - k` after giving each of the `k` contributors 1 bp, so no share is 0 and the
    sum is exactly 10000; ties in the remainder go to the lower address.

    Args:
        nodes: the card's `nodes` entries (`operator_address`, `n_rows`).

    Returns:
        (checksummed addresses sorted ascending, shares in bps, same order).

    Raises:
        PublishError: if a node has no operator address or no rows, or there is no node.
    """
    from eth_utils import is_address, to_checksum_address

    rows: dict[str, int] = {}
    for node in nodes:
        addr = str(node.get("operator_address", ""))
        if not addr or not is_address(addr):
            raise PublishError(
                f"node {node.get('node_id')} reported no valid operator address; start it "
                "with `twopm node --operator-address 0x...`"
            )
        n = int(node.get("n_rows", 0))
        if n <= 0:
            raise PublishError(f"node {node.get('node_id')} reported no rows")
        key = to_checksum_address(addr)
        rows[key] = rows.get(key, 0) + n
    if not rows:
        raise PublishError("the model card lists no nodes")
    if len(rows) > TOTAL_BPS:
        raise PublishError("more contributors than basis points")
    addrs = sorted(rows, key=lambda a: int(a, 16))
    total = sum(rows.values())
    spare = TOTAL_BPS - len(addrs)
    exact = [spare * rows[a] / total for a in addrs]
    shares = [1 + int(e) for e in exact]
    left = TOTAL_BPS - sum(shares)
    order = sorted(range(len(addrs)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for i in order[:left]:
        shares[i] += 1
    return addrs, shares


def training_run_id(card: dict[str, Any]) -> bytes:
    """The `trainingRunId` published on chain: sha256 of the card's training record.

    Args:
        card: the model card.

    Returns:
        32 bytes.
    """
    blob = json.dumps(
        {"training": card.get("training"), "nodes": card.get("nodes"), "job": card.get("job_name")},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    return hashlib.sha256(blob).digest()


@dataclass(frozen=True)
class PublishResult:
    """What was published.

    Attributes:
        subnet_id: the subnet.
        version: the model version number (1-based).
        created: whether this call created the subnet.
        contributors: contributor addresses.
        shares_bps: their shares.
        tx_hashes: hashes of the transactions sent (create, publish).
    """

    subnet_id: int
    version: int
    created: bool
    contributors: list[str]
    shares_bps: list[int]
    tx_hashes: list[str]


def publish_bundle(
    *,
    deployment: Any,
    transactor: Any,
    bundle: Any,
    artifact_uri: str,
    subnet_id: int | None = None,
    subnet_name: str = "",
    price_per_request_wei: int = 10**12,
    min_stake_wei: int = 0,
    owner_share_bps: int = 1000,
) -> PublishResult:
    """Create the subnet if needed, then publish the bundle as its next model version.

    Args:
        deployment: `contracts.deploy.Deployment` with a web3 client attached.
        transactor: `contracts.Transactor` signing with `signer.RemoteSigner` (the operator,
            through the signer) or with `contracts.tx.LocalKey` (the model owner's own key).
        bundle: a verified :class:`trainer.bundle.ModelBundle`.
        artifact_uri: where gateways fetch the bundle (e.g. `file:///…/<sha256>`).
        subnet_id: an existing subnet to update; None creates one named `subnet_name`.
        subnet_name: name of a new subnet.
        price_per_request_wei: price of a new subnet, wei.
        min_stake_wei: minimum stake of a new subnet, wei.
        owner_share_bps: the owner's revenue share of a new subnet, bps.

    Returns:
        The result.

    Raises:
        PublishError: unregistered contributors, a subnet the publishing address does not
            own, or missing arguments.
    """
    registry = deployment.contract("SubnetRegistry")
    nodes = deployment.contract("NodeRegistry")
    card_nodes = bundle.card.get("nodes", [])
    claimed = sum(int(node.get("n_rows", 0)) for node in card_nodes)
    if claimed != int(bundle.card.get("n_rows", -1)):
        raise PublishError(
            f"the nodes claim {claimed} rows but the secure sum counted "
            f"{bundle.card.get('n_rows')}: a holder over-claims; nothing published"
        )
    contributors, shares = contributor_shares(card_nodes)
    for addr in contributors:
        if not nodes.functions.isRegistered(addr).call():
            raise PublishError(f"contributor {addr} is not a registered node in NodeRegistry")
    operator = transactor.address
    tx_hashes: list[str] = []
    created = False
    if subnet_id is None:
        if not subnet_name:
            raise PublishError("give a subnet id to update, or a name to create one")
        receipt = transactor.transact(
            registry.functions.createSubnet(
                subnet_name, int(price_per_request_wei), int(min_stake_wei), int(owner_share_bps)
            ),
            idempotency_key=f"trainer-create-subnet-{subnet_name}-{bundle.sha256}",
        )
        events = registry.events.SubnetCreated().process_receipt(receipt)
        subnet_id = int(events[0]["args"]["subnetId"])
        tx_hashes.append(receipt["transactionHash"].to_0x_hex())
        created = True
    else:
        owner = registry.functions.subnetOf(int(subnet_id)).call()[0]
        if str(owner).lower() != str(operator).lower():
            from contracts.tx import LocalKey

            who = "you," if isinstance(transactor.signer, LocalKey) else "the operator"
            raise PublishError(f"subnet {subnet_id} is owned by {owner}, not {who} {operator}")
    schema = bytes.fromhex(bundle.card["feature_schema_sha256"])
    receipt = transactor.transact(
        registry.functions.publishModel(
            int(subnet_id),
            bytes.fromhex(bundle.sha256),
            artifact_uri,
            schema,
            training_run_id(bundle.card),
            contributors,
            shares,
        ),
        idempotency_key=f"trainer-publish-{subnet_id}-{bundle.sha256}",
    )
    events = registry.events.ModelPublished().process_receipt(receipt)
    version = int(events[0]["args"]["version"])
    tx_hashes.append(receipt["transactionHash"].to_0x_hex())
    return PublishResult(int(subnet_id), version, created, contributors, shares, tx_hashes)


def add_publish_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add `twopm publish`.

    Args:
        subparsers: the `twopm` sub-command registry.
    """
    p = subparsers.add_parser(
        "publish",
        help="publish a model bundle to SubnetRegistry from your wallet or through the signer",
        description="Verify the bundle, check every contributor in NodeRegistry, then send "
        "createSubnet (unless --subnet-id) and publishModel from the model owner's wallet "
        "(--keystore or --key-file: the subnet is yours), or have the operator's signer sign "
        "them (an operator-run subnet).",
    )
    wallet = p.add_argument_group("model owner's wallet (instead of the signer)")
    key = wallet.add_mutually_exclusive_group()
    key.add_argument("--keystore", type=Path, help="your encrypted keystore (JSON v3)")
    key.add_argument("--key-file", type=Path, help="file (mode 0600) holding your hex private key")
    wallet.add_argument("--password-file", type=Path, help="keystore password file (else a prompt)")
    p.add_argument("--bundle", required=True, help="bundle directory (or model store + --sha256)")
    p.add_argument("--sha256", help="expected bundle sha256 (hex)")
    p.add_argument(
        "--stack",
        type=Path,
        help="stack.json of `twopm up`: supplies the five flags below and the gateway's model "
        "store, which the bundle must lie in (checked before anything is sent)",
    )
    p.add_argument("--rpc-url", help="JSON-RPC URL of the chain")
    p.add_argument("--deployment", help="deployment JSON (twopm chain deploy)")
    p.add_argument("--signer-url", help="signer URL")
    p.add_argument("--signer-caller", help="caller id registered in the signer")
    p.add_argument("--signer-secret-file", help="file (mode 0600) with the caller's hex secret")
    p.add_argument("--subnet-id", type=int, help="update this subnet (default: create one)")
    p.add_argument("--name", default="", help="name of a new subnet")
    p.add_argument("--price-wei", type=int, default=10**12, help="price per request, wei")
    p.add_argument("--min-stake-wei", type=int, default=0, help="minimum stake, wei")
    p.add_argument("--owner-share-bps", type=int, default=1000, help="owner share, bps")
    p.add_argument(
        "--artifact-uri",
        help="URI the gateway fetches the bundle from: file://<dir> (default: the bundle "
        "directory; inside the gateway's model store when it has one) or an http(s):// base URL",
    )
    p.set_defaults(handler=_publish)


_LOCAL_STACK = Path(".state/up/stack.json")
"""Where `twopm up` describes the local network (relative to the working directory)."""

_STACK_FLAGS = {
    "rpc_url": "--rpc-url",
    "deployment": "--deployment",
    "signer_url": "--signer-url",
    "signer_caller": "--signer-caller",
    "signer_secret_file": "--signer-secret-file",
}


def _own_wallet(args: argparse.Namespace) -> LocalAccount | None:
    """The model owner's account when ``--keystore`` or ``--key-file`` names one, else None.

    Secret files follow :func:`core.secrets.read_private_file` (mode 0600 or 0400), as the SDK's
    wallets and the signer do; a keystore is Web3 Secret Storage, decrypted by eth-account.

    Raises:
        CliError: A file is missing, readable by others or unusable, or the password is wrong.
    """
    keystore: str | None = getattr(args, "keystore", None)
    key_file: str | None = getattr(args, "key_file", None)
    if keystore is None and key_file is None:
        return None
    password_file = getattr(args, "password_file", None)
    try:
        if key_file is not None:
            return load_key_file(key_file)
        assert keystore is not None
        return load_keystore(keystore, password_file=password_file)
    except KeyLoadError as exc:
        raise CliError(str(exc)) from None


def _from_stack(args: argparse.Namespace, *, signer: bool = True) -> Path | None:
    """Fill the network flags left unset from ``--stack``; return the gateway's model store."""
    store: Path | None = None
    if args.stack is not None:
        try:
            stack = json.loads(Path(args.stack).read_text())
            publisher = stack.get("publisher") or {}
            found = {
                "rpc_url": stack.get("rpc_url"),
                "deployment": stack.get("deployment_file"),
                "signer_url": stack.get("signer_url"),
                "signer_caller": publisher.get("caller"),
                "signer_secret_file": publisher.get("secret_file"),
            }
        except OSError as exc:
            raise CliError(
                f"cannot read {args.stack}: {exc.strerror}; start `twopm up` first"
            ) from None
        except (ValueError, AttributeError) as exc:
            raise CliError(f"{args.stack} is not a stack file of `twopm up`") from exc
        for name, value in found.items():
            if getattr(args, name, None) is None and value is not None:
                setattr(args, name, str(value))
        store = Path(stack["model_store"]) if stack.get("model_store") else None
    elif args.rpc_url and _LOCAL_STACK.is_file():
        # the network of `twopm up` in this directory, named by its flags instead of --stack:
        # its gateway still loads bundles only from its model store
        try:
            stack = json.loads(_LOCAL_STACK.read_text())
        except (OSError, ValueError):
            stack = {}
        if isinstance(stack, dict) and stack.get("rpc_url") == args.rpc_url:
            store = Path(stack["model_store"]) if stack.get("model_store") else None
    needed = _STACK_FLAGS if signer else {k: _STACK_FLAGS[k] for k in ("rpc_url", "deployment")}
    missing = [flag for name, flag in needed.items() if not getattr(args, name, None)]
    if missing:
        raise CliError(
            f"missing {', '.join(missing)}: give them, or --stack FILE of `twopm up` for a local stack"
        )
    return store


def check_gateway_can_load(artifact_uri: str, model_store: Path | None) -> None:
    """Refuse an artifact URI that the gateway will not load, before anything is sent.

    The rules are the gateway's (``gateway/_models.py``): a ``file://`` URI or path must lie
    inside the gateway's model store when it has one; an ``http(s)://`` base URL must serve
    ``manifest.json``; no other scheme is fetched.

    Args:
        artifact_uri: The URI that will be published.
        model_store: The gateway's model store, when known (``model_store`` of ``stack.json``).

    Raises:
        CliError: The gateway could not load the bundle from there (the message says why and
            what to do).
    """
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(artifact_uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        import httpx

        url = artifact_uri.rstrip("/") + "/manifest.json"
        try:
            answer = httpx.get(url, timeout=10)
        except httpx.HTTPError as exc:
            raise CliError(
                f"the gateway could not fetch the bundle: {url} does not answer ({exc});"
                " nothing was written to the chain"
            ) from None
        if answer.status_code != 200:
            raise CliError(
                f"the gateway could not fetch the bundle: {url} answers {answer.status_code};"
                " nothing was written to the chain"
            )
        return
    if scheme not in ("", "file"):
        raise CliError(
            f"--artifact-uri {artifact_uri!r}: the gateway fetches file:// and http(s):// only"
        )
    if model_store is None:
        return
    path = Path(unquote(parts.path) if scheme == "file" else artifact_uri)
    store = model_store.resolve()
    if not path.resolve().is_relative_to(store):
        raise CliError(
            f"the stack's gateway loads bundles only from its model store {store}, and"
            f" {path} lies outside it: train with --model-store {store} (or copy the bundle"
            " there), or pass --artifact-uri http(s)://… it can fetch; nothing was written"
            " to the chain"
        )


def _publish(args: argparse.Namespace) -> int:
    from web3 import Web3

    from contracts import ContractRevert, Transactor
    from contracts.deploy import Deployment
    from signer import ClientError, RemoteSigner, SignerClient, SignerRefused, SignerUnavailable
    from trainer.bundle import BundleError, load_bundle

    wallet = _own_wallet(args)
    model_store = _from_stack(args, signer=wallet is None)
    try:
        bundle = load_bundle(args.bundle, args.sha256)
    except BundleError as exc:
        raise CliError(str(exc)) from None
    bundle_dir = Path(args.bundle)
    if not (bundle_dir / "manifest.json").is_file():
        bundle_dir = bundle_dir / bundle.sha256
    uri = args.artifact_uri or (bundle_dir.resolve() / "").as_uri()
    check_gateway_can_load(uri, model_store)
    w3 = Web3(Web3.HTTPProvider(args.rpc_url, request_kwargs={"timeout": 30}))
    if not w3.is_connected():
        raise CliError(f"no JSON-RPC node answers at {args.rpc_url}")
    try:
        deployment = Deployment.read(Path(args.deployment), w3)
    except (OSError, ValueError) as exc:
        raise CliError(f"--deployment: {exc}") from None
    if int(w3.eth.chain_id) != deployment.chain_id:
        raise CliError(
            f"chain id {w3.eth.chain_id} differs from the deployment's {deployment.chain_id}"
        )
    if args.subnet_id is None and not args.name:
        raise CliError("give --subnet-id to update a subnet, or --name to create one")
    if not 0 <= args.owner_share_bps <= TOTAL_BPS or args.price_wei < 0 or args.min_stake_wei < 0:
        raise CliError("--owner-share-bps must be in [0, 10000]; prices and stakes >= 0")

    def publish(transactor: Any) -> PublishResult:
        return publish_bundle(
            deployment=deployment,
            transactor=transactor,
            bundle=bundle,
            artifact_uri=uri,
            subnet_id=args.subnet_id,
            subnet_name=args.name,
            price_per_request_wei=args.price_wei,
            min_stake_wei=args.min_stake_wei,
            owner_share_bps=args.owner_share_bps,
        )

    try:
        if wallet is not None:
            balance_wei = int(w3.eth.get_balance(wallet.address))
            if balance_wei == 0:
                raise CliError(
                    f"{wallet.address} holds no ETH to pay the gas of publishing; fund it first"
                )
            result = publish(Transactor(w3, "0x" + bytes(wallet.key).hex()))
            publisher = str(wallet.address)
        else:
            try:
                client = SignerClient.from_secret_file(
                    args.signer_url, args.signer_caller, Path(args.signer_secret_file)
                )
            except ClientError as exc:
                raise CliError(str(exc)) from None
            with client:
                transactor = Transactor(w3, RemoteSigner(client))
                result = publish(transactor)
                publisher = str(transactor.address)
    except CliError:
        raise
    except PublishError as exc:
        raise CliError(str(exc)) from None
    except (SignerRefused, SignerUnavailable, ClientError) as exc:
        raise CliError(f"signer: {exc}") from None
    except ContractRevert as exc:
        raise CliError(
            f"publication refused by the chain: {exc.name}{tuple(exc.arguments)}"
        ) from None
    except Exception as exc:  # chain errors: failed estimation, timeouts
        raise CliError(f"publication failed: {str(exc).splitlines()[0]}") from None
    print(
        json.dumps(
            {
                "subnet_id": result.subnet_id,
                "version": result.version,
                "created": result.created,
                "owner": publisher,
                "model_hash": "0x" + bundle.sha256,
                "contributors": result.contributors,
                "shares_bps": result.shares_bps,
                "tx_hashes": result.tx_hashes,
            },
            indent=2,
        )
    )
    return 0
