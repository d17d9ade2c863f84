"""Sustained billed load over one and over two gateway replicas on one Redis, beside a bare
Litestar endpoint served by the same processes.

    .venv/bin/python -m bench.load.run [--requests 4000] [--rounds 5] [--concurrency 16]

A real anvil with the contracts, a staked and funded user with an API key (made through a
SIWE session), the gateway on uvicorn (``bench.gateway.app:make_app``: the gateway plus
``POST /bench/bare``) in one process per replica, all on the machine's Redis under a fresh
namespace. The load generator is a minimal keep-alive HTTP/1.1 client on asyncio streams
(``--concurrency`` connections per replica, so each replica sees the same concurrency
whatever their number: its Redis pipelining amortises the same way) sending
``Authorization: Bearer <key>`` to the billed ``POST /v1/subnets/{id}/noop`` and the same
body to ``/bench/bare``, endpoints alternated round by round so a disturbance of the shared
machine hits both. Per configuration and endpoint: req/s (median of rounds), p50/p99
latency, non-200 answers and transport errors, gateway CPU per request (user+sys of every
replica from ``/proc/<pid>/stat``, summed), peak RSS of each replica.

The recorder is off (receipts are queued durably in the Redis stream, not sent to the
chain): the figures are the hot path's; with several replicas the recorder runs on the lease
holder only, off the request path.

Targets (issue 15): billed/bare throughput >= 0.6 in Redis mode, and gateway CPU per billed
request with two replicas within 10 % of one replica's (two cores here, so total throughput
cannot double).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
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

from bench._gateway import (
    REDIS_URL,
    cpu_s,
    drive,
    drop_namespace,
    gateway_env,
    key_header,
    server_peak_rss_mib,
    setup_chain,
    sign_in,
    start_gateway,
)
from bench._report import peak_rss_mib, write_report
from contracts.chain import Anvil
from core.protocol import SESSION_COOKIE


def _api_key(port: int, user: Any) -> str:
    cookie = sign_in(port, user)
    r = httpx.post(
        f"http://127.0.0.1:{port}/v1/keys",
        json={"name": "load", "subnets": None},
        headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
    )
    if r.status_code != 201:
        raise SystemExit(f"API key not made: {r.text}")
    return str(r.json()["key"])


ENDPOINTS = ("bare", "billed")


def _measure(
    configs: dict[str, tuple[list[int], list[int], str]], subnet_id: int, args: argparse.Namespace
) -> dict[tuple[str, str], dict[str, Any]]:
    """Rounds over every configuration and endpoint in turn; figures per (replicas, endpoint).

    Interleaving the configurations (all their processes are up at once, idle when not
    loaded) and the endpoints round by round spreads the shared machine's disturbances over
    all of them; each figure is the median over the rounds.
    """
    paths = {"bare": "/bench/bare", "billed": f"/v1/subnets/{subnet_id}/noop"}
    for ports, _pids, key in configs.values():  # warm-up (caches, connections)
        for path in paths.values():
            asyncio.run(drive(ports, path, key_header(key), 500, args.concurrency))
    cells = [(n, e) for n in configs for e in ENDPOINTS]
    rps: dict[tuple[str, str], list[float]] = {c: [] for c in cells}
    cpu_us: dict[tuple[str, str], list[float]] = {c: [] for c in cells}
    lat: dict[tuple[str, str], list[float]] = {c: [] for c in cells}
    errors: dict[tuple[str, str], int] = dict.fromkeys(cells, 0)
    for _ in range(args.rounds):
        for replicas, endpoint in cells:
            ports, pids, key = configs[replicas]
            cpu0 = sum(cpu_s(p) for p in pids)
            connections = args.concurrency * len(ports)  # the same load on each replica
            r = asyncio.run(
                drive(ports, paths[endpoint], key_header(key), args.requests, connections)
            )
            cpu = sum(cpu_s(p) for p in pids) - cpu0
            cell = (replicas, endpoint)
            rps[cell].append(len(r.latencies_s) / r.wall_s)
            cpu_us[cell].append(cpu / max(1, len(r.latencies_s)) * 1e6)
            lat[cell].extend(r.latencies_s)
            errors[cell] += r.non_200 + r.transport_errors
    out = {}
    for replicas, endpoint in cells:
        cell = (replicas, endpoint)
        ratios = [
            g / b for g, b in zip(rps[(replicas, "billed")], rps[(replicas, "bare")], strict=True)
        ]
        q = statistics.quantiles(lat[cell], n=100)
        out[cell] = {
            "req_per_s": statistics.median(rps[cell]),
            "p50_ms": q[49] * 1e3,
            "p99_ms": q[98] * 1e3,
            "errors": errors[cell],
            "server_cpu_us_per_req": statistics.median(cpu_us[cell]),
            "billed_vs_bare": 1.0 if endpoint == "bare" else statistics.median(ratios),
        }
    return out


def _start_signer(chain: Anvil, addresses: dict[str, str], tmp: Path) -> tuple[Any, str, str]:
    """The operator's signer (``twopm signer serve``), as ``twopm up`` starts it.

    Returns:
        The process, its URL and the ``gateway`` caller's secret (hex).
    """
    from signer import Limits, init_state, policy_for_deployment

    state = init_state(
        tmp / "signer",
        private_key=bytes.fromhex(chain.accounts[1].private_key.removeprefix("0x")),
        password=secrets.token_hex(16),
        policy_toml=policy_for_deployment(
            addresses, chain_id=chain.chain_id, limits=Limits(max_tx_per_hour=100_000)
        ),
        callers={"gateway": None},
        scrypt_n=2**14,  # a throwaway key
    )
    ready = tmp / "signer" / "ready.json"
    twopm = str(Path(sys.executable).parent / "twopm")
    argv = [twopm, "signer", "serve", "--state-dir", str(state.state_dir),
            "--password-file", str(state.password_file), "--port", "0",
            "--ready-file", str(ready)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=(tmp / "signer.log").open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit((tmp / "signer.log").read_text()[-3000:])
        time.sleep(0.1)
    time.sleep(0.1)  # the ready file is complete once written; read it after a beat
    return proc, str(json.loads(ready.read_text())["url"]), state.secrets["gateway"].hex()


def _recorded(
    chain: Anvil, addresses: dict[str, str], namespace: str, subnet_id: int
) -> dict[str, Any]:
    """Wait for the recording replicas' queue to drain; rows on chain against receipts stored."""
    from eth_utils import to_checksum_address

    from gateway._chain import load_abi

    client = redis.Redis.from_url(REDIS_URL)
    start = time.monotonic()
    try:
        while client.xlen(f"{namespace}:receipts") and time.monotonic() - start < 600:
            time.sleep(0.5)
        drain_s = time.monotonic() - start
        pending = int(client.xlen(f"{namespace}:receipts"))
        stored = sum(1 for _ in client.scan_iter(match=f"{namespace}:receipt:*", count=10_000))
    finally:
        client.close()
    ledger = chain.w3.eth.contract(
        address=to_checksum_address(addresses["InferenceLedger"]), abi=load_abi("InferenceLedger")
    )
    events = ledger.events.BatchRecorded().get_logs(from_block=0)
    rows = sum(int(e["args"]["requestCount"]) for e in events if e["args"]["subnetId"] == subnet_id)
    return {
        "receipts_stored": stored,
        "rows_recorded_on_chain": rows,
        "duplicates": rows - (stored - pending),
        "unrecorded_after_drain": pending,
        "batches": len(events),
        "drain_after_load_s": drain_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000, help="per cell and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--concurrency", type=int, default=16, help="keep-alive connections per replica"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    namespaces: list[str] = []
    procs: list[Any] = []
    recording: dict[str, Any] = {}
    with Anvil.start() as chain, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        addresses, subnet_id, user = setup_chain(chain)
        signer, signer_url, signer_secret = _start_signer(chain, addresses, tmp)
        try:
            configs: dict[str, tuple[list[int], list[int], str]] = {}
            for label, replicas, records in (("1", 1, False), ("2", 2, False), ("2+rec", 2, True)):
                namespace = f"bench-load-{uuid.uuid4().hex[:8]}"
                namespaces.append(namespace)
                env = gateway_env(
                    chain,
                    addresses,
                    recorder_enabled="1" if records else "0",
                    redis_url=REDIS_URL,
                    redis_namespace=namespace,
                )
                if records:
                    env |= {
                        "TWOPM_GATEWAY_SIGNER_URL": signer_url,
                        "TWOPM_GATEWAY_SIGNER_SECRET": signer_secret,
                        "TWOPM_GATEWAY_SIGNER_CALLER_ID": "gateway",
                        "TWOPM_GATEWAY_BATCH_MAX_RECEIPTS": "512",
                        "TWOPM_GATEWAY_BATCH_MAX_AGE_S": "1",
                        "TWOPM_GATEWAY_SETTLE_INTERVAL_S": "0",
                    }
                started = [start_gateway(env, tmp / f"{label}-{i}.log") for i in range(replicas)]
                procs += started
                ports = [port for _, port in started]
                configs[label] = (ports, [p.pid for p, _ in started], _api_key(ports[0], user))
            figures = _measure(configs, subnet_id, args)
            for (label, endpoint), f in figures.items():
                pids = configs[label][1]
                rows.append(
                    {
                        "replicas": len(pids),
                        "recorder": label.endswith("+rec"),
                        "endpoint": endpoint,
                        "requests": args.requests * args.rounds,
                        **f,
                        "server_peak_rss_mib": max(server_peak_rss_mib(p) for p in pids),
                        "client_peak_rss_mib": peak_rss_mib(),
                    }
                )
            recording = _recorded(chain, addresses, namespaces[-1], subnet_id)
        finally:
            for proc, _ in procs:
                proc.terminate()
                proc.wait(10)
            signer.terminate()
            signer.wait(10)
            for namespace in namespaces:
                drop_namespace(namespace)

    def cell(replicas: int, recorder: bool, endpoint: str) -> dict[str, Any]:
        return next(
            r
            for r in rows
            if (r["replicas"], r["recorder"], r["endpoint"]) == (replicas, recorder, endpoint)
        )

    one, two = cell(1, False, "billed"), cell(2, False, "billed")
    bare = {n: cell(n, False, "bare")["server_cpu_us_per_req"] for n in (1, 2)}
    cpu_ratio = two["server_cpu_us_per_req"] / one["server_cpu_us_per_req"]
    # The billing's own CPU: billed minus bare in the same processes (the same-process
    # baseline takes out what two busy processes on two shared cores cost each request).
    billing_1 = one["server_cpu_us_per_req"] - bare[1]
    billing_2 = two["server_cpu_us_per_req"] - bare[2]
    write_report(
        "load: billed calls over 1 and 2 gateway replicas on one Redis vs bare Litestar",
        rows,
        args.out,
        notes={
            "targets": "billed_vs_bare >= 0.6 (Redis); CPU per billed request, 2 replicas "
            "<= 1.10 x 1 replica",
            "cpu_per_billed_2_vs_1": cpu_ratio,
            "cpu_per_bare_2_vs_1": bare[2] / bare[1],
            "billing_cpu_us_per_req": {"1": billing_1, "2": billing_2},
            "billing_cpu_2_vs_1": billing_2 / billing_1 if billing_1 > 0 else None,
            "recording_2_replicas": recording,
            "server_cpu": "CPU (schedstat, every thread) of every replica per 200 answer, median "
            "of the rounds",
            "auth": "API key (Authorization: Bearer), plain HTTP on loopback",
            "connections": f"{args.concurrency} per replica",
            "recorder": "off in the rows with recorder=false (receipts queued, not recorded); "
            "on (lease holder records batches of up to 512 through the signer) in the others",
            "load_avg_1m": os.getloadavg()[0],
            "cores": os.cpu_count(),
        },
    )
    print(
        f"CPU per billed request, 2 replicas / 1: {cpu_ratio:.3f} (bare: {bare[2] / bare[1]:.3f});"
        f" billing's own CPU (billed - bare) {billing_1:.0f} -> {billing_2:.0f} us per request"
    )
    print(f"recording with 2 replicas: {json.dumps(recording)}")


if __name__ == "__main__":
    main()
