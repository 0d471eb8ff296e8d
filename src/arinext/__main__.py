"""``python -m arinext``: the command line (also what ``torchrun ... -m arinext train`` runs)."""

import sys

from .cli import main

sys.exit(main())
