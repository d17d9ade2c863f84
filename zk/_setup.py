"""The Groth16 keys of the logit circuit: made once per feature count and cached on disk.

DEVELOPMENT ONLY. The powers of tau and the phase-2 contribution made here come from fixed, public
beacons (``snarkjs powersoftau beacon`` / ``zkey beacon``), so anyone can recompute the toxic waste and
forge proofs. That is what makes them reproducible (every machine derives byte-identical keys, so the
committed ``contracts/src/zk/LogitGroth16Verifier<F>.sol`` matches the cache), and it is also why they
must never secure a real chain: ``contracts.deploy.deploy_all`` deploys these verifiers only on a local
chain. A deployment runs phase 2 on a ceremony file (for example the Hermez/Polygon
``powersOfTau28_hez_final_12.ptau``) with its own secret contribution: ``python -m zk ceremony``
(zk/_ceremony.py) and docs/proofs.md.

Cost, measured on 2 loaded cores: the 2^12 powers of tau take about 5 minutes (``prepare phase2``
dominates), each circuit's setup 20-50 s; everything lands under the cache directory, keyed by a hash
of the circuit, the shape and the tool versions, and is reused afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from zk._fixed import X_BITS

ROOT = Path(__file__).resolve().parents[1]
CIRCUIT = Path(__file__).resolve().parent / "circuits" / "logit.circom"
#: The served logit proof's main template (features hashed into one public signal).
PROVEN_CIRCUIT = CIRCUIT.parent / "proven_logit.circom"
#: Feature counts with a committed Solidity verifier (contract name -> deployed by deploy_all).
SUPPORTED_FEATURE_COUNTS: tuple[int, ...] = (3, 30)
#: log2 of the powers-of-tau size; 2^12 constraints hold the 30-feature circuit (3,900 constraints).
PTAU_POWER = 12
#: Public, fixed beacons of the development setup (NOT secret: see the module docstring).
DEV_PTAU_BEACON = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
DEV_ZKEY_BEACON = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#: log2 of the beacons' hash iterations (snarkjs ``numIterationsExp``).
DEV_BEACON_ITERATIONS_EXP = 10


class SetupError(RuntimeError):
    """The circuit could not be compiled or its keys made (the message holds the tool's output)."""


def verifier_contract_name(n_features: int) -> str:
    """Name of the Groth16 verifier contract for ``n_features`` features."""
    return f"LogitGroth16Verifier{n_features}"


@dataclass(frozen=True)
class CircuitKeys:
    """Files of one circuit shape.

    Attributes:
        n_features: Features F of the circuit.
        directory: Where the files live.
        wasm: Witness calculator (circom WebAssembly).
        zkey: Groth16 proving key (phase 2 done).
        verification_key: snarkjs verification key (JSON).
        solidity: The Solidity verifier snarkjs exports, contract renamed ``LogitGroth16Verifier<F>``.
    """

    n_features: int
    directory: Path

    @property
    def wasm(self) -> Path:
        return self.directory / "logit.wasm"

    @property
    def zkey(self) -> Path:
        return self.directory / "logit.zkey"

    @property
    def verification_key(self) -> Path:
        return self.directory / "verification_key.json"

    @property
    def solidity(self) -> Path:
        return self.directory / f"{verifier_contract_name(self.n_features)}.sol"

    def vk(self) -> dict[str, object]:
        """The verification key as snarkjs writes it."""
        data: dict[str, object] = json.loads(self.verification_key.read_text())
        return data


#: File that marks a key directory made by ``python -m zk ceremony`` (zk/_ceremony.py): no development
#: keys are ever added to such a directory.
CEREMONY_MANIFEST = "zk_setup.json"

#: Environment variable naming another cache root (a CI job that must start cold, a shared volume).
CACHE_ENV = "TWOPM_ZK_CACHE"


def default_cache_dir() -> Path:
    """``$TWOPM_ZK_CACHE`` if set, else ``~/.cache/twopm/zk``.

    Shared by every checkout on the machine: the keys are content-addressed, so checkouts never
    disagree about what a cached file is.
    """
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "twopm" / "zk"


def _tool_versions() -> str:
    out = []
    for package in ("circom2", "snarkjs", "circomlib"):
        meta = ROOT / "node_modules" / package / "package.json"
        try:
            out.append(f"{package}@{json.loads(meta.read_text())['version']}")
        except (OSError, ValueError, KeyError) as exc:
            raise SetupError(
                f"{package} is not installed in node_modules (run ./dev install)"
            ) from exc
    return ",".join(out)


def _dev_key_digest(*parts: str) -> str:
    """The cache key of a development key set (16 hex digits).

    SHA-256 over ``parts`` (circuit sources and shape), the public beacons and the tool versions,
    each part NUL-terminated: any change to one of them names another directory.
    """
    h = hashlib.sha256()
    for part in (
        *parts,
        DEV_PTAU_BEACON,
        DEV_ZKEY_BEACON,
        str(DEV_BEACON_ITERATIONS_EXP),
        _tool_versions(),
    ):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def _shape_key(n_features: int) -> str:
    return _dev_key_digest(
        CIRCUIT.read_text(),
        PROVEN_CIRCUIT.read_text(),
        str(n_features),
        str(X_BITS),
        str(PTAU_POWER),
    )


def _compile_witness_calculator(main: str, target: Path, cache: Path) -> None:
    """Compile a witness-only circuit (no keys, no setup) to ``target`` (``.wasm``).

    Args:
        main: Body of ``main.circom`` after the pragma (an include and ``component main``).
        target: Where the witness calculator goes (replaced atomically).
        cache: Cache root (the temporary build directory lives there).

    Raises:
        SetupError: The Node tools are missing or the compile failed.
    """
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        src = Path(tmp)
        _compile_circom(main, src, "--wasm")
        os.replace(src / "main_js" / "main.wasm", target)


def _compile_circom(main: str, src: Path, *outputs: str) -> None:
    """Compile ``main.circom`` with circom2 in ``src`` (``--O2``), with every circuit it may include.

    circom2 (WASI) only reaches files under its working directory: circomlib's circuits and this
    package's ``zk/circuits/*.circom`` are copied into ``src`` first.

    Args:
        main: Body of ``main.circom`` after the pragma (an include and ``component main``).
        src: Empty or new directory to compile in; the outputs land there (``main.r1cs``,
            ``main_js/main.wasm``).
        outputs: circom's output flags, in order: ``"--r1cs"``, ``"--wasm"``.

    Raises:
        SetupError: The Node tools are missing or the compile failed.
    """
    shutil.copytree(
        ROOT / "node_modules" / "circomlib" / "circuits", src / "circomlib" / "circuits"
    )
    for circuit in CIRCUIT.parent.glob("*.circom"):
        shutil.copy(circuit, src / circuit.name)
    (src / "main.circom").write_text("pragma circom 2.1.0;\n" + main)
    circom = str(ROOT / "node_modules" / "circom2" / "cli.js")
    _run(["node", circom, "main.circom", *outputs, "--O2", "-o", "."], cwd=src)


def _run(args: list[str], cwd: Path, timeout_s: float = 1800.0) -> str:
    try:
        result = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"{args[1] if len(args) > 1 else args[0]}: {exc}") from exc
    if result.returncode != 0:
        raise SetupError(f"{' '.join(args[:3])} failed: {(result.stderr or result.stdout)[-1500:]}")
    return result.stdout


