"""A session with jobs and an evaluation written straight into its store (no worker, no model):
fixed content for the Jobs and Results snapshots and for the tests that read them; and the Pilot
steps of the tests that launch real jobs from a form."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsn_explorer.core.evals.grid import EvalSpec
from lsn_explorer.core.evals.results import RowInfo
from lsn_explorer.jobs import control
from lsn_explorer.jobs.spec import EvalJob, FinetuneJob, StatsJob
from lsn_explorer.session.store import Session

ROWS = [RowInfo("none", "none"),
        RowInfo("lape=zero", "grid", ("#3:{lang}=zero",), "zero", "lape"),
        RowInfo("lape=p90", "grid", ("#3:{lang}=p90",), "p90", "lape"),
        RowInfo("random1:lape=zero", "random", ("random1:{lang}=zero",), "zero", "lape", "lape=zero", 1)]
# Right answers per (lang, row) out of 20 XNLI samples: zero hurts en strongly and zh mildly,
# p90 changes little, random neurons barely matter.
RIGHT = {("en", "none"): 15, ("en", "lape=zero"): 3, ("en", "lape=p90"): 16, ("en", "random1:lape=zero"): 14,
         ("zh", "none"): 12, ("zh", "lape=zero"): 5, ("zh", "lape=p90"): 12, ("zh", "random1:lape=zero"): 13}
N = 20
JOB_TIMEOUT_S = 90.0
T0, T1 = "2026-01-05T09:00:00+00:00", "2026-01-05T09:04:12+00:00"


def fake_jobs_session(root: Path, name: str = "jobs") -> Session:
    """Session `name` with a finished evaluation job (and its samples), an interrupted one that
    stopped half-way, and a failed statistics job. Returns it open."""
    session = Session.open(name, root)
    spec = EvalSpec(task="xnli", langs=["en", "zh"], rows=[r.to_json() for r in ROWS], limit=N)
    evaluation = session.add_eval("xnli-1", spec.to_json(), {})
    for (lang, row), right in RIGHT.items():
        # The wrong answers sit at different samples in each row, so rows differ sample by sample.
        offset = sum(map(ord, row)) % N
        session.put_samples(evaluation.id, [
            {"lang": lang, "row": row, "sample": i, "example_id": f"{lang}-{i}",
             "values": {"accuracy": float((i + offset) % N < right)}, "prediction": "entailment", "extra": {}}
            for i in range(N)])
    done = session.add_job("eval", "eval xnli-1", EvalJob(eval_name="xnli-1").to_json())
    session.update_job(done.id, state="finished", started=T0, ended=T1, progress={
        "label": "zh · random1:lape=zero", "done": 160, "total": 160, "unit": "samples", "per_second": 4.0,
        "eta_s": 0.0, "message": "xnli-1: xnli × 2 languages × 4 rows, 160 samples scored",
        "units_done": 160, "units_total": 160})
    session.set_eval(evaluation.id, job=done.id, finished=T1)

    partial = EvalSpec(task="xnli", langs=["en"], rows=[r.to_json() for r in ROWS[:2]], limit=N)
    stopped = session.add_eval("xnli-2", partial.to_json(), {})
    job = session.add_job("eval", "eval xnli-2", EvalJob(eval_name="xnli-2").to_json())
    # "running" in its row with nobody holding its lock: its worker died (kill -9) → interrupted.
    session.update_job(job.id, state="running", started=T0, pid=999_999, progress={
        "label": "en · lape=zero", "done": 30, "total": 40, "unit": "samples", "per_second": 2.5, "eta_s": 4.0,
        "message": "scoring xnli-2", "units_done": 30, "units_total": 40})
    session.set_eval(stopped.id, job=job.id)

    failed = session.add_job("stats", "stats en,de", StatsJob(langs=["en", "de"]).to_json())
    session.update_job(failed.id, state="failed", started=T0, ended=T0,
                       error="no corpus for de: the demo corpus has en, zh, hi, ja, fr")
    return session


def fake_finetune_session(root: Path, name: str = "ft") -> Session:
    """Session `name` with one finished fine-tune job whose progress holds a loss curve of 120
    steps (a decaying loss with a fixed wiggle: the same picture on every machine). Returns it open."""
    session = Session.open(name, root)
    spec = {"kind": "finetune", "task": "lm", "train_lang": "zh", "neurons": "#3:zh", "name": "lm-zh-lape-zh",
            "max_steps": 120}
    job = session.add_job("finetune", "finetune lm-zh-lape-zh (lm zh, neurons #3:zh)",
                          FinetuneJob(finetune=spec).to_json())
    losses = [[step, round(2.2 + 1.6 * 0.97 ** step + 0.08 * ((step * 7) % 5 - 2) / 2, 4)] for step in range(1, 121)]
    session.update_job(job.id, state="finished", started=T0, ended=T1, progress={
        "label": "training lm-zh-lape-zh", "done": 120, "total": 120, "unit": "steps", "per_second": 0.5,
        "eta_s": 0.0, "message": f"adapter 'lm-zh-lape-zh': 120 steps, final loss {losses[-1][1]:.4f} (record 9)",
        "units_done": 120, "units_total": 120, "loss": losses[-1][1], "lr": 0.0, "tokens": 96_000,
        "tokens_per_s": 380.0, "losses": losses})
    return session


async def wait_job(root, job_id: int) -> str:
    """Wait (off the event loop, on a connection of its own) until the job's worker is done."""
    def wait() -> str:
        with Session.open("flow", root, create=False) as session:
            return control.wait(session, job_id, timeout=JOB_TIMEOUT_S).state

    return await asyncio.to_thread(wait)


async def until(pilot, condition, limit: float = 10.0) -> None:
    """Let the app run (its timers poll the store) until `condition()` holds."""
    for _ in range(int(limit / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError("the app did not get there in time")


async def type_in_form(pilot, selector: str, text: str) -> None:
    """Focus a field of the form (the modal screen), clear it and type like a person."""
    widget = pilot.app.screen.query_one(selector)
    widget.focus()
    widget.value = ""
    await pilot.press(*list(text))
