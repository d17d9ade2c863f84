"""`twopm node`, `twopm train`, `twopm data split` (and `twopm publish`, see publish.py).

Registered through the entry-point group `twopm.commands` (names `node`, `train`,
`data`, `publish`). Every user error raises `core.cli.CliError` with one line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from core.cli import CliError
from trainer.nodes import add_node_actions

__all__ = ["register", "register_data", "register_node", "register_publish", "register_train"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add every trainer command (`node`, `train`, `data`, `publish`).

    Args:
        subparsers: the `twopm` sub-command registry.
    """
    register_node(subparsers)
    register_train(subparsers)
    register_data(subparsers)
    register_publish(subparsers)


# --------------------------------------------------------------------------- node


def register_node(subparsers: argparse._SubParsersAction) -> None:
    """Add `twopm node`.

    Args:
        subparsers: the `twopm` sub-command registry.
    """
    p = subparsers.add_parser(
        "node",
        help="run a data holder's Flower SuperNode on its own CSV; register|update|leave NodeRegistry",
        description="`twopm node --data CSV --label COL --superlink HOST:PORT …` validates the CSV,"
        " then runs a Flower SuperNode that answers training rounds from it (the rows never leave"
        " this machine; only secure sums do). `twopm node register|update|leave` manage the"
        " holder's own entry in NodeRegistry from its wallet.",
    )
    p.add_argument("--data", help="the node's CSV file (header row); required to run a node")
    p.add_argument("--label", help="binary label column (0/1); required to run a node")
    p.add_argument("--features", help="comma-separated feature columns (default: all but label)")
    p.add_argument("--superlink", help="SuperLink address host:port; required to run a node")
    p.add_argument("--operator-address", default="", help="this data holder's 0x address")
    p.add_argument(
        "--runtime-port",
        type=int,
        default=9094,
        help="loopback port of this SuperNode's ClientApp runtime API (default 9094); "
        "each SuperNode on one host needs its own",
    )
    p.add_argument("--insecure", action="store_true", help="plain HTTP to the SuperLink")
    p.add_argument("--root-certificates", help="CA bundle for TLS to the SuperLink")
    p.add_argument(
        "--auth-key",
        help="this node's private key (from `twopm node key`) for a SuperLink that admits"
        " only registered holders' nodes; needs --root-certificates",
    )
    p.add_argument(
        "--stock-polling",
        action="store_true",
        help="run Flower's flower-supernode unmodified (3 s polls, one process per message)",
    )
    p.add_argument("--check-only", action="store_true", help="validate the CSV and exit")
    p.set_defaults(handler=_node)
    add_node_actions(p)


def _features(raw: str | None) -> tuple[str, ...] | None:
    if raw is None:
        return None
    names = tuple(f.strip() for f in raw.split(",") if f.strip())
    if not names:
        raise CliError("--features is empty")
    return names


def _node(args: argparse.Namespace) -> int:
    from trainer.data import DataError, read_node_csv
    from trainer.deployment import flwr_bin

    missing = [
        flag
        for flag, value in (("--data", args.data), ("--label", args.label))
        + (() if args.check_only else (("--superlink", args.superlink),))
        if not value
    ]
    if missing:
        raise CliError(
            f"running a node needs {', '.join(missing)}"
            " (or an action: `twopm node register|update|leave`)"
        )
    if args.auth_key and args.insecure:
        raise CliError("--auth-key needs TLS: give --root-certificates instead of --insecure")
    if args.auth_key and not Path(args.auth_key).is_file():
        raise CliError(f"--auth-key: no such file {args.auth_key}")
    try:
        data = read_node_csv(args.data, label=args.label, features=_features(args.features))
    except DataError as exc:
        raise CliError(str(exc)) from None
    print(
        f"{args.data}: {data.n_rows} rows, features {', '.join(data.feature_names)}, "
        f"label {data.label}",
        file=sys.stderr,
    )
    if args.check_only:
        return 0
    addr = args.operator_address
    if addr and not (addr.startswith("0x") and len(addr) == 42):
        raise CliError(f"--operator-address must be a 0x-prefixed 20-byte address, got {addr!r}")
    if not args.insecure and not args.root_certificates:
        raise CliError("give --root-certificates for TLS, or --insecure for plain HTTP")
    if args.root_certificates and not Path(args.root_certificates).is_file():
        raise CliError(f"--root-certificates: no such file {args.root_certificates}")
    _check_runtime_port(args.runtime_port)
    launcher = (
        [flwr_bin("flower-supernode")]
        if args.stock_polling
        else [sys.executable, "-m", "trainer.supernode", "node"]
    )
    node_config = f'data-path="{Path(args.data).resolve()}" operator-address="{addr}"'
    cmd = [*launcher, "--superlink", args.superlink, "--port", str(args.runtime_port)]
    cmd += ["--insecure"] if args.insecure else ["--root-certificates", args.root_certificates]
    if args.auth_key:
        cmd += ["--auth-supernode-private-key", args.auth_key]
    cmd += ["--node-config", node_config]
    return _run_foreground(cmd)


