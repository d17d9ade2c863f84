"""One training job: what nodes compute, what the server keeps. Never imports Flower.

Every round carries two fits at once, so evaluation costs no extra round trip:

* the *model* fit on all of every node's rows (the exported model; equals the pooled
  fit), and
* the *evaluation* fit on every node's rows minus a held-out split; each node reports
  log-loss, accuracy and ROC AUC of that fit's current iterate on its held-out rows.

Both fits start together and run in lock step; the job stops when the model fit has
converged (or at `max_iter`); the card records whether the evaluation fit had
converged by then (it usually has: same start, similar data).
The node's reply is one float vector (the two fits' :class:`~trainer.newton.LocalSums`,
packed) that is summed securely, plus a few per-node numbers sent in the clear
(row counts, held-out metrics, the operator address); see docs/trainer.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trainer.data import Dataset
from trainer.newton import (
    FloatArray,
    LocalSums,
    NewtonSolver,
    Standardisation,
    TrainingError,
    local_sums,
    sigmoid,
)

__all__ = [
    "JobConfig",
    "NodeReply",
    "NodeReport",
    "RoundRequest",
    "RowCountError",
    "TrainingJob",
    "TrainingResult",
    "binary_metrics",
    "check_row_counts",
    "compute_reply",
    "default_min_nodes",
    "holdout_mask",
    "run_in_process",
]


@dataclass(frozen=True)
class JobConfig:
    """What a training job needs to know (the Flower run config, typed).

    Attributes:
        feature_names: feature columns in model order.
        label: label column.
        l2_c: inverse L2 strength C as in scikit-learn; None = unpenalised maximum likelihood.
        gtol: gradient tolerance per row (standardised units).
        max_iter: maximum Newton rounds.
        holdout_fraction: share of each node's rows held out for evaluation, in (0, 0.5].
        holdout_seed: seed for choosing held-out rows.
        n_nodes: number of nodes that start the job (all must answer round 1's call).
        min_nodes: fewest nodes a round may be summed over; a node that drops out is left out
            of the rest of the run as long as at least this many remain. None means
            :func:`default_min_nodes` (the SecAgg+ reconstruction threshold, `n - 1` for
            `n >= 3`).
    """

    feature_names: tuple[str, ...]
    label: str
    l2_c: float | None = None
    gtol: float = 1e-10
    max_iter: int = 25
    holdout_fraction: float = 0.2
    holdout_seed: int = 0
    n_nodes: int = 3
    min_nodes: int | None = None

    @property
    def quorum(self) -> int:
        """The minimum number of nodes per round (`min_nodes` or its default)."""
        return default_min_nodes(self.n_nodes) if self.min_nodes is None else self.min_nodes

    def __post_init__(self) -> None:
        if not self.feature_names:
            raise ValueError("at least one feature is needed")
        if not 0.0 < self.holdout_fraction <= 0.5:
            raise ValueError("holdout_fraction must be in (0, 0.5]")
        if self.n_nodes < 1:
            raise ValueError("n_nodes must be >= 1")
        if self.l2_c is not None and not self.l2_c > 0:
            raise ValueError("l2_c must be > 0 (or None for no penalty)")
        if self.min_nodes is not None and not 1 <= self.min_nodes <= self.n_nodes:
            raise ValueError(f"min_nodes must be in [1, n_nodes={self.n_nodes}]")


def default_min_nodes(n_nodes: int) -> int:
    """The default minimum of nodes per round: SecAgg+'s reconstruction threshold.

    With `n >= 3` nodes the SecAgg+ workflow shares every secret among all nodes with a
    threshold of `n - 1`, so a round survives one node dropping out; with 1 or 2 nodes
    every node is needed (see docs/trainer.md, "Dropouts").

    Args:
        n_nodes: nodes that start the job (>= 1).

    Returns:
        `n - 1` for `n >= 3`, else `n`.
    """
    return n_nodes - 1 if n_nodes >= 3 else n_nodes


class RowCountError(TrainingError):
    """The row counts the nodes claim in the clear differ from the securely summed count.

    A node reports its row count in the clear (publication shares follow it) and also puts
    it into the vector that only SecAgg+ sums; the sum of the claims must equal that secure
    sum, else some holder over- (or under-) claims and the job is refused before anything
    is published.
    """


def holdout_mask(n_rows: int, fraction: float, seed: int) -> NDArray[np.bool_]:
    """Deterministic held-out rows of one node.

    Args:
        n_rows: rows on the node.
        fraction: share held out, in (0, 0.5].
        seed: seed of the permutation.

    Returns:
        bool array of shape (n_rows,), True for held-out rows; `round(n * fraction)`
        of them, at least one when `n_rows >= 2`.
    """
    k = round(n_rows * fraction)
    k = min(max(k, 1), n_rows - 1) if n_rows >= 2 else 0
    mask = np.zeros(n_rows, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n_rows)[:k]] = True
    return mask


def binary_metrics(y: FloatArray, prob: FloatArray) -> dict[str, float | None]:
    """Log-loss, accuracy (threshold 0.5) and ROC AUC.

    ROC AUC is the Mann-Whitney statistic with ties counted one half; None when the
    rows hold only one class. Log-loss clips probabilities to [1e-15, 1 - 1e-15]
    (as scikit-learn did).

    Args:
        y: float64 array of shape (n,), labels in {0, 1}.
        prob: float64 array of shape (n,), predicted P(y = 1).

    Returns:
        {"log_loss", "accuracy", "roc_auc"}; all None when n = 0.
    """
    n = int(y.shape[0])
    if n == 0:
        return {"log_loss": None, "accuracy": None, "roc_auc": None}
    p = np.clip(prob, 1e-15, 1 - 1e-15)
    log_loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    accuracy = float(np.mean((prob >= 0.5) == (y == 1)))
    pos, neg = prob[y == 1], prob[y == 0]
    auc: float | None
    if len(pos) == 0 or len(neg) == 0:
        auc = None
    else:
        greater = (pos[:, None] > neg[None, :]).sum()
        ties = (pos[:, None] == neg[None, :]).sum()
        auc = float((greater + 0.5 * ties) / (len(pos) * len(neg)))
    return {"log_loss": log_loss, "accuracy": accuracy, "roc_auc": auc}


@dataclass(frozen=True)
class RoundRequest:
    """What the server sends to every node in a round.

    Attributes:
        model_coef: float64 (p,), the model fit's iterate (standardised units).
        model_std: that fit's standardisation.
        eval_coef: float64 (p,), the evaluation fit's iterate.
        eval_std: that fit's standardisation.
    """

    model_coef: FloatArray
    model_std: Standardisation
    eval_coef: FloatArray
    eval_std: Standardisation

    def to_arrays(self) -> list[FloatArray]:
        """Arrays for the wire (Flower `Parameters`).

        Returns:
            [model_coef, model_mean, model_scale, eval_coef, eval_mean, eval_scale].
        """
        return [
            self.model_coef,
            self.model_std.mean,
            self.model_std.scale,
            self.eval_coef,
            self.eval_std.mean,
            self.eval_std.scale,
        ]

    @classmethod
    def from_arrays(cls, arrays: list[Any], n_features: int) -> RoundRequest:
        """Inverse of :meth:`to_arrays`, with shape checks.

        Args:
            arrays: six arrays.
            n_features: expected d.

        Returns:
            The request.

        Raises:
            TrainingError: on a wrong count or shape.
        """
        if len(arrays) != 6:
            raise TrainingError(f"round request has {len(arrays)} arrays, expected 6")
        a = [np.asarray(v, dtype=np.float64) for v in arrays]
        shapes = [(n_features + 1,), (n_features,), (n_features,)] * 2
        for arr, shape in zip(a, shapes, strict=True):
            if arr.shape != shape:
                raise TrainingError(f"round request array has shape {arr.shape}, expected {shape}")
        return cls(a[0], Standardisation(a[1], a[2]), a[3], Standardisation(a[4], a[5]))


@dataclass(frozen=True)
class NodeReply:
    """One node's answer to a round.

    Attributes:
        model_sums: sums over all the node's rows at the model iterate.
        eval_sums: sums over the node's non-held-out rows at the evaluation iterate.
        metrics: held-out metrics of the evaluation iterate (see :func:`binary_metrics`).
        n_rows: rows on the node.
        n_holdout: held-out rows.
    """

    model_sums: LocalSums
    eval_sums: LocalSums
    metrics: dict[str, float | None]
    n_rows: int
    n_holdout: int

    def secure_vector(self) -> FloatArray:
        """The part that is only ever revealed summed over nodes.

        Returns:
            float64 array of shape (2 * LocalSums.size(d),).
        """
        return np.concatenate([self.model_sums.pack(), self.eval_sums.pack()])


def compute_reply(data: Dataset, request: RoundRequest, config: JobConfig) -> NodeReply:
    """A node's computation for one round.

    Args:
        data: the node's validated rows, columns in `config.feature_names` order.
        request: the round's iterates.
        config: the job configuration.

    Returns:
        The node's reply.

    Raises:
        TrainingError: if the data's columns differ from the job's features.
    """
    if tuple(data.feature_names) != tuple(config.feature_names):
        raise TrainingError(
            f"node features {list(data.feature_names)} differ from the job's "
            f"{list(config.feature_names)}"
        )
    held = holdout_mask(data.n_rows, config.holdout_fraction, config.holdout_seed)
    model = local_sums(data.x, data.y, request.model_coef, request.model_std.mean,
                       request.model_std.scale)  # fmt: skip
    xt, yt = data.x[~held], data.y[~held]
    ev = local_sums(xt, yt, request.eval_coef, request.eval_std.mean, request.eval_std.scale)
    xh, yh = data.x[held], data.y[held]
    zh = (xh - request.eval_std.mean) / request.eval_std.scale
    prob = sigmoid(request.eval_coef[0] + zh @ request.eval_coef[1:])
    return NodeReply(model, ev, binary_metrics(yh, prob), data.n_rows, int(held.sum()))


@dataclass(frozen=True)
class NodeReport:
    """Per-node facts recorded in the model card (sent in the clear by each node).

    Attributes:
        node_id: the node's Flower node id (or its index in-process).
        operator_address: the data holder's Ethereum address ("" when not given).
        n_rows: rows used by the model fit.
        n_holdout: rows held out for the evaluation fit.
        metrics: held-out log-loss, accuracy, ROC AUC of the evaluation fit.
    """

    node_id: int
    operator_address: str
    n_rows: int
    n_holdout: int
    metrics: dict[str, float | None]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form.

        Returns:
            The fields as a dict.
        """
        return {
            "node_id": self.node_id,
            "operator_address": self.operator_address,
            "n_rows": self.n_rows,
            "n_holdout": self.n_holdout,
            "metrics": dict(self.metrics),
        }


@dataclass(frozen=True)
class TrainingResult:
    """The outcome of a job, in raw feature units.

    Attributes:
        config: the job configuration.
        coef: float64 (n_features,), raw-unit coefficients (standardisation folded in).
        intercept: raw-unit intercept.
        coef_standardised: float64 (n_features + 1,), intercept first.
        standardisation: pooled mean and scale.
        converged: whether the model fit met the gradient tolerance.
        eval_converged: whether the evaluation fit did.
        iterations: Newton rounds.
        history: per-round records of the model fit.
        nodes: per-node reports from the last round, sorted by node id.
        n_rows: pooled rows (of the nodes in `nodes`).
        dropped_nodes: node ids that were called for the job and dropped out (no share in
            the model), ascending.
    """

    config: JobConfig
    coef: FloatArray
    intercept: float
    coef_standardised: FloatArray
    standardisation: Standardisation
    converged: bool
    eval_converged: bool
    iterations: int
    history: list[dict[str, Any]]
    nodes: list[NodeReport]
    n_rows: int
    dropped_nodes: list[int] = field(default_factory=list)


@dataclass
class TrainingJob:
    """Server-side state of a job: two lock-step Newton solvers and per-node reports.

    Args:
        config: the job configuration.
    """

    config: JobConfig
    model: NewtonSolver = field(init=False)
    evaluation: NewtonSolver = field(init=False)
    nodes: list[NodeReport] = field(default_factory=list, init=False)
    dropped: set[int] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        d = len(self.config.feature_names)
        self.model = NewtonSolver(d, self.config.l2_c, self.config.gtol, self.config.max_iter)
        self.evaluation = NewtonSolver(d, self.config.l2_c, self.config.gtol, self.config.max_iter)

    @property
    def n_features(self) -> int:
        """Number of features d."""
        return len(self.config.feature_names)

    @property
    def secure_size(self) -> int:
        """Length of each node's secure vector."""
        return 2 * LocalSums.size(self.n_features)

    @property
    def done(self) -> bool:
        """True when no further round is needed."""
        return self.model.done

    def request(self) -> RoundRequest:
        """The next round's request.

        Returns:
            Both fits' current iterates.
        """
        return RoundRequest(
            self.model.coef,
            self.model.standardisation,
            self.evaluation.coef,
            self.evaluation.standardisation,
        )

    def absorb(self, secure_sum: FloatArray, reports: list[NodeReport]) -> None:
        """Take one round's aggregate and per-node reports, step both fits.

        A node that answered the previous round but not this one has dropped out: it stays
        out for the rest of the run, both fits continue from their current iterates on the
        remaining nodes' rows (Newton converges to the survivors' pooled optimum; the
        standardisation of round 1 stays), and it gets no share of the model.

        Args:
            secure_sum: float64 (secure_size,), the sum over nodes of their secure vectors.
            reports: one report per node that took part.

        Raises:
            RowCountError: if the clear row counts of `reports` do not sum to the securely
                summed row counts (all rows, and rows outside the held-out split).
            TrainingError: if fewer nodes than `config.quorum` took part, a node joined
                after round 1 or came back after dropping out, the vector has the wrong
                shape, or a solver fails.
        """
        quorum = self.config.quorum
        if len(reports) < quorum:
            raise TrainingError(
                f"round {self.model.iteration + 1}: {len(reports)} of {self.config.n_nodes} "
                f"nodes answered, fewer than the minimum of {quorum}; training aborted"
            )
        vec = np.asarray(secure_sum, dtype=np.float64)
        if vec.shape != (self.secure_size,):
            raise TrainingError(f"aggregate has shape {vec.shape}, expected ({self.secure_size},)")
        half = self.secure_size // 2
        model_sums = LocalSums.unpack(vec[:half], self.n_features)
        eval_sums = LocalSums.unpack(vec[half:], self.n_features)
        check_row_counts(self.model.iteration + 1, reports, model_sums.n_rows, eval_sums.n_rows)
        ids = {r.node_id for r in reports}
        before = {r.node_id for r in self.nodes}
        if self.nodes and not ids <= before:
            raise TrainingError(
                f"round {self.model.iteration + 1}: node(s) {sorted(ids - before)} joined after "
                "round 1 or came back after dropping out; training aborted"
            )
        if self.nodes and ids != before:
            self.dropped |= before - ids
            self.model.continue_on(model_sums.n_rows)
            if not self.evaluation.done:
                self.evaluation.continue_on(eval_sums.n_rows)
        self.model.update(model_sums)
        if not self.evaluation.done:
            try:
                self.evaluation.update(eval_sums)
            except TrainingError:
                # the evaluation fit only measures generalisation; it never blocks the model
                self.evaluation.done = True
        self.nodes = sorted(reports, key=lambda r: r.node_id)
        if self.model.done:
            self.evaluation.done = True

    def result(self) -> TrainingResult:
        """The result so far (call once `done`).

        Returns:
            The trained model and its record.
        """
        coef, intercept = self.model.raw_coefficients()
        return TrainingResult(
            config=self.config,
            coef=coef,
            intercept=intercept,
            coef_standardised=self.model.coef.copy(),
            standardisation=self.model.standardisation,
            converged=self.model.converged,
            eval_converged=self.evaluation.converged,
            iterations=self.model.iteration,
            history=[r.as_dict() for r in self.model.history],
            nodes=list(self.nodes),
            n_rows=int(self.model.n_rows),
            dropped_nodes=sorted(self.dropped),
        )


def check_row_counts(
    round_no: int, reports: list[NodeReport], secure_rows: float, secure_train_rows: float
) -> None:
    """Check the nodes' clear row counts against the securely summed ones.

    Args:
        round_no: the round (1-based), for the message.
        reports: the nodes whose vectors were summed.
        secure_rows: the secure sum of the nodes' row counts (model fit).
        secure_train_rows: the secure sum of their rows outside the held-out split.

    Raises:
        RowCountError: if `sum(n_rows)` differs from `secure_rows`, or
            `sum(n_rows - n_holdout)` from `secure_train_rows`.
    """
    claimed = sum(r.n_rows for r in reports)
    claimed_train = sum(r.n_rows - r.n_holdout for r in reports)
    counted, counted_train = round(float(secure_rows)), round(float(secure_train_rows))
    if claimed != counted or claimed_train != counted_train:
        each = ", ".join(
            f"node {r.node_id} ({r.operator_address or 'no address'}) {r.n_rows}"
            for r in sorted(reports, key=lambda r: r.node_id)
        )
        raise RowCountError(
            f"round {round_no}: the holders claim {claimed} rows ({claimed_train} outside the "
            f"held-out split) but the secure sum counts {counted} ({counted_train}); "
            f"claims: {each}; a holder misreports its row count, training refused and nothing "
            "is published"
        )


def run_in_process(
    partitions: list[Dataset],
    config: JobConfig,
    *,
    codec: Any | None = None,
) -> TrainingResult:
    """Run a job with every node in this process (reference and test harness).

    Args:
        partitions: one data set per node.
        config: the job; `n_nodes` must equal `len(partitions)`.
        codec: optional :class:`~trainer.exactsum.ExactSumCodec`; when given, every
            node's vector goes through `encode` and the sum through `decode_sum`,
            as over SecAgg+.

    Returns:
        The result.
    """
    job = TrainingJob(config)
    while not job.done:
        req = job.request()
        replies = [compute_reply(part, req, config) for part in partitions]
        if codec is None:
            total = np.sum([r.secure_vector() for r in replies], axis=0)
        else:
            total = codec.decode_sum(
                np.sum([codec.encode(r.secure_vector()) for r in replies], axis=0)
            )
        reports = [
            NodeReport(i, "", r.n_rows, r.n_holdout, r.metrics) for i, r in enumerate(replies)
        ]
        job.absorb(total, reports)
    return job.result()
