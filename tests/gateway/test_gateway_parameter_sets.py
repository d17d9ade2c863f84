"""``ckks_parameter_sets`` of ``GET /v1/subnets/{id}``: errors measured once per model in a
worker when the model is loaded, a listing meanwhile answers null errors without waiting, and
a model the sets cannot evaluate is not measured again on every request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from test_gateway_inference_support import spector, write

from ckks import AffineModel
from gateway import GatewaySettings
from gateway._inference import Inference
from gateway._onnx import load_model
from gateway._state import MemoryState
from gateway.he import Overloaded


def _settings(tmp_path: Path) -> GatewaySettings:
    return GatewaySettings(
        public_url="http://127.0.0.1:1", queue_path=tmp_path / "q.sqlite3", he_workers=1
    )


async def _measured(inference: Inference) -> None:
    await asyncio.gather(*inference._measuring.values())


def test_errors_are_measured_once_and_a_model_the_sets_refuse_keeps_null_errors(
    tmp_path: Path,
) -> None:
    good = write(spector(), tmp_path / "good")
    zero = write(spector(), tmp_path / "zero", coef=[0.0, 0.0, 0.0])  # 422 in every set

    async def go() -> tuple[dict, dict, dict, Inference]:
        inference = Inference(_settings(tmp_path), MemoryState(), None, None)
        try:
            good_model = load_model(good.path, good.sha256)
            refused_model = load_model(zero.path, zero.sha256)
            inference.measure_soon(good_model)
            inference.measure_soon(refused_model)
            await _measured(inference)
            measured = await inference.parameter_sets(good_model)
            refused = await inference.parameter_sets(refused_model)
            again = await inference.parameter_sets(refused_model)  # from the cache
            assert not inference._measuring  # nothing started again
        finally:
            await inference.stop()
        return measured, refused, again, inference

    measured, refused, again, inference = asyncio.run(go())
    assert all(0 < s["max_abs_logit_error"] < 1e-3 for s in measured.values()), measured
    assert all(s["max_abs_logit_error"] is None for s in refused.values()), refused
    assert again == refused
    # both are kept: the refused model is not sent to a worker again on every request
    assert set(inference._set_errors) == {"0x" + good.sha256, "0x" + zero.sha256}


def test_a_loaded_model_is_measured_at_once_and_a_listing_meanwhile_answers_null_errors(
    tmp_path: Path,
) -> None:
    good = write(spector(), tmp_path / "good")
    model_hash = "0x" + good.sha256

    async def go() -> tuple[list[str], dict, list[str], dict, list[str]]:
        # a chain object is only stored here: the follower's load path never reads it
        inference = Inference(_settings(tmp_path), MemoryState(), object(), CollectorRegistry())
        assert inference.follower is not None
        calls: list[str] = []
        release = asyncio.Event()
        measure = inference.pool.measure_sets

        async def held(affine: AffineModel) -> dict[str, float]:
            calls.append("measure")
            await release.wait()
            return await measure(affine)

        inference.pool.measure_sets = held  # type: ignore[method-assign]
        try:
            model = await inference.follower._obtain(model_hash, str(good.path))
            await asyncio.sleep(0)  # the measurement task runs up to the held worker call
            at_load = list(calls)
            # the measurement is held: the listing answers at once (a hang fails the test)
            during = await asyncio.wait_for(inference.parameter_sets(model), 60)
            after_listing = list(calls)
            release.set()
            await _measured(inference)
            await inference.follower._obtain(model_hash, str(good.path))  # a cache hit
            measured = await inference.parameter_sets(model)
            return at_load, during, after_listing, measured, list(calls)
        finally:
            await inference.stop()

    at_load, during, after_listing, measured, calls = asyncio.run(go())
    assert at_load == ["measure"]  # started by the load, before any listing
    assert after_listing == ["measure"]  # the listing did not start another one
    for body in during.values():
        assert body["max_abs_logit_error"] is None
        assert body["logit_bound"] is not None  # the rest of the set is there
    assert all(0 < s["max_abs_logit_error"] < 1e-3 for s in measured.values()), measured
    assert calls == ["measure"]  # once per model hash


def test_a_listing_restarts_a_measurement_the_full_pool_refused(tmp_path: Path) -> None:
    good = write(spector(), tmp_path / "good")

    async def go() -> tuple[dict, dict, list[Any]]:
        inference = Inference(_settings(tmp_path), MemoryState(), None, None)
        calls: list[Any] = []
        measure = inference.pool.measure_sets

        async def full_once(affine: AffineModel) -> dict[str, float]:
            calls.append(affine)
            if len(calls) == 1:
                raise Overloaded("full", retry_after_s=1)
            return await measure(affine)

        inference.pool.measure_sets = full_once  # type: ignore[method-assign]
        try:
            model = load_model(good.path, good.sha256)
            inference.measure_soon(model)
            await _measured(inference)
            refused = await inference.parameter_sets(model)  # nothing kept: starts it again
            await _measured(inference)
            measured = await inference.parameter_sets(model)
        finally:
            await inference.stop()
        return refused, measured, calls

    refused, measured, calls = asyncio.run(go())
    assert all(s["max_abs_logit_error"] is None for s in refused.values())
    assert all(0 < s["max_abs_logit_error"] < 1e-3 for s in measured.values()), measured
    assert len(calls) == 2
