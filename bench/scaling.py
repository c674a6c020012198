"""Benchmark: statistics over the same work with torchrun's 2 processes vs 1 process.

Runs `lsn-explorer stats` on the demo model (3 languages, `--tokens` each) once as one process
and once as `torchrun --standalone --nproc-per-node 2 -m lsn_explorer stats`, each in a fresh
session, and prints the wall time of each and the scaling ratio (one-process time / two-process
time; 2.0 would be perfect scaling). Both include starting Python and loading the model, which
each rank pays once. On a 2-core CPU the one process already uses both cores for its matrix
products, so expect little gain here; on N GPUs each rank has its own device. The artifacts of
both runs are compared too (equal when both run with one thread per process: `--threads 1`).

    .venv/bin/python bench/scaling.py [--tokens 20000] [--threads 1|0]   (0: torch's default)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lsn_explorer.session.store import Session

LANGS = "en,zh,hi"


def run(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def artifacts(sessions: Path, name: str) -> dict[str, str]:
    with Session.open(name, sessions, create=False) as session:
        return {r.name: r.payload["artifact"] for r in session.records("stats")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=1, help="OMP threads per process (0: default)")
    args = parser.parse_args()
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        sessions = Path(folder)
        flags = ["stats", "--langs", LANGS, "--tokens", str(args.tokens), "--sessions-dir", str(sessions)]
        one = run([sys.executable, "-m", "lsn_explorer", *flags, "--session", "one"], env)
        two = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                   "-m", "lsn_explorer", *flags, "--session", "two"], env)
        same = artifacts(sessions, "one") == artifacts(sessions, "two")
    print(f"demo model, {LANGS}, {args.tokens:,} tokens each, {args.threads or 'default'} thread(s) per process; "
          f"load {open('/proc/loadavg').read().split()[0]}")
    print(f"1 process : {one:6.1f} s")
    print(f"2 processes: {two:6.1f} s")
    print(f"scaling ratio (1-process time / 2-process time): {one / two:.2f}   identical statistics: {same}")


if __name__ == "__main__":
    main()
