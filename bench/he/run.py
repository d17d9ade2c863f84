"""bench/he: encrypted inference for the 30-feature breast-cancer model, one run.

Each figure sits beside a naive TenSEAL baseline measured in the same process:
the per-feature loop with TenSEAL's auto-rescale (column layout) and the tutorial
``dot`` with all Galois keys (one row). Times are the best of a few repetitions (the
least disturbed by other processes on a shared machine, as ``timeit`` advises);
peak RSS (``ru_maxrss``, the process peak so far) is printed beside each. Writes
``bench/he/results.json`` and prints a table.

    .venv/bin/python bench/he/run.py [--out FILE] [--reps N] [--only sets]

``--only sets`` measures just the one-row parameter sets (``compact``, ``precise``) over all 569
breast-cancer rows beside today's one-row coeff request (N = 8192) as the in-process baseline
and Concrete ML's published figures (984 B up, 11 KB down, median |logit error| 0.03).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tenseal as ts
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ckks import DEFAULT_PARAMS, PARAM_SETS, ClientContext, Layout, SetClient, Wire
from gateway.he import HeEvaluator, LinearModel, measure_logit_error

CONCRETE_ML = {"bytes_up": 984, "bytes_down": 11_000, "median_abs_logit_error": 0.03}
"""Concrete ML's published one-row figures for logistic regression (the issue's anchor)."""

SLOTS = DEFAULT_PARAMS.slots


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_s(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def best_cpu_s(fn: Callable[[], Any], reps: int) -> float:
    """Best process CPU time of ``fn``: time spent waiting for a shared core is not counted."""
    times = []
    for _ in range(reps):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def data() -> tuple[np.ndarray, LinearModel, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    lr = LogisticRegression(max_iter=5000).fit(x, y)
    model = LinearModel.from_arrays(lr.coef_[0], lr.intercept_[0])
    rows = x[np.random.default_rng(0).integers(0, x.shape[0], size=SLOTS)]
    return rows, model, rows @ lr.coef_[0] + lr.intercept_[0]


def tenseal_context(galois: bool) -> ts.Context:
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, DEFAULT_PARAMS.poly_modulus_degree, -1, [60, 40, 60])
    ctx.global_scale = DEFAULT_PARAMS.scale
    if galois:
        ctx.generate_galois_keys()
    return ctx


def bench_column(rows, model, expected, reps) -> dict[str, Any]:
    n = rows.shape[0]
    client = ClientContext.create(layout=Layout.COLUMN)
    ev = HeEvaluator(DEFAULT_PARAMS)
    request = client.encrypt(rows)
    ev.evaluate(request, model)  # warm the model cache
    results = []
    for _ in range(reps):
        results.append(ev.evaluate(request, model))
    pick = min(results, key=lambda r: r.server_s)
    err = float(np.abs(client.decrypt_logits(pick.response) - expected).max())
    cpu_s = best_cpu_s(lambda: ev.evaluate(request, model), reps)
    ours = {
        "server_cpu_us_per_prediction": cpu_s / n * 1e6,
        "server_us_per_prediction": pick.server_s / n * 1e6,
        "kernel_us_per_prediction": pick.kernel_s / n * 1e6,
        "load_us_per_prediction": pick.load_s / n * 1e6,
        "save_us_per_prediction": pick.save_s / n * 1e6,
        "bytes_up_per_prediction": len(request) / n,
        "bytes_down_per_prediction": len(pick.response) / n,
        "context_bytes": len(client.public_bytes()),
        "max_abs_logit_error": err,
        "peak_rss_mb": peak_rss_mb(),
    }

    # Baseline: plain TenSEAL, public-key encryption, per-feature loop with auto-rescale.
    ctx = tenseal_context(galois=False)
    public = ts.context_from(ctx.serialize(save_secret_key=False))
    up = [ts.ckks_vector(ctx, rows[:, j].tolist()).serialize() for j in range(rows.shape[1])]

    def server() -> tuple[bytes, float, float]:
        t0 = time.perf_counter()
        vecs = [ts.ckks_vector_from(public, b) for b in up]
        t1 = time.perf_counter()
        acc = vecs[0] * model.weights[0]
        for v, w in zip(vecs[1:], model.weights[1:], strict=True):
            acc += v * w
        acc += model.intercept
        t2 = time.perf_counter()
        return acc.serialize(), t1 - t0, t2 - t1

    server()
    base_s, (down, load_s, kernel_s) = best_s(server, reps)
    out = ts.ckks_vector_from(ctx, down).decrypt()
    base_cpu_s = best_cpu_s(server, reps)
    baseline = {
        "server_cpu_us_per_prediction": base_cpu_s / n * 1e6,
        "server_us_per_prediction": base_s / n * 1e6,
        "kernel_us_per_prediction": kernel_s / n * 1e6,
        "load_us_per_prediction": load_s / n * 1e6,
        "bytes_up_per_prediction": sum(map(len, up)) / n,
        "bytes_down_per_prediction": len(down) / n,
        "context_bytes": len(ctx.serialize(save_secret_key=False)),
        "max_abs_logit_error": float(np.abs(np.array(out) - expected).max()),
        "peak_rss_mb": peak_rss_mb(),
    }
    compact = bench_column_compact(client, ev, rows, model, reps)
    return {"ours": ours, "ours_compact": compact, "baseline": baseline}


def bench_column_compact(client, ev, rows, model, reps) -> dict[str, Any]:
    """The same batch with seeded, compressed ciphertexts (``Wire.COMPACT``)."""
    n = rows.shape[0]
    request = client.encrypt(rows, wire=Wire.COMPACT)
    pick = min((ev.evaluate(request, model) for _ in range(reps)), key=lambda r: r.server_s)
    return {
        "server_us_per_prediction": pick.server_s / n * 1e6,
        "kernel_us_per_prediction": pick.kernel_s / n * 1e6,
        "load_us_per_prediction": pick.load_s / n * 1e6,
        "bytes_up_per_prediction": len(request) / n,
        "peak_rss_mb": peak_rss_mb(),
    }


def bench_one_row(layout: Layout, row, model, expected_logit, reps) -> dict[str, Any]:
    client = ClientContext.create(layout=layout, n_features=row.shape[0])
    ev = HeEvaluator(DEFAULT_PARAMS)
    ev.add_context(client.public_bytes())
    x = row[None, :]
    request = client.encrypt(x)
    ev.evaluate(request, model, context_id=client.context_id)

    def end_to_end() -> float:
        req = client.encrypt(x)
        res = ev.evaluate(req, model, context_id=client.context_id)
        return float(client.decrypt_logits(res.response)[0])

    servers = [ev.evaluate(request, model, context_id=client.context_id) for _ in range(reps)]
    pick = min(servers, key=lambda r: r.server_s)
    e2e_s, logit = best_s(end_to_end, reps)
    cpu_s = best_cpu_s(lambda: ev.evaluate(request, model, context_id=client.context_id), reps)
    e2e_cpu_s = best_cpu_s(end_to_end, reps)
    return {
        "server_cpu_ms": cpu_s * 1e3,
        "end_to_end_cpu_ms": e2e_cpu_s * 1e3,
        "server_ms": pick.server_s * 1e3,
        "kernel_ms": pick.kernel_s * 1e3,
        "end_to_end_ms": e2e_s * 1e3,
        "bytes_up": len(request),
        "bytes_down": len(pick.response),
        "context_bytes": len(client.public_bytes()),
        "abs_logit_error": abs(logit - expected_logit),
        "peak_rss_mb": peak_rss_mb(),
    }


def bench_pool(rows, model, reps) -> dict[str, Any]:
    """The column request through a one-worker pool: adds pickling and the pipe."""
    from gateway.he import HePool, HePoolSettings

    client = ClientContext.create(layout=Layout.COLUMN)
    request = client.encrypt(rows)

    async def go() -> float:
        async with HePool(DEFAULT_PARAMS, HePoolSettings(workers=1, max_queue=0)) as pool:
            await pool.evaluate(request, model=model)
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                await pool.evaluate(request, model=model)
                times.append(time.perf_counter() - t)
            return min(times)

    import asyncio

    seconds = asyncio.run(go())
    return {"server_us_per_prediction": seconds / rows.shape[0] * 1e6, "peak_rss_mb": peak_rss_mb()}


def bench_row_baseline(row, model, expected_logit, reps) -> dict[str, Any]:
    ctx = tenseal_context(galois=True)
    public_bytes = ctx.serialize(save_secret_key=False)
    public = ts.context_from(public_bytes)
    weights = list(model.weights)

    def server(up: bytes) -> bytes:
        v = ts.ckks_vector_from(public, up)
        return (v.dot(weights) + model.intercept).serialize()

    up = ts.ckks_vector(ctx, row.tolist()).serialize()
    server(up)
    server_s, down = best_s(lambda: server(up), reps)

    def end_to_end() -> float:
        b = ts.ckks_vector(ctx, row.tolist()).serialize()
        return float(ts.ckks_vector_from(ctx, server(b)).decrypt()[0])

    e2e_s, logit = best_s(end_to_end, reps)
    return {
        "server_cpu_ms": best_cpu_s(lambda: server(up), reps) * 1e3,
        "end_to_end_cpu_ms": best_cpu_s(end_to_end, reps) * 1e3,
        "server_ms": server_s * 1e3,
        "end_to_end_ms": e2e_s * 1e3,
        "bytes_up": len(up),
        "bytes_down": len(down),
        "context_bytes": len(public_bytes),
        "abs_logit_error": abs(logit - expected_logit),
        "peak_rss_mb": peak_rss_mb(),
    }


def raw_model() -> tuple[np.ndarray, LinearModel, np.ndarray]:
    """All 569 rows in raw units and the model as a card states it (raw coefficients + scaler)."""
    x, y = load_breast_cancer(return_X_y=True)
    scaler = StandardScaler().fit(x)
    lr = LogisticRegression(max_iter=5000).fit(scaler.transform(x), y)
    w = lr.coef_[0] / scaler.scale_
    b = float(lr.intercept_[0] - w @ scaler.mean_)
    return x, LinearModel.from_arrays(w, b, scaler.mean_, scaler.scale_), x @ w + b


def bench_sets(reps: int) -> dict[str, Any]:
    """One row per request in each named set, every breast-cancer row; today's coeff row beside."""
    x, model, exact = raw_model()
    affine = model.affine()
    z = affine.standardise(x)
    ev = HeEvaluator(DEFAULT_PARAMS)
    out: dict[str, Any] = {}
    for name, pset in PARAM_SETS.items():
        client = SetClient(pset)
        up, down, errors, server, kernel, enc, dec = [], [], [], [], [], [], []
        ev.evaluate(client.encrypt(z[:1]), model)  # encode the model once
        for i in range(x.shape[0]):
            t = time.perf_counter()
            request = client.encrypt(z[i : i + 1])
            enc.append(time.perf_counter() - t)
            best = min((ev.evaluate(request, model) for _ in range(reps)), key=lambda r: r.server_s)
            t = time.perf_counter()
            logit = float(client.decrypt_logits(best.response)[0])
            dec.append(time.perf_counter() - t)
            up.append(len(request))
            down.append(len(best.response))
            server.append(best.server_s)
            kernel.append(best.kernel_s)
            errors.append(abs(logit - exact[i]))
        out[name] = {
            "poly_modulus_degree": pset.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(pset.coeff_mod_bit_sizes),
            "rows": int(x.shape[0]),
            "bytes_up_min_max": [min(up), max(up)],
            "bytes_up_median": float(np.median(up)),
            "bytes_down_min_max": [min(down), max(down)],
            "bytes_down_median": float(np.median(down)),
            "max_abs_logit_error": float(np.max(errors)),
            "median_abs_logit_error": float(np.median(errors)),
            "measured_bound_over_input_ball": measure_logit_error(pset, affine, rows=192),
            "server_ms_median": float(np.median(server)) * 1e3,
            "server_ms_max": float(np.max(server)) * 1e3,
            "kernel_ms_median": float(np.median(kernel)) * 1e3,
            "client_encrypt_ms_median": float(np.median(enc)) * 1e3,
            "client_decrypt_ms_median": float(np.median(dec)) * 1e3,
            "peak_rss_mb": peak_rss_mb(),
        }
    # Today's one-row request at N = 8192 (coeff layout, Wire.FAST), same rows, same process.
    client = ClientContext.create(layout=Layout.COEFF)
    ups, downs, errs, servers = [], [], [], []
    for i in range(0, x.shape[0], 8):
        request = client.encrypt(z[i : i + 1], Layout.COEFF)
        std_model = LinearModel.from_arrays(affine.weights, affine.intercept)
        best = min((ev.evaluate(request, std_model) for _ in range(reps)), key=lambda r: r.server_s)
        ups.append(len(request))
        downs.append(len(best.response))
        servers.append(best.server_s)
        errs.append(abs(float(client.decrypt_logits(best.response)[0]) - exact[i]))
    out["today_coeff_8192"] = {
        "rows": len(ups),
        "bytes_up_median": float(np.median(ups)),
        "bytes_down_median": float(np.median(downs)),
        "max_abs_logit_error": float(np.max(errs)),
        "median_abs_logit_error": float(np.median(errs)),
        "server_ms_median": float(np.median(servers)) * 1e3,
        "peak_rss_mb": peak_rss_mb(),
    }
    out["concrete_ml_published"] = CONCRETE_ML
    return out


