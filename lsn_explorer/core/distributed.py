"""One command run by several processes that `torchrun` started (torch.distributed, nothing home-made).

`torchrun --nproc-per-node N -m lsn_explorer stats ...` starts N copies of the command with RANK,
WORLD_SIZE and LOCAL_RANK set (several machines: `--nnodes` and a rendezvous endpoint). Each rank
does its share of the work (every N-th batch or unit); what the ranks computed is sent to rank 0,
which alone writes the session. Results travel as bytes — safetensors for tensors, JSON for
per-sample results — so nothing is ever unpickled. NCCL carries them between GPUs, gloo on CPUs.

A rank that dies makes the others' next exchange fail; `RankFailed` says so, and since rank 0
writes only what all ranks delivered, nothing partial is recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import torch

from lsn_explorer.errors import LsnError

# How long a rank waits for the others at an exchange before giving up (a slow rank still has its
# batch to finish; a dead one is noticed much sooner, when its connection closes).
EXCHANGE_TIMEOUT = timedelta(minutes=30)


class RankFailed(LsnError):
    """Another rank of a distributed run stopped, or the ranks could not connect."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in a distributed run."""

    rank: int
    world: int
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes the session and prints."""
        return self.rank == 0


def from_environment() -> Ranks | None:
    """The run this process belongs to when torchrun started it with more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1 or "RANK" not in os.environ:
        return None
    return Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0") or 0))


def rank_device(ranks: Ranks, device: str) -> str:
    """The device of this rank: its own GPU (LOCAL_RANK) when the run uses CUDA, else `device`."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{ranks.local_rank}"
    return device


def start(ranks: Ranks, device: str) -> None:
    """Join the process group: NCCL when this rank uses a GPU, gloo otherwise."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(torch.device(device))
    try:
        dist.init_process_group(backend, timeout=EXCHANGE_TIMEOUT)
    except (RuntimeError, ValueError) as exc:
        raise RankFailed(f"rank {ranks.rank} of {ranks.world} could not join the run: {_first_line(exc)}",
                         "start every rank with the same torchrun command (and rendezvous endpoint)") from None


def finish() -> None:
    """Leave the process group (a clean exit, so torchrun reports success)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ranks: Ranks) -> None:
    """Wait until every rank got here."""
    import torch.distributed as dist

    _guarded(ranks, dist.barrier)


def broadcast_int(ranks: Ranks, value: int) -> int:
    """Rank 0's `value`, on every rank."""
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.long, device=_wire(ranks))
    _guarded(ranks, lambda: dist.broadcast(tensor, src=0))
    return int(tensor.item())


def gather_bytes(ranks: Ranks, payload: bytes) -> list[bytes] | None:
    """Every rank's `payload` on rank 0, in rank order (None on the other ranks)."""
    import torch.distributed as dist

    device = _wire(ranks)
    size = torch.tensor([len(payload)], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(size) for _ in range(ranks.world)]
    _guarded(ranks, lambda: dist.all_gather(sizes, size))
    longest = max(int(s.item()) for s in sizes)
    data = torch.zeros(longest, dtype=torch.uint8, device=device)
    if payload:
        data[:len(payload)] = torch.frombuffer(bytearray(payload), dtype=torch.uint8).to(device)
    received = [torch.zeros_like(data) for _ in range(ranks.world)] if ranks.main else None
    _guarded(ranks, lambda: dist.gather(data, received, dst=0))
    if received is None:
        return None
    return [bytes(chunk[:int(n.item())].cpu().numpy().tobytes()) for chunk, n in zip(received, sizes)]


def gather_tensors(ranks: Ranks, tensors: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]] | None:
    """Every rank's tensors (CPU copies) on rank 0, in rank order, as safetensors bytes on the wire."""
    from safetensors.torch import load, save

    payload = save({name: t.detach().cpu().contiguous() for name, t in tensors.items()})
    gathered = gather_bytes(ranks, payload)
    return None if gathered is None else [load(chunk) for chunk in gathered]


def _wire(ranks: Ranks) -> torch.device:
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def _guarded(ranks: Ranks, exchange: Callable[[], object]) -> None:
    try:
        exchange()
    except (RuntimeError, OSError) as exc:  # DistBackendError is a RuntimeError
        raise RankFailed(f"another rank of this {ranks.world}-process run stopped ({_first_line(exc)}); "
                         "nothing of the unfinished work was recorded",
                         "see torchrun's report for the failed rank, then run the same command again") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
