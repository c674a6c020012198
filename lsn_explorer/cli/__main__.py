"""`python -m lsn_explorer.cli`: the same as the `lsn-explorer` command."""

import sys

from lsn_explorer.cli import main

sys.exit(main())
