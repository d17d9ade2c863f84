"""Flower deployment runtime plumbing: the app directory, SuperLink/SuperNode processes, runs.

`twopm node` starts one SuperNode; `twopm train` submits a run with `flwr run` and
follows `progress.jsonl`; :class:`LocalFederation` starts a SuperLink and one SuperNode
per CSV on loopback (tests, benchmarks, `twopm up`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.net import free_port
from core.proc import ProcessError, spawn, terminate

__all__ = [
    "APP_ID",
    "DeploymentError",
    "LocalFederation",
    "NodeAuth",
    "RunHandle",
    "flwr_bin",
    "start_supernode",
    "submit_run",
    "train_locally",
    "wait_for_result",
    "write_app_dir",
]

APP_ID = "twopm/newton-logreg"
_VERSION = "1.0.0"


class DeploymentError(RuntimeError):
    """A Flower process or run failed; the message says which and why."""


def flwr_bin(name: str) -> str:
    """Path of a Flower executable installed next to this Python.

    Args:
        name: e.g. "flower-superlink", "flower-supernode", "flwr".

    Returns:
        The executable's path (falls back to the bare name on PATH).
    """
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(str(v))


def write_app_dir(directory: str | Path, run_config: Mapping[str, Any]) -> Path:
    """Write the Flower app directory (a `pyproject.toml` only; the code is installed).

    Args:
        directory: where to write (created).
        run_config: defaults for `[tool.flwr.app.config]` (see :mod:`trainer.flower_config`).

    Returns:
        The directory.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cfg_lines = "\n".join(f'"{k}" = {_toml_value(v)}' for k, v in run_config.items())
    text = f"""[project]
name = "newton-logreg"
version = "{_VERSION}"
description = "2PM federated logistic regression (Newton-Raphson, SecAgg+)"
license = "MIT"
dependencies = []

[tool.flwr.app]
publisher = "twopm"

[tool.flwr.app.components]
serverapp = "trainer.server_app:app"
clientapp = "trainer.client_app:app"

[tool.flwr.app.config]
{cfg_lines}
"""
    (d / "pyproject.toml").write_text(text, encoding="utf-8")
    return d


def _write_flower_home(home: Path, superlink: str, root_certificates: Path | None = None) -> None:
    home.mkdir(parents=True, exist_ok=True)
    tls = (
        f"root-certificates = {json.dumps(str(Path(root_certificates).resolve()))}\n"
        if root_certificates is not None
        else "insecure = true\n"
    )
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "twopm"\n\n[superlink.twopm]\naddress = "{superlink}"\n{tls}',
        encoding="utf-8",
    )


