"""The layering of DESIGN.md: a package imports only from packages to its left in the flow,
and only the composition roots read Settings or the environment."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "jobmedic"
# package -> jobmedic packages it may import (besides itself)
ALLOWED = {
    "core": set(),
    "knowledge": {"core"},
    "ingest": {"core", "knowledge"},
    "analyzers": {"core", "knowledge"},
    "models": {"core", "knowledge"},
    "reports": {"core", "knowledge", "analyzers"},
    "tools": {"core", "knowledge", "analyzers", "models", "reports", "ingest"},
    "agent": {"core", "knowledge", "analyzers", "reports", "tools"},
}
ROOTS = {"cli", "server", "tui", "demo", "settings", "__main__", "docgen"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jobmedic"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("jobmedic")}
    return out


def _files(pkg: str):
    return sorted((PKG / pkg).rglob("*.py"))


@pytest.mark.parametrize("pkg", sorted(ALLOWED))
def test_package_imports_only_to_its_left(pkg):
    bad = []
    for f in _files(pkg):
        for mod in _imports(f):
            parts = mod.split(".")
            target = parts[1] if len(parts) > 1 else ""
            if target and target != pkg and target not in ALLOWED[pkg]:
                bad.append(f"{f.relative_to(PKG)} imports {mod}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("pkg", sorted(ALLOWED))
def test_only_roots_read_settings_or_environment(pkg):
    bad = []
    for f in _files(pkg):
        src = f.read_text(encoding="utf-8")
        if "jobmedic.settings" in src or "os.environ" in src or "os.getenv" in src:
            bad.append(str(f.relative_to(PKG)))
    assert not bad, bad


def test_sql_only_in_knowledge():
    """SQL statements appear only in jobmedic/knowledge (the Store and its query mixins)."""
    import re

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
