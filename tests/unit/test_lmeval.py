"""lm-evaluation-harness through our backend (core/evals/lmeval.py), on the demo model and local task YAMLs.

The reference for an intervened run is lm-eval's own HFLM on the same model with plain PyTorch
hooks overwriting the neurons (tests/intervention_reference.py): no nnsight, no EditPlan.
"""

from __future__ import annotations

import json
import sys
import threading

import pytest
import torch

pytest.importorskip("lm_eval")

from intervention_reference import HookedInterventions, RefIntervention, random_constant_spec  # noqa: E402

from lsn_explorer.core.evals import lmeval  # noqa: E402
from lsn_explorer.core.interventions.resolve import resolve  # noqa: E402
from lsn_explorer.core.interventions.spec import InterventionError, parse_intervention  # noqa: E402
from lsn_explorer.errors import Cancelled, LsnError  # noqa: E402

MC_DOCS = [
    {"q": "The cat", "choices": ["sat on the mat", "flew to the moon", "ate the house"], "label": 0},
    {"q": "Hello", "choices": ["world", "mountain", "river"], "label": 0},
    {"q": "I like", "choices": ["bread", "singing", "the sea"], "label": 1},
    {"q": "Der Hund", "choices": ["schläft", "fliegt", "singt laut"], "label": 0},
]
GEN_DOCS = [{"q": "The cat", "a": "sat"}, {"q": "Hello", "a": "world"}, {"q": "Il gatto", "a": "dorme"}]
TASKS = ["lsn_test_mc", "lsn_test_gen"]
N_NEURONS, VALUE = 300, 5.0  # enough written neurons to move every log-likelihood visibly


def _task_yaml(name: str, data: str, cache: str, body: str) -> str:
    return (f"task: {name}\ndataset_path: json\n"
            f"dataset_kwargs:\n  data_files: {{test: {json.dumps(data)}}}\n  cache_dir: {json.dumps(cache)}\n"
            f"test_split: test\ndoc_to_text: \"{{{{q}}}}\"\n{body}")


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    """A multiple-choice and a generate_until task over JSONL files: loaded by `datasets` offline."""
    root = tmp_path_factory.mktemp("lmeval_tasks")
    for name, docs in (("mc", MC_DOCS), ("gen", GEN_DOCS)):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    cache = str(root / "hf_cache")
    (root / "mc.yaml").write_text(_task_yaml(
        "lsn_test_mc", str(root / "mc.jsonl"), cache,
        "output_type: multiple_choice\ndoc_to_choice: \"{{choices}}\"\ndoc_to_target: label\n"
        "metric_list:\n  - metric: acc\n"))
    (root / "gen.yaml").write_text(_task_yaml(
        "lsn_test_gen", str(root / "gen.jsonl"), cache,
        "output_type: generate_until\ndoc_to_target: \"{{a}}\"\n"
        "generation_kwargs: {until: [\"\\n\"], max_gen_toks: 8, do_sample: false}\n"
        "metric_list:\n  - metric: exact_match\n"))
    return root


@pytest.fixture(scope="module")
def spec(demo) -> str:
    """A hand-typed constant overwrite of 300 random neurons across the demo model's layers."""
    return random_constant_spec(demo, N_NEURONS, VALUE, seed=7)


def _ours(demo, task_dir, spec: str | None) -> dict:
    plan = resolve([parse_intervention(spec)], demo) if spec else None
    return lmeval.evaluate(demo, TASKS, plan, include_path=str(task_dir), builtin_tasks=False,
                           batch_size=4, bootstrap_iters=0)


