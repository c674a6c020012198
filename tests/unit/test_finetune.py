"""Neuron-masked LoRA on tiny models: weights outside the mask stay bit-identical to the base after
AdamW with weight decay and clipping (checked on the merged weights row by row and on the raw
adapter file, not through our own masks), on the 4-bit path too; the exported adapter loaded with
plain peft gives our logits; a cancelled or crashed run resumes to the same steps and loss; the
spec validates; bad requests are one-line errors and never leave a half adapter listed."""

from __future__ import annotations

import errno
import json
import threading

import pytest
import torch
import transformers
from safetensors.torch import load_file
from tiny import FOUR_BIT_SIZES, PAD_ID, save_tiny_checkpoint, tiny_model, tiny_tokenizer

from lsn_explorer import cli
from lsn_explorer.core.finetune import checkpoints
from lsn_explorer.core.finetune.adapters import export
from lsn_explorer.core.finetune.config import (
    RECIPES,
    FinetuneError,
    FinetuneSpec,
    from_recipe,
    parse_neurons,
    setup_neurons,
)
from lsn_explorer.core.finetune.train import finetune, lr_factor, run_dir, step_batches, thinned, total_steps
from lsn_explorer.core.model.adapters import apply_adapter, list_adapters
from lsn_explorer.core.model.loading import load_model
from lsn_explorer.core.neurons.neuron_set import NeuronSet
from lsn_explorer.errors import Cancelled, LsnError
from lsn_explorer.session.store import Session

SENTENCES = ["the cat sleeps in the sun.", "we walk to the river.", "a dog runs fast.", "rain falls at night.",
             "she reads a long book.", "the wind is cold today."]
# Layer 1 only: layer 0 must get no MLP LoRA at all.
EN = [[1, 3], [1, 7], [1, 20], [1, 41]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "en.txt").write_text("\n".join(SENTENCES * 5) + "\n", encoding="utf-8")
    (folder / "fr.txt").write_text("\n".join(["le chat dort.", "nous marchons."] * 15) + "\n", encoding="utf-8")
    return folder


def new_session(tmp_path, name="t", *, n_layers=2, d_ff=48, neurons=None):
    session = Session.open(name, tmp_path / "sessions")
    pairs = {"en": EN, "fr": [[0, 5]], "zh": []} if neurons is None else neurons
    neuron_set = NeuronSet("manual", {}, n_layers, d_ff, {lang: torch.tensor(p, dtype=torch.long) for lang, p in pairs.items()})
    session.add("neuron_set", "lape", {"set": neuron_set.to_json()}, {"method": "manual"})
    return session


def spec(corpus, **overrides):
    base = dict(task="lm", train_lang="en", neurons="lape:en", train_data=str(corpus), attention=["q", "v"],
                lr=5e-2, weight_decay=0.1, clip=0.05, batch=4, max_steps=6, checkpoint_every=100, name="ft")
    return FinetuneSpec(**(base | overrides))


# -- fp32: the merged model differs from the base only inside the mask -------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_checkpoints, corpus):
    """One masked fine-tune (6 AdamW steps, weight decay 0.1, clipping at 0.05 so every step clips),
    exported as a plain peft folder."""
    tmp = tmp_path_factory.mktemp("trained")
    session = new_session(tmp)
    handle = load_model(tiny_checkpoints["llama"], device="cpu")
    norms = []
    original = torch.nn.utils.clip_grad_norm_

    def clip(params, max_norm, *args, **kwargs):
        norms.append(float(original(params, max_norm, *args, **kwargs)))
        return norms[-1]

    torch.nn.utils.clip_grad_norm_ = clip
    try:
        result = finetune(session, handle, spec(corpus))
    finally:
        torch.nn.utils.clip_grad_norm_ = original
    folder = export(session, "ft", tmp / "exported")
    yield {"session": session, "handle": handle, "result": result, "folder": folder, "norms": norms, "spec": spec(corpus)}
    session.close()


