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
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench._gateway import (
    REDIS_URL,
    cpu_s,
    drive,
    drop_namespace,
    gateway_env,
    server_peak_rss_mib,
    session_header,
    setup_chain,
    sign_in,
    start_gateway,
)
from bench._report import peak_rss_mib, write_report
from contracts.chain import Anvil


def _load(port: int, path: str, credential: str, n: int, concurrency: int) -> list[float]:
    """:func:`bench._gateway.drive` on one port; every answer must be a 200."""
    result = asyncio.run(drive([port], path, credential, n, concurrency))
    if result.non_200 or result.transport_errors:
        raise SystemExit(
            f"{path}: {result.non_200} answers other than 200, "
            f"{result.transport_errors} transport errors"
        )
    return result.latencies_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with Anvil.start() as chain, tempfile.TemporaryDirectory() as tmp:
        addresses, subnet_id, user = setup_chain(chain)
        for backend in ("memory", "redis"):
            extra = {"queue_path": str(Path(tmp) / f"{backend}.sqlite3")}
            if backend == "redis":
                extra |= {
                    "redis_url": REDIS_URL,
                    "redis_namespace": f"bench-{uuid.uuid4().hex[:8]}",
                }
            env = gateway_env(chain, addresses, **extra)
            proc, port = start_gateway(env, Path(tmp) / f"{backend}.log")
            try:
                credential = session_header(sign_in(port, user))
                endpoints = {"bare": "/bench/bare", "billed": f"/v1/subnets/{subnet_id}/noop"}
                for path in endpoints.values():
                    _load(port, path, credential, 500, args.concurrency)  # warm-up
                # Alternate the two endpoints round by round, so a disturbance of the shared
                # machine hits both; the ratio is the median of the per-round ratios.
                rps: dict[str, list[float]] = {name: [] for name in endpoints}
                cpu_us: dict[str, list[float]] = {name: [] for name in endpoints}
                latencies: dict[str, list[float]] = {name: [] for name in endpoints}
                for _ in range(args.rounds):
                    for name, path in endpoints.items():
                        start, cpu_start = time.perf_counter(), cpu_s(proc.pid)
                        lat = _load(port, path, credential, args.requests, args.concurrency)
                        rps[name].append(len(lat) / (time.perf_counter() - start))
                        cpu_us[name].append((cpu_s(proc.pid) - cpu_start) / len(lat) * 1e6)
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
                        "server_peak_rss_mib": server_peak_rss_mib(proc.pid),
                        "client_peak_rss_mib": peak_rss_mib(),
                    })  # fmt: skip
            finally:
                proc.terminate()
                proc.wait(10)
                if backend == "redis":
                    drop_namespace(env["TWOPM_GATEWAY_REDIS_NAMESPACE"])
    write_report(
        "gateway: billed no-inference call vs bare Litestar JSON endpoint",
        rows,
        args.out,
        notes={
            "target": "billed throughput >= 0.6 x bare in Redis mode (issue 15), same server process",
            "billed_path": "session cookie -> caller (cached; re-checked at admission) -> subnet "
            "+ stake (cached) -> token bucket + credential check + spendable (cached) + atomic "
            "reservation -> durable receipt; Redis mode: 2 pipelined commands per request",
            "server_cpu": "gateway process CPU (schedstat, every thread) per request, median of "
            "the rounds; the gateway is one process on one core, so req/s is at most 1e6 / this",
            "load_avg_1m": os.getloadavg()[0],
        },
    )


if __name__ == "__main__":
    main()
