"""Flower ServerApp: drives the federated Newton job (thin glue over :mod:`trainer.task`).

Uses Flower's legacy path because SecAgg+ lives there in Flower 1.41:
`DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(...))` on the server and
`secaggplus_mod` on the clients. Per Newton round that is 4 message round trips
(setup, share keys, collect masked vectors, unmask); without SecAgg+ it is 1. There is
no separate evaluation round trip: held-out metrics ride along with every fit reply.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from logging import ERROR, INFO
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Context, Message
from flwr.common import (
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    Parameters,
    Scalar,
    log,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common.constant import ErrorCode
from flwr.server import LegacyContext, ServerConfig
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import Strategy
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.serverapp import Grid, ServerApp

from trainer.exactsum import MODULUS_RANGE, ExactSumCodec
from trainer.flower_config import RunSettings, run_settings
from trainer.newton import TrainingError
from trainer.task import NodeReport, TrainingJob, TrainingResult

__all__ = ["FastPollGrid", "NewtonStrategy", "app", "build_server_app", "run_job"]

POLL_INTERVAL_S = 0.05
"""Reply polling interval of :class:`FastPollGrid` (Flower's own grids sleep 3 s)."""

MAX_HALTED_ROUNDS = 2
"""Rounds that SecAgg+ may halt (a node dropped during key exchange) and that are retried
without the silent node; one more halt aborts the run."""


class FastPollGrid(Grid):
    """A Grid that polls for replies every 50 ms and never waits forever.

    Flower's deployment grid sleeps 3 s between polls; with 4 round trips per
    SecAgg+ round that alone adds up to 12 s per Newton iteration.

    Args:
        inner: the grid Flower gave the ServerApp.
        default_timeout_s: timeout used when a caller passes `timeout=None`.
    """

    def __init__(self, inner: Grid, default_timeout_s: float) -> None:
        self._inner = inner
        self._default_timeout_s = default_timeout_s
        self.round_trips = 0
        self.silent: set[int] = set()
        """Node ids that were sent a message and never answered it in time (or that the
        SuperLink reported unavailable): a node that went silent once stays out."""

    def set_run(self, run: Any) -> None:  # noqa: D102
        self._inner.set_run(run)

    @property
    def run(self) -> Any:  # noqa: D102
        return self._inner.run

    def create_message(self, *args: Any, **kwargs: Any) -> Message:  # noqa: D102
        return self._inner.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:  # noqa: D102
        return self._inner.get_node_ids()

    def node_names(self) -> dict[int, str]:
        """Each connected node's name as registered with the SuperLink ("" when none).

        With SuperNode authentication bound to NodeRegistry the name is the holder's address
        (:mod:`trainer.nodeauth`); grids without node records give no names.

        Returns:
            node id -> name.
        """
        get_nodes = getattr(self._inner, "get_nodes", None)
        if get_nodes is None:
            return {}
        return {int(n.node_id): str(getattr(n, "name", "") or "") for n in get_nodes()}

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:  # noqa: D102
        return self._inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:  # noqa: D102
        return self._inner.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Push messages, then poll for their replies.

        Args:
            messages: messages to send.
            timeout: seconds to wait for all replies (None = the default timeout).

        Returns:
            The replies that arrived in time (error replies included).
        """
        self.round_trips += 1
        messages = list(messages)
        waiting = {m.metadata.dst_node_id for m in messages}
        msg_ids = set(self._inner.push_messages(messages))
        deadline = time.monotonic() + (timeout if timeout is not None else self._default_timeout_s)
        replies: list[Message] = []
        while msg_ids:
            got = list(self._inner.pull_messages(msg_ids))
            replies.extend(got)
            msg_ids.difference_update(m.metadata.reply_to_message_id for m in got)
            if not msg_ids or time.monotonic() >= deadline:
                break
            time.sleep(POLL_INTERVAL_S)
        for reply in replies:
            unavailable = reply.has_error() and reply.error.code == ErrorCode.NODE_UNAVAILABLE
            if not unavailable:
                waiting.discard(reply.metadata.src_node_id)
        self.silent |= waiting
        return replies


class NewtonStrategy(Strategy):
    """Legacy Flower strategy around a :class:`~trainer.task.TrainingJob`.

    Round 1 goes to every node and needs all `n_nodes` of them; they are the job's
    participants. Later rounds go to the participants still answering: a node that went
    silent (see :attr:`FastPollGrid.silent`) or was missing from a round's results is left
    out for the rest of the run, as long as `job.quorum` nodes remain. A round that SecAgg+
    halted (a node dropped during its key exchange) is retried, at most
    :data:`MAX_HALTED_ROUNDS` times.

    Args:
        settings: the run settings.
        on_round: called with the job after every absorbed round.
        silent_nodes: returns the node ids that stopped answering (default: none).
        node_names: returns each node's registered name; a name that is an address (set by
            :func:`trainer.nodeauth.admit_node`) must equal the operator address the node
            reports (default: no names, no check).
    """

    def __init__(
        self,
        settings: RunSettings,
        on_round: Callable[[TrainingJob], None] | None = None,
        silent_nodes: Callable[[], set[int]] | None = None,
        node_names: Callable[[], dict[int, str]] | None = None,
    ) -> None:
        self.settings = settings
        self.job = TrainingJob(settings.job)
        self.codec = ExactSumCodec(settings.job.n_nodes)
        self.on_round = on_round
        self.silent_nodes = silent_nodes or set
        self.node_names = node_names or dict
        self.names: dict[int, str] = {}
        self.participants: set[int] = set()
        self.excluded: set[int] = set()
        self.halted_rounds = 0
        self._last_absorbed_round = 0

    def __repr__(self) -> str:
        return f"NewtonStrategy(secure={self.settings.secure}, n_nodes={self.settings.job.n_nodes})"

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        """Initial iterate (so Flower does not ask a client for one).

        Args:
            client_manager: unused.

        Returns:
            The first round request.
        """
        return ndarrays_to_parameters(self.job.request().to_arrays())

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """Send the current iterate to every participating node, or nothing once done.

        Args:
            server_round: Flower's round number (1-based).
            parameters: ignored; the job holds the iterate.
            client_manager: Flower's node registry.

        Returns:
            One instruction per node; empty when the job is done.

        Raises:
            TrainingError: if SecAgg+ halted more than :data:`MAX_HALTED_ROUNDS` rounds,
                fewer than `quorum` participants remain, or the nodes did not all connect
                for round 1.
        """
        if self.job.done:
            return []
        if server_round != self._last_absorbed_round + 1:
            self.halted_rounds += 1
            self._last_absorbed_round = server_round - 1
            if self.halted_rounds > MAX_HALTED_ROUNDS:
                raise TrainingError(
                    f"round {self.job.model.iteration + 1} did not complete {self.halted_rounds} "
                    "times (nodes dropped out or timed out during secure aggregation); "
                    "training aborted"
                )
            log(INFO, "twopm: round %s halted; retrying without silent nodes",
                self.job.model.iteration + 1)  # fmt: skip
        n = self.settings.job.n_nodes
        if not self.participants:
            clients = self._all_nodes(client_manager, n)
            self.participants = {c.node_id for c in clients}
            self.names = self.node_names()
        else:
            self.excluded |= self.silent_nodes() & self.participants
            clients = [
                c
                for c in client_manager.all().values()
                if c.node_id in self.participants and c.node_id not in self.excluded
            ]
            quorum = self.settings.job.quorum
            if len(clients) < quorum:
                raise TrainingError(
                    f"round {self.job.model.iteration + 1}: only {len(clients)} of the job's "
                    f"{n} nodes remain (minimum {quorum}); nodes {sorted(self.excluded)} "
                    "dropped out; training aborted"
                )
        ins = FitIns(ndarrays_to_parameters(self.job.request().to_arrays()), {})
        return [(c, ins) for c in sorted(clients, key=lambda c: c.node_id)]

    def _all_nodes(self, client_manager: ClientManager, n: int) -> list[ClientProxy]:
        # num_available() refreshes Flower's node list (wait_for only wakes every 5 s)
        deadline = time.monotonic() + self.settings.round_timeout_s
        while client_manager.num_available() < n and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_S * 4)
        if client_manager.num_available() < n:
            raise TrainingError(
                f"only {client_manager.num_available()} of {n} nodes connected within "
                f"{self.settings.round_timeout_s:.0f} s"
            )
        clients = list(client_manager.all().values())
        if len(clients) != n:
            raise TrainingError(f"{len(clients)} nodes are connected, the job expects exactly {n}")
        return clients

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Recover the exact sums, check the row counts, and take the Newton step.

        Args:
            server_round: Flower's round number.
            results: one result per node whose vector was summed (under SecAgg+ each
                carries the aggregate).
            failures: failed nodes (left out of the rest of the run).

        Returns:
            (next request, {}).

        Raises:
            TrainingError: if fewer than `quorum` nodes were summed.
            trainer.task.RowCountError: if the clear row counts differ from the secure sum.
        """
        quorum = self.settings.job.quorum
        n = self.settings.job.n_nodes
        if len(results) < quorum:
            raise TrainingError(
                f"round {server_round}: {len(results)} of {n} nodes answered, fewer than the "
                f"minimum of {quorum} ({len(failures)} failed: {_describe(failures)}); "
                "training aborted"
            )
        self._last_absorbed_round = server_round
        if self.settings.secure:
            # SecAgg+ put the same aggregate (mean of unit-weight vectors) in every result
            mean = parameters_to_ndarrays(results[0][1].parameters)[0]
            total = self.codec.decode_mean(mean, n_active=len(results))
        else:
            total = np.sum([parameters_to_ndarrays(r.parameters)[0] for _, r in results], axis=0)
        reports = [_report(proxy.node_id, res.metrics) for proxy, res in results]
        for r in reports:
            name = self.names.get(r.node_id, "")
            if name.startswith("0x") and name.lower() != r.operator_address.lower():
                raise TrainingError(
                    f"node {r.node_id} was admitted for {name} but reports operator address "
                    f"{r.operator_address or '(none)'}; training aborted"
                )
        if self.participants:
            self.excluded |= self.participants - {r.node_id for r in reports}
        self.job.absorb(total, reports)
        # a node silent before any round completed never reached the job's own record
        self.job.dropped |= self.excluded
        if self.on_round is not None:
            self.on_round(self.job)
        return ndarrays_to_parameters(self.job.request().to_arrays()), {}

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        """No evaluation round trip: held-out metrics come with the fit replies.

        Returns:
            An empty list.
        """
        return []

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        """Unused (see :meth:`configure_evaluate`).

        Returns:
            (None, {}).
        """
        return None, {}

    def evaluate(
        self, server_round: int, parameters: Parameters
    ) -> tuple[float, dict[str, Scalar]] | None:
        """No centralised evaluation (the server holds no data).

        Returns:
            None.
        """
        return None