def _snarkjs(*args: str, cwd: Path) -> str:
    return _run(["node", str(ROOT / "node_modules" / "snarkjs" / "build" / "cli.cjs"), *args], cwd)


#: Prefix of the work directories of builds made under the cache lock (see :func:`_locked`).
BUILD_DIR_PREFIX = ".build-"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the cache's build lock; on taking it, remove work directories that killed builds left.

    Only a holder of this lock builds in a ``.build-*`` directory beside ``path``, so any such
    directory found on entry belongs to a process that died mid-build (a gateway stopped while it
    made its keys leaves a powers of tau of several MB otherwise, seen in ~/.cache/twopm/zk).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            for stale in path.parent.glob(f"{BUILD_DIR_PREFIX}*"):
                shutil.rmtree(stale, ignore_errors=True)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ensure_ptau(cache: Path, power: int = PTAU_POWER) -> Path:
    """The development powers of tau of 2^``power`` constraints (made on first use, then cached)."""
    target = cache / f"dev_pot{power}_final.ptau"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(dir=cache, prefix=BUILD_DIR_PREFIX) as tmp:
        work = Path(tmp)
        _snarkjs("powersoftau", "new", "bn128", str(power), "pot_0.ptau", cwd=work)
        _snarkjs(
            "powersoftau",
            "beacon",
            "pot_0.ptau",
            "pot_1.ptau",
            DEV_PTAU_BEACON,
            str(DEV_BEACON_ITERATIONS_EXP),
            "-n=2PM development beacon",
            cwd=work,
        )
        _snarkjs("powersoftau", "prepare", "phase2", "pot_1.ptau", "pot_final.ptau", cwd=work)
        os.replace(work / "pot_final.ptau", target)
    return target


