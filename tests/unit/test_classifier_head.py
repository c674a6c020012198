"""XNLI through a sequence-classification head: loading with the head, the architecture table's
paths on every family's classifier, and scores checked against plain transformers (baseline) and
plain PyTorch hooks (interventions), never against the engine itself."""

from __future__ import annotations

import json
import types

import pytest
import torch
import transformers
from test_cli_engine import run
from tiny import CLASSIFIER_CLASSES, PAD_ID, hook_reference, tiny_model, tiny_tokenizer

from lsn_explorer.core.interventions.resolve import resolve
from lsn_explorer.core.interventions.spec import parse_intervention
from lsn_explorer.core.model.architectures import architecture_for, check_paths
from lsn_explorer.core.model.backend import class_logits, read_sites
from lsn_explorer.core.model.loading import ModelHandle, head_for, load_model
from lsn_explorer.core.tasks.registry import load_examples, score_sample
from lsn_explorer.core.tasks.scoring import continuation_logliks
from lsn_explorer.core.tasks.xnli import LABELS, XnliExample
from lsn_explorer.errors import ModelLoadError, UnsupportedArchitecture
from tests.intervention_reference import HookedInterventions, RefIntervention

# id2label of the saved heads: XNLI's own order, another order (mapped by name), and none.
HEAD_LABELS = {
    "nli": ("entailment", "neutral", "contradiction"),
    "shuffled": ("contradiction", "entailment", "neutral"),
    "generic": ("LABEL_0", "LABEL_1", "LABEL_2"),
}
EXAMPLE = XnliExample("t-0", "the cat sleeps in the sun.", "a cat is resting.", 0)
# Hand-picked neurons of the 2 × 48 tiny MLPs.
PAIRS = torch.tensor([[0, 3], [0, 17], [0, 40], [1, 5], [1, 22], [1, 47], [1, 30], [0, 9]])


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    """One saved tiny LlamaForSequenceClassification per label order (same weights)."""
    root = tmp_path_factory.mktemp("classifiers")
    folders = {}
    for name, labels in HEAD_LABELS.items():
        model = tiny_model("llama", model_class="LlamaForSequenceClassification", num_labels=3,
                           id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
                           pad_token_id=PAD_ID, max_position_embeddings=512)
        folders[name] = root / name
        model.save_pretrained(folders[name])
        tiny_tokenizer().save_pretrained(folders[name])
    return folders


def plain(folder):
    """The checkpoint loaded with transformers alone (the reference side of each check)."""
    model = transformers.LlamaForSequenceClassification.from_pretrained(folder).eval()
    return model, transformers.AutoTokenizer.from_pretrained(folder)


def in_xnli_order(logits: torch.Tensor, head_labels: tuple[str, ...]) -> list[float]:
    probs = torch.softmax(logits.float(), dim=-1)
    return [float(probs[head_labels.index(label)]) for label in LABELS]


@pytest.mark.parametrize("architectures,want", [
    (["LlamaForSequenceClassification"], "classifier"), (["Qwen2ForSequenceClassification"], "classifier"),
    (["LlamaForCausalLM"], "lm"), (["LlamaModel"], "lm"), (None, "lm"),
])
def test_head_follows_config_architectures(architectures, want):
    assert head_for(types.SimpleNamespace(architectures=architectures)) == want


def test_loads_with_its_classification_head(classifiers):
    handle = load_model(classifiers["shuffled"], device="cpu")
    assert handle.head == "classifier" and isinstance(handle.model, transformers.LlamaForSequenceClassification)
    assert handle.label_names == HEAD_LABELS["shuffled"]
    info = handle.describe()
    assert info["head"] == "classifier" and info["labels"] == list(HEAD_LABELS["shuffled"])
    assert handle.n_layers == 2 and handle.d_ff == 48


@pytest.mark.parametrize("family", sorted(CLASSIFIER_CLASSES))
def test_sites_on_every_family_classifier_match_hooks(family):
    model = tiny_model(family, model_class=CLASSIFIER_CLASSES[family], num_labels=3, pad_token_id=PAD_ID)
    arch = architecture_for(model.config)
    check_paths(model, arch)
    handle = ModelHandle(model, tiny_tokenizer(), arch, family, "float32", head="classifier")
    inputs = dict(handle.tokenizer(["hello world, again."], return_tensors="pt"))
    got = read_sites(handle, inputs, sites=arch.sites)
    ref = hook_reference(model, arch, inputs, handle.d_ff)
    for site in arch.sites:
        for layer in range(2):
            assert torch.equal(got[site][layer], ref[site][layer]), (family, site, layer)


