"""What the gateway benchmarks share: a funded chain, gateway processes, a load generator, CPU.

``bench/gateway`` (one process, memory and Redis mode, session cookie) and ``bench/load`` (one
and two replicas on one Redis, API key) both drive ``bench.gateway.app:make_app`` on uvicorn
with :func:`drive` and measure the server's CPU with :func:`cpu_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis
from eth_account import Account
from eth_account.messages import encode_defunct

from contracts.chain import Anvil
from contracts.deploy import deploy_all
from contracts.eip712 import sign_typed_data, spending_authorization
from contracts.tx import Transactor
from core.net import free_port
from core.protocol import SESSION_COOKIE

PUBLIC_URL = "https://gw.bench"
REDIS_URL = "redis://127.0.0.1:6379/0"
BODY = b'{"rows":1}'
"""The body of every request: the billed route bills one row, the bare one echoes it."""


def setup_chain(chain: Anvil) -> tuple[dict[str, str], int, Any]:
    """Contracts, a subnet with a model (1 wei a row), and a staked, funded, authorised user.

    Args:
        chain: A running anvil.

    Returns:
        Contract addresses, the subnet id, the user's ``eth_account`` account.
    """
    acc = chain.accounts
    d = deploy_all(chain.w3, acc[0].private_key, operator=acc[1].address)
    owner = Transactor(chain.w3, acc[0].private_key)
    registry = d.contract("SubnetRegistry")
    owner.transact(registry.functions.createSubnet("bench", 1, 10**18, 1000))
    subnet_id = int(registry.functions.subnetCount().call())
    owner.transact(
        registry.functions.publishModel(
            subnet_id,
            b"\xab" * 32,
            "file:///m",
            b"\x01" * 32,
            b"\x02" * 32,
            [acc[5].address],
            [10_000],
        )
    )
    user = Account.create()
    Transactor(chain.w3, acc[4].private_key).send({"to": user.address, "value": 10**19})
    tx = Transactor(chain.w3, user.key.hex())
    reth, vault, ledger = (
        d.contract("MockRETH"),
        d.contract("StakingVault"),
        d.contract("InferenceLedger"),
    )
    tx.transact(reth.functions.mint(user.address, 10**20))
    tx.transact(reth.functions.approve(vault.address, 10**20))
    tx.transact(vault.functions.stake(reth.address, 10**20))
    tx.transact(ledger.functions.deposit(), value_wei=10**18)
    expiry = int(time.time()) + 86_400
    typed = spending_authorization(
        chain_id=d.chain_id,
        ledger=ledger.address,
        user=user.address,
        max_total_spend_wei=10**18,
        expiry=expiry,
        nonce=1,
    )
    sig = sign_typed_data(user.key.to_0x_hex(), typed)
    tx.transact(ledger.functions.authorizeSpending(user.address, 10**18, expiry, 1, bytes(sig)))
    return dict(d.addresses), subnet_id, user


def gateway_env(chain: Anvil, addresses: dict[str, str], **extra: str) -> dict[str, str]:
    """``TWOPM_GATEWAY_*`` of a benchmarked gateway: the noop route on, the recorder off.

    Args:
        chain: The anvil.
        addresses: Contract addresses.
        **extra: More settings (``TWOPM_GATEWAY_`` + upper-case name), e.g. ``REDIS_URL``.

    Returns:
        The environment entries.
    """
    env = {
        "TWOPM_GATEWAY_PUBLIC_URL": PUBLIC_URL,
        "TWOPM_GATEWAY_RPC_URL": chain.rpc_url,
        "TWOPM_GATEWAY_CONTRACTS": json.dumps(addresses),
        "TWOPM_GATEWAY_ENABLE_NOOP_ROUTE": "1",
        "TWOPM_GATEWAY_RECORDER_ENABLED": "0",
        "TWOPM_GATEWAY_TIERS": "bench:0:1000000:1000000",
    }
    return env | {f"TWOPM_GATEWAY_{k.upper()}": v for k, v in extra.items()}


def start_gateway(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``uvicorn --factory bench.gateway.app:make_app`` on a free port, once it answers and settles.

    Args:
        env: ``TWOPM_GATEWAY_*`` settings (the caller's other ``TWOPM_*`` are dropped).
        log: File for its output.

    Returns:
        The process and its port.

    Raises:
        SystemExit: It did not answer ``/healthz`` within 60 s (the log's tail), or its start-up
            work did not settle (:func:`wait_settled`).
    """
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "--factory", "bench.gateway.app:make_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    full = {k: v for k, v in os.environ.items() if not k.startswith("TWOPM_")} | env
    proc = subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=full)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                wait_settled(proc.pid)
                return proc, port
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(log.read_text()[-3000:])
        time.sleep(0.1)


