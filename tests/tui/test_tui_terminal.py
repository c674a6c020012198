"""Smoke test in a real terminal: `lsn-explorer tui` in tmux, keys sent, the screen read back."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import tmux_driver as tmux

pytestmark = pytest.mark.skipif(not tmux.available(), reason="tmux is not installed")


def test_app_in_tmux_generates_shows_help_and_quits(tmp_path):
    exe = Path(sys.executable).with_name("lsn-explorer")
    name = f"lsn-smoke-{tmp_path.name}"
    tmux.start(name, f"{exe} tui --session smoke --sessions-dir {tmp_path}")
    try:
        first = tmux.wait_for(name, "Languages", 30)
        assert "session smoke" in first
        tmux.wait_for(name, "demo-model (Llama, 6 layers × 768 neurons", 120)
        tmux.keys(name, "F5")
        tmux.wait_for(name, "new tokens")
        tmux.keys(name, "Hello", literal=True)
        tmux.keys(name, "Enter")
        shown = tmux.wait_for(name, "PPL", 60)
        assert "» Hello" in shown and "without interventions" in shown
        assert "with interventions: none switched on" in shown
        tmux.keys(name, "F1")
        assert "Act Prob 90p" in tmux.wait_for(name, "Type-2")
        tmux.keys(name, "Escape")
        tmux.keys(name, "F7")
        assert "Hello" in tmux.wait_for(name, "Generations and scores of this session")
        tmux.keys(name, "C-q")
        for _ in range(100):
            if not tmux.alive(name):
                break
            time.sleep(0.1)
        assert not tmux.alive(name), "the app did not quit on Ctrl+Q"
    finally:
        tmux.kill(name)
    from lsn_explorer.session.store import Session

    with Session.open("smoke", tmp_path, create=False) as session:
        assert [r.payload["prompt"] for r in session.records("generation")] == ["Hello"]