def _describe(failures: list[Any]) -> str:
    parts = []
    for f in failures[:3]:
        parts.append(str(f) if isinstance(f, BaseException) else f"node {f[0].node_id}")
    return "; ".join(parts) or "none"


def _report(node_id: int, metrics: dict[str, Any]) -> NodeReport:
    def num(key: str) -> float | None:
        v = metrics.get(key)
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)

    return NodeReport(
        node_id=int(node_id),
        operator_address=str(metrics.get("operator_address", "")),
        n_rows=int(metrics.get("n_rows", 0)),
        n_holdout=int(metrics.get("n_holdout", 0)),
        metrics={
            "log_loss": num("holdout_log_loss"),
            "accuracy": num("holdout_accuracy"),
            "roc_auc": num("holdout_roc_auc"),
        },
    )


def run_job(grid: Grid, context: Context, settings: RunSettings) -> tuple[TrainingResult, int]:
    """Run the whole job on a grid.

    Args:
        grid: Flower grid (deployment or simulation).
        context: the ServerApp context.
        settings: the run settings.

    Returns:
        (result, message round trips used).

    Raises:
        TrainingError: if a round fails or the job never finishes.
    """
    progress = _ProgressWriter(settings.output_dir)
    fast = FastPollGrid(grid, settings.round_timeout_s)
    strategy = NewtonStrategy(
        settings,
        on_round=lambda job: progress.round(job, fast.round_trips),
        silent_nodes=lambda: set(fast.silent),
        node_names=fast.node_names,
    )
    legacy = LegacyContext(
        context=context,
        config=ServerConfig(num_rounds=settings.job.max_iter + MAX_HALTED_ROUNDS),
        strategy=strategy,
    )
    try:
        fit_workflow = None
        if settings.secure:
            n = settings.job.n_nodes
            fit_workflow = SecAggPlusWorkflow(
                # every node holds a share of every secret; any `quorum` of them recover it
                # (Flower needs the threshold below the share count; the strategy still
                # refuses a round summed over fewer than `quorum` nodes)
                num_shares=n if n > 2 else 1.0,
                reconstruction_threshold=min(settings.job.quorum, n - 1) if n > 2 else 1.0,
                max_weight=1.0,
                clipping_range=strategy.codec.clipping_range,
                quantization_range=strategy.codec.quantization_range,
                modulus_range=MODULUS_RANGE,
                timeout=settings.round_timeout_s,
            )
        DefaultWorkflow(fit_workflow=fit_workflow)(fast, legacy)
        if not strategy.job.done:
            raise TrainingError(
                f"training stopped after {strategy.job.model.iteration} of at most "
                f"{settings.job.max_iter} rounds: a round did not complete (node dropped out?)"
            )
    except Exception as exc:
        progress.failed(str(exc))
        raise
    return strategy.job.result(), fast.round_trips


