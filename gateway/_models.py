"""The model follower: which model each subnet serves, fetched, verified and swapped in.

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
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import httpx
import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Gauge

from core.bundle import BundleError, verify_bundle
from gateway._chain import ChainReader, SubnetInfo
from gateway._errors import Conflict, NotFound, ServiceUnavailable
from gateway.he import LinearModel

__all__ = [
    "MAX_FOLLOWED_SUBNETS",
    "LoadedModel",
    "ModelFollower",
    "ModelRefused",
    "ModelSource",
    "ModelUnavailable",
    "SubnetModelStatus",
]

_log = logging.getLogger("gateway.models")

MAX_FOLLOWED_SUBNETS = 1000
"""Subnets read at start (the newest); others are read when first requested."""
MAX_LOG_RANGE_BLOCKS = 5_000
"""Widest log query; after a longer gap (downtime) the follower re-reads every subnet."""
MAX_TRACKED_SUBNETS = 10_000
"""Bound of the per-subnet records kept (least recently touched dropped first)."""
ZERO_HASH = "0x" + "00" * 32
_MANIFEST_MAX_BYTES = 64 * 1024
"""A manifest lists two files; anything bigger is not one."""
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_COEF_RTOL = 1e-9
"""Relative tolerance of the ONNX-against-card check (float64 arithmetic, a few ulps)."""

ModelState = Literal["unpublished", "loading", "ready", "refused"]


class ModelUnavailable(ServiceUnavailable):
    """The subnet's model is published but not servable (still loading, or refused)."""

    title = "Model unavailable"
    slug = "model-unavailable"


class ModelRefused(Exception):
    """A bundle could not be fetched or failed verification (the message says why)."""