def test_merged_weights_outside_the_mask_are_bit_identical(trained, tiny_checkpoints):
    from peft import PeftModel

    assert len(trained["norms"]) == 6 and min(trained["norms"]) > 0.05  # every step was clipped
    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_checkpoints["llama"]).eval()
    reference = {k: v.clone() for k, v in base.state_dict().items()}
    merged = PeftModel.from_pretrained(base, str(trained["folder"])).merge_and_unload().state_dict()
    assert set(merged) == set(reference)
    keep = torch.zeros(48, dtype=torch.bool)
    keep[[i for _, i in EN]] = True
    changed = set()
    for key, before in reference.items():
        after = merged[key]
        if key.startswith("model.layers.1.mlp.") and key.endswith(("gate_proj.weight", "up_proj.weight")):
            assert torch.equal(after[~keep], before[~keep]), key  # rows of unselected neurons
            assert all(not torch.equal(after[i], before[i]) for i in keep.nonzero().flatten()), key
        elif key == "model.layers.1.mlp.down_proj.weight":
            assert torch.equal(after[:, ~keep], before[:, ~keep])  # columns of unselected neurons
            assert not torch.equal(after[:, keep], before[:, keep])
        elif not torch.equal(after, before):
            changed.add(key)
    # Unmasked LoRA on q and v of both layers; nothing else moved (layer 0's MLP, k, o, norms, embeddings).
    assert changed == {f"model.layers.{i}.self_attn.{m}_proj.weight" for i in (0, 1) for m in "qv"}


def test_adapter_file_holds_zeros_outside_the_mask(trained):
    weights = load_file(str(trained["folder"] / "adapter_model.safetensors"))
    prefix = "base_model.model.model.layers"
    assert not [k for k in weights if k.startswith(f"{prefix}.0.mlp.")]  # no MLP LoRA without neurons
    outside = [i for i in range(48) if i not in {i for _, i in EN}]
    for name in ("gate_proj", "up_proj"):
        b = weights[f"{prefix}.1.mlp.{name}.lora_B.weight"]
        assert b.shape == (48, 8) and torch.count_nonzero(b[outside]) == 0 and torch.count_nonzero(b) > 0
    a = weights[f"{prefix}.1.mlp.down_proj.lora_A.weight"]
    assert a.shape == (8, 48) and torch.count_nonzero(a[:, outside]) == 0 and torch.count_nonzero(a) > 0
    described = json.loads((trained["folder"] / "lsn_finetune.json").read_text())
    assert described["mask"] == {"neurons": "lape:en", "count": 4, "per_layer": [0, 4]}
    assert load_file(str(trained["folder"] / "neuron_mask.safetensors"))["pairs"].tolist() == EN


def test_exported_adapter_in_plain_peft_gives_our_logits(trained, tiny_checkpoints):
    from peft import PeftModel

    ours = trained["handle"]
    assert ours.adapter == "ft"
    inputs = dict(tiny_tokenizer()(["the cat walks to the sun."], return_tensors="pt"))
    with torch.no_grad():
        want = ours.model(**inputs).logits
        base = transformers.AutoModelForCausalLM.from_pretrained(tiny_checkpoints["llama"]).eval()
        plain = PeftModel.from_pretrained(base, str(trained["folder"])).eval()
        got = plain(**inputs).logits
        fresh = load_model(tiny_checkpoints["llama"], device="cpu")
        baseline = fresh.model(**inputs).logits
        apply_adapter(fresh, trained["session"], "ft")  # the session's record, as generate/score/ppl/eval load it
        loaded = fresh.model(**inputs).logits
    assert torch.equal(got, want) and torch.equal(loaded, want)
    assert not torch.allclose(baseline, want)  # the fine-tune changed the model


def test_the_adapter_is_recorded_once_with_its_spec_and_no_checkpoints_remain(trained):
    session, result = trained["session"], trained["result"]
    (record,) = session.records("adapter")
    assert record.payload["folder"] == result.folder and result.folder.startswith("artifacts/adapters/ft-")
    assert record.payload["spec"]["neurons"] == "lape:en" and record.payload["steps"] == 6
    assert record.provenance["method"] == "masked-lora" and record.provenance["model"]["source"]
    assert [row["name"] for row in list_adapters(session)] == ["ft"]
    assert not run_dir(session, trained["spec"]).exists()
    again = finetune(session, load_model(record.provenance["model"]["source"], device="cpu"), trained["spec"])
    assert again.skipped and again.record == record.id and len(session.records("adapter")) == 1