def _dev_phase2(first: Path, final: Path, work: Path) -> None:
    """Phase 2 of the development setup: one public beacon (anyone can recompute the toxic waste)."""
    _snarkjs(
        "zkey",
        "beacon",
        str(first),
        str(final),
        DEV_ZKEY_BEACON,
        str(DEV_BEACON_ITERATIONS_EXP),
        "-n=2PM dev phase 2",
        cwd=work,
    )


DEV_NOTE = (
    "DEVELOPMENT KEYS: the phase-2 contribution comes from a\n"
    "// public beacon, so these constants secure nothing on a real chain. Regenerate: python -m zk setup."
)


def _build_circuit(
    *,
    main: str,
    ptau: Path,
    target: Path,
    wasm_name: str,
    zkey_name: str,
    contract: str,
    what: str,
    phase2: Callable[[Path, Path, Path], None] = _dev_phase2,
    note: str = DEV_NOTE,
) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=BUILD_DIR_PREFIX) as tmp:
        work = Path(tmp)
        src = work / "src"
        _compile_circom(main, src, "--r1cs", "--wasm")
        out = work / "out"
        out.mkdir()
        shutil.copy(src / "main_js" / "main.wasm", out / wasm_name)
        _snarkjs("groth16", "setup", str(src / "main.r1cs"), str(ptau), "k0.zkey", cwd=work)
        phase2(work / "k0.zkey", out / zkey_name, work)
        _snarkjs(
            "zkey",
            "export",
            "verificationkey",
            str(out / zkey_name),
            str(out / "verification_key.json"),
            cwd=work,
        )
        _snarkjs(
            "zkey", "export", "solidityverifier", str(out / zkey_name), "verifier.sol", cwd=work
        )
        text = (work / "verifier.sol").read_text()
        text = text.replace("contract Groth16Verifier {", f"contract {contract} {{", 1)
        text = text.replace(
            "pragma solidity >=0.7.0 <0.9.0;",
            "pragma solidity >=0.7.0 <0.9.0;\n\n"
            f"// Generated by zk/_setup.py (snarkjs zkey export solidityverifier) for the {what}. {note}",
            1,
        )
        (out / f"{contract}.sol").write_text(text)
        if not target.exists():
            os.replace(out, target)
            return
        # The directory exists: another process finished first (its files stay), or a witness-only
        # calculator was compiled there (ensure_batch_hashes). Add what is missing, the zkey last:
        # readers take an existing zkey to mean the set is complete.
        for item in sorted(out.iterdir(), key=lambda path: path.name == zkey_name):
            if not (target / item.name).exists():
                os.replace(item, target / item.name)


def _logit_main(n_features: int) -> str:
    """Body of ``main.circom`` for the served logit proof of ``n_features`` features."""
    return (
        f'include "proven_logit.circom";\ncomponent main = ProvenLogit({n_features}, {X_BITS});\n'
    )


def _refuse_dev_keys_in(cache: Path, what: str) -> None:
    """Raise SetupError when ``cache`` is a ceremony key directory (development keys never go there)."""
    if (cache / CEREMONY_MANIFEST).exists():
        raise SetupError(
            f"{cache} holds a deployment's ceremony keys (python -m zk ceremony) but none for "
            f"{what}: refusing to add development keys there"
        )