@dataclass(frozen=True)
class LoadedModel:
    """A verified model bundle, ready to answer plaintext and encrypted requests.

    Attributes:
        model_hash: 0x-hex sha256 of the bundle (the on-chain ``modelHash``).
        feature_names: Features in model order.
        linear: Coefficients and intercept for the encrypted path (from the card).
        session: onnxruntime session of the bundle's ONNX graph (thread-safe ``run``).
        input_name: The graph's input (float64, shape (n, n_features)).
        scores_output: Name of the raw-score output exposed for logits, or None when
            logits are derived from the probabilities.
        loaded_at_s: Unix time it was verified.
    """

    model_hash: str
    feature_names: tuple[str, ...]
    linear: LinearModel
    session: Any = field(repr=False)
    input_name: str = "x"
    scores_output: str | None = "raw_scores"
    loaded_at_s: float = 0.0

    @property
    def n_features(self) -> int:
        """Number of features the model takes."""
        return len(self.feature_names)

    def predict(
        self, x: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Logits and probabilities through onnxruntime, one batched run.

        Args:
            x: float64 array of shape (n_rows, n_features), columns in
                :attr:`feature_names` order.

        Returns:
            ``(logits, probabilities)``, each float64 of shape (n_rows,): ``w.x + b`` as the
            ONNX graph computes it, and P(y = 1).
        """
        outputs = ["probabilities"] + ([self.scores_output] if self.scores_output else [])
        result = self.session.run(outputs, {self.input_name: np.ascontiguousarray(x)})
        proba = np.asarray(result[0], dtype=np.float64)
        if self.scores_output:
            scores = np.asarray(result[1], dtype=np.float64)
            logits = scores[:, -1] if scores.ndim == 2 else scores
        else:  # pragma: no cover - every skl2onnx logistic regression has raw scores
            logits = np.log(proba[:, 1]) - np.log(proba[:, 0])
        return logits, proba[:, 1]


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


@dataclass(frozen=True)
class ModelSource:
    """Where bundles may come from and the bounds on fetching them.

    Attributes:
        model_store: Directory of bundles (``<store>/<sha256>/``). When set, local artifact
            paths must resolve inside it and HTTP downloads are kept there; when None, any
            local path is accepted and downloads go to a temporary directory.
        fetch_max_bytes: Most bytes downloaded for one bundle over HTTP(S).
        fetch_timeout_s: Seconds allowed for each HTTP(S) request.
        transport: httpx transport (tests inject faults here); None for the network.
    """

    model_store: Path | None = None
    fetch_max_bytes: int = 64 << 20
    fetch_timeout_s: float = 30.0
    transport: httpx.AsyncBaseTransport | None = None


class ModelFollower:
    """Follows ``SubnetRegistry`` and keeps every subnet's verified model ready to serve.

    Args:
        chain: The gateway's chain reader (its ``registry`` contract and ``w3``).
        source: Where bundles come from.
        registry: Prometheus registry for the follower's metrics.
        cache_max_entries: Loaded models kept (LRU by bundle hash), >= 1.
        load_wait_s: Seconds a request waits for a model that is still loading.
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
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
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
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

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
        try:
            return int(await self.chain.w3.eth.block_number)
        except Exception as exc:
            raise ServiceUnavailable("the chain is unreachable") from exc

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
        return model

    async def _fetch_and_verify(self, model_hash: str, artifact_uri: str) -> LoadedModel:
        if not re.fullmatch(r"0x[0-9a-f]{64}", model_hash) or model_hash == ZERO_HASH:
            raise ModelRefused(f"on-chain model hash {model_hash} is not a sha256 digest")
        scheme = urlsplit(artifact_uri).scheme.lower()
        if scheme in ("http", "https"):
            path = await self._download(model_hash, artifact_uri)
        elif scheme in ("", "file"):
            path = self._local_path(artifact_uri)
        else:
            raise ModelRefused(f"artifact URI scheme {scheme!r} is not supported")
        return await asyncio.to_thread(_verify, path, model_hash)

    def _local_path(self, artifact_uri: str) -> Path:
        parts = urlsplit(artifact_uri)
        if parts.scheme.lower() == "file":
            if parts.netloc not in ("", "localhost"):
                raise ModelRefused(f"file URI host {parts.netloc!r} is not local")
            raw = unquote(parts.path)
        else:
            raw = artifact_uri
        if not raw:
            raise ModelRefused("the artifact URI is empty")
        path = Path(raw)
        store = self.source.model_store
        if not path.is_absolute():
            if store is None:
                raise ModelRefused(f"relative artifact path {raw!r} needs a model store")
            path = store / path
        if store is not None:
            resolved, root = path.resolve(), store.resolve()
            if not resolved.is_relative_to(root):
                raise ModelRefused("the artifact path lies outside the gateway's model store")
            path = resolved
        return path

    def _download_root(self) -> Path:
        if self.source.model_store is not None:
            self.source.model_store.mkdir(parents=True, exist_ok=True)
            return self.source.model_store
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="twopm-models-")
        return Path(self._tmp.name)

    async def _download(self, model_hash: str, artifact_uri: str) -> Path:
        """Fetch a bundle directory over HTTP(S) into the store; the manifest is checked first."""
        digest = model_hash.removeprefix("0x")
        root = self._download_root()
        final = root / digest
        if (final / "manifest.json").is_file():
            return final  # load_bundle verifies it again
        base = artifact_uri.rstrip("/") + "/"
        budget = self.source.fetch_max_bytes
        try:
            async with httpx.AsyncClient(
                timeout=self.source.fetch_timeout_s,
                follow_redirects=False,
                transport=self.source.transport,
            ) as client:
                manifest = await _get_bounded(
                    client, base + "manifest.json", min(budget, _MANIFEST_MAX_BYTES)
                )
                if hashlib.sha256(manifest).hexdigest() != digest:
                    raise ModelRefused(
                        f"bundle sha256 {hashlib.sha256(manifest).hexdigest()} does not match "
                        f"the on-chain model hash {digest}"
                    )
                names = _manifest_files(manifest)
                budget -= len(manifest)
                files: dict[str, bytes] = {}
                for name in names:
                    files[name] = await _get_bounded(client, base + name, budget)
                    budget -= len(files[name])
        except httpx.HTTPError as exc:
            raise ModelRefused(f"fetching {base}: {type(exc).__name__}: {exc}") from exc
        tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=root))
        try:
            for name, data in {**files, "manifest.json": manifest}.items():
                (tmp / name).write_bytes(data)
            with contextlib.suppress(OSError):  # another fetch of the same bundle won
                os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

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


