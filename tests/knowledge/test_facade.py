"""The Store facade: one object over focused query families, with no import cycle."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

from jobmedic.knowledge.db import Queries
from jobmedic.knowledge.store import Store

KNOWLEDGE = Path(__file__).resolve().parents[2] / "jobmedic" / "knowledge"
FAMILIES = ("loads", "facts", "vocab", "stats", "features", "remedies", "sessions", "ownership")


def test_every_public_family_method_is_a_store_method():
    store = Store()
    missing = []
    for attr in FAMILIES:
        family = getattr(store, attr)
        assert isinstance(family, Queries)
        assert family.db is store._db  # one connection, shared (composition)
        for name, fn in inspect.getmembers(type(family), inspect.isfunction):
            if name.startswith("_") or name == "transaction":
                continue
            if getattr(Store, name, None) is None:
                missing.append(f"{attr}.{name}")
            else:
                assert Store.__dict__[name].__wrapped__ is fn, name
    assert not missing, missing


def test_delegation_reaches_the_family_and_keeps_the_docstring():
    store = Store()
    assert store.table_counts() == store.facts.table_counts()
    assert Store.window_totals.__doc__ == type(store.stats).window_totals.__doc__


def test_no_query_family_imports_the_store():
    """The families import the core (db.py), never the facade that composes them."""
    bad = []
    for name in ("db", "loads", "facts", "vocab", "stats_queries", "feature_queries", "remedies",
                 "sessions"):
        f = KNOWLEDGE / f"{name}.py"
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "jobmedic.knowledge.store":
                bad.append(f.name)
    assert not bad, bad
