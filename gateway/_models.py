"""The model follower: which model each subnet serves, fetched, verified and swapped in.

This module is the chain follower; fetching is :mod:`gateway._fetch`, verification and the
ONNX session :mod:`gateway._onnx`.

The follower reads ``SubnetRegistry`` once at start (the newest ``MAX_FOLLOWED_SUBNETS``
subnets), then polls the registry's logs (``SubnetCreated``, ``ModelPublished``, price,
stake and ownership events all carry the subnet id as their first topic) and re-reads every
subnet a log names. When a subnet's current version changes it fetches the bundle from the
artifact URI and verifies it *before* serving it:

* the URI is a local path or ``file://`` URI of a bundle directory (inside
  ``model_store`` when that is set), or an ``http(s)://`` base URL under which
  ``manifest.json``, ``card.json`` and ``model.onnx`` are fetched with a size bound;
* ``core.bundle.verify_bundle(path, on_chain_hash)`` recomputes every digest: the
  bundle's sha256 (of its manifest) must equal the ``modelHash`` on chain;
* the ONNX graph must agree with the card's coefficients (its raw scores on the zero row
  and the unit rows give back the intercept and every weight), since plaintext requests
  run the ONNX graph and encrypted ones the card's coefficients.

A verified model replaces the previous one by swapping one reference, so requests
already running finish on the old model and no request waits. A bundle that fails is
refused: logged, counted in ``gateway_model_loads_total{outcome="refused"}``, shown by
``GET /v1/subnets/{id}`` as ``model_status: "refused"`` with the reason, while the previous
version (if any) keeps serving. Loaded models live in a bounded LRU cache keyed by hash;
an evicted model is fetched and verified again when next needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import Counter, Gauge

from gateway._chain import ChainReader, SubnetInfo
from gateway._errors import Conflict, NotFound, ServiceUnavailable
from gateway._fetch import ZERO_HASH, BundleFetcher, ModelSource
from gateway._onnx import LoadedModel, ModelRefused, load_model

__all__ = ["MAX_FOLLOWED_SUBNETS", "ModelFollower", "ModelUnavailable", "SubnetModelStatus"]

_log = logging.getLogger("gateway.models")

MAX_FOLLOWED_SUBNETS = 1000
"""Subnets read at start (the newest); others are read when first requested."""
MAX_LOG_RANGE_BLOCKS = 5_000
"""Widest log query; after a longer gap (downtime) the follower re-reads every subnet."""
MAX_TRACKED_SUBNETS = 10_000
"""Bound of the per-subnet records kept (least recently touched dropped first)."""
ModelState = Literal["unpublished", "loading", "ready", "refused"]


class ModelUnavailable(ServiceUnavailable):
    """The subnet's model is published but not servable (still loading, or refused)."""

    title = "Model unavailable"
    slug = "model-unavailable"


@dataclass(frozen=True)
class SubnetModelStatus:
    """What the gateway knows and serves for one subnet (``GET /v1/subnets/{id}``).

    Attributes:
        info: The subnet as the registry has it now (price, stake, published model).
        state: ``unpublished`` (no version yet), ``loading``, ``ready`` (the published
            version is served) or ``refused`` (it failed verification).
        serving_version: Version answering requests (0 when none).
        serving_hash: 0x-hex hash of that version's bundle (zero hash when none).
        feature_names: Its features, in order (empty when none is served).
        error: Why the published version was refused (None unless ``refused``).
    """

    info: SubnetInfo
    state: ModelState
    serving_version: int
    serving_hash: str
    feature_names: tuple[str, ...]
    error: str | None


@dataclass(frozen=True)
class _Serving:
    version: int
    model_hash: str
    artifact_uri: str
    feature_names: tuple[str, ...]


@dataclass
class _Entry:
    info: SubnetInfo
    serving: _Serving | None = None
    refused: tuple[int, str, str] | None = None  # (version, model hash, reason)
    task: asyncio.Task[None] | None = None


