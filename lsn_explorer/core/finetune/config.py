"""What a masked-LoRA fine-tune does: `FinetuneSpec` (persisted, validated), the neuron choice it
trains (`--neurons`), the paper's setups and the original code's recipes. Torch-free.

Neurons (`--neurons`):
- `SET:LANG` — the stored neuron set SET's neurons of LANG (`lape:zh`); `SET:L1+L2` their union;
- `random:SET:LANG` — as many neurons per layer as SET has for LANG, drawn uniformly among that
  layer's other neurons (seeded by `seed`; `core.neurons.baseline.random_baseline`);
- `none` — no MLP LoRA at all: only the attention modules (and an XNLI classifier's head) train.
SET may be a name or a record id (`#12`); a launched job pins a name to its id (`pinned`), so a
set re-identified later under the same name does not change a resumed run.

Mondal et al.'s setups (their Table 3), for a model fine-tuned on language T's data with the
language-specific neurons of the source language S (English in the paper), written as `--neurons`
(`setup_neurons` builds them): source `SET:S`, target `SET:T`, both `SET:S+T`, random
`random:SET:T` (the same count per layer, seeded), none `none` (attention only).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from lsn_explorer.core.specs import Spec, one_of
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.session.store import Session

TASKS: tuple[str, ...] = ("lm", "xnli", "xquad")
MLP_MODULES: tuple[str, ...] = ("gate", "up", "down")
ATTENTION_MODULES: tuple[str, ...] = ("q", "k", "v", "o")
BETAS = (0.95, 0.999)  # AdamW betas of Mondal et al.'s code, every recipe
SETUPS: dict[str, str] = {  # Mondal et al.'s setups → --neurons ({set}, source {s}, target {t})
    "source": "{set}:{s}",
    "target": "{set}:{t}",
    "both": "{set}:{s}+{t}",
    "random": "random:{set}:{t}",
    "none": "none",
}
NEURONS_SYNTAX = "SET:LANG, SET:LANG1+LANG2, random:SET:LANG or none (e.g. lape:zh)"
_NEURONS = re.compile(r"^(?:(?P<random>random):(?=[^:]+:))?(?P<set>#\d+|[A-Za-z_][\w.-]*):"
                      r"(?P<langs>[A-Za-z_-]+(?:\+[A-Za-z_-]+)*)$")
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]{0,63}$")


class FinetuneError(LsnError):
    """A fine-tune that cannot run as asked (bad settings, neurons, data or model)."""


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of a published run, filled in by `--recipe` (explicit flags still win)."""

    fields: dict[str, Any]
    source: str  # where the numbers come from


# Mondal et al. 2025's original code (SCIENCE.md §6): LoRA on gate_proj only, masked; unmasked LoRA
# on q,k,v,o (XNLI) or q,k,v (XQuAD); NF4 base with double quantisation and bf16 compute; AdamW
# β (0.95, 0.999), weight decay 0.1, gradient clipping 10, linear schedule with 1 % warm-up.
# XNLI: r 8 / α 16, lr 1e-6, 2 epochs, batch 8, 25 % of the training set (the paper reports
# r 64 / α 128 for both; the code uses r 8 / α 16 for XNLI). XQuAD: r 64 / α 128, lr 5e-5,
# 10 epochs, batch 4, trained on 80 % of the English validation questions (the rest held out).
# max_len is not given there; ours is kept.
RECIPES: dict[str, Recipe] = {
    "mondal-xnli": Recipe(
        {"task": "xnli", "modules": ["gate"], "attention": ["q", "k", "v", "o"], "rank": 8, "alpha": 16.0,
         "lr": 1e-6, "epochs": 2, "batch": 8, "train_frac": 0.25, "four_bit": True, "weight_decay": 0.1,
         "warmup": 0.01, "clip": 10.0},
        "Mondal et al. 2025, original code (XNLI): gate-only masked LoRA, q/k/v/o LoRA, NF4, AdamW (0.95, 0.999)"),
    "mondal-xquad": Recipe(
        {"task": "xquad", "modules": ["gate"], "attention": ["q", "k", "v"], "rank": 64, "alpha": 128.0,
         "lr": 5e-5, "epochs": 10, "batch": 4, "train_frac": 0.8, "four_bit": True, "weight_decay": 0.1,
         "warmup": 0.01, "clip": 10.0},
        "Mondal et al. 2025, original code (XQuAD): gate-only masked LoRA, q/k/v LoRA, NF4, 80/20 split of the "
        "validation questions, AdamW (0.95, 0.999)"),
}


