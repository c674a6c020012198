"""Training checkpoints: everything a killed run needs to continue with the same optimizer steps.

A checkpoint is a folder `step-NNNNNN/` in the run's folder (`<session>/finetune/<name>-<key>/`):
`trainable.safetensors` (the LoRA matrices and a classifier's head), `optimizer.safetensors`
(AdamW's moments and step counts, the RNG states) and `state.json` (the step, the scheduler, the
loss history, the tokens seen). It is written into a temporary folder and renamed into place, so
a kill -9 or a full disk leaves either the whole checkpoint or none. No pickle anywhere.
`atomic_folder` is also how finished adapters are written (`adapters.py`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from lsn_explorer.core.finetune.config import FinetuneError

KEEP = 2  # checkpoints kept per run: the newest, and one before it in case the newest is damaged
STATE = "state.json"


def atomic_folder(target: Path, write: Callable[[Path], None]) -> None:
    """Create the folder `target` by `write`-ing into a temporary sibling, then renaming it.

    Raises:
        OSError: as raised while writing (the temporary folder is removed); `target` is untouched.
    """
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".tmp-{target.name}-"))
    try:
        write(tmp)
        for path in tmp.iterdir():
            _fsync(path)
        if target.exists():  # the same content written before (content-hashed names), or a stale copy
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """One safetensors file (contiguous CPU copies: shared storage is not allowed there)."""
    from safetensors.torch import save_file

    save_file({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}, str(path))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def save_checkpoint(run_dir: Path, step: int, trainable: dict[str, torch.Tensor], optimizer: Any,
                    names: list[str], state: dict[str, Any]) -> Path:
    """Write the checkpoint of optimizer step `step` atomically, then drop all but the newest `KEEP`.

    Args:
        trainable: the trained parameters by name.
        optimizer: the AdamW whose single param group holds the parameters in `names` order.
        state: JSON data (scheduler state, losses, tokens ...); `step` is added.

    Raises:
        FinetuneError: the disk is full or the folder cannot be written (nothing half-written stays).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / f"step-{step:06d}"
    moments, groups = _optimizer_tensors(optimizer, names)

    def write(folder: Path) -> None:
        save_tensors(trainable, folder / "trainable.safetensors")
        save_tensors(moments | _rng_tensors(), folder / "optimizer.safetensors")
        text = json.dumps(state | {"step": step, "param_groups": groups}, indent=1)
        (folder / STATE).write_text(text + "\n", encoding="utf-8")

    try:
        atomic_folder(target, write)
    except OSError as exc:
        from lsn_explorer.paths import describe_os_error

        last = latest_step(run_dir)
        raise FinetuneError(f"could not write the checkpoint of step {step} in {run_dir}: {exc.strerror or exc}",
                            describe_os_error(exc).hint + (f"; a resumed run continues from step {last}" if last
                                                           else "; nothing was stored")) from None
    for old in checkpoints(run_dir)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def checkpoints(run_dir: Path) -> list[Path]:
    """The complete checkpoints of a run, oldest first (temporary folders are not listed)."""
    if not run_dir.is_dir():
        return []
    return sorted(p for p in run_dir.glob("step-*") if p.is_dir() and (p / STATE).is_file())


def latest_step(run_dir: Path) -> int:
    found = checkpoints(run_dir)
    return int(found[-1].name.removeprefix("step-")) if found else 0


def load_checkpoint(run_dir: Path, trainable: dict[str, torch.Tensor], optimizer: Any, names: list[str],
                    warn: Callable[[str], None] | None = None) -> dict[str, Any] | None:
    """Restore the newest readable checkpoint into `trainable` and `optimizer` (and the RNG);
    returns its state (with `step`), or None when there is none. A damaged checkpoint is
    skipped for the one before it (with a warning)."""
    for folder in reversed(checkpoints(run_dir)):
        try:
            state = json.loads((folder / STATE).read_text(encoding="utf-8"))
            weights = load_tensors(folder / "trainable.safetensors")
            moments = load_tensors(folder / "optimizer.safetensors")
            if set(weights) != set(trainable):
                raise ValueError("its parameters are not this run's")
        except (OSError, ValueError, KeyError, RuntimeError) as exc:  # safetensors raises several kinds
            if warn is not None:
                warn(f"checkpoint {folder.name} is unreadable ({type(exc).__name__}: {exc}); trying an older one")
            continue
        with torch.no_grad():
            for name, param in trainable.items():
                param.copy_(weights[name].to(param.device, param.dtype))
        _restore_optimizer(optimizer, names, moments, state["param_groups"], trainable)
        _restore_rng(moments)
        return state
    return None


def _optimizer_tensors(optimizer: Any, names: list[str]) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    saved = optimizer.state_dict()
    tensors = {}
    for index, name in enumerate(names):
        for key, value in saved["state"].get(index, {}).items():
            tensors[f"state.{name}.{key}"] = torch.as_tensor(value)
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in group.items() if k != "params"}
              for group in saved["param_groups"]]
    return tensors, groups


def _restore_optimizer(optimizer: Any, names: list[str], tensors: dict[str, torch.Tensor],
                       groups: list[dict[str, Any]], trainable: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for index, name in enumerate(names):
        prefix = f"state.{name}."
        found = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
        if found:
            device = trainable[name].device
            state[index] = {k: v if k == "step" else v.to(device) for k, v in found.items()}
    current = optimizer.state_dict()["param_groups"]
    restored = [group | {"params": live["params"], "betas": tuple(group.get("betas", live.get("betas")))}
                for group, live in zip(groups, current)]
    optimizer.load_state_dict({"state": state, "param_groups": restored})


def _rng_tensors() -> dict[str, torch.Tensor]:
    tensors = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors |= {f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    return tensors


def _restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    if "rng.cpu" in tensors:
        torch.set_rng_state(tensors["rng.cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
