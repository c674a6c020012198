"""`python -m lsn_explorer`: the `lsn-explorer` command, also as torchrun's module
(`torchrun --nproc-per-node N -m lsn_explorer stats ...`)."""

import sys

from lsn_explorer.cli import main

sys.exit(main())
