"""TUI responsiveness (DESIGN.md targets and issue 17): first paint ≤ 0.5 s after launch, key press →
screen update ≤ 100 ms (p95) while a generation streams, and a tab switch ≤ 50 ms (median) when the
app is idle. Prints measured / target ratios (≤ 1.0 meets).

First paint is measured in a real terminal: `lsn-explorer tui` started in a detached tmux pane,
polled with `capture-pane` until the app's header shows (the poll and tmux start-up count against
us). Key latency is measured the same way on the demo model: while a 100-token generation streams into
both panes, a tab key is sent and the pane polled until the other tab's text shows. Tab switches
are timed with the model loaded and nothing running: each round presses F3, F4, … F10, F2 (every
tab once), with a pause before each press so the app is idle when it arrives; a first, unmeasured
round shows every tab once (tabs mount lazily).

    python bench/tui_latency.py [--runs 5] [--presses 40] [--bytecode cached|as-is]

`--runs` is the number of launches timed for first paint and of rounds of tab switches. Other
processes on the machine count against every figure: the load average is printed with them.

`--bytecode cached` (the default) runs the app the way an installed copy runs from its second
launch on: with every module's bytecode cached (in a temporary folder, written by one untimed
launch first). `as-is` keeps the environment's setting; where PYTHONDONTWRITEBYTECODE is set and
the package is an editable install, every launch compiles the package's ~90 modules from source
(first paint 466 vs 374–382 ms cached, in this bench on a 2-core VM).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "tui"))

import tmux_driver as tmux  # noqa: E402  (the driver the smoke test uses)

FIRST_PAINT_TARGET_S = 0.5
KEY_TARGET_S = 0.100
SWITCH_TARGET_S = 0.050
# What each tab shows and no other tab does (the key latency uses F5 and F7).
TAB_MARKS = {
    "F2": "Activation statistics",
    "F3": "Identify neurons over the ticked languages",
    "F4": "switched-on rows apply to the next generation",
    "F5": "new tokens",
    "F6": "data folder",
    "F7": "Generations and scores of this session",
    "F8": "Background jobs of this session",
    "F9": "Evaluations of this session",
    "F10": "states are computed once",
}


# Prefixed to the app's command line (`--bytecode`); the tmux pane does not inherit our environment.
APP_ENV = {"prefix": ""}


def app_command(root: str, session: str) -> str:
    exe = Path(sys.executable).with_name("lsn-explorer")
    return f"{APP_ENV['prefix']}{exe} tui --session {session} --sessions-dir {root}"


def first_paint(runs: int) -> list[float]:
    if not tmux.available():
        print("first paint: skipped (no tmux)")
        return []
    times = []
    with tempfile.TemporaryDirectory() as root:
        for run in range(runs):
            name = f"lsn-bench-{run}"
            command = app_command(root, "bench")
            start = time.perf_counter()
            tmux.start(name, command)
            try:
                tmux.wait_for(name, "Languages", 30)
                times.append(time.perf_counter() - start)
                time.sleep(1.0)  # let it settle before the next launch competes for the CPU
            finally:
                tmux.kill(name)
    return times


def key_latency(presses: int) -> tuple[list[float], int]:
    """Press tab keys in the real app while it streams a generation; time until the screen shows
    the other tab. Returns (latencies, presses made while the status line said "generating")."""
    if not tmux.available():
        print("key latency: skipped (no tmux)")
        return [], 0
    latencies, during = [], 0
    with app_in_tmux("lsn-bench-keys") as name:
        while len(latencies) < presses:
            tmux.keys(name, "F5")
            tmux.wait_for(name, "new tokens", 10)
            tmux.keys(name, "C-g")
            tmux.wait_for(name, "generating", 10)
            key = "F7"
            while len(latencies) < presses:
                start = time.perf_counter()
                tmux.keys(name, key)
                screen = tmux.wait_for(name, TAB_MARKS[key], 10)
                latencies.append(time.perf_counter() - start)
                if "generating" not in screen:
                    break
                during += 1
                key = "F5" if key == "F7" else "F7"
            tmux.wait_for(name, "│ idle", 60)
    return latencies, during


def tab_switches(rounds: int) -> tuple[dict[str, list[float]], float]:
    """Switch through every tab `rounds` times with the app idle; time each key → other tab shown,
    by the key pressed. Also returns the app's CPU seconds per measured switch (pauses included):
    unlike the wall times, it hardly moves when other processes load the machine."""
    if not tmux.available():
        print("tab switches: skipped (no tmux)")
        return {}, 0.0
    order = [*list(TAB_MARKS)[1:], "F2"]
    times: dict[str, list[float]] = {key: [] for key in order}
    with app_in_tmux("lsn-bench-tabs") as name:
        tmux.wait_for(name, "│ idle", 60)
        pid = subprocess.run(["tmux", "display-message", "-p", "-t", name, "#{pane_pid}"], capture_output=True,
                             text=True).stdout.strip()
        cpu_start = 0.0
        for round_ in range(rounds + 1):
            if round_ == 1:
                cpu_start = _cpu_seconds(pid)
            for key in order:
                time.sleep(0.3)  # idle: the previous switch and its after-effects are done
                start = time.perf_counter()
                tmux.keys(name, key)
                tmux.wait_for(name, TAB_MARKS[key], 10)
                if round_:  # round 0 shows each tab for the first time
                    times[key].append(time.perf_counter() - start)
        cpu = (_cpu_seconds(pid) - cpu_start) / (rounds * len(order))
    return times, cpu


@contextmanager
def app_in_tmux(name: str) -> Iterator[str]:
    """The app on the demo model in tmux session `name`, on a session prepared for streaming (see
    `_prepare_session`), once the model has loaded; killed afterwards."""
    with tempfile.TemporaryDirectory() as root:
        _prepare_session(root)
        tmux.start(name, app_command(root, "keys"))
        try:
            tmux.wait_for(name, "demo-model", 120)
            yield name
        finally:
            tmux.kill(name)


def _cpu_seconds(pid: str) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _prepare_session(root: str) -> None:
    """A session the app reopens with a prompt, 100 new tokens and one switched-on row, so every
    Ctrl+G streams a baseline and an intervened row for a few seconds."""
    from lsn_explorer.workbench.bench import Workbench
    from lsn_explorer.workbench.state import SwitchRow

    workbench = Workbench.open("keys", root)
    workbench.state.prompt, workbench.state.max_new_tokens = "The", 100
    workbench.set_rows([SwitchRow("0.1,1.2,2.3,3.4,4.5,5.6=zero", True)])
    workbench.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--bytecode", choices=("cached", "as-is"), default="cached")
    args = parser.parse_args()
    print(f"load average before: {Path('/proc/loadavg').read_text().split()[:3]} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as cache:
        if args.bytecode == "cached":
            APP_ENV["prefix"] = f"env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX={cache} "
            with app_in_tmux("lsn-bench-warm"):  # compiles and caches every module the app imports
                pass
        print(f"bytecode: {args.bytecode} (PYTHONDONTWRITEBYTECODE here: "
              f"{os.environ.get('PYTHONDONTWRITEBYTECODE', 'unset')})")
        measure(args)
    print(f"load average after: {Path('/proc/loadavg').read_text().split()[:3]}")


def measure(args: argparse.Namespace) -> None:
    paints = first_paint(args.runs)
    if paints:
        median = statistics.median(paints)
        print(f"first paint: median {median * 1000:.0f} ms over {len(paints)} launches "
              f"(min {min(paints) * 1000:.0f}, max {max(paints) * 1000:.0f}); "
              f"ratio to the 0.5 s target: {median / FIRST_PAINT_TARGET_S:.2f}")
    latencies, during = key_latency(args.presses)
    if latencies:
        print(f"key → screen while streaming: p95 {p95(latencies) * 1000:.0f} ms, median "
              f"{statistics.median(latencies) * 1000:.0f} ms over {len(latencies)} tab switches "
              f"({during} with the generation still streaming afterwards); ratio p95 / 100 ms target: "
              f"{p95(latencies) / KEY_TARGET_S:.2f}")
    by_key, cpu = tab_switches(args.runs)
    switches = [t for times in by_key.values() for t in times]
    if switches:
        median = statistics.median(switches)
        print(f"tab switch, idle: median {median * 1000:.0f} ms, p95 {p95(switches) * 1000:.0f} ms over "
              f"{len(switches)} switches ({args.runs} rounds of {len(TAB_MARKS)} tabs); ratio median / 50 ms "
              f"target: {median / SWITCH_TARGET_S:.2f}; the app's CPU per switch: {cpu * 1000:.0f} ms")
        print("  median by key: " + ", ".join(f"{key} {statistics.median(times) * 1000:.0f}"
                                              for key, times in by_key.items()))


if __name__ == "__main__":
    main()
