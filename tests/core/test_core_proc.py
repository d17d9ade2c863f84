from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from core import free_port
from core.proc import ProcessError, ProcessGroup, spawn, terminate, wait_for

# A parent that starts a sleeping grandchild, prints its pid, and sleeps too.
PARENT = (
    "import subprocess, sys, time;"
    "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
    "print(c.pid, flush=True); time.sleep(60)"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); read its state
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_terminate_stops_the_child_and_the_processes_it_started(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "parent.log"
    proc = spawn([sys.executable, "-c", PARENT], log_path=log)
    grandchild = int(wait_for("pid", lambda: log.read_text().strip(), process=proc, timeout_s=20))
    assert _alive(grandchild)
    terminate(proc, timeout_s=5)
    assert proc.returncode is not None
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)
    terminate(proc)  # a second call is a no-op


def test_spawn_of_a_missing_program_raises_process_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match="cannot start ghost"):
        spawn([str(tmp_path / "no-such-program")], name="ghost")


def test_wait_for_fails_at_once_when_the_process_exits(tmp_path: Path) -> None:
    proc = spawn([sys.executable, "-c", "raise SystemExit(3)"])
    started = time.monotonic()
    with pytest.raises(ProcessError, match="exited with code 3"):
        wait_for("never", lambda: False, process=proc, timeout_s=30)
    assert time.monotonic() - started < 20


def test_wait_for_times_out_naming_the_last_error() -> None:
    def ready() -> bool:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(ProcessError, match="nobody home"):
        wait_for("the service", ready, timeout_s=0.3, interval_s=0.05)


def test_a_group_reports_a_child_that_exited_with_its_log_tail(tmp_path: Path) -> None:
    with ProcessGroup(tmp_path) as group:
        group.start("talker", [sys.executable, "-c", "print('last words'); raise SystemExit(2)"])
        with pytest.raises(ProcessError, match=r"talker exited with code 2:\nlast words"):
            wait_for("talker", lambda: False, group=group, timeout_s=30)
    assert group.children == []


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
