"""Start a Flower SuperNode tuned for many short message round trips.

Measured here (Flower 1.41, 2 shared cores): each ClientApp message costs a fresh
`flwr-clientapp` process (about 4 s of imports under load) and the SuperNode sleeps
3 s whenever it finds no message. A SecAgg+ Newton round has 4 round trips, so a
deployed Spector run took minutes. This launcher keeps Flower's own code paths but

* caps the SuperNode's idle sleep (`time.sleep` as seen by
  `flwr.supernode.start_client_internal`) at `TWOPM_NODE_POLL_S` (default 0.1 s), and
* shortens Flower's object-pull retry back-off (see :mod:`trainer._flwr_tuning`),
* runs the SuperNode with `--isolation process` next to a SuperExec whose executor
  *forks* an already-imported process for each ClientApp task instead of spawning
  `flwr-clientapp` (the forked child runs Flower's own `run_clientapp`).

Both are patches of Flower internals, pinned to flwr 1.41 (see pyproject); if the
names move, the launcher fails at start-up with a clear error rather than silently
using the slow path. `python -m trainer.supernode node <flower-supernode args>` runs a
node; `python -m trainer.supernode exec <flower-superexec args>` runs the executor.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import ModuleType
from typing import Any

__all__ = ["main"]

_DEFAULT_POLL_S = 0.1


class _CappedTime:
    """Stands in for the `time` module inside one Flower module; caps `sleep`."""

    def __init__(self, real: ModuleType, cap_s: float) -> None:
        self._real = real
        self._cap_s = cap_s

    def sleep(self, seconds: float) -> None:
        self._real.sleep(min(seconds, self._cap_s))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _poll_s() -> float:
    raw = os.environ.get("TWOPM_NODE_POLL_S", str(_DEFAULT_POLL_S))
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"TWOPM_NODE_POLL_S must be a number of seconds, got {raw!r}") from None
    if not 0.01 <= value <= 3.0:
        raise SystemExit("TWOPM_NODE_POLL_S must be between 0.01 and 3 seconds")
    return value


def _run_node(argv: list[str]) -> None:
    import flwr.supernode.start_client_internal as sci

    from trainer._flwr_tuning import speed_up_object_pulls

    speed_up_object_pulls()
    from flwr.supernode.cli.flower_supernode import flower_supernode

    if not hasattr(sci, "time"):
        raise SystemExit("flwr.supernode.start_client_internal has no `time`; Flower changed")
    sci.time = _CappedTime(time, _poll_s())  # type: ignore[assignment]

    runtime = _arg_value(argv, "--port") or "9094"
    host = _arg_value(argv, "--host") or "127.0.0.1"
    executor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trainer.supernode",
            "exec",
            "--runtime-api-address",
            f"{host}:{runtime}",
            "--insecure",
            "--parent-pid",
            str(os.getpid()),
        ]
    )
    sys.argv = ["flower-supernode", *argv, "--isolation", "process"]
    try:
        flower_supernode()
    finally:
        executor.terminate()


def _arg_value(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _run_exec(argv: list[str]) -> None:
    import flwr.supercore.superexec.run_superexec as rs
    from flwr.supercore.cli.flower_superexec import flower_superexec
    from flwr.supercore.constant import TaskType
    from flwr.supercore.superexec.executor import LaunchResult
    from flwr.supercore.superexec.executor.subprocess_executor import SubprocessExecutor
    from flwr.supernode.runtime.run_clientapp import run_clientapp

    import trainer.client_app  # noqa: F401  (warm the import for forked children)
    from trainer._flwr_tuning import speed_up_object_pulls

    speed_up_object_pulls()

    class ForkExecutor(SubprocessExecutor):
        """Forks this warm process for ClientApp tasks; others as Flower does."""

        def __init__(self) -> None:
            self.children: set[int] = set()

        def launch(self, spec: Any) -> Any:
            if spec.task_type != TaskType.CLIENT_APP:
                return super().launch(spec)
            pid = os.fork()
            if pid == 0:  # child: run Flower's ClientApp process body, never return
                code = 1
                try:
                    run_clientapp(
                        runtime_api_address=spec.runtime_api_address,
                        token=spec.token,
                        insecure=spec.insecure,
                        parent_pid=spec.parent_pid,
                        runtime_dependency_install=spec.runtime_dependency_install,
                    )
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
                finally:
                    os._exit(code)
            self.children.add(pid)
            return LaunchResult.accepted()

        def reconcile(self) -> None:
            for pid in list(self.children):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    self.children.discard(pid)

    if not hasattr(rs, "get_executor"):
        raise SystemExit("flwr.supercore.superexec.run_superexec changed; cannot fork tasks")
    rs.get_executor = lambda *a, **k: ForkExecutor()
    sys.argv = ["flower-superexec", *argv]
    flower_superexec()


def main(argv: list[str] | None = None) -> None:
    """Entry point: `node ...` or `exec ...`.

    Args:
        argv: arguments (default `sys.argv[1:]`).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in {"node", "exec"}:
        raise SystemExit("usage: python -m trainer.supernode {node|exec} <flower args>")
    if args[0] == "node":
        _run_node(args[1:])
    else:
        _run_exec(args[1:])


if __name__ == "__main__":
    main()
