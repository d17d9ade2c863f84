"""Fetching model bundles to a local directory, before they are verified.

A bundle is a local path or ``file://`` URI (inside the model store when there is one), or an
``http(s)://`` base URL under which ``manifest.json`` and the files it lists are fetched with a
size bound, the manifest checked against the on-chain hash before anything else is fetched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from gateway._onnx import ModelRefused

__all__ = ["ZERO_HASH", "BundleFetcher", "ModelSource"]

ZERO_HASH = "0x" + "00" * 32
_MANIFEST_MAX_BYTES = 64 * 1024
"""A manifest lists two files; anything bigger is not one."""
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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


class BundleFetcher:
    """Brings bundles to a local directory, within the bounds of a :class:`ModelSource`.

    Args:
        source: Where bundles may come from and the bounds on fetching them.
    """

    def __init__(self, source: ModelSource) -> None:
        self.source = source
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def close(self) -> None:
        """Remove the temporary download directory (used when there is no model store)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def fetch(self, model_hash: str, artifact_uri: str) -> Path:
        """The local bundle directory of ``artifact_uri``, downloaded first when it is HTTP(S).

        Args:
            model_hash: The on-chain ``modelHash``, 0x hex (lower case).
            artifact_uri: The published artifact URI.

        Returns:
            The directory; :func:`gateway._onnx.load_model` verifies it.

        Raises:
            ModelRefused: The hash or URI is unusable, or the download failed or broke a bound.
        """
        if not re.fullmatch(r"0x[0-9a-f]{64}", model_hash) or model_hash == ZERO_HASH:
            raise ModelRefused(f"on-chain model hash {model_hash} is not a sha256 digest")
        scheme = urlsplit(artifact_uri).scheme.lower()
        if scheme in ("http", "https"):
            path = await self._download(model_hash, artifact_uri)
        elif scheme in ("", "file"):
            path = self._local_path(artifact_uri)
        else:
            raise ModelRefused(f"artifact URI scheme {scheme!r} is not supported")
        return path

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
