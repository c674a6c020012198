"""Ctrl+C at every stage of the README workflow (issue 16): each command runs on the demo model in
its own process and gets SIGINT once it is working (the model loaded and the first results on
their way), as a terminal's Ctrl+C would send it.

What must hold: the process ends at once with exit 130 and the one line `interrupted` — or, for
the two commands that document their own stop (an evaluation keeps its finished batches, a
fine-tune checkpoints its last step), their one `error:` / `hint:` pair — never a traceback; the
session still opens, `lsn-explorer session check` finds nothing wrong, and no record was half
written (the records per kind are those from before, except the resumable evaluation row).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from lsn_explorer import cli
from lsn_explorer.core.neurons.neuron_set import NeuronSet
from lsn_explorer.session.store import Session

# Enters the same `main` as the `lsn-explorer` script, saying so first: SIGINT sent before `main`
# runs would hit the interpreter's start-up, which is not the command's to handle.
DRIVER = ("import sys\nfrom lsn_explorer.cli import main\nprint('main started', file=sys.stderr, flush=True)\n"
          "sys.exit(main(sys.argv[1:]))")
LANGS = "en,fr,zh,ja,hi,ta,ko,ur,bn"
CASES = [  # (stage, arguments after --session, seconds of work before Ctrl+C, may it stop on its own terms)
    # Slow-marked: twice, inside the whole `make test` run only, this case ended with exit 0 and no
    # "interrupted" (stdout was not kept then; it is now); 32 tries at random moments outside the
    # suite, two at a time, all stopped with 130. Unexplained — see the issue-16 closing note.
    pytest.param("stats", ["stats", "--langs", LANGS, "--tokens", "all", "--batch-size", "1"], 4, False, id="stats",
                 marks=pytest.mark.slow),
    pytest.param("identify", ["identify", "--method", "type1", "--langs", "ja,zh", "--top-n", "50"], 8, False,
                 id="identify-type1", marks=pytest.mark.slow),
    # The demo model's context is 128 tokens: 120 new ones after the 5-token prompt is the most it
    # takes (400 was refused with exit 2 before any work). Load ~2 s, then ~2.5 s of generating.
    pytest.param("generate", ["generate", "--prompt", "今天我们在学校", "--intervene", "manual:zh=zero", "--compare",
                              "--max-new-tokens", "120"], 3, False, id="generate", marks=pytest.mark.slow),
    pytest.param("ppl", ["ppl", "--langs", LANGS, "--matrix", "--set", "manual"], 8, False, id="ppl-matrix",
                 marks=pytest.mark.slow),
    pytest.param("score", ["score", "--task", "xquad", "--lang", "zh", "--sample", "0", "--intervene",
                           "manual:zh=zero"], 4, False, id="score", marks=pytest.mark.slow),
    pytest.param("eval", ["eval", "run", "--task", "xnli", "--langs", "zh,hi,en", "--grid", "manual:zh:values=zero",
                          "--batch-size", "2"], 8, True, id="eval"),
    pytest.param("finetune", ["finetune", "--train-lang", "zh", "--neurons", "manual:zh", "--max-steps", "400",
                              "--checkpoint-every", "5", "--name", "ft"], 10, True, id="finetune"),
    pytest.param("analyze", ["analyze", "centroids", "--langs", "en,zh,ja,hi"], 8, False, id="analyze",
                 marks=pytest.mark.slow),
]


def counts(sessions: Path) -> Counter:
    with Session.open("t", sessions, create=False) as session:
        return Counter(r.kind for r in session.records())


def wait_for_line(process: subprocess.Popen, text: str, timeout: float) -> str:
    """Stderr read up to the line holding `text` (fails after `timeout` seconds)."""
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < deadline, f"no {text!r} within {timeout} s: {seen}"
        ready, _, _ = select.select([process.stderr], [], [], 0.5)
        if ready:
            line = process.stderr.readline()
            assert line, f"the process ended before {text!r}: {seen}"
            seen += line
    return seen


@pytest.fixture()
def sessions(tmp_path):
    with Session.open("t", tmp_path / "sessions") as session:
        neuron_set = NeuronSet("manual", {}, 6, 768, {"zh": [[0, 3], [2, 17], [5, 700]], "hi": [[1, 4], [3, 9]]})
        session.add("neuron_set", "manual", {"set": neuron_set.to_json()}, {})
    return tmp_path / "sessions"


@pytest.mark.parametrize(("stage", "argv", "work_s", "own_stop"), CASES)
def test_ctrl_c_stops_cleanly_and_leaves_the_session_whole(sessions, capsys, stage, argv, work_s, own_stop):
    before = counts(sessions)
    command = [sys.executable, "-c", DRIVER, *argv, "--sessions-dir", str(sessions), "--session", "t"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=sessions.parent, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    # Stdout is drained all along: a progress bar writing into a full pipe would stall the command
    # (and the test would time what the pipe does, not what Ctrl+C does).
    printed: list[str] = []
    drain = threading.Thread(target=lambda: printed.extend(process.stdout), daemon=True)
    drain.start()
    try:
        err = wait_for_line(process, "main started", 120)
        time.sleep(work_s)
        assert process.poll() is None, f"{stage} finished before Ctrl+C; give it more work"
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)  # a fine-tune ends its step; everything else at once
        rest = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    drain.join(timeout=10)
    err += rest
    lines = err.splitlines()
    err += "\n--- stdout ---\n" + "".join(printed)[-2000:]  # shown when an assertion fails
    assert "Traceback" not in err, err
    if own_stop and process.returncode == 2:
        assert sum(line.startswith("error: ") for line in lines) == 1, err
        assert sum(line.startswith("hint: ") for line in lines) == 1, err
        assert "stopped" in err or "cancelled" in err, err
    else:
        assert process.returncode == 130, err
        assert lines[-1] == "interrupted" and not any(line.startswith("error: ") for line in lines), err
    after = counts(sessions)
    if stage == "eval":  # the evaluation's row stays, with the batches it finished, to be continued
        assert after - before <= Counter({"eval": 1}) and before - after == Counter()
    elif stage == "analyze":
        # Each language's states are a cache record written whole once computed (core/latent/
        # states.py); those finished before Ctrl+C stay, for the next analysis to reuse. Nothing else.
        assert after - before <= Counter({"latent_states": 4}) and before - after == Counter()
    else:
        assert after == before, (before, after)
    assert cli.main(["session", "check", "t", "--sessions-dir", str(sessions)]) == 0, capsys.readouterr()
