"""Where the bundled data lives: the demo model, the demo corpus, the task samples, the language
table. Every module finds them here, never by path arithmetic from its own `__file__` (which
points into `site-packages/` once the package is installed from a wheel, where no `assets/` is).

The data stays in `assets/` at the top of the repository (the project layout) and ships as the
package `lsn_explorer._assets`: pyproject.toml maps that package name to the `assets/` folder and
lists its files as package data. The name cannot be `lsn_explorer.assets`: that is this module,
and a module and a package of one name cannot sit side by side. `importlib.resources` then finds
it the same way everywhere: in an installed wheel at `site-packages/lsn_explorer/_assets/`, in an
editable install through setuptools' import hook, which maps the package to `assets/`.

A source tree put on `sys.path` without installing (or an editable install made before the
mapping existed) cannot import `lsn_explorer._assets`; then the `assets/` folder beside the
package is used. Nothing else lives here, and nothing heavy is imported: the CLI and the TUI
read these paths at start-up.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from lsn_explorer.errors import LsnError

ASSETS_PACKAGE = "lsn_explorer._assets"
_CHECKOUT_ASSETS = Path(__file__).resolve().parent.parent / "assets"


def assets_dir() -> Path:
    """The folder that holds the bundled data, as a real directory.

    Raises:
        LsnError: the data is missing, or only reachable inside an archive (a zip import), where
            transformers and tokenizers cannot read a checkpoint from.
    """
    try:
        root = resources.files(ASSETS_PACKAGE)
    except ModuleNotFoundError:
        root = _CHECKOUT_ASSETS
    if not isinstance(root, Path):
        raise LsnError(
            f"lsn-explorer's bundled data is inside an archive ({root}), not on the file system",
            "install the package unpacked (pip install lsn-explorer), not as a zip",
        )
    if not root.is_dir():
        raise LsnError(
            f"lsn-explorer's bundled data is missing (looked in {root})",
            "reinstall the package, or run from a checkout that has the assets/ folder",
        )
    return root


ASSETS_DIR = assets_dir()
DEMO_MODEL_DIR = ASSETS_DIR / "demo-model"  # the demo checkpoint (`lsn-explorer demo build`)
DEMO_CORPUS_DIR = ASSETS_DIR / "corpus"  # parallel <lang>.txt files
DEMO_TASKS_DIR = ASSETS_DIR / "tasks"  # XNLI / XQuAD / MKQA samples in the benchmarks' formats
LANGUAGES_TOML = ASSETS_DIR / "languages.toml"  # the language table

__all__ = [
    "ASSETS_PACKAGE", "ASSETS_DIR", "DEMO_MODEL_DIR", "DEMO_CORPUS_DIR", "DEMO_TASKS_DIR",
    "LANGUAGES_TOML", "assets_dir",
]
