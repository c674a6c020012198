"""TUI responsiveness (DESIGN.md targets): first paint ≤ 1 s after launch, and key press → screen
update ≤ 100 ms (p95) while a generation streams. Prints measured / target ratios (≤ 1.0 meets).

First paint is measured in a real terminal: `lsn-explorer tui` started in a detached tmux pane,
polled with `capture-pane` until the app's header shows (the poll and tmux start-up count against
us). Key latency is measured the same way on the demo model: while a 100-token generation streams into
both panes, a tab key is sent and the pane polled until the other tab's text shows.

    python bench/tui_latency.py [--runs 5] [--presses 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "tui"))

import tmux_driver as tmux  # noqa: E402  (the driver the smoke test uses)

FIRST_PAINT_TARGET_S = 1.0
KEY_TARGET_S = 0.100


def first_paint(runs: int) -> list[float]:
    if not tmux.available():
        print("first paint: skipped (no tmux)")
        return []
    exe = Path(sys.executable).with_name("lsn-explorer")
    times = []
    with tempfile.TemporaryDirectory() as root:
        for run in range(runs):
            name = f"lsn-bench-{run}"
            command = f"{exe} tui --session bench --sessions-dir {root}"
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
    exe = Path(sys.executable).with_name("lsn-explorer")
    # What each tab shows and no other tab does.
    marks = {"F7": "Generations and scores of this session", "F5": "new tokens"}
    latencies, during = [], 0
    with tempfile.TemporaryDirectory() as root:
        name = "lsn-bench-keys"
        _prepare_session(root)
        tmux.start(name, f"{exe} tui --session keys --sessions-dir {root}")
        try:
            tmux.wait_for(name, "demo-model", 120)
            while len(latencies) < presses:
                tmux.keys(name, "F5")
                tmux.wait_for(name, "new tokens", 10)
                tmux.keys(name, "C-g")
                tmux.wait_for(name, "generating", 10)
                key = "F7"
                while len(latencies) < presses:
                    start = time.perf_counter()
                    tmux.keys(name, key)
                    screen = tmux.wait_for(name, marks[key], 10)
                    latencies.append(time.perf_counter() - start)
                    if "generating" not in screen:
                        break
                    during += 1
                    key = "F5" if key == "F7" else "F7"
                tmux.wait_for(name, "│ idle", 60)
        finally:
            tmux.kill(name)
    return latencies, during


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
    args = parser.parse_args()
    paints = first_paint(args.runs)
    if paints:
        median = statistics.median(paints)
        print(f"first paint: median {median * 1000:.0f} ms over {len(paints)} launches "
              f"(min {min(paints) * 1000:.0f}, max {max(paints) * 1000:.0f}); "
              f"ratio to the 1 s target: {median / FIRST_PAINT_TARGET_S:.2f}")
    latencies, during = key_latency(args.presses)
    if latencies:
        print(f"key → screen while streaming: p95 {p95(latencies) * 1000:.0f} ms, median "
              f"{statistics.median(latencies) * 1000:.0f} ms over {len(latencies)} tab switches "
              f"({during} with the generation still streaming afterwards); ratio p95 / 100 ms target: "
              f"{p95(latencies) / KEY_TARGET_S:.2f}")


if __name__ == "__main__":
    main()
