"""Side-by-side generation on the demo model: one batched run equals separate runs, streaming,
cancel, seeded sampling, recording."""

from __future__ import annotations

import threading

import pytest
import torch

from lsn_explorer.core.generate import SeededSampler, TokenEvent, generate, record_generation, stream
from lsn_explorer.core.interventions.resolve import resolve
from lsn_explorer.core.interventions.spec import parse_intervention
from lsn_explorer.errors import LsnError
from tests.intervention_reference import random_constant_spec


@pytest.fixture(scope="module")
def plan(demo):
    return resolve([parse_intervention(random_constant_spec(demo, 400, 3.0, seed=1))], demo)


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_compare_rows_equal_two_separate_runs(demo, plan, temperature):
    prompt = "The old library in the town"
    both = generate(demo, prompt, [None, plan], max_new_tokens=16, temperature=temperature, seed=7)
    alone_base = generate(demo, prompt, [None], max_new_tokens=16, temperature=temperature, seed=7)
    alone_iv = generate(demo, prompt, [plan], max_new_tokens=16, temperature=temperature, seed=7)
    assert both.rows[0].token_ids == alone_base.rows[0].token_ids
    assert both.rows[1].token_ids == alone_iv.rows[0].token_ids
    assert both.rows[0].token_ids != both.rows[1].token_ids  # the intervention changes this continuation
    assert both.rows[1].specs == [plan.interventions[0].spec]


def test_streamed_tokens_add_up_to_the_continuations(demo, plan):
    events = list(stream(demo, "我们明天一起去", [None, plan], max_new_tokens=12, temperature=0.7, seed=3))
    result = events[-1]
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert tokens and all(isinstance(e, TokenEvent) for e in events[:-1])
    for row in (0, 1):
        assert "".join(e.text for e in tokens if e.row == row) == result.rows[row].text
    steps = [e.step for e in tokens if e.row == 0]
    assert steps == sorted(steps)


def test_cancel_stops_between_steps(demo):
    cancel = threading.Event()

    def on_token(event):
        if event.step >= 2:
            cancel.set()

    result = generate(demo, "The weather", [None], max_new_tokens=30, on_token=on_token, cancel=cancel)
    assert result.cancelled and 3 <= len(result.rows[0].token_ids) < 30


def test_seeded_sampler_gives_every_row_the_same_draws():
    scores = torch.randn(1, 50).repeat(3, 1)
    out = SeededSampler(0.8, seed=5)(None, scores)
    chosen = out.argmax(-1)
    assert (chosen == chosen[0]).all() and torch.isinf(out).sum() == 3 * 49
    again = SeededSampler(0.8, seed=5)(None, scores[:1])
    assert again.argmax(-1).item() == chosen[0].item()


def test_prompt_longer_than_the_context_is_refused(demo):
    long_prompt = "the river " * 200
    with pytest.raises(LsnError, match="exceeds the model's context of 128"):
        generate(demo, long_prompt, [None], max_new_tokens=8)
    with pytest.raises(LsnError, match="empty"):
        generate(demo, "  ", [None])


def test_generation_is_recorded(demo, plan, tmp_path):
    from lsn_explorer.session.store import Session

    result = generate(demo, "The weather", [None, plan], max_new_tokens=4)
    with Session.open("g", tmp_path) as session:
        record_id = record_generation(session, demo, result)
        record = session.latest("generation")
    assert record.id == record_id and record.name == "compare"
    assert [row["token_ids"] for row in record.payload["rows"]] == [r.token_ids for r in result.rows]
    assert record.provenance["params"]["interventions"] == [plan.interventions[0].spec]


def test_a_character_cut_off_at_the_end_is_flushed_as_in_the_final_text(demo):
    from lsn_explorer.core.generate import _Decoder

    tok = demo.tokenizer
    ids = tok("好龘", add_special_tokens=False)["input_ids"]  # 龘 is rare: split into byte tokens
    decoder = _Decoder(tok, 1, tok.eos_token_id)
    pieces = [decoder.add(0, i) for i in ids[:-1]]  # generation stops inside 龘
    assert "".join(pieces) == "好"
    final = tok.decode(ids[:-1], skip_special_tokens=True)
    assert final.endswith("\ufffd")
    assert "".join(pieces) + decoder.flush(0) == final
    assert decoder.flush(0) == ""  # nothing is sent twice
