"""``python -m signer``: run the signer commands on a host without the rest of 2PM."""

import sys

from signer.cli import main

if __name__ == "__main__":
    sys.exit(main())
