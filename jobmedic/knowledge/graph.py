"""The knowledge graph: a networkx view of the store for related-entity questions.

Entities are nodes (``node:gpu-03``, ``image:repo/app:v1``, ``project:ml``, ``user:ann``,
``type:oom``, ``template:12``, ``solution:oom.raise_memory``); edges carry a relation
(failed_on, ran_with, instance_of, had, fixed_by) and a total count (fixed_by also successes).
The counts per project live beside the graph in one table (u, v, project, n, ok), so a scoped
question sums only the projects it may see and never names another project.

The graph is cached per store and kept up to date incrementally: only failure events with an
id above the last one seen are read (one narrow scan), aggregated with pandas and added;
fixed_by edges are re-read from the small solutions tables only when outcomes changed.

`graph_for` serves the persisted graph (graphstore.py: the same counts kept in tables of the
store, so a fresh process reads no events); this in-memory graph is the reference its answers
are tested against, and the fallback for a store this process may not write.
"""
from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobmedic.knowledge.graphstore import RELATIONS, GraphQuestions, PersistedGraph

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from jobmedic.knowledge.store import Store

Scope = Sequence[str] | None
_COLS = ["u", "v", "rel", "project", "n", "ok"]
_CACHE: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def key(kind: str, name: Any) -> str:
    return f"{kind}:{name}"


def _names(s: pd.Series) -> pd.Series:
    """Entity names as text (template ids 7.0 -> '7')."""
    if s.dtype.kind == "f":
        return s.astype("int64").astype(str)
    return s.astype(str)


