"""README.md cannot rot: its local tours run literally as printed, against a real `twopm up`.

The ``console`` blocks of "Roles and their commands" are run in order in one fresh directory, each
``$ `` line through ``bash -c`` exactly as printed (with the virtual environment's ``bin`` first on
PATH, as ``. .venv/bin/activate`` would put it, and HOME in the test's directory so no session
file of the person running the tests is touched). A line ending in `` &`` runs in the background
until the end of the module, as in a shell. The Python block of the same section runs as a script
in the same directory. What each command prints (stdout and stderr, interleaved as written) must
match the lines under it, where ``…`` stands for any text and a line of just ``…`` for any number
of lines. The two placeholders the README documents are the only substitutions: ``<receipt>`` is
the last receipt id printed before, ``<sha256>`` the last bundle digest ``twopm train`` printed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTION = "## Roles and their commands"
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 900
COMMAND_TIMEOUT_S = 600
#: Fixed local ports the model-owner tour uses as printed (Flower's SuperLink, three SuperNodes).
TOUR_PORTS = (8000, 9094, 9095, 9096)

_skip_unless_slow = pytest.mark.skipif(
    os.environ.get("TWOPM_SLOW_TESTS") != "1",
    reason="runs `twopm up` and a federated training (several minutes); set TWOPM_SLOW_TESTS=1",
)


def slow(test: Any) -> Any:
    """Mark a test slow and run it only with TWOPM_SLOW_TESTS=1 (CI sets it)."""
    return pytest.mark.slow(_skip_unless_slow(test))


@dataclass
class Step:
    """One ``$ `` command of a console block and the output lines printed under it."""

    command: str
    expected: list[str] = field(default_factory=list)


def _section() -> str:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return text[start:end]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", _section(), flags=re.M | re.S)


def console_tours() -> list[list[Step]]:
    """Every console block of the roles section, parsed into steps."""
    tours = []
    for block in _blocks("console"):
        steps: list[Step] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:]))
            else:
                assert steps, f"output before any command in README block:\n{block}"
                steps[-1].expected.append(line)
        tours.append(steps)
    return tours


def _line_pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in expected.split("…")))


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` lines match ``expected`` patterns (``…`` any text, ``…`` alone any lines)."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == "…":
        return any(output_matches(rest, actual[i:]) for i in range(len(actual) + 1))
    return (
        bool(actual)
        and _line_pattern(head).fullmatch(actual[0]) is not None
        and output_matches(rest, actual[1:])
    )


def _strip_comment(command: str) -> str:
    """The command without a trailing `` # comment`` (for the ``&`` test only; bash gets all)."""
    return command.split(" #", 1)[0].rstrip()


class Shell:
    """One directory where the README's commands run, with their background jobs."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(cwd),
            "PYTHONUNBUFFERED": "1",
        }
        self.jobs: list[tuple[subprocess.Popen[str], Path]] = []
        self.printed: list[str] = []

    def substitute(self, command: str) -> str:
        text = "\n".join(self.printed)
        if "<receipt>" in command:
            ids = re.findall(r"receipts: (0x[0-9a-f]{64})", text)
            assert ids, "no receipt id was printed before <receipt>"
            command = command.replace("<receipt>", ids[-1])
        if "<sha256>" in command:
            digests = re.findall(r'"sha256": "([0-9a-f]{64})"', text)
            assert digests, "no bundle digest was printed before <sha256>"
            command = command.replace("<sha256>", digests[-1])
        return command

    def run(self, step: Step) -> list[str]:
        command = self.substitute(step.command)
        if _strip_comment(command).endswith("&"):
            return self.background(command)
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        lines = done.stdout.splitlines()
        self.printed += lines
        assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{done.stdout}"
        return lines

    def background(self, command: str) -> list[str]:
        """Run ``command &`` as a shell would: in the background, its output going to a log."""
        log = self.cwd / f"job-{len(self.jobs)}.log"
        job = _strip_comment(command).removesuffix("&").rstrip()
        with log.open("w") as out:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {job}"],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        self.jobs.append((proc, log))
        if "twopm up" not in command:
            time.sleep(2)
            assert proc.poll() is None, f"`{command}` stopped:\n{log.read_text()}"
            return []
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while "press Ctrl-C to stop" not in log.read_text():
            assert proc.poll() is None, f"`{command}` stopped:\n{log.read_text()}"
            assert time.monotonic() < deadline, "twopm up did not come up"
            time.sleep(1)
        lines = log.read_text().splitlines()
        self.printed += lines
        return lines

    def close(self) -> None:
        for proc, _ in reversed(self.jobs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, log in reversed(self.jobs):
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            assert proc.returncode in (0, -signal.SIGTERM, 128 + signal.SIGTERM), log.read_text()


def _port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory, zk_keys_cached: None) -> Iterator[Shell]:
    busy = [port for port in TOUR_PORTS if _port_in_use(port)]
    if busy:
        pytest.skip(f"the model-owner tour uses ports {TOUR_PORTS} as printed; busy: {busy}")
    running = Shell(tmp_path_factory.mktemp("readme"))
    try:
        yield running
    finally:
        running.close()


def _run_tour(shell: Shell, steps: list[Step]) -> None:
    for step in steps:
        lines = shell.run(step)
        printed, shown = "\n".join(lines), "\n".join(step.expected)
        assert output_matches(step.expected, lines), (
            f"`{step.command}` printed:\n{printed}\nbut README.md shows:\n{shown}"
        )


# ------------------------------------------------------------------ the README, as printed


def test_the_readme_has_the_three_local_tours_and_the_sdk_snippet() -> None:
    tours = console_tours()
    assert len(tours) == 2 and len(_blocks("python")) == 1
    wallet, owner = tours
    assert wallet[0].command.startswith("twopm up &") and any(
        "<receipt>" in step.command for step in wallet
    )
    assert any(step.command.startswith("twopm publish --stack") for step in owner)
    assert "twopm up" in _blocks("python")[0] or ".state/up/stack.json" in _blocks("python")[0]


@slow
def test_the_wallet_user_tour_runs_as_printed(shell: Shell) -> None:
    _run_tour(shell, console_tours()[0])


@slow
def test_the_app_developer_snippet_runs_as_printed(shell: Shell) -> None:
    script = shell.cwd / "snippet.py"
    script.write_text(_blocks("python")[0])
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=shell.cwd,
        env=shell.env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "2 probabilities, receipt proven on chain\n"


@slow
def test_the_model_owner_tour_runs_as_printed(shell: Shell) -> None:
    _run_tour(shell, console_tours()[1])


# ------------------------------------------------------------------ the matcher itself


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        (["a …; b"], ["a 0x12; b"], True),
        (["a …; b"], ["a 0x12; c"], False),
        (["…", "last"], ["x", "y", "last"], True),
        (["…", "last"], [], False),
        (["first", "…"], ["first"], True),
        (["one"], ["one", "two"], False),
        (["a.b"], ["aXb"], False),
    ],
)
def test_documented_output_is_matched_line_by_line(
    expected: list[str], actual: list[str], matches: bool
) -> None:
    assert output_matches(expected, actual) is matches


def test_dev_without_a_command_prints_its_usage_and_nothing_else() -> None:
    done = subprocess.run([str(ROOT / "dev")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "./dev install" in done.stdout
    assert all(line.startswith("#") for line in done.stdout.splitlines()), done.stdout
