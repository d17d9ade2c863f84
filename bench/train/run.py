"""Federated training benchmark: wall time, Newton rounds, message round trips.

For Spector (unpenalised) and breast cancer (L2, C = 1) split IID over 3 nodes, plain
sums and SecAgg+, in

* `inprocess`  - the same job with every node in this process (pure NumPy, the baseline),
* `simulation` - Flower's simulation runtime (`run_simulation`, Ray backend),
* `deployment` - Flower's deployment runtime: a SuperLink and 3 SuperNode processes on
  loopback, the run submitted with `flwr run` (what `twopm train` does).

Each measurement runs in its own child process (`--one`); the peak RSS reported is the
largest resident set of that child or of any process it started and waited for (the
SuperLink, the SuperNodes; RUSAGE_SELF and RUSAGE_CHILDREN).
Times are also given as a ratio to the in-process baseline of the same data set and mode.
`wall_s` is the ServerApp's training time (first round sent to result); `e2e_s` adds
starting the SuperLink/SuperNodes (deployment) or Ray (simulation) and submitting the run.

Usage: `python bench/train/run.py [--quick] [--out bench/train/results/train.json]`
(`--quick`: Spector only).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _job(dataset: str) -> tuple[Any, dict[str, Any]]:
    from trainer.data import load_dataset

    data = load_dataset(dataset)
    cfg: dict[str, Any] = {
        "features": ",".join(data.feature_names),
        "label": data.label,
        "l2-c": 1.0 if dataset == "breast-cancer" else 0.0,
        "n-nodes": 3,
        "gtol": 1e-8,
        "round-timeout-s": 120.0,
        "model-store": "",
    }
    return data, cfg


def _write_nodes(data: Any, directory: Path) -> list[Path]:
    from trainer.data import split_rows, write_csv

    paths = []
    for i, rows in enumerate(split_rows(data, 3, mode="iid")):
        path = directory / f"node-{i}.csv"
        write_csv(data.take(rows), path)
        paths.append(path)
    return paths


def measure_one(runtime: str, dataset: str, secure: bool) -> dict[str, Any]:
    """One measurement (run in a child process)."""
    data, cfg = _job(dataset)
    cfg["secure"] = secure
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    t0 = time.perf_counter()
    if runtime == "inprocess":
        from trainer.exactsum import ExactSumCodec
        from trainer.flower_config import job_config_from_run_config
        from trainer.task import run_in_process

        parts = [data.take(rows) for rows in _split(data)]
        job = job_config_from_run_config(cfg)
        fit = run_in_process(parts, job, codec=ExactSumCodec(3) if secure else None)
        wall = time.perf_counter() - t0
        return {"wall_s": wall, "e2e_s": wall, "rounds": fit.iterations,
                "round_trips": fit.iterations * (4 if secure else 1),
                "intercept": fit.intercept}  # fmt: skip
    paths = _write_nodes(data, tmp)
    if runtime == "simulation":
        from flwr.simulation import run_simulation

        from trainer.client_app import build_client_app
        from trainer.server_app import build_server_app

        cfg["data-dir"] = str(tmp)
        cfg["output-dir"] = str(tmp / "out")
        run_simulation(
            build_server_app(cfg),
            build_client_app(cfg),
            num_supernodes=3,
            backend_config={
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": {"num_cpus": 2, "logging_level": "error"},
            },
        )
        result: dict[str, Any] = json.loads((tmp / "out" / "result.json").read_text())
    elif runtime == "deployment":
        from trainer.deployment import LocalFederation

        with LocalFederation(paths, workdir=tmp / "fed") as fed:
            result = fed.run(cfg, timeout_s=1200)
    else:
        raise SystemExit(f"unknown runtime {runtime}")
    e2e = time.perf_counter() - t0
    card = result["card"]
    return {"wall_s": result["wall_s"], "e2e_s": e2e, "rounds": card["training"]["rounds"],
            "round_trips": result["round_trips"], "intercept": card["intercept"]}  # fmt: skip


def _split(data: Any) -> list[Any]:
    from trainer.data import split_rows

    return split_rows(data, 3, mode="iid")


def _child(runtime: str, dataset: str, secure: bool) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--one", runtime, dataset, "secure" if secure else "plain"],
        capture_output=True, text=True, cwd=ROOT, timeout=1800, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"{runtime}/{dataset} failed:\n{proc.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    """Run every measurement, write JSON and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="Spector only")
    ap.add_argument("--runtimes", default="inprocess,simulation,deployment")
    ap.add_argument("--out", default=str(ROOT / "bench" / "train" / "results" / "train.json"))
    ap.add_argument(
        "--one", nargs=3, metavar=("RUNTIME", "DATASET", "MODE"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.one:
        runtime, dataset, mode = args.one
        m = measure_one(runtime, dataset, mode == "secure")
        # largest resident set of this process and of its waited-for children (Linux: KiB)
        peak_kib = max(resource.getrusage(who).ru_maxrss
                       for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))  # fmt: skip
        m["peak_rss_mb"] = round(peak_kib / 1024, 1)
        print(json.dumps(m))
        return
    datasets = ["spector"] if args.quick else ["spector", "breast-cancer"]
    rows = []
    for dataset in datasets:
        for secure in (False, True):
            base = None
            for runtime in args.runtimes.split(","):
                m = _child(runtime, dataset, secure)
                if runtime == "inprocess":
                    base = m["wall_s"]
                m.update(runtime=runtime, dataset=dataset, secure=secure)
                m["ratio_to_inprocess"] = None if not base else m["wall_s"] / base
                rows.append(m)
                print(f"  {dataset:13s} {'secagg+' if secure else 'plain':7s} {runtime:10s} "
                      f"wall {m['wall_s']:8.2f} s", file=sys.stderr, flush=True)  # fmt: skip
    report = {
        "benchmark": "train",
        "machine": {"python": platform.python_version(), "cpus": _cpus(), "load": _load()},
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    _table(rows)
    print(f"\nwritten {args.out}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _load() -> list[float]:
    import os

    return [round(x, 2) for x in os.getloadavg()]


def _table(rows: list[dict[str, Any]]) -> None:
    head = ("data set", "sums", "runtime", "rounds", "round trips", "wall s", "x in-proc",
            "e2e s", "peak RSS MB")  # fmt: skip
    print(" | ".join(head))
    print("|".join("-" * (len(h) + 2) for h in head))
    for r in rows:
        ratio = "1" if r["runtime"] == "inprocess" else f"{r['ratio_to_inprocess']:.0f}"
        print(" | ".join([
            r["dataset"], "secagg+" if r["secure"] else "plain", r["runtime"], str(r["rounds"]),
            str(r["round_trips"]), f"{r['wall_s']:.2f}", ratio, f"{r['e2e_s']:.1f}",
            f"{r['peak_rss_mb']:.0f}",
        ]))  # fmt: skip


if __name__ == "__main__":
    main()
