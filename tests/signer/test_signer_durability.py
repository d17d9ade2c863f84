"""Nonces under concurrency and under kill -9, against real signer processes and anvil."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from signer_support import SignerProcess, create_subnet_tx, ledger_tx
from web3 import Web3

from contracts.deploy import Deployment
from signer import SignedTransaction, SignerClient, SignerUnavailable
from signer._audit import verify_audit_log


def test_one_hundred_concurrent_requests_get_one_hundred_consecutive_nonces(
    make_signer: Callable[..., SignerProcess], deployment: Deployment
) -> None:
    signer = make_signer()
    barrier = threading.Barrier(100)
    client = signer.client(attempts=1, timeout_s=60)  # httpx pools up to 100 connections

    def sign(i: int) -> SignedTransaction:
        barrier.wait()
        return client.sign_transaction(ledger_tx(deployment), f"concurrent-{i:04d}")

    with client, ThreadPoolExecutor(max_workers=100) as pool:
        signed = list(pool.map(sign, range(100)))
    assert sorted(s.nonce for s in signed) == list(range(100))
    assert len({s.hash for s in signed}) == 100
    assert verify_audit_log(signer.audit_path, address=signer.address).ok


def test_kill_9_mid_burst_then_restart_neither_reuses_nor_skips_a_nonce(
    make_signer: Callable[..., SignerProcess], deployment: Deployment
) -> None:
    w3 = deployment.w3
    assert w3 is not None
    signer = make_signer()
    with signer.client() as client:
        start = client.sync_nonce(
            w3.eth.get_transaction_count(Web3.to_checksum_address(signer.address))
        )
    count = 60
    bodies = {f"burst-{i:03d}": create_subnet_tx(deployment, f"burst-{i}") for i in range(count)}
    answered: dict[str, SignedTransaction] = {}
    lock = threading.Lock()

    burst_client = SignerClient(signer.url, "tester", signer.secrets["tester"], attempts=1)

    def sign(key: str) -> None:
        try:
            result = burst_client.sign_transaction(bodies[key], key)
        except SignerUnavailable:
            return
        with lock:
            answered[key] = result

    def killer() -> None:
        while len(answered) < 15:
            time.sleep(0.002)
        signer.kill9()

    watcher = threading.Thread(target=killer)
    watcher.start()
    with burst_client, ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(sign, bodies))
    watcher.join()
    assert 15 <= len(answered) < count, "the kill should land in the middle of the burst"

    signer.start()  # same state directory, new port
    with signer.client() as client:
        retried = {key: client.sign_transaction(body, key) for key, body in bodies.items()}
        assert client.next_nonce() == start + count
    for key, first in answered.items():
        assert retried[key] == first  # the very same signed bytes
    nonces = sorted(s.nonce for s in retried.values())
    assert nonces == list(range(start, start + count))  # none reused, none skipped
    assert verify_audit_log(signer.audit_path, address=signer.address).ok

    # The chain agrees: every transaction mines, in nonce order, with no gap.
    by_nonce: dict[int, Any] = {s.nonce: s for s in retried.values()}
    for nonce in sorted(by_nonce):
        w3.eth.send_raw_transaction(by_nonce[nonce].raw_transaction)
    last = by_nonce[start + count - 1]
    receipt = w3.eth.wait_for_transaction_receipt(last.hash, timeout=60)
    assert receipt["status"] == 1
    assert w3.eth.get_transaction_count(Web3.to_checksum_address(signer.address)) == start + count
