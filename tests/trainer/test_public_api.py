from __future__ import annotations

import subprocess
import sys

import trainer


def test_the_public_surface_changes_only_on_purpose() -> None:
    assert sorted(trainer.__all__) == [
        "BundleError", "DataError", "Dataset", "JobConfig", "ModelBundle", "TrainingError",
        "TrainingResult", "feature_schema_hash", "load_bundle", "load_dataset",
        "read_node_csv", "run_in_process", "split_rows",
    ]  # fmt: skip


def test_the_maths_and_the_bundle_loader_never_import_flower() -> None:
    code = (
        "import sys, trainer, trainer.newton, trainer.task, trainer.exactsum, trainer.bundle;"
        "print(any(m == 'flwr' or m.startswith('flwr.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
