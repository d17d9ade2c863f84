"""Client side of 2PM: the Python SDK and the user commands of ``twopm`` (the CKKS codec is :mod:`ckks`).

This package imports none of ``gateway``, ``trainer`` or ``signer``; the service command groups of
``twopm`` are loaded as entry-point plugins (see :mod:`core.cli`).
"""
