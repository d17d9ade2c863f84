"""``twopm gateway ...``: run the gateway (entry-point group ``twopm.commands``, name ``gateway``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from core.cli import CliError
from core.secrets import PrivateFileError, check_private_file
from gateway._errors import ConfigurationError
from gateway._settings import GatewaySettings

__all__ = ["register"]


def _cli_error(message: str) -> CliError:
    """A one-line user error; ``twopm`` prints it and exits 1, without a traceback."""
    return CliError(message)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``twopm gateway serve`` and ``twopm gateway settings``.

    Args:
        subparsers: The ``twopm`` top-level subparsers.
    """
    group = subparsers.add_parser("gateway", help="the HTTPS gateway (sign-in, billing, receipts)")
    commands = group.add_subparsers(dest="gateway_command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the gateway on uvicorn",
        description="Run the gateway. Settings come from TWOPM_GATEWAY_* variables "
        "(see docs/gateway.md); the flags below override a few of them.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8443, help="TCP port (default 8443)")
    serve.add_argument("--cert", type=Path, help="TLS certificate (PEM); serve HTTPS with --key")
    serve.add_argument("--key", type=Path, help="TLS private key (PEM)")
    serve.add_argument("--public-url", help="origin users reach the gateway at (SIWE domain)")
    serve.add_argument("--redis-url", help="Redis URL (default: in-memory state, one process)")
    serve.add_argument("--rpc-url", help="chain JSON-RPC URL")
    serve.add_argument("--deployment-file", type=Path, help="JSON with contract addresses")
    serve.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    serve.set_defaults(handler=_serve)

    show = commands.add_parser("settings", help="print the effective settings as JSON")
    show.set_defaults(handler=_settings)


def _load(args: argparse.Namespace) -> GatewaySettings:
    try:
        settings = GatewaySettings.from_env()
    except ConfigurationError as exc:
        raise _cli_error(str(exc)) from exc
    overrides = {
        name: getattr(args, name)
        for name in ("public_url", "redis_url", "rpc_url", "deployment_file")
        if getattr(args, name, None) is not None
    }
    return settings.with_(**overrides)


def _serve(args: argparse.Namespace) -> int:
    """Handler of ``twopm gateway serve``."""
    if (args.cert is None) != (args.key is None):
        raise _cli_error("--cert and --key go together")
    for path in (args.cert, args.key, args.deployment_file):
        if path is not None and not path.is_file():
            raise _cli_error(f"no such file: {path}")
    if args.key is not None:
        try:
            check_private_file(args.key, "TLS key")
        except PrivateFileError as exc:
            raise _cli_error(str(exc)) from None
    if not 0 < args.port < 65536:
        raise _cli_error("--port must be between 1 and 65535")
    settings = _load(args)
    if args.cert is None and settings.cookie_secure and not args.host.startswith("127."):
        print(
            "twopm: warning: serving plain HTTP; browsers will not send the Secure session "
            "cookie. Use --cert/--key (see docs/gateway.md)."
        )
    import uvicorn

    from gateway.app import create_app

    try:
        app = create_app(settings)
    except ConfigurationError as exc:
        raise _cli_error(str(exc)) from exc
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=str(args.cert) if args.cert else None,
        ssl_keyfile=str(args.key) if args.key else None,
        log_level=args.log_level,
    )
    return 0


def _settings(args: argparse.Namespace) -> int:
    """Handler of ``twopm gateway settings``: effective settings, secrets masked."""
    settings = _load(args)
    view: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.name == "signer_secret" and value:
            value = "***"
        elif f.name == "tiers":
            value = [dataclasses.asdict(t) for t in value]
        elif isinstance(value, Path):
            value = str(value)
        elif f.name == "contracts":
            value = dict(value)
        view[f.name] = value
    print(json.dumps(view, indent=2))
    return 0
