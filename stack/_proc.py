"""Child processes of the local network: start, wait until ready, stop every one on exit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx


class StackError(RuntimeError):
    """A part of the local network failed to start or stopped unexpectedly."""


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
        """The last ``lines`` lines of its log."""
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
        env: Extra environment for every child.
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
            StackError: The program cannot be run.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        full_env = {**os.environ, **self.env, **(env or {})}
        with open(log_path, "ab") as log:
            try:
                process = subprocess.Popen(
                    list(argv),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=full_env,
                    cwd=cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise StackError(f"cannot start {name}: {exc.strerror}") from exc
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def twopm(self, name: str, *args: str, env: dict[str, str] | None = None) -> Child:
        """Start a ``twopm`` command as a child (same interpreter, so the same installation)."""
        return self.start(name, [sys.executable, "-m", "clients", *args], env=env)

    def check_alive(self) -> None:
        """Raise if any child has exited.

        Raises:
            StackError: A child exited; the message carries its exit code and log tail.
        """
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise StackError(f"{child.name} exited with code {code}:\n{child.tail()}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop every child, newest first: SIGTERM to its process group, SIGKILL after ``timeout_s``."""
        for child in reversed(self.children):
            _terminate(child.process, timeout_s)
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


def _terminate(process: subprocess.Popen[bytes], timeout_s: float) -> None:
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


def wait_for(
    what: str,
    ready: Callable[[], Any],
    *,
    group: ProcessGroup | None = None,
    timeout_s: float = 60.0,
    interval_s: float = 0.1,
) -> Any:
    """Poll ``ready`` until it returns a truthy value; return that value.

    Args:
        what: Name of the thing waited for, for the error message.
        ready: Returns a falsy value (or raises) while not ready.
        group: If given, fail at once when one of its children exits.
        timeout_s: How long to wait, in seconds.
        interval_s: Pause between polls, in seconds.

    Raises:
        StackError: Time ran out, or a child of ``group`` exited.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if group is not None:
            group.check_alive()
        try:
            value = ready()
            if value:
                return value
        except Exception as exc:
            last_error = exc
        time.sleep(interval_s)
    detail = f" (last error: {last_error})" if last_error else ""
    raise StackError(f"{what} not ready after {timeout_s:.0f} s{detail}")


def read_json_file(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None while it does not exist or is half-written."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def http_ok(url: str) -> bool:
    """Whether ``GET url`` answers 200."""
    return httpx.get(url, timeout=2.0, verify=False).status_code == 200
