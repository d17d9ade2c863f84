"""``twopm up``: start the whole local 2PM network and keep it running until SIGINT/SIGTERM.

Order: anvil (chain id 534351) -> contracts -> the isolated signer (holding the operator key) -> six
data holders registered in NodeRegistry -> federated training with SecAgg+ of the Spector data over
three SuperNodes and of the breast-cancer data over three more -> both models published as subnets
through the signer -> the gateway. ``DIR/stack.json`` describes the running network (the names are
fixed by ``shared/DESIGN.md``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from contracts import Anvil, AnvilError, Deployment, Transactor, deploy_all
from contracts.scroll import LOCAL_L1_FEE_PARAMS
from core.cli import CliError
from core.proc import ProcessError, ProcessGroup, wait_for
from stack._proc import http_ok, read_json_file

#: Accounts of the local chain, by role (anvil's funded development accounts).
DEPLOYER, OPERATOR, FEE_RECIPIENT = 0, 1, 2
HOLDERS = {"spector": (4, 5, 6), "breast-cancer": (7, 8, 9)}
#: Data sets whose holders commit to their rows and prove their training by default (one proof each).
PROVEN_TRAINING = ("spector",)
#: Proven only with ``--chunked-training-proofs``: the 30-feature holders prove ~95 chunks each
#: (minutes on 2 loaded cores; bench/proofs/training_chunks_results.json), too long for every demo.
CHUNKED_TRAINING = ("breast-cancer",)
WALLET_USERS = (10, 11, 12)

#: The subnets published by ``twopm up``: price per billed row (wei) and minimum stake (wei of ETH).
SUBNETS: tuple[dict[str, Any], ...] = (
    {"dataset": "spector", "name": "spector-grade", "price_wei": 10**12, "min_stake_wei": 10**17},
    {
        "dataset": "breast-cancer",
        "name": "breast-cancer",
        "price_wei": 2 * 10**12,
        "min_stake_wei": 10**17,
    },
)


@dataclass
class Stack:
    """A running local network; :meth:`close` (or leaving the ``with``) stops every part.

    Attributes:
        state_dir: Where logs, keys, the model store and ``stack.json`` live.
        chain: The anvil process.
        deployment: The deployed contracts.
        signer_url: The signer's URL.
        gateway_url: The (first) gateway's URL.
        subnets: One entry per published subnet (id, name, model hash, feature names, training figures).
        info: The content of ``stack.json``.
        gateway_urls: Every gateway replica's URL (the first is :attr:`gateway_url`).
    """

    state_dir: Path
    chain: Anvil
    deployment: Deployment
    signer_url: str
    gateway_url: str
    subnets: list[dict[str, Any]]
    info: dict[str, Any]
    group: ProcessGroup
    _exit: ExitStack = field(repr=False)
    gateway_urls: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Stop the gateway, the signer and anvil."""
        self._exit.close()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _step(console: Console, text: str) -> Callable[[], None]:
    started = time.perf_counter()
    console.print(f"[bold]•[/] {text} …")

    def done() -> None:
        console.print(f"  [green]done[/] in {time.perf_counter() - started:.1f} s")

    return done


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
"""The Redis that ``twopm up --replicas N`` (N > 1) uses when no ``--redis-url`` is given."""


