"""Phase 2 of the Groth16 setup on a ceremony powers of tau: a deployment's own proving keys.

The development keys (:mod:`zk._setup`) rest on a public beacon and only ever go to a local chain. For
any other chain an operator runs ``python -m zk ceremony --ptau powersOfTau28_hez_final_<k>.ptau
--ptau-sha256 HEX --out KEYDIR``, which, for every logit circuit shape the deployment serves
(:data:`zk.SUPPORTED_FEATURE_COUNTS`):

1. checks the file (``core.ptau.check_ceremony_ptau``: the operator's sha256 and a BLAKE2b-512 from the
   list in snarkjs's README, i.e. the Hermez ceremony, 1-of-N honest contributors);
2. compiles the circuit and runs ``snarkjs groth16 setup`` on that file;
3. adds :data:`CONTRIBUTIONS` contributions (``snarkjs zkey contribute``) whose entropy is 32 bytes of
   ``os.urandom`` handed to snarkjs on its standard input (never on a command line, never written to
   a file; snarkjs mixes in 64 bytes of its own ``crypto.randomBytes``), then the final public beacon
   snarkjs recommends (``zkey beacon``, 2^10 iterations) on a value the operator gives (e.g. a future
   block hash), and checks the result with ``snarkjs zkey verify`` against the circuit and the ptau;
4. exports the verification key and the Solidity verifier (``LogitGroth16Verifier<F>``) and compiles
   it with the repository's offline solc for Shanghai (``contracts/build.mjs --source``).

The per-contribution toxic waste lives only in snarkjs's memory and the intermediate ``.zkey`` files of
a temporary directory that is deleted; the intermediate files hold no secret (a zkey is public). Every
output goes to ``KEYDIR`` in the layout :func:`zk.ensure_keys` reads, so the gateway proves with them
when ``proof_keys_dir`` (``TWOPM_GATEWAY_PROOF_KEYS_DIR``) names ``KEYDIR``; ``KEYDIR/zk_setup.json`` records
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
    CEREMONY_MANIFEST,
    ROOT,
    SUPPORTED_FEATURE_COUNTS,
    CircuitKeys,
    SetupError,
    _build_shape,
    _compile_circom,
    _logit_main,
    _shape_key,
    _snarkjs,
    verifier_contract_name,
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
        keys: Feature count -> circuit keys (zkey, verification key, wasm, Solidity verifier).
        manifest: What ``KEYDIR/zk_setup.json`` holds.
    """

    directory: Path
    keys: dict[int, CircuitKeys]
    manifest: dict[str, object]


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
        _compile_circom(_logit_main(keys.n_features), work, "--r1cs")
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
    feature_counts: tuple[int, ...] = SUPPORTED_FEATURE_COUNTS,
    verify: bool = True,
) -> CeremonyKeys:
    """Run phase 2 on a checked ceremony file for every logit shape and write ``directory``.

    Args:
        ptau: The checked ceremony file (``core.ptau.check_ceremony_ptau``; only that function makes a
            :class:`core.ptau.CeremonyPtau`, so a locally made file never gets here).
        directory: New or empty key directory (refused if it already holds keys).
        beacon: Final public beacon, 1..64 bytes as hex (e.g. a block hash announced in advance).
        feature_counts: Circuit shapes; default every shape with an on-chain verifier.
        verify: Run ``snarkjs zkey verify`` on every result (about as long as the setup itself).

    Returns:
        The keys and the manifest (also written to ``directory/zk_setup.json``).

    Raises:
        SetupError: A tool failed, the ptau is too small for a circuit, or ``directory`` holds files.
        ValueError: ``beacon`` is not hex of 1..64 bytes.
    """
    beacon = beacon.strip().lower().removeprefix("0x")
    if not re.fullmatch(r"(?:[0-9a-f]{2}){1,64}", beacon):
        raise ValueError("the beacon must be hex, 1 to 64 bytes (e.g. a block hash)")
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise SetupError(f"{directory} is not empty: give a new key directory")
    directory.mkdir(parents=True, exist_ok=True)
    keys: dict[int, CircuitKeys] = {}
    verifiers: dict[str, dict[str, str]] = {}
    for n in feature_counts:
        circuit = CircuitKeys(n, directory / f"logit_f{n}_{_shape_key(n)}")
        contract = verifier_contract_name(n)
        _build_shape(
            n,
            ptau.path,
            circuit.directory,
            phase2=lambda first, final, work: _contribute(
                first, final, work, beacon, "2PM deployment"
            ),
            note=(
                f"CEREMONY KEYS: phase 2 on {ptau.name}\n// (sha256 {ptau.sha256}) "
                f"with {CONTRIBUTIONS} secret contribution(s) and a final beacon; python -m zk ceremony."
            ),
        )
        if verify:
            _verify_chain(circuit, ptau.path)
        artifact = _compile(circuit.solidity, circuit.directory)
        keys[n] = circuit
        verifiers[contract] = {
            "artifact": str(artifact.relative_to(directory)),
            "zkey": str(circuit.zkey.relative_to(directory)),
            "verification_key": str(circuit.verification_key.relative_to(directory)),
        }
    manifest: dict[str, object] = {
        "kind": "ceremony",
        "ptau": ptau.name,
        "power": ptau.power,
        "sha256": ptau.sha256,
        "contributions": CONTRIBUTIONS,
        "beacon": beacon,
        "beacon_iterations_exp": BEACON_ITERATIONS_EXP,
        "verifiers": verifiers,
    }
    (directory / CEREMONY_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return CeremonyKeys(directory, keys, manifest)
