"""`python -m gold`: see gold/cli.py."""

import sys

from gold.cli import main

sys.exit(main())
