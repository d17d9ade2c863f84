"""``python -m clients`` runs the ``twopm`` command line (hosted by :mod:`core.cli`)."""

import sys

from core.cli import main

sys.exit(main())
