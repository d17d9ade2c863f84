"""Phase 2 of the Groth16 setup on a ceremony powers of tau: a deployment's own proving keys.

The development keys (:mod:`zk._setup`) rest on a public beacon and only ever go to a local chain. For
any other chain an operator runs ``python -m zk ceremony --ptau powersOfTau28_hez_final_<k>.ptau
--ptau-sha256 HEX --out KEYDIR``, which, for every circuit the deployment proves with
(:func:`deployment_circuits`: the logit circuits of :data:`zk.SUPPORTED_FEATURE_COUNTS`, 2^12; the
batch, training and training chunk circuits, 2^13; those larger than the file are skipped and named):

1. checks the file (``core.ptau.check_ceremony_ptau``: the operator's sha256 and a BLAKE2b-512 from the
   list in snarkjs's README, i.e. the Hermez ceremony, 1-of-N honest contributors);
2. compiles the circuit and runs ``snarkjs groth16 setup`` on that file;
3. adds :data:`CONTRIBUTIONS` contributions (``snarkjs zkey contribute``) whose entropy is 32 bytes of
   ``os.urandom`` handed to snarkjs on its standard input (never on a command line, never written to
   a file; snarkjs mixes in 64 bytes of its own ``crypto.randomBytes``), then the final public beacon
   snarkjs recommends (``zkey beacon``, 2^10 iterations) on a value the operator gives (e.g. a future
   block hash), and checks the result with ``snarkjs zkey verify`` against the circuit and the ptau;
4. exports the verification key and the Solidity verifier (``LogitGroth16Verifier<F>``,
   ``BatchGroth16Verifier3``, ``TrainingGroth16Verifier3``, ``TrainingChunkGroth16Verifier30``) and
   compiles it with the repository's offline solc for Shanghai (``contracts/build.mjs --source``).

The per-contribution toxic waste lives only in snarkjs's memory and the intermediate ``.zkey`` files of
a temporary directory that is deleted; the intermediate files hold no secret (a zkey is public). Every
output goes to ``KEYDIR`` in the layout ``zk.ensure_*`` reads, so the gateway proves with them (one-row
and batch) when ``proof_keys_dir`` (``TWOPM_GATEWAY_PROOF_KEYS_DIR``) names ``KEYDIR``, and a training
prover given ``ensure_training_keys(3, KEYDIR)`` does too; ``KEYDIR/zk_setup.json`` records
what was done and lists the compiled verifiers that ``twopm chain deploy --zk-keys KEYDIR`` deploys.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.ptau import CeremonyPtau
from zk._setup import (
    BATCH_FEATURE_COUNTS,
    CEREMONY_MANIFEST,
    ROOT,
    SUPPORTED_FEATURE_COUNTS,
    CircuitKeys,
    SetupError,
    _batch_keys_at,
    _build_keys,
    _compile_circom,
    _logit_keys_at,
    _snarkjs,
    _training_chunk_keys_at,
    _training_keys_at,
    circuit_spec,
    ensure_batch_hashes,
)

#: Secret contributions the deployment adds to each circuit's phase 2 (each from fresh entropy).
CONTRIBUTIONS = 1
#: log2 of the final beacon's hash iterations (snarkjs's README example uses 10).
BEACON_ITERATIONS_EXP = 10
#: Seconds one ``zkey contribute`` may take.
_CONTRIBUTE_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class CeremonyKeys:
    """The outcome of :func:`make_ceremony_keys`.

    Attributes:
        directory: The key directory (``KEYDIR``).
        keys: Feature count -> logit circuit keys (zkey, verification key, wasm, Solidity verifier).
        manifest: What ``KEYDIR/zk_setup.json`` holds.
        circuits: Verifier contract name -> keys, for every circuit made (logit, batch, training).
        skipped: Verifier contract name -> why it was not made (the ptau is too small for it).
    """

    directory: Path
    keys: dict[int, CircuitKeys]
    manifest: dict[str, object]
    circuits: dict[str, CircuitKeys]
    skipped: dict[str, str]


def deployment_circuits(directory: Path) -> list[CircuitKeys]:
    """Every circuit a deployment proves with, laid out in ``directory`` as ``zk.ensure_*`` reads it.

    The logit circuits of :data:`SUPPORTED_FEATURE_COUNTS`, the 3-feature batch circuit, the whole
    training circuits of ``zk.TRAINING_SHAPES`` and the chunk circuits of ``zk.TRAINING_CHUNK_SHAPES``
    (the development deployment's set, ``zk.ensure_dev_keys``), smallest powers of tau first.
    """
    from zk._training import TRAINING_CHUNK_SHAPES, TRAINING_SHAPES

    return [
        *(_logit_keys_at(n, directory) for n in SUPPORTED_FEATURE_COUNTS),
        *(_batch_keys_at(n, directory) for n in BATCH_FEATURE_COUNTS),
        *(_training_keys_at(n, directory) for n in TRAINING_SHAPES),
        *(_training_chunk_keys_at(n, directory) for n in TRAINING_CHUNK_SHAPES),
    ]


def _contribute(first: Path, final: Path, work: Path, beacon: str, name: str) -> None:
    current = first
    for i in range(CONTRIBUTIONS):
        following = work / f"contrib_{i + 1}.zkey"
        try:
            result = subprocess.run(
                [
                    "node",
                    str(ROOT / "node_modules" / "snarkjs" / "build" / "cli.cjs"),
                    "zkey",
                    "contribute",
                    str(current),
                    str(following),
                    f"-n={name} contribution {i + 1}",
                ],
                cwd=work,
                input=os.urandom(32).hex() + "\n",  # entropy on stdin: not visible in ps or /proc
                capture_output=True,
                text=True,
                timeout=_CONTRIBUTE_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SetupError(f"zkey contribute: {exc}") from exc
        if result.returncode != 0:
            raise SetupError(f"zkey contribute failed: {(result.stderr or result.stdout)[-1500:]}")
        current = following
    _snarkjs(
        "zkey",
        "beacon",
        str(current),
        str(final),
        beacon,
        str(BEACON_ITERATIONS_EXP),
        f"-n={name} final beacon",
        cwd=work,
    )


def _verify_chain(keys: CircuitKeys, ptau: Path) -> None:
    """``snarkjs zkey verify`` of the final zkey against the circuit and the ceremony file."""
    with tempfile.TemporaryDirectory(dir=keys.directory.parent) as tmp:
        work = Path(tmp)
        _compile_circom(circuit_spec(keys).main, work, "--r1cs")
        out = _snarkjs("zkey", "verify", "main.r1cs", str(ptau), str(keys.zkey), cwd=work)
        if "ZKey Ok!" not in out:
            raise SetupError(f"snarkjs zkey verify did not confirm {keys.zkey}: {out[-800:]}")


def _compile(solidity: Path, out_dir: Path) -> Path:
    result = subprocess.run(
        [
            "node",
            str(ROOT / "contracts" / "build.mjs"),
            "--source",
            str(solidity),
            "--out",
            str(out_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise SetupError(f"solc failed on {solidity}: {(result.stderr or result.stdout)[-1500:]}")
    return out_dir / f"{solidity.stem}.json"


def make_ceremony_keys(
    ptau: CeremonyPtau,
    directory: Path,
    beacon: str,
    verify: bool = True,
) -> CeremonyKeys:
    """Run phase 2 on a checked ceremony file for every circuit that fits it and write ``directory``.

    The circuits are :func:`deployment_circuits`; one whose constraints need more than
    ``2^ptau.power`` (the batch and training circuits need 2^13) is skipped and named in the
    manifest's ``skipped`` with the reason.

    Args:
        ptau: The checked ceremony file (``core.ptau.check_ceremony_ptau``; only that function makes a
            :class:`core.ptau.CeremonyPtau`, so a locally made file never gets here).
        directory: New or empty key directory (refused if it already holds keys).
        beacon: Final public beacon, 1..64 bytes as hex (e.g. a block hash announced in advance).
        verify: Run ``snarkjs zkey verify`` on every result (about as long as the setup itself).

    Returns:
        The keys and the manifest (also written to ``directory/zk_setup.json``).

    Raises:
        SetupError: A tool failed, the ptau fits none of the circuits, or ``directory`` holds files.
        ValueError: ``beacon`` is not hex of 1..64 bytes.
    """
    beacon = beacon.strip().lower().removeprefix("0x")
    if not re.fullmatch(r"(?:[0-9a-f]{2}){1,64}", beacon):
        raise ValueError("the beacon must be hex, 1 to 64 bytes (e.g. a block hash)")
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise SetupError(f"{directory} is not empty: give a new key directory")
    circuits = deployment_circuits(directory)
    if all(circuit_spec(c).ptau_power > ptau.power for c in circuits):
        raise SetupError(
            f"{ptau.name} holds 2^{ptau.power} constraints: too few for any circuit "
            f"(the smallest needs 2^{min(circuit_spec(c).ptau_power for c in circuits)})"
        )
    directory.mkdir(parents=True, exist_ok=True)
    made: dict[str, CircuitKeys] = {}
    skipped: dict[str, str] = {}
    verifiers: dict[str, dict[str, str]] = {}
    note = (
        f"CEREMONY KEYS: phase 2 on {ptau.name}\n// (sha256 {ptau.sha256}) "
        f"with {CONTRIBUTIONS} secret contribution(s) and a final beacon; python -m zk ceremony."
    )
    for circuit in circuits:
        contract = circuit.solidity.stem
        needed = circuit_spec(circuit).ptau_power
        if needed > ptau.power:
            skipped[contract] = f"needs 2^{needed} constraints, {ptau.name} holds 2^{ptau.power}"
            continue
        _build_keys(
            circuit,
            ptau.path,
            phase2=lambda first, final, work: _contribute(
                first, final, work, beacon, "2PM deployment"
            ),
            note=note,
        )
        if verify:
            _verify_chain(circuit, ptau.path)
        artifact = _compile(circuit.solidity, circuit.directory)
        made[contract] = circuit
        verifiers[contract] = {
            "artifact": str(artifact.relative_to(directory)),
            "zkey": str(circuit.zkey.relative_to(directory)),
            "verification_key": str(circuit.verification_key.relative_to(directory)),
        }
    for n in {c.n_features for c in made.values() if c.zkey.name == "batch.zkey"}:
        ensure_batch_hashes(n, directory)  # what a client checks a batch answer with (no keys)
    manifest: dict[str, object] = {
        "kind": "ceremony",
        "ptau": ptau.name,
        "power": ptau.power,
        "sha256": ptau.sha256,
        "contributions": CONTRIBUTIONS,
        "beacon": beacon,
        "beacon_iterations_exp": BEACON_ITERATIONS_EXP,
        "verifiers": verifiers,
        "skipped": skipped,
    }
    (directory / CEREMONY_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    logit = {c.n_features: c for c in made.values() if type(c) is CircuitKeys}
    return CeremonyKeys(directory, logit, manifest, made, skipped)
