"""How often one gateway process asks the chain for its head block, idle, over a fixed interval.

    .venv/bin/python -m bench.gateway.head_polls [--seconds 20] [--label after]

A real anvil with the contracts and one published subnet; the gateway (recorder off, so only
the followers poll) in its own process talks to anvil through a recording JSON-RPC proxy
(``bench._rpc_proxy``). After a warm-up the proxy's counts are reset and read again
``--seconds`` later: ``eth_blockNumber`` and ``eth_getLogs`` per second at the default
``event_poll_interval_s`` (1 s).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._gateway import gateway_env, server_peak_rss_mib, setup_chain, start_gateway
from bench._report import peak_rss_mib, write_report
from bench._rpc_proxy import RecordingRpcProxy
from contracts.chain import Anvil

WARM_UP_S = 5.0
"""Seconds after start before counting (the follower's first full read is not counted)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="counting interval")
    parser.add_argument("--label", default="current", help="row label (e.g. before, after)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "head_polls.json")
    args = parser.parse_args()
    with (
        Anvil.start() as chain,
        RecordingRpcProxy(chain.rpc_url) as proxy,
        tempfile.TemporaryDirectory() as tmp,
    ):
        addresses, _, _ = setup_chain(chain)
        env = gateway_env(chain, addresses, RPC_URL=proxy.url)
        proc, _ = start_gateway(env, Path(tmp) / "gateway.log")
        try:
            time.sleep(WARM_UP_S)
            proxy.reset()
            time.sleep(args.seconds)
            counts = proxy.snapshot()
            server_rss = server_peak_rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)
    rows: list[dict[str, Any]] = [
        {
            "label": args.label,
            "seconds": args.seconds,
            "eth_blockNumber": counts.get("eth_blockNumber", 0),
            "eth_blockNumber_per_s": counts.get("eth_blockNumber", 0) / args.seconds,
            "eth_getLogs": counts.get("eth_getLogs", 0),
            "all_calls": sum(counts.values()),
            "gateway_peak_rss_mib": server_rss,
            "bench_peak_rss_mib": peak_rss_mib(),
        }
    ]
    write_report("gateway head-block polls (idle, one process)", rows, args.out, notes=counts)


if __name__ == "__main__":
    main()
