"""Building the bundled demo model: a small Llama and a byte-level BPE tokenizer trained on the
demo corpus (`assets/corpus`), saved as an ordinary Hugging Face checkpoint.

The recipe is fixed and seeded, so `lsn-explorer demo build` reproduces the committed model. Only
training lines are used; every tenth line is held out (`corpora.is_heldout`) for the perplexity
table in the model's README and for the continuation checks in the tests.

Training data mimics what makes language neurons appear in real LLMs: most sequences are
monolingual "documents" (random training lines of one language joined by newlines), and a share are
en–L2 translation pairs, which pull the languages towards a shared space.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lsn_explorer.core.data.corpora import DEMO_CORPUS_DIR, available_languages, load_parallel
from lsn_explorer.core.progress import Progress
from lsn_explorer.errors import CorpusError

BOS, EOS = "<s>", "</s>"


@dataclass(frozen=True)
class DemoRecipe:
    """Everything that determines the demo model. Changing a field changes the model."""

    vocab_size: int = 8000
    hidden_size: int = 256
    intermediate_size: int = 768
    num_layers: int = 6
    num_heads: int = 4
    seq_len: int = 128
    batch_size: int = 16
    steps: int = 1200
    peak_lr: float = 4e-3
    warmup_steps: int = 30
    final_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    parallel_share: float = 0.15  # share of sequences made of en–L2 translation pairs
    threads: int = 2  # fixed so float reductions, and hence the weights, are reproducible
    seed: int = 0


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """Byte-level BPE over `texts`; no unknown tokens, any script round-trips."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=EOS,
        clean_up_tokenization_spaces=False,
    )


def _lr_at(step: int, recipe: DemoRecipe) -> float:
    """Linear warm-up, then cosine decay to final_lr_ratio · peak."""
    if step < recipe.warmup_steps:
        return recipe.peak_lr * (step + 1) / recipe.warmup_steps
    span = max(1, recipe.steps - recipe.warmup_steps)
    progress = min(1.0, (step - recipe.warmup_steps) / span)
    floor = recipe.final_lr_ratio
    return recipe.peak_lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


class _SequenceSampler:
    """Seeded sampler of packed training sequences (token ids, length seq_len, starting with <s>)."""

    def __init__(self, ids: dict[str, list[list[int]]], bos: int, newline: list[int],
                 recipe: DemoRecipe) -> None:
        self.ids, self.bos, self.newline, self.recipe = ids, bos, newline, recipe
        self.langs = sorted(ids)
        self.rng = random.Random(recipe.seed)
        self.n_lines = len(next(iter(ids.values())))

    def sequence(self) -> list[int]:
        rng, need = self.rng, self.recipe.seq_len - 1
        stream: list[int] = []
        if "en" in self.ids and rng.random() < self.recipe.parallel_share:
            other = rng.choice([l for l in self.langs if l != "en"])
            while len(stream) < need:
                i = rng.randrange(self.n_lines)
                pair = ["en", other] if rng.random() < 0.5 else [other, "en"]
                for lang in pair:
                    stream += self.ids[lang][i] + self.newline
        else:
            lang = rng.choice(self.langs)
            while len(stream) < need:
                stream += self.ids[lang][rng.randrange(self.n_lines)] + self.newline
        return [self.bos] + stream[:need]


