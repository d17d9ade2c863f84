"""Memory mode's SQLite file: one process holds it; sessions, keys and nonces survive restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_support import free_port, session_headers, sign_in

from gateway import GatewaySettings
from gateway._errors import ConfigurationError
from gateway._receipts import SqliteReceiptQueue
from gateway._sqlite_store import SqliteStore


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _store(tmp_path: Path, **kwargs: Any) -> tuple[SqliteStore, _Clock, sqlite3.Connection]:
    db = sqlite3.connect(str(tmp_path / "kv.sqlite3"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    clock = _Clock()
    return SqliteStore(db, now_s=clock, **kwargs), clock, db


def test_the_store_honours_ttls_and_renewals(tmp_path: Path) -> None:
    store, clock, db = _store(tmp_path)

    async def scenario() -> None:
        await store.set("session", "alice", expires_in=10)
        await store.set("key", b"forever")
        assert await store.get("session") == b"alice"
        assert await store.expires_in("session") == 10
        assert await store.expires_in("key") is None
        clock.now += 9
        assert await store.get("session", renew_for=10) == b"alice"  # renewed to t+19
        clock.now += 5
        assert await store.exists("session")
        clock.now += 6
        assert await store.get("session") is None and not await store.exists("session")
        assert await store.get("key") == b"forever"
        await store.delete("key")
        assert await store.get("key") is None
        await store.set("a", b"1")
        await store.delete_all()
        assert len(store) == 0 and await store.get("a") is None

    asyncio.run(scenario())
    db.close()


def test_the_store_is_bounded_and_never_evicts_records_without_expiry(tmp_path: Path) -> None:
    store, clock, db = _store(tmp_path, max_entries=3)

    async def scenario() -> list[bytes | None]:
        await store.set("key:1", b"k")  # no expiry: an API key
        await store.set("nonce:a", b"1", expires_in=5)
        await store.set("session:b", b"1", expires_in=100)
        await store.set("session:b", b"2", expires_in=100)  # an overwrite does not count
        assert len(store) == 3
        await store.set("session:c", b"1", expires_in=50)  # over: the earliest expiry goes
        assert len(store) == 3
        clock.now += 60  # session:c expires
        await store.set("session:d", b"1", expires_in=100)  # over: the expired one goes first
        return [await store.get(k) for k in ("key:1", "nonce:a", "session:b", "session:c")]

    assert asyncio.run(scenario()) == [b"k", None, b"2", None]
    assert len(store) == 3
    db.close()
    with pytest.raises(ValueError, match="at least 1"):
        SqliteStore(sqlite3.connect(":memory:"), max_entries=0)


def test_a_second_queue_on_the_same_file_is_refused_until_the_first_closes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.sqlite3"
    first = SqliteReceiptQueue(path)
    with pytest.raises(ConfigurationError, match="another gateway process is using"):
        SqliteReceiptQueue(path)
    store = SqliteStore(first.connection)
    asyncio.run(store.set("key:1", b"kept"))
    asyncio.run(first.close())
    again = SqliteReceiptQueue(path)  # the lock was released; the records are still there
    assert asyncio.run(SqliteStore(again.connection).get("key:1")) == b"kept"
    asyncio.run(again.close())


def _twopm() -> str:
    return str(Path(sys.executable).parent / "twopm")


def _env(settings: GatewaySettings) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TWOPM_")}
    return base | {
        "TWOPM_GATEWAY_PUBLIC_URL": settings.public_url,
        "TWOPM_GATEWAY_RPC_URL": str(settings.rpc_url),
        "TWOPM_GATEWAY_CONTRACTS": json.dumps(dict(settings.contracts)),
        "TWOPM_GATEWAY_SIGNER_URL": str(settings.signer_url),
        "TWOPM_GATEWAY_SIGNER_SECRET": str(settings.signer_secret),
        "TWOPM_GATEWAY_ENABLE_NOOP_ROUTE": "1",
        "TWOPM_GATEWAY_SETTLE_INTERVAL_S": "0",
        "TWOPM_GATEWAY_QUEUE_PATH": str(settings.queue_path),
    }


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [_twopm(), "gateway", "serve", "--port", str(port), "--log-level", "warning"],
            stdout=out,
            stderr=out,
            env=env,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(log.read_text()[-3000:])


memory_only = pytest.mark.parametrize("backend", ["memory"], indirect=True)


@pytest.mark.slow
@memory_only
def test_a_second_gateway_on_the_same_queue_file_refuses_to_start_with_one_line(
    chain_settings: GatewaySettings, tmp_path: Path
) -> None:
    env = _env(chain_settings)
    first = _start(env, free_port(), tmp_path / "first.log")
    try:
        second = subprocess.run(
            [_twopm(), "gateway", "serve", "--port", str(free_port())],
            env=env,
            capture_output=True,
            timeout=60,
        )
    finally:
        first.terminate()
        first.wait(15)
    err = second.stderr.decode().strip()
    assert second.returncode != 0
    assert len(err.splitlines()) == 1, err
    assert "another gateway process is using the receipt queue" in err
    assert "Traceback" not in err


@pytest.mark.slow
@memory_only
def test_a_key_and_a_session_still_work_after_sigkill_and_restart(
    chain_settings: GatewaySettings, new_user: Any, tmp_path: Path
) -> None:
    env = _env(chain_settings)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    user = new_user()
    proc = _start(env, port, tmp_path / "first.log")
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            token = sign_in(client, user.key.hex())
            made = client.post(
                "/v1/keys", json={"name": "k", "subnets": None}, headers=session_headers(token)
            )
            assert made.status_code == 201, made.text
            key = made.json()["key"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc = _start(env, port, tmp_path / "second.log")
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            listed = client.get("/v1/keys", headers=session_headers(token))
            me = client.get("/v1/me", headers={"Authorization": f"Bearer {key}"})
            nonce = client.get("/v1/auth/nonce").json()["nonce"]
    finally:
        proc.terminate()
        proc.wait(15)
    assert listed.status_code == 200, listed.text
    assert [k["name"] for k in listed.json()["keys"]] == ["k"]
    assert me.status_code == 200, me.text
    assert me.json()["address"].lower() == user.address.lower()
    assert nonce