def start_stack(
    state_dir: Path,
    *,
    console: Console | None = None,
    redis_url: str | None = None,
    replicas: int = 1,
    chunked_training_proofs: bool = False,
) -> Stack:
    """Start every part of the local network and return it running.

    Args:
        state_dir: Directory for the state of this run; it is emptied of an earlier run's state.
        console: Where progress goes (a quiet console when None).
        redis_url: Run the gateway on Redis instead of the in-memory store.
        replicas: Gateway processes to run (> 1 needs Redis: ``redis_url``, or else
            :data:`DEFAULT_REDIS_URL`). Each run writes under a fresh namespace
            ``twopm-up-<8 hex>`` (in ``stack.json`` as ``redis_namespace``), so an earlier
            run's receipts (of an earlier chain) are never picked up.
        chunked_training_proofs: Also let the breast-cancer holders commit before training and prove
            their training in 2-row chunks after publication (:data:`CHUNKED_TRAINING`; minutes).

    Returns:
        The running stack; close it to stop everything.

    Raises:
        ProcessError: A part failed to start, or replicas were asked for and Redis does not
            answer; everything started so far is stopped again.
    """
    if replicas < 1:
        raise ValueError("replicas must be at least 1")
    if replicas > 1 and not redis_url:
        redis_url = DEFAULT_REDIS_URL
    if redis_url:
        _check_redis(redis_url)
    from signer import L1FeeCap, RemoteSigner, SignerClient, init_state, policy_for_deployment
    from trainer.bundle import load_bundle
    from trainer.deployment import NodeAuth, train_locally
    from trainer.publish import publish_bundle
    from zk import record_model_verifier

    # The fee cap including Scroll's L1 data fee: 0.1 ETH per transaction, L1 inputs up to 10 times the
    # local oracle's (contracts.scroll.LOCAL_L1_FEE_PARAMS).
    local = LOCAL_L1_FEE_PARAMS
    l1_fee_cap = L1FeeCap(
        10**17,
        replace(
            local,
            l1_base_fee_wei=10 * local.l1_base_fee_wei,
            l1_blob_base_fee_wei=10 * local.l1_blob_base_fee_wei,
            penalty_factor=local.penalty_factor // 10,
        ),
    )
    console = console or Console(quiet=True)
    state_dir = state_dir.resolve()
    _reset(state_dir)
    logs = state_dir / "logs"
    from zk import SetupError, ensure_dev_keys

    # Before any service starts, so their start-up timeouts never include it.
    done = _step(console, "development zk keys (cached; minutes on a fresh machine, once)")
    try:
        ensure_dev_keys()
    except SetupError as exc:
        raise CliError(f"cannot make the development zk keys: {exc}") from None
    done()
    exit_stack = ExitStack()
    try:
        done = _step(console, "starting anvil (chain id 534351, Shanghai rules)")
        try:
            chain = Anvil.start(accounts=20, log_path=logs / "anvil.log")
        except AnvilError as exc:
            raise ProcessError(str(exc)) from exc
        exit_stack.callback(chain.stop)
        w3, accounts = chain.w3, chain.accounts
        done()

        done = _step(console, "deploying the contracts")
        deployment = deploy_all(
            w3,
            accounts[DEPLOYER].private_key,
            operator=accounts[OPERATOR].address,
            fee_recipient=accounts[FEE_RECIPIENT].address,
            staking_cooldown_s=60,
            credit_withdrawal_delay_s=60,
        )
        deployment.write(state_dir / "deployment.json")
        done()

        done = _step(console, "starting the isolated signer")
        signer_state = init_state(
            state_dir / "signer",
            private_key=bytes.fromhex(accounts[OPERATOR].private_key[2:]),
            password=secrets.token_hex(16),
            policy_toml=policy_for_deployment(
                deployment.addresses, chain_id=chain.chain_id, l1_fee=l1_fee_cap
            ),
            callers={"gateway": None, "publisher": None},
            scrypt_n=2**14,  # a throwaway local key: keep start-up fast
        )
        group = exit_stack.enter_context(ProcessGroup(logs))
        ready_file = state_dir / "signer" / "ready.json"
        group.twopm(
            "signer",
            "signer", "serve",
            "--state-dir", str(signer_state.state_dir),
            "--password-file", str(signer_state.password_file),
            "--port", "0",
            "--ready-file", str(ready_file),
        )  # fmt: skip
        ready = wait_for("signer", lambda: read_json_file(ready_file), group=group, timeout_s=90)
        signer_url = str(ready["url"])
        # the model owner's caller secret, for `twopm publish --stack` (0600, as the signer's own)
        publisher_secret = state_dir / "publisher.secret"
        _write_private(publisher_secret, signer_state.secrets["publisher"].hex() + "\n")
        done()

        done = _step(console, "registering six data holders in NodeRegistry")
        nodes = deployment.contract("NodeRegistry")
        for dataset, holders in HOLDERS.items():
            for i, index in enumerate(holders):
                Transactor(w3, accounts[index].private_key).transact(
                    nodes.functions.register(
                        f"{dataset}-holder-{i + 1}", f"http://127.0.0.1/{dataset}/{i + 1}"
                    )
                )
        done()

        proven = PROVEN_TRAINING + (CHUNKED_TRAINING if chunked_training_proofs else ())
        done = _step(
            console,
            "every data holder commits to its rows in DataRegistry"
            if chunked_training_proofs
            else "Spector's data holders commit to their rows in DataRegistry",
        )
        from stack._training_proofs import commit_before_training, prove_after_publication

        commitments = {
            dataset: commit_before_training(
                w3,
                deployment,
                dataset,
                [(accounts[i].address, accounts[i].private_key) for i in HOLDERS[dataset]],
                state_dir / "training" / dataset,
            )
            for dataset in proven
        }
        done()

        done = _step(
            console, "federated training with SecAgg+: Spector and breast cancer, 3 nodes each"
        )
        model_store = state_dir / "model-store"

        chain_id = int(w3.eth.chain_id)

        # Ctrl-C / SIGTERM arrive in this thread; the trainings must hear it too, or leaving the
        # pool would wait for both runs to finish (minutes) before anything is stopped.
        cancel = threading.Event()

        def train(dataset: str) -> dict[str, Any]:
            # SuperNodes over TLS, each admitted only after its holder signed its node key and
            # NodeRegistry lists the holder (trainer.nodeauth); their addresses are the names
            auth = NodeAuth([accounts[i].private_key for i in HOLDERS[dataset]], nodes, chain_id)
            return train_locally(
                dataset,
                model_store=model_store,
                workdir=state_dir / "training" / dataset,
                auth=auth,
                cancel=cancel,
            )

        with ThreadPoolExecutor(max_workers=2) as pool:
            try:
                results = dict(zip(HOLDERS, pool.map(train, HOLDERS), strict=True))
            except BaseException:
                cancel.set()  # the other run stops too; the pool's exit then joins quickly
                raise
        done()

        done = _step(console, "publishing both models as subnets through the signer")
        signer_client = SignerClient(signer_url, "publisher", signer_state.secrets["publisher"])
        exit_stack.callback(signer_client.close)
        operator = Transactor(w3, RemoteSigner(signer_client))
        subnets: list[dict[str, Any]] = []
        for spec in SUBNETS:
            result = results[spec["dataset"]]
            bundle = load_bundle(result["bundle_path"], result["sha256"])
            published = publish_bundle(
                deployment=deployment,
                transactor=operator,
                bundle=bundle,
                artifact_uri=Path(result["bundle_path"]).resolve().as_uri(),
                subnet_name=str(spec["name"]),
                price_per_request_wei=int(spec["price_wei"]),
                min_stake_wei=int(spec["min_stake_wei"]),
            )
            # Proofs of inference: the version's verifier, deployed (by the deployer: it holds no
            # rights) and recorded by the owner through the signer. Development keys: local only.
            verifier, commitment = record_model_verifier(
                deployment=deployment,
                deployer=Transactor(w3, accounts[DEPLOYER].private_key),
                owner=operator,
                subnet_id=published.subnet_id,
                version=published.version,
                weights=[float(c) for c in bundle.coef],
                intercept=float(bundle.intercept),
            )
            training_proofs: list[dict[str, Any]] = []
            if spec["dataset"] in commitments:
                # Proof of training: each holder proves its local sums at the published model on the
                # rows it trained on; the chain refuses rows other than the committed ones.
                training_proofs = prove_after_publication(
                    w3,
                    deployment,
                    commitments[str(spec["dataset"])],
                    subnet_id=published.subnet_id,
                    version=published.version,
                    feature_names=list(bundle.feature_names),
                    label=str(bundle.card["label"]),
                    weights=[float(c) for c in bundle.coef],
                    intercept=float(bundle.intercept),
                )
            subnets.append(
                {
                    "id": published.subnet_id,
                    "name": spec["name"],
                    "dataset": spec["dataset"],
                    "model_hash": "0x" + bundle.sha256,
                    "feature_names": list(bundle.feature_names),
                    "price_wei": spec["price_wei"],
                    "min_stake_wei": spec["min_stake_wei"],
                    "contributors": published.contributors,
                    "shares_bps": published.shares_bps,
                    "model_version": published.version,
                    "verifier": verifier,
                    "model_commitment": "0x" + commitment.to_bytes(32, "big").hex(),
                    "training_proofs": training_proofs,
                    "training": {
                        "wall_s": result.get("wall_s"),
                        "round_trips": result.get("round_trips"),
                        "rounds": result["card"].get("rounds"),
                        "metrics": result["card"].get("metrics"),
                    },
                }
            )
        done()

        done = _step(
            console, "starting the gateway" + (f" ({replicas} replicas)" if replicas > 1 else "")
        )
        from core.net import free_port

        admin_key_file = state_dir / "admin.key"
        _write_private(admin_key_file, secrets.token_hex(16) + "\n")
        ports = [free_port() for _ in range(replicas)]
        gateway_urls = [f"http://127.0.0.1:{p}" for p in ports]
        gateway_url = gateway_urls[0]
        # One public URL for every replica (the SIWE domain): behind a load balancer it is
        # the balancer's; here the first replica's, and any replica accepts its sign-ins.
        env = {
            "TWOPM_GATEWAY_PUBLIC_URL": gateway_url,
            "TWOPM_GATEWAY_RPC_URL": chain.rpc_url,
            "TWOPM_GATEWAY_DEPLOYMENT_FILE": str(state_dir / "deployment.json"),
            "TWOPM_GATEWAY_SIGNER_URL": signer_url,
            "TWOPM_GATEWAY_SIGNER_CALLER_ID": "gateway",
            "TWOPM_GATEWAY_SIGNER_SECRET": signer_state.secrets["gateway"].hex(),
            "TWOPM_GATEWAY_QUEUE_PATH": str(state_dir / "gateway" / "receipts.sqlite3"),
            "TWOPM_GATEWAY_MODEL_STORE": str(model_store),
            "TWOPM_GATEWAY_COOKIE_SECURE": "false",
            "TWOPM_GATEWAY_BATCH_MAX_AGE_S": "1.0",
            "TWOPM_GATEWAY_SETTLE_INTERVAL_S": "3600",
            # the operator's dashboard (/app/operator/) opens with this key or the operator's
            # SIWE sign-in (the operator key itself stays in the signer)
            "TWOPM_GATEWAY_ADMIN_KEY_FILE": str(admin_key_file),
            # The page offers the funded wallet users as a development-only wallet (anvil signs
            # for them); a deployed gateway never has this setting and refuses it off loopback.
            "TWOPM_GATEWAY_DEV_ACCOUNTS": ",".join(accounts[i].address for i in WALLET_USERS),
        }
        namespace = None
        if redis_url:
            namespace = f"twopm-up-{secrets.token_hex(4)}"
            env["TWOPM_GATEWAY_REDIS_URL"] = redis_url
            env["TWOPM_GATEWAY_REDIS_NAMESPACE"] = namespace
        (state_dir / "gateway").mkdir(parents=True, exist_ok=True)
        for i, (port, url) in enumerate(zip(ports, gateway_urls, strict=True)):
            name = "gateway" if i == 0 else f"gateway-{i + 1}"
            group.twopm(
                name, "gateway", "serve", "--port", str(port), "--log-level", "warning", env=env
            )
            wait_for(name, functools.partial(http_ok, f"{url}/healthz"), group=group, timeout_s=90)
        done()

        info = {
            "gateway_url": gateway_url,
            "gateway_urls": gateway_urls,
            "redis_namespace": namespace,
            "rpc_url": chain.rpc_url,
            "chain_id": chain.chain_id,
            "contracts": deployment.addresses,
            "subnets": [
                {
                    k: s[k]
                    for k in (
                        "id",
                        "name",
                        "model_hash",
                        "feature_names",
                        "price_wei",
                        "min_stake_wei",
                    )
                }
                for s in subnets
            ],
            "signer_url": signer_url,
            "deployment_file": str(state_dir / "deployment.json"),
            "model_store": str(model_store),
            "publisher": {"caller": "publisher", "secret_file": str(publisher_secret)},
            "admin_key_file": str(admin_key_file),
            "operator": deployment.operator,
            "pids": {
                "anvil": chain.pid,
                **{child.name: child.process.pid for child in group.children},
            },
            "accounts": {
                "deployer": _account(accounts[DEPLOYER]),
                "fee_recipient": _account(accounts[FEE_RECIPIENT]),
                "data_holders": {
                    dataset: [_account(accounts[i]) for i in indices]
                    for dataset, indices in HOLDERS.items()
                },
                "wallet_users": [_account(accounts[i]) for i in WALLET_USERS],
            },
            "logs": str(logs),
        }
        (state_dir / "stack.json").write_text(json.dumps(info, indent=2) + "\n")
        return Stack(
            state_dir,
            chain,
            deployment,
            signer_url,
            gateway_url,
            subnets,
            info,
            group,
            exit_stack,
            gateway_urls,
        )
    except BaseException:
        exit_stack.close()
        raise