# Long on purpose: the whole training recipe, read top to bottom as nanoGPT's loop is; splitting it
# would scatter the seeded order of operations that makes the build reproducible.
def build_demo(
    out: str | Path,
    *,
    corpus_dir: str | Path = DEMO_CORPUS_DIR,
    recipe: DemoRecipe = DemoRecipe(),
    minutes: float | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train the demo tokenizer and model and save them to `out` as a HF checkpoint.

    Args:
        out: folder to write (created; existing files with the same names are replaced).
        corpus_dir: parallel corpus folder with `<lang>.txt` files.
        recipe: the fixed training recipe.
        minutes: optional wall-clock cap; training stops early when reached (the result then
            differs from the full recipe, and the manifest says so).
        progress: `progress(message, steps done, steps)` (core/progress.py's protocol).

    Returns:
        The build manifest (also written to `out/build.json`, last, so a folder without it is
        an interrupted build).
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    report = progress or (lambda message, done, total: None)
    started = time.monotonic()
    langs = available_languages(corpus_dir)
    if not langs:
        raise CorpusError(f"no <lang>.txt files in {corpus_dir}", "point --corpus at the demo corpus folder")
    train = load_parallel(langs, corpus_dir).split("train")

    report("training tokenizer", 0, recipe.steps)
    tokenizer = train_tokenizer([l for rows in train.lines.values() for l in rows], recipe.vocab_size)
    ids = {
        lang: tokenizer(rows, add_special_tokens=False)["input_ids"] for lang, rows in train.lines.items()
    }
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    n_train_tokens = sum(len(x) for rows in ids.values() for x in rows)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_heads,
        max_position_embeddings=recipe.seq_len,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.peak_lr, betas=(0.9, 0.95),
    )
    sampler = _SequenceSampler(ids, tokenizer.bos_token_id, newline, recipe)
    losses: list[float] = []
    steps_done = 0
    try:
        model.train()
        for step in range(recipe.steps):
            if minutes is not None and time.monotonic() - started > 60 * minutes:
                break
            batch = torch.tensor([sampler.sequence() for _ in range(recipe.batch_size)])
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, recipe)
            # transformers shifts labels inside the loss: pass the same ids as input and labels.
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            steps_done = step + 1
            if step % 10 == 0 or steps_done == recipe.steps:
                report(f"step {steps_done}/{recipe.steps} loss {loss.item():.3f}", steps_done, recipe.steps)
    finally:
        torch.set_num_threads(previous_threads)
    model.eval()

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "build.json").unlink(missing_ok=True)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, do_sample=False,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    manifest = {
        "recipe": asdict(recipe),
        "steps_done": steps_done,
        "complete": steps_done == recipe.steps,
        "languages": langs,
        "train_lines_per_language": len(train),
        "train_tokens": n_train_tokens,
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss_mean_last_20": sum(losses[-20:]) / max(1, len(losses[-20:])),
        "train_seconds": round(time.monotonic() - started, 1),
        "corpus_sha256": {
            lang: hashlib.sha256((Path(corpus_dir) / f"{lang}.txt").read_bytes()).hexdigest()
            for lang in langs
        },
        "torch": torch.__version__,
    }
    (out / "build.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    report("done", recipe.steps, recipe.steps)
    return manifest


def prompt_from(line: str) -> str:
    """The first half of a sentence, cut at a word boundary where the script has spaces."""
    words = line.split()
    if len(words) >= 4:
        return " ".join(words[: len(words) // 2])
    return line[: max(2, len(line) // 2)]


@dataclass(frozen=True)
class LanguageCheck:
    """Held-out behaviour of a model on one language of the demo corpus."""

    lang: str
    lines: int
    tokens: int
    perplexity: float
    bits_per_char: float  # the model's held-out cross-entropy per character, comparable across scripts
    unigram_bits_per_char: float  # a character-unigram model of the training lines on the same text
    in_script: int  # continuations with ≥ 80 % of letters in the language's script
    prompts: int
    example_prompt: str
    example_continuation: str


def char_unigram_bits(train: list[str], heldout: list[str]) -> float:
    """Bits per character of `heldout` under an add-one character-unigram model of `train`.

    The floor a language model must beat to have learned more than a language's alphabet. A model
    at or above it on a language has no neurons that matter to that language's perplexity, so
    PPXC rows for it are noise.
    """
    from collections import Counter

    counts = Counter(ch for line in train for ch in line)
    seen, size = sum(counts.values()), len(counts) + 1  # one slot shared by unseen characters
    text = "".join(heldout)
    if not text:
        return float("nan")
    return -sum(math.log2((counts[ch] + 1) / (seen + size)) for ch in text) / len(text)


def evaluate_demo(
    handle: Any,
    langs: list[str] | None = None,
    *,
    corpus_dir: str | Path = DEMO_CORPUS_DIR,
    prompts: int = 5,
    max_new_tokens: int = 24,
) -> list[LanguageCheck]:
    """Per-language held-out perplexity, bits per character (against a character-unigram floor)
    and script consistency of greedy continuations."""
    from lsn_explorer.core.data.languages import get_language
    from lsn_explorer.core.data.writing import script_share
    from lsn_explorer.core.generate import continue_text
    from lsn_explorer.core.tasks.perplexity import line_perplexity

    langs = langs or available_languages(corpus_dir)
    corpus = load_parallel(langs, corpus_dir)
    heldout, train = corpus.split("heldout"), corpus.split("train")
    results = []
    for lang in langs:
        rows = heldout.lines[lang]
        ppl = line_perplexity(handle, rows)
        chars = sum(len(line) for line in rows)
        script = get_language(lang).script
        good, first = 0, None
        for line in rows[:prompts]:
            prompt = prompt_from(line)
            continuation = continue_text(handle, prompt, max_new_tokens=max_new_tokens)
            first = first or (prompt, continuation)
            good += script_share(continuation, script) >= 0.8
        results.append(LanguageCheck(
            lang=lang, lines=len(rows), tokens=ppl.n_tokens, perplexity=ppl.value,
            bits_per_char=ppl.nll / math.log(2) / max(1, chars),
            unigram_bits_per_char=char_unigram_bits(train.lines[lang], rows),
            in_script=good, prompts=min(prompts, len(rows)),
            example_prompt=first[0] if first else "", example_continuation=first[1] if first else "",
        ))
    return results


# Long on purpose: it writes one document, section after section.
def write_model_card(out: str | Path, manifest: dict[str, Any], checks: list[LanguageCheck]) -> Path:
    """Write `out/README.md`: architecture, data, recipe and the measured held-out table."""
    from lsn_explorer.core.data.languages import get_language

    r = manifest["recipe"]
    size_mb = sum(p.stat().st_size for p in Path(out).glob("*.safetensors")) / 2**20
    rows = "\n".join(
        f"| {c.lang} | {get_language(c.lang).name} | {c.lines} | {c.tokens} | {c.perplexity:.1f} "
        f"| {c.bits_per_char:.2f} | {c.unigram_bits_per_char:.2f} | {c.in_script}/{c.prompts} |"
        for c in checks
    )
    floor = [c.lang for c in checks if c.bits_per_char >= c.unigram_bits_per_char]
    floor_note = (
        f" It has not yet beaten the character-unigram floor on {', '.join(floor)}: too little text for "
        "that script's many characters." if floor else ""
    )
    text = f"""# The lsn-explorer demo model

A small Llama-architecture causal LM (gated SiLU MLP, as in the papers) and a byte-level BPE
tokenizer, trained from scratch on the project's own parallel demo corpus (`assets/corpus`). It is
an ordinary Hugging Face checkpoint (`config.json`, `model.safetensors`, `tokenizer.json`) and is
loaded by exactly the code that loads any real model.

## Architecture
- {r['num_layers']} decoder layers, hidden size {r['hidden_size']}, MLP width d_ff {r['intermediate_size']}
  ({r['num_layers'] * r['intermediate_size']} neurons), {r['num_heads']} attention heads, RoPE, RMSNorm,
  tied input/output embeddings; vocabulary {r['vocab_size']} byte-level BPE tokens (`<s>` = BOS, `</s>` = EOS/pad).
- {manifest['parameters']:,} parameters, float32, {size_mb:.1f} MiB of weights.

## Training data
{len(manifest['languages'])} languages ({', '.join(manifest['languages'])}), {manifest['train_lines_per_language']} training
lines each ({manifest['train_tokens']:,} tokens in all); every tenth line of each file is held out and
never seen in training. Sequences of {r['seq_len']} tokens start with `<s>`; {100 * (1 - r['parallel_share']):.0f}% are
monolingual (random lines of one language joined by newlines), {100 * r['parallel_share']:.0f}% are en–L2 translation
pairs from the parallel corpus.

## Training settings
AdamW (β = 0.9, 0.95; weight decay {r['weight_decay']} on matrices), peak learning rate {r['peak_lr']},
{r['warmup_steps']} warm-up steps then cosine decay to {r['final_lr_ratio']:.0%}, batch {r['batch_size']} × {r['seq_len']} tokens,
{manifest['steps_done']} steps, gradient clipping {r['grad_clip']}, seed {r['seed']}, {r['threads']} CPU threads.
Final training loss (mean of the last 20 steps): {manifest['final_loss_mean_last_20']:.3f}.
Build time on the machine that produced this file: {manifest['train_seconds']:.0f} s.

Rebuild (deterministic: same corpus, recipe and torch build give the same weights):

    lsn-explorer demo build            # writes assets/demo-model
    lsn-explorer demo build --out DIR  # somewhere else

## Held-out behaviour
Perplexity over the held-out lines (each line scored from `<s>`, token-weighted); the same
cross-entropy in bits per character, next to what a character-unigram model of the training lines
scores on the same text (a model below that floor has learned the language beyond its alphabet,
and bits per character compare across scripts where perplexities per token do not); and how many of
the first 5 held-out prompts (first half of the sentence) continue greedily for 24 tokens with
≥ 80% of letters in the language's script. Measure again with:

    lsn-explorer demo eval --model assets/demo-model

| code | language | held-out lines | tokens | PPL | bits/char | unigram bits/char | in-script continuations |
|---|---|---|---|---|---|---|---|
{rows}

Perplexities are high by the standards of real LLMs: the model has seen about
{manifest['train_lines_per_language']} sentences per language. What it does learn is which language and script
it is writing, which is what the neuron-level analyses need.{floor_note}
"""
    path = Path(out) / "README.md"
    path.write_text(text, encoding="utf-8")
    return path
