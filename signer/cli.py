"""``twopm signer …``: keys, policy, callers, nonce, audit, and the service itself.

Loaded by the ``twopm`` entry point through the ``twopm.commands`` entry-point group (name
``signer``); also runnable alone as ``python -m signer …`` on a host that has only this
package. Passwords and private keys come from 0600 files or hidden prompts, never from argv.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.cli import CliError
from signer._audit import AuditHead, verify_audit_log
from signer._auth import add_caller
from signer._deployment import policy_for_deployment
from signer._errors import ConfigError, ServiceError
from signer._keystore import (
    keystore_address,
    load_account,
    read_password,
    read_private_key,
    write_keystore,
    write_secret_file,
)
from signer._policy import load_policy
from signer._settings import SignerSettings

_DESCRIPTION = (
    "The isolated signer: the operator key (keygen, import, address), the service (serve), "
    "the policy, caller secrets, the nonce, and the audit log. Passwords and keys come from "
    "0600 files or hidden prompts, never from the command line."
)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``signer`` command group.

    Args:
        subparsers: The ``twopm`` top-level subparsers.
    """
    group = subparsers.add_parser(
        "signer",
        allow_abbrev=False,
        help="the isolated signer holding the operator key",
        description=_DESCRIPTION,
    )
    add_commands(group.add_subparsers(dest="signer_command", required=True, metavar="COMMAND"))


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the signer's commands to a subparsers object (shared by ``twopm`` and ``-m signer``).

    Args:
        sub: Where to add them.
    """
    p = sub.add_parser(
        "keygen", allow_abbrev=False, help="create a new operator key in an encrypted keystore"
    )
    _files(p, "keystore", "password_file")
    p.set_defaults(handler=cmd_keygen)

    p = sub.add_parser(
        "import", allow_abbrev=False, help="encrypt an existing private key into a keystore"
    )
    _files(p, "keystore", "password_file")
    p.add_argument("--key-file", type=Path, help="0600 file holding the hex key (else a prompt)")
    p.set_defaults(handler=cmd_import)

    p = sub.add_parser(
        "address", allow_abbrev=False, help="print the keystore's address (no password needed)"
    )
    _files(p, "keystore")
    p.set_defaults(handler=cmd_address)

    p = sub.add_parser("serve", allow_abbrev=False, help="run the signer service")
    _files(p, "keystore", "password_file", "policy", "callers", "db", "audit_log")
    p.add_argument("--host", help="loopback address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 8547; 0 = any free port)")
    p.add_argument("--uds", type=Path, help="listen on this Unix socket (mode 0600) instead")
    p.add_argument("--max-body-bytes", type=int, help="body size limit (default 65536)")
    p.add_argument("--ready-file", type=Path, help="write {url, address, ...} here once listening")
    p.set_defaults(handler=cmd_serve)

    policy = sub.add_parser("policy", allow_abbrev=False, help="show or write the signing policy")
    psub = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    p = psub.add_parser("show", allow_abbrev=False, help="print the policy and its sha256 digest")
    _files(p, "policy")
    p.add_argument("--json", action="store_true", help="print canonical JSON")
    p.set_defaults(handler=cmd_policy_show)
    p = psub.add_parser(
        "init", allow_abbrev=False, help="write the policy for a deployment's operator functions"
    )
    _files(p, "policy")
    p.add_argument(
        "--deployment",
        type=Path,
        required=True,
        help="JSON: name -> address, or an object with a 'contracts' member (stack.json)",
    )
    p.add_argument("--chain-id", type=int, required=True)
    p.add_argument("--force", action="store_true", help="overwrite an existing policy file")
    p.set_defaults(handler=cmd_policy_init)

    callers = sub.add_parser("callers", allow_abbrev=False, help="manage caller secrets")
    csub = callers.add_subparsers(dest="callers_command", required=True, metavar="COMMAND")
    p = csub.add_parser("add", allow_abbrev=False, help="mint a secret for a caller (printed once)")
    _files(p, "callers")
    p.add_argument("caller", help="caller id, e.g. recorder")
    p.add_argument("--rotate", action="store_true", help="replace an existing caller's secret")
    p.add_argument(
        "--allow",
        action="append",
        metavar="NAME",
        help="restrict the caller to this function (name or signature) or EIP-712 primary type; "
        "repeat for more (default: the whole policy)",
    )
    p.add_argument("--secret-out", type=Path, help="write the secret (hex) to this new 0600 file")
    p.set_defaults(handler=cmd_callers_add)

    nonce = sub.add_parser("nonce", allow_abbrev=False, help="show or set the operator nonce")
    nsub = nonce.add_subparsers(dest="nonce_command", required=True, metavar="COMMAND")
    p = nsub.add_parser("show", allow_abbrev=False, help="print the next nonce the signer will use")
    _files(p, "db")
    p.set_defaults(handler=cmd_nonce_show)
    p = nsub.add_parser(
        "set",
        allow_abbrev=False,
        help="admin: set the next nonce (signer stopped; the key signs the audit entry)",
    )
    _files(p, "keystore", "password_file", "db", "audit_log")
    p.add_argument("nonce", type=int)
    p.add_argument("--allow-lower", action="store_true", help="permit lowering it")
    p.set_defaults(handler=cmd_nonce_set)

    audit = sub.add_parser("audit", allow_abbrev=False, help="check the audit log")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    p = asub.add_parser(
        "verify",
        allow_abbrev=False,
        help="check the hash chain, the operator's signatures and the database head",
    )
    _files(p, "audit_log", "db", "keystore")
    p.add_argument("--address", help="operator address (default: read from the keystore)")
    p.set_defaults(handler=cmd_audit_verify)


_FILE_HELP = {
    "keystore": "keystore file (default STATE_DIR/keystore.json)",
    "password_file": "0600 file holding the keystore password (else a prompt)",
    "policy": "policy TOML (default STATE_DIR/policy.toml)",
    "callers": "callers file (default STATE_DIR/callers.json)",
    "db": "SQLite database (default STATE_DIR/signer.db)",
    "audit_log": "audit log (default STATE_DIR/audit.jsonl)",
}


class _RefuseSecret(argparse.Action):
    """Refuse a secret given on the command line, without echoing it.

    argv ends up in shell history and ``ps``; argparse would otherwise print the value back as
    an unrecognised argument.
    """

    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        parser.error(
            f"{self.option_strings[0]} is not accepted: secrets come from a 0600 file "
            "(--password-file, --key-file) or the prompt, never from the command line"
        )


def _files(parser: argparse.ArgumentParser, *names: str) -> None:
    parser.add_argument(
        "--password", "--private-key", "--key", "--secret", nargs="?", action=_RefuseSecret,
        help=argparse.SUPPRESS,
    )  # fmt: skip
    parser.add_argument(
        "--state-dir", type=Path, help="signer state directory (env TWOPM_SIGNER_STATE_DIR)"
    )
    for name in names:
        parser.add_argument(f"--{name.replace('_', '-')}", type=Path, help=_FILE_HELP[name])


def _settings(args: argparse.Namespace) -> SignerSettings:
    fields = (
        "state_dir", "keystore", "password_file", "policy", "callers", "db", "audit_log",
        "host", "port", "uds", "max_body_bytes",
    )  # fmt: skip
    try:
        base = SignerSettings.from_env()
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    return base.with_overrides(**{f: getattr(args, f, None) for f in fields})


def _user_errors(fn: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            result: int = fn(args)
        except (ConfigError, ServiceError) as exc:
            raise CliError(str(exc)) from exc
        return result

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


def _refuse_existing_keystore(settings: SignerSettings) -> None:
    if settings.keystore_path.exists():
        raise ConfigError(f"{settings.keystore_path} already exists; refusing to overwrite it")


@_user_errors
def cmd_keygen(args: argparse.Namespace) -> int:
    """Create a key; print only its address.

    Args:
        args: Parsed arguments.

    Returns:
        0.
    """
    import secrets

    settings = _settings(args)
    _refuse_existing_keystore(settings)
    password = read_password(settings.password_file, confirm=True)
    address = write_keystore(settings.keystore_path, secrets.token_bytes(32), password)
    print(address)
    return 0


@_user_errors
def cmd_import(args: argparse.Namespace) -> int:
    """Encrypt an existing key; print only its address.

    Args:
        args: Parsed arguments.

    Returns:
        0.
    """
    settings = _settings(args)
    _refuse_existing_keystore(settings)
    key = read_private_key(args.key_file)
    password = read_password(settings.password_file, confirm=True)
    print(write_keystore(settings.keystore_path, key, password))
    return 0


@_user_errors
def cmd_address(args: argparse.Namespace) -> int:
    """Print the keystore's address.

    Args:
        args: Parsed arguments.

    Returns:
        0.
    """
    print(keystore_address(_settings(args).keystore_path))
    return 0


@_user_errors
def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service until SIGINT/SIGTERM.

    Args:
        args: Parsed arguments.

    Returns:
        0 after a clean shutdown.
    """
    from signer._server import serve

    settings = _settings(args)
    password = read_password(settings.password_file)
    serve(settings, password, ready_file=args.ready_file)
    return 0