def sets_table(sets: dict[str, Any]) -> str:
    today = sets["today_coeff_8192"]
    lines = [
        f"{'one row, breast cancer (569 rows)':34} {'up B':>8} {'down B':>8} {'max err':>9} "
        f"{'median err':>10} {'server ms':>9} {'up/today':>8} {'RSS MB':>7}"
    ]
    for name in (*PARAM_SETS, "today_coeff_8192"):
        r = sets[name]
        lines.append(
            f"{name:34} {r['bytes_up_median']:>8.0f} {r['bytes_down_median']:>8.0f} "
            f"{r['max_abs_logit_error']:>9.1e} {r['median_abs_logit_error']:>10.1e} "
            f"{r['server_ms_median']:>9.3f} {r['bytes_up_median'] / today['bytes_up_median']:>8.3f} "
            f"{r['peak_rss_mb']:>7.0f}"
        )
    c = sets["concrete_ml_published"]
    lines.append(
        f"{'Concrete ML (published)':34} {c['bytes_up']:>8} {c['bytes_down']:>8} {'':>9} "
        f"{c['median_abs_logit_error']:>10.1e}"
    )
    for name in PARAM_SETS:
        r = sets[name]
        lines.append(
            f"{name}: up {r['bytes_up_min_max'][0]}-{r['bytes_up_min_max'][1]} B, down "
            f"{r['bytes_down_min_max'][0]}-{r['bytes_down_min_max'][1]} B, max server "
            f"{r['server_ms_max']:.3f} ms, error bound measured over the input ball "
            f"{r['measured_bound_over_input_ball']:.1e}, client encrypt/decrypt "
            f"{r['client_encrypt_ms_median']:.2f}/{r['client_decrypt_ms_median']:.2f} ms"
        )
    return "\n".join(lines)


