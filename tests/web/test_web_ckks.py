"""node-seal (SEAL 4.1, WebAssembly) in real headless Chromium against the gateway's evaluator (4.3).

The ciphertexts are made in the browser by the page's own module (``/app/ckks.js``, node-seal
served by the gateway under ``/app/vendor/node-seal/``), evaluated by the gateway's kernel, and
decrypted in the browser again: the SEAL version difference crosses in both directions.
Node 20 cannot run node-seal 7, hence Chromium.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, sync_playwright
from service_support import serve
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from web_support import CHROMIUM, CHROMIUM_ARGS

from ckks import (
    DEFAULT_PARAMS,
    PARAM_SETS,
    SealVersionUnsupported,
    parse_request,
    parse_response,
    seal_minor_version,
)
from gateway import GatewaySettings, create_app
from gateway.he import HeEvaluator, LinearModel

BOUNDS = {"compact": 2e-3, "precise": 1e-4}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = GatewaySettings(
        public_url="https://gw.test",
        queue_path=tmp_path_factory.mktemp("ckks-web") / "receipts.sqlite3",
        recorder_enabled=False,
    )
    with serve(create_app(settings), start_timeout_s=20) as base:
        yield base


@pytest.fixture(scope="module")
def page(url: str) -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(url + "/app/")  # the page's origin and its CSP
        pg.wait_for_selector("body[data-ready]")
        yield pg
        browser.close()
        assert not errors, errors


@pytest.fixture(scope="module")
def model() -> tuple[np.ndarray, LinearModel, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    lr = LogisticRegression(max_iter=5000).fit((x - mean) / scale, y)
    w = lr.coef_[0] / scale
    b = float(lr.intercept_[0] - w @ mean)
    return x, LinearModel.from_arrays(w, b, mean, scale), x @ w + b


def test_node_seal_and_its_webassembly_are_served_offline_under_app(url: str) -> None:
    js = httpx.get(url + "/app/vendor/node-seal/index_throws.js")
    wasm = httpx.get(url + "/app/vendor/node-seal/seal_throws.wasm")
    assert js.status_code == 200 and wasm.status_code == 200
    assert wasm.content[:4] == b"\0asm"
    assert wasm.headers["content-type"] == "application/wasm"
    csp = httpx.get(url + "/app/").headers["content-security-policy"]
    assert "'wasm-unsafe-eval'" in csp and "'unsafe-eval'" not in csp


def _browser_encrypt(page: Page, set_json: dict, z_rows: list[list[float]]) -> dict:
    return page.evaluate(
        """async ([set, rows]) => {
          const ckks = await import('/app/ckks.js');
          const seal = await ckks.loadSeal();
          window.__keys = window.__keys || {};
          const keys = window.__keys[set.name] || (window.__keys[set.name] = new ckks.SetKeys(seal, set));
          const t0 = performance.now();
          const body = keys.encrypt(rows.map((r) => Float64Array.from(r)));
          const ms = performance.now() - t0;
          return { body: Array.from(body), ms };
        }""",
        [set_json, z_rows],
    )


def _browser_decrypt(page: Page, name: str, response: bytes) -> dict:
    return page.evaluate(
        """async ([name, bytes]) => {
          const keys = window.__keys[name];
          const t0 = performance.now();
          try {
            const logits = keys.decrypt(Uint8Array.from(bytes));
            return { logits, ms: performance.now() - t0 };
          } catch (err) {
            const ckks = await import('/app/ckks.js');
            return { error: ckks.sealMessage(err) };
          }
        }""",
        [name, list(response)],
    )


@pytest.mark.parametrize("name", ["compact", "precise"])
def test_rows_encrypted_in_chromium_are_evaluated_by_the_gateway_and_decrypted_there(
    page: Page, model: tuple[np.ndarray, LinearModel, np.ndarray], name: str
) -> None:
    x, linear, exact = model
    affine = linear.affine()
    pset = PARAM_SETS[name]
    set_json = pset.to_dict()
    evaluator = HeEvaluator(DEFAULT_PARAMS)
    rows = list(range(0, 569, 19))  # 30 rows
    z = affine.standardise(x[rows])
    made = _browser_encrypt(page, set_json, z.tolist())
    request = bytes(made["body"])
    frame = parse_request(request, DEFAULT_PARAMS)
    assert frame.param_set == pset.set_id and frame.n_rows == len(rows)
    assert {seal_minor_version(c) for c in frame.ciphertexts} == {1}  # node-seal writes 4.1
    up = [len(c) for c in frame.ciphertexts]
    started = time.perf_counter()
    answer = evaluator.evaluate(request, linear)
    server_ms = (time.perf_counter() - started) * 1e3
    out = parse_response(answer.response)
    assert {seal_minor_version(c) for c in out.ciphertexts} == {1}  # answered in 4.1
    down = [len(c) for c in out.ciphertexts]
    got = _browser_decrypt(page, name, answer.response)
    assert "error" not in got, got
    error = np.abs(np.asarray(got["logits"]) - exact[rows])
    assert error.max() <= BOUNDS[name], error.max()
    if name == "compact":
        assert max(up) <= 16_000 and max(down) <= 16_000
    report = {
        "set": name,
        "rows": len(rows),
        "max_abs_logit_error": float(error.max()),
        "median_abs_logit_error": float(np.median(error)),
        "up_bytes_per_row": [min(up), max(up)],
        "down_bytes_per_row": [min(down), max(down)],
        "browser_encrypt_ms_per_row": made["ms"] / len(rows),
        "browser_decrypt_ms_per_row": got["ms"] / len(rows),
        "gateway_ms_per_row": server_ms / len(rows),
    }
    print(json.dumps(report))
    out_dir = Path("test-artifacts") / "web"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"ckks-{name}.json").write_text(json.dumps(report, indent=2) + "\n")


def test_the_gateway_refuses_a_ciphertext_node_seal_made_for_another_version(
    page: Page, model: tuple[np.ndarray, LinearModel, np.ndarray]
) -> None:
    _, linear, _ = model
    made = _browser_encrypt(page, PARAM_SETS["compact"].to_dict(), [[0.0] * 30])
    request = bytearray(made["body"])
    header = 20 + 4  # request header, one length
    request[header + 4] = 2  # the ciphertext's outer header now says SEAL 4.2
    with pytest.raises(SealVersionUnsupported):
        HeEvaluator(DEFAULT_PARAMS).evaluate(bytes(request), linear)


def test_node_seal_refuses_a_tampered_answer_and_the_page_gets_seals_message(
    page: Page, model: tuple[np.ndarray, LinearModel, np.ndarray]
) -> None:
    _, linear, _ = model
    made = _browser_encrypt(page, PARAM_SETS["compact"].to_dict(), [[0.0] * 30])
    answer = bytearray(HeEvaluator(DEFAULT_PARAMS).evaluate(bytes(made["body"]), linear).response)
    answer[16 + 4 + 16 + 20] ^= 0xFF  # inside the zstd stream of the one ciphertext
    got = _browser_decrypt(page, "compact", bytes(answer))
    assert got.get("error")
