"""The layers and their import arrows (ARCHITECTURE.md), stated as a test that fails on a wrong arrow.

Three checks, each shown catching a planted case below:

1. **Layers.**  Every package imports only the layers listed for it in :data:`ALLOWED`: the
   contracts (``core``) nothing of ours; the command-line layer (``running``, and the
   ``python -m metarl_bench.<command>`` aliases) is imported by nothing but those aliases; the
   library imports no concrete family or agent; families import no agent.
2. **No circles between packages**, counting every import: module level, inside functions,
   and modules named by strings (``"module:attribute"`` lazy registrations, and the argument
   of ``importlib.import_module``).
3. **No circles between modules** among the imports that run when a module is imported
   (module level).  A lazy import inside a function is how a family defers its planners
   (``bayes_reference`` imports them on first use); it is an arrow of check 2 but not a
   circle of import order.  Imports under ``if TYPE_CHECKING:`` run nowhere and are not arrows.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Where each package of ours lives in the repository (envs/ and baselines/ install under metarl_bench).
FOLDERS = {"metarl_bench": ROOT / "metarl_bench", "metarl_bench.envs": ROOT / "envs",
           "metarl_bench.baselines": ROOT / "baselines"}  # fmt: skip
COMMANDS = ("run", "probe", "leaderboard", "report", "plots", "crosseval", "published")
CLI_ALIASES = {f"metarl_bench.{command}" for command in COMMANDS}

CORE, ACCEL, EVALUATION, RECORDS, REPORTING = "core", "accel", "evaluation", "records", "reporting"
PROBES, RUNNING, FAMILIES, AGENTS, API, ALIASES = "probes", "running", "families", "agents", "api", "aliases"
# Which layers each layer may import, besides itself.
ALLOWED: dict[str, set[str]] = {
    CORE: set(),
    ACCEL: {CORE},
    EVALUATION: {CORE, RECORDS},  # the evaluator returns the row's typed metrics
    RECORDS: {CORE},
    PROBES: {CORE, EVALUATION, RECORDS},
    REPORTING: {CORE, EVALUATION, RECORDS, PROBES},
    RUNNING: {CORE, ACCEL, EVALUATION, RECORDS, PROBES, REPORTING},
    API: {CORE, EVALUATION},  # metarl_bench/__init__.py: the public names
    ALIASES: {RUNNING},
    FAMILIES: {CORE, ACCEL},
    AGENTS: {CORE, ACCEL, EVALUATION, FAMILIES},
}


def layer_of(module: str) -> str | None:
    """The layer of a module name of ours (None: not ours)."""
    parts = module.split(".")
    if parts[0] != "metarl_bench":
        return "top-level " + parts[0] if parts[0] in ("envs", "baselines") else None
    if module in CLI_ALIASES:
        return ALIASES
    if len(parts) == 1:
        return API
    return {"envs": FAMILIES, "baselines": AGENTS}.get(parts[1], parts[1])


def module_name(path: Path, folders: dict[str, Path]) -> str:
    for package, folder in folders.items():
        if path.is_relative_to(folder):
            rel = path.relative_to(folder).with_suffix("").parts
            rel = rel[:-1] if rel[-1] == "__init__" else rel
            return ".".join((package, *rel))
    raise ValueError(path)


def package_of(module: str, modules: set[str]) -> str:
    """The package a module belongs to (a package is its own package)."""
    return module if module + ".__init__" in modules else module.rpartition(".")[0]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, module, at import time) for every import statement and module-naming string."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    typing_only = _type_checking_lines(tree)
    top_level = {id(n) for n in tree.body} | {id(c) for n in tree.body if isinstance(n, ast.If) for c in n.body}
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in typing_only:
            continue
        eager = id(node) in top_level
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, eager) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}", eager) for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            module, colon, attr = node.value.partition(":")  # "module:attribute": a lazy registration
            if colon and _dotted(module) and attr.isidentifier():
                found.append((node.lineno, module, False))
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module") and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _dotted(arg.value):
                found.append((node.lineno, arg.value, False))
    return found  # fmt: skip


def _dotted(text: str) -> bool:
    return "." in text and all(part.isidentifier() for part in text.split("."))


class Graph:
    """Our modules and the imports between them (an ``a.b.C`` import resolves to module ``a.b``)."""

    def __init__(self, folders: dict[str, Path] = FOLDERS):
        self.files = {module_name(p, folders): p for folder in folders.values() for p in sorted(folder.rglob("*.py"))}
        self.modules = set(self.files) | {m + ".__init__" for m, p in self.files.items() if p.name == "__init__.py"}
        self.edges: list[tuple[str, str, int, bool]] = []  # (importer, imported module, line, at import time)
        for module, path in self.files.items():
            for line, name, eager in imports(path):
                target = self.resolve(name)
                if target is not None and target != module:
                    self.edges.append((module, target, line, eager))

    def resolve(self, name: str) -> str | None:
        while name and name not in self.files:
            name = name.rpartition(".")[0]
        return name or None


def layer_violations(graph: Graph) -> list[str]:
    bad = []
    for module, target, line, _ in graph.edges:
        mine, theirs = layer_of(module), layer_of(target)
        if mine != theirs and theirs not in ALLOWED.get(mine, set()):
            bad.append(f"{graph.files[module].relative_to(ROOT)}:{line} imports {target} ({mine} -> {theirs})")
    for path in graph.files.values():
        for line, name, _ in imports(path):
            if layer_of(name) in ("top-level envs", "top-level baselines"):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}: install it as metarl_bench.*")
    return bad


def cycles(nodes: Iterable[str], arrows: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    succ: dict[str, set[str]] = {n: set() for n in nodes}
    for a, b in arrows:
        if a != b:
            succ.setdefault(a, set()).add(b)
            succ.setdefault(b, set())
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(succ[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return out


def package_cycles(graph: Graph) -> list[list[str]]:
    pkg = {m: package_of(m, graph.modules) for m in graph.files}
    return cycles(set(pkg.values()), [(pkg[a], pkg[b]) for a, b, _, _ in graph.edges])


def module_cycles(graph: Graph) -> list[list[str]]:
    return cycles(graph.files, [(a, b) for a, b, _, eager in graph.edges if eager])


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph()


def test_every_package_imports_only_the_layers_below_it(graph):
    assert layer_violations(graph) == []


def test_no_circle_between_packages(graph):
    assert package_cycles(graph) == []


def test_no_circle_between_modules_at_import_time(graph):
    assert module_cycles(graph) == []


def test_the_graph_sees_every_layer(graph):
    """A check that sees nothing passes on anything: the graph holds every layer and its arrows."""
    layers = {layer_of(m) for m in graph.files}
    assert layers >= {CORE, ACCEL, EVALUATION, RECORDS, REPORTING, PROBES, RUNNING, FAMILIES, AGENTS, API, ALIASES}
    assert any(layer_of(a) == RUNNING and layer_of(b) == REPORTING for a, b, _, _ in graph.edges)
    assert any(not eager for *_, eager in graph.edges)  # the lazy imports are read too


# ----------------------------------------------------------------------------- planted cases
def planted(tmp_path: Path, files: dict[str, str]) -> Graph:
    root = tmp_path / "metarl_bench"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        for parent in path.parent.relative_to(root).parents:
            (root / parent / "__init__.py").touch()
        (path.parent / "__init__.py").touch()
    return Graph({"metarl_bench": root})


def test_a_library_module_importing_the_command_line_is_caught(tmp_path, monkeypatch):
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    lazy = "def f():\n    from metarl_bench.running.options import CommandParser\n"
    graph = planted(tmp_path, {"running/options.py": "", "reporting/leaderboard.py": lazy})
    found = layer_violations(graph)
    assert len(found) == 1 and "reporting -> running" in found[0]


def test_a_core_module_naming_an_agent_in_a_string_is_caught(tmp_path, monkeypatch):
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    graph = planted(tmp_path, {"core/registry.py": 'LAZY = "metarl_bench.baselines.bayes:BayesAgent"\n',
                               "baselines/bayes.py": ""})  # fmt: skip
    found = layer_violations(graph)
    assert len(found) == 1 and "core -> agents" in found[0]


def test_a_circle_between_packages_is_caught_even_through_a_lazy_import(tmp_path):
    graph = planted(tmp_path, {
        "reporting/aggregate.py": "from metarl_bench.running import sweep\n",
        "running/sweep.py": "def f():\n    from metarl_bench.reporting import aggregate\n",
    })  # fmt: skip
    assert package_cycles(graph) == [["metarl_bench.reporting", "metarl_bench.running"]]
    assert module_cycles(graph) == []  # lazy: not a circle of import order


def test_a_circle_between_modules_is_caught(tmp_path):
    graph = planted(tmp_path, {
        "core/agent.py": "from metarl_bench.core.family import TaskFamily\n",
        "core/family.py": "from metarl_bench.core.reference import BayesReference\n",
        "core/reference.py": "from metarl_bench.core.agent import Agent\n",
    })  # fmt: skip
    circle = ["metarl_bench.core.agent", "metarl_bench.core.family", "metarl_bench.core.reference"]
    assert module_cycles(graph) == [circle]


def test_a_type_only_import_is_not_an_arrow(tmp_path):
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from metarl_bench.core.agent import Agent\n"
    graph = planted(tmp_path, {"core/agent.py": "from metarl_bench.core.family import X\n", "core/family.py": typed})
    assert module_cycles(graph) == [] and package_cycles(graph) == []
