"""Loading a model by Hugging Face id or local path into a `ModelHandle`.

The handle bundles the plain transformers model, its tokenizer, the architecture row and, on first
use, the nnsight wrapper (built in `backend`, the only module that imports nnsight). The demo model
in `assets/demo-model` goes through exactly this path, like any real checkpoint.

Two heads share that path: a causal LM (`*ForCausalLM`, the default) and a sequence classifier
(`*ForSequenceClassification`, chosen when `config.architectures` names one, e.g. an XNLI
fine-tune). Both keep the decoder blocks at the same attribute path, so neurons are addressed alike.

Every way loading can fail because of user input becomes a `ModelLoadError` with a hint; this
module is the one place that translates library exceptions for model sources.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from lsn_explorer.core.architectures import Architecture, architecture_for, check_paths, d_ff, n_layers
from lsn_explorer.errors import LsnError, ModelLoadError

DType = Literal["auto", "float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
DEMO_MODEL_DIR = ASSETS_DIR / "demo-model"

Head = Literal["lm", "classifier"]


class HeadKind(NamedTuple):
    """How one head is loaded and named."""

    auto_class: str  # the transformers auto class that builds it
    suffix: str  # how the class names in config.architectures end
    name: str  # in messages


HEADS: dict[Head, HeadKind] = {
    "lm": HeadKind("AutoModelForCausalLM", "ForCausalLM", "causal LM"),
    "classifier": HeadKind("AutoModelForSequenceClassification", "ForSequenceClassification", "sequence classifier"),
}


@dataclass
class ModelHandle:
    """A loaded model plus everything the engine needs to address its neurons.

    Attributes:
        model: the transformers `*ForCausalLM` or `*ForSequenceClassification` module (eval mode).
        tokenizer: its tokenizer.
        arch: the architecture-table row for the model family.
        source: what the user asked for (hub id or path), recorded as provenance.
        dtype: torch dtype name of the weights / compute ("float32", "bfloat16", ...).
        quantization: "nf4" for 4-bit bitsandbytes, None for full precision.
        head: "lm" (next-token logits) or "classifier" (one logit per label, see `label_names`).
    """

    model: Any
    tokenizer: Any
    arch: Architecture
    source: str
    dtype: str
    quantization: str | None = None
    head: Head = "lm"
    _wrapped: Any = field(default=None, repr=False)

    @property
    def n_layers(self) -> int:
        return n_layers(self.model.config)

    @property
    def d_ff(self) -> int:
        return d_ff(self.model.config, self.arch)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    @property
    def label_names(self) -> tuple[str, ...]:
        """The classifier's labels in logit order (from `config.id2label`); empty for a causal LM."""
        if self.head != "classifier":
            return ()
        id2label = {int(k): str(v) for k, v in self.model.config.id2label.items()}
        return tuple(id2label.get(i, f"LABEL_{i}") for i in range(int(self.model.config.num_labels)))

    def require(self, head: Head, purpose: str) -> None:
        """Raise a `ModelLoadError` unless this model has `head` (`purpose` says what needs it)."""
        if self.head == head:
            return
        raise ModelLoadError(
            f"{purpose} needs a {HEADS[head].name}, and {self.source} is a {HEADS[self.head].name}",
            f"pass --model with a *{HEADS[head].suffix} checkpoint",
        )

    @property
    def wrapped(self) -> Any:
        """The nnsight wrapper around `model` (built once, on first use)."""
        if self._wrapped is None:
            from lsn_explorer.core.backend import wrap

            self._wrapped = wrap(self.model, self.tokenizer)
        return self._wrapped

    def describe(self) -> dict[str, Any]:
        """Plain-data summary for provenance records and `model info`."""
        return {
            "source": self.source,
            "family": self.arch.family,
            "model_type": self.model.config.model_type,
            "n_layers": self.n_layers,
            "d_ff": self.d_ff,
            "hidden_size": int(self.model.config.hidden_size),
            "vocab_size": int(self.model.config.vocab_size),
            "dtype": self.dtype,
            "quantization": self.quantization,
            "head": self.head,
            "labels": list(self.label_names),
            "sites": list(self.arch.sites),
            "device": str(self.device),
        }


