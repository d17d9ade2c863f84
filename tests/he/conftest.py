"""Fixtures for the encrypted-inference suite: fitted models, client keys, an evaluator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ckks import DEFAULT_PARAMS, ClientContext, Layout
from gateway.he import HeEvaluator, LinearModel


@dataclass(frozen=True)
class Fitted:
    name: str
    x: npt.NDArray[np.float64]
    model: LinearModel
    logits: npt.NDArray[np.float64]


def _fit(name: str, x: npt.NDArray[np.float64], y: npt.NDArray[np.int64]) -> Fitted:
    lr = LogisticRegression(max_iter=5000).fit(x, y)
    model = LinearModel.from_arrays(lr.coef_[0], lr.intercept_[0])
    logits = lr.decision_function(x)
    np.testing.assert_allclose(logits, x @ lr.coef_[0] + lr.intercept_[0], atol=1e-9)
    return Fitted(name, x, model, logits)


@pytest.fixture(scope="session")
def spector() -> Fitted:
    """Spector & Mazzeo (statsmodels): 32 rows, GPA, TUCE, PSI -> GRADE; raw features."""
    from statsmodels.datasets import spector as spector_data

    data = spector_data.load_pandas()
    x = data.exog[["GPA", "TUCE", "PSI"]].to_numpy(dtype=np.float64)
    y = data.endog.to_numpy().astype(np.int64)
    return _fit("spector", x, y)


@pytest.fixture(scope="session")
def breast_cancer() -> Fitted:
    """Wisconsin breast cancer (sklearn): 569 rows x 30 standardised features."""
    x, y = load_breast_cancer(return_X_y=True)
    return _fit("breast_cancer", StandardScaler().fit_transform(x), y)


@pytest.fixture(scope="session")
def column_client() -> ClientContext:
    return ClientContext.create(DEFAULT_PARAMS, layout=Layout.COLUMN)


@pytest.fixture(scope="session")
def coeff_client() -> ClientContext:
    return ClientContext.create(DEFAULT_PARAMS, layout=Layout.COEFF)


@pytest.fixture(scope="session")
def row_client() -> ClientContext:
    """Galois keys for 16-slot rows (steps 1, 2, 4, 8): 30 features in complex pairs."""
    return ClientContext.create(DEFAULT_PARAMS, layout=Layout.ROW, n_features=30)


@pytest.fixture(scope="session")
def evaluator(row_client: ClientContext) -> HeEvaluator:
    ev = HeEvaluator(DEFAULT_PARAMS, context_cache_size=4, model_cache_size=4)
    ev.add_context(row_client.public_bytes())
    return ev