def _logit_keys_at(n_features: int, cache: Path) -> CircuitKeys:
    """Where the logit circuit's files for ``n_features`` live (content-addressed)."""
    return CircuitKeys(n_features, cache / f"logit_f{n_features}_{_shape_key(n_features)}")


def ensure_keys(n_features: int, cache_dir: Path | None = None) -> CircuitKeys:
    """The circuit keys for ``n_features`` features, made on first use (minutes) and cached.

    Args:
        n_features: Features F of the model (any F >= 1 whose circuit fits 2^12 constraints; only
            :data:`SUPPORTED_FEATURE_COUNTS` have an on-chain verifier).
        cache_dir: Cache root; :func:`default_cache_dir` when None.

    Returns:
        The keys.

    Raises:
        SetupError: The Node tools are missing or a step failed.
        ValueError: ``n_features`` < 1.
    """
    if n_features < 1:
        raise ValueError("a logit circuit needs at least one feature")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    keys = _logit_keys_at(n_features, cache)
    if keys.zkey.exists():
        return keys
    _refuse_dev_keys_in(cache, f"{n_features} features of this circuit")
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        if not keys.zkey.exists():
            _build_keys(keys, _ensure_ptau(cache))
    return keys


def ensure_inputs_hash_wasm(n_features: int, cache_dir: Path | None = None) -> Path:
    """Witness calculator of ``InputsHash(F)`` (``zk/circuits/proven_logit.circom``), compiled once.

    A client recomputes a proof's ``inputsHash`` from the features it sent with it; it needs no keys
    and no trusted setup (a circom compile, seconds), and is cached beside the keys.

    Args:
        n_features: F >= 1.
        cache_dir: Cache root; :func:`default_cache_dir` when None.

    Returns:
        Path of the ``.wasm`` file.

    Raises:
        SetupError: The Node tools are missing or the compile failed.
        ValueError: ``n_features`` < 1.
    """
    if n_features < 1:
        raise ValueError("an inputs hash needs at least one feature")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    h = hashlib.sha256()
    for part in (
        CIRCUIT.read_text(),
        PROVEN_CIRCUIT.read_text(),
        str(n_features),
        _tool_versions(),
    ):
        h.update(part.encode() + b"\0")
    target = cache / f"inputs_hash_f{n_features}_{h.hexdigest()[:16]}.wasm"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    _compile_witness_calculator(
        f'include "proven_logit.circom";\ncomponent main = InputsHash({n_features});\n',
        target,
        cache,
    )
    return target


@dataclass(frozen=True)
class TrainingCircuitKeys(CircuitKeys):
    """Files of one training circuit shape (``zk/circuits/training.circom``).

    Attributes:
        n_rows: Row capacity N of the circuit.
    """

    n_rows: int = 0

    @property
    def wasm(self) -> Path:
        return self.directory / "training.wasm"

    @property
    def zkey(self) -> Path:
        return self.directory / "training.zkey"

    @property
    def solidity(self) -> Path:
        return self.directory / f"TrainingGroth16Verifier{self.n_features}.sol"


def _training_keys_at(n_features: int, cache: Path) -> TrainingCircuitKeys:
    """Where the training circuit's files for ``n_features`` live (content-addressed).

    Raises:
        ValueError: No training circuit shape for ``n_features``.
    """
    from zk._training import TRAIN_X_BITS, TRAINING_PTAU_POWER, TRAINING_SHAPES

    if n_features not in TRAINING_SHAPES:
        raise ValueError(
            f"no training circuit for {n_features} features (shapes: {sorted(TRAINING_SHAPES)})"
        )
    n_rows = TRAINING_SHAPES[n_features]
    digest = _dev_key_digest(
        *(
            (CIRCUIT.parent / name).read_text()
            for name in ("logit.circom", "sigmoid_table.circom", "training.circom")
        ),
        f"{n_features},{n_rows},{TRAIN_X_BITS},{TRAINING_PTAU_POWER}",
    )
    directory = cache / f"training_f{n_features}_n{n_rows}_{digest}"
    return TrainingCircuitKeys(n_features, directory, n_rows)


