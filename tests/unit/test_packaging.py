"""An installed wheel carries its data: built from the checkout, installed into a scratch venv and
run from elsewhere, it finds the demo model, corpus, task samples and language table inside its
own site-packages, byte for byte the repository's `assets/` (the defect: `pip install .` then
`lsn-explorer demo run` said "model path …/site-packages/assets/demo-model does not exist").

The wheel is built from a copy of the checkout, so this test never writes build/ or *.egg-info
into the working tree. The scratch venv gets its dependencies (torch, transformers, ...) from
this venv's site-packages through a .pth line, which adds the folder to sys.path without running
the .pth files in it, so the editable install of the checkout stays out of the scratch venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Build outputs and environments of the checkout; sessions/ is copied (its README only) so the
# check that the wheel holds nothing outside lsn_explorer/ and assets/ sees a real sessions/ folder.
NOT_COPIED = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache"}

SCRIPT = """
import json, sys
import lsn_explorer, lsn_explorer.assets as assets
from lsn_explorer.core.data.corpora import DEMO_CORPUS_DIR, available_languages
from lsn_explorer.core.data.languages import LANGUAGES_FILE, get_language
from lsn_explorer.core.model.loading import DEMO_MODEL_DIR
from lsn_explorer.core.tasks.files import DEMO_TASKS_DIR, task_file
print(json.dumps({
    "package": lsn_explorer.__file__,
    "assets": str(assets.assets_dir()),
    "reexports": [str(p) for p in (DEMO_MODEL_DIR, DEMO_CORPUS_DIR, DEMO_TASKS_DIR, LANGUAGES_FILE)],
    "located": [str(p) for p in (assets.DEMO_MODEL_DIR, assets.DEMO_CORPUS_DIR, assets.DEMO_TASKS_DIR,
                                 assets.LANGUAGES_TOML)],
    "langs": available_languages(),
    "xnli_zh": str(task_file("xnli", "zh")),
    "hindi": get_language("hi").name,
}))
"""


def _copy_checkout(dest: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n in NOT_COPIED or n.endswith(".egg-info")}
        if Path(folder) == ROOT / "sessions":
            skipped |= {n for n in names if n != "README.md"}
        return skipped

    shutil.copytree(ROOT, dest, ignore=ignore)


def _run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{argv}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, copied source, scratch venv python, its site-packages, a neutral cwd, env)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src, dist, venv, cwd = tmp / "src", tmp / "dist", tmp / "venv", tmp / "elsewhere"
    _copy_checkout(src)
    cwd.mkdir()
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir",
         "--quiet", "-w", dist, src, cwd=src)
    (wheel,) = dist.glob("lsn_explorer-*.whl")
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=cwd)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet",
         wheel, cwd=cwd)
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=cwd).stdout.strip())
    (site / "_lsn_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["HF_HUB_OFFLINE"] = "1"
    return wheel, src, python, site, cwd, env


def test_wheel_holds_only_the_package_and_its_data(installed):
    wheel, src, *_ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert all(n.startswith(("lsn_explorer/", "lsn_explorer-")) for n in names), names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    # Every module of the checkout is in the wheel (the package list in pyproject.toml is explicit).
    modules = {p.relative_to(src).as_posix() for p in (src / "lsn_explorer").rglob("*.py")}
    assert modules <= set(names), sorted(modules - set(names))
    data = {p.relative_to(src / "assets").as_posix() for p in (src / "assets").rglob("*") if p.is_file()}
    assert {f"lsn_explorer/_assets/{d}" for d in data} <= set(names)
    assert "lsn_explorer/tui/app.tcss" in names  # the app's stylesheet, loaded by path at start-up


def test_installed_package_finds_its_data_in_site_packages(installed):
    _, _, python, site, cwd, env = installed
    found = json.loads(_run(python, "-c", SCRIPT, cwd=cwd, env=env).stdout)
    assert Path(found["package"]).parent == site / "lsn_explorer"  # not the editable checkout
    assets = Path(found["assets"])
    assert assets == site / "lsn_explorer" / "_assets"
    assert found["reexports"] == found["located"]
    assert [Path(p) for p in found["located"]] == [
        assets / "demo-model", assets / "corpus", assets / "tasks", assets / "languages.toml"]
    assert Path(found["xnli_zh"]).is_relative_to(assets)
    assert found["langs"] and found["hindi"] == "Hindi"

    repo = ROOT / "assets"
    expected = ["languages.toml"] + [f"demo-model/{n}" for n in ("config.json", "model.safetensors", "tokenizer.json")]
    expected += [p.relative_to(repo).as_posix() for folder in ("corpus", "tasks") for p in (repo / folder).rglob("*")
                 if p.is_file()]
    assert len(expected) > 10
    for name in expected:
        assert (assets / name).read_bytes() == (repo / name).read_bytes(), name


def test_installed_cli_runs_the_demo(installed):
    _, _, python, site, cwd, env = installed
    done = _run(python.parent / "lsn-explorer", "demo", "run", "--max-new-tokens", "2", cwd=cwd, env=env)
    demo_model = site / "lsn_explorer" / "_assets" / "demo-model"
    assert f"{demo_model}: Llama, 6 layers" in done.stdout, done.stdout
    assert "[zh] Chinese" in done.stdout and "continuation:" in done.stdout


def test_checkout_on_sys_path_without_install_uses_its_assets_folder(tmp_path):
    # -S: no site-packages, so no editable-install hook maps lsn_explorer._assets.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHOME"} | {"PYTHONPATH": str(ROOT)}
    script = "import sys, lsn_explorer.assets as a; print(a.assets_dir(), 'lsn_explorer._assets' in sys.modules)"
    done = _run(sys.executable, "-S", "-c", script, cwd=tmp_path, env=env)
    assert done.stdout.split() == [str(ROOT / "assets"), "False"]


def test_editable_install_maps_the_assets_package_to_the_checkout():
    import importlib.util

    from lsn_explorer import assets

    spec = importlib.util.find_spec(assets.ASSETS_PACKAGE)
    assert spec is not None and spec.origin == str(ROOT / "assets" / "__init__.py"), (
        "the editable install predates the assets mapping: pip install -c constraints.txt -e . --no-deps")
    assert assets.assets_dir() == ROOT / "assets"
    assert (assets.DEMO_MODEL_DIR / "config.json").is_file() and assets.LANGUAGES_TOML.is_file()