class KnowledgeGraph(GraphQuestions):
    """A directed graph of failure entities with per-project edge counts beside it."""

    def __init__(self) -> None:
        import networkx as nx
        import pandas as pd

        self.g = nx.DiGraph()
        self.event_id = 0  # failure events up to this id are in the graph
        self.outcomes_version: tuple[int, int] | None = None
        self.builds = 0  # how many times events were aggregated (tests check incrementality)
        self._proj = pd.DataFrame({c: [] for c in _COLS})
        self._index: dict[str, np.ndarray] | None = None  # entity -> rows of _proj
        self._per_entity: dict[str, dict[str, dict]] = {}  # entity -> project -> (u, v) -> counts
        self._where: dict[tuple, dict[str, Any]] = {}  # answers of where(), until the next change

    # -- building ----------------------------------------------------------------------------
    def refresh(self, store: Store) -> KnowledgeGraph:
        """Add failure events and outcomes that are new since the last refresh."""
        import pandas as pd

        hi, out_id, out_ver = store.remedy_versions()
        if hi > self.event_id:
            ev = store.graph_event_frame(self.event_id, hi)
            ev["project"] = ev["project"].fillna("")
            parts = []
            for rel, (ka, ca), (kb, cb) in RELATIONS:
                cols = list(dict.fromkeys([ca, cb, "project"]))
                sub = ev[cols]
                sub = sub[sub[ca].notna() & sub[cb].notna() & (sub[ca] != "") & (sub[cb] != "")]
                agg = sub.groupby(cols, sort=False).size().reset_index(name="n")
                parts.append(pd.DataFrame({"u": ka + ":" + _names(agg[ca]), "v": kb + ":" + _names(agg[cb]),
                                           "rel": rel, "project": agg["project"], "n": agg["n"], "ok": 0}))
            t = ev[ev["failure_type"].notna()].groupby(["failure_type", "project"], sort=False).size()
            t = t.reset_index(name="n")
            tk = "type:" + t["failure_type"].astype(str)
            parts.append(pd.DataFrame({"u": tk, "v": tk, "rel": "self", "project": t["project"],
                                       "n": t["n"], "ok": 0}))
            self._merge(pd.concat(parts, ignore_index=True))
            self.event_id = hi
            self.builds += 1
        if (out_id, out_ver) != self.outcomes_version:
            rows = store.graph_solution_rows()
            fixed = pd.DataFrame(rows, columns=["t", "s", "project", "n", "ok"])
            old = self._proj[self._proj["rel"] == "fixed_by"]
            if len(old):
                self.g.remove_edges_from(set(zip(old["u"], old["v"])))
                self._proj = self._proj[self._proj["rel"] != "fixed_by"].reset_index(drop=True)
                self._index = None
                self._per_entity.clear()
                self._where.clear()
            self._merge(pd.DataFrame({"u": "type:" + fixed["t"].astype(str),
                                      "v": "solution:" + fixed["s"].astype(str), "rel": "fixed_by",
                                      "project": fixed["project"].fillna(""), "n": fixed["n"],
                                      "ok": fixed["ok"].fillna(0)}))
            self.outcomes_version = (out_id, out_ver)
        return self

    def _merge(self, delta: pd.DataFrame) -> None:
        """Add per-project rows: totals onto graph edges (type counts onto type nodes)."""
        import pandas as pd

        if delta.empty:
            return
        self._proj = pd.concat([self._proj, delta], ignore_index=True)
        self._index = None
        self._per_entity.clear()
        self._where.clear()
        tot = delta.groupby(["u", "v", "rel"], sort=False)[["n", "ok"]].sum().reset_index()
        ents = pd.unique(pd.concat([tot["u"], tot["v"]]))
        new = [e for e in ents if e not in self.g]
        self.g.add_nodes_from((e, {"kind": e.partition(":")[0], "name": e.partition(":")[2]})
                              for e in new)
        add = []
        fresh = self.g.number_of_edges() == 0  # the first build: every edge is new
        for u, v, rel, n, ok in tot.itertuples(index=False, name=None):
            if rel == "self":
                d = self.g.nodes[u]
                d["count"] = d.get("count", 0) + int(n)
                continue
            data = None if fresh else self.g.get_edge_data(u, v)
            if data is None:
                add.append((u, v, {"rel": rel, "count": int(n), "successes": int(ok)}))
            else:
                data["count"] += int(n)
                data["successes"] += int(ok)
        self.g.add_edges_from(add)

    # -- scope -------------------------------------------------------------------------------
    def _scoped(self, k: str, scope: Sequence[str]) -> dict[tuple[str, str], tuple[int, int]]:
        """(u, v) -> (count, successes) of the rows touching entity k in the scope's projects.

        The first scoped question about an entity groups its rows by project (cached until the
        graph changes); later ones, whatever the scope, only add up small dicts."""
        import numpy as np
        import pandas as pd

        per = self._per_entity.get(k)
        if per is None:
            if self._index is None:
                both = pd.concat([self._proj["u"], self._proj["v"]], ignore_index=True)
                pos = np.concatenate([np.arange(len(self._proj))] * 2)
                self._index = {e: np.unique(pos[ix]) for e, ix in both.groupby(both).indices.items()}
            rows = self._proj.iloc[self._index.get(k, np.array([], dtype=int))]
            agg = rows.groupby(["project", "u", "v"], sort=False)[["n", "ok"]].sum()
            per = {}
            for (p, u, v), (n, ok) in zip(agg.index, agg.to_numpy()):
                per.setdefault(p, {})[(u, v)] = (int(n), int(ok))
            self._per_entity[k] = per
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for p in set(scope):
            for uv, (n, ok) in per.get(p, {}).items():
                a, b = out.get(uv, (0, 0))
                out[uv] = (a + n, b + ok)
        return out

    def _edges(self, k: str, scope: Scope) -> list[tuple[str, str, str, int, int]]:
        """(u, v, rel, count, successes) of the edges at k, counted within the scope."""
        if k not in self.g:
            return []
        raw = list(self.g.out_edges(k, data=True)) + list(self.g.in_edges(k, data=True))
        if scope is None:
            return [(u, v, d["rel"], d["count"], d["successes"]) for u, v, d in raw]
        seen = self._scoped(k, scope)
        return [(u, v, d["rel"], *seen[(u, v)]) for u, v, d in raw if (u, v) in seen]

    def _failures(self, k: str, scope: Scope) -> int:
        if k not in self.g:
            return 0
        if scope is None:
            return self.g.nodes[k].get("count", 0)
        return self._scoped(k, scope).get((k, k), (0, 0))[0]

    # -- questions (related, where: GraphQuestions) --------------------------------------------
    def count(self, kind_a: str, a: Any, kind_b: str, b: Any, scope: Scope = None) -> int:
        u, v = key(kind_a, a), key(kind_b, b)
        data = self.g.get_edge_data(u, v)
        if data is None:
            return 0
        return data["count"] if scope is None else self._scoped(u, scope).get((u, v), (0, 0))[0]


def graph_for(store: Store) -> PersistedGraph | KnowledgeGraph:
    """The store's graph, refreshed with what was added since the last call: the persisted
    graph (graphstore: tables in the store, so a fresh process reads no events), or on a
    store this process cannot write, this in-memory graph built from the events."""
    with _LOCK:
        kg = _CACHE.get(store)
        if isinstance(kg, KnowledgeGraph):
            return kg.refresh(store)
        if kg is None:
            kg = _CACHE[store] = PersistedGraph(store)
        try:
            return kg.refresh()
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc) and "read-only" not in str(exc):
                raise
            mem = _CACHE[store] = KnowledgeGraph()
            return mem.refresh(store)
