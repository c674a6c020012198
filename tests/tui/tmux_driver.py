"""Drive the real app in a detached tmux pane: start, send keys, read the screen.

Used by the real-terminal smoke test and by bench/tui_latency.py.
"""

from __future__ import annotations

import shutil
import subprocess
import time


def available() -> bool:
    return shutil.which("tmux") is not None


def start(session: str, command: str, size: tuple[int, int] = (120, 40)) -> None:
    # COLUMNS/LINES (pytest sets them) would override the pane's size in the app.
    command = f"env -u COLUMNS -u LINES {command}"
    # A tmux server that just lost its last session is still exiting; a new session can race it.
    for _ in range(50):
        done = subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1]),
                               command], capture_output=True)
        if done.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"tmux could not start a session: {done.stderr.decode().strip()}")


def screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def wait_for(session: str, text: str, limit: float = 30.0) -> str:
    """Poll the pane until `text` shows; returns the screen. Raises with the screen on timeout."""
    begin = time.perf_counter()
    while True:
        shown = screen(session)
        if text in shown:
            return shown
        if time.perf_counter() - begin > limit:
            raise TimeoutError(f"{text!r} did not appear within {limit} s; the screen was:\n{shown}")
        time.sleep(0.002)


def keys(session: str, *names: str, literal: bool = False) -> None:
    """Send key names (F5, C-g, Enter) or, with literal=True, text typed as is."""
    subprocess.run(["tmux", "send-keys", "-t", session, *(["-l"] if literal else []), *names], check=True)


def alive(session: str) -> bool:
    return subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0


def kill(session: str) -> None:
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
