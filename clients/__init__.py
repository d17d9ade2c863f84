"""Client side of 2PM: the Python SDK, the CKKS codec shared with the gateway, and the user commands of ``twopm``.

This package imports none of ``gateway``, ``trainer`` or ``signer``; the service command groups of
``twopm`` are loaded as entry-point plugins (see :mod:`core.cli`).
"""