class ModelFollower:
    """Follows ``SubnetRegistry`` and keeps every subnet's verified model ready to serve.

    Args:
        chain: The gateway's chain reader (its ``registry`` contract and ``w3``).
        source: Where bundles come from.
        registry: Prometheus registry for the follower's metrics.
        cache_max_entries: Loaded models kept (LRU by bundle hash), >= 1.
        load_wait_s: Seconds a request waits for a model that is still loading.

    Attributes:
        on_loaded: Called on the event loop with each model right after it was fetched and
            verified (not on cache hits); must not block (start a task for slow work). An
            exception it raises is logged and does not refuse the model.
    """

    def __init__(
        self,
        chain: ChainReader,
        source: ModelSource,
        registry: Any,
        *,
        cache_max_entries: int = 8,
        load_wait_s: float = 30.0,
    ) -> None:
        self.chain = chain
        self.source = source
        self.load_wait_s = load_wait_s
        self._cache_max = max(1, cache_max_entries)
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._loads: dict[str, asyncio.Future[LoadedModel]] = {}
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._last_block: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._fetcher = BundleFetcher(source)
        self.on_loaded: Callable[[LoadedModel], None] | None = None
        self.loads = Counter(
            "gateway_model_loads",
            "Model bundles fetched and verified, by outcome (loaded, refused).",
            ["outcome"],
            registry=registry,
        )
        self.loaded_gauge = Gauge(
            "gateway_models_loaded",
            "Verified models held in memory.",
            registry=registry,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self, interval_s: float) -> None:
        """Read every subnet once, then follow the registry in a background task.

        Args:
            interval_s: Seconds between log polls.
        """
        if self._task is None:
            self._task = asyncio.create_task(self._follow(interval_s))

    async def stop(self) -> None:
        """Stop following and cancel model loads in progress."""
        tasks = [t for t in (self._task, *(e.task for e in self._entries.values())) if t]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        self._task = None
        self._fetcher.close()

    async def _follow(self, interval_s: float) -> None:
        while True:
            try:
                if self._last_block is None:
                    await self.sync()
                else:
                    await self.poll()
            except ServiceUnavailable:
                _log.warning("model follower: the chain is unreachable; retrying")
            except asyncio.CancelledError:
                raise
            except Exception:  # keep following whatever one poll did
                _log.exception("model follower: poll failed")
            await asyncio.sleep(interval_s)

    # ------------------------------------------------------------------ chain side

    async def sync(self) -> None:
        """Read the newest :data:`MAX_FOLLOWED_SUBNETS` subnets and load their models.

        Raises:
            ServiceUnavailable: The chain is unreachable.
        """
        head = await self._block_number()
        count = await self.chain.subnet_count()
        for gone in [i for i in self._entries if i > count]:  # reorganised away
            self._entries.pop(gone)
        for subnet_id in range(max(1, count - MAX_FOLLOWED_SUBNETS + 1), count + 1):
            await self.refresh(subnet_id)
        self._last_block = head

    async def poll(self) -> int:
        """Read new registry logs once and refresh the subnets they name.

        A head below the last one seen (a reorg, or a test reverting the chain) or more than
        :data:`MAX_LOG_RANGE_BLOCKS` ahead of it triggers a full :meth:`sync`.

        Returns:
            Number of subnets refreshed.

        Raises:
            ServiceUnavailable: The chain is unreachable.
        """
        head = await self._block_number()
        last = self._last_block
        if last is None or head < last or head - last > MAX_LOG_RANGE_BLOCKS:
            await self.sync()
            return len(self._entries)
        if head == last:
            return 0
        try:
            logs = await self.chain.w3.eth.get_logs(
                {
                    "fromBlock": last + 1,
                    "toBlock": head,
                    "address": self.chain.addresses["SubnetRegistry"],
                }
            )
        except Exception as exc:
            raise ServiceUnavailable("the chain is unreachable") from exc
        touched = sorted(
            {
                int.from_bytes(bytes(log["topics"][1]), "big")
                for log in logs
                if len(log["topics"]) > 1
            }
        )
        for subnet_id in touched:
            with contextlib.suppress(NotFound):
                await self.refresh(subnet_id)
        self._last_block = head
        return len(touched)

    async def _block_number(self) -> int:
        head: int = await self.chain.head_block()  # shared with the reader's event poll
        return head

    async def refresh(self, subnet_id: int) -> SubnetModelStatus:
        """Re-read one subnet and start loading its model if a new version is published.

        Args:
            subnet_id: Subnet id.

        Returns:
            Its status right after the read (the load may still be running).

        Raises:
            NotFound: No such subnet.
            ServiceUnavailable: The chain is unreachable.
        """
        info = await self.chain.read_subnet(subnet_id)
        entry = self._entries.get(subnet_id)
        if entry is None:
            entry = _Entry(info)
            self._entries[subnet_id] = entry
            while len(self._entries) > MAX_TRACKED_SUBNETS:
                _, dropped = self._entries.popitem(last=False)
                if dropped.task is not None:
                    dropped.task.cancel()
        serving = entry.serving
        if serving is not None and (
            serving.version > info.current_version
            or (serving.version == info.current_version and serving.model_hash != info.model_hash)
        ):  # the chain reorganised (or a test reverted it) under the served version
            entry.serving = None
        entry.info = info
        self._entries.move_to_end(subnet_id)
        self._schedule(entry)
        return self._status(entry)

    def _schedule(self, entry: _Entry) -> None:
        info = entry.info
        if info.current_version == 0:
            return
        if entry.serving is not None and entry.serving.version >= info.current_version:
            return
        if entry.refused is not None and entry.refused[:2] == (
            info.current_version,
            info.model_hash,
        ):
            return
        if entry.task is not None and not entry.task.done():
            return  # the running load re-checks the version when it ends
        entry.task = asyncio.create_task(self._load_current(entry))

    async def _load_current(self, entry: _Entry) -> None:
        info = entry.info
        try:
            model = await self._obtain(info.model_hash, info.artifact_uri)
        except ModelRefused as exc:
            reason = str(exc)
            entry.refused = (info.current_version, info.model_hash, reason)
            _log.warning(
                "subnet %d: model version %d refused (%s); %s",
                info.subnet_id,
                info.current_version,
                reason,
                f"version {entry.serving.version} keeps serving"
                if entry.serving
                else "none served",
            )
        else:
            if entry.serving is None or entry.serving.version < info.current_version:
                entry.serving = _Serving(
                    info.current_version, model.model_hash, info.artifact_uri, model.feature_names
                )
                _log.info(
                    "subnet %d: serving model version %d (%s)",
                    info.subnet_id,
                    info.current_version,
                    model.model_hash,
                )
        finally:
            entry.task = None
        if entry.info.current_version != info.current_version:
            self._schedule(entry)  # a newer version was published meanwhile

    # ------------------------------------------------------------------ models

    async def _obtain(self, model_hash: str, artifact_uri: str) -> LoadedModel:
        """The verified model with this hash: from the cache, or fetched and verified once."""
        cached = self._models.get(model_hash)
        if cached is not None:
            self._models.move_to_end(model_hash)
            return cached
        pending = self._loads.get(model_hash)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[LoadedModel] = asyncio.get_running_loop().create_future()
        self._loads[model_hash] = future
        try:
            model = await self._fetch_and_verify(model_hash, artifact_uri)
        except BaseException as exc:
            refusal = exc if isinstance(exc, ModelRefused) else ModelRefused(f"load failed: {exc}")
            if not isinstance(exc, ModelRefused | asyncio.CancelledError):
                _log.exception("model %s: unexpected load failure", model_hash)
            future.set_exception(refusal)
            future.exception()  # retrieved: waiters get it through shield
            self.loads.labels("refused").inc()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise refusal from exc
        finally:
            self._loads.pop(model_hash, None)
        future.set_result(model)
        self._models[model_hash] = model
        while len(self._models) > self._cache_max:
            self._models.popitem(last=False)
        self.loaded_gauge.set(len(self._models))
        self.loads.labels("loaded").inc()
        if self.on_loaded is not None:
            try:
                self.on_loaded(model)
            except Exception:  # a hook's failure must not refuse a verified model
                _log.exception("model %s: on_loaded hook failed", model_hash)
        return model

    async def _fetch_and_verify(self, model_hash: str, artifact_uri: str) -> LoadedModel:
        path = await self._fetcher.fetch(model_hash, artifact_uri)
        return await asyncio.to_thread(load_model, path, model_hash)

    # ------------------------------------------------------------------ requests

    def _status(self, entry: _Entry) -> SubnetModelStatus:
        info = entry.info
        serving = entry.serving
        state: ModelState
        error = None
        if info.current_version == 0:
            state = "unpublished"
        elif serving is not None and serving.version >= info.current_version:
            state = "ready"
        elif entry.refused is not None and entry.refused[:2] == (
            info.current_version,
            info.model_hash,
        ):
            state, error = "refused", entry.refused[2]
        else:
            state = "loading"
        return SubnetModelStatus(
            info=info,
            state=state,
            serving_version=serving.version if serving else 0,
            serving_hash=serving.model_hash if serving else ZERO_HASH,
            feature_names=serving.feature_names if serving else (),
            error=error,
        )

    async def status(self, subnet_id: int) -> SubnetModelStatus:
        """The subnet's status, reading it from the chain if it is not followed yet.

        Args:
            subnet_id: Subnet id.

        Returns:
            The status.

        Raises:
            NotFound: No such subnet.
            ServiceUnavailable: The chain is unreachable.
        """
        entry = self._entries.get(subnet_id)
        if entry is None:
            return await self.refresh(subnet_id)
        return self._status(entry)

    async def wait_until_settled(
        self, subnet_id: int, timeout_s: float = 30.0
    ) -> SubnetModelStatus:
        """Wait until the subnet's current version is served or refused.

        Args:
            subnet_id: Subnet id.
            timeout_s: Most seconds to wait.

        Returns:
            The status afterwards (``loading`` if the time ran out).

        Raises:
            NotFound: No such subnet.
            ServiceUnavailable: The chain is unreachable.
        """
        status = await self.status(subnet_id)
        entry = self._entries.get(subnet_id)
        if entry is not None and entry.task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(entry.task), timeout_s)
            status = self._status(entry)
        return status

    async def model_for(self, subnet_id: int) -> tuple[int, LoadedModel]:
        """The model a request to this subnet runs on (waits briefly for a first load).

        The caller keeps the returned model for the whole request; a swap meanwhile only
        affects later requests.

        Args:
            subnet_id: Subnet id.

        Returns:
            ``(version, model)``.

        Raises:
            NotFound: No such subnet.
            Conflict: Nothing published on the subnet yet.
            ModelUnavailable: The published model is still loading or was refused, and no
                earlier version is served.
            ServiceUnavailable: The chain is unreachable.
        """
        status = await self.status(subnet_id)
        if status.state == "unpublished":
            raise Conflict(f"subnet {subnet_id} has no published model yet")
        entry = self._entries.get(subnet_id)
        if entry is None:  # pragma: no cover - status() just stored it
            raise NotFound(f"no subnet {subnet_id}")
        if entry.serving is None and entry.task is not None:
            status = await self.wait_until_settled(subnet_id, self.load_wait_s)
        serving = entry.serving
        if serving is None:
            reason = status.error or "the model is still loading"
            raise ModelUnavailable(
                f"subnet {subnet_id} has no servable model: {reason}",
                extra={"model_status": status.state},
            )
        try:
            model = await self._obtain(serving.model_hash, serving.artifact_uri)
        except ModelRefused as exc:
            raise ModelUnavailable(
                f"subnet {subnet_id}: reloading its model failed: {exc}"
            ) from exc
        return serving.version, model

    def loaded_hashes(self) -> list[str]:
        """Hashes of the models in memory, least recently used first.

        Returns:
            0x-hex hashes.
        """
        return list(self._models)
