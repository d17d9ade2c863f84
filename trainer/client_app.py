"""Flower ClientApp: a data holder's side of the federated Newton job (thin glue).

The SuperNode's `--node-config` gives `data-path` (the node's CSV) and optionally
`operator-address` (the data holder's Ethereum address, used for publication shares).
The maths lives in :mod:`trainer.task`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flwr.app import Context, Message
from flwr.client import NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS

from trainer.data import read_node_csv
from trainer.exactsum import ExactSumCodec
from trainer.flower_config import job_config_from_run_config, secure_from_run_config
from trainer.task import RoundRequest, compute_reply


class NewtonClient(NumPyClient):
    """Answers each round with the node's sums (encoded for SecAgg+ when secure).

    Args:
        context: the ClientApp context (run config and node config).
        defaults: run-config values used where the run config has none (simulation).
    """

    def __init__(self, context: Context, defaults: Mapping[str, Any] | None = None) -> None:
        self.context = context
        self.run_config: dict[str, Any] = {**(defaults or {}), **context.run_config}

    def _data_path(self) -> str:
        node_config = self.context.node_config
        if "data-path" in node_config:
            return str(node_config["data-path"])
        # simulation: node i reads <data-dir>/node-<i>.csv
        return str(
            Path(str(self.run_config["data-dir"])) / f"node-{node_config['partition-id']}.csv"
        )

    def fit(
        self, parameters: list[Any], config: dict[str, Any]
    ) -> tuple[list[Any], int, dict[str, Any]]:
        """Compute this node's reply for the round.

        Args:
            parameters: the :class:`~trainer.task.RoundRequest` arrays.
            config: unused (everything is in the run config).

        Returns:
            ([secure vector], num_examples, clear per-node metrics). Under SecAgg+
            the vector is digit-encoded and `num_examples` is 1 (unit weights).

        Raises:
            trainer.data.DataError: if the node's CSV is invalid.
            KeyError: if the node config has no `data-path` (nor, in simulation, the run
                config a `data-dir`).
        """
        run_config = self.run_config
        job = job_config_from_run_config(run_config)
        data = read_node_csv(self._data_path(), label=job.label, features=job.feature_names)
        request = RoundRequest.from_arrays(parameters, len(job.feature_names))
        reply = compute_reply(data, request, job)
        vector = reply.secure_vector()
        secure = secure_from_run_config(run_config)
        if secure:
            vector = ExactSumCodec(job.n_nodes).encode(vector)
        metrics: dict[str, Any] = {
            f"holdout_{k}": (float("nan") if v is None else float(v))
            for k, v in reply.metrics.items()
        }
        metrics["n_rows"] = reply.n_rows
        metrics["n_holdout"] = reply.n_holdout
        metrics["operator_address"] = str(self.context.node_config.get("operator-address", ""))
        return [vector], (1 if secure else reply.n_rows), metrics


def build_client_app(defaults: Mapping[str, Any] | None = None) -> ClientApp:
    """A ClientApp whose run config falls back to `defaults` (for the simulation runtime).

    Args:
        defaults: run-config values used where the run config has none.

    Returns:
        The ClientApp (with the SecAgg+ mod on protocol messages).
    """
    frozen = dict(defaults or {})

    def client_fn(context: Context) -> Any:
        return NewtonClient(context, frozen).to_client()

    return ClientApp(client_fn=client_fn, mods=[_secagg_when_asked])


def _secagg_when_asked(msg: Message, ctxt: Context, call_next: Any) -> Message:
    """Apply Flower's `secaggplus_mod` only to messages of the SecAgg+ protocol."""
    if msg.has_content() and RECORD_KEY_CONFIGS in msg.content.config_records:
        return secaggplus_mod(msg, ctxt, call_next)
    out: Message = call_next(msg, ctxt)
    return out


app = build_client_app()

__all__ = ["NewtonClient", "app", "build_client_app"]