def test_head_class_with_the_backbone_elsewhere_is_rejected():
    model = tiny_model("llama", model_class="LlamaForQuestionAnswering")  # keeps it under .transformer
    with pytest.raises(UnsupportedArchitecture, match="LlamaForQuestionAnswering does not keep"):
        check_paths(model, architecture_for(model.config))


@pytest.mark.parametrize("labels", ["nli", "shuffled"])
def test_baseline_probabilities_equal_plain_transformers(classifiers, labels):
    handle = load_model(classifiers[labels], device="cpu")
    score = score_sample(handle, "xnli", "en", EXAMPLE, [None])
    model, tok = plain(classifiers[labels])
    with torch.no_grad():
        logits = model(**tok(EXAMPLE.premise, EXAMPLE.hypothesis, return_tensors="pt")).logits[0]
    want = in_xnli_order(logits, HEAD_LABELS[labels])
    row = score.rows[0]
    assert row.probabilities == want
    assert row.prediction == LABELS[max(range(3), key=want.__getitem__)]
    assert row.correct == (row.prediction == "entailment")


@pytest.mark.parametrize("site,positions", [("s", "all"), ("a", "all"), ("s", "last")])
def test_intervened_probabilities_equal_a_hooked_forward(classifiers, site, positions):
    handle = load_model(classifiers["nli"], device="cpu")
    spec = ",".join(f"{l}.{i}" for l, i in PAIRS.tolist()) + f"=zero@{positions}/{site}"
    plan = resolve([parse_intervention(spec)], handle)
    score = score_sample(handle, "xnli", "en", EXAMPLE, [None, plan])
    model, tok = plain(classifiers["nli"])
    inputs = tok(EXAMPLE.premise, EXAMPLE.hypothesis, return_tensors="pt")
    last = inputs["attention_mask"].sum(1) - 1
    reference = RefIntervention(PAIRS, torch.zeros(len(PAIRS)), None, site, positions)
    with HookedInterventions(model, handle.arch, [reference], last=last), torch.no_grad():
        logits = model(**inputs).logits[0]
    assert score.rows[1].probabilities == in_xnli_order(logits, HEAD_LABELS["nli"])
    assert score.rows[1].probabilities != score.rows[0].probabilities


def test_head_without_nli_labels_is_refused(classifiers):
    handle = load_model(classifiers["generic"], device="cpu")
    with pytest.raises(ModelLoadError, match="has labels \\['LABEL_0', 'LABEL_1', 'LABEL_2'\\]") as info:
        score_sample(handle, "xnli", "en", EXAMPLE, [None])
    assert "id2label" in info.value.hint


def test_each_head_refuses_the_other_heads_work(classifiers):
    classifier = load_model(classifiers["nli"], device="cpu")
    with pytest.raises(ModelLoadError, match="needs a causal LM, and .* is a sequence classifier"):
        continuation_logliks(classifier, "the cat, right?", [" yes"])
    lm = tiny_model("llama")
    handle = ModelHandle(lm, tiny_tokenizer(), architecture_for(lm.config), "tiny-lm", "float32")
    with pytest.raises(ModelLoadError, match="needs a sequence classifier") as info:
        class_logits(handle, dict(handle.tokenizer(["abc"], return_tensors="pt")))
    assert "ForSequenceClassification" in info.value.hint


def test_cli_scores_through_the_head(capsys, classifiers, tmp_path):
    code, out, _ = run(capsys, "model", "info", "--model", classifiers["nli"])
    assert code == 0 and "head: sequence classifier, labels entailment, neutral, contradiction" in out
    spec = ",".join(f"{l}.{i}" for l, i in PAIRS.tolist()) + "=zero"
    code, out, _ = run(capsys, "score", "--model", classifiers["nli"], "--sessions-dir", tmp_path / "s",
                       "--session", "t", "--task", "xnli", "--lang", "en", "--sample", "0",
                       "--intervene", spec, "--json")
    assert code == 0
    rows = json.loads(out)["rows"]
    example = load_examples("xnli", "en")[0]
    model, tok = plain(classifiers["nli"])
    with torch.no_grad():
        logits = model(**tok(example.premise, example.hypothesis, return_tensors="pt")).logits[0]
    assert [r["label"] for r in rows] == ["baseline", "intervened"]
    assert rows[0]["probabilities"] == in_xnli_order(logits, HEAD_LABELS["nli"])
    assert rows[1]["probabilities"] != rows[0]["probabilities"]
