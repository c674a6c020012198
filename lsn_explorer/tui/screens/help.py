"""Help: the methods and values in two lines each, and the keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# lsn-explorer

**LAPE** (Tang et al. 2024) — for each neuron, the activation probability per language, turned into an
entropy over languages; the lowest-entropy neurons (top 1%, `top_rate`) are language-specific.

**Act Prob 90p** (Mondal et al. 2025) — per language, the neurons most often above that language's own
90th percentile; the top `rate` share of all neurons (573 in Llama-3.1-8B) per language.

**Type-1** (Tezuka & Inoue 2025) — early/middle-layer neurons whose activation moves a language's hidden
states from its own latent space towards the shared, English-centric space.

**Type-2** (Tezuka & Inoue 2025) — last-layer neurons that move representations back out of the shared
space into the target language's space; deactivating them makes models answer in the wrong language.

**Values** — `zero` deactivates; `mean` and `p5`…`p95` write the language's own mean or percentile of the
neuron's activation (from its statistics); a number writes a constant; `x0.5` scales.

**Site and positions** — site `s` is the activation output, `a` the down-projection input; positions
`all`, `prompt` (prompt pass only), `generated` (decoding steps only), `last` (the last prompt token).

## Keys
F2–F10 tabs · Ctrl+G generate · Ctrl+R score · Esc cancels the running task · Ctrl+T compute / run method
(Languages, Neurons) · Ctrl+N / Ctrl+L add / delete an intervention row · R re-runs a History entry ·
Ctrl+E evaluate in the background · Ctrl+F fine-tune the chosen neurons (masked LoRA) in the background ·
Jobs: C cancel, R resume, L log, Enter results, a fine-tune's loss curve · an adapter picker in Generate and
Score · Results: Enter shows an evaluation, P writes its PNG heat map · Analysis (F10): Ctrl+T computes the
latent states once, ←/→ or −/+ on the depth slider move the PCA and centroid-matrix layer, P writes the PNG ·
Ctrl+P command palette · Ctrl+Q quit (jobs keep running)
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
