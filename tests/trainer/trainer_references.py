"""Pooled reference fits the federated results are compared with."""

from __future__ import annotations

import numpy as np

from trainer.data import Dataset


def pooled_logit_mle(data: Dataset) -> np.ndarray:
    """statsmodels Logit on the pooled rows: [intercept, coef...]."""
    import statsmodels.api as sm

    fit = sm.Logit(data.y, sm.add_constant(data.x)).fit(disp=0, tol=1e-14, maxiter=200)
    return np.asarray(fit.params)


def pooled_sklearn_l2(data: Dataset, c: float) -> np.ndarray:
    """make_pipeline(StandardScaler(), LogisticRegression(C=c)) in raw units: [b, w...]."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=c, tol=1e-12, max_iter=10_000, solver="newton-cholesky"),
    ).fit(data.x, data.y)
    scaler, lr = pipe[0], pipe[1]
    w = lr.coef_[0] / scaler.scale_
    return np.r_[lr.intercept_[0] - np.sum(w * scaler.mean_), w]
