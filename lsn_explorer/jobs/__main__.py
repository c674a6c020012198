"""`python -m lsn_explorer.jobs run --session S --job ID`: the detached job worker (see worker.py)."""

from lsn_explorer.jobs.worker import main

raise SystemExit(main())
