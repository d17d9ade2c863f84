"""bench/inference: the gateway's inference routes over HTTP against the same work in process.

One run on a real anvil with a real breast-cancer bundle (30 features, 569 rows): each route
is timed end to end from an httpx client on loopback (authentication, stake gate, credit
reservation, durable receipt, worker process for CKKS) and set beside the same model work
done in this process with no gateway (onnxruntime for plaintext, ``HeEvaluator`` for CKKS),
so the ratio is the gateway's cost around the model. Client-side encryption and
decryption are outside both timings. Times are the best of ``--reps`` (the least disturbed
on a shared machine); peak RSS is this process's (the gateway runs in a thread here; its CKKS
workers are separate processes). Writes ``bench/inference/results.json`` and prints a table.

    .venv/bin/python -m bench.inference.run [--reps N] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from bench._report import peak_rss_mib, write_report
from ckks import DEFAULT_PARAMS, ClientContext, Layout
from clients.sdk import ChainClient, GatewayClient, Wallet
from contracts import Anvil, Transactor, deploy_all
from core.protocol import CONTEXT_HEADER, SESSION_COOKIE
from gateway import GatewaySettings, create_app
from gateway._onnx import load_model
from gateway.he import HeEvaluator
from trainer.bundle import write_bundle

PRICE_WEI = 10**9
ETH = 10**18


def best_s(fn: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def breast_cancer_card() -> tuple[dict[str, Any], np.ndarray]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    data = load_breast_cancer()
    x = np.asarray(data.data, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    lr = LogisticRegression(max_iter=5000).fit((x - mean) / scale, data.target)
    coef = lr.coef_[0] / scale
    intercept = float(lr.intercept_[0] - np.sum(lr.coef_[0] * mean / scale))
    names = [str(n) for n in data.feature_names]
    card = {"feature_names": names, "coef": coef.tolist(), "intercept": intercept, "label": "y"}
    return card, x


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()

    card, x = breast_cancer_card()
    with tempfile.TemporaryDirectory() as tmp, Anvil.start() as anvil:
        store = Path(tmp) / "store"
        bundle = write_bundle(card, store)
        deployment = deploy_all(
            anvil.w3, anvil.accounts[0].private_key, operator=anvil.accounts[1].address
        )
        owner = Transactor(anvil.w3, anvil.accounts[0].private_key)
        registry = deployment.contract("SubnetRegistry")
        owner.transact(registry.functions.createSubnet("bench", PRICE_WEI, ETH, 1000))
        owner.transact(
            registry.functions.publishModel(
                1, bytes.fromhex(bundle.sha256), bundle.path.as_uri(), b"\x01" * 32,
                b"\x02" * 32, [anvil.accounts[5].address], [10_000],
            )
        )  # fmt: skip
        wallet = Wallet.create()
        anvil.w3.provider.make_request("anvil_setBalance", [wallet.address, hex(10 * ETH)])  # type: ignore[arg-type]
        chain = ChainClient.connect(anvil.rpc_url, deployment.addresses, wallet)
        Transactor(anvil.w3, wallet._private_key_hex()).transact(
            deployment.contract("MockRETH").functions.mint(wallet.address, 10 * ETH)
        )
        chain.stake("rETH", 10 * ETH)  # the gold tier: 500 requests/s
        chain.deposit(ETH)
        chain.authorize_spending(chain.sign_spending_authorization(ETH))
        settings = GatewaySettings(
            public_url="https://gw.bench",
            rpc_url=anvil.rpc_url,
            contracts=dict(deployment.addresses),
            queue_path=Path(tmp) / "receipts.sqlite3",
            recorder_enabled=False,
            settle_interval_s=0,
            model_store=store,
            he_workers=2,
        )
        with serve(create_app(settings)) as url:
            with GatewayClient(url) as gw:
                token = gw.sign_in(wallet)
            rows = run(url, token, x, bundle.path, bundle.sha256, args.reps)
    write_report(
        "bench/inference: gateway routes over HTTP vs the same model work in process",
        rows,
        args.out,
        notes={
            "reps": args.reps,
            "timing": "best of reps, wall clock; client encryption/decryption excluded",
            "load_average": os.getloadavg(),
            "model": "breast cancer, 30 raw features, 569 rows",
        },
    )


def run(
    url: str, token: str, x: np.ndarray, bundle_dir: Path, sha256: str, reps: int
) -> list[dict[str, Any]]:
    model = load_model(bundle_dir, "0x" + sha256)
    names = model.feature_names
    evaluator = HeEvaluator(DEFAULT_PARAMS)
    column = ClientContext.create(DEFAULT_PARAMS, layout=Layout.COLUMN)
    coeff = ClientContext.create(DEFAULT_PARAMS, layout=Layout.COEFF)
    row = ClientContext.create(DEFAULT_PARAMS, layout=Layout.ROW, n_features=30)
    evaluator.add_context(row.public_bytes())
    headers = {"Cookie": f"{SESSION_COOKIE}={token}"}
    binary = {**headers, "Content-Type": "application/octet-stream"}
    out: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=120) as http:
        r = http.post("/v1/he/contexts", content=row.public_bytes(), headers=binary)
        r.raise_for_status()

        def case(
            name: str, n_rows: int, over_http: Callable[[], Any], local: Callable[[], Any]
        ) -> None:
            over_http()  # warm: model load, worker start, context cached
            local()
            http_s = best_s(over_http, reps)
            local_s = best_s(local, reps)
            out.append(
                {
                    "case": name,
                    "rows": n_rows,
                    "http_ms": http_s * 1e3,
                    "in_process_ms": local_s * 1e3,
                    "ratio": http_s / local_s,
                    "http_us_per_row": http_s * 1e6 / n_rows,
                    "peak_rss_mib": peak_rss_mib(),
                }
            )

        def predict(n: int) -> Callable[[], Any]:
            body = json.dumps(
                {"rows": [dict(zip(names, map(float, r), strict=True)) for r in x[:n]]}
            ).encode()  # encoded once: the client's JSON work is not the gateway's
            plain = {**headers, "Content-Type": "application/json"}

            def go() -> None:
                r = http.post("/v1/subnets/1/predict", content=body, headers=plain)
                r.raise_for_status()

            return go

        def infer(frame: bytes, context_id: str | None = None) -> Callable[[], Any]:
            extra = {CONTEXT_HEADER: context_id} if context_id else {}

            def go() -> None:
                r = http.post("/v1/subnets/1/infer", content=frame, headers={**binary, **extra})
                r.raise_for_status()

            return go

        case("plaintext predict", 1, predict(1), lambda: model.predict(x[:1]))
        case("plaintext predict", len(x), predict(len(x)), lambda: model.predict(x))
        frame = column.encrypt(x, Layout.COLUMN)
        case(
            "encrypted column",
            len(x),
            infer(frame),
            lambda: evaluator.evaluate(frame, model.linear),
        )
        frame = coeff.encrypt(x[:1], Layout.COEFF)
        case("encrypted coeff", 1, infer(frame), lambda: evaluator.evaluate(frame, model.linear))
        frame = row.encrypt(x[:1], Layout.ROW)
        case(
            "encrypted row",
            1,
            infer(frame, row.context_id),
            lambda: evaluator.evaluate(frame, model.linear, context_id=row.context_id),
        )
    return out


if __name__ == "__main__":
    main()
