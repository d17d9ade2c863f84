"""Child processes: start in their own session, wait until ready, stop the whole process group.

One implementation for the local network (``stack``), anvil (``contracts.chain``), Flower's
SuperLink and SuperNodes (``trainer.deployment``) and the test suites. A child in its own session
(``setsid``, ``start_new_session=True`` in :class:`subprocess.Popen`) gets its own process group, so
stopping it also stops the helpers it spawned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

__all__ = [
    "Child",
    "ProcessError",
    "ProcessGroup",
    "spawn",
    "terminate",
    "wait_for",
]

_T = TypeVar("_T")


class ProcessError(RuntimeError):
    """A child process could not be started, exited unexpectedly, or was not ready in time."""


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    name: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, stdout and stderr appended to ``log_path``.

    Args:
        argv: The program and its arguments.
        log_path: File receiving the child's output (created with its parent directory);
            discarded when ``None``.
        env: The child's whole environment (this process's when ``None``).
        cwd: The child's working directory (this process's when ``None``).
        name: Name for the error message (the program's when ``None``).

    Returns:
        The process; it leads its own process group (so :func:`terminate` reaches its children).

    Raises:
        ProcessError: The program cannot be run (missing, not executable).
    """
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        out: Any = (
            subprocess.DEVNULL if log_path is None else stack.enter_context(log_path.open("ab"))
        )
        try:
            return subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise ProcessError(f"cannot start {name or argv[0]}: {exc.strerror}") from exc


def terminate(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Stop ``process`` and its process group: SIGTERM, then SIGKILL after ``timeout_s``.

    Safe to call on a process that has exited, and twice. ``process`` must have been started in
    its own session (:func:`spawn`), or the signal reaches this process's group too.

    Args:
        process: The child.
        timeout_s: Seconds to wait after SIGTERM before SIGKILL.
    """
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class Child:
    """A started child process.

    Attributes:
        name: Short name used in messages (``signer``, ``gateway`` ...).
        process: The process.
        log_path: File receiving its stdout and stderr.
    """

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of its log ("" while there is none)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class ProcessGroup:
    """Starts children in their own sessions and stops all of them, newest first.

    Args:
        log_dir: Where each child's log goes (``<name>.log``).
        env: Extra environment for every child (on top of this process's).
    """

    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        """Start ``argv`` as child ``name``, logging to ``log_dir/name.log``.

        Raises:
            ProcessError: The program cannot be run.
        """
        log_path = self.log_dir / f"{name}.log"
        full_env = {**os.environ, **self.env, **(env or {})}
        process = spawn(argv, log_path=log_path, env=full_env, cwd=cwd, name=name)
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def twopm(self, name: str, *args: str, env: dict[str, str] | None = None) -> Child:
        """Start a ``twopm`` command as a child (same interpreter, so the same installation)."""
        return self.start(name, [sys.executable, "-m", "core", *args], env=env)

    def check_alive(self) -> None:
        """Raise if any child has exited.

        Raises:
            ProcessError: A child exited; the message carries its exit code and log tail.
        """
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise ProcessError(f"{child.name} exited with code {code}:\n{child.tail()}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop every child, newest first: SIGTERM to its process group, SIGKILL after ``timeout_s``."""
        for child in reversed(self.children):
            terminate(child.process, timeout_s)
        self.children.clear()

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_for(
    what: str,
    ready: Callable[[], _T | None],
    *,
    group: ProcessGroup | None = None,
    process: subprocess.Popen[bytes] | None = None,
    timeout_s: float = 60.0,
    interval_s: float = 0.1,
) -> _T:
    """Poll ``ready`` until it returns a truthy value; return that value.

    Args:
        what: Name of the thing waited for, for the error message.
        ready: Returns a falsy value (or raises) while not ready.
        group: If given, fail at once when one of its children exits.
        process: If given, fail at once when it exits.
        timeout_s: How long to wait, in seconds.
        interval_s: Pause between polls, in seconds.

    Returns:
        The first truthy value of ``ready()``.

    Raises:
        ProcessError: Time ran out, ``process`` exited, or a child of ``group`` exited.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if group is not None:
            group.check_alive()
        if process is not None and process.poll() is not None:
            raise ProcessError(f"{what}: the process exited with code {process.returncode}")
        try:
            value = ready()
            if value:
                return value
        except Exception as exc:
            last_error = exc
        time.sleep(interval_s)
    detail = f" (last error: {last_error})" if last_error else ""
    raise ProcessError(f"{what} not ready after {timeout_s:.0f} s{detail}")
