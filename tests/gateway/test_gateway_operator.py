"""The operator overview's parts that must not take the dashboard down: signer audit and cards."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import core.bundle
from core.net import free_port
from gateway._operator import MAX_ITEMS, TrainingRuns, _signer_audit, _training_run
from trainer.bundle import result_to_card, write_bundle
from trainer.data import load_dataset, split_rows
from trainer.task import JobConfig, TrainingResult, run_in_process


def _services(**settings: object) -> SimpleNamespace:
    base = {"signer_url": None, "signer_caller_id": "gateway", "signer_secret": None}
    return SimpleNamespace(settings=SimpleNamespace(**{**base, **settings}))


def test_the_audit_part_says_when_no_signer_is_configured() -> None:
    assert _signer_audit(_services()) == {
        "entries": [],
        "error": "this gateway has no signer configured",
    }


def test_the_audit_part_says_when_the_signer_does_not_answer() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    answer = _signer_audit(_services(signer_url=url, signer_secret="00" * 32))
    assert answer["entries"] == []
    assert answer["error"].startswith("the signer did not answer: signer not reachable")


@pytest.fixture(scope="module")
def result() -> TrainingResult:
    """A three-node fit of the spector data (32 rows), in this process."""
    data = load_dataset("spector")
    parts = [data.take(ix) for ix in split_rows(data, 3)]
    return run_in_process(parts, JobConfig(data.feature_names, data.label, n_nodes=3))


def test_a_training_run_is_read_from_a_verified_card_and_a_missing_or_forged_bundle_is_skipped(
    tmp_path: Path, result: TrainingResult
) -> None:
    written = write_bundle(result_to_card(result, secure=True, job_name="j"), tmp_path)
    version = {"version": 1, "model_hash": "0x" + written.sha256}
    run = _training_run(tmp_path, 7, version)
    assert run is not None
    assert (run["subnet_id"], run["rounds"], run["n_rows"]) == (7, result.iterations, 32)
    assert [h["round"] for h in run["history"]] == list(range(1, result.iterations + 1))
    assert _training_run(tmp_path, 7, {"version": 2, "model_hash": "0x" + "ab" * 32}) is None
    (Path(written.path) / "card.json").write_text("{}")  # the digest no longer matches
    assert _training_run(tmp_path, 7, version) is None


def test_a_verified_card_with_a_malformed_training_section_is_left_out_not_a_500(
    tmp_path: Path, result: TrainingResult
) -> None:
    good = result_to_card(result, secure=True, job_name="j")
    malformed = [
        {"training": ["not", "an", "object"]},
        {"training": {**good["training"], "rounds": "many"}},
        {"training": {**good["training"], "history": [{"loglik": "x"}]}},
        {"training": {**good["training"], "min_nodes": "some"}},
        {"nodes": [{"operator_address": "0x" + "11" * 20}]},  # no n_rows
        {
            "training": {**good["training"], "dropped_nodes": ["node two"]}
        },  # Flower node ids are ints
    ]
    for i, change in enumerate(malformed):
        written = write_bundle({**good, **change}, tmp_path / str(i))  # self-consistent bundle
        version = {"version": 1, "model_hash": "0x" + written.sha256}
        assert _training_run(tmp_path / str(i), 7, version) is None, change
    dropped = list(range(1, MAX_ITEMS + 6))  # Flower node ids
    card = {**good, "training": {**good["training"], "dropped_nodes": dropped}}
    written = write_bundle(card, tmp_path / "many")
    run = _training_run(tmp_path / "many", 7, {"version": 1, "model_hash": "0x" + written.sha256})
    assert run is not None and run["dropped_nodes"] == dropped[:MAX_ITEMS]


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The digests ``core.bundle.verify_bundle`` is asked to check, in order (it still checks)."""
    digests: list[str] = []
    verify = core.bundle.verify_bundle

    def counted(path: Path, digest: str) -> Any:
        digests.append(digest)
        return verify(path, digest)

    monkeypatch.setattr(core.bundle, "verify_bundle", counted)
    return digests


def test_a_second_load_does_not_verify_again_and_a_changed_onchain_hash_is_verified(
    tmp_path: Path, result: TrainingResult, verified: list[str]
) -> None:
    first = write_bundle(result_to_card(result, secure=True, job_name="first"), tmp_path)
    other = write_bundle(result_to_card(result, secure=True, job_name="other"), tmp_path)
    runs = TrainingRuns(max_entries=2)
    as_first = {"version": 1, "model_hash": "0x" + first.sha256}
    as_other = {"version": 1, "model_hash": "0x" + other.sha256}  # the chain changed v1's hash

    async def go() -> list[dict[str, Any] | None]:
        return [
            await runs.run(tmp_path, 7, as_first),
            await runs.run(tmp_path, 7, as_first),  # the second page load
            await runs.run(tmp_path, 7, as_other),
            await runs.run(tmp_path, 7, as_other),
            await runs.run(tmp_path, 7, as_first),  # and back (a revert): verified again
        ]

    answers = asyncio.run(go())
    assert verified == [first.sha256, other.sha256, first.sha256]
    assert [a["job_name"] for a in answers if a is not None] == [
        "first", "first", "other", "other", "first"
    ]  # fmt: skip
    assert answers[2] is not None and answers[2]["model_hash"] == "0x" + other.sha256
    assert len(runs) == 1  # one record per (subnet, version)


def test_the_training_run_cache_is_bounded_and_keeps_no_unverified_bundle(
    tmp_path: Path, result: TrainingResult, verified: list[str]
) -> None:
    written = write_bundle(result_to_card(result, secure=True, job_name="j"), tmp_path)
    runs = TrainingRuns(max_entries=2)
    version = {"version": 1, "model_hash": "0x" + written.sha256}
    absent = {"version": 9, "model_hash": "0x" + "ab" * 32}

    async def go() -> list[dict[str, Any] | None]:
        out = [await runs.run(tmp_path, subnet_id, version) for subnet_id in (1, 2, 3)]
        out.append(await runs.run(tmp_path, 1, version))  # dropped by the bound: verified again
        out.append(await runs.run(tmp_path, 4, absent))
        (Path(written.path) / "card.json").write_text("{}")  # forged after its record was kept
        out.append(await runs.run(tmp_path, 5, version))  # a new key: verified, fails
        out.append(await runs.run(tmp_path, 5, version))  # a failure is not kept: tried again
        return out

    answers = asyncio.run(go())
    assert len(runs) == 2
    assert verified == [written.sha256] * 6
    assert [a is not None for a in answers] == [True, True, True, True, False, False, False]
