"""The unit contracts of docs/architecture.md that a registry can check: each tool describes
every request field and declares its own facts (writes, cacheable, windowed) in one place."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from jobmedic.tools import CACHEABLE_ACTIONS, TOOLS, WINDOWED_ACTIONS, WRITE_ACTIONS, tool_named
from jobmedic.tools.base import WindowedRequest

PKG = Path(__file__).resolve().parent.parent / "jobmedic"
NAMES = {t.name for t in TOOLS}


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_every_request_field_is_described(tool):
    missing = [n for n, f in tool.request_model.model_fields.items()
               if not (f.description or "").strip()]
    assert not missing, f"{tool.name}: fields without a description: {missing}"


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_tool_declaration_matches_its_request_model(tool):
    assert tool.request_model.model_fields["action"].default == tool.name
    assert tool_named(tool.name) is tool
    assert tool.description.strip()
    # windowed <=> the request takes a window (lookback_days, as_of)
    assert tool.windowed == issubclass(tool.request_model, WindowedRequest)
    assert not (tool.writes and tool.cacheable), "a write is never served from a cache"


def test_registry_names_are_unique_and_facts_derived():
    assert len(NAMES) == len(TOOLS)
    assert WRITE_ACTIONS == {t.name for t in TOOLS if t.writes}
    assert CACHEABLE_ACTIONS == {t.name for t in TOOLS if t.cacheable}
    assert WINDOWED_ACTIONS == {t.name for t in TOOLS if t.windowed}


def _action_lists(source: str, label: str) -> list[str]:
    """Module-level constants holding two or more action names (a hand-kept fact list)."""
    out = []
    for stmt in ast.parse(source).body:
        value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
        if value is None:
            continue
        for node in ast.walk(value):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
                elts = node.keys if isinstance(node, ast.Dict) else node.elts
                hits = [e.value for e in elts if isinstance(e, ast.Constant) and e.value in NAMES]
                if len(hits) >= 2:
                    out.append(f"{label}:{node.lineno} {hits}")
    return out


def test_no_module_keeps_its_own_list_of_actions():
    """Facts about actions are read from the Tool declarations (jobmedic/tools/__init__.py:
    WRITE_ACTIONS, CACHEABLE_ACTIONS, WINDOWED_ACTIONS, tool_named), never copied."""
    found = [hit for f in sorted(PKG.rglob("*.py")) if f != PKG / "tools" / "__init__.py"
             for hit in _action_lists(f.read_text(encoding="utf-8"), str(f.relative_to(PKG)))]
    assert not found, "\n".join(found)


def test_the_list_finder_finds_a_list():
    src = 'READS = ("analyze", "stats")\nX = {"predict": 1, "diagnose": 2}\nY = ("analyze",)\n'
    assert _action_lists(src, "m.py") == ["m.py:1 ['analyze', 'stats']",
                                          "m.py:2 ['predict', 'diagnose']"]
    assert _action_lists((PKG / "tools" / "__init__.py").read_text(encoding="utf-8"), "t") == []
