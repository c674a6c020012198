"""Per-sample scoring on the demo model and demo task files, against direct computations."""

from __future__ import annotations

import math

import pytest
import torch

from lsn_explorer.core.interventions.resolve import resolve
from lsn_explorer.core.interventions.spec import parse_intervention
from lsn_explorer.core.tasks import metrics
from lsn_explorer.core.tasks.perplexity import continuation_perplexity, line_perplexity
from lsn_explorer.core.tasks.registry import load_examples, pick, score_sample
from lsn_explorer.core.tasks.scoring import continuation_logliks, score_text
from lsn_explorer.errors import TaskFileError
from tests.intervention_reference import random_constant_spec


@pytest.fixture(scope="module")
def plan(demo):
    return resolve([parse_intervention(random_constant_spec(demo, 400, 3.0, seed=2))], demo)


def test_option_loglikelihoods_match_unbatched_forward(demo):
    context, options = "The cat sleeps, right?", [" Yes, it rests.", " Also, the dog barks loudly.", " No"]
    got = continuation_logliks(demo, context, options)
    tok = demo.tokenizer
    for option, value in zip(options, got):
        ctx = tok(context)["input_ids"]
        ids = ctx + tok(option, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = demo.model(input_ids=torch.tensor([ids])).logits[0]
        logprobs = torch.log_softmax(logits.float(), -1)
        want = sum(float(logprobs[p - 1, ids[p]]) for p in range(len(ctx), len(ids)))
        assert value == pytest.approx(want, abs=1e-4)


def test_xnli_sample_probabilities_and_prediction(demo, plan):
    examples = load_examples("xnli", "vi")
    score = score_sample(demo, "xnli", "vi", pick(examples, 3, "xnli", "vi"), [None, plan], sample=3)
    for row in score.rows:
        assert sum(row.probabilities) == pytest.approx(1.0)
        assert row.prediction == ("entailment", "neutral", "contradiction")[max(range(3), key=row.probabilities.__getitem__)]
        assert row.correct == (row.prediction == score.shown["gold"])
    assert score.rows[0].probabilities != score.rows[1].probabilities
    assert score.shown["premise"] == examples[3].premise


@pytest.mark.parametrize("task,lang", [("xquad", "zh"), ("xquad", "en"), ("mkqa", "ja")])
def test_generative_samples_are_scored_with_the_task_metric(demo, plan, task, lang):
    examples = load_examples(task, lang)
    k = next(i for i, ex in enumerate(examples) if task != "mkqa" or ex.scorable)
    score = score_sample(demo, task, lang, examples[k], [None, plan], sample=k)
    golds = score.shown["answers"]
    for row in score.rows:
        assert "\n" not in row.prediction
        f1 = metrics.f1 if task == "xquad" else metrics.mkqa_f1
        assert row.f1 == f1(row.prediction, golds, lang)
    if task == "xquad":
        assert all(row.token_f1 is not None for row in score.rows)


def test_bad_samples(demo):
    examples = load_examples("xnli", "en")
    with pytest.raises(TaskFileError, match=f"no sample {len(examples)}"):
        pick(examples, len(examples), "xnli", "en")
    with pytest.raises(TaskFileError, match="unknown task"):
        load_examples("squad", "en")
    mkqa = load_examples("mkqa", "en")
    unscorable = next(i for i, ex in enumerate(mkqa) if not ex.scorable)
    with pytest.raises(TaskFileError, match="long or no answer"):
        score_sample(demo, "mkqa", "en", mkqa[unscorable], [None])


def test_text_perplexity_with_and_without(demo, plan):
    text = "We walked along the river until the sun went down."
    score = score_text(demo, text, [None, plan], ["baseline", "x"])
    assert score.rows[0].perplexity == pytest.approx(line_perplexity(demo, [text]).value)
    assert score.rows[1].perplexity != score.rows[0].perplexity


def test_continuation_perplexity_counts_only_new_tokens(demo):
    tok = demo.tokenizer
    prompt = tok("The river")["input_ids"]
    new = tok(" flows to the sea", add_special_tokens=False)["input_ids"]
    got = continuation_perplexity(demo, prompt, new)
    with torch.no_grad():
        logprobs = torch.log_softmax(demo.model(input_ids=torch.tensor([prompt + new])).logits[0].float(), -1)
    nll = -sum(float(logprobs[len(prompt) + k - 1, t]) for k, t in enumerate(new))
    assert got.n_tokens == len(new) and got.value == pytest.approx(math.exp(nll / len(new)), rel=1e-5)


def test_tasks_come_from_one_registry_with_did_you_mean():
    from lsn_explorer.core.tasks.files import TASKS as FILE_LAYOUTS
    from lsn_explorer.core.tasks.registry import TASKS, get_task
    from lsn_explorer.errors import TaskFileError

    assert list(TASKS) == list(FILE_LAYOUTS)  # every task has a file layout, and no layout is orphaned
    with pytest.raises(TaskFileError, match="did you mean xquad"):
        get_task("xqaud")
    with pytest.raises(TaskFileError, match="did you mean mkqa"):
        load_examples("mkqa2", "en")


@pytest.mark.parametrize("task", ["xnli", "xquad", "mkqa"])
def test_a_cancelled_score_raises_and_the_workbench_records_nothing(demo, plan, tmp_path, task):
    import threading

    from lsn_explorer.errors import Cancelled
    from lsn_explorer.workbench import Workbench

    cancel = threading.Event()
    cancel.set()
    example = next(e for e in load_examples(task, "en") if task != "mkqa" or e.scorable)
    with pytest.raises(Cancelled):
        score_sample(demo, task, "en", example, [None, plan], cancel=cancel)
    bench = Workbench.open("s", tmp_path)
    bench.handle = demo
    bench.choose_sample(task, "en", load_examples(task, "en").index(example))
    with pytest.raises(Cancelled):
        bench.score(cancel=cancel)
    assert not bench.session.records("score")
    bench.close()