def ensure_training_keys(n_features: int, cache_dir: Path | None = None) -> TrainingCircuitKeys:
    """The training circuit's keys for ``n_features`` features, made on first use and cached.

    The first call builds the 2^13 development powers of tau (about 10 minutes on 2 loaded cores)
    and the circuit's phase 2; later calls return at once. Development keys only (module docstring).

    Args:
        n_features: F; must be a key of ``zk.TRAINING_SHAPES`` (its row capacity N comes from there).
        cache_dir: Cache root; :func:`default_cache_dir` when None.

    Raises:
        SetupError: The Node tools are missing or a step failed.
        ValueError: No training circuit shape for ``n_features``.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    keys = _training_keys_at(n_features, cache)
    if keys.zkey.exists():
        return keys
    _refuse_dev_keys_in(cache, f"the {n_features}-feature training circuit")
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        if not keys.zkey.exists():
            _build_keys(keys, _ensure_ptau(cache, circuit_spec(keys).ptau_power))
    return keys


@dataclass(frozen=True)
class TrainingChunkCircuitKeys(CircuitKeys):
    """Files of one training chunk circuit shape (``zk/circuits/training_chunk.circom``).

    Attributes:
        n_rows: Rows R per chunk.
    """

    n_rows: int = 0

    @property
    def wasm(self) -> Path:
        return self.directory / "training_chunk.wasm"

    @property
    def zkey(self) -> Path:
        return self.directory / "training_chunk.zkey"

    @property
    def solidity(self) -> Path:
        return self.directory / f"TrainingChunkGroth16Verifier{self.n_features}.sol"


def _training_chunk_keys_at(n_features: int, cache: Path) -> TrainingChunkCircuitKeys:
    """Where the training chunk circuit's files for ``n_features`` live (content-addressed).

    Raises:
        ValueError: No chunk circuit shape for ``n_features``.
    """
    from zk._training import (
        CHUNK_COUNT_BITS,
        TRAIN_X_BITS,
        TRAINING_CHUNK_SHAPES,
        TRAINING_PTAU_POWER,
    )

    if n_features not in TRAINING_CHUNK_SHAPES:
        raise ValueError(
            f"no training chunk circuit for {n_features} features "
            f"(shapes: {sorted(TRAINING_CHUNK_SHAPES)})"
        )
    n_rows = TRAINING_CHUNK_SHAPES[n_features]
    digest = _dev_key_digest(
        *(
            (CIRCUIT.parent / name).read_text()
            for name in (
                "logit.circom",
                "sigmoid_table.circom",
                "training.circom",
                "training_chunk.circom",
            )
        ),
        f"{n_features},{n_rows},{TRAIN_X_BITS},{CHUNK_COUNT_BITS},{TRAINING_PTAU_POWER}",
    )
    directory = cache / f"training_chunk_f{n_features}_r{n_rows}_{digest}"
    return TrainingChunkCircuitKeys(n_features, directory, n_rows)


def ensure_training_chunk_keys(
    n_features: int, cache_dir: Path | None = None
) -> TrainingChunkCircuitKeys:
    """The training chunk circuit's keys for ``n_features`` features, made on first use and cached.

    ``TrainingChunk(R, F, XB, KB)`` (R = ``zk.TRAINING_CHUNK_SHAPES[F]``, KB = ``zk.CHUNK_COUNT_BITS``;
    7,382 constraints for R = 2, F = 30, with the private running sums) fits the 2^13 development powers of tau the 3-feature training circuit uses; its phase 2
    takes a few minutes on 2 loaded cores. Development keys only (module docstring).

    Args:
        n_features: F; must be a key of ``zk.TRAINING_CHUNK_SHAPES``.
        cache_dir: Cache root; :func:`default_cache_dir` when None.

    Raises:
        SetupError: The Node tools are missing or a step failed.
        ValueError: No chunk circuit shape for ``n_features``.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    keys = _training_chunk_keys_at(n_features, cache)
    if keys.zkey.exists():
        return keys
    _refuse_dev_keys_in(cache, f"the {n_features}-feature training chunk circuit")
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        if not keys.zkey.exists():
            _build_keys(keys, _ensure_ptau(cache, circuit_spec(keys).ptau_power))
    return keys


