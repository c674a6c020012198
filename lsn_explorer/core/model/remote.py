"""Running a model's traces elsewhere: on NDIF (`--remote`), or through the same serialization
round trip here (`--remote local`, a dry run).

NDIF, the National Deep Inference Fabric, keeps large models loaded on its GPUs and runs the
nnsight traces users send it; the weights never leave it. Loading for NDIF therefore builds the
model on the meta device (config and tokenizer are all that is downloaded) and checks everything
it can before any work starts, in this order: the model is a hub id, an API key is configured
(before anything touches the network), the architecture is in the table, NDIF answers, the hub
resolves the id, and NDIF runs that model. Each failure is a one-line `ModelLoadError`.

What cannot run remotely is refused here, in one place, for the CLI and for core callers alike.
The traces themselves are routed in `backend` (the only module that imports nnsight).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsn_explorer.core.model.architectures import architecture_for, check_paths, d_ff, n_layers
from lsn_explorer.core.model.loading import Remote, check_source, head_for, load_config, load_model
from lsn_explorer.errors import ModelLoadError, first_line

if TYPE_CHECKING:
    from lsn_explorer.core.model.loading import ModelHandle

REMOTES: tuple[Remote, ...] = ("ndif", "local")
KEY_HINT = ("get a key at https://ndif.us, then `export NDIF_API_KEY=KEY` or store it once with `nnsight login`; "
            "`--remote local` (the dry run) needs none")
STATUS_HINT = "NDIF's list of running models: python -c 'import nnsight; print(nnsight.status())'"
# Seconds to wait for NDIF's /status: connecting, then reading (nnsight's own status() uses 5 and 30).
STATUS_TIMEOUT = (10.0, 30.0)


def check_remote(remote: Remote | None, *, four_bit: bool = False, dtype: str = "auto", device: str = "auto",
                 device_map: str | None = None, max_memory: Any = None, adapter: str | None = None,
                 trust_remote_code: bool = False) -> None:
    """Refuse the loading options a remote run cannot honour (nothing when `remote` is None).

    The dry run refuses the same as NDIF, so that a command that passes it passes on NDIF too.

    Raises:
        ModelLoadError: naming the first option that does not go with `--remote`.
    """
    if remote is None:
        return
    if remote not in REMOTES:
        raise ModelLoadError(f"unknown --remote {remote!r}", "use --remote (NDIF) or --remote local (dry run)")
    deployed = "NDIF runs the model as it deployed it, in its precision, on its GPUs"
    conflicts = [
        (four_bit, "--4bit", deployed),
        (dtype != "auto", f"--dtype {dtype}", deployed),
        (device != "auto", f"--device {device}", deployed),
        (device_map is not None or bool(max_memory), "--device-map / --max-memory", deployed),
        (adapter is not None, "--adapter", "NDIF runs the base model; a session's fine-tuned adapters run here only"),
        (trust_remote_code, "--trust-remote-code",
         "NDIF decides which checkpoint code it runs; models that need their own code run here only"),
    ]
    for given, flag, why in conflicts:
        if given:
            raise ModelLoadError(f"--remote does not go with {flag}", f"{why}: leave out {flag} or --remote")


def load_remote(source: str | None, remote: Remote, *, dtype: str = "auto", device: str = "auto",
                four_bit: bool = False, trust_remote_code: bool = False) -> ModelHandle:
    """A `ModelHandle` whose traces run on NDIF (`remote="ndif"`) or through the dry run ("local").

    For "local" the model loads here as usual; only its traces take the round trip. For "ndif"
    see the module docstring.

    Raises:
        ModelLoadError: an option `check_remote` refuses, or any failure listed above.
    """
    check_remote(remote, four_bit=four_bit, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
    if remote == "local":
        handle = load_model(source, dtype=dtype, device=device)
        handle.remote = "local"
        return handle
    return _load_ndif(source)


def check_hub_id(source: str | None) -> str:
    """`source` when it can name a model NDIF serves: a hub id, not the demo model or a folder.

    Raises:
        ModelLoadError: the demo model, a local folder, or text that is not a hub id.
    """
    dry_run = "the dry run `--remote local` works with any model"
    if source is None:
        raise ModelLoadError("--remote needs a Hugging Face model id (--model ORG/NAME)",
                             f"NDIF serves hub models by id, not the bundled demo model; {dry_run}")
    if Path(source).expanduser().exists():
        raise ModelLoadError(f"--remote needs a Hugging Face model id, not the local folder {source}",
                             f"NDIF serves hub models by id only, from its own copy; {dry_run}")
    check_source(source)  # hub-id syntax
    return source


def _load_ndif(source: str | None) -> ModelHandle:
    from lsn_explorer.core.model.backend import ndif_account, remote_envoy, remote_model_key
    from lsn_explorer.core.model.loading import ModelHandle

    repo = check_hub_id(source)
    host, key = ndif_account()
    if key is None:
        raise ModelLoadError("--remote needs an NDIF API key", KEY_HINT)
    config = load_config(repo, repo)  # from the hub or its local cache; errors say which
    arch = architecture_for(config)
    if head_for(config) != "lm":
        raise ModelLoadError(f"{repo} is a sequence classifier; --remote runs causal LMs only",
                             "run the classifier here, without --remote")
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(repo)
        envoy, module = remote_envoy(repo, tokenizer)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"could not build {repo} from its config: {first_line(exc)}",
                             "check the id; the config and tokenizer come from the hub (or its cache)") from exc
    check_paths(module, arch)
    deployments = _ndif_status(host, key)
    import httpx

    try:
        model_key = remote_model_key(envoy)  # asks the hub for the canonical id
    except (OSError, ValueError, httpx.HTTPError) as exc:  # huggingface_hub raises both OSError and httpx errors
        raise _hub_error(repo, exc) from None
    canonical = _key_repo(model_key, repo)
    if not _running(deployments, canonical):
        running = sorted({d.get("repo_id", "?") for d in deployments.values() if d.get("application_state") == "RUNNING"})
        shown = ", ".join(running[:6]) + (f" and {len(running) - 6} more" if len(running) > 6 else "")
        raise ModelLoadError(f"{canonical} is not running on NDIF now",
                             f"running now: {shown or 'none'}; pick one with --model ({STATUS_HINT})")
    tokenizer.padding_side = "left"  # as load_model does: decoder batches pad on the left
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    n_layers(config), d_ff(config, arch)  # both must be readable from the config, as for a local model
    return ModelHandle(model=module, tokenizer=tokenizer, arch=arch, source=repo, dtype="ndif", traced=envoy,
                       remote="ndif")


def _ndif_status(host: str, key: str) -> dict[str, dict[str, Any]]:
    """NDIF's deployments (its `/status`), or a `ModelLoadError` saying why NDIF did not answer."""
    import httpx

    try:
        response = httpx.get(f"{host.rstrip('/')}/status", headers={"ndif-api-key": key},
                             timeout=httpx.Timeout(STATUS_TIMEOUT[0], read=STATUS_TIMEOUT[1]))
    except (httpx.HTTPError, OSError) as exc:
        raise ModelLoadError(f"cannot reach NDIF at {host}: {first_line(exc)}",
                             "check the network (and NDIF_HOST, if set); --remote local runs without NDIF") from None
    if response.status_code in (401, 403):
        raise ModelLoadError(f"NDIF refused the API key (HTTP {response.status_code})", KEY_HINT)
    if response.status_code != 200:
        raise ModelLoadError(f"NDIF at {host} answered HTTP {response.status_code}",
                             "NDIF may be down or redeploying: try again later (news at https://discuss.ndif.us)")
    try:
        deployments = response.json().get("deployments", {})
    except (ValueError, AttributeError):
        deployments = None
    if not isinstance(deployments, dict):
        raise ModelLoadError(f"{host} did not answer like NDIF (its /status is not NDIF's)",
                             "check NDIF_HOST, or unset it to use NDIF itself")
    return {str(name): value for name, value in deployments.items() if isinstance(value, dict)}