def load_model(
    source: str | os.PathLike[str] | None = None,
    *,
    dtype: DType | str = "auto",
    four_bit: bool = False,
    device: str = "auto",
) -> ModelHandle:
    """Load a model by hub id or local path (the bundled demo model when `source` is None).

    A checkpoint whose `config.architectures` names a `*ForSequenceClassification` class loads with
    its classification head (`handle.head == "classifier"`); anything else loads as a causal LM.

    Args:
        source: Hugging Face id (`meta-llama/Llama-3.1-8B`) or a local checkpoint folder.
        dtype: "auto" picks bfloat16 on CUDA and float32 on CPU; or an explicit dtype name.
        four_bit: quantise to NF4 with double quantisation and bfloat16 compute (bitsandbytes).
        device: "auto" (CUDA when available), "cpu", or "cuda[:N]".

    Raises:
        ModelLoadError: missing path, folder without a checkpoint, hub id unreachable offline,
            4-bit without bitsandbytes, or a checkpoint the libraries cannot read.
        UnsupportedArchitecture: a model family without a row in the architecture table, or a
            head class that keeps the decoder blocks somewhere else.
    """
    location, label = _locate(source)
    config = _load_config(location, label)
    arch = architecture_for(config)
    head = head_for(config)

    import torch
    import transformers
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not sys.stderr.isatty():
        # Loading bars are for people watching a terminal; in logs and pipes they are noise.
        hf_logging.disable_progress_bar()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_dtype = _torch_dtype(dtype, device)
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if four_bit:
        kwargs["quantization_config"] = _nf4_config(torch)
        kwargs["device_map"] = {"": device}
    try:
        model = getattr(transformers, HEADS[head].auto_class).from_pretrained(location, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(location)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"could not load {label}: {_first_line(exc)}",
            "check that the folder holds a complete Hugging Face checkpoint",
        ) from exc
    check_paths(model, arch)
    if not four_bit:
        model.to(device)
    model.eval()
    # Decoder-only batches pad on the left (what nnsight and generation expect); a model without
    # a pad token reuses eos, as nnsight would do on wrapping.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return ModelHandle(
        model=model,
        tokenizer=tokenizer,
        arch=arch,
        source=label,
        dtype=str(torch_dtype).removeprefix("torch."),
        quantization="nf4" if four_bit else None,
        head=head,
    )


def head_for(config: Any) -> Head:
    """The head a checkpoint was saved with: "classifier" when `config.architectures` names a
    `*ForSequenceClassification` class, else "lm" (base checkpoints and causal LMs alike)."""
    names = getattr(config, "architectures", None) or []
    suffix = HEADS["classifier"].suffix
    return "classifier" if any(str(name).endswith(suffix) for name in names) else "lm"


def _locate(source: str | os.PathLike[str] | None) -> tuple[str, str]:
    """Return (what to pass to from_pretrained, label for messages), checking local paths."""
    if source is None:
        source = DEMO_MODEL_DIR
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(
                f"{text} is a file, not a checkpoint folder",
                "pass the folder that holds config.json and the weights",
            )
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"{text} is not a model checkpoint (no config.json)",
                "pass a folder saved with save_pretrained(): config.json, weights, tokenizer",
            )
        if not any(any(path.glob(pattern)) for pattern in WEIGHT_PATTERNS):
            raise ModelLoadError(
                f"{text} has a config.json but no weights (*.safetensors or *.bin)",
                "copy the weight files into the folder, or point at the complete checkpoint",
            )
        return str(path), text
    looks_like_path = text.startswith((".", "/", "~")) or os.sep in text.strip("/").split("/", 1)[-1]
    if looks_like_path or text.count("/") > 1 or not _HUB_ID.match(text):
        raise ModelLoadError(
            f"model path {text} does not exist",
            "check the path, or give a Hugging Face id such as meta-llama/Llama-3.1-8B",
        )
    return text, text


def _load_config(location: str, label: str) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(location)
    except OSError as exc:
        if Path(location).exists():
            raise ModelLoadError(
                f"could not read the config of {label}: {_first_line(exc)}",
                "check config.json in that folder",
            ) from exc
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        raise ModelLoadError(
            f"cannot fetch {label!r} from the Hugging Face hub"
            + (" while offline" if offline else "")
            + " and it is not in the local cache",
            "download it once where the network is reachable (hf download ID), "
            "or pass the path of a local checkpoint",
        ) from exc
    except ValueError as exc:
        # Unknown model_type values surface from AutoConfig as ValueError.
        from lsn_explorer.core.architectures import supported_families

        raise ModelLoadError(
            f"{label} has a model type transformers does not know: {_first_line(exc)}",
            f"supported families: {supported_families()}",
        ) from exc


def _torch_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r}", f"use one of: {', '.join(DTYPES)}")
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def _nf4_config(torch: Any) -> Any:
    """NF4, double quantisation, bf16 compute: the setting of Mondal et al.'s 4-bit runs."""
    if not bitsandbytes_available():
        raise ModelLoadError(
            "--4bit needs the bitsandbytes package, which is not installed",
            'install it: pip install -c constraints.txt bitsandbytes (or drop --4bit)',
        )
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def bitsandbytes_available() -> bool:
    """Whether the bitsandbytes package can be imported (checked without importing it)."""
    return importlib.util.find_spec("bitsandbytes") is not None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ = ["ModelHandle", "Head", "load_model", "head_for", "DEMO_MODEL_DIR", "ASSETS_DIR", "LsnError"]