@_user_errors
def cmd_policy_show(args: argparse.Namespace) -> int:
    """Print the policy with its digest.

    Args:
        args: Parsed arguments.

    Returns:
        0.
    """
    policy = load_policy(_settings(args).policy_path)
    if args.json:
        print(json.dumps({"digest": policy.digest, "policy": policy.canonical()}, indent=2))
        return 0
    canonical = policy.canonical()
    lim = canonical["limits"]
    print(f"policy sha256 {policy.digest}")
    print(f"chain id      {policy.chain_id}")
    for name, value in lim.items():
        print(f"  {name:<26} {value}")
    for c in canonical["contracts"]:
        print(f"contract {c['name']} {c['address']}")
        for fn in c["functions"]:
            print(f"  {fn}")
    for d in canonical["typed_data"]:
        print(f"typed data {d['name']!r} v{d['version']} {d['verifying_contract']}")
        print(f"  primary types: {', '.join(d['primary_types'])}")
    return 0


@_user_errors
def cmd_policy_init(args: argparse.Namespace) -> int:
    """Write a policy allowing a deployment's operator functions.

    Args:
        args: Parsed arguments.

    Returns:
        0.
    """
    settings = _settings(args)
    try:
        raw = json.loads(args.deployment.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read deployment JSON {args.deployment}") from exc
    addresses = raw.get("contracts", raw) if isinstance(raw, dict) else None
    if not isinstance(addresses, dict):
        raise ConfigError(f"{args.deployment} has no name -> address mapping")
    text = policy_for_deployment(addresses, chain_id=args.chain_id)
    path = settings.policy_path
    if path.exists() and not args.force:
        raise ConfigError(f"{path} already exists; use --force to replace it")
    write_secret_file(path, text.encode(), overwrite=True)
    print(f"wrote {path} (sha256 {load_policy(path).digest})")
    return 0


@_user_errors
def cmd_callers_add(args: argparse.Namespace) -> int:
    """Mint a caller secret.

    Args:
        args: Parsed arguments.

    Returns:
        0.
    """
    settings = _settings(args)
    if args.secret_out is not None and args.secret_out.exists():
        raise ConfigError(f"{args.secret_out} already exists")
    secret = add_caller(settings.callers_path, args.caller, replace=args.rotate, allow=args.allow)
    if args.secret_out is not None:
        write_secret_file(args.secret_out, secret.hex().encode() + b"\n")
        print(f"caller {args.caller}: secret written to {args.secret_out}")
    else:
        print(f"caller {args.caller} secret (shown once): {secret.hex()}")
    return 0


@_user_errors
def cmd_nonce_show(args: argparse.Namespace) -> int:
    """Print the next nonce (read-only; works while the signer runs).

    Args:
        args: Parsed arguments.

    Returns:
        0.
    """
    db = _settings(args).db_path
    if not db.exists():
        raise ConfigError(f"{db} does not exist (the signer has not run yet)")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{db} is not a signer database") from exc
    finally:
        conn.close()
    print(f"{rows.get('address')} next nonce {rows.get('next_nonce')}")
    return 0


@_user_errors
def cmd_nonce_set(args: argparse.Namespace) -> int:
    """Set the next nonce, audited; refuses while the signer runs.

    Args:
        args: Parsed arguments.

    Returns:
        0.
    """
    import time

    from signer._server import state_lock
    from signer._store import Store

    settings = _settings(args)
    if args.nonce < 0:
        raise ConfigError("a nonce is not negative")
    with state_lock(settings, purpose="setting the nonce"):
        account = load_account(settings.keystore_path, read_password(settings.password_file))
        address = str(account.address)
        store = Store(settings.db_path, settings.audit_path, account, time.time)
        try:
            with store.transaction():
                before, after = store.set_nonce(args.nonce, allow_lower=args.allow_lower)
                store.append_audit_in_transaction(
                    {
                        "event": "admin_nonce_set",
                        "outcome": "ok",
                        "before": before,
                        "after": after,
                        "allow_lower": bool(args.allow_lower),
                    }
                )
        finally:
            store.close()
    print(f"{address} next nonce {before} -> {after}")
    return 0


@_user_errors
def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Verify the audit log.

    Args:
        args: Parsed arguments.

    Returns:
        0 when intact.

    Raises:
        CliError: The log is damaged (with the first bad line).
    """
    settings = _settings(args)
    head: AuditHead | None = None
    if settings.db_path.exists():
        conn = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True)
        try:
            rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            head = AuditHead(int(rows.get("audit_seq", 0)), rows.get("audit_hash", ""))
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{settings.db_path} is not a signer database") from exc
        finally:
            conn.close()
    address = args.address
    if address is None and settings.keystore_path.exists():
        address = keystore_address(settings.keystore_path)
    if address is None:
        raise ConfigError("give --address or a keystore to check the entries' signatures")
    report = verify_audit_log(settings.audit_path, expected_head=head, address=address)
    if not report.ok:
        raise CliError(f"{settings.audit_path}: line {report.bad_line}: {report.problem}")
    where = ", matches the database head" if head is not None else ""
    print(
        f"{settings.audit_path}: {report.entries} entries, chain intact, "
        f"all signed by {address}{where}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m signer``: the signer commands without the rest of ``twopm``.

    Args:
        argv: Arguments (``sys.argv[1:]`` when None).

    Returns:
        The exit code.
    """
    parser = argparse.ArgumentParser(
        prog="python -m signer", description=_DESCRIPTION, allow_abbrev=False
    )
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code
