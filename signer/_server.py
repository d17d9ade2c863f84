"""Start the signer: unlock the key, load policy and callers, open the store, serve.

The process holds an exclusive ``flock`` on ``signer.lock`` beside its database for as long as
it runs, so a second signer on the same state (which would hand out the same nonces) cannot
start, and offline admin commands (``nonce set``) refuse while it runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import uvicorn

from signer._app import build_app
from signer._auth import Callers
from signer._errors import ConfigError
from signer._keystore import check_secret_file, load_account, write_secret_file
from signer._policy import load_policy
from signer._service import SignerService
from signer._settings import SignerSettings
from signer._store import Store


@contextlib.contextmanager
def state_lock(settings: SignerSettings, *, purpose: str) -> Iterator[IO[str]]:
    """Hold the state directory's exclusive lock.

    Args:
        settings: Where the lock file is.
        purpose: Written into the error message when the lock is busy.

    Yields:
        The open lock file.

    Raises:
        ConfigError: Another process (a running signer) holds the lock.
    """
    path = settings.lock_path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ConfigError(
                f"{path} is locked by a running signer; stop it before {purpose}"
            ) from exc
        yield handle
    finally:
        handle.close()


class _Server(uvicorn.Server):
    """uvicorn's server, ending with a clean return (exit code 0) on SIGTERM/SIGINT.

    uvicorn re-raises the signal after its graceful shutdown; here the cleanup after ``run``
    (closing the store, removing the socket file) happens instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _listen_socket(settings: SignerSettings) -> tuple[socket.socket, str]:
    if settings.uds is not None:
        path = settings.uds
        if path.exists():
            if not path.is_socket():
                raise ConfigError(f"{path} exists and is not a socket")
            path.unlink()  # we hold the state lock: no other signer owns it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        return sock, f"unix:{path}"
    try:
        is_loopback = ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        is_loopback = settings.host == "localhost"
    if not is_loopback:
        raise ConfigError(
            f"refusing to listen on {settings.host}: the signer listens on loopback or a Unix "
            "socket only (put a TLS tunnel in front for another host)"
        )
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
        ) from exc
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    return sock, f"http://{shown}:{port}"


def serve(settings: SignerSettings, password: str, *, ready_file: Path | None = None) -> None:
    """Run the signer until SIGINT/SIGTERM.

    Args:
        settings: The settings.
        password: The keystore password (read by the caller from a 0600 file or a prompt).
        ready_file: When given, written (0600) once listening, as JSON
            ``{"url", "address", "policy_digest", "pid"}``; ``url`` is ``http://host:port``
            or ``unix:/path``.

    Raises:
        ConfigError: Any file is missing or invalid, the state is locked, or the address is not
            loopback.
    """
    with state_lock(settings, purpose="starting another one"):
        policy = load_policy(settings.policy_path)
        if settings.idempotency_retention_s < max(3600, policy.limits.value_window_s):
            raise ConfigError(
                "idempotency_retention_s must cover the policy's windows "
                f"({max(3600, policy.limits.value_window_s)} s)"
            )
        if settings.callers_path.exists():
            check_secret_file(settings.callers_path)
        callers = Callers(settings.callers_path)
        sock, url = _listen_socket(settings)  # a bad address fails before the key is unlocked
        try:
            account = load_account(settings.keystore_path, password)
            store = Store(settings.db_path, settings.audit_path, account, time.time)
        except BaseException:
            sock.close()
            if settings.uds is not None:
                settings.uds.unlink(missing_ok=True)
            raise
        del password
        service = SignerService(settings, account, policy, callers, store, time.time)
        sock.listen(2048)  # accept into the backlog from now on; uvicorn serves it
        app = build_app(service, max_body_bytes=settings.max_body_bytes)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        server = _Server(config)
        if ready_file is not None:
            info = {
                "url": url,
                "address": service.address,
                "policy_digest": policy.digest,
                "pid": os.getpid(),
            }
            write_secret_file(ready_file, json.dumps(info).encode() + b"\n", overwrite=True)
        print(f"signer {service.address} listening on {url} policy {policy.digest}", flush=True)
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
            if settings.uds is not None:
                settings.uds.unlink(missing_ok=True)
            store.close()
