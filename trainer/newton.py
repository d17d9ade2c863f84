"""Federated Newton-Raphson (IRLS) for logistic regression with an optional L2 penalty.

Pure NumPy; this module never imports Flower. The protocol is:

1. The server sends the current coefficients (in standardised units) and the
   standardisation (`mean`, `scale`); in the first round the standardisation
   is the identity and the coefficients are zero.
2. Each node returns :func:`local_sums`: its row count, log-likelihood,
   gradient and Hessian of the log-likelihood, and the sums of its features and
   squared features. These are *sums over rows*, so the server only needs their
   sum over nodes (secure aggregation provides exactly that).
3. The server (:class:`NewtonSolver`) learns the pooled mean and population
   standard deviation from the first round's sums, converts the first round's
   raw-unit gradient and Hessian into standardised units, and takes Newton
   steps until the penalised gradient is below the tolerance.

Objective (maximised), with `z = (x - mean) / scale` and `beta = (b, w)`:

    sum_i [y_i * eta_i - log(1 + exp(eta_i))] - ||w||^2 / (2 C),   eta_i = b + z_i . w

which is scikit-learn's ``make_pipeline(StandardScaler(), LogisticRegression(C=C))``
objective (``C * sum(loss) + ||w||^2 / 2``, intercept not penalised, population
variance as in ``StandardScaler``). Without a penalty (`C = None`) the optimum does
not depend on the standardisation and equals the maximum-likelihood fit of
statsmodels ``Logit`` on the pooled rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

__all__ = [
    "LocalSums",
    "NewtonSolver",
    "RoundRecord",
    "Standardisation",
    "TrainingError",
    "fold_standardisation",
    "local_sums",
    "sigmoid",
]


class TrainingError(RuntimeError):
    """The federated fit cannot continue (singular Hessian, non-finite sums, bad shapes)."""


def sigmoid(eta: FloatArray) -> FloatArray:
    """Numerically stable logistic function.

    Args:
        eta: float64 array of logits, any shape.

    Returns:
        Array of the same shape with `1 / (1 + exp(-eta))`.
    """
    out: FloatArray = np.empty_like(eta, dtype=np.float64)
    pos = eta >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-eta[pos]))
    e = np.exp(eta[~pos])
    out[~pos] = e / (1.0 + e)
    return out


@dataclass(frozen=True)
class LocalSums:
    """Sums over one node's rows (or, after aggregation, over all nodes' rows).

    Attributes:
        n_rows: number of rows.
        loglik: log-likelihood at the coefficients the sums were computed for.
        grad: float64 array of shape (p,), p = n_features + 1 (intercept first);
            gradient of the log-likelihood in the units the coefficients were given in.
        hess: float64 array of shape (p, p); negative Hessian of the log-likelihood
            (`A^T diag(p(1-p)) A` for the design `A = [1, z]`).
        sum_x: float64 array of shape (n_features,), sum of raw feature values.
        sum_x2: float64 array of shape (n_features,), sum of squared raw feature values.
    """

    n_rows: float
    loglik: float
    grad: FloatArray
    hess: FloatArray
    sum_x: FloatArray
    sum_x2: FloatArray

    @staticmethod
    def size(n_features: int) -> int:
        """Length of the packed vector for `n_features` features.

        Args:
            n_features: number of features d.

        Returns:
            `2 + p + p (p + 1) / 2 + 2 d` with `p = d + 1`.
        """
        p = n_features + 1
        return 2 + p + p * (p + 1) // 2 + 2 * n_features

    def pack(self) -> FloatArray:
        """Flatten into one float64 vector (the Hessian's upper triangle only).

        Returns:
            float64 array of shape (`LocalSums.size(d)`,).
        """
        p = self.grad.shape[0]
        iu = np.triu_indices(p)
        return np.concatenate(
            [
                np.array([self.n_rows, self.loglik]),
                self.grad,
                self.hess[iu],
                self.sum_x,
                self.sum_x2,
            ]
        ).astype(np.float64)

    @classmethod
    def unpack(cls, vec: FloatArray, n_features: int) -> LocalSums:
        """Inverse of :meth:`pack`.

        Args:
            vec: float64 array of shape (`LocalSums.size(n_features)`,).
            n_features: number of features d.

        Returns:
            The sums.

        Raises:
            TrainingError: if the length does not match or a value is not finite.
        """
        vec = np.asarray(vec, dtype=np.float64)
        if vec.shape != (cls.size(n_features),):
            raise TrainingError(
                f"sum vector has shape {vec.shape}, expected ({cls.size(n_features)},)"
            )
        if not np.all(np.isfinite(vec)):
            raise TrainingError("sum vector contains a non-finite value")
        p = n_features + 1
        n_tri = p * (p + 1) // 2
        i = 2
        grad = vec[i : i + p].copy()
        i += p
        hess = np.zeros((p, p))
        iu = np.triu_indices(p)
        hess[iu] = vec[i : i + n_tri]
        hess = hess + np.triu(hess, 1).T
        i += n_tri
        sum_x = vec[i : i + n_features].copy()
        i += n_features
        sum_x2 = vec[i : i + n_features].copy()
        return cls(float(vec[0]), float(vec[1]), grad, hess, sum_x, sum_x2)


def local_sums(
    x: FloatArray,
    y: FloatArray,
    coef: FloatArray,
    mean: FloatArray,
    scale: FloatArray,
) -> LocalSums:
    """One node's contribution for the current iterate.

    Args:
        x: float64 array of shape (n_rows, n_features), raw feature units.
        y: float64 array of shape (n_rows,), labels in {0, 1}.
        coef: float64 array of shape (n_features + 1,), intercept first, in the units
            of `z = (x - mean) / scale`.
        mean: float64 array of shape (n_features,).
        scale: float64 array of shape (n_features,), all > 0.

    Returns:
        The node's :class:`LocalSums` (gradient and Hessian in `z` units).
    """
    n, d = x.shape
    z = (x - mean) / scale
    design = np.empty((n, d + 1))
    design[:, 0] = 1.0
    design[:, 1:] = z
    eta = design @ coef
    prob = sigmoid(eta)
    # log-likelihood y*eta - log(1 + e^eta), stable for large |eta|
    loglik = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    grad = design.T @ (y - prob)
    weights = prob * (1.0 - prob)
    hess = (design * weights[:, None]).T @ design
    hess = np.triu(hess) + np.triu(hess, 1).T  # exactly symmetric (BLAS need not be)
    return LocalSums(
        n_rows=float(n),
        loglik=loglik,
        grad=grad,
        hess=hess,
        sum_x=x.sum(axis=0),
        sum_x2=(x * x).sum(axis=0),
    )


@dataclass(frozen=True)
class Standardisation:
    """Pooled feature standardisation `z = (x - mean) / scale`.

    Attributes:
        mean: float64 array of shape (n_features,), pooled mean.
        scale: float64 array of shape (n_features,), pooled population standard
            deviation (ddof = 0, as scikit-learn's `StandardScaler`); 1.0 for a
            constant feature, as `StandardScaler` does.
    """

    mean: FloatArray
    scale: FloatArray

    @classmethod
    def identity(cls, n_features: int) -> Standardisation:
        """The no-op standardisation used in the first round.

        Args:
            n_features: number of features d.

        Returns:
            mean 0 and scale 1 for every feature.
        """
        return cls(np.zeros(n_features), np.ones(n_features))

    @classmethod
    def from_sums(cls, n_rows: float, sum_x: FloatArray, sum_x2: FloatArray) -> Standardisation:
        """Mean and population standard deviation from secure sums.

        Args:
            n_rows: pooled row count.
            sum_x: float64 array of shape (n_features,), pooled sum of x.
            sum_x2: float64 array of shape (n_features,), pooled sum of x^2.

        Returns:
            The standardisation.

        Raises:
            TrainingError: if there are no rows.
        """
        if n_rows < 1:
            raise TrainingError("no rows: the nodes hold no training data")
        mean = sum_x / n_rows
        var = np.maximum(sum_x2 / n_rows - mean * mean, 0.0)
        scale = np.sqrt(var)
        # a (numerically) constant feature keeps scale 1, like StandardScaler
        tiny = 10.0 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        scale = np.where(scale <= tiny, 1.0, scale)
        return cls(mean, scale)

    def transform_matrix(self) -> FloatArray:
        """Matrix M with `[1, z] = [1, x] M`.

        Returns:
            float64 array of shape (p, p), p = n_features + 1.
        """
        d = self.mean.shape[0]
        m = np.zeros((d + 1, d + 1))
        m[0, 0] = 1.0
        m[0, 1:] = -self.mean / self.scale
        m[1:, 1:] = np.diag(1.0 / self.scale)
        return m


def fold_standardisation(coef_std: FloatArray, std: Standardisation) -> tuple[FloatArray, float]:
    """Express standardised coefficients in raw feature units.

    `b + sum_j w_j (x_j - m_j) / s_j = (b - sum_j w_j m_j / s_j) + sum_j (w_j / s_j) x_j`.

    Args:
        coef_std: float64 array of shape (n_features + 1,), intercept first.
        std: the standardisation the coefficients refer to.

    Returns:
        (coef_raw of shape (n_features,), intercept_raw).
    """
    w_raw = coef_std[1:] / std.scale
    intercept = float(coef_std[0] - np.sum(w_raw * std.mean))
    return w_raw, intercept


@dataclass(frozen=True)
class RoundRecord:
    """What the server learnt in one Newton round (all aggregate values).

    Attributes:
        iteration: 1-based round number.
        loglik: pooled log-likelihood at the iterate sent in this round.
        objective: penalised objective (log-likelihood minus the L2 term).
        grad_max_abs: max-norm of the penalised gradient, standardised units.
        step_max_abs: max-norm of the Newton step taken after this round.
    """

    iteration: int
    loglik: float
    objective: float
    grad_max_abs: float
    step_max_abs: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form.

        Returns:
            A dict with the same fields.
        """
        return {
            "iteration": self.iteration,
            "loglik": self.loglik,
            "objective": self.objective,
            "grad_max_abs": self.grad_max_abs,
            "step_max_abs": self.step_max_abs,
        }


@dataclass
class NewtonSolver:
    """Server side of the federated Newton iteration.

    Args:
        n_features: number of features d.
        l2_c: inverse L2 strength C as in scikit-learn (`None` = no penalty).
        gtol: stop when `max|penalised gradient| <= gtol * n_rows` (gradient per row,
            standardised units). Default 1e-10.
        max_iter: maximum number of rounds. Default 25.

    After convergence the solver applies the Newton step computed from the last
    round's sums (no extra round trip): under quadratic convergence that point is
    closer to the optimum than the one the gradient was measured at.
    """

    n_features: int
    l2_c: float | None = None
    gtol: float = 1e-10
    max_iter: int = 25
    coef: FloatArray = field(init=False)
    standardisation: Standardisation = field(init=False)
    history: list[RoundRecord] = field(default_factory=list, init=False)
    n_rows: float = field(default=0.0, init=False)
    converged: bool = field(default=False, init=False)
    done: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.l2_c is not None and not self.l2_c > 0:
            raise ValueError(f"l2_c must be > 0 or None, got {self.l2_c}")
        if self.max_iter < 1:
            raise ValueError("max_iter must be >= 1")
        self.coef = np.zeros(self.n_features + 1)
        self.standardisation = Standardisation.identity(self.n_features)

    @property
    def iteration(self) -> int:
        """Number of rounds absorbed so far."""
        return len(self.history)

    def _penalty(self) -> FloatArray:
        lam = 0.0 if self.l2_c is None else 1.0 / self.l2_c
        pen = np.full(self.n_features + 1, lam)
        pen[0] = 0.0
        return pen

    def continue_on(self, n_rows: float) -> None:
        """Continue the fit on fewer pooled rows from the next update on (a node dropped out).

        The iterate and the standardisation stay; later updates must carry `n_rows` rows,
        and Newton's method then converges to the optimum over the remaining rows.

        Args:
            n_rows: the remaining pooled row count, > 0 and below the current one.

        Raises:
            TrainingError: before the first update, or if `n_rows` is not in (0, current).
        """
        if self.iteration == 0:
            raise TrainingError("no round absorbed yet: nothing to continue")
        if not 0 < n_rows < self.n_rows:
            raise TrainingError(
                f"pooled row count {n_rows:.0f} after a dropout is not below {self.n_rows:.0f}"
            )
        self.n_rows = n_rows

    def update(self, total: LocalSums) -> RoundRecord:
        """Absorb the pooled sums for the current iterate and take a Newton step.

        Args:
            total: sums over all nodes, computed at (`self.coef`, `self.standardisation`).

        Returns:
            The round's record.

        Raises:
            TrainingError: on a singular Hessian, a row count that changed between
                rounds, or a call after the solver finished.
        """
        if self.done:
            raise TrainingError("the solver has already finished")
        grad, hess = total.grad, total.hess
        if self.iteration == 0:
            self.n_rows = total.n_rows
            self.standardisation = Standardisation.from_sums(
                total.n_rows, total.sum_x, total.sum_x2
            )
            # first round: sums were taken in raw units at coef = 0; convert
            m = self.standardisation.transform_matrix()
            grad = m.T @ grad
            hess = m.T @ hess @ m
        elif total.n_rows != self.n_rows:
            raise TrainingError(
                f"pooled row count changed from {self.n_rows:.0f} to {total.n_rows:.0f}: "
                "a node's data changed or a node was replaced during training"
            )
        pen = self._penalty()
        g = grad - pen * self.coef
        h = hess + np.diag(pen)
        objective = total.loglik - 0.5 * float(np.sum(pen * self.coef**2))
        try:
            step = np.linalg.solve(h, g)
        except np.linalg.LinAlgError as exc:
            raise TrainingError(
                "the Hessian is singular: a feature is constant or features are collinear"
            ) from exc
        if not np.all(np.isfinite(step)):
            raise TrainingError("the Newton step is not finite")
        grad_max = float(np.max(np.abs(g)))
        record = RoundRecord(
            iteration=self.iteration + 1,
            loglik=total.loglik,
            objective=objective,
            grad_max_abs=grad_max,
            step_max_abs=float(np.max(np.abs(step))),
        )
        self.history.append(record)
        self.coef = self.coef + step
        if grad_max <= self.gtol * max(self.n_rows, 1.0):
            self.converged = True
            self.done = True
        elif self.iteration >= self.max_iter:
            self.done = True
        return record

    def raw_coefficients(self) -> tuple[FloatArray, float]:
        """Current coefficients in raw feature units.

        Returns:
            (coef of shape (n_features,), intercept).
        """
        return fold_standardisation(self.coef, self.standardisation)
