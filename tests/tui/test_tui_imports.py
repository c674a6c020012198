"""The app paints before torch is imported: heavy libraries load in the model worker. The tui's
import layering: panels, screens and widgets never import the app, and the tui has no import cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import lsn_explorer.tui
from lsn_explorer.tui.app import create_app
from lsn_explorer.tui.host import PanelHost

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


# -- layering: panels reach the app through PanelHost and messages, never by importing it --------
TUI = Path(lsn_explorer.tui.__file__).parent
APP = "lsn_explorer.tui.app"


def _module_name(path: Path) -> str:
    parts = path.relative_to(TUI.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """Every dotted name `path` imports, anywhere in the file (functions and TYPE_CHECKING blocks
    included): for `from a.b import c` both `a.b` and `a.b.c`, since `c` may be a module."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: climb from the importing module's package
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _tui_graph() -> dict[str, set[str]]:
    """Module → the tui modules it imports (a name is cut back to the tui module that holds it)."""
    modules = {_module_name(path): path for path in TUI.rglob("*.py")}
    graph = {}
    for module, path in modules.items():
        graph[module] = set()
        for name in _imported(path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                graph[module].add(name)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path that returns to its start, or [] when the graph has none
    (depth-first search: an edge back to a module still on the path closes a cycle)."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return []
        for target in sorted(graph.get(module, ())):
            found = visit(target, path + [module])
            if found:
                return found
        done.add(module)
        return []

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return []


def test_the_import_graph_is_read_right():
    graph = _tui_graph()
    assert "lsn_explorer.tui.panels.history" in graph[APP]
    assert "lsn_explorer.tui.panels.base" in graph["lsn_explorer.tui.panels.history"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


@pytest.mark.parametrize("folder", ["panels", "screens", "widgets"])
def test_panels_screens_and_widgets_never_import_the_app(folder):
    offenders = sorted(str(path.relative_to(TUI)) for path in (TUI / folder).rglob("*.py")
                       if any(name == APP or name.startswith(APP + ".") for name in _imported(path)))
    assert offenders == [], "type against lsn_explorer.tui.host.PanelHost instead"


def test_panels_never_import_sibling_panels():
    graph = _tui_graph()
    shared = {"lsn_explorer.tui.panels", "lsn_explorer.tui.panels.base"}
    for module, targets in graph.items():
        if module.startswith("lsn_explorer.tui.panels."):
            siblings = {t for t in targets if t.startswith("lsn_explorer.tui.panels")} - shared
            assert not siblings, f"{module} imports {sorted(siblings)}: post a message the app routes instead"


def test_the_tui_has_no_import_cycle():
    assert _cycle(_tui_graph()) == []


def test_the_app_is_what_panels_expect_of_their_host(tmp_path):
    assert isinstance(create_app(root=tmp_path, autoload=False), PanelHost)
