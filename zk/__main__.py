"""``python -m zk setup [--write-verifiers]``: make the development keys.

With ``--write-verifiers`` it also rewrites the committed Solidity verifiers
(``contracts/src/zk/LogitGroth16Verifier<F>.sol``, ``TrainingGroth16Verifier<F>.sol`` and
``BatchGroth16Verifier3.sol``) from them;
then ``npm run build:contracts``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from zk._setup import (
    ROOT,
    SUPPORTED_FEATURE_COUNTS,
    CircuitKeys,
    SetupError,
    ensure_batch_keys,
    ensure_keys,
    ensure_training_keys,
)
from zk._training import TRAINING_SHAPES


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m zk", description=__doc__)
    parser.add_argument("command", choices=["setup"])
    parser.add_argument("--write-verifiers", action="store_true")
    args = parser.parse_args(argv)
    jobs = (
        [(f"{n} features", ensure_keys, n) for n in SUPPORTED_FEATURE_COUNTS]
        + [(f"training, {n} features", ensure_training_keys, n) for n in TRAINING_SHAPES]
        + [("batch, 3 features", ensure_batch_keys, 3)]
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


if __name__ == "__main__":
    sys.exit(main())