def _running(deployments: dict[str, dict[str, Any]], repo: str) -> bool:
    """Whether NDIF runs `repo` (its canonical id) as a text-generation deployment now."""
    return any(d.get("repo_id") == repo and d.get("application_state") == "RUNNING"
               and d.get("task") in (None, "text-generation") for d in deployments.values())


def _key_repo(model_key: str, fallback: str) -> str:
    """The canonical hub id inside an nnsight model key (`module.Class:{"repo_id": ...}`)."""
    try:
        return str(json.loads(model_key.partition(":")[2]).get("repo_id") or fallback)
    except (ValueError, AttributeError):
        return fallback


def _hub_error(repo: str, exc: BaseException) -> ModelLoadError:
    from huggingface_hub.errors import OfflineModeIsEnabled, RepositoryNotFoundError

    if isinstance(exc, OfflineModeIsEnabled):
        return ModelLoadError(f"--remote asks the Hugging Face hub which model {repo} is, and HF_HUB_OFFLINE is set",
                              "unset HF_HUB_OFFLINE for remote runs (config and tokenizer may still come from the cache)")
    if isinstance(exc, RepositoryNotFoundError):
        return ModelLoadError(f"{repo} is not a model on the Hugging Face hub (or it is gated)",
                              "check the id; for a gated model log in with `hf auth login`")
    return ModelLoadError(f"cannot reach the Hugging Face hub to resolve {repo}: {first_line(exc)}",
                          "check the network, then run the command again")