class NeuronChoice(NamedTuple):
    """`--neurons` parsed: a stored set (None for `none`), its languages, and whether the neurons
    are a random draw matched to them."""

    set: str | None
    langs: tuple[str, ...]
    random: bool = False

    @property
    def label(self) -> str:
        if self.set is None:
            return "none"
        return ("random:" if self.random else "") + f"{self.set}:{'+'.join(self.langs)}"


def parse_neurons(text: str) -> NeuronChoice:
    """`--neurons` as a `NeuronChoice` (see the module doc for the syntax).

    Raises:
        FinetuneError: bad syntax. LanguageError: an unknown language code.
    """
    from lsn_explorer.core.data.languages import get_language

    text = str(text).strip()
    if text.lower() == "none":
        return NeuronChoice(None, ())
    match = _NEURONS.match(text)
    if match is None:
        raise FinetuneError(f"bad --neurons {text!r}", f"write {NEURONS_SYNTAX}")
    langs = tuple(get_language(lang).code for lang in match["langs"].split("+"))
    if len(set(langs)) != len(langs):
        raise FinetuneError(f"--neurons {text!r} repeats a language", "name each language once")
    return NeuronChoice(match["set"], langs, bool(match["random"]))


def setup_neurons(setup: str, set_name: str, source: str, target: str) -> str:
    """The `--neurons` of one of Mondal et al.'s setups (source | target | both | random | none)."""
    one_of("setup", setup, tuple(SETUPS))
    return SETUPS[setup].format(set=set_name, s=source, t=target)


