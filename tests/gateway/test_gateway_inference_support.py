"""Shared helpers of the inference and model-follower suites (no tests here).

Real bundles (``trainer.bundle.write_bundle``) from pooled fits on the Spector data
(statsmodels' maximum-likelihood ``Logit``) and the breast-cancer data (scikit-learn),
published on the real anvil, served by a real gateway on loopback.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from eth_account import Account
from gateway_support import sign_in

from contracts.deploy import Deployment
from contracts.tx import Transactor
from trainer.bundle import WrittenBundle, feature_schema_hash, write_bundle

PRICE_WEI = 10**12
MIN_STAKE_WEI = 10**18


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    feature_names: tuple[str, ...]
    x: npt.NDArray[np.float64]  # raw units, (n_rows, n_features)
    coef: npt.NDArray[np.float64]  # raw units
    intercept: float

    def card(self, **changes: Any) -> dict[str, Any]:
        """A minimal model card ``write_bundle``/``load_bundle`` accept."""
        card = {
            "format": "twopm-model-card/1",
            "model": "logistic_regression",
            "job_name": f"{self.name} (pooled fit, tests)",
            "feature_names": list(self.feature_names),
            "label": self.label,
            "feature_schema_sha256": feature_schema_hash(list(self.feature_names), self.label),
            "coef": [float(c) for c in self.coef],
            "coefficients": dict(zip(self.feature_names, map(float, self.coef), strict=True)),
            "intercept": float(self.intercept),
            "standardisation": {
                "mean": [float(v) for v in self.x.mean(axis=0)],
                "scale": [float(v) for v in self.x.std(axis=0)],
                "folded_into_coefficients": True,
            },
        }
        card.update(changes)
        return card

    def rows(self, start: int = 0, stop: int | None = None) -> list[dict[str, float]]:
        return [
            dict(zip(self.feature_names, map(float, r), strict=True)) for r in self.x[start:stop]
        ]


@functools.cache
def spector() -> Dataset:
    """Spector & Mazzeo: 32 rows, GPA, TUCE, PSI -> GRADE; statsmodels' pooled MLE."""
    import statsmodels.api as sm
    from statsmodels.datasets import spector as spector_data

    data = spector_data.load_pandas()
    names = ("GPA", "TUCE", "PSI")
    x = data.exog[list(names)].to_numpy(dtype=np.float64)
    y = data.endog.to_numpy(dtype=np.float64)
    fit = sm.Logit(y, sm.add_constant(x)).fit(disp=0)
    params = np.asarray(fit.params, dtype=np.float64)
    return Dataset("spector", "GRADE", names, x, params[1:], float(params[0]))


@functools.cache
def breast_cancer() -> Dataset:
    """Wisconsin breast cancer: 569 rows x 30 raw features; fit on standardised features,
    coefficients folded back to raw units (as the trainer does)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    data = load_breast_cancer()
    x = np.asarray(data.data, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    lr = LogisticRegression(max_iter=5000).fit((x - mean) / scale, data.target)
    coef = lr.coef_[0] / scale
    intercept = float(lr.intercept_[0] - np.sum(lr.coef_[0] * mean / scale))
    names = tuple(str(n) for n in data.feature_names)
    return Dataset("breast_cancer", "benign", names, x, coef, intercept)


def onnx_logits(bundle_dir: Path, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The bundle's ONNX graph run by onnxruntime here, its raw scores exposed (the logits)."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load_from_string((bundle_dir / "model.onnx").read_bytes())
    graph.graph.output.append(
        onnx.helper.make_tensor_value_info("raw_scores", onnx.TensorProto.DOUBLE, None)
    )
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    (scores,) = session.run(["raw_scores"], {"x": x})
    return np.asarray(scores, dtype=np.float64)[:, 1]


def write(dataset: Dataset, store: Path, **card_changes: Any) -> WrittenBundle:
    return write_bundle(dataset.card(**card_changes), store)


def tamper(bundle: WrittenBundle, store: Path, **card_changes: Any) -> WrittenBundle:
    """A self-consistent bundle whose card says other coefficients than its ONNX graph."""
    card = json.loads((bundle.path / "card.json").read_text())
    card.update(card_changes)
    files = {
        "card.json": json.dumps(card, indent=2, sort_keys=True).encode() + b"\n",
        "model.onnx": (bundle.path / "model.onnx").read_bytes(),
    }
    manifest = json.dumps(
        {
            "files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()},
            "format": "twopm-bundle/1",
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    digest = hashlib.sha256(manifest).hexdigest()
    target = store / digest
    target.mkdir(parents=True, exist_ok=True)
    for name, data in {**files, "manifest.json": manifest}.items():
        (target / name).write_bytes(data)
    return WrittenBundle(target, digest)


class Publisher:
    """Creates subnets and publishes model versions as the subnet owner (dev account 0)."""

    def __init__(self, w3: Any, deployment: Deployment, owner_key: str) -> None:
        self.tx = Transactor(w3, owner_key)
        self.registry = deployment.contract("SubnetRegistry")

    def create(
        self, name: str, price_wei: int = PRICE_WEI, min_stake_wei: int = MIN_STAKE_WEI
    ) -> int:
        self.tx.transact(self.registry.functions.createSubnet(name, price_wei, min_stake_wei, 1000))
        return int(self.registry.functions.subnetCount().call())

    def publish(
        self, subnet_id: int, model_hash_hex: str, uri: str, schema: str | None = None
    ) -> int:
        schema_bytes = bytes.fromhex(schema) if schema else b"\x01" * 32
        self.tx.transact(
            self.registry.functions.publishModel(
                subnet_id, bytes.fromhex(model_hash_hex.removeprefix("0x")), uri, schema_bytes,
                b"\x02" * 32, [Account.create().address], [10_000],
            )
        )  # fmt: skip
        return int(self.registry.functions.subnetOf(subnet_id).call()[2])


def wait_for(
    client: httpx.Client,
    subnet_id: int,
    predicate: Callable[[dict[str, Any]], bool],
    timeout_s: float = 30,
) -> dict[str, Any]:
    """Poll ``GET /v1/subnets/{id}`` until ``predicate`` holds; return that body."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = client.get(f"/v1/subnets/{subnet_id}").json()
        if predicate(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"subnet {subnet_id} never reached the state: {body}")
        time.sleep(0.1)


def session_for(url: str, private_key: str) -> dict[str, str]:
    """Sign in with Ethereum; headers carrying the session cookie (sent by hand on plain HTTP)."""
    with httpx.Client(base_url=url, timeout=30) as c:
        token = sign_in(c, private_key)
    return {"Cookie": f"twopm_session={token}"}


@contextlib.contextmanager
def static_server(root: Path) -> Iterator[str]:
    """Serve ``root`` over plain HTTP on loopback; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """Assert an RFC 9457 problem of this status and type; return its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug), body
    assert body["status"] == status
    return body