class _ProgressWriter:
    """Appends one JSON line per round to `output_dir/progress.jsonl`."""

    def __init__(self, output_dir: str) -> None:
        self.path = Path(output_dir) / "progress.jsonl" if output_dir else None
        self.t0 = time.monotonic()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def _write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        record["elapsed_s"] = round(time.monotonic() - self.t0, 3)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def round(self, job: TrainingJob, round_trips: int) -> None:
        last = job.model.history[-1]
        self._write(
            {
                "event": "round",
                "round": last.iteration,
                "max_iter": job.config.max_iter,
                "grad_max_abs": last.grad_max_abs,
                "loglik": last.loglik,
                "round_trips": round_trips,
                "nodes": len(job.nodes),
                "dropped_nodes": sorted(job.dropped),
                "done": job.done,
            }
        )

    def failed(self, message: str) -> None:
        self._write({"event": "failed", "error": message})


def build_server_app(defaults: Mapping[str, Any] | None = None) -> ServerApp:
    """A ServerApp whose run config falls back to `defaults` (for the simulation runtime).

    Args:
        defaults: run-config values used where the run config has none.

    Returns:
        The ServerApp: trains, then writes `result.json` and the bundle.
    """
    frozen = dict(defaults or {})
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        _main(grid, context, {**frozen, **context.run_config})

    return server_app


def _main(grid: Grid, context: Context, run_config: Mapping[str, Any]) -> None:
    from trainer._flwr_tuning import speed_up_object_pulls
    from trainer.bundle import result_to_card, write_bundle

    speed_up_object_pulls()
    settings = run_settings(run_config)
    t0 = time.monotonic()
    try:
        result, round_trips = run_job(grid, context, settings)
    except Exception as exc:
        log(ERROR, "twopm training failed: %s", exc)
        raise
    wall_s = time.monotonic() - t0
    card = result_to_card(result, secure=settings.secure, job_name=settings.job_name,
                          round_trips=round_trips)  # fmt: skip
    out: dict[str, Any] = {"card": card, "wall_s": wall_s, "round_trips": round_trips}
    if settings.model_store:
        bundle = write_bundle(card, settings.model_store)
        out["bundle_path"] = str(bundle.path)
        out["sha256"] = bundle.sha256
    log(INFO, "twopm training finished: %s rounds, %s round trips, %.1f s",
        result.iterations, round_trips, wall_s)  # fmt: skip
    if settings.output_dir:
        path = Path(settings.output_dir) / "result.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=2), encoding="utf-8")
        tmp.replace(path)


app = build_server_app()