def table(results: dict[str, Any]) -> str:
    col, rows = results["column"], results["one_row"]
    lines = [
        f"{'measure':44} {'ours':>12} {'baseline':>12} {'ratio':>7} {'target':>10} {'RSS MB':>8}",
    ]

    def line(name, ours, base, target="", rss=None, fmt="{:.3f}"):
        ratio = f"{ours / base:.2f}" if base else ""
        rss_text = "" if rss is None else f"{rss:.0f}"
        lines.append(
            f"{name:44} {fmt.format(ours):>12} {fmt.format(base):>12} {ratio:>7} {target:>10} "
            f"{rss_text:>8}"
        )

    o, b = col["ours"], col["baseline"]
    pool = results["column_through_pool"]
    line(
        "column 4096 rows: server CPU us/prediction",
        o["server_cpu_us_per_prediction"],
        b["server_cpu_us_per_prediction"],
        "",
        o["peak_rss_mb"],
    )
    line(
        "column 4096 rows: server us/prediction",
        o["server_us_per_prediction"],
        b["server_us_per_prediction"],
        "<= 1.5",
        o["peak_rss_mb"],
    )
    line(
        "column 4096 rows: via 1-worker pool us/pred",
        pool["server_us_per_prediction"],
        b["server_us_per_prediction"],
        "",
        pool["peak_rss_mb"],
    )
    u = col["ours_compact"]
    line(
        "column compact wire: server us/prediction",
        u["server_us_per_prediction"],
        b["server_us_per_prediction"],
        "",
        u["peak_rss_mb"],
    )
    line(
        "column compact wire: bytes up/prediction",
        u["bytes_up_per_prediction"],
        b["bytes_up_per_prediction"],
        "<= 1024",
        fmt="{:.0f}",
    )
    line(
        "column 4096 rows: load us/prediction",
        o["load_us_per_prediction"],
        b["load_us_per_prediction"],
    )
    line(
        "column 4096 rows: kernel us/prediction",
        o["kernel_us_per_prediction"],
        b["kernel_us_per_prediction"],
        "",
        o["peak_rss_mb"],
    )
    line(
        "column: bytes up/prediction",
        o["bytes_up_per_prediction"],
        b["bytes_up_per_prediction"],
        "<= 1024",
        fmt="{:.0f}",
    )
    line(
        "column: bytes down/prediction",
        o["bytes_down_per_prediction"],
        b["bytes_down_per_prediction"],
        fmt="{:.0f}",
    )
    line(
        "column: max |logit error|",
        o["max_abs_logit_error"],
        b["max_abs_logit_error"],
        "<= 1e-4",
        fmt="{:.1e}",
    )
    base = rows["baseline_tenseal_dot"]
    for name in ("row", "coeff"):
        r = rows[name]
        line(
            f"one row ({name}): server CPU ms",
            r["server_cpu_ms"],
            base["server_cpu_ms"],
            "<= 5",
            r["peak_rss_mb"],
        )
        line(
            f"one row ({name}): end-to-end CPU ms",
            r["end_to_end_cpu_ms"],
            base["end_to_end_cpu_ms"],
            "",
            r["peak_rss_mb"],
        )
        line(
            f"one row ({name}): server ms",
            r["server_ms"],
            base["server_ms"],
            "<= 5",
            r["peak_rss_mb"],
        )
        line(
            f"one row ({name}): end-to-end ms",
            r["end_to_end_ms"],
            base["end_to_end_ms"],
            "",
            r["peak_rss_mb"],
        )
        line(f"one row ({name}): bytes up", r["bytes_up"], base["bytes_up"], fmt="{:.0f}")
        line(f"one row ({name}): bytes down", r["bytes_down"], base["bytes_down"], fmt="{:.0f}")
        line(
            f"one row ({name}): public context bytes",
            r["context_bytes"],
            base["context_bytes"],
            "<= 2.5e6",
            fmt="{:.0f}",
        )
        line(
            f"one row ({name}): |logit error|",
            r["abs_logit_error"],
            base["abs_logit_error"],
            "<= 1e-4",
            fmt="{:.1e}",
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", choices=["sets"], help="run one section only")
    args = parser.parse_args()
    if args.only == "sets":
        sets = bench_sets(args.reps)
        out = (
            args.out.with_name("results-sets.json") if args.out.name == "results.json" else args.out
        )
        out.write_text(json.dumps(sets, indent=2))
        print(sets_table(sets))
        print(f"\nwrote {out}")
        return
    rows, model, expected = data()
    results: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m_at_start": os.getloadavg()[0],
        },
        "params": DEFAULT_PARAMS.to_dict(),
        "model": {"dataset": "sklearn breast_cancer, standardised", "n_features": model.n_features},
        "column": bench_column(rows, model, expected, args.reps),
        "column_through_pool": bench_pool(rows, model, args.reps),
        "one_row": {
            "row": bench_one_row(Layout.ROW, rows[0], model, float(expected[0]), args.reps * 2),
            "coeff": bench_one_row(Layout.COEFF, rows[0], model, float(expected[0]), args.reps * 2),
            "baseline_tenseal_dot": bench_row_baseline(
                rows[0], model, float(expected[0]), args.reps * 2
            ),
        },
    }
    results["one_row_sets"] = bench_sets(args.reps)
    results["machine"]["load_average_1m_at_end"] = os.getloadavg()[0]
    args.out.write_text(json.dumps(results, indent=2))
    print(table(results))
    print()
    print(sets_table(results["one_row_sets"]))
    load = (
        results["machine"]["load_average_1m_at_start"],
        results["machine"]["load_average_1m_at_end"],
    )
    print(
        f"\nload average (1 min) at start/end: {load[0]:.1f} / {load[1]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
