"""bench/signer: what isolation, policy and durability cost per signature.

Baseline: signing the same EIP-1559 transaction in-process with eth-account (the key in the
caller's memory, as the original 2PM did). Against it, in the same run: the signer's request
handling in-process (HMAC check, replay set, policy, SQLite transaction with
``synchronous=FULL``, signed audit entry with fsync), then a real ``python -m signer serve``
process over loopback HTTP, one request at a time and from 16 threads. Times are per
signature (median and p95); throughput for the concurrent case; peak RSS beside each (the
bench process, or the signer process's ``VmHWM`` for the HTTP rows). Writes
``bench/signer/results.json`` and prints a table.

    .venv/bin/python -m bench.signer.run [--n N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_account import Account
from eth_utils import keccak

from bench._report import peak_rss_mib, write_report
from signer import SignerClient, parse_policy, policy_for_deployment
from signer._auth import Callers, add_caller, sign_request
from signer._keystore import write_keystore
from signer._service import SignerService
from signer._settings import SignerSettings
from signer._store import Store

LEDGER = "0x" + "11" * 20
CHAIN_ID = 534351
DATA = (
    "0x" + (keccak(text="settle(uint256,uint64)")[:4] + encode(["uint256", "uint64"], [1, 1])).hex()
)
TX = {
    "chainId": CHAIN_ID,
    "to": "0x1111111111111111111111111111111111111111",
    "data": DATA,
    "value": 0,
    "gas": 100_000,
    "maxFeePerGas": 10**9,
    "maxPriorityFeePerGas": 10**8,
}


def timed(n: int, fn: Callable[[int], Any]) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - start) * 1e3)
    return out


def row(what: str, times_ms: list[float], baseline_ms: float, rss_mib: float) -> dict[str, Any]:
    ordered = sorted(times_ms)
    median = statistics.median(ordered)
    return {
        "what": what,
        "n": len(ordered),
        "median_ms": median,
        "p95_ms": ordered[int(0.95 * (len(ordered) - 1))],
        "x_baseline": median / baseline_ms,
        "peak_rss_mib": rss_mib,
    }


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="signatures per row")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()
    n = args.n
    root = Path(tempfile.mkdtemp(prefix="bench-signer-"))
    account = Account.create()

    # Baseline: the key in the caller's process.
    base = timed(n, lambda i: account.sign_transaction({**TX, "nonce": i, "type": 2}))
    baseline_ms = statistics.median(base)
    rows = [row("eth-account in-process (baseline)", base, baseline_ms, peak_rss_mib())]

    # The service's handling without HTTP.
    policy_text = policy_for_deployment({"InferenceLedger": LEDGER}, chain_id=CHAIN_ID)
    policy = parse_policy(policy_text)
    secret = add_caller(root / "callers.json", "bench")
    store = Store(root / "inproc.db", root / "inproc.jsonl", account, time.time)
    service = SignerService(
        SignerSettings(state_dir=root), account, policy, Callers(root / "callers.json"),
        store, time.time,
    )  # fmt: skip

    def handle(i: int) -> None:
        body = json.dumps({"idempotency_key": f"inproc-{i:06d}", "transaction": TX}).encode()
        headers = sign_request(secret, "bench", "POST", "/v1/sign/transaction", body)
        status, _ = service.handle(
            "sign_transaction", "POST", "/v1/sign/transaction", headers, body
        )
        assert status == 200

    rows.append(row("signer service in-process", timed(n, handle), baseline_ms, peak_rss_mib()))
    store.close()

    # A real signer process over loopback HTTP.
    state = root / "state"
    state.mkdir(mode=0o700)
    password = root / "password"
    password.write_text("bench password\n")
    password.chmod(0o600)
    write_keystore(state / "keystore.json", bytes(account.key), "bench password", scrypt_n=2**12)
    (state / "policy.toml").write_text(policy_text)
    secret = add_caller(state / "callers.json", "bench")
    ready = root / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "signer", "serve", "--state-dir", str(state),
         "--password-file", str(password), "--port", "0", "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the signer did not start")
            time.sleep(0.05)
        url = json.loads(ready.read_text())["url"]
        with SignerClient(url, "bench", secret) as client:
            seq = timed(n, lambda i: client.sign_transaction(TX, f"http-{i:06d}"))
            rows.append(row("HTTP, one at a time", seq, baseline_ms, vm_hwm_mib(proc.pid)))
            per_thread: list[float] = []

            def burst(i: int) -> None:
                start = time.perf_counter()
                client.sign_transaction(TX, f"burst-{i:06d}")
                per_thread.append((time.perf_counter() - start) * 1e3)

            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=16) as pool:
                list(pool.map(burst, range(2 * n)))
            wall_s = time.perf_counter() - start
            burst_row = row("HTTP, 16 threads", per_thread, baseline_ms, vm_hwm_mib(proc.pid))
            burst_row["what"] += f" ({2 * n / wall_s:.0f} signatures/s)"
            rows.append(burst_row)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    write_report(
        "signer: cost per signature against in-process signing",
        rows,
        args.out,
        notes={
            "baseline_median_ms": baseline_ms,
            "storage": "SQLite WAL synchronous=FULL + fsync'd signed audit entry per request",
        },
    )


if __name__ == "__main__":
    main()