# -- every family of the architecture table: B A is zero outside the mask after a masked update ----------
@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3", "gpt2"])
def test_masked_update_on_every_family_stays_inside_the_mask(tiny_checkpoints, family):
    from lsn_explorer.core.finetune.masks import NeuronMask, add_masked_lora

    handle = load_model(tiny_checkpoints[family], device="cpu")
    d_ff = handle.d_ff
    pairs = torch.tensor([[1, 2], [1, d_ff - 1], [1, d_ff // 2]])
    modules = ["gate", "down"] if family == "gpt2" else ["gate", "up", "down"]  # GPT-2's MLP has no up projection
    settings = FinetuneSpec(neurons="lape:en", modules=modules, attention=[])
    model, targets, _ = add_masked_lora(handle, settings, NeuronMask("lape:en", handle.n_layers, d_ff, pairs))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=0.1, weight_decay=0.1)
    inputs = dict(tiny_tokenizer()(["the cat sleeps."], return_tensors="pt"))
    for _ in range(3):
        (model(**inputs).logits ** 2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    keep = torch.zeros(d_ff, dtype=torch.bool)
    keep[pairs[:, 1]] = True
    seen = []
    for name, module in model.base_model.model.named_modules():
        if not hasattr(module, "lora_A") or "default" not in module.lora_A:
            continue
        seen.append(name)
        assert ".1." in name, name  # no MLP LoRA in layer 0, which has no selected neuron
        delta = module.lora_B["default"].weight @ module.lora_A["default"].weight  # [out, in], layout-free
        down = delta.shape[1] == d_ff and delta.shape[0] != d_ff and delta.shape[0] != 2 * d_ff
        if down:
            outside, inside = delta[:, ~keep], delta[:, keep]
        else:
            rows = keep.repeat(delta.shape[0] // d_ff)  # a fused gate_up has 2 · d_ff rows
            outside, inside = delta[~rows], delta[rows]
        assert torch.count_nonzero(outside) == 0 and torch.count_nonzero(inside) > 0, name
    assert len(seen) == len(targets) == (2 if handle.arch.fused_gate_up else len(modules))  # Phi3: gate_up, down


# -- 4-bit (QLoRA): the LoRA deltas are exactly zero outside the mask ---------------------------------
def test_four_bit_lora_deltas_are_zero_outside_the_mask(tmp_path, corpus):
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb

    checkpoint = save_tiny_checkpoint("llama", tmp_path / "nf4", **FOUR_BIT_SIZES)
    session = new_session(tmp_path, n_layers=2, d_ff=128, neurons={"en": [[1, 2], [1, 64], [1, 127]]})
    handle = load_model(checkpoint, four_bit=True, device="cpu")
    fresh = load_model(checkpoint, four_bit=True, device="cpu")
    result = finetune(session, handle, spec(corpus, four_bit=True, max_steps=3, modules=["gate", "up", "down"]))
    assert result.steps == 3 and not result.skipped
    keep = torch.zeros(128, dtype=torch.bool)
    keep[[2, 64, 127]] = True
    layers = handle.model.model.layers
    for name in ("gate_proj", "up_proj", "down_proj"):
        assert not hasattr(getattr(layers[0].mlp, name), "lora_A")  # layer 0 has no selected neuron
        lora = getattr(layers[1].mlp, name)
        assert isinstance(lora.base_layer, bnb.nn.Linear4bit)
        delta = (lora.lora_B["default"].weight.float() @ lora.lora_A["default"].weight.float()) * lora.scaling["default"]
        outside, inside = (delta[~keep], delta[keep]) if name != "down_proj" else (delta[:, ~keep], delta[:, keep])
        assert torch.count_nonzero(outside) == 0 and torch.count_nonzero(inside) > 0, name
    # The quantised base weights themselves are frozen and untouched (the fresh copy has run no
    # forward, and training forwards never repack them for the CPU's inference kernel).
    trained_4bit = {n: m for n, m in handle.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    for name, module in fresh.model.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            twin = trained_4bit.get(name) or trained_4bit[f"{name}.base_layer"]
            assert torch.equal(twin.weight.data, module.weight.data) and not twin.weight.requires_grad, name


def test_classifier_head_trains_with_modules_to_save_and_reloads_in_plain_peft(tmp_path):
    from peft import PeftModel

    folder = tmp_path / "clf"
    labels = ("entailment", "neutral", "contradiction")
    tiny_model("llama", model_class="LlamaForSequenceClassification", num_labels=3, pad_token_id=PAD_ID,
               id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)}).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    xnli = tmp_path / "xnli_train_en.tsv"
    rows = ["id\tpremise\thypothesis\tlabel"] + [f"{i}\t{SENTENCES[i % 6]}\t{SENTENCES[(i + 1) % 6]}\t{i % 3}" for i in range(12)]
    xnli.write_text("\n".join(rows) + "\n", encoding="utf-8")
    session = new_session(tmp_path)
    handle = load_model(folder, device="cpu")
    finetune(session, handle, FinetuneSpec(task="xnli", train_lang="en", neurons="lape:en", train_data=str(xnli),
                                           attention=[], max_steps=4, batch=4, lr=1e-2, name="clf"))
    out = export(session, "clf", tmp_path / "out")
    assert "score" in json.loads((out / "adapter_config.json").read_text())["modules_to_save"]
    inputs = dict(tiny_tokenizer()(["the cat sleeps."], return_tensors="pt"))
    base = transformers.LlamaForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        before = base(**inputs).logits
        plain = PeftModel.from_pretrained(base, str(out)).eval()
        assert torch.equal(plain(**inputs).logits, handle.model(**inputs).logits)
        assert not torch.allclose(plain(**inputs).logits, before)


# -- resume: a cancelled or crashed run continues to the same steps and loss --------------------------
def test_cancelled_and_crashed_runs_resume_to_the_same_steps_and_loss(tmp_path, tiny_checkpoints, corpus):
    settings = spec(corpus, max_steps=10, checkpoint_every=3, attention=[])
    straight = finetune(new_session(tmp_path, "straight"), load_model(tiny_checkpoints["llama"], device="cpu"), settings)

    session = new_session(tmp_path, "stopped")
    cancel = threading.Event()

    def stop_at_5(step):
        if step.step == 5:
            cancel.set()

    with pytest.raises(Cancelled, match="after step 5 of 10"):
        finetune(session, load_model(tiny_checkpoints["llama"], device="cpu"), settings, cancel=cancel, report=stop_at_5)
    assert [p.name for p in checkpoints.checkpoints(run_dir(session, settings))] == ["step-000003", "step-000005"]
    assert session.records("adapter") == []  # nothing listed before the run finishes

    def crash_at_8(step):
        if step.step == 8:
            raise KeyboardInterrupt  # a kill: no checkpoint of its own, the last one is step 6

    with pytest.raises(KeyboardInterrupt):
        finetune(session, load_model(tiny_checkpoints["llama"], device="cpu"), settings, report=crash_at_8)
    resumed = finetune(session, load_model(tiny_checkpoints["llama"], device="cpu"), settings)
    assert resumed.resumed_from == 6 and resumed.steps == straight.steps == 10
    assert [s for s, _ in resumed.losses] == list(range(1, 11))
    assert resumed.final_loss == pytest.approx(straight.final_loss, abs=1e-5)
    torch.testing.assert_close(torch.tensor(resumed.losses), torch.tensor(straight.losses), atol=1e-5, rtol=0)


def test_data_order_and_schedule(corpus):
    settings = spec(corpus, max_steps=None, epochs=2, batch=4, grad_accum=2)
    assert total_steps(27, settings) == 2 * 4  # ⌈⌈27 / 4⌉ / 2⌉ = 4 steps per epoch
    first = [i for step in range(4) for batch in step_batches(step, 27, settings) for i in batch]
    assert sorted(first) == list(range(27))  # an epoch sees every example once
    assert step_batches(5, 27, settings) == step_batches(5, 27, settings)  # a function of (seed, epoch)
    assert step_batches(0, 27, settings) != step_batches(4, 27, settings)  # reshuffled each epoch
    assert [lr_factor(s, 100, 0.05) for s in (0, 2, 5, 50, 100)] == [0.0, 0.4, 1.0, pytest.approx(50 / 95), 0.0]
    curve = [[s, 1.0 / s] for s in range(1, 10_002)]
    assert len(thinned(curve)) <= 2001 and thinned(curve)[0] == [1, 1.0] and thinned(curve)[-1] == curve[-1]
    assert thinned(curve[:50]) == curve[:50]


# -- training examples: what is predicted, checked by decoding it -------------------------------------------
def test_task_examples_predict_only_the_answer_after_the_scorers_prompt(demo):
    from lsn_explorer.core.finetune.data import IGNORE, training_examples
    from lsn_explorer.core.tasks.registry import load_examples
    from lsn_explorer.core.tasks.scoring import XNLI_WORDS
    tok = demo.tokenizer

    def split(example):
        start = next(i for i, t in enumerate(example.labels) if t != IGNORE)
        assert all(t == IGNORE for t in example.labels[:start]) and example.labels[start:] == example.input_ids[start:]
        return tok.decode(example.input_ids[:start], skip_special_tokens=True), tok.decode(example.input_ids[start:])

    xquad, source = training_examples(demo, FinetuneSpec(task="xquad", train_lang="en", neurons="none", attention=["q"],
                                                         max_len=128))
    gold = load_examples("xquad", "en")
    assert source["examples"] == len(gold) and source["source"] == "the demo xquad samples"
    prompt, answer = split(xquad[0])
    assert prompt.endswith(f"\nQuestion: {gold[0].question}\nAnswer:") and answer == f" {gold[0].answers[0].text}\n"
    assert all(len(ex.input_ids) <= 128 for ex in xquad)

    xnli, _ = training_examples(demo, FinetuneSpec(task="xnli", train_lang="hi", neurons="none", attention=["q"],
                                                   max_len=512))  # cut to the demo model's 128-token context
    rows = load_examples("xnli", "hi")
    right, *words = XNLI_WORDS["hi"]
    prompt, option = split(xnli[0])
    assert prompt == f"{rows[0].premise}, {right}?" and option == f" {words[rows[0].label]}, {rows[0].hypothesis}"
    assert max(len(ex.input_ids) for ex in xnli) <= 128

    half, info = training_examples(demo, FinetuneSpec(task="xnli", train_lang="hi", neurons="none", attention=["q"],
                                                      train_frac=0.5, seed=3))
    again, _ = training_examples(demo, FinetuneSpec(task="xnli", train_lang="hi", neurons="none", attention=["q"],
                                                    train_frac=0.5, seed=3))
    assert len(half) == info["examples"] == -(-len(rows) // 2) and half == again  # a seeded draw of ⌈n/2⌉
    assert len(info["heldout_ids"]) == len(rows) // 2 and set(info["heldout_ids"]) < {r.id for r in rows}

    lines, info = training_examples(demo, FinetuneSpec(task="lm", train_lang="zh", neurons="none", attention=["q"]))
    assert info["examples"] == len(lines) and all(ex.labels == ex.input_ids for ex in lines)
    assert info["source"].endswith("zh.txt") and len(lines) < 1200  # the held-out tenth is left out


# -- the spec ------------------------------------------------------------------------------------------
def test_spec_round_trips_and_recipes_fill_what_was_not_given():
    made = from_recipe("mondal-xnli", train_lang="hi", neurons="lape:en+hi", lr=2e-6)
    assert (made.rank, made.alpha, made.modules, made.attention, made.four_bit) == (8, 16.0, ["gate"], ["q", "k", "v", "o"], True)
    assert made.lr == 2e-6 and made.train_frac == 0.25 and made.recipe == "mondal-xnli"
    assert FinetuneSpec.from_json(json.loads(json.dumps(made.to_json()))) == made
    xquad = from_recipe("mondal-xquad", train_lang="en", neurons="none", four_bit=False)
    got = (xquad.rank, xquad.alpha, xquad.epochs, xquad.batch, xquad.train_frac, xquad.four_bit)
    assert got == (64, 128.0, 10, 4, 0.8, False)
    assert set(RECIPES) == {"mondal-xnli", "mondal-xquad"}
    assert parse_neurons("random:lape:zh").random and parse_neurons("random:zh").set == "random"
    assert parse_neurons("#12:en+zh").langs == ("en", "zh")
    assert [setup_neurons(s, "lape", "en", "hi") for s in ("source", "target", "both", "random", "none")] == [
        "lape:en", "lape:hi", "lape:en+hi", "random:lape:hi", "none"]
    assert FinetuneSpec(neurons="lape:en", modules="down,gate", attention="none").modules == ["gate", "down"]


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"rank": 0}, "--rank must be a whole number ≥ 1"),
    ({"lr": 0.0}, "--lr must be greater than 0"),
    ({"lr": -1e-4}, "--lr must be greater than 0"),
    ({"lr": float("nan")}, "--lr must be greater than 0"),
    ({"alpha": 0}, "--alpha must be greater than 0"),
    ({"train_frac": 0.0}, "--train-frac must be in (0, 1]"),
    ({"max_steps": 0}, "--max-steps must be a whole number ≥ 1"),
    ({"batch": True}, "--batch must be a whole number"),
    ({"task": "xnil"}, "did you mean xnli"),
    ({"neurons": "lape"}, "bad --neurons"),
    ({"modules": ["gate", "mlp"]}, "--modules: mlp is not one of gate, up, down"),
    ({"attention": ["q", "x"]}, "--attention: x is not one of q, k, v, o"),
    ({"neurons": "none", "attention": []}, "leaves nothing to train"),
    ({"neurons": "lape:en", "modules": []}, "needs at least one MLP module"),
    ({"recipe": "mondal-xnl"}, "did you mean mondal-xnli"),
    ({"name": "a/b"}, "bad adapter name"),
])
def test_bad_settings_are_one_line_errors(fields, fragment):
    with pytest.raises(LsnError) as caught:
        FinetuneSpec(**({"neurons": "lape:en"} | fields))
    assert fragment in str(caught.value) and "\n" not in caught.value.message and caught.value.hint


