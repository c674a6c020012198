"""Commands started by torchrun: joining the run, opening the session once, printing once.

Under `torchrun --nproc-per-node N -m lsn_explorer CMD ...` every rank parses the same command
line. Rank 0 creates or opens the session first (so N processes never race to create it), the
others open it after; only rank 0 prints results (see `core/distributed.py` for the exchange).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lsn_explorer.cli.common import open_session
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.core.distributed import Ranks


def joined_ranks(args: argparse.Namespace, command: str, refuse: Mapping[str, bool] = {}) -> Ranks | None:
    """This process's ranks when torchrun started several (None for a plain run), joined to the
    process group on its own device (`args.device` is set to it). `refuse`: flags that make no
    sense in a distributed run, with whether they were given."""
    from lsn_explorer.core.distributed import from_environment, rank_device, start

    ranks = from_environment()
    if ranks is None:
        return None
    for flag, given in refuse.items():
        if given:
            raise LsnError(f"`{command}` under torchrun takes no {flag}",
                           f"the {ranks.world} processes split the work themselves; leave out {flag}")
    args.device = rank_device(ranks, args.device)
    start(ranks, args.device)
    return ranks


def main_rank(ranks: Ranks | None) -> bool:
    """Whether this process prints and writes: a plain run, or rank 0."""
    return ranks is None or ranks.main


def leave(ranks: Ranks | None, *, clean: bool = True) -> None:
    """Leave the process group. After a clean run every rank first waits for the others: a rank
    that tore down its connections while a peer was still receiving could abort that peer at exit
    ("terminate called without an active exception", seen once in the killed-rank test). After a
    failure a peer may be gone, so nobody waits."""
    if ranks is not None:
        from lsn_explorer.core.distributed import barrier, finish

        if clean:
            barrier(ranks)
        finish()


@contextmanager
def ranked_session(args: argparse.Namespace, ranks: Ranks | None) -> Iterator[Any]:
    """The session of `--session`: opened by rank 0 first (creating it if new), then by the rest."""
    if ranks is None:
        with open_session(args) as session:
            yield session
        return
    from lsn_explorer.core.distributed import barrier

    if ranks.main:
        with open_session(args) as session:
            barrier(ranks)
            yield session
    else:
        barrier(ranks)
        with open_session(args, create=False) as session:
            yield session
