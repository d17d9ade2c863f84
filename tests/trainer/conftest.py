from __future__ import annotations

import pytest

from trainer.data import Dataset, load_dataset


@pytest.fixture(scope="session")
def spector() -> Dataset:
    return load_dataset("spector")


@pytest.fixture(scope="session")
def breast_cancer() -> Dataset:
    return load_dataset("breast-cancer")
