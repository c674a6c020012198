"""The app paints before torch is imported: heavy libraries load in the model worker."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import asyncio, sys
from lsn_explorer.tui.app import create_app
assert "torch" not in sys.modules, "importing the app imported torch"

async def main():
    app = create_app(session="imports", root=sys.argv[1], autoload=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert "torch" not in sys.modules, "painting the app imported torch"
        assert "transformers" not in sys.modules and "nnsight" not in sys.modules
        app.load_model(None)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "torch" in sys.modules and "nnsight" in sys.modules
        print("loaded:", app.model_label)

asyncio.run(main())
"""


def test_app_imports_torch_only_in_the_model_worker(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "loaded: demo-model (Llama, 6 layers × 768 neurons" in done.stdout


def test_core_never_imports_textual():
    script = ("import sys, pkgutil, importlib, lsn_explorer.core as core\n"
              "for m in pkgutil.walk_packages(core.__path__, 'lsn_explorer.core.'): importlib.import_module(m.name)\n"
              "import lsn_explorer.session.store, lsn_explorer.cli\n"
              "print(sorted(k for k in sys.modules if k.split('.')[0] == 'textual'))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