#: Rows per batch proof and its powers of tau (BatchLogit(24, 3, 49): 7,863 constraints, the most
#: rows that fit the 2^13 file the training circuit uses; 2^14 did not finish in 30 min here).
BATCH_ROWS = 24
BATCH_PTAU_POWER = 13
#: Feature counts with a batch circuit (``zk/circuits/batch.circom``, ``BatchGroth16Verifier<F>``).
BATCH_FEATURE_COUNTS: tuple[int, ...] = (3,)


@dataclass(frozen=True)
class BatchCircuitKeys(CircuitKeys):
    """Files of one batch circuit shape (``zk/circuits/batch.circom``).

    Attributes:
        n_rows: Rows R per proof.
    """

    n_rows: int = BATCH_ROWS

    @property
    def wasm(self) -> Path:
        return self.directory / "batch.wasm"

    @property
    def zkey(self) -> Path:
        return self.directory / "batch.zkey"

    @property
    def hashes_wasm(self) -> Path:
        """Witness calculator of ``BatchHashes`` (a client's hashes of rows and logits; no keys)."""
        return self.directory / "hashes.wasm"

    @property
    def solidity(self) -> Path:
        return self.directory / f"BatchGroth16Verifier{self.n_features}.sol"


def _batch_keys_at(n_features: int, cache: Path) -> BatchCircuitKeys:
    """Where the batch circuit's files for ``n_features`` live (content-addressed)."""
    if n_features < 1:
        raise ValueError("a batch circuit needs at least one feature")
    digest = _dev_key_digest(
        *((CIRCUIT.parent / name).read_text() for name in ("batch.circom", "logit.circom")),
        f"{n_features},{BATCH_ROWS},{X_BITS},{BATCH_PTAU_POWER}",
    )
    directory = cache / f"batch_f{n_features}_r{BATCH_ROWS}_{digest}"
    return BatchCircuitKeys(n_features, directory, BATCH_ROWS)


def ensure_batch_hashes(n_features: int, cache_dir: Path | None = None) -> BatchCircuitKeys:
    """The batch circuit's hash calculator only: what a client needs to check a batch proof.

    ``BatchHashes(R, F)`` is a witness-only circuit (a circom compile, seconds; no powers of tau and
    no phase 2), so a client that verifies a batch answer never builds the prover's keys. The
    returned object's ``zkey`` may not exist; only ``hashes_wasm``, ``n_rows`` and ``n_features``
    are for use (``zk.batch_hashes``).

    Args:
        n_features: F >= 1.
        cache_dir: Cache root; :func:`default_cache_dir` when None.

    Raises:
        SetupError: The Node tools are missing or the compile failed.
        ValueError: ``n_features`` < 1.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    keys = _batch_keys_at(n_features, cache)
    if keys.hashes_wasm.exists():
        return keys
    keys.directory.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        if not keys.hashes_wasm.exists():
            _compile_witness_calculator(
                'include "batch.circom";\n'
                f"component main = BatchHashes({BATCH_ROWS}, {n_features});\n",
                keys.hashes_wasm,
                cache,
            )
    return keys


def ensure_batch_keys(n_features: int, cache_dir: Path | None = None) -> BatchCircuitKeys:
    """The batch circuit's keys for ``n_features`` features and :data:`BATCH_ROWS` rows (cached).

    The first call builds the 2^13 development powers of tau (minutes on loaded cores) and the
    circuit's phase 2. Development keys only (module docstring). A client that only checks batch
    proofs needs :func:`ensure_batch_hashes`, not this.

    Raises:
        SetupError: The Node tools are missing or a step failed.
        ValueError: ``n_features`` < 1.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    keys = _batch_keys_at(n_features, cache)
    if keys.zkey.exists() and keys.hashes_wasm.exists():
        return keys
    _refuse_dev_keys_in(cache, f"the {n_features}-feature batch circuit")
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        if not keys.zkey.exists():
            _build_keys(keys, _ensure_ptau(cache, circuit_spec(keys).ptau_power))
    return ensure_batch_hashes(n_features, cache)


@dataclass(frozen=True)
class CircuitSpec:
    """How one circuit shape is compiled and how large a powers of tau it needs.

    Attributes:
        main: Body of ``main.circom`` after the pragma (an include and ``component main``).
        what: Description written into the Solidity verifier's header comment.
        ptau_power: log2 of the smallest powers of tau that holds the circuit's constraints.
    """

    main: str
    what: str
    ptau_power: int


