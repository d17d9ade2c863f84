"""Private and plain prediction from the page, in real headless Chromium against a real stack.

A wallet user signs in, stakes, deposits and signs a cap through the page (as the tour does),
then predicts on two subnets that serve real bundles (Spector, breast cancer) with each CKKS
parameter set: node-seal encrypts in the page, the gateway evaluates, the page decrypts and
shows the probability. Each decrypted logit is checked against the model's own logit within the
set's bound; the page's request and response bytes and its encryption and decryption times are
written to ``test-artifacts/web/predict.json``. A ciphertext tampered on its way (Playwright
rewrites the request) gets the gateway's 4xx, and the page says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from eth_account import Account
from playwright.sync_api import Page, Route, expect
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from web_support import ARTIFACTS, MIN_STAKE_WEI, PRICE_WEI, PageOpener, WebStack, fund_steth

from contracts.tx import Transactor
from core.bundle import feature_schema_hash
from trainer.bundle import write_bundle

USER = 5
TIMEOUT_MS = 60_000
BOUNDS = {"compact": 2e-3, "precise": 1e-4, "plain": 1e-5}  # plain: ONNX LinearClassifier


class Model:
    def __init__(self, name: str, names: list[str], x: np.ndarray, coef: np.ndarray, b: float):
        self.name, self.names, self.x, self.coef, self.intercept = name, names, x, coef, b

    def logits(self, rows: np.ndarray) -> np.ndarray:
        return rows @ self.coef + self.intercept

    def card(self) -> dict[str, Any]:
        return {
            "format": "twopm-model-card/1",
            "model": "logistic_regression",
            "job_name": f"{self.name} (web tests)",
            "feature_names": self.names,
            "label": "y",
            "feature_schema_sha256": feature_schema_hash(self.names, "y"),
            "coef": [float(c) for c in self.coef],
            "coefficients": dict(zip(self.names, map(float, self.coef), strict=True)),
            "intercept": float(self.intercept),
            "standardisation": {
                "mean": [float(v) for v in self.x.mean(axis=0)],
                "scale": [float(v) for v in self.x.std(axis=0)],
                "folded_into_coefficients": True,
            },
        }


def _fit(name: str, names: list[str], x: np.ndarray, y: np.ndarray) -> Model:
    mean, scale = x.mean(axis=0), x.std(axis=0)
    lr = LogisticRegression(max_iter=5000).fit((x - mean) / scale, y)
    coef = lr.coef_[0] / scale
    return Model(name, names, x, coef, float(lr.intercept_[0] - coef @ mean))


def _models() -> list[Model]:
    from statsmodels.datasets import spector

    data = spector.load_pandas()
    sx = data.exog[["GPA", "TUCE", "PSI"]].to_numpy(dtype=np.float64)
    bc = load_breast_cancer()
    names = [str(n).replace(" ", "_") for n in bc.feature_names]
    return [
        _fit("spector", ["GPA", "TUCE", "PSI"], sx, data.endog.to_numpy()),
        _fit("breast-cancer", names, bc.data.astype(np.float64), bc.target),
    ]


@pytest.fixture(scope="module")
def served(stack: WebStack) -> dict[str, tuple[int, Model]]:
    """Two subnets whose models the gateway loads from its store (as published on chain)."""
    assert stack.model_store is not None
    owner = Transactor(stack.anvil.w3, stack.anvil.accounts[0].private_key)
    registry = stack.deployment.contract("SubnetRegistry")
    out = {}
    for model in _models():
        bundle = write_bundle(model.card(), stack.model_store)
        owner.transact(registry.functions.createSubnet(model.name, PRICE_WEI, MIN_STAKE_WEI, 1000))
        subnet_id = int(registry.functions.subnetCount().call())
        owner.transact(
            registry.functions.publishModel(
                subnet_id, bytes.fromhex(bundle.sha256), bundle.path.as_uri(),
                bytes.fromhex(feature_schema_hash(model.names, "y").removeprefix("0x")),
                b"\x02" * 32, [Account.create().address], [10_000],
            )
        )  # fmt: skip
        out[model.name] = (subnet_id, model)
    return out


@pytest.fixture(scope="module")
def page(stack: WebStack, served: dict[str, tuple[int, Model]], browser: Any) -> Iterator[Page]:
    """A page signed in as USER, with stake, credit and a cap made through the page itself."""
    fund_steth(stack, USER, 2 * 10**18)
    opener = PageOpener(browser, stack)
    pg, _ = opener.open(USER)
    pg.click("#connect")
    expect(pg.locator("#signin")).to_be_enabled()
    pg.click("#signin")
    expect(pg.locator("#screen-account")).to_be_visible(timeout=TIMEOUT_MS)
    pg.click("#tabs a[data-screen=stake]")
    expect(pg.locator("#token-balance")).to_contain_text(" stETH", timeout=TIMEOUT_MS)
    pg.fill("#stake-amount", "1")
    pg.click("#stake-button")
    expect(pg.locator("#notice")).to_contain_text("Stake 1 stETH: done", timeout=TIMEOUT_MS)
    pg.click("#tabs a[data-screen=credit]")
    pg.fill("#deposit-amount", "0.1")
    pg.click("#deposit-button")
    expect(pg.locator("#notice")).to_contain_text("Deposit 0.1 ETH: done", timeout=TIMEOUT_MS)
    pg.fill("#cap-amount", "0.05")
    pg.fill("#cap-days", "30")
    pg.click("#cap-button")
    expect(pg.locator("#notice")).to_contain_text("Spending cap", timeout=TIMEOUT_MS)
    yield pg
    opener.close()


def _choose(page: Page, subnet_id: int, mode: str) -> None:
    page.click("#tabs a[data-screen=predict]")
    expect(page.locator(f"#predict-subnet option[value='{subnet_id}']")).to_have_count(
        1, timeout=TIMEOUT_MS
    )
    page.select_option("#predict-subnet", str(subnet_id))
    page.select_option("#predict-mode", mode)


def _fill(page: Page, model: Model, row: np.ndarray) -> None:
    for name, value in zip(model.names, row, strict=True):
        page.fill(f"#predict-fields input[data-feature='{name}']", repr(float(value)))


def _click(page: Page, button: str) -> None:
    """Clear the previous results and notice (so a wait cannot see stale ones), then click."""
    page.evaluate(
        "() => { document.getElementById('predict-results-body').replaceChildren();"
        " document.getElementById('notice').textContent = ''; }"
    )
    page.click(button)


def _results(page: Page, n: int) -> list[float]:
    rows = page.locator("#predict-results-body tr")
    expect(rows).to_have_count(n, timeout=TIMEOUT_MS)
    expect(page.locator("#notice")).to_contain_text(f"Predicted {n} row(s).", timeout=TIMEOUT_MS)
    return [float(rows.nth(i).get_attribute("data-logit") or "nan") for i in range(n)]


def _stats(page: Page) -> dict[str, float]:
    stats = page.locator("#predict-stats")
    return {
        k: float(stats.get_attribute(f"data-{k}") or "nan")
        for k in ("up-bytes", "down-bytes", "encrypt-ms", "decrypt-ms")
    }


MEASURED: dict[str, Any] = {}


@pytest.mark.parametrize("mode", ["compact", "precise", "plain"])
@pytest.mark.parametrize("name", ["spector", "breast-cancer"])
def test_a_row_from_the_form_is_predicted_within_the_sets_bound(
    page: Page, served: dict[str, tuple[int, Model]], name: str, mode: str
) -> None:
    subnet_id, model = served[name]
    _choose(page, subnet_id, mode)
    row = model.x[3]
    _fill(page, model, row)
    _click(page, "#predict-button")
    (logit,) = _results(page, 1)
    expected = float(model.logits(row[None, :])[0])
    assert abs(logit - expected) <= BOUNDS[mode], (logit, expected)
    probability = float(
        page.locator("#predict-results-body tr").first.get_attribute("data-probability") or 0
    )
    assert abs(probability - 1 / (1 + np.exp(-expected))) <= 1e-3
    stats = _stats(page)
    if mode == "compact":
        assert stats["up-bytes"] <= 16_000 and stats["down-bytes"] <= 16_000
    if mode != "plain":
        assert "private" in page.locator("#predict-results-body tr td").nth(3).inner_text()
    MEASURED[f"{name}/{mode}"] = {"abs_logit_error": abs(logit - expected), **stats}
    _write_measurements()


def test_a_csv_batch_is_predicted_privately(
    page: Page, served: dict[str, tuple[int, Model]], tmp_path: Any
) -> None:
    subnet_id, model = served["breast-cancer"]
    _choose(page, subnet_id, "compact")
    rows = model.x[10:30]
    order = list(reversed(model.names))  # columns in any order
    lines = [",".join(order)] + [
        ",".join(repr(float(r[model.names.index(n)])) for n in order) for r in rows
    ]
    page.set_input_files(
        "#predict-csv",
        files=[{"name": "rows.csv", "mimeType": "text/csv", "buffer": "\n".join(lines).encode()}],
    )
    _click(page, "#predict-csv-button")
    logits = _results(page, 20)
    error = np.abs(np.asarray(logits) - model.logits(rows))
    assert error.max() <= BOUNDS["compact"]
    stats = _stats(page)
    MEASURED["breast-cancer/compact/csv-20-rows"] = {
        "max_abs_logit_error": float(error.max()),
        **stats,
    }
    _write_measurements()
    page.screenshot(path=str(ARTIFACTS / "predict.png"), full_page=True)  # for a person to look at


def test_the_form_refuses_a_missing_value_and_a_row_far_from_the_training_data(
    page: Page, served: dict[str, tuple[int, Model]]
) -> None:
    subnet_id, model = served["spector"]
    _choose(page, subnet_id, "compact")
    _fill(page, model, model.x[0])
    page.fill("#predict-fields input[data-feature='TUCE']", "")
    page.click("#predict-button")
    expect(page.locator("#error")).to_contain_text("Enter a number for: TUCE", timeout=TIMEOUT_MS)
    expect(page.locator("#predict-fields input[data-feature='TUCE']")).to_have_attribute(
        "aria-invalid", "true"
    )
    page.fill("#predict-fields input[data-feature='TUCE']", "1e6")
    page.click("#predict-button")
    expect(page.locator("#error")).to_contain_text("standard deviations", timeout=TIMEOUT_MS)


def _tamper(kind: str) -> Callable[[Route], None]:
    def handle(route: Route) -> None:
        body = bytearray(route.request.post_data_buffer or b"")
        ct = 20 + 4  # header, one length: the first ciphertext starts here
        if kind == "version":
            body[ct + 4] = 2  # SEAL 4.2
        else:
            body[ct + 40] ^= 0xFF  # inside the zstd stream
        route.continue_(post_data=bytes(body))

    return handle


@pytest.mark.parametrize(
    ("kind", "says"), [("version", "he-seal-version"), ("bytes", "he-rejected")]
)
def test_a_tampered_ciphertext_gets_the_gateways_4xx_and_the_page_says_so(
    page: Page, served: dict[str, tuple[int, Model]], kind: str, says: str
) -> None:
    subnet_id, model = served["breast-cancer"]
    _choose(page, subnet_id, "compact")
    _fill(page, model, model.x[0])
    page.route("**/infer", _tamper(kind))
    try:
        page.click("#predict-button")
        error = page.locator("#error")
        expect(error).to_contain_text(
            "The gateway refused the encrypted request (422", timeout=TIMEOUT_MS
        )
        expect(error).to_contain_text(says)
    finally:
        page.unroute("**/infer")
    _click(page, "#predict-button")  # untampered, the same row goes through
    _results(page, 1)
    expect(page.locator("#error")).to_be_hidden()


def _write_measurements() -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "predict.json").write_text(json.dumps(MEASURED, indent=2) + "\n")
