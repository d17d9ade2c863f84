"""Throughput and latency of an authenticated, stake-gated, billed call (no inference) against a
bare Litestar JSON endpoint served by the same process, on the memory and the Redis backend.

    .venv/bin/python -m bench.gateway.run [--requests 3000] [--rounds 5] [--concurrency 16]

A real anvil with the contracts, a staked and funded user signed in with SIWE, the gateway on
uvicorn in its own process; the load generator is a minimal keep-alive HTTP/1.1 client on
asyncio streams (so the client's own cost stays small next to the server's). The recorder is
off: receipts are queued durably (SQLite WAL or Redis Streams) but not sent to the chain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis
from eth_account import Account
from eth_account.messages import encode_defunct

from bench._report import peak_rss_mib, write_report
from contracts.chain import Anvil
from contracts.deploy import deploy_all
from contracts.eip712 import sign_typed_data, spending_authorization
from contracts.tx import Transactor
from core.net import free_port
from core.protocol import SESSION_COOKIE

PUBLIC_URL = "https://gw.bench"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _setup_chain(chain: Anvil) -> tuple[dict[str, str], int, Any]:
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


def _start_gateway(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
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
                return proc, port
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(log.read_text()[-3000:])
        time.sleep(0.1)


def _sign_in(port: int, user: Any) -> str:
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


async def _load(port: int, path: str, cookie: str, n: int, concurrency: int) -> list[float]:
    """Send ``n`` POSTs over ``concurrency`` keep-alive connections; return latencies (s)."""
    body = b'{"rows":1}'
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nCookie: {SESSION_COOKIE}={cookie}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    remaining = [n]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
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
            if status != 200:
                raise SystemExit(f"{path}: HTTP {status}")
            latencies.append(time.perf_counter() - start)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def _drop_namespace(namespace: str) -> None:
    """Delete the keys the run wrote (sessions, buckets, receipts) from the shared Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=10_000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used (``/proc/<pid>/stat``, proc(5))."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with Anvil.start() as chain, tempfile.TemporaryDirectory() as tmp:
        addresses, subnet_id, user = _setup_chain(chain)
        for backend in ("memory", "redis"):
            env = {
                "TWOPM_GATEWAY_PUBLIC_URL": PUBLIC_URL,
                "TWOPM_GATEWAY_RPC_URL": chain.rpc_url,
                "TWOPM_GATEWAY_CONTRACTS": json.dumps(addresses),
                "TWOPM_GATEWAY_ENABLE_NOOP_ROUTE": "1",
                "TWOPM_GATEWAY_RECORDER_ENABLED": "0",
                "TWOPM_GATEWAY_TIERS": "bench:0:1000000:1000000",
                "TWOPM_GATEWAY_QUEUE_PATH": str(Path(tmp) / f"{backend}.sqlite3"),
            }
            if backend == "redis":
                env |= {"TWOPM_GATEWAY_REDIS_URL": REDIS_URL,
                        "TWOPM_GATEWAY_REDIS_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}"}  # fmt: skip
            proc, port = _start_gateway(env, Path(tmp) / f"{backend}.log")
            try:
                cookie = _sign_in(port, user)
                endpoints = {"bare": "/bench/bare", "billed": f"/v1/subnets/{subnet_id}/noop"}
                for path in endpoints.values():
                    asyncio.run(_load(port, path, cookie, 500, args.concurrency))  # warm-up
                # Alternate the two endpoints round by round, so a disturbance of the shared
                # machine hits both; the ratio is the median of the per-round ratios.
                rps: dict[str, list[float]] = {name: [] for name in endpoints}
                cpu_us: dict[str, list[float]] = {name: [] for name in endpoints}
                latencies: dict[str, list[float]] = {name: [] for name in endpoints}
                for _ in range(args.rounds):
                    for name, path in endpoints.items():
                        start, cpu_start = time.perf_counter(), _cpu_s(proc.pid)
                        lat = asyncio.run(
                            _load(port, path, cookie, args.requests, args.concurrency)
                        )
                        rps[name].append(len(lat) / (time.perf_counter() - start))
                        cpu_us[name].append((_cpu_s(proc.pid) - cpu_start) / len(lat) * 1e6)
                        latencies[name].extend(lat)
                ratios = [g / b for g, b in zip(rps["billed"], rps["bare"], strict=True)]
                for name in endpoints:
                    q = statistics.quantiles(latencies[name], n=100)
                    rows.append({
                        "backend": backend, "endpoint": name,
                        "requests": len(latencies[name]), "concurrency": args.concurrency,
                        "req_per_s": statistics.median(rps[name]),
                        "p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3,
                        "server_cpu_us_per_req": statistics.median(cpu_us[name]),
                        "throughput_vs_bare": 1.0 if name == "bare" else statistics.median(ratios),
                        "worst_round_vs_bare": 1.0 if name == "bare" else min(ratios),
                        "server_peak_rss_mib": _server_peak_rss_mib(proc.pid),
                        "client_peak_rss_mib": peak_rss_mib(),
                    })  # fmt: skip
            finally:
                proc.terminate()
                proc.wait(10)
                if backend == "redis":
                    _drop_namespace(env["TWOPM_GATEWAY_REDIS_NAMESPACE"])
    write_report(
        "gateway: billed no-inference call vs bare Litestar JSON endpoint",
        rows,
        args.out,
        notes={
            "target": "billed throughput >= 0.5 x bare, same server process",
            "billed_path": "session cookie -> caller (cached; re-checked at admission) -> subnet "
            "+ stake (cached) -> token bucket + credential check + spendable (cached) + atomic "
            "reservation -> durable receipt; Redis mode: 2 pipelined commands per request",
            "server_cpu": "gateway process CPU (user+sys) per request, median of the rounds; "
            "the gateway is one process on one core, so req/s is about 1e6 / this",
            "load_avg_1m": os.getloadavg()[0],
        },
    )


if __name__ == "__main__":
    main()
