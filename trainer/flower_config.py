"""The Flower run config of a training job, typed once (keys as in the FAB's pyproject).

Keys (`[tool.flwr.app.config]`, override with `flwr run --run-config`):

=====================  ======  ===========================================================
key                    type    meaning
=====================  ======  ===========================================================
`features`             str     comma-separated feature columns, model order
`label`                str     binary label column
`l2-c`                 float   inverse L2 strength C (scikit-learn); 0 = no penalty
`gtol`                 float   gradient tolerance per row, > 0
`max-iter`             int     maximum Newton rounds, >= 1
`holdout-fraction`     float   share of each node's rows held out for evaluation, (0, 0.5]
`holdout-seed`         int     seed of the held-out rows
`n-nodes`              int     nodes that start the job (all must answer round 1)
`min-nodes`            int     fewest nodes a round may be summed over (default: the SecAgg+
                               threshold, n - 1 for n >= 3); 0 = the default
`secure`               bool    SecAgg+ (true) or plain sums (false)
`round-timeout-s`      float   seconds to wait for replies in one message round trip
`output-dir`           str     directory for `progress.jsonl` and `result.json`
`model-store`          str     model store directory for the bundle ("" = none)
`job-name`             str     free text recorded in the model card
=====================  ======  ===========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainer.task import JobConfig

__all__ = ["RunSettings", "job_config_from_run_config", "run_settings", "secure_from_run_config"]


def job_config_from_run_config(cfg: Mapping[str, Any]) -> JobConfig:
    """Build the :class:`~trainer.task.JobConfig` from a run config.

    Args:
        cfg: the run config mapping.

    Returns:
        The job configuration.

    Raises:
        ValueError: on a missing key or invalid value.
    """
    try:
        features = tuple(f.strip() for f in str(cfg["features"]).split(",") if f.strip())
        l2_c = float(cfg.get("l2-c", 0.0))
        return JobConfig(
            feature_names=features,
            label=str(cfg["label"]),
            l2_c=l2_c if l2_c > 0 else None,
            gtol=float(cfg.get("gtol", 1e-8)),
            max_iter=int(cfg.get("max-iter", 25)),
            holdout_fraction=float(cfg.get("holdout-fraction", 0.2)),
            holdout_seed=int(cfg.get("holdout-seed", 0)),
            n_nodes=int(cfg.get("n-nodes", 3)),
            min_nodes=int(cfg.get("min-nodes", 0)) or None,
        )
    except KeyError as exc:
        raise ValueError(f"run config lacks {exc.args[0]!r}") from exc


def secure_from_run_config(cfg: Mapping[str, Any]) -> bool:
    """Whether the job uses SecAgg+.

    Args:
        cfg: the run config mapping.

    Returns:
        The `secure` flag (default True).
    """
    return bool(cfg.get("secure", True))


@dataclass(frozen=True)
class RunSettings:
    """Server-side settings of one run.

    Attributes:
        job: the job configuration.
        secure: SecAgg+ or plain sums.
        round_timeout_s: seconds to wait for all replies of one message round trip.
        output_dir: where `progress.jsonl` and `result.json` go ("" = nowhere).
        model_store: model store directory for the bundle ("" = no bundle).
        job_name: free text for the model card.
    """

    job: JobConfig
    secure: bool
    round_timeout_s: float
    output_dir: str
    model_store: str
    job_name: str


def run_settings(cfg: Mapping[str, Any]) -> RunSettings:
    """Read every server-side setting from a run config.

    Args:
        cfg: the run config mapping.

    Returns:
        The settings.

    Raises:
        ValueError: on a missing key or invalid value.
    """
    timeout_s = float(cfg.get("round-timeout-s", 120.0))
    if not timeout_s > 0:
        raise ValueError("round-timeout-s must be > 0")
    job = job_config_from_run_config(cfg)
    secure = secure_from_run_config(cfg)
    if secure and job.n_nodes > 2 and job.quorum <= job.n_nodes // 2:
        raise ValueError(
            f"min-nodes {job.quorum} is too low for SecAgg+ over {job.n_nodes} nodes: the "
            f"reconstruction threshold must be a majority (at least {job.n_nodes // 2 + 1})"
        )
    return RunSettings(
        job=job,
        secure=secure,
        round_timeout_s=timeout_s,
        output_dir=str(cfg.get("output-dir", "")),
        model_store=str(cfg.get("model-store", "")),
        job_name=str(cfg.get("job-name", "")),
    )
