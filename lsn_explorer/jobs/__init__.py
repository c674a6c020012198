"""Background jobs: long work in its own process, owned by a session.

`spec` (what a job does, validated data stored in the job row), `runners` (kind → the function
that calls core), `worker` (the detached process: `python -m lsn_explorer.jobs run`), `control`
(start, status, list, cancel, resume, wait, log), `locks` (the files that say what runs) and
`progress` (throttled writes to the store). Standard library only: no daemon, no broker.
Never imports workbench, cli or tui; core and session never import jobs.
"""
