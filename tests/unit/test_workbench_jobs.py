"""The workbench's views of jobs and evaluations: fraction done, time left, heat classes, and the
Evaluate form's fields (checked against hand-worked values)."""

from __future__ import annotations

import pytest

from lsn_explorer.errors import LsnError
from lsn_explorer.session.store import Job
from lsn_explorer.workbench.evals import EvalRequest, heat_class
from lsn_explorer.workbench.jobs import Estimator, duration, fraction_done


def job(state: str = "running", **progress) -> Job:
    return Job(1, "eval", "eval x", {"kind": "eval", "eval_name": "x"}, state, "", None, None, None, progress, None)


@pytest.mark.parametrize("row, expected", [
    (job("finished"), 1.0),
    (job("queued"), None),  # nothing reported yet
    (job(done=30, total=120, units_done=30, units_total=120), 0.25),  # an evaluation: samples in both
    (job(done=500, total=1000, units_done=1, units_total=4), 0.375),  # statistics: 1 of 4 languages + half of the 2nd
    (job(done=50, total=200), 0.25),
    (job("interrupted", done=10, total=40, units_done=10, units_total=40), 0.25),
])
def test_fraction_done(row, expected):
    assert fraction_done(row) == expected


@pytest.mark.parametrize("seconds, text", [(0.4, "0 s"), (59.6, "1 min 00 s"), (185, "3 min 05 s"),
                                           (7620, "2 h 07 min")])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_estimator_uses_the_speed_since_it_first_saw_the_job():
    now = [100.0]
    estimator = Estimator(clock=lambda: now[0])
    assert estimator.eta_s(1, "running", 0.2) is None  # one read: no speed yet
    now[0] = 110.0
    assert estimator.eta_s(1, "running", 0.4) == pytest.approx(30.0)  # 0.2 per 10 s, 0.6 left
    assert estimator.eta_s(1, "cancelled", 0.4) is None
    now[0] = 200.0
    assert estimator.eta_s(1, "running", 0.5) is None  # resumed: the estimate starts again


@pytest.mark.parametrize("goodness, significant, strongest, expected", [
    (0.0, False, 0.3, "same"),
    (-0.05, False, 0.3, "worse-1"),
    (0.05, False, 0.3, "better-1"),
    (-0.10, True, 0.3, "worse-2"),
    (-0.15, True, 0.3, "worse-3"),  # at least half the strongest significant effect
    (0.30, True, 0.3, "better-3"),
])
def test_heat_class(goodness, significant, strongest, expected):
    assert heat_class(goodness, significant, strongest) == expected


FIELDS = dict(task="xnli", langs="en, zh,en", switched_on=True, grid_set="lape", grid_values="zero,p90",
              random_baseline="2", limit="1,000", name=" run ", data_dir="")


def test_form_fields_become_a_request():
    request = EvalRequest.from_fields(**FIELDS)
    assert request.langs == ("en", "zh") and request.limit == 1000 and request.random_baseline == 2
    assert request.name == "run" and request.grids() == ["lape:values=zero,p90"]
    assert EvalRequest.from_fields(**{**FIELDS, "grid_set": "", "limit": ""}).grids() == []


@pytest.mark.parametrize("change, fragment", [
    ({"limit": "ten"}, "the sample limit must be a whole number"),
    ({"random_baseline": "-1"}, "random baselines must be a whole number"),
    ({"langs": "en,xx"}, "unknown language code 'xx'"),
    ({"grid_values": " "}, "the grid over 'lape' has no values"),
])
def test_bad_form_fields_are_one_line_errors(change, fragment):
    with pytest.raises(LsnError, match=fragment):
        EvalRequest.from_fields(**{**FIELDS, **change})
