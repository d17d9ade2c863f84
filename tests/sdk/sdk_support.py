"""Support for the SDK's gateway tests: a real signer process, a real gateway on loopback.

The encrypted-inference routes below stand in for the gateway's own until they land
(issue 5): they follow the shapes in DESIGN.md and the SDK's wire constants, evaluate with
the real ``gateway.he.HeEvaluator`` and bill through the gateway's real billing guard.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from litestar import Litestar, Request, Response, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from clients.ckks import CkksError, parse_request, sigmoid
from contracts import Deployment
from gateway._auth import Caller
from gateway.app import _caller
from gateway.he import (
    ContextNotCached,
    HeEvaluator,
    LinearModel,
    PublicContextNotFound,
    translate,
)
from signer import Limits, policy_for_deployment
from signer._auth import add_caller
from signer._keystore import write_keystore

PASSWORD = "sdk tests password"
PUBLIC_URL = "https://gw.test"


@dataclass
class SignerProcess:
    url: str
    secret_hex: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_signer(root: Path, deployment: Deployment, operator_key: str) -> SignerProcess:
    """Run ``python -m signer serve`` with the operator key in a fresh keystore."""
    state = root / "signer"
    state.mkdir(mode=0o700)
    write_keystore(
        state / "keystore.json", bytes.fromhex(operator_key.removeprefix("0x")), PASSWORD
    )
    (state / "keystore.json").chmod(0o600)
    password = root / "password"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    limits = Limits(
        max_value_per_tx_wei=0,
        max_value_per_window_wei=0,
        value_window_s=3600,
        max_gas_per_tx=5_000_000,
        max_fee_per_gas_wei=100 * 10**9,
        max_tx_per_hour=100_000,
    )
    (state / "policy.toml").write_text(
        policy_for_deployment(deployment.addresses, chain_id=deployment.chain_id, limits=limits)
    )
    secret = add_caller(state / "callers.json", "gateway")
    ready = state / "ready.json"
    argv = [
        sys.executable, "-m", "signer", "serve", "--state-dir", str(state),
        "--password-file", str(password), "--port", "0", "--ready-file", str(ready),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWOPM_")}
    with (state / "serve.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError((state / "serve.log").read_text()[-2000:])
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    return SignerProcess(info["url"], secret.hex(), proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(app: Litestar) -> Iterator[str]:
    """Run ``app`` on uvicorn in a thread on a free loopback port; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def he_routes(evaluator: HeEvaluator, model: LinearModel) -> list[Any]:
    """Stand-ins for ``/v1/he/contexts``, ``/v1/subnets/{id}/infer`` and ``/predict``.

    The plaintext stand-in reads the features in sorted name order (the tests name them so).
    """

    @post("/v1/he/contexts", status_code=201, dependencies={"caller": Provide(_caller)})
    async def upload_context(
        request: Request[Any, Any, Any], caller: NamedDependency[Caller]
    ) -> dict[str, Any]:
        try:
            loaded = evaluator.add_context(await request.body())
        except CkksError as exc:
            raise translate(exc) from exc
        return {"context_id": loaded.info.context_id, "layout": loaded.info.layout.label}

    @post(
        "/v1/subnets/{subnet_id:int}/infer",
        status_code=200,
        dependencies={"caller": Provide(_caller)},
    )
    async def infer(
        request: Request[Any, Any, Any], caller: NamedDependency[Caller], subnet_id: FromPath[int]
    ) -> Response[bytes]:
        body = await request.body()
        billing = request.app.state.services.need_billing()
        try:
            frame = parse_request(body, evaluator.params)
        except CkksError as exc:
            raise translate(exc) from exc
        async with billing.billed(caller, subnet_id, rows=frame.n_rows) as charge:
            try:
                evaluation = evaluator.evaluate(
                    body, model, context_id=request.headers.get("x-context-id")
                )
            except ContextNotCached as exc:
                raise PublicContextNotFound("public context unknown or expired") from exc
            except CkksError as exc:
                raise translate(exc) from exc
            receipt = await charge.complete(body, evaluation.response)
        return Response(
            evaluation.response,
            media_type="application/octet-stream",
            headers={"X-Receipt-Id": receipt.receipt_id},
        )

    @post(
        "/v1/subnets/{subnet_id:int}/predict",
        status_code=200,
        dependencies={"caller": Provide(_caller)},
    )
    async def predict(
        request: Request[Any, Any, Any], caller: NamedDependency[Caller], subnet_id: FromPath[int]
    ) -> Response[dict[str, Any]]:
        body = await request.body()
        rows = json.loads(body)["rows"]
        names = [f"f{i}" for i in range(model.n_features)] if not rows else list(rows[0])
        x = np.array([[float(r[n]) for n in sorted(names)] for r in rows])
        logits = x @ np.asarray(model.weights) + model.intercept
        billing = request.app.state.services.need_billing()
        answer = {"probabilities": sigmoid(logits).tolist(), "logits": logits.tolist()}
        async with billing.billed(caller, subnet_id, rows=len(rows)) as charge:
            receipt = await charge.complete(body, json.dumps(answer).encode())
        return Response(answer, headers={"X-Receipt-Id": receipt.receipt_id})

    return [upload_context, infer, predict]


def wait_until(predicate: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)