# -- the command line: bad requests, a full disk, and --adapter everywhere ------------------------------
def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def where(tmp_path, name="t"):
    return ["--sessions-dir", tmp_path / "sessions", "--session", name]


def assert_error(code, err, *fragments):
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 2 and "\nhint: " in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.mark.parametrize(("neurons", "extra", "fragments"), [
    ("other:en", [], ["was found on a 4×96 model", "is 2×48"]),  # a set from another model
    ("wide:en", [], ["neuron index 60 is beyond d_ff = 48"]),  # indices beyond this model's d_ff
    ("lape:zh", [], ["neuron set 'lape' selects no neurons for zh"]),  # an empty set for the language
    ("lape:ko", [], ["neuron set 'lape' has no neurons for ko", "its languages: en, fr, zh"]),
    ("nosuch:en", [], ["has no neuron set 'nosuch'", "stored sets: lape, other, wide"]),
    ("lape:en", ["--train-lang", "de"], ["no corpus text for de"]),  # a language with no training data
    ("lape:en", ["--rank", "0"], ["--rank must be a whole number ≥ 1"]),
    ("lape:en", ["--lr", "0"], ["--lr must be greater than 0"]),
    ("lape:en", ["--lr", "-0.1"], ["--lr must be greater than 0"]),
    ("lape:en", ["--4bit"], ["cannot run in 4-bit on CPU", "32×32"]),  # shapes the CPU kernels cannot run
])
def test_bad_requests_are_one_line_errors_and_list_no_adapter(capsys, tmp_path, tiny_checkpoints, corpus, neurons, extra,
                                                              fragments):
    with new_session(tmp_path) as session:
        other = NeuronSet("manual", {}, 4, 96, {"en": torch.tensor([[3, 90]])})
        session.add("neuron_set", "other", {"set": other.to_json()}, {})
        session.add("neuron_set", "wide", {"set": {"method": "manual", "n_layers": 2, "d_ff": 48, "neurons": {"en": [[1, 60]]}}},
                    {})
    code, _, err = run(capsys, "finetune", "--model", tiny_checkpoints["llama"], *where(tmp_path), "--train-data", corpus,
                       "--train-lang", "en", "--neurons", neurons, "--max-steps", "2", *extra)
    assert_error(code, err, *fragments)
    code, out, _ = run(capsys, "finetune", "list", *where(tmp_path), "--json")
    assert code == 0 and json.loads(out) == []