def _path_or_none(value: str | None) -> Path | None:
    return Path(value) if value else None


def _check_runtime_port(port: int) -> None:
    """Refuse a runtime port that is out of range or already bound on this host's loopback."""
    import socket

    if not 1 <= port <= 65535:
        raise CliError(f"--runtime-port {port} is not a TCP port: give 1 to 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise CliError(
                f"--runtime-port {port} is in use on this host (another `twopm node`?):"
                f" give each node on one host its own port, e.g. --runtime-port {port + 1}"
            ) from None


def _run_foreground(cmd: list[str]) -> int:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("FLWR_SUPEREXEC_TASK_POLL_INTERVAL", "0.05")
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# --------------------------------------------------------------------------- train


def register_train(subparsers: argparse._SubParsersAction) -> None:
    """Add `twopm train`.

    Args:
        subparsers: the `twopm` sub-command registry.
    """
    p = subparsers.add_parser(
        "train",
        help="run a federated training job against a SuperLink",
        description="Submit the federated Newton job (SecAgg+ by default) and follow it "
        "round by round; write the model bundle into the model store. Run it on the "
        "SuperLink's host (or with --output-dir/--model-store on a shared filesystem).",
    )
    p.add_argument("--superlink", help="SuperLink address host:port; required to run a node")
    p.add_argument("--dataset", choices=["spector", "breast-cancer"],
                   help="take --features/--label from a bundled data set")  # fmt: skip
    p.add_argument("--features", help="comma-separated feature columns, model order")
    p.add_argument("--label", help="binary label column")
    p.add_argument("--nodes", type=int, default=3, help="nodes that start the job (default 3)")
    p.add_argument(
        "--min-nodes",
        type=int,
        default=None,
        help="fewest nodes a round may be summed over after dropouts (default: the SecAgg+ "
        "threshold, nodes - 1 for 3 or more nodes)",
    )
    p.add_argument("--root-certificates", help="the SuperLink's CA (TLS); default plain HTTP")
    p.add_argument("--l2-c", type=float, default=0.0, help="inverse L2 strength C; 0 = none")
    p.add_argument("--gtol", type=float, default=1e-8, help="gradient tolerance per row")
    p.add_argument("--max-iter", type=int, default=25, help="maximum Newton rounds")
    p.add_argument("--holdout-fraction", type=float, default=0.2, help="evaluation share")
    p.add_argument("--no-secure", action="store_true", help="plain sums (no SecAgg+)")
    p.add_argument("--round-timeout-s", type=float, default=120.0, help="per round trip")
    p.add_argument("--timeout-s", type=float, default=1800.0, help="whole job")
    p.add_argument("--model-store", default="model-store", help="bundle directory")
    p.add_argument("--output-dir", help="progress/result directory (default: temp)")
    p.add_argument("--job-name", default="", help="free text for the model card")
    p.add_argument("--json", dest="json_path", help="also write the result JSON here")
    p.set_defaults(handler=_train)


def _train_config(args: argparse.Namespace) -> dict[str, Any]:
    features, label = args.features, args.label
    if args.dataset:
        from trainer.data import load_dataset

        ds = load_dataset(args.dataset)
        features = features or ",".join(ds.feature_names)
        label = label or ds.label
    if not features or not label:
        raise CliError("give --features and --label (or --dataset)")
    if args.nodes < 2 and not args.no_secure:
        raise CliError("secure aggregation needs at least 2 nodes (or --no-secure)")
    if args.nodes < 1:
        raise CliError("--nodes must be >= 1")
    if args.min_nodes is not None and not 1 <= args.min_nodes <= args.nodes:
        raise CliError(f"--min-nodes must be between 1 and --nodes ({args.nodes})")
    if (
        args.min_nodes is not None
        and not args.no_secure
        and args.nodes > 2
        and args.min_nodes <= args.nodes // 2
    ):
        raise CliError(
            f"--min-nodes must be a majority of {args.nodes} nodes under SecAgg+"
            f" (at least {args.nodes // 2 + 1})"
        )
    if args.root_certificates and not Path(args.root_certificates).is_file():
        raise CliError(f"--root-certificates: no such file {args.root_certificates}")
    if args.l2_c < 0:
        raise CliError("--l2-c must be >= 0")
    if not 0 < args.holdout_fraction <= 0.5:
        raise CliError("--holdout-fraction must be in (0, 0.5]")
    if args.max_iter < 1 or args.gtol <= 0 or args.round_timeout_s <= 0:
        raise CliError("--max-iter, --gtol and --round-timeout-s must be positive")
    out = args.output_dir or tempfile.mkdtemp(prefix="twopm-train-")
    return {
        "features": features,
        "label": label,
        "l2-c": float(args.l2_c),
        "gtol": float(args.gtol),
        "max-iter": int(args.max_iter),
        "holdout-fraction": float(args.holdout_fraction),
        "holdout-seed": 0,
        "n-nodes": int(args.nodes),
        "min-nodes": args.min_nodes or 0,  # 0: the default (flower_config)
        "secure": not args.no_secure,
        "round-timeout-s": float(args.round_timeout_s),
        "output-dir": str(Path(out).resolve()),
        "model-store": str(Path(args.model_store).resolve()) if args.model_store else "",
        "job-name": args.job_name,
    }


