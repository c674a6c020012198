"""The layer contract, read from the source (imports inside functions and under TYPE_CHECKING
count): dependencies point down only, there is no import cycle, nnsight has one user, and the
modules front ends import before torch loads stay torch-free.

    tui → workbench → jobs → core → session → errors      (cli and demo sit beside tui, on top)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "lsn_explorer"
# layer → the layers it must never import (by module prefix under lsn_explorer)
FORBIDDEN = {
    "errors": ["assets", "paths", "core", "session", "jobs", "workbench", "demo", "cli", "tui"],
    "session": ["core", "jobs", "workbench", "demo", "cli", "tui"],
    "core": ["jobs", "workbench", "demo", "cli", "tui"],
    "jobs": ["workbench", "demo", "cli", "tui"],
    "workbench": ["demo", "cli", "tui"],
    "demo": ["workbench", "cli", "tui"],
    "tui": ["cli"],
}
TORCH_FREE = ["core.vocab", "core.progress", "core.specs", "core.interventions.spec", "core.neurons.methods",
              "core.data.languages", "workbench.bench", "workbench.state", "workbench.views", "errors", "paths",
              "jobs.spec", "jobs.control", "jobs.progress", "jobs.evals", "workbench.jobs", "workbench.evals",
              "core.evals.grid", "core.evals.results", "core.finetune.config", "core.model.adapters",
              "jobs.finetunes", "workbench.finetunes"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Every module imported by `path` (absolute names), anywhere in it or at top level only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def internal_edges() -> dict[str, set[str]]:
    edges = {}
    for name, path in MODULES.items():
        targets = set()
        for imported in imports(path):
            while imported and imported not in MODULES:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and imported.startswith("lsn_explorer"):
                targets.add(imported)
        edges[name] = targets
    return edges


def layer(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


@pytest.mark.parametrize("lower", sorted(FORBIDDEN))
def test_lower_layers_never_import_upper_ones(lower):
    bad = [(src, dst) for src, targets in internal_edges().items() if layer(src) == lower
           for dst in targets if layer(dst) in FORBIDDEN[lower]]
    assert not bad, f"{lower} imports an upper layer: {bad}"


def test_the_package_has_no_import_cycle():
    edges = internal_edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    assert not cycles, cycles


def test_only_the_backend_imports_nnsight():
    users = sorted(name for name, path in MODULES.items() if any(m.split(".")[0] == "nnsight" for m in imports(path)))
    assert users == ["lsn_explorer.core.model.backend"]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_modules_front_ends_import_early_are_torch_free_at_top_level(module):
    top = imports(MODULES[f"lsn_explorer.{module}"], top_level_only=True)
    heavy = sorted(m for m in top if m.split(".")[0] in ("torch", "transformers", "nnsight", "textual"))
    assert not heavy, heavy
    internal = sorted(m for m in top if m in MODULES)
    for name in internal:  # and so is everything they import at top level
        assert not any(m.split(".")[0] == "torch" for m in imports(MODULES[name], top_level_only=True)), name


def test_no_module_is_too_long():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > 450}
    assert not long, long
