"""The ``twopm`` command line host and its user-facing error.

Command groups are plugins: each part of 2PM declares ``register(subparsers)`` under the entry-point
group ``twopm.commands`` in ``pyproject.toml``, so this module imports none of the parts
(``gateway``, ``trainer``, ``signer`` ...) itself and loads only the group that is asked for. Every
part raises :class:`CliError` for a user error; :func:`main` prints it as one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

__all__ = ["ENTRY_POINT_GROUP", "CliError", "build_parser", "main"]

ENTRY_POINT_GROUP = "twopm.commands"


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status ``exit_code``, no traceback.

    Args:
        message: One line saying what went wrong and, where possible, what to do.
        exit_code: Process exit status (non-zero).
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser.

    Args:
        command: The command about to run. When it names a registered group, only that group is loaded
            (so ``twopm chain`` does not import Flower or TenSEAL); otherwise every group is, for help.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(
        prog="twopm",
        description="2PM: private federated models served as subnets on Scroll.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    entries = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    chosen = [e for e in entries if e.name == command]
    for entry in chosen or entries:
        register = entry.load()
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``twopm`` with ``argv`` (the process arguments when ``None``); return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments[0] if arguments else None)
    args = parser.parse_args(arguments)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.parse_args([*arguments, "--help"])
        return 2
    try:
        return int(handler(args) or 0)
    except CliError as exc:
        print(f"twopm: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("twopm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
