"""Groth16 proofs of a logit, made in long-lived Node worker processes (snarkjs), never on the event loop.

:class:`ProverPool` starts ``workers`` copies of ``zk/js/prover.mjs``; each proves one request at a
time and keeps the circuit keys in memory. At most ``max_pending`` proofs wait or run at once; one
more raises :class:`ProverBusy` at once (the gateway answers 503), so the queue has a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zk._fixed import decode_logit, encode_features, encode_model, to_field
from zk._setup import ROOT, CircuitKeys

PROVER_SCRIPT = Path(__file__).resolve().parent / "js" / "prover.mjs"
#: Proving engines of ``zk/js/prover.mjs`` (see :class:`ProverPool`).
ENGINES = ("fixed-base", "prepared", "snarkjs")
#: Bytes of a proof: abi.encode(uint256[2], uint256[2][2], uint256[2]).
PROOF_BYTES = 256


class ProofError(RuntimeError):
    """A proof could not be made (bad witness, dead worker, timeout); the message says why."""


class ProverBusy(ProofError):
    """Every worker is busy and the bounded queue is full; retry later."""


@dataclass(frozen=True)
class LogitProof:
    """A proof that committed parameters map features to a logit.

    Attributes:
        proof: 256 bytes, ``abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c)``.
        instances: Public signals ``[logit, model_commitment, inputs_hash]``, field elements
            (``inputs_hash``: Poseidon chain over the fixed-point features, :func:`inputs_hash`).
        proving_s: Seconds the worker spent on witness and proof (wall clock).
        cpu_s: CPU seconds the worker process (all its threads) spent on them.
    """

    proof: bytes
    instances: tuple[int, ...]
    proving_s: float
    cpu_s: float = float("nan")

    @property
    def logit(self) -> float:
        """The proven logit as a real number (fixed point decoded)."""
        return decode_logit(self.instances[0])

    @property
    def model_commitment(self) -> int:
        """The commitment to the parameters the proof used."""
        return self.instances[1]

    @property
    def inputs_hash(self) -> int:
        """The Poseidon hash of the features the proof used (compare with :func:`inputs_hash`)."""
        return self.instances[2]


def circuit_input(
    weights: Sequence[float], intercept: float, row: Sequence[float]
) -> dict[str, Any]:
    """The circuit's input signals for one row (decimal strings of field elements).

    Raises:
        zk.FixedPointRangeError: A feature or parameter is outside the fixed-point range.
        ValueError: ``row`` and ``weights`` differ in length.
    """
    if len(row) != len(weights):
        raise ValueError(f"expected {len(weights)} features, got {len(row)}")
    w, b = encode_model(weights, intercept)
    x = encode_features(row)
    return {
        "x": [str(to_field(v)) for v in x],
        "w": [str(to_field(v)) for v in w],
        "b": str(to_field(b)),
    }


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.ids = itertools.count(1)

    async def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {**request, "id": next(self.ids)}
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout_s)
        if not line:
            raise ProofError("the prover worker exited")
        answer: dict[str, Any] = json.loads(line)
        if answer.get("id") != request["id"]:
            raise ProofError("the prover worker answered out of order")
        if not answer.get("ok"):
            raise ProofError(f"prover: {answer.get('error')}")
        return answer

    async def stop(self) -> None:
        if self.process.returncode is None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


class ProverPool:
    """Node prover processes behind a bounded queue.

    Args:
        workers: Node processes (each proves one request at a time; snarkjs also uses threads).
        max_pending: Most proofs queued or running at once; beyond it :meth:`prove` raises
            :class:`ProverBusy`.
        timeout_s: Seconds one proof may take before the worker is restarted and
            :class:`ProofError` raised.
        single_thread: Keep ffjavascript's curve arithmetic in the worker's own thread (default).
            False starts one thread per core: measured on 2 busy cores no faster, ~90 MiB more
            peak RSS (bench/proofs/run.py).
        engine: ``"fixed-base"`` (the default with ``single_thread``, which it needs; without
            it ``"prepared"`` is the default): ``"prepared"`` plus the
            multi-exponentiations over window tables of the key's points built when the key is
            loaded (``zk/js/fixed_base.mjs``; ~33 MiB and seconds of CPU for the 30-feature key;
            keys past a per-worker budget, ``TWOPM_FIXED_BASE_MIB``, default 48, keep snarkjs's).
            ``"prepared"``: the proving key parsed once per worker, the QAP evaluated in one
            WebAssembly call. ``"snarkjs"``: ``snarkjs.groth16.prove`` as is, re-parsing the key
            every proof (the benchmark's baseline). All make proofs of the same verification key.
        msm_threads: Worker threads of the ``fixed-base`` multi-exponentiations, each holding its
            share of the key's tables (1: in the worker's own thread).

    Raises:
        ValueError: Bad sizes, an unknown engine, ``msm_threads`` outside 1..16.
    """

    def __init__(
        self,
        workers: int = 1,
        max_pending: int = 8,
        timeout_s: float = 60.0,
        single_thread: bool = True,
        engine: str | None = None,
        msm_threads: int = 1,
    ) -> None:
        if workers < 1 or max_pending < workers:
            raise ValueError("need workers >= 1 and max_pending >= workers")
        if engine is None:
            engine = "fixed-base" if single_thread else "prepared"
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        if not 1 <= msm_threads <= 16:
            raise ValueError(f"msm_threads must be 1..16, not {msm_threads}")
        self.engine = engine
        self.msm_threads = msm_threads
        self.workers = workers
        self.max_pending = max_pending
        self.timeout_s = timeout_s
        self.single_thread = single_thread
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: list[_Worker] = []
        self._pending = 0
        self._started = False

    @property
    def pending(self) -> int:
        """Proofs queued or running now."""
        return self._pending

    async def _spawn(self) -> _Worker:
        node = shutil.which("node")
        if node is None:
            raise ProofError("node is not on PATH")
        process = await asyncio.create_subprocess_exec(
            node,
            str(PROVER_SCRIPT),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=1 << 20,
        )
        worker = _Worker(process)
        self._all.append(worker)
        return worker

    async def start(self) -> None:
        """Start the worker processes (idempotent).

        Raises:
            ProofError: ``node`` is missing.
        """
        if self._started:
            return
        self._started = True
        for _ in range(self.workers):
            self._idle.put_nowait(await self._spawn())

    async def close(self) -> None:
        """Stop every worker process."""
        workers, self._all = self._all, []
        for worker in workers:
            await worker.stop()
        self._started = False
        self._idle = asyncio.Queue()

    async def __aenter__(self) -> ProverPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, request: dict[str, Any], counted: bool = True) -> dict[str, Any]:
        if counted and self._pending >= self.max_pending:
            raise ProverBusy(f"{self._pending} proofs are already queued or running")
        await self.start()
        self._pending += counted
        try:
            worker = await self._idle.get()
            try:
                answer = await worker.call(request, self.timeout_s)
            except (TimeoutError, OSError, ValueError, ProofError) as exc:
                if (
                    isinstance(exc, ProofError)
                    and worker.process.returncode is None
                    and (str(exc).startswith("prover:"))
                ):
                    self._idle.put_nowait(worker)  # a bad request; the worker is fine
                    raise
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                with contextlib.suppress(ValueError):
                    self._all.remove(worker)
                self._idle.put_nowait(await self._spawn())
                if isinstance(exc, ProofError):
                    raise
                raise ProofError(f"prover worker failed: {exc!r}") from exc
            self._idle.put_nowait(worker)
            return answer
        finally:
            self._pending -= counted

    async def prepare(self, keys: Any) -> list[dict[str, Any]]:
        """Load a circuit's keys into every worker before its first proof.

        With the ``fixed-base`` engine this builds the key's window tables (seconds of CPU for the
        30-feature logit key), which the first proof would otherwise pay. A worker started later
        (after a failure) loads the keys on its first proof.

        Args:
            keys: ``CircuitKeys`` or ``zk.BatchCircuitKeys`` (anything with ``wasm`` and ``zkey``).

        Loading is not a proof: it takes no place in the bounded queue (proofs wait for the
        worker meanwhile, their timeout starting when the worker takes them).

        Returns:
            One answer per worker: ``prepare_s`` (seconds) and ``fixed_base`` (tables built).

        Raises:
            ProofError: A worker failed.
        """
        await self.start()
        request = {
            "op": "prepare",
            "wasm": str(keys.wasm),
            "zkey": str(keys.zkey),
            "single_thread": self.single_thread,
            "engine": self.engine,
            "msm_threads": self.msm_threads,
        }
        return [await self._call(request, counted=False) for _ in range(self.workers)]

    async def prove(
        self, keys: CircuitKeys, weights: Sequence[float], intercept: float, row: Sequence[float]
    ) -> LogitProof:
        """Prove ``logit = w . x + b`` for one row with the committed parameters.

        Args:
            keys: Circuit keys of ``len(weights)`` features.
            weights: Coefficients, shape (F,), in feature order.
            intercept: Bias.
            row: Features, shape (F,).

        Returns:
            The proof and its public signals.

        Raises:
            ProverBusy: The queue is full.
            ProofError: The worker failed or timed out.
            zk.FixedPointRangeError: A value is outside the fixed-point range.
            ValueError: Shapes differ from the circuit's.
        """
        if keys.n_features != len(weights):
            raise ValueError(f"circuit has {keys.n_features} features, model {len(weights)}")
        answer = await self._call(
            {
                "op": "prove",
                "wasm": str(keys.wasm),
                "zkey": str(keys.zkey),
                "input": circuit_input(weights, intercept, row),
                "single_thread": self.single_thread,
                "engine": self.engine,
                "msm_threads": self.msm_threads,
            }
        )
        proof = bytes.fromhex(str(answer["proof"])[2:])
        if len(proof) != PROOF_BYTES:
            raise ProofError(f"the prover returned {len(proof)} bytes, not {PROOF_BYTES}")
        return LogitProof(
            proof,
            tuple(int(v) for v in answer["public"]),
            float(answer["proving_s"]),
            float(answer.get("cpu_s", "nan")),
        )

    async def prove_batch(
        self, keys: Any, weights: Sequence[float], intercept: float, rows: Sequence[Sequence[float]]
    ) -> Any:
        """Prove the logits of 1 to ``keys.n_rows`` rows with one batch proof (``zk.BatchProof``).

        Args:
            keys: ``zk.ensure_batch_keys(F)``.
            weights: Coefficients, shape (F,).
            intercept: Bias.
            rows: Features, shape (n, F), n <= keys.n_rows (padded with zero rows).

        Raises:
            ProverBusy: The queue is full.
            ProofError: The worker failed or timed out.
            zk.FixedPointRangeError: A value is outside the fixed-point range.
            ValueError: Shapes.
        """
        from zk._batch import BatchProof, batch_input
        from zk._fixed import fixed_logit

        request = {
            "op": "prove",
            "wasm": str(keys.wasm),
            "zkey": str(keys.zkey),
            "input": batch_input(keys, weights, intercept, rows),
            "single_thread": self.single_thread,
            "engine": self.engine,
            "msm_threads": self.msm_threads,
        }
        answer = await self._call(request)
        proof = bytes.fromhex(str(answer["proof"])[2:])
        if len(proof) != PROOF_BYTES:
            raise ProofError(f"the prover returned {len(proof)} bytes, not {PROOF_BYTES}")
        w, b = encode_model(weights, intercept)
        logits = tuple(to_field(fixed_logit(w, b, encode_features(r))) for r in rows)
        public = tuple(int(v) for v in answer["public"])
        return BatchProof(
            proof,
            (public[0], public[1], public[2]),
            logits,
            float(answer["proving_s"]),
            to_field(b),
        )

    async def commitment(
        self, keys: CircuitKeys, weights: Sequence[float], intercept: float
    ) -> int:
        """The model commitment (Poseidon chain over the fixed-point parameters) the circuit computes.

        Raises:
            ProverBusy: The queue is full.
            ProofError: The worker failed.
            zk.FixedPointRangeError: A parameter is outside the fixed-point range.
        """
        answer = await self._call(
            {
                "op": "outputs",
                "wasm": str(keys.wasm),
                "zkey": str(keys.zkey),
                "input": circuit_input(weights, intercept, [0.0] * len(weights)),
            }
        )
        return int(answer["outputs"][1])


def model_commitment(keys: CircuitKeys, weights: Sequence[float], intercept: float) -> int:
    """Synchronous :meth:`ProverPool.commitment` in a one-off worker (for publishing and the CLI).

    Raises:
        ProofError: The worker failed.
        zk.FixedPointRangeError: A parameter is outside the fixed-point range.
    """

    async def run() -> int:
        async with ProverPool(workers=1, max_pending=1) as pool:
            return await pool.commitment(keys, weights, intercept)

    return asyncio.run(run())


def inputs_hash(features: Sequence[float], cache_dir: Path | None = None) -> int:
    """The ``inputsHash`` public signal a logit proof of ``features`` carries.

    Poseidon chain (``Commit`` in ``zk/circuits/logit.circom``) over the fixed-point features
    (:func:`zk.encode_features`), computed by the witness-only ``InputsHash(F)`` circuit in a
    one-off Node worker; no keys or trusted setup needed. A verifier compares it with
    ``instances[2]`` to know the proof is about the row it sent.

    Args:
        features: The row, shape (F,), in the model's feature order.
        cache_dir: Where the compiled hash circuit is cached (``zk.default_cache_dir()`` if None).

    Raises:
        zk.FixedPointRangeError: A feature is outside the fixed-point range.
        zk.SetupError: The hash circuit could not be compiled.
        ProofError: The worker failed.
    """
    from zk._setup import ensure_inputs_hash_wasm

    x = encode_features(features)
    wasm = ensure_inputs_hash_wasm(len(x), cache_dir)

    async def run() -> int:
        async with ProverPool(workers=1, max_pending=1) as pool:
            answer = await pool._call(
                {
                    "op": "outputs",
                    "wasm": str(wasm),
                    "zkey": str(wasm),
                    "n_outputs": 1,
                    "input": {"x": [str(to_field(v)) for v in x]},
                }
            )
        return int(answer["outputs"][0])

    return asyncio.run(run())
