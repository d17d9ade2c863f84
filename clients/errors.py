"""Errors of the ``twopm`` command line."""

from __future__ import annotations


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status ``exit_code``, no traceback.

    Args:
        message: One line saying what went wrong and, where possible, what to do.
        exit_code: Process exit status (non-zero).
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
