from __future__ import annotations

import numpy as np
import pytest
from trainer_references import pooled_logit_mle, pooled_sklearn_l2

from trainer.data import Dataset, split_rows
from trainer.exactsum import ExactSumCodec
from trainer.newton import LocalSums, NewtonSolver, TrainingError, local_sums
from trainer.task import (
    JobConfig,
    NodeReport,
    RowCountError,
    TrainingJob,
    compute_reply,
    run_in_process,
)


def _parts(data: Dataset, mode: str, n: int = 3) -> list[Dataset]:
    return [data.take(ix) for ix in split_rows(data, n, mode=mode, seed=7)]


@pytest.mark.parametrize("mode", ["iid", "label-skew"])
@pytest.mark.parametrize("secure_codec", [False, True])
def test_spector_over_three_nodes_equals_statsmodels_logit_on_pooled_rows(
    spector: Dataset, mode: str, secure_codec: bool
) -> None:
    cfg = JobConfig(spector.feature_names, spector.label, n_nodes=3, gtol=1e-8)
    codec = ExactSumCodec(3) if secure_codec else None
    result = run_in_process(_parts(spector, mode), cfg, codec=codec)
    ref = pooled_logit_mle(spector)
    mine = np.r_[result.intercept, result.coef]
    assert result.converged
    np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-6)


def test_spector_fit_reproduces_the_textbook_coefficients(spector: Dataset) -> None:
    # Spector & Mazzeo (1980) logit, as printed by Greene and by statsmodels' docs
    cfg = JobConfig(spector.feature_names, spector.label, n_nodes=3)
    result = run_in_process(_parts(spector, "iid"), cfg)
    got = dict(zip(spector.feature_names, result.coef, strict=True))
    assert round(result.intercept, 4) == -13.0213
    assert round(got["GPA"], 4) == 2.8261
    assert round(got["TUCE"], 4) == 0.0952
    assert round(got["PSI"], 4) == 2.3787


@pytest.mark.parametrize("mode", ["iid", "label-skew"])
def test_breast_cancer_l2_fit_equals_pooled_sklearn_with_the_same_penalty(
    breast_cancer: Dataset, mode: str
) -> None:
    cfg = JobConfig(breast_cancer.feature_names, breast_cancer.label, l2_c=0.5, n_nodes=3)
    result = run_in_process(_parts(breast_cancer, mode), cfg, codec=ExactSumCodec(3))
    ref = pooled_sklearn_l2(breast_cancer, 0.5)
    assert result.converged
    np.testing.assert_allclose(np.r_[result.intercept, result.coef], ref, rtol=0, atol=1e-6)


def test_standardisation_is_the_pooled_mean_and_population_std(breast_cancer: Dataset) -> None:
    cfg = JobConfig(breast_cancer.feature_names, breast_cancer.label, l2_c=1.0, n_nodes=3)
    result = run_in_process(_parts(breast_cancer, "label-skew"), cfg)
    np.testing.assert_allclose(
        result.standardisation.mean, breast_cancer.x.mean(axis=0), rtol=1e-12
    )
    np.testing.assert_allclose(
        result.standardisation.scale, breast_cancer.x.std(axis=0), rtol=1e-10
    )


def test_local_sums_pack_and_unpack_round_trip() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 4)), rng.integers(0, 2, 20).astype(float)
    s = local_sums(x, y, rng.normal(size=5), np.zeros(4), np.ones(4))
    back = LocalSums.unpack(s.pack(), 4)
    np.testing.assert_array_equal(back.hess, s.hess)
    np.testing.assert_array_equal(back.grad, s.grad)
    assert back.n_rows == 20


def test_unpack_rejects_a_vector_of_the_wrong_length() -> None:
    with pytest.raises(TrainingError, match="shape"):
        LocalSums.unpack(np.zeros(5), 4)


def test_unpack_rejects_a_non_finite_sum() -> None:
    v = np.zeros(LocalSums.size(2))
    v[3] = np.nan
    with pytest.raises(TrainingError, match="non-finite"):
        LocalSums.unpack(v, 2)


def test_solver_rejects_collinear_features_with_a_clear_error() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=40)
    x = np.c_[a, 2 * a]
    y = (rng.random(40) < 0.5).astype(float)
    solver = NewtonSolver(2)
    with pytest.raises(TrainingError, match="singular"):
        solver.update(local_sums(x, y, solver.coef, np.zeros(2), np.ones(2)))


def test_solver_rejects_a_row_count_that_changes_between_rounds(spector: Dataset) -> None:
    solver = NewtonSolver(3)
    solver.update(local_sums(spector.x, spector.y, solver.coef, np.zeros(3), np.ones(3)))
    std = solver.standardisation
    with pytest.raises(TrainingError, match="row count changed"):
        solver.update(local_sums(spector.x[:-1], spector.y[:-1], solver.coef, std.mean, std.scale))


def test_solver_rejects_a_non_positive_c() -> None:
    with pytest.raises(ValueError, match="l2_c"):
        NewtonSolver(3, l2_c=0.0)