def test_a_full_disk_at_a_checkpoint_is_one_line_and_leaves_nothing_half_written(capsys, tmp_path, tiny_checkpoints, corpus,
                                                                                monkeypatch):
    new_session(tmp_path).close()

    def full(tensors, path):
        path.write_bytes(b"\0" * 10)  # part of a file got out before the disk filled up
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(checkpoints, "save_tensors", full)
    code, _, err = run(capsys, "finetune", "--model", tiny_checkpoints["llama"], *where(tmp_path), "--train-data", corpus,
                       "--train-lang", "en", "--neurons", "lape:en", "--max-steps", "4", "--checkpoint-every", "2",
                       "--name", "full")
    assert_error(code, err, "could not write the checkpoint of step 2", "No space left on device",
                 "the disk is full", "nothing was stored")
    (run_folder,) = (tmp_path / "sessions" / "t" / "finetune").iterdir()
    assert list(run_folder.iterdir()) == []  # no temporary folder, no partial checkpoint left
    code, out, _ = run(capsys, "finetune", "list", *where(tmp_path), "--json")
    assert json.loads(out) == []


def test_a_full_disk_while_writing_the_adapter_records_nothing(tmp_path, tiny_checkpoints, corpus, monkeypatch):
    from lsn_explorer.core.finetune import adapters

    session = new_session(tmp_path)

    def full(tensors, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(adapters, "save_tensors", full)
    with pytest.raises(FinetuneError, match="could not write adapter 'ft'") as caught:
        finetune(session, load_model(tiny_checkpoints["llama"], device="cpu"), spec(corpus, max_steps=2))
    assert "nothing was recorded" in caught.value.hint
    assert session.records("adapter") == [] and list((session.folder / "artifacts" / "adapters").iterdir()) == []


def test_cli_trains_lists_exports_and_every_command_loads_the_adapter(capsys, tmp_path, tiny_checkpoints, corpus):
    new_session(tmp_path).close()
    model = ["--model", tiny_checkpoints["llama"]]
    code, out, err = run(capsys, "finetune", "run", *model, *where(tmp_path), "--train-data", corpus, "--train-lang", "en",
                         "--neurons", "lape:en", "--attention", "q,v", "--max-steps", "5", "--lr", "0.05", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["name"] == "lm-en-lape-en" and result["steps"] == 5  # named by the set, pinned by record id
    code, out, _ = run(capsys, "finetune", "list", *where(tmp_path))
    assert "lm-en-lape-en" in out and "gate,up,down+q,v" in out
    code, out, err = run(capsys, "finetune", "export", *where(tmp_path), "--name", "lm-en-lape-en", "--out", tmp_path / "x")
    assert code == 0 and (tmp_path / "x" / "adapter_config.json").is_file(), err
    code, _, err = run(capsys, "finetune", "export", *where(tmp_path), "--name", "lm-en-lape-en", "--out", tmp_path / "x")
    assert_error(code, err, "already exists and is not an empty folder")

    ppl = [*model, *where(tmp_path), "--langs", "en", "--corpus", corpus, "--json"]
    code, out, err = run(capsys, "ppl", *ppl)
    assert code == 0, err
    base = json.loads(out)["rows"][0]["ppl"]
    code, out, err = run(capsys, "ppl", *ppl, "--adapter", "lm-en-lape-en")
    assert code == 0, err
    assert json.loads(out)["rows"][0]["ppl"] != base
    code, out, err = run(capsys, "generate", *model, *where(tmp_path), "--prompt", "the cat", "--max-new-tokens", "4",
                         "--adapter", "lm-en-lape-en", "--json")
    assert code == 0 and json.loads(out)["rows"], err
    text = tmp_path / "text.txt"
    text.write_text("the dog sleeps.", encoding="utf-8")
    code, out, err = run(capsys, "score", *model, *where(tmp_path), "--file", text, "--adapter", "lm-en-lape-en", "--json")
    assert code == 0 and json.loads(out)["rows"][0]["perplexity"] > 0, err
    code, _, err = run(capsys, "score", *model, *where(tmp_path), "--file", text, "--adapter", "nosuch")
    assert_error(code, err, "has no adapter 'nosuch'", "its adapters: lm-en-lape-en")
