"""Security rules (issue 16), one test each: nothing is unpickled, a checkpoint's own code never
runs unless `--trust-remote-code` is given, an export writes only inside its folder, and session
names cannot reach outside the session store."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from lsn_explorer import cli
from lsn_explorer.core.model.loading import load_model
from lsn_explorer.core.neurons.neuron_set import NeuronSetError, load_neuron_file
from lsn_explorer.errors import ModelLoadError
from lsn_explorer.session.export import export_session, file_stem
from lsn_explorer.session.store import Session, SessionError

PACKAGE = Path(__file__).resolve().parents[2] / "lsn_explorer"


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def calls(name: str) -> list[tuple[Path, ast.Call]]:
    """Every call of `name` (an attribute or plain name) in the package's source."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == name:
                    found.append((path, node))
    return found


# -- never unpickle --------------------------------------------------------------------------------
class _Payload:
    """Unpickling this runs `touch` on the marker path: what a hostile .pth file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pth_neuron_file_with_a_pickled_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "neurons.pth"
    torch.save([[torch.tensor([1, 2])], _Payload(marker)], path)
    with pytest.raises(NeuronSetError, match="not a readable .pth neuron file"):
        load_neuron_file(path, n_layers=1, d_ff=8)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the control: unpickled, the file does run code
    assert marker.exists()


def test_every_torch_load_in_the_package_passes_weights_only_true_and_nothing_imports_pickle():
    loads = calls("load")
    torch_loads = [(p, c) for p, c in loads if isinstance(c.func, ast.Attribute)
                   and isinstance(c.func.value, ast.Name) and c.func.value.id == "torch"]
    assert torch_loads, "expected the .pth neuron import to call torch.load"
    for path, call in torch_loads:
        flags = {k.arg: k.value for k in call.keywords}
        assert isinstance(flags.get("weights_only"), ast.Constant) and flags["weights_only"].value is True, path
    picklers = {"pickle", "dill", "cloudpickle", "joblib"}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not modules & picklers, path
        # From a pickler, only exception classes (to catch a failed serialization): no loads, no dumps.
        taken = {(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 for alias in node.names}
        assert all(name.endswith("Error") for module, name in taken if module in picklers), path


# -- trust_remote_code -----------------------------------------------------------------------------
@pytest.fixture()
def remote_code_checkpoint(tmp_path):
    """A checkpoint whose config needs code of its own; importing that code touches a marker."""
    folder = tmp_path / "custom"
    folder.mkdir()
    marker = tmp_path / "code-ran"
    (folder / "config.json").write_text(json.dumps({
        "model_type": "lsn-custom-test", "architectures": ["CustomForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_custom.CustomConfig",
                     "AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"}}), encoding="utf-8")
    (folder / "configuration_custom.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "from transformers import PretrainedConfig\n\n"
        "class CustomConfig(PretrainedConfig):\n    model_type = 'lsn-custom-test'\n", encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"")
    return folder, marker


def test_a_checkpoint_with_its_own_code_is_refused_even_when_the_terminal_says_yes(remote_code_checkpoint,
                                                                                   monkeypatch):
    folder, marker = remote_code_checkpoint
    # transformers asks on the terminal when trust_remote_code is left at None; a "y" runs the code.
    monkeypatch.setattr("builtins.input", lambda *args: "y")
    with pytest.raises(ModelLoadError, match="needs Python code of its own") as info:
        load_model(folder, device="cpu")
    assert "--trust-remote-code" in info.value.hint
    assert not marker.exists()


def test_the_cli_refuses_remote_code_with_a_one_line_error_and_passes_the_flag_on(capsys, remote_code_checkpoint,
                                                                                  monkeypatch):
    folder, marker = remote_code_checkpoint
    code, _, err = run(capsys, "model", "info", "--model", folder)
    assert code == 2 and err.startswith("error: ") and "needs Python code of its own" in err
    assert "hint: " in err and "--trust-remote-code" in err and not marker.exists()

    seen = {}

    def fake_load_model(source, **kwargs):
        seen.update(kwargs)
        raise ModelLoadError("stop here", "test")

    monkeypatch.setattr("lsn_explorer.core.model.loading.load_model", fake_load_model)
    assert run(capsys, "model", "info", "--model", folder, "--trust-remote-code")[0] == 2
    assert seen["trust_remote_code"] is True
    assert run(capsys, "model", "info", "--model", folder)[0] == 2 and seen["trust_remote_code"] is False


def test_a_command_that_cannot_pass_the_flag_on_refuses_it(capsys, tmp_path):
    code, _, err = run(capsys, "generate", "--prompt", "hi", "--trust-remote-code", "--session", "t",
                       "--sessions-dir", tmp_path)
    assert code == 2 and err.startswith("error: --trust-remote-code is not supported by `generate` yet\nhint: ")


@pytest.mark.parametrize("argv, command", [
    (["stats", "--langs", "en", "--tokens", "100", "--detach"], "stats"),
    (["eval", "run", "--task", "ppl", "--langs", "en"], "eval"),
    (["finetune", "run", "--train-lang", "en", "--neurons", "lape:en"], "finetune"),
])
def test_commands_whose_loader_cannot_pass_the_flag_refuse_it(capsys, tmp_path, argv, command):
    """A job's worker and the evaluation / fine-tune loaders do not carry the flag yet: refused
    at once, not dropped (the worker would then fail asking for the flag the user gave)."""
    code, _, err = run(capsys, *argv, "--trust-remote-code", "--session", "t", "--sessions-dir", tmp_path)
    assert code == 2 and f"error: --trust-remote-code is not supported by `{command}` yet\nhint: " in err, err
    assert not (tmp_path / "t").exists() or not list((tmp_path / "t").glob("jobs/*"))


def test_no_source_turns_trust_remote_code_on_by_itself():
    for name in ("from_pretrained", "load_model"):
        for path, call in calls(name):
            for keyword in call.keywords:
                if keyword.arg == "trust_remote_code":
                    assert not (isinstance(keyword.value, ast.Constant) and keyword.value.value is True), path


# -- export stays inside its folder ----------------------------------------------------------------
HOSTILE = ["../../escaped", "/tmp/absolute", "..", "a/b", "a_b", ".hidden", "x\\y", "nul\x00byte"]


def test_export_writes_only_inside_the_target_folder_whatever_the_record_names(tmp_path):
    with Session.open("s", tmp_path / "sessions") as session:
        for name in HOSTILE:
            session.add("neuron_set", name, {"set": {"neurons": {"en": [[0, 1]]}, "scores": {"en": [0.5]}}}, {})
        digest = session.put_tensors({"mean": torch.zeros(2, 3)})
        session.add("stats", "../../lang", {"artifact": digest, "site": "a", "mode": "../../mode"}, {})
        out = tmp_path / "deep" / "out"
        written = export_session(session, out)
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(out)
               and not p.is_relative_to(tmp_path / "sessions")]
    assert outside == []
    assert all(p.resolve().is_relative_to(out.resolve()) and p.is_file() for p in written)
    assert len({p.name for p in written if p.parent.name == "neuron_sets"}) == 2 * len(HOSTILE)  # no name lost
    assert (out / "neuron_sets" / "a_b.json").is_file()  # plain names are kept as they are


def test_export_refuses_a_subfolder_that_links_outside(tmp_path):
    with Session.open("s", tmp_path / "sessions") as session:
        session.add("neuron_set", "zh", {"set": {"neurons": {"zh": [[0, 1]]}}}, {})
        out = tmp_path / "out"
        out.mkdir()
        (tmp_path / "elsewhere").mkdir()
        (out / "neuron_sets").symlink_to(tmp_path / "elsewhere")
        with pytest.raises(SessionError, match="outside"):
            export_session(session, out)
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.parametrize("name, kept", [("lape-zh", True), ("zh.v2", True), ("../x", False), ("a/b", False),
                                        ("", False), (".x", False)])
def test_file_stem(name, kept):
    stem = file_stem(name)
    assert (stem == name) is kept and "/" not in stem and not stem.startswith(".") and stem


# -- session names ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["", "..", "../up", "a/b", "/abs", ".hidden", " lead", "a b", "tab\t",
                                  "new\nline", "nul\x00", "_x", "-rf", "x" * 101])
def test_bad_session_names_are_refused_before_anything_is_created(tmp_path, name):
    root = tmp_path / "store" / "sessions"
    with pytest.raises(SessionError, match="invalid session name") as info:
        Session.open(name, root)
    assert "letters, digits" in info.value.hint
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("name", ["demo", "zh-lape", "run_2.v1", "démo", "中文"])
def test_plain_session_names_are_accepted(tmp_path, name):
    Session.open(name, tmp_path).close()
    assert (tmp_path / name / "session.sqlite").is_file()


def test_a_bad_session_name_on_the_command_line_is_a_one_line_error(capsys, tmp_path):
    code, out, err = run(capsys, "session", "show", "../etc", "--sessions-dir", tmp_path)
    assert code == 2 and out == "" and err.startswith("error: invalid session name '../etc'\nhint: ")