async def _get_bounded(client: httpx.AsyncClient, url: str, max_bytes: int) -> bytes:
    """GET ``url``, refusing a non-200 answer or more than ``max_bytes`` bytes."""
    if max_bytes <= 0:
        raise ModelRefused(f"the bundle exceeds the download bound before {url}")
    async with client.stream("GET", url) as response:
        if response.status_code != 200:
            raise ModelRefused(f"GET {url} answered {response.status_code}")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise ModelRefused(f"GET {url}: {declared} bytes exceed the bound of {max_bytes}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise ModelRefused(f"GET {url}: more than the bound of {max_bytes} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def _manifest_files(manifest: bytes) -> list[str]:
    try:
        listed = json.loads(manifest)["files"]
        names = [str(n) for n in listed]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelRefused("malformed manifest.json") from exc
    if not names or len(names) > 8 or not all(_FILE_NAME.match(n) for n in names):
        raise ModelRefused("manifest.json lists unexpected file names")
    if "manifest.json" in names:
        raise ModelRefused("manifest.json lists itself")
    return names


def _verify(path: Path, model_hash: str) -> LoadedModel:
    """Load and verify a bundle against its on-chain hash (blocking: run in a thread)."""
    try:
        bundle = verify_bundle(path, model_hash)
    except BundleError as exc:
        raise ModelRefused(str(exc)) from exc
    try:
        linear = LinearModel.from_arrays(list(bundle.coef), bundle.intercept)
    except ValueError as exc:
        raise ModelRefused(f"unusable coefficients: {exc}") from exc
    session, input_name, scores = _session(bundle.onnx_bytes)
    model = LoadedModel(
        model_hash="0x" + bundle.sha256,
        feature_names=bundle.feature_names,
        linear=linear,
        session=session,
        input_name=input_name,
        scores_output=scores,
        loaded_at_s=time.time(),
    )
    _check_against_card(model, np.asarray(bundle.coef, dtype=np.float64), bundle.intercept)
    return model


def _session(onnx_bytes: bytes) -> tuple[Any, str, str | None]:
    """An onnxruntime session that also outputs the graph's raw scores (the logits)."""
    import onnx
    import onnxruntime as ort

    try:
        graph = onnx.load_from_string(onnx_bytes)
        produced = {name for node in graph.graph.node for name in node.output}
        outputs = {o.name for o in graph.graph.output}
        scores: str | None = None
        if "raw_scores" in produced:
            scores = "raw_scores"
            if scores not in outputs:
                graph.graph.output.append(
                    onnx.helper.make_tensor_value_info(scores, onnx.TensorProto.DOUBLE, None)
                )
        if "probabilities" not in outputs:
            raise ModelRefused("the ONNX graph has no 'probabilities' output")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # requests run side by side; no oversubscription
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except ModelRefused:
        raise
    except Exception as exc:  # onnx/onnxruntime raise many unrelated types
        raise ModelRefused(f"the ONNX model does not load: {exc}") from exc
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelRefused(f"the ONNX model takes {len(inputs)} inputs, not one")
    return session, str(inputs[0].name), scores


def _check_against_card(
    model: LoadedModel, coef: npt.NDArray[np.float64], intercept: float
) -> None:
    """Refuse a bundle whose ONNX graph computes another function than its card says."""
    n = model.n_features
    probe = np.vstack([np.zeros((1, n)), np.eye(n)])
    try:
        logits, proba = model.predict(probe)
    except Exception as exc:
        raise ModelRefused(f"the ONNX model fails on a probe batch: {exc}") from exc
    if logits.shape != (n + 1,) or proba.shape != (n + 1,):
        raise ModelRefused("the ONNX model's outputs do not have one value per row")
    got = np.concatenate([[logits[0]], logits[1:] - logits[0]])
    want = np.concatenate([[intercept], coef])
    if not np.allclose(got, want, rtol=_COEF_RTOL, atol=_COEF_RTOL):
        raise ModelRefused("the ONNX model disagrees with the coefficients of its model card")
