"""``python -m zk setup [--write-verifiers]``: make the development keys.

``python -m zk ceremony --ptau FILE --ptau-sha256 HEX --beacon HEX --out KEYDIR``: a deployment's own
phase 2 on a ceremony powers of tau (zk/_ceremony.py), for ``twopm chain deploy --zk-keys KEYDIR``:
the logit, batch and training circuits that fit the file (one line names the ones skipped).

With ``--write-verifiers`` it also rewrites the committed Solidity verifiers
(``contracts/src/zk/LogitGroth16Verifier<F>.sol``, ``TrainingGroth16Verifier<F>.sol`` and
``BatchGroth16Verifier3.sol``, ``TrainingChunkGroth16Verifier30.sol``) from them;
then ``npm run build:contracts``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from core.ptau import PtauError, check_ceremony_ptau
from zk._ceremony import make_ceremony_keys
from zk._setup import (
    ROOT,
    SUPPORTED_FEATURE_COUNTS,
    CircuitKeys,
    SetupError,
    ensure_batch_keys,
    ensure_keys,
    ensure_training_chunk_keys,
    ensure_training_keys,
)
from zk._training import TRAINING_CHUNK_SHAPES, TRAINING_SHAPES


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m zk", description=__doc__)
    parser.add_argument("command", choices=["setup", "ceremony"])
    parser.add_argument("--write-verifiers", action="store_true")
    parser.add_argument("--ptau", type=Path, help="ceremony: powersOfTau28_hez_final_<k>.ptau")
    parser.add_argument("--ptau-sha256", help="ceremony: the sha256 the --ptau file must have")
    parser.add_argument("--beacon", help="ceremony: final public beacon, hex (e.g. a block hash)")
    parser.add_argument("--out", type=Path, help="ceremony: new key directory")
    parser.add_argument("--no-verify", action="store_true", help="ceremony: skip zkey verify")
    args = parser.parse_args(argv)
    if args.command == "ceremony":
        return _ceremony(args)
    jobs = (
        [(f"{n} features", ensure_keys, n) for n in SUPPORTED_FEATURE_COUNTS]
        + [(f"training, {n} features", ensure_training_keys, n) for n in TRAINING_SHAPES]
        + [("batch, 3 features", ensure_batch_keys, 3)]
        + [
            (f"training chunks, {n} features", ensure_training_chunk_keys, n)
            for n in TRAINING_CHUNK_SHAPES
        ]
    )
    for what, make, n in jobs:
        started = time.perf_counter()
        try:
            keys: CircuitKeys = make(n)
        except SetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{what}: {keys.directory} ({time.perf_counter() - started:.1f} s)")
        if args.write_verifiers:
            target = ROOT / "contracts" / "src" / "zk" / keys.solidity.name
            shutil.copy(keys.solidity, target)
            print(f"  wrote {target.relative_to(ROOT)}")
    return 0


def _ceremony(args: argparse.Namespace) -> int:
    if None in (args.ptau, args.ptau_sha256, args.beacon, args.out):
        print("error: ceremony needs --ptau, --ptau-sha256, --beacon and --out", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        checked = check_ceremony_ptau(args.ptau, args.ptau_sha256)
        made = make_ceremony_keys(checked, args.out, args.beacon, verify=not args.no_verify)
    except (PtauError, SetupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for contract, keys in made.circuits.items():
        print(f"{contract}: {keys.directory}")
    if made.skipped:
        reasons = sorted(set(made.skipped.values()))
        print(f"skipped {', '.join(made.skipped)}: {'; '.join(reasons)}")
    print(f"zk keys of {checked.name}: {made.directory} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
