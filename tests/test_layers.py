"""The layers and their import arrows (ARCHITECTURE.md): the core knows no concrete family,
agent or planner; families know only the core; agents know the core and the families'
belief models.  The test reads every import statement (also those inside functions) and
every string that names a module, so a lazy import cannot hide an arrow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE, FAMILIES, AGENTS = "metarl_bench", "metarl_bench.envs", "metarl_bench.baselines"
FOLDERS = {CORE: ROOT / "metarl_bench", FAMILIES: ROOT / "envs", AGENTS: ROOT / "baselines"}
# Which of our layers each layer may import (besides itself).
ALLOWED = {CORE: {CORE}, FAMILIES: {CORE, FAMILIES}, AGENTS: {CORE, FAMILIES, AGENTS}}


def layer_of(module: str) -> str | None:
    """The layer a module name belongs to (None: not ours); top-level envs/baselines are never ours."""
    for layer in (FAMILIES, AGENTS):
        if module == layer or module.startswith(layer + "."):
            return layer
    if module == CORE or module.startswith(CORE + "."):
        return CORE
    if module.split(".")[0] in ("envs", "baselines"):
        return "top-level " + module.split(".")[0]
    return None


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            # "module:attribute" strings (lazy registrations) and importlib.import_module("...")
            text = node.value.split(":")[0]
            if text.replace(".", "").replace("_", "").isalnum() and "." in text:
                found.append((node.lineno, text))
    return found


def violations(layer: str) -> list[str]:
    bad = []
    for path in sorted(FOLDERS[layer].rglob("*.py")):
        for lineno, module in imported_modules(path):
            target = layer_of(module)
            if target is not None and target not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(ROOT)}:{lineno} imports {module} ({target})")
    return bad


@pytest.mark.parametrize("layer", [CORE, FAMILIES, AGENTS])
def test_imports_point_only_inward(layer):
    assert violations(layer) == []


def test_the_check_sees_a_lazy_import(tmp_path, monkeypatch):
    """The check can fail: a core module with an import inside a function is reported."""
    core = tmp_path / "metarl_bench"
    core.mkdir()
    lazy = 'def f():\n    from metarl_bench.baselines.bayes import X\n    return "metarl_bench.envs.bandits.family:Y"\n'
    (core / "bad.py").write_text(lazy)
    monkeypatch.setitem(FOLDERS, CORE, core)
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    found = violations(CORE)
    assert len(found) == 2 and "metarl_bench.baselines.bayes" in found[0] and "metarl_bench.envs.bandits" in found[1]
