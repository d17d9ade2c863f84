"""What two or more parts of 2PM share, with no third-party dependency.

Imports point one way: ``core`` <- ``contracts`` and ``ckks`` <- ``signer``, ``trainer``,
``gateway`` and the SDK <- ``stack``. Nothing here imports another part of 2PM.

- :mod:`core.bundle`: the model bundle format and its verification.
- :mod:`core.cli`: the ``twopm`` entry-point host and its one user-facing error, :class:`CliError`.
- :mod:`core.net`: :func:`free_port`.
- :mod:`core.proc`: child processes in their own sessions, stopped as a group.
- :mod:`core.protocol`: the HTTP names the gateway and its clients both write.
- :mod:`core.transactions`: the errors of sending a transaction (both transactors raise them).
"""

from core.cli import CliError
from core.net import free_port

__all__ = ["CliError", "free_port"]