def _plain(demo, task_dir, spec: str | None) -> dict:
    """lm-eval's unmodified HFLM, with hook-based overwrites when `spec` is given."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    model = HFLM(pretrained=demo.model, tokenizer=demo.tokenizer, batch_size=4)
    manager = TaskManager(include_path=str(task_dir), include_defaults=False)
    ivs = []
    if spec:
        pairs = torch.tensor(parse_intervention(spec).neurons)
        ivs = [RefIntervention(pairs, torch.full((len(pairs),), VALUE), None, "s", "all")]
    with HookedInterventions(demo.model, demo.arch, ivs, generating=True):
        return simple_evaluate(model, tasks=TASKS, task_manager=manager, bootstrap_iters=0)


def _loglikelihoods(results: dict) -> list[tuple[float, bool]]:
    docs = sorted(results["samples"]["lsn_test_mc"], key=lambda s: s["doc_id"])
    return [tuple(resp) for doc in docs for resp in doc["filtered_resps"]]


def _generations(results: dict) -> list[str]:
    return [doc["filtered_resps"][0] for doc in sorted(results["samples"]["lsn_test_gen"], key=lambda s: s["doc_id"])]


@pytest.fixture(scope="module")
def plain(demo, task_dir):
    return _plain(demo, task_dir, None)


@pytest.fixture(scope="module")
def intervened(demo, task_dir, spec):
    return _ours(demo, task_dir, spec)


@pytest.fixture(scope="module")
def reference(demo, task_dir, spec):
    return _plain(demo, task_dir, spec)


def _assert_same_loglikelihoods(got: dict, want: dict) -> None:
    ours, ref = _loglikelihoods(got), _loglikelihoods(want)
    assert len(ours) == sum(len(d["choices"]) for d in MC_DOCS)
    assert [greedy for _, greedy in ours] == [greedy for _, greedy in ref]
    assert [ll for ll, _ in ours] == [ll for ll, _ in ref]  # same float ops in the same order: bit for bit


@pytest.mark.parametrize("plan", ["none", "identity"])
def test_without_an_effective_plan_our_hflm_matches_plain_hflm(demo, task_dir, spec, plain, plan):
    # "identity" scales the same 300 neurons by 1: the writes go through the nnsight path and change nothing.
    identity = spec.rsplit("=", 1)[0] + "=x1"
    results = _ours(demo, task_dir, identity if plan == "identity" else None)
    _assert_same_loglikelihoods(results, plain)
    assert _generations(results) == _generations(plain)
    assert results["results"]["lsn_test_mc"]["acc,none"] == plain["results"]["lsn_test_mc"]["acc,none"]


def test_an_overwrite_plan_matches_hooks_on_plain_hflm(plain, intervened, reference):
    ours = [ll for ll, _ in _loglikelihoods(intervened)]
    base = [ll for ll, _ in _loglikelihoods(plain)]
    assert max(abs(a - b) for a, b in zip(ours, base)) > 0.5  # the plan really acts
    _assert_same_loglikelihoods(intervened, reference)


def test_generate_until_runs_with_the_plan_active(plain, intervened, reference):
    texts = _generations(intervened)
    assert len(texts) == len(GEN_DOCS) and all(isinstance(t, str) for t in texts)
    assert texts != _generations(plain)
    assert texts == _generations(reference)  # greedy, so token for token
    assert "exact_match,none" in intervened["results"]["lsn_test_gen"]


def _request(context: str, continuation: str):
    from lm_eval.api.instance import Instance

    return Instance("loglikelihood", {}, (context, continuation), 0)


def test_a_last_position_plan_is_refused_for_scoring(demo, spec):
    plan = resolve([parse_intervention(spec.replace("=5", "=5@last"))], demo)
    with pytest.raises(InterventionError, match="@last"):
        lmeval.lm(demo, plan, batch_size=1).loglikelihood([_request("The cat", " sat")])


def test_a_set_cancel_event_stops_the_run(demo):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        lmeval.lm(demo, cancel=cancel, batch_size=1).loglikelihood([_request("The cat", " sat")])


def test_missing_lm_eval_is_an_error_with_an_install_hint(demo, monkeypatch):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # makes `import lm_eval` raise ImportError
    for call in (lambda: lmeval.lm(demo), lambda: lmeval.evaluate(demo, ["lsn_test_mc"])):
        with pytest.raises(LsnError, match="lm-evaluation-harness") as info:
            call()
        assert info.value.hint == "pip install 'lsn-explorer[lmeval]'"
