"""The house of docs/architecture.md, enforced: each floor imports only the floors below it, no
surface imports another, no two modules import each other (function-level imports count), only
the set-up layer and the surfaces read Settings or the environment, SQL lives in knowledge/.

docs/architecture.md is the prose half of this file: change both together.
"""
from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import networkx as nx
import pytest

PKG = Path(__file__).resolve().parent.parent / "jobmedic"

# The floors, bottom up: unit -> the jobmedic units it may import (besides itself). A unit is a
# package (jobmedic/<name>/) or a top-level module (jobmedic/<name>.py).
_BELOW_AGENT = {"core", "knowledge", "ingest", "analyzers", "models", "engines", "reports", "tools"}
FLOORS: dict[str, set[str]] = {
    "core": set(),
    "knowledge": {"core"},
    "ingest": {"core", "knowledge"},
    "analyzers": {"core", "knowledge"},
    "models": {"core", "knowledge"},
    "engines": {"core", "knowledge", "models"},  # Parquet export, Dask (beside models)
    "reports": {"core", "knowledge", "analyzers"},
    "tools": {"core", "knowledge", "ingest", "analyzers", "models", "reports"},
    "live": set(_BELOW_AGENT),
    "agent": {"core", "knowledge", "analyzers", "reports", "tools"},
    # the set-up layer: configuration (settings) and what the surfaces share (app)
    "settings": {"core", "knowledge"},
    "app": _BELOW_AGENT | {"live", "agent", "settings"},
}
SURFACES = ("cli", "server", "tui", "demo")
for _s in SURFACES:
    FLOORS[_s] = _BELOW_AGENT | {"live", "agent", "settings", "app"}
# the roof: the `jobmedic` program (main) knows every surface; docgen documents it
FLOORS["main"] = set(FLOORS) - {"main"}
FLOORS["docgen"] = FLOORS["main"] | {"main"}
FLOORS["__main__"] = {"main"}
FLOORS["__init__"] = set()
# below the set-up layer nothing reads Settings, configuration files or the environment
BELOW_SETUP = sorted(_BELOW_AGENT | {"live", "agent"})

# Import cycles that still exist, each as the sorted module names of one strongly connected
# component. Empty is the goal; the test fails when a listed cycle is gone (remove it here) or
# a new one appears.
KNOWN_CYCLES: list[list[str]] = []


def _unit(module: str) -> str:
    """jobmedic.tools.base -> tools; jobmedic -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


@cache
def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = f
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


@cache
def _imports(module: str, typing_too: bool = True) -> frozenset[str]:
    """The jobmedic modules `module` imports anywhere in its body (functions included), each
    resolved to a module of the tree (`from pkg import sub` -> pkg.sub when sub is a module).
    Without `typing_too`, imports under `if TYPE_CHECKING:` are left out (they never run)."""
    mods = _modules()
    path = mods[module]
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()

    def add(name: str) -> None:
        while name not in mods and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in mods and name != module:
            out.add(name)

    def visit(node: ast.AST) -> None:
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, ast.If) and _is_type_checking(ch) and not typing_too:
                for stmt in ch.orelse:
                    visit_one(stmt)
            else:
                visit_one(ch)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "jobmedic":
                    add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[:None if is_pkg else -1]
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] == "jobmedic":
                for a in node.names:
                    add(f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod)
        visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return frozenset(out)


def _files(unit: str) -> list[Path]:
    return [f for m, f in sorted(_modules().items()) if _unit(m) == unit]


def test_every_unit_has_a_floor():
    units = {_unit(m) for m in _modules()}
    assert units <= set(FLOORS), f"place these in FLOORS (and docs/architecture.md): {units - set(FLOORS)}"


def test_architecture_page_names_every_floor():
    """docs/architecture.md describes each floor of FLOORS (its table names `unit/` or `unit.py`)."""
    text = (PKG.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [u for u in FLOORS if u not in ("__init__", "__main__")
               and f"`{u}/`" not in text and f"`{u}.py`" not in text]
    assert not missing, f"docs/architecture.md does not describe: {missing}"


@pytest.mark.parametrize("unit", sorted(FLOORS))
def test_unit_imports_only_below(unit):
    bad = sorted(f"{m} imports {t}" for m in _modules() if _unit(m) == unit
                 for t in _imports(m) if _unit(t) not in {unit, "__init__"} | FLOORS[unit])
    assert not bad, "\n".join(bad)


def test_no_surface_imports_another():
    """cli, server, tui and demo share jobmedic.app; none imports another (or the roof)."""
    bad = sorted(f"{m} imports {t}" for m in _modules() if _unit(m) in SURFACES
                 for t in _imports(m) if _unit(t) in (set(SURFACES) | {"main"}) - {_unit(m)})
    assert not bad, "\n".join(bad)


def import_cycles() -> list[list[str]]:
    """Strongly connected components (more than one module) of the import graph."""
    g = nx.DiGraph()
    for m in _modules():
        g.add_node(m)
        g.add_edges_from((m, t) for t in _imports(m, typing_too=False))
    return sorted(sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1)


def test_no_import_cycles():
    cycles = import_cycles()
    new = [c for c in cycles if c not in KNOWN_CYCLES]
    gone = [c for c in KNOWN_CYCLES if c not in cycles]
    assert not new, "import cycles (function-level imports count):\n" + "\n".join(map(str, new))
    assert not gone, f"these cycles are gone: remove them from KNOWN_CYCLES: {gone}"


def test_import_graph_sees_function_level_imports():
    """The graph would miss cycles if it missed imports inside functions."""
    src = _modules()["jobmedic.main.program"].read_text(encoding="utf-8")
    assert "    from jobmedic.server" in src
    assert "jobmedic.server" in _imports("jobmedic.main.program")


@pytest.mark.parametrize("unit", BELOW_SETUP)
def test_only_the_setup_layer_reads_settings_or_environment(unit):
    bad = []
    for f in _files(unit):
        src = f.read_text(encoding="utf-8")
        if "jobmedic.settings" in src or "os.environ" in src or "os.getenv" in src:
            bad.append(str(f.relative_to(PKG)))
    assert not bad, bad


def test_sql_only_in_knowledge():
    """SQL statements appear only in jobmedic/knowledge (the Store and its query modules)."""
    rx = re.compile(r"\b(SELECT\s+.+\s+FROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE)\b")
    bad = []
    for f in PKG.rglob("*.py"):
        if "knowledge" in f.parts:
            continue
        if rx.search(f.read_text(encoding="utf-8")):
            bad.append(str(f.relative_to(PKG)))
    assert not bad, bad


def test_modules_stay_small():
    big = [(str(f.relative_to(PKG)), n) for f in PKG.rglob("*.py")
           if (n := len(f.read_text(encoding="utf-8").splitlines())) > 450]
    assert not big, big
