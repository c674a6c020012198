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

from lsn_explorer.assets import ASSETS_DIR, DEMO_MODEL_DIR
from lsn_explorer.core.model.architectures import Architecture, architecture_for, check_paths, d_ff, n_layers
from lsn_explorer.errors import LsnError, ModelLoadError

DType = Literal["auto", "float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# bitsandbytes 0.50's CPU kernels assume each quantisation block (64 weights) lies inside one
# weight row. On a CPU with AVX512-BF16 the first forward repacks every 4-bit weight in tiles of 32
# output rows (`_convert_weight_packed_for_cpu`, block_n=32) and reshapes the block scales to
# [out, in / blocksize]; other shapes crash there. Without that feature the dequantisation kernel
# reads the scales the same way and, for an even in_features that is not a multiple of the block
# size, silently returns wrong weights (checked against bitsandbytes' pure-PyTorch dequantiser).
# Both conditions are required on every CPU, so a checkpoint that loads on one machine loads on all.
CPU_4BIT_ROWS = 32

Head = Literal["lm", "classifier"]
Remote = Literal["ndif", "local"]


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
        remote: None (runs here), "ndif" (the weights are on NDIF; `model` is the meta-device
            module tree) or "local" (runs here through the serialization round trip NDIF makes).
    """

    model: Any
    tokenizer: Any
    arch: Architecture
    source: str
    dtype: str
    quantization: str | None = None
    head: Head = "lm"
    traced: Any = field(default=None, repr=False)  # the backend's nnsight wrapper, built on first use
    adapter: str | None = None  # the session adapter loaded onto the model (core/model/adapters.py)
    remote: Remote | None = None  # see core/model/remote.py

    @property
    def n_layers(self) -> int:
        return n_layers(self.model.config)

    @property
    def d_ff(self) -> int:
        return d_ff(self.model.config, self.arch)

    @property
    def device(self) -> Any:
        """Where inputs go: the model's first device; the CPU for NDIF, which moves them itself."""
        if self.remote == "ndif":
            import torch

            return torch.device("cpu")
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

    def provenance(self) -> dict[str, Any]:
        """What identifies these weights in a record: source, family, precision, shape, and the
        checkpoint's file fingerprint (a local folder) or hub revision."""
        from lsn_explorer.session.provenance import checkpoint_fingerprint, hub_revision

        info: dict[str, Any] = {
            "source": self.source,
            "family": self.arch.family,
            "dtype": self.dtype,
            "quantization": self.quantization,
            "n_layers": self.n_layers,
            "d_ff": self.d_ff,
        }
        if Path(self.source).expanduser().is_dir():
            info["fingerprint"] = checkpoint_fingerprint(Path(self.source).expanduser())
        else:
            info["revision"] = getattr(self.model.config, "_commit_hash", None) or hub_revision(self.source)
        if self.adapter is not None:
            info["adapter"] = self.adapter
        if self.remote == "ndif":  # the weights NDIF holds: its revision and precision, not ours
            info["remote"] = "ndif"
        return info

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


# Long on purpose: the docstring lists every failure a user can meet; the body is one linear recipe.
def load_model(
    source: str | os.PathLike[str] | None = None,
    *,
    dtype: DType | str = "auto",
    four_bit: bool = False,
    device: str = "auto",
    trust_remote_code: bool = False,
    device_map: str | None = None,
    max_memory: dict[int | str, str] | None = None,
) -> ModelHandle:
    """Load a model by hub id or local path (the bundled demo model when `source` is None).

    A checkpoint whose `config.architectures` names a `*ForSequenceClassification` class loads with
    its classification head (`handle.head == "classifier"`); anything else loads as a causal LM.

    Args:
        source: Hugging Face id (`meta-llama/Llama-3.1-8B`) or a local checkpoint folder.
        dtype: "auto" picks bfloat16 on CUDA and float32 on CPU; or an explicit dtype name.
        four_bit: quantise to NF4 with double quantisation and bfloat16 compute (bitsandbytes).
        device: "auto" (CUDA when available), "cpu", or "cuda[:N]".
        device_map: "auto" spreads the layers over every visible GPU (then CPU memory) with
            accelerate's big-model loading, for a model too big for one GPU; `device` must then be
            "auto". Inputs go to the first layer's device; each intervention is written on the
            device that holds its layer.
        max_memory: with `device_map`, the most each device may hold ({0: "20GiB", "cpu": "64GiB"}).
        trust_remote_code: run Python code shipped with the checkpoint (its `auto_map`). Off
            unless the user asks (`--trust-remote-code`); passed to transformers explicitly,
            because its default (None) asks on the terminal and runs the code on a "y".

    Raises:
        ModelLoadError: missing path, folder without a checkpoint, hub id unreachable offline,
            a checkpoint that needs its own code without `trust_remote_code`,
            4-bit without bitsandbytes, a checkpoint the libraries cannot read, or 4-bit on CPU
            for a model whose layer shapes bitsandbytes' CPU kernels cannot run.
        UnsupportedArchitecture: a model family without a row in the architecture table, or a
            head class that keeps the decoder blocks somewhere else.
    """
    location, label = _locate(source)
    config = load_config(location, label, trust_remote_code)
    arch = architecture_for(config)
    head = head_for(config)

    import torch
    import transformers
    from safetensors import SafetensorError
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from lsn_explorer.core.model.placement import resolve_device

    if not sys.stderr.isatty():
        # Loading bars are for people watching a terminal; in logs and pipes they are noise.
        hf_logging.disable_progress_bar()
    if device_map is not None and (device_map != "auto" or device != "auto"):
        raise ModelLoadError(f"--device-map {device_map} with --device {device}",
                             "use --device-map auto alone: accelerate places the layers on the visible devices")
    if max_memory is not None and device_map is None:
        raise ModelLoadError("--max-memory without --device-map", "add --device-map auto")
    device = resolve_device(device)
    torch_dtype = _torch_dtype(dtype, device)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
    if four_bit:
        kwargs["quantization_config"] = _nf4_config(torch)
        kwargs["device_map"] = {"": device}
    if device_map is not None:
        kwargs["device_map"] = device_map
        if max_memory:
            kwargs["max_memory"] = max_memory
    try:
        model = getattr(transformers, HEADS[head].auto_class).from_pretrained(location, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, SafetensorError) as exc:  # SafetensorError: a truncated or garbled weights file
        if _needs_remote_code(exc):
            raise _remote_code_error(label) from None
        raise ModelLoadError(
            f"could not load {label}: {_first_line(exc)}",
            "check that the folder holds a complete Hugging Face checkpoint",
        ) from exc
    check_paths(model, arch)
    if four_bit and torch.device(device).type == "cpu":
        check_cpu_4bit_shapes(model, label)
    if not four_bit and device_map is None:
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


def check_source(source: str | os.PathLike[str] | None) -> None:
    """Check a model source without loading anything: a local path must be a checkpoint folder
    and anything else must look like a hub id (commands that hand the loading to a background
    job check this first, so a typo fails at once).

    Raises:
        ModelLoadError: as `load_model` would for the same path.
    """
    _locate(source)


def model_context(handle: ModelHandle) -> int | None:
    """The longest sequence the model was built for (None when the config does not say)."""
    config = handle.model.config
    value = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return int(value) if value else None


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


def load_config(location: str, label: str, trust_remote_code: bool = False) -> Any:
    """The config of a checkpoint folder or hub id, or a `ModelLoadError` saying why not."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code)
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
        if _needs_remote_code(exc):
            raise _remote_code_error(label) from None
        # Unknown model_type values surface from AutoConfig as ValueError.
        from lsn_explorer.core.model.architectures import supported_families

        raise ModelLoadError(
            f"{label} has a model type transformers does not know: {_first_line(exc)}",
            f"supported families: {supported_families()}",
        ) from exc


def _needs_remote_code(exc: BaseException) -> bool:
    # transformers' refusal (dynamic_module_utils.resolve_trust_remote_code) names the option.
    return "trust_remote_code" in str(exc)


def _remote_code_error(label: str) -> ModelLoadError:
    return ModelLoadError(
        f"{label} needs Python code of its own to load (custom code in the checkpoint), "
        "and running it was not allowed",
        "read that code first; pass --trust-remote-code only for a checkpoint whose author you trust",
    )


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


def check_cpu_4bit_shapes(model: Any, label: str) -> None:
    """Raise a `ModelLoadError` naming the first 4-bit layer of `model` whose weight shape
    bitsandbytes' CPU kernels cannot run (see `CPU_4BIT_ROWS`), before a forward pass crashes."""
    from bitsandbytes.nn import Linear4bit

    bad = [
        (name, module.out_features, module.in_features, _blocksize(module))
        for name, module in model.named_modules()
        if isinstance(module, Linear4bit)
        and (module.in_features % _blocksize(module) or module.out_features % CPU_4BIT_ROWS)
    ]
    if not bad:
        return
    name, out_features, in_features, blocksize = bad[0]
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    raise ModelLoadError(
        f"{label} cannot run in 4-bit on CPU: layer {name} has a {out_features}×{in_features} weight{more}",
        f"load without --4bit; 4-bit NF4 on CPU needs layer inputs that are multiples of {blocksize} "
        f"and outputs that are multiples of {CPU_4BIT_ROWS}",
    )


def _blocksize(module: Any) -> int:
    """The 4-bit block size of a bitsandbytes layer (kept on its Params4bit weight)."""
    return int(getattr(module.weight, "blocksize"))


def bitsandbytes_available() -> bool:
    """Whether the bitsandbytes package can be imported (checked without importing it)."""
    return importlib.util.find_spec("bitsandbytes") is not None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ = ["ModelHandle", "Head", "load_model", "head_for", "DEMO_MODEL_DIR", "ASSETS_DIR", "LsnError"]