@dataclass(frozen=True)
class FinetuneSpec(Spec):
    """One masked-LoRA fine-tune. Defaults train the demo model in a minute or two on a CPU.

    Attributes:
        task: lm (causal LM on a corpus), xnli (classifier head, or the verbalised correct
            option for a causal LM), xquad (generative: passage, question, answer).
        train_lang: the language of the training data.
        neurons: which MLP neurons the LoRA may change (module doc).
        train_data: lm: a corpus folder or text file (default: the demo corpus, held-out lines
            excluded); xnli / xquad: a benchmark folder, a file, or hf:DATASET (default: demo samples).
        modules: masked MLP projections (gate, up: rows; down: columns).
        attention: unmasked LoRA on these attention projections (empty: none).
        rank, alpha: LoRA rank r and scaling α (ΔW = α / r · B A).
        lr, epochs, batch, grad_accum, max_len: AdamW learning rate, passes over the data,
            sequences per micro-batch, micro-batches per optimizer step, tokens per sequence.
        train_frac: the fraction of the training examples used (a seeded draw).
        max_steps: stop after this many optimizer steps (None: all epochs).
        four_bit: QLoRA on an NF4 base (bitsandbytes; double quantisation, bf16 compute).
        seed: data order, the training-fraction draw and random neurons.
        recipe: the recipe that filled the hyper-parameters (recorded; None: set by hand).
        name: the adapter's name in the session (default: task-lang-neurons).
        weight_decay, warmup, clip: AdamW weight decay, warm-up fraction of the steps (then
            linear decay to 0), gradient-norm clipping.
        checkpoint_every: optimizer steps between checkpoints (what a resumed run repeats at most).
    """

    KIND: ClassVar[str] = "finetune"
    task: str = "lm"
    train_lang: str = "en"
    neurons: str = "none"
    train_data: str | None = None
    modules: list[str] = field(default_factory=lambda: list(MLP_MODULES))
    attention: list[str] = field(default_factory=list)
    rank: int = 8
    alpha: float = 16.0
    lr: float = 3e-3  # the demo model: 30 steps lower the target language's held-out perplexity a few %
    epochs: int = 1
    batch: int = 8
    grad_accum: int = 1
    max_len: int = 128
    train_frac: float = 1.0
    max_steps: int | None = None
    four_bit: bool = False
    seed: int = 0
    recipe: str | None = None
    name: str = ""
    weight_decay: float = 0.1
    warmup: float = 0.01
    clip: float = 1.0
    checkpoint_every: int = 20

    def __post_init__(self) -> None:
        from lsn_explorer.core.data.languages import get_language

        if self.task not in TASKS:
            close = difflib.get_close_matches(str(self.task), TASKS, n=1)
            raise FinetuneError(f"unknown fine-tuning task {self.task!r}",
                                (f"did you mean {close[0]}? " if close else "") + f"tasks: {', '.join(TASKS)}")
        object.__setattr__(self, "train_lang", get_language(self.train_lang).code)
        choice = parse_neurons(self.neurons)
        object.__setattr__(self, "neurons", choice.label)
        object.__setattr__(self, "modules", _subset("--modules", self.modules, MLP_MODULES))
        object.__setattr__(self, "attention", _subset("--attention", self.attention, ATTENTION_MODULES))
        if choice.set is not None and not self.modules:
            raise FinetuneError(f"--neurons {choice.label} needs at least one MLP module",
                                f"pass --modules with some of {', '.join(MLP_MODULES)}, or --neurons none")
        if choice.set is None and not self.attention and self.task != "xnli":
            raise FinetuneError("--neurons none with --attention none leaves nothing to train",
                                "name neurons (--neurons SET:LANG) or attention modules (--attention q,k,v,o)")
        _whole("--rank", self.rank, 1, "LoRA needs a rank of at least 1, e.g. --rank 8")
        _positive("--alpha", self.alpha, "e.g. --alpha 16 (twice the rank)")
        _positive("--lr", self.lr, "e.g. --lr 1e-4")
        _whole("--epochs", self.epochs, 1, "e.g. --epochs 1")
        _whole("--batch", self.batch, 1, "e.g. --batch 8")
        _whole("--grad-accum", self.grad_accum, 1, "1 means no accumulation")
        _whole("--max-len", self.max_len, 2, "a sequence needs at least two tokens, e.g. --max-len 128")
        if not _number(self.train_frac) or not 0 < self.train_frac <= 1:
            raise FinetuneError(f"--train-frac must be in (0, 1] (got {self.train_frac})", "e.g. --train-frac 0.25")
        if self.max_steps is not None:
            _whole("--max-steps", self.max_steps, 1, "leave it out to train every epoch")
        _whole("--seed", self.seed, 0, "any whole number ≥ 0")
        if self.recipe is not None and self.recipe not in RECIPES:
            close = difflib.get_close_matches(str(self.recipe), RECIPES, n=1)
            raise FinetuneError(f"unknown recipe {self.recipe!r}",
                                (f"did you mean {close[0]}? " if close else "") + f"recipes: {', '.join(RECIPES)}")
        if self.name and not _NAME.match(self.name):
            raise FinetuneError(f"bad adapter name {self.name!r}",
                                "use up to 64 letters, digits, '-', '_' and '.', starting with a letter or digit")
        if not _number(self.weight_decay) or self.weight_decay < 0:
            raise FinetuneError(f"weight decay must be ≥ 0 (got {self.weight_decay})", "e.g. 0.1")
        if not _number(self.warmup) or not 0 <= self.warmup < 1:
            raise FinetuneError(f"warm-up must be a fraction in [0, 1) (got {self.warmup})", "e.g. 0.01")
        _positive("gradient clipping", self.clip, "e.g. 1.0")
        _whole("checkpoint_every", self.checkpoint_every, 1, "e.g. 20 optimizer steps")
        if not isinstance(self.four_bit, bool):
            raise FinetuneError(f"four_bit must be true or false (got {self.four_bit!r})", "the record is damaged")

    @property
    def choice(self) -> NeuronChoice:
        return parse_neurons(self.neurons)

    def adapter_name(self) -> str:
        """`name`, else `task-lang-neurons` with the characters a folder name allows."""
        if self.name:
            return self.name
        slug = re.sub(r"[^\w.-]+", "-", self.neurons).strip("-")
        return f"{self.task}-{self.train_lang}-{slug}"[:64]

    def key(self) -> str:
        """A short hash of every field: the checkpoints of a run live under it, so a resumed
        run continues only the training it started."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def title(self) -> str:
        return f"finetune {self.adapter_name()} ({self.task} {self.train_lang}, neurons {self.neurons})"


def from_recipe(recipe: str | None, **given: Any) -> FinetuneSpec:
    """A spec from a recipe's hyper-parameters, overridden by the `given` fields that are not None.

    Raises:
        FinetuneError: an unknown recipe, or settings that do not validate.
    """
    values: dict[str, Any] = {}
    if recipe is not None:
        if recipe not in RECIPES:
            FinetuneSpec(recipe=recipe)  # raises the "did you mean" error
        values |= RECIPES[recipe].fields
    known = {f.name for f in fields(FinetuneSpec)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise TypeError(f"from_recipe: unknown fields {unknown}")
    values |= {k: v for k, v in given.items() if v is not None}
    return FinetuneSpec(**values, recipe=recipe)


def pinned(spec: FinetuneSpec, session: Session) -> FinetuneSpec:
    """`spec` with its neuron set named by record id (`lape:zh` → `#12:zh`), so that a set
    re-identified later under the same name does not change a resumed run.

    Raises:
        FinetuneError: the session has no neuron set of that name.
    """
    choice = spec.choice
    check_neuron_record(session, choice)
    if choice.set is None or choice.set.startswith("#"):
        return spec
    record = session.latest("neuron_set", choice.set)
    assert record is not None  # checked just above
    return replace(spec, neurons=choice._replace(set=f"#{record.id}").label)


def check_neuron_record(session: Session, choice: NeuronChoice) -> None:
    """The stored neuron set `choice` names exists (by name or `#id`) and selects neurons for
    each of its languages; read from the record, without torch, before any model loads.

    Raises:
        FinetuneError: no such set in the session, a language it lacks, or none of its neurons.
    """
    if choice.set is None:
        return
    records = session.records("neuron_set")
    if choice.set.startswith("#"):
        record = next((r for r in records if r.id == int(choice.set[1:])), None)
    else:
        record = session.latest("neuron_set", choice.set)
    if record is None:
        stored = sorted({r.name for r in records})
        raise FinetuneError(f"session {session.name!r} has no neuron set {choice.set!r}",
                            f"stored sets: {', '.join(stored)}" if stored else
                            "it has none: run `lsn-explorer identify` first, or use --neurons none")
    neurons = (record.payload.get("set") or {}).get("neurons") or {}
    for lang in choice.langs:
        if lang not in neurons:
            raise FinetuneError(f"neuron set {choice.set!r} has no neurons for {lang}",
                                f"its languages: {', '.join(neurons) or 'none'}")
        if not neurons[lang]:
            raise FinetuneError(f"neuron set {choice.set!r} selects no neurons for {lang}",
                                "choose another language or set, or identify with a larger rate")


def _subset(flag: str, values: Any, allowed: tuple[str, ...]) -> list[str]:
    if isinstance(values, str):
        values = [] if values.strip().lower() in ("", "none") else values.split(",")
    chosen = [str(v).strip().lower() for v in values or []]
    bad = [v for v in chosen if v not in allowed]
    if bad:
        none = " or none" if flag == "--attention" else ""
        raise FinetuneError(f"{flag}: {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not one of {', '.join(allowed)}",
                            f"write a comma-separated list of {', '.join(allowed)}{none}")
    if len(set(chosen)) != len(chosen):
        raise FinetuneError(f"{flag} repeats a module", "name each once")
    return [v for v in allowed if v in chosen]  # canonical order


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(flag: str, value: Any, least: int, hint: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise FinetuneError(f"{flag} must be a whole number ≥ {least} (got {value!r})", hint)


def _positive(flag: str, value: Any, hint: str) -> None:
    if not _number(value) or value <= 0:
        raise FinetuneError(f"{flag} must be greater than 0 (got {value!r})", hint)
