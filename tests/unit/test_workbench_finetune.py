"""The Fine-tune form's request (fields → a validated FinetuneSpec), the adapter picker's rows, a
fine-tune job's loss points and the loss curve's drawing; torch-free, no model."""

from __future__ import annotations

import pytest

from lsn_explorer.errors import LsnError
from lsn_explorer.session.store import Session
from lsn_explorer.tui.widgets.charts import COLUMN_BLOCKS, loss_curve
from lsn_explorer.workbench.finetunes import FinetuneRequest, adapter_row
from lsn_explorer.workbench.jobs import job_row

FIELDS = {"task": "lm", "train_lang": "zh", "neuron_set": "lape", "setup": "target", "source_lang": "en",
          "recipe": "", "max_steps": "", "batch": "", "name": ""}


@pytest.mark.parametrize("setup, neurons", [
    ("target", "lape:zh"), ("source", "lape:en"), ("both", "lape:en+zh"), ("random", "random:lape:zh"), ("none", "none"),
])
def test_setups_become_mondal_neuron_choices(setup, neurons):
    spec = FinetuneRequest.from_fields(**FIELDS | {"setup": setup}).spec()
    assert spec.neurons == neurons
    assert spec.attention == (["q", "v"] if setup == "none" else [])  # "none" trains attention only


def test_fields_override_the_recipe_and_blank_fields_keep_it():
    spec = FinetuneRequest.from_fields(**FIELDS | {"task": "xnli", "recipe": "mondal-xnli", "max_steps": "3",
                                                   "name": "x"}).spec()
    assert (spec.recipe, spec.rank, spec.batch, spec.max_steps, spec.name) == ("mondal-xnli", 8, 8, 3, "x")


@pytest.mark.parametrize("changes, fragment", [
    ({"max_steps": "3.5"}, "max steps must be a whole number"),
    ({"batch": "0"}, "the batch size must be a whole number"),
    ({"train_lang": "xx"}, "xx"),
    ({"neuron_set": "", "setup": "both"}, "the both setup needs a neuron set"),
    ({"name": "a b"}, "bad adapter name"),
    ({"task": "lm2"}, "did you mean lm"),
])
def test_bad_fields_raise_one_line_errors(changes, fragment):
    with pytest.raises(LsnError) as caught:
        FinetuneRequest.from_fields(**FIELDS | changes).spec()
    assert fragment in caught.value.message or fragment in caught.value.hint


def test_adapter_row_label():
    row = adapter_row({"name": "zh-ft", "task": "lm", "lang": "zh", "steps": 30, "final_loss": 2.9137, "present": False})
    assert (row.name, row.label, row.present) == ("zh-ft", "zh-ft · lm zh · 30 steps · loss 2.91 · folder missing", False)


def test_job_rows_carry_a_finetune_s_loss_points_and_skip_bad_ones(tmp_path):
    with Session.open("s", tmp_path) as session:
        job = session.add_job("finetune", "finetune x", {"kind": "finetune"})
        session.update_job(job.id, progress={"losses": [[1, 3.5], [2, "nan"], [3, float("nan")], [4, 3.1], [5]]})
        other = session.add_job("stats", "stats en", {"kind": "stats"})
        session.update_job(other.id, progress={"losses": [[1, 2.0]]})
        rows = {j.id: job_row(j) for j in session.jobs()}
    assert rows[job.id].losses == ((1, 3.5), (4, 3.1))
    assert rows[other.id].losses == ()


def test_loss_curve_columns_rows_and_axis():
    points = [(step, 10.0 - step) for step in range(1, 9)]  # falling from 9 to 2
    lines = loss_curve(points, width=40, height=2).plain.split("\n")
    assert len(lines) == 3 and lines[0].startswith("   9.000 ") and lines[1].startswith("   2.000 ")
    top, bottom = lines[0][9:], lines[1][9:]
    assert len(bottom) == 8 and bottom[0] == "█" and bottom[-1] == COLUMN_BLOCKS[1]  # the lowest still shows
    assert top[0] == "█" and top[-1] == " "
    assert lines[2].split() == ["step", "1", "step", "8"]
    # More points than columns: averaged into `width` columns.
    many = loss_curve([(s, 1.0 + s % 2) for s in range(1, 201)], width=50, height=3).plain.split("\n")
    assert len(many[0]) == 9 + 50
    assert "no loss reported yet" in loss_curve([]).plain