def sign_in(port: int, user: Any) -> str:
    """Sign in with Ethereum; the session cookie's value."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
        nonce = c.get("/v1/auth/nonce").json()["nonce"]
        issued = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        message = "\n".join([
            "gw.bench wants you to sign in with your Ethereum account:", user.address, "",
            "Sign in to 2PM", "", f"URI: {PUBLIC_URL}", "Version: 1", "Chain ID: 534351", f"Nonce: {nonce}",
            f"Issued At: {issued}",
        ])  # fmt: skip
        sig = Account.sign_message(encode_defunct(text=message), user.key).signature
        r = c.post(
            "/v1/auth/verify",
            json={"message": message, "signature": "0x" + sig.hex().removeprefix("0x")},
        )
        if r.status_code != 200:
            raise SystemExit(f"sign-in failed: {r.text}")
        return str(r.cookies[SESSION_COOKIE])


def session_header(cookie: str) -> str:
    """The header line of a signed-in session (for :func:`drive`)."""
    return f"Cookie: {SESSION_COOKIE}={cookie}"


def key_header(key: str) -> str:
    """The header line of an API key (for :func:`drive`)."""
    return f"Authorization: Bearer {key}"


class LoadResult:
    """Outcome of one :func:`drive`.

    Attributes:
        latencies_s: Seconds per 200 answer.
        non_200: Answers with another status.
        transport_errors: Connections that failed.
        wall_s: Wall-clock seconds of the run.
    """

    def __init__(self) -> None:
        self.latencies_s: list[float] = []
        self.non_200 = 0
        self.transport_errors = 0
        self.wall_s = 0.0


async def drive(
    ports: list[int], path: str, credential: str, n: int, concurrency: int
) -> LoadResult:
    """Send ``n`` POSTs of :data:`BODY` over ``concurrency`` keep-alive connections.

    A minimal HTTP/1.1 client on asyncio streams, so the client's own cost stays small next
    to the server's; connection ``i`` goes to ``ports[i % len(ports)]``.

    Args:
        ports: Gateway ports on 127.0.0.1.
        path: Request path.
        credential: One header line (:func:`session_header`, :func:`key_header`).
        n: Requests in all.
        concurrency: Connections, each sending its next request once answered.

    Returns:
        Latencies, errors and wall time.
    """
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n{credential}\r\n\r\n"
    ).encode() + BODY
    result = LoadResult()
    remaining = [n]

    async def worker(port: int) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            result.transport_errors += 1
            return
        try:
            while remaining[0] > 0:
                remaining[0] -= 1
                start = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                if status == 200:
                    result.latencies_s.append(time.perf_counter() - start)
                else:
                    result.non_200 += 1
        except (OSError, asyncio.IncompleteReadError):
            result.transport_errors += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(ports[i % len(ports)]) for i in range(concurrency)))
    result.wall_s = time.perf_counter() - start
    return result


def drop_namespace(namespace: str) -> None:
    """Delete the keys a run wrote (sessions, buckets, receipts) from the shared Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=10_000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def cpu_s(pid: int) -> float:
    """CPU seconds a process's threads have run, to the nanosecond.

    The sum over ``/proc/<pid>/task/*/schedstat`` (first field: time on a CPU, ns;
    Documentation/scheduler/sched-stats.rst), where ``/proc/<pid>/stat``'s user+sys count
    clock ticks of 10 ms: a round of 4,000 requests at 100 us each is 40 ticks, so a tick
    was 2.5 % of the figure. Threads that ended before the call are not counted.
    """
    total_ns = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total_ns += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
    return total_ns / 1e9


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it (``/proc/<pid>/task/*/children``)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for tid in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{tid}/children").read_text().split()
                todo.extend(int(child) for child in children)
        except (FileNotFoundError, ProcessLookupError):  # it ended meanwhile
            continue
    return found


def wait_settled(
    pid: int, busy_below: float = 0.05, window_s: float = 1.0, timeout_s: float = 180.0
) -> float:
    """Wait until a gateway and its children have finished their start-up work; seconds waited.

    A gateway answers ``/healthz`` before its background start-up is done: proof keys loaded into
    the Node prover (fixed-base tables, ~5 s of CPU for the 30-feature key), the CKKS sets'
    error measured per model in an evaluation worker. Measured while that runs, a round competes
    with it for the two cores. Settled means the process tree used less than ``busy_below`` of
    one core over ``window_s``.

    Raises:
        SystemExit: Still busy after ``timeout_s``.
    """
    started = time.monotonic()

    def tree_cpu_s() -> float:
        total = 0.0
        for process in _tree(pid):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                total += cpu_s(process)
        return total

    while time.monotonic() - started < timeout_s:
        before = tree_cpu_s()
        time.sleep(window_s)
        if tree_cpu_s() - before < busy_below * window_s:
            return time.monotonic() - started
    raise SystemExit(f"gateway {pid} still busy after {timeout_s:.0f} s of start-up")


def server_peak_rss_mib(pid: int) -> float:
    """Peak resident set size of a process (``VmHWM`` of ``/proc/<pid>/status``), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