def _env(flwr_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["FLWR_HOME"] = str(flwr_home)
    env.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    env["PYTHONUNBUFFERED"] = "1"
    # Flower spawns its helpers (flower-superexec, flwr-serverapp, flwr-clientapp) by name
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    # the SuperExec looks for new tasks this often (Flower's default is 1 s; this one is local)
    env.setdefault("FLWR_SUPEREXEC_TASK_POLL_INTERVAL", "0.05")
    return env


def _spawn(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    try:
        return spawn(cmd, log_path=log_path, env=env)
    except ProcessError as exc:
        raise DeploymentError(str(exc)) from exc


def _stop(proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    terminate(proc, timeout_s)


def _wait_port(port: int, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise DeploymentError(f"process exited with {proc.returncode}:\n{tail}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise DeploymentError(f"nothing listens on port {port} after {timeout_s:.0f} s")


def start_supernode(
    *,
    superlink: str,
    data_path: str | Path,
    operator_address: str,
    runtime_port: int,
    flwr_home: Path,
    log_path: Path,
    fast: bool = True,
    extra_env: Mapping[str, str] | None = None,
    root_certificates: Path | None = None,
    auth_key: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a SuperNode process for one CSV.

    Args:
        superlink: SuperLink address `host:port`.
        data_path: the node's CSV (absolute path recommended).
        operator_address: the data holder's Ethereum address ("" if none).
        runtime_port: loopback port of the node's runtime API (one per node).
        flwr_home: FLWR_HOME for the node (where FABs are installed).
        log_path: file collecting the process's output.
        fast: use :mod:`trainer.supernode` (short idle polls, forked ClientApps);
            False runs Flower's stock `flower-supernode`.
        extra_env: environment variables added for this node's processes.
        root_certificates: the SuperLink's CA (TLS); None connects without TLS.
        auth_key: the node's OpenSSH private key for SuperNode authentication (needs TLS).

    Returns:
        The process (in its own process group).
    """
    node_config = f'data-path="{Path(data_path).resolve()}" operator-address="{operator_address}"'
    launcher = (
        [sys.executable, "-m", "trainer.supernode", "node"]
        if fast
        else [flwr_bin("flower-supernode")]
    )
    tls = ["--insecure"] if root_certificates is None else [
        "--root-certificates", str(root_certificates)
    ]  # fmt: skip
    if auth_key is not None:
        tls += ["--auth-supernode-private-key", str(auth_key)]
    cmd = [
        *launcher,
        *tls,
        "--superlink",
        superlink,
        "--port",
        str(runtime_port),
        "--node-config",
        node_config,
    ]
    return _spawn(cmd, {**_env(flwr_home), **(extra_env or {})}, log_path)


@dataclass(frozen=True)
class NodeAuth:
    """SuperNode authentication bound to ``NodeRegistry`` (see :mod:`trainer.nodeauth`).

    Attributes:
        holder_keys: one Ethereum private key (0x hex) per node; each holder signs its node key.
        registry: the web3 ``NodeRegistry`` contract; every holder must be registered.
        chain_id: the chain id the signatures name.
    """

    holder_keys: list[str]
    registry: Any
    chain_id: int


@dataclass
class LocalFederation:
    """A SuperLink and one SuperNode per CSV, on loopback, in a temporary directory.

    Use as a context manager; every process is stopped on exit.

    Args:
        data_paths: one CSV per node.
        operator_addresses: one address per node (default "").
        workdir: directory for logs, FLWR_HOME and runs (default: a new temp dir,
            removed on exit).
        node_env: extra environment variables per node index (tests inject faults so).
        auth: when given, the SuperLink runs with TLS (a local CA) and
            ``--enable-supernode-auth``, and each node's key is admitted only after its holder's
            signature and registration are checked; `operator_addresses` then default to the
            holders' addresses. None runs without TLS and lets any SuperNode in.
    """

    data_paths: list[Path]
    operator_addresses: list[str] | None = None
    workdir: Path | None = None
    node_env: Mapping[int, Mapping[str, str]] | None = None
    auth: NodeAuth | None = None
    superlink_address: str = field(init=False, default="")
    admissions: list[Any] = field(init=False, default_factory=list)
    ca_cert: Path | None = field(init=False, default=None)
    _procs: list[subprocess.Popen[bytes]] = field(init=False, default_factory=list)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(init=False, default=None)

    def __enter__(self) -> LocalFederation:
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="twopm-fl-")
            self.workdir = Path(self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @property
    def flwr_home(self) -> Path:
        """FLWR_HOME used by the SuperLink and `flwr run`."""
        assert self.workdir is not None
        return self.workdir / "flwr-home"

    def _start(self) -> None:
        assert self.workdir is not None
        port = free_port()
        self.superlink_address = f"127.0.0.1:{port}"
        security = ["--insecure"]
        if self.auth is not None:
            from trainer.nodeauth import make_tls_files

            tls = make_tls_files(self.workdir / "tls")
            self.ca_cert = tls.ca_cert
            security = [*tls.superlink_args(), "--enable-supernode-auth"]
        _write_flower_home(self.flwr_home, self.superlink_address, self.ca_cert)
        log = self.workdir / "superlink.log"
        link = _spawn(
            [flwr_bin("flower-superlink"), *security, "--host", "127.0.0.1", "--port", str(port)],
            _env(self.flwr_home),
            log,
        )
        self._procs.append(link)
        _wait_port(port, link, log, 30.0)
        keys = self._admit_nodes() if self.auth is not None else [None] * len(self.data_paths)
        addrs = self.operator_addresses or (
            [a.address for a in self.admissions] if self.admissions else [""] * len(self.data_paths)
        )
        for i, (path, addr) in enumerate(zip(self.data_paths, addrs, strict=True)):
            home = self.workdir / f"node-{i}"
            self._procs.append(
                start_supernode(
                    superlink=self.superlink_address,
                    data_path=path,
                    operator_address=addr,
                    runtime_port=free_port(),
                    flwr_home=home,
                    log_path=self.workdir / f"node-{i}.log",
                    extra_env=(self.node_env or {}).get(i),
                    root_certificates=self.ca_cert,
                    auth_key=keys[i],
                )
            )

    def _admit_nodes(self) -> list[Path | None]:
        """Make each node's key, have its holder sign it, admit it (registry checked)."""
        from trainer.nodeauth import admit_node, make_node_key, sign_node_key

        assert self.auth is not None and self.workdir is not None
        if len(self.auth.holder_keys) != len(self.data_paths):
            raise DeploymentError("NodeAuth needs one holder key per node")
        auth = self.auth
        made = []
        for i, holder in enumerate(auth.holder_keys):
            key = make_node_key(self.workdir / "node-keys" / f"node-{i}")
            made.append(
                (
                    key,
                    sign_node_key(
                        key.public_line, holder, auth.chain_id, str(auth.registry.address)
                    ),
                )
            )

        def admit(item: tuple[Any, str]) -> Any:
            key, signature = item
            return admit_node(
                public_key_file=key.public_key,
                signature=signature,
                registry=auth.registry,
                chain_id=auth.chain_id,
                flwr_home=self.flwr_home,
            )

        # one `flwr supernode register` process per node, side by side (about 1 s each)
        with ThreadPoolExecutor(max_workers=len(made)) as pool:
            self.admissions.extend(pool.map(admit, made))
        keys: list[Path | None] = [key.private_key for key, _ in made]
        return keys

    def stop_node(self, index: int) -> None:
        """Stop one SuperNode (to test dropouts).

        Args:
            index: node index (0-based, order of `data_paths`).
        """
        _stop(self._procs[1 + index])

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self._procs):
            _stop(proc)
        self._procs.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def run(
        self,
        run_config: Mapping[str, Any],
        *,
        timeout_s: float = 300.0,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Submit a training run and wait for its result.

        Args:
            run_config: run config (see :mod:`trainer.flower_config`); `output-dir` is
                set to a fresh directory under the work dir unless given.
            timeout_s: overall deadline.
            on_progress: called with each progress record.
            cancel: set by another thread to give up waiting (Ctrl-C of `twopm up`).

        Returns:
            The parsed `result.json` (keys `card`, `wall_s`, `round_trips`, maybe
            `bundle_path`, `sha256`).

        Raises:
            DeploymentError: if the run fails, times out or is cancelled.
        """
        assert self.workdir is not None
        cfg = dict(run_config)
        if not cfg.get("output-dir"):
            cfg["output-dir"] = str(Path(tempfile.mkdtemp(prefix="run-", dir=self.workdir)))
        handle = submit_run(self.superlink_address, cfg, flwr_home=self.flwr_home,
                            app_dir=self.workdir / "app", root_certificates=self.ca_cert)  # fmt: skip
        return wait_for_result(handle, timeout_s=timeout_s, on_progress=on_progress, cancel=cancel)


@dataclass(frozen=True)
class RunHandle:
    """A submitted run.

    Attributes:
        run_id: Flower run id.
        output_dir: where the ServerApp writes progress and result.
        flwr_home: FLWR_HOME used to talk to the SuperLink.
    """

    run_id: int
    output_dir: Path
    flwr_home: Path


def submit_run(
    superlink: str,
    run_config: Mapping[str, Any],
    *,
    flwr_home: Path | None = None,
    app_dir: Path | None = None,
    root_certificates: Path | None = None,
) -> RunHandle:
    """Submit the training app to a SuperLink with `flwr run`.

    Args:
        superlink: SuperLink address `host:port`.
        run_config: full run config; must include `output-dir`.
        flwr_home: FLWR_HOME for the `flwr` client (default: a temp dir).
        app_dir: where to write the app directory (default: a temp dir).
        root_certificates: the SuperLink's CA for TLS (None: plain HTTP).

    Returns:
        The run handle.

    Raises:
        DeploymentError: if `flwr run` fails.
    """
    home = flwr_home or Path(tempfile.mkdtemp(prefix="twopm-flwr-home-"))
    _write_flower_home(home, superlink, root_certificates)
    app = write_app_dir(app_dir or Path(tempfile.mkdtemp(prefix="twopm-app-")), run_config)
    out = Path(str(run_config["output-dir"]))
    out.mkdir(parents=True, exist_ok=True)
    for name in ("progress.jsonl", "result.json"):
        (out / name).unlink(missing_ok=True)
    proc = subprocess.run(
        [flwr_bin("flwr"), "run", str(app), "twopm", "--format", "json"],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        payload = json.loads(proc.stdout[proc.stdout.index("{") :])
        run_id = int(payload["run-id"])
    except (ValueError, KeyError, TypeError):
        detail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise DeploymentError(
            f"flwr run failed against {superlink}: " + " | ".join(detail)
        ) from None
    return RunHandle(run_id, out, home)


def _read_progress(path: Path, seen: int) -> tuple[list[dict[str, Any]], int]:
    if not path.exists():
        return [], seen
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    complete = lines if text.endswith("\n") else lines[:-1]  # skip a half-written line
    return [json.loads(line) for line in complete[seen:]], len(complete)


def wait_for_result(
    handle: RunHandle,
    *,
    timeout_s: float,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Follow a run's progress file until `result.json` appears.

    Args:
        handle: the run.
        timeout_s: deadline in seconds.
        on_progress: called with each new progress record.
        cancel: when set (by another thread), stop waiting within one poll (0.1 s).

    Returns:
        The parsed `result.json`.

    Raises:
        DeploymentError: if the run reports a failure, the deadline passes or ``cancel`` is set.
    """
    deadline = time.monotonic() + timeout_s
    progress = handle.output_dir / "progress.jsonl"
    result = handle.output_dir / "result.json"
    seen = 0
    while True:
        records, seen = _read_progress(progress, seen)
        for rec in records:
            if rec.get("event") == "failed":
                raise DeploymentError(f"run {handle.run_id} failed: {rec.get('error')}")
            if on_progress is not None:
                on_progress(rec)
        if result.exists():
            data: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
            return data
        if time.monotonic() > deadline:
            raise DeploymentError(f"run {handle.run_id}: no result after {timeout_s:.0f} s")
        if cancel is not None and cancel.wait(0.1):
            raise DeploymentError(f"run {handle.run_id}: cancelled")
        if cancel is None:
            time.sleep(0.1)


def train_locally(
    dataset: str,
    *,
    model_store: str | Path,
    operator_addresses: list[str] | None = None,
    n_nodes: int = 3,
    mode: str = "iid",
    l2_c: float | None = None,
    secure: bool = True,
    workdir: Path | None = None,
    timeout_s: float = 900.0,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    auth: NodeAuth | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Train on a bundled data set over local SuperNodes (what `twopm up` runs).

    Splits the data set into `n_nodes` CSVs, starts a SuperLink and one SuperNode per CSV
    on loopback, runs the job, stops every process, and returns the result.

    Args:
        dataset: "spector" or "breast-cancer".
        model_store: directory for the bundle.
        operator_addresses: one 0x address per node (contributors when publishing).
        n_nodes: number of nodes.
        mode: "iid" or "label-skew".
        l2_c: inverse L2 strength; default None for Spector and 1.0 for breast cancer.
        secure: SecAgg+ (True) or plain sums.
        workdir: where node CSVs, logs and FLWR_HOME go (default: a temp dir, removed).
        timeout_s: deadline for the run.
        on_progress: called with each round's progress record.
        auth: SuperNode authentication bound to NodeRegistry (see :class:`NodeAuth`).
        cancel: set by another thread to stop the run and its processes within a second or so.

    Returns:
        The parsed `result.json`: `card`, `wall_s`, `round_trips`, `bundle_path`, `sha256`.

    Raises:
        DeploymentError: if a process or the run fails, or ``cancel`` is set.
    """
    from trainer.data import load_dataset, split_rows, write_csv

    data = load_dataset(dataset)
    if l2_c is None and dataset == "breast-cancer":
        l2_c = 1.0
    with tempfile.TemporaryDirectory(prefix="twopm-train-") as tmp:
        base = workdir or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, rows in enumerate(split_rows(data, n_nodes, mode=mode)):
            path = base / f"node-{i}.csv"
            write_csv(data.take(rows), path)
            paths.append(path)
        cfg = {
            "features": ",".join(data.feature_names),
            "label": data.label,
            "l2-c": float(l2_c or 0.0),
            "n-nodes": n_nodes,
            "secure": secure,
            "model-store": str(Path(model_store).resolve()),
            "job-name": dataset,
        }
        with LocalFederation(
            paths, operator_addresses, workdir=base / "federation", auth=auth
        ) as fed:
            return fed.run(cfg, timeout_s=timeout_s, on_progress=on_progress, cancel=cancel)
