"""2PM federated trainer: exact federated logistic regression on Flower, model bundles.

The public surface is what the gateway and `twopm up` need; Flower is imported only by
`trainer.server_app`, `trainer.client_app` and the deployment helpers.
"""

from trainer.bundle import BundleError, ModelBundle, feature_schema_hash, load_bundle
from trainer.data import DataError, Dataset, load_dataset, read_node_csv, split_rows
from trainer.newton import TrainingError
from trainer.task import JobConfig, TrainingResult, run_in_process

__all__ = [
    "BundleError",
    "DataError",
    "Dataset",
    "JobConfig",
    "ModelBundle",
    "TrainingError",
    "TrainingResult",
    "feature_schema_hash",
    "load_bundle",
    "load_dataset",
    "read_node_csv",
    "run_in_process",
    "split_rows",
]