def circuit_spec(keys: CircuitKeys) -> CircuitSpec:
    """The compile step and powers-of-tau size of the circuit whose files ``keys`` names.

    One place for both the development build (``ensure_*``) and a deployment's ceremony
    (zk/_ceremony.py), so the two always compile the same circuit for a key directory layout.
    """
    from zk._training import CHUNK_COUNT_BITS, TRAIN_X_BITS, TRAINING_PTAU_POWER

    f = keys.n_features
    if isinstance(keys, BatchCircuitKeys):
        return CircuitSpec(
            f'include "batch.circom";\ncomponent main = BatchLogit({keys.n_rows}, {f}, {X_BITS});\n',
            f"{f}-feature, {keys.n_rows}-row\n// batch circuit, zk/circuits/batch.circom",
            BATCH_PTAU_POWER,
        )
    if isinstance(keys, TrainingChunkCircuitKeys):
        return CircuitSpec(
            'include "training_chunk.circom";\n'
            "component main {public [linkIn, accIn]} = "
            f"TrainingChunk({keys.n_rows}, {f}, {TRAIN_X_BITS}, {CHUNK_COUNT_BITS});\n",
            f"{f}-feature, {keys.n_rows}-row\n// training chunk circuit, zk/circuits/training_chunk.circom",
            TRAINING_PTAU_POWER,
        )
    if isinstance(keys, TrainingCircuitKeys):
        return CircuitSpec(
            'include "training.circom";\n'
            f"component main = TrainingSums({keys.n_rows}, {f}, {TRAIN_X_BITS});\n",
            f"{f}-feature, {keys.n_rows}-row\n// training circuit, zk/circuits/training.circom",
            TRAINING_PTAU_POWER,
        )
    return CircuitSpec(
        _logit_main(f),
        f"{f}-feature\n// logit circuit, zk/circuits/proven_logit.circom",
        PTAU_POWER,
    )


def _build_keys(
    keys: CircuitKeys,
    ptau: Path,
    phase2: Callable[[Path, Path, Path], None] = _dev_phase2,
    note: str = DEV_NOTE,
) -> None:
    """Build the circuit of ``keys`` (:func:`circuit_spec`) into ``keys.directory``.

    Args:
        keys: Which circuit and where its files go.
        ptau: Powers of tau (phase 1) of at least ``circuit_spec(keys).ptau_power``.
        phase2: ``(first zkey, final zkey, work dir)``; the development beacon by default.
        note: Comment written into the Solidity verifier; the development warning by default.

    Raises:
        SetupError: A tool failed (a powers of tau too small for the circuit among them).
    """
    spec = circuit_spec(keys)
    _build_circuit(
        main=spec.main,
        ptau=ptau,
        target=keys.directory,
        wasm_name=keys.wasm.name,
        zkey_name=keys.zkey.name,
        contract=keys.solidity.stem,
        what=spec.what,
        phase2=phase2,
        note=note,
    )


def ensure_dev_keys(cache_dir: Path | None = None) -> None:
    """Every development key a local ``twopm up`` proves with, made now if not cached.

    The logit circuits of :data:`SUPPORTED_FEATURE_COUNTS` (the gateway's ``proof=true``), the
    3-feature batch circuit (several rows in one proof), the 3-feature training circuit (the
    Spector holders' proofs) and the 30-feature training chunk circuit (the breast-cancer holders'
    chunked proofs). On a fresh machine this is the 2^12 and 2^13 powers of tau plus each
    circuit's phase 2: 15-20 minutes on 2 loaded cores, summed from the steps in docs/proofs.md;
    afterwards a few file checks. Development keys only (module docstring).

    Args:
        cache_dir: Cache root; :func:`default_cache_dir` when None.

    Raises:
        SetupError: The Node tools are missing or a step failed.
    """
    for n_features in SUPPORTED_FEATURE_COUNTS:
        ensure_keys(n_features, cache_dir)
    ensure_training_keys(3, cache_dir)
    for n_features in BATCH_FEATURE_COUNTS:
        ensure_batch_keys(n_features, cache_dir)
    ensure_training_chunk_keys(30, cache_dir)
