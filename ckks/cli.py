"""``twopm ckks``: CKKS keys and encrypted requests on the command line.

twopm ckks params [--json]
twopm ckks keygen --layout {row,column,coeff} [--features N] --out KEYFILE
twopm ckks public KEYFILE --out FILE
twopm ckks encrypt KEYFILE --csv ROWS.csv --out REQUEST [--layout L]
twopm ckks decrypt KEYFILE RESPONSE [--json]

KEYFILE holds the secret key (written with mode 0600); ``public`` extracts what
``POST /v1/he/contexts`` takes. ROWS.csv has one row per line, features in the subnet's
order, an optional header line.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from ckks._codec import ClientContext, Wire, sigmoid
from ckks._errors import CkksError
from ckks._params import DEFAULT_PARAMS, Layout
from core.cli import CliError
from core.secrets import PrivateFileError, check_private_file

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ckks`` command group to the ``twopm`` parser.

    Args:
        subparsers: The top-level parser's subparsers.
    """
    ckks = subparsers.add_parser("ckks", help="CKKS keys, encrypted requests and responses")
    commands = ckks.add_subparsers(dest="ckks_command", metavar="COMMAND", required=True)

    params = commands.add_parser("params", help="show the CKKS parameters and their security check")
    params.add_argument("--json", action="store_true", help="print JSON")
    params.set_defaults(handler=_params)

    keygen = commands.add_parser("keygen", help="make a private key file (keep it secret)")
    keygen.add_argument("--layout", choices=[x.label for x in Layout], default="column")
    keygen.add_argument("--features", type=int, help="features per row (row layout)")
    keygen.add_argument("--out", type=Path, required=True, help="key file to create (mode 0600)")
    keygen.set_defaults(handler=_keygen)

    public = commands.add_parser("public", help="write the public context to upload")
    public.add_argument("keyfile", type=Path)
    public.add_argument("--out", type=Path, required=True)
    public.set_defaults(handler=_public)

    encrypt = commands.add_parser("encrypt", help="encrypt CSV rows into a request body")
    encrypt.add_argument("keyfile", type=Path)
    encrypt.add_argument("--csv", type=Path, required=True)
    encrypt.add_argument("--out", type=Path, required=True)
    encrypt.add_argument("--layout", choices=[x.label for x in Layout])
    encrypt.add_argument(
        "--wire",
        choices=[w.value for w in Wire],
        default=Wire.FAST.value,
        help="fast: uncompressed, quickest for the gateway; compact: seeded and compressed, "
        "44%% of the bytes",
    )
    encrypt.set_defaults(handler=_encrypt)

    decrypt = commands.add_parser("decrypt", help="decrypt a response body into probabilities")
    decrypt.add_argument("keyfile", type=Path)
    decrypt.add_argument("response", type=Path)
    decrypt.add_argument("--json", action="store_true", help="print JSON")
    decrypt.set_defaults(handler=_decrypt)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    try:
        if secret:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        else:
            path.write_bytes(data)
    except FileExistsError as exc:
        raise CliError(f"{path} exists; refusing to overwrite a key file") from exc
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from exc


def _load_key(path: Path) -> ClientContext:
    try:
        check_private_file(path, "key file")
    except PrivateFileError as exc:
        raise CliError(str(exc)) from None
    try:
        return ClientContext.from_bytes(_read(path))
    except CkksError as exc:
        raise CliError(f"{path}: {exc}") from exc


def _params(args: argparse.Namespace) -> int:
    p = DEFAULT_PARAMS
    try:
        p.check()
    except CkksError as exc:
        raise CliError(str(exc)) from exc
    info = {**p.to_dict(), "max_bits_128": p.max_bits_128(), "total_bits": p.total_bits}
    if args.json:
        print(json.dumps(info))
    else:
        print(
            f"CKKS N={p.poly_modulus_degree} primes={list(p.coeff_mod_bit_sizes)} "
            f"scale=2^{p.scale_bits} slots={p.slots}: {p.total_bits} of {p.max_bits_128()} bits "
            "allowed for 128-bit security (HE standard)"
        )
    return 0


def _keygen(args: argparse.Namespace) -> int:
    layout = Layout.from_label(args.layout)
    try:
        client = ClientContext.create(layout=layout, n_features=args.features)
    except CkksError as exc:
        raise CliError(str(exc)) from exc
    _write(args.out, client.to_bytes(), secret=True)
    print(f"{client.context_id} {layout.label} public context {len(client.public_bytes())} bytes")
    return 0


def _public(args: argparse.Namespace) -> int:
    client = _load_key(args.keyfile)
    _write(args.out, client.public_bytes())
    print(client.context_id)
    return 0


def _encrypt(args: argparse.Namespace) -> int:
    client = _load_key(args.keyfile)
    try:
        rows = np.loadtxt(args.csv, delimiter=",", ndmin=2)
    except ValueError:
        try:
            rows = np.loadtxt(args.csv, delimiter=",", ndmin=2, skiprows=1)
        except ValueError as exc:
            raise CliError(f"{args.csv}: not a CSV of numbers ({exc})") from exc
    except OSError as exc:
        raise CliError(f"cannot read {args.csv}: {exc}") from exc
    layout = Layout.from_label(args.layout) if args.layout else None
    try:
        body = client.encrypt(rows, layout, wire=Wire(args.wire))
    except CkksError as exc:
        raise CliError(str(exc)) from exc
    _write(args.out, body)
    print(f"{rows.shape[0]} rows, {rows.shape[1]} features, {len(body)} bytes")
    return 0


def _decrypt(args: argparse.Namespace) -> int:
    client = _load_key(args.keyfile)
    try:
        logits = client.decrypt_logits(_read(args.response))
    except CkksError as exc:
        raise CliError(f"{args.response}: {exc}") from exc
    probabilities = sigmoid(logits)
    if args.json:
        print(json.dumps({"logits": logits.tolist(), "probabilities": probabilities.tolist()}))
    else:
        for z, p in zip(logits, probabilities, strict=True):
            print(f"{z:.6f} {p:.6f}")
    return 0
