"""``python -m clients`` runs the ``twopm`` command line."""

import sys

from clients.cli import main

sys.exit(main())