def _train(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from trainer.deployment import DeploymentError, submit_run, wait_for_result

    cfg = _train_config(args)
    console = Console(stderr=True)
    try:
        with tempfile.TemporaryDirectory(prefix="twopm-flwr-") as tmp:
            handle = submit_run(args.superlink, cfg, flwr_home=Path(tmp) / "home",
                                app_dir=Path(tmp) / "app",
                                root_certificates=_path_or_none(args.root_certificates))  # fmt: skip
    except DeploymentError as exc:
        raise CliError(str(exc)) from None
    console.print(f"run {handle.run_id} submitted to {args.superlink}")
    with Progress(
        TextColumn("[bold]round {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("train", total=cfg["max-iter"], info="waiting for nodes")

        def on_progress(rec: dict[str, Any]) -> None:
            if rec.get("event") != "round":
                return
            info = f"|grad| {rec['grad_max_abs']:.2e}  loglik {rec['loglik']:.6f}  "
            info += f"round trips {rec['round_trips']}"
            total = rec["round"] if rec.get("done") else cfg["max-iter"]
            progress.update(task, completed=rec["round"], total=total, info=info)

        try:
            result = wait_for_result(handle, timeout_s=args.timeout_s, on_progress=on_progress)
        except DeploymentError as exc:
            raise CliError(str(exc)) from None
    _print_result(console, result)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if result["card"]["training"]["converged"] else 3


def _print_result(console: Any, result: dict[str, Any]) -> None:
    from rich.table import Table

    card = result["card"]
    t = Table(title=f"{card['model']} ({card['training']['rounds']} rounds, "
                    f"converged: {card['training']['converged']})")  # fmt: skip
    t.add_column("coefficient")
    t.add_column("value (raw units)", justify="right")
    t.add_row("intercept", f"{card['intercept']:.10g}")
    for name, value in card["coefficients"].items():
        t.add_row(name, f"{value:.10g}")
    console.print(t)
    n = Table(title="nodes (held-out metrics of the evaluation fit)")
    for col in ("node", "operator", "rows", "held out", "log-loss", "accuracy", "ROC AUC"):
        n.add_column(col)

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.4f}"

    for node in card["nodes"]:
        m = node["metrics"]
        n.add_row(str(node["node_id"]), node["operator_address"] or "-", str(node["n_rows"]),
                  str(node["n_holdout"]), fmt(m["log_loss"]), fmt(m["accuracy"]),
                  fmt(m["roc_auc"]))  # fmt: skip
    console.print(n)
    console.print(f"wall {result['wall_s']:.1f} s, {result['round_trips']} message round trips")
    if "sha256" in result:
        console.print(f"bundle {result['bundle_path']}\nsha256 {result['sha256']}")
    print(json.dumps({"sha256": result.get("sha256"), "bundle_path": result.get("bundle_path")}))


# --------------------------------------------------------------------------- data


def register_data(subparsers: argparse._SubParsersAction) -> None:
    """Add `twopm data split`.

    Args:
        subparsers: the `twopm` sub-command registry.
    """
    p = subparsers.add_parser("data", help="prepare per-node CSV files")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    s = sub.add_parser(
        "split",
        help="split a data set into per-node CSVs",
        description="Write OUT_DIR/node-<i>.csv for each node, IID or label-skewed.",
    )
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=["spector", "breast-cancer"], help="bundled data")
    src.add_argument("--csv", help="a CSV file to split (with --label)")
    s.add_argument("--label", help="label column of --csv")
    s.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    s.add_argument("--mode", choices=["iid", "label-skew"], default="iid")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out-dir", required=True, help="directory for node-<i>.csv")
    s.set_defaults(handler=_data_split)


def _data_split(args: argparse.Namespace) -> int:
    from trainer.data import DataError, load_dataset, read_node_csv, split_rows, write_csv

    try:
        if args.dataset:
            data = load_dataset(args.dataset)
        else:
            if not args.label:
                raise CliError("--csv needs --label")
            data = read_node_csv(args.csv, label=args.label)
        parts = split_rows(data, args.nodes, mode=args.mode, seed=args.seed)
    except DataError as exc:
        raise CliError(str(exc)) from None
    out = Path(args.out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for i, rows in enumerate(parts):
            path = out / f"node-{i}.csv"
            write_csv(data.take(rows), path)
            pos = int(data.y[rows].sum())
            print(f"{path}\t{len(rows)} rows\t{pos} positive")
    except OSError as exc:
        raise CliError(f"{out}: cannot write ({exc.strerror})") from None
    return 0


# --------------------------------------------------------------------------- publish


def register_publish(subparsers: argparse._SubParsersAction) -> None:
    """Add `twopm publish` (implemented in :mod:`trainer.publish`).

    Args:
        subparsers: the `twopm` sub-command registry.
    """
    from trainer.publish import add_publish_parser

    add_publish_parser(subparsers)
