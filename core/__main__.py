"""``python -m core`` runs the ``twopm`` command line."""

import sys

from core.cli import main

sys.exit(main())
