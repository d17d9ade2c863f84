"""``ckks_parameter_sets`` of ``GET /v1/subnets/{id}``: errors measured once per model in a
worker, and a model the sets cannot evaluate is not measured again on every request."""

from __future__ import annotations

import asyncio
from pathlib import Path

from test_gateway_inference_support import spector, write

from gateway import GatewaySettings
from gateway._inference import Inference
from gateway._onnx import load_model
from gateway._state import MemoryState


def test_errors_are_measured_once_and_a_model_the_sets_refuse_keeps_null_errors(
    tmp_path: Path,
) -> None:
    good = write(spector(), tmp_path / "good")
    zero = write(spector(), tmp_path / "zero", coef=[0.0, 0.0, 0.0])  # 422 in every set
    settings = GatewaySettings(
        public_url="http://127.0.0.1:1", queue_path=tmp_path / "q.sqlite3", he_workers=1
    )

    async def go() -> tuple[dict, dict, dict, Inference]:
        inference = Inference(settings, MemoryState(), None, None)
        try:
            measured = await inference.parameter_sets(load_model(good.path, good.sha256))
            refused_model = load_model(zero.path, zero.sha256)
            refused = await inference.parameter_sets(refused_model)
            again = await inference.parameter_sets(refused_model)  # from the cache
        finally:
            await inference.stop()
        return measured, refused, again, inference

    measured, refused, again, inference = asyncio.run(go())
    assert all(0 < s["max_abs_logit_error"] < 1e-3 for s in measured.values()), measured
    assert all(s["max_abs_logit_error"] is None for s in refused.values()), refused
    assert again == refused
    # both are kept: the refused model is not sent to a worker again on every request
    assert set(inference._set_errors) == {"0x" + good.sha256, "0x" + zero.sha256}