def test_job_aborts_when_fewer_nodes_than_the_minimum_answer(spector: Dataset) -> None:
    cfg = JobConfig(spector.feature_names, spector.label, n_nodes=3, min_nodes=3)
    job = TrainingJob(cfg)
    with pytest.raises(TrainingError, match="2 of 3 nodes answered, fewer than the minimum of 3"):
        job.absorb(np.zeros(job.secure_size), [NodeReport(i, "", 10, 2, {}) for i in range(2)])


def test_the_default_minimum_is_the_secagg_threshold_n_minus_one(spector: Dataset) -> None:
    three = JobConfig(spector.feature_names, spector.label, n_nodes=3)
    two = JobConfig(spector.feature_names, spector.label, n_nodes=2)
    assert (three.quorum, two.quorum) == (2, 2)
    job = TrainingJob(three)
    with pytest.raises(TrainingError, match="1 of 3 nodes answered, fewer than the minimum of 2"):
        job.absorb(np.zeros(job.secure_size), [NodeReport(0, "", 10, 2, {})])
    with pytest.raises(ValueError, match="min_nodes"):
        JobConfig(spector.feature_names, spector.label, n_nodes=3, min_nodes=4)


def _round(job: TrainingJob, parts: list[Dataset], ids: list[int], extra_rows: int = 0) -> None:
    req = job.request()
    replies = [compute_reply(parts[i], req, job.config) for i in ids]
    total = np.sum([r.secure_vector() for r in replies], axis=0)
    reports = [
        NodeReport(
            i, f"0x{i:040x}", r.n_rows + (extra_rows if i == ids[-1] else 0), r.n_holdout, r.metrics
        )
        for i, r in zip(ids, replies, strict=True)
    ]
    job.absorb(total, reports)


def test_a_holder_over_claiming_its_rows_is_refused_by_the_secure_row_count(
    spector: Dataset,
) -> None:
    parts = _parts(spector, "iid")
    job = TrainingJob(JobConfig(spector.feature_names, spector.label, n_nodes=3))
    with pytest.raises(RowCountError, match=r"claim 37 rows .* secure sum counts 32 .*node 2 "):
        _round(job, parts, [0, 1, 2], extra_rows=5)
    assert job.model.iteration == 0  # nothing absorbed


def test_a_holder_claiming_held_out_rows_as_training_rows_is_refused(spector: Dataset) -> None:
    parts = _parts(spector, "iid")
    job = TrainingJob(JobConfig(spector.feature_names, spector.label, n_nodes=3))
    req = job.request()
    replies = [compute_reply(p, req, job.config) for p in parts]
    total = np.sum([r.secure_vector() for r in replies], axis=0)
    reports = [NodeReport(i, "", r.n_rows, r.n_holdout, r.metrics) for i, r in enumerate(replies)]
    reports[1] = NodeReport(1, "", reports[1].n_rows, 0, {})
    with pytest.raises(RowCountError, match="outside the held-out split"):
        job.absorb(total, reports)


def test_a_node_dropping_out_leaves_the_pooled_fit_of_the_remaining_nodes(
    spector: Dataset,
) -> None:
    parts = [spector.take(ix) for ix in split_rows(spector, 3, mode="iid")]
    job = TrainingJob(JobConfig(spector.feature_names, spector.label, n_nodes=3, gtol=1e-8))
    _round(job, parts, [0, 1, 2])
    while not job.done:
        _round(job, parts, [0, 1])
    result = job.result()
    survivors = spector.take(np.concatenate(split_rows(spector, 3, mode="iid")[:2]))
    assert result.converged
    assert result.dropped_nodes == [2]
    assert [n.node_id for n in result.nodes] == [0, 1]
    assert result.n_rows == survivors.n_rows
    np.testing.assert_allclose(
        np.r_[result.intercept, result.coef], pooled_logit_mle(survivors), rtol=0, atol=1e-6
    )


def test_a_node_coming_back_after_dropping_out_aborts_the_job(spector: Dataset) -> None:
    parts = _parts(spector, "iid")
    job = TrainingJob(JobConfig(spector.feature_names, spector.label, n_nodes=3))
    _round(job, parts, [0, 1, 2])
    _round(job, parts, [0, 1])
    with pytest.raises(TrainingError, match=r"node\(s\) \[2\] joined after round 1 or came back"):
        _round(job, parts, [0, 1, 2])


def test_continue_on_refuses_more_rows_or_no_round_yet() -> None:
    solver = NewtonSolver(2)
    with pytest.raises(TrainingError, match="no round absorbed yet"):
        solver.continue_on(5.0)


def test_unpenalised_separable_data_stops_at_max_iter_unconverged() -> None:
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0.0, 0.0, 1.0, 1.0])
    part = Dataset(("x",), "y", x, y)
    cfg = JobConfig(("x",), "y", n_nodes=1, max_iter=6, holdout_fraction=0.25)
    result = run_in_process([part], cfg)
    assert not result.converged
    assert result.iterations == 6