def _check_redis(url: str) -> None:
    """Fail early, in one line, when the gateway's Redis does not answer.

    Raises:
        ProcessError: No answer to ``PING`` within 2 s.
    """
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ProcessError(
            f"no Redis answers at {url} ({exc}); start one or pass --redis-url"
        ) from exc
    finally:
        client.close()


def _account(account: Any) -> dict[str, str]:
    return {"address": account.address, "private_key": account.private_key}


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file readable only by its owner (mode 0600)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _reset(state_dir: Path) -> None:
    """Remove an earlier run's state (only the parts this module writes)."""
    import shutil

    state_dir.mkdir(parents=True, exist_ok=True)
    for name in ("signer", "model-store", "training", "gateway", "logs"):
        shutil.rmtree(state_dir / name, ignore_errors=True)
    for name in ("stack.json", "deployment.json", "publisher.secret"):
        (state_dir / name).unlink(missing_ok=True)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM (and SIGHUP) into KeyboardInterrupt for the duration, so cleanup runs."""

    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``twopm up`` to the ``twopm`` parser."""
    up = subparsers.add_parser("up", help="start the whole local network until Ctrl-C")
    up.add_argument(
        "--state-dir", type=Path, default=Path(".state/up"), help="state, logs and stack.json"
    )
    up.add_argument("--redis-url", help="run the gateway on this Redis instead of in memory")
    up.add_argument(
        "--replicas",
        type=int,
        default=1,
        help=f"gateway processes on one Redis (default 1; more use --redis-url or {DEFAULT_REDIS_URL})",
    )
    up.add_argument(
        "--chunked-training-proofs",
        action="store_true",
        help="the breast-cancer holders also prove their training, in 2-row chunks (minutes)",
    )
    up.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``twopm up``."""
    console = Console()
    with stop_on_signals():
        if args.replicas < 1:
            raise CliError("--replicas must be at least 1")
        try:
            stack = start_stack(
                args.state_dir,
                console=console,
                redis_url=args.redis_url,
                replicas=args.replicas,
                chunked_training_proofs=args.chunked_training_proofs,
            )
        except ProcessError as exc:
            raise CliError(f"twopm up failed: {exc}") from exc
        with stack:
            console.print(
                f"[green]2PM is up[/]: gateway {', '.join(stack.gateway_urls)}, "
                f"chain {stack.chain.rpc_url}"
            )
            console.print(
                f"stack description: {args.state_dir / 'stack.json'}; press Ctrl-C to stop"
            )
            try:
                while True:
                    time.sleep(1)
                    if not stack.chain.running():
                        raise CliError("anvil stopped unexpectedly")
                    try:
                        stack.group.check_alive()
                    except ProcessError as exc:
                        raise CliError(str(exc).splitlines()[0]) from exc
            except KeyboardInterrupt:
                console.print("stopping every part of the network")
    return 0
