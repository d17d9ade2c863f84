"""A published card's feature standardisation (what the CKKS parameter sets standardise with):
a model whose card states an unusable one is refused when loaded, never served."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_gateway_inference_support import spector, tamper, write

from gateway._onnx import ModelRefused, load_model


def test_a_card_with_a_usable_standardisation_serves_it(tmp_path: Path) -> None:
    bundle = tamper(write(spector(), tmp_path), tmp_path, standardisation={
        "mean": [1.0, 2.0, 3.0], "scale": [0.5, 1.0, 2.0]})  # fmt: skip
    model = load_model(bundle.path, bundle.sha256)
    assert model.linear.mean == (1.0, 2.0, 3.0) and model.linear.scale == (0.5, 1.0, 2.0)


@pytest.mark.parametrize(
    ("standardisation", "says"),
    [
        ({"mean": [0.0, 0.0], "scale": [1.0, 1.0]}, "does not match its feature count"),
        ({"mean": [0.0, "x", 0.0], "scale": [1.0, 1.0, 1.0]}, "is not numeric"),
        ({"mean": [0.0, 0.0, 0.0], "scale": [1.0, 0.0, 1.0]}, "unusable coefficients"),
    ],
    ids=["length", "not-numeric", "zero-scale"],
)
def test_a_card_with_an_unusable_standardisation_is_refused(
    tmp_path: Path, standardisation: dict[str, list[object]], says: str
) -> None:
    bundle = tamper(write(spector(), tmp_path), tmp_path, standardisation=standardisation)
    with pytest.raises(ModelRefused, match=says):
        load_model(bundle.path, bundle.sha256)
