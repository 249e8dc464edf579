"""The knowledge graph: a networkx view of the store for related-entity questions.

Entities are nodes (``node:gpu-03``, ``image:repo/app:v1``, ``project:ml``, ``user:ann``,
``type:oom``, ``template:12``, ``solution:oom.raise_memory``); edges carry a relation
(failed_on, ran_with, instance_of, had, fixed_by), a total count and the count per project, so a
scoped question sums only the projects it may see. The graph is cached per store and kept up to
date incrementally: only failure events with an id above the last one seen are aggregated and
added (a million-job store is not re-read on every call); fixed_by edges are re-read, from the
small solutions tables, only when outcomes changed.
"""
from __future__ import annotations

import heapq
import threading
import weakref
from typing import Any, Sequence

import networkx as nx

Scope = Sequence[str] | None
#: relation, (kind, column) of the source, (kind, column) of the target, over failure events.
RELATIONS = (
    ("failed_on", ("type", "failure_type"), ("node", "node_name")),
    ("ran_with", ("type", "failure_type"), ("image", "container_image")),
    ("instance_of", ("template", "template_id"), ("type", "failure_type")),
    ("failed_on", ("template", "template_id"), ("node", "node_name")),
    ("failed_on", ("image", "container_image"), ("node", "node_name")),
    ("had", ("project", "project"), ("type", "failure_type")),
    ("had", ("user", "user"), ("type", "failure_type")),
)
_CACHE: "weakref.WeakKeyDictionary[Any, KnowledgeGraph]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _plain(v: Any) -> Any:
    """numpy / pandas scalars as plain Python (template ids stay ints, not '7.0')."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v.item() if hasattr(v, "item") else v


def key(kind: str, name: Any) -> str:
    return f"{kind}:{name}"


class KnowledgeGraph:
    """A directed graph of failure entities with per-project edge counts."""

    def __init__(self) -> None:
        self.g = nx.DiGraph()
        self.event_id = 0  # failure events up to this id are in the graph
        self.outcomes_version: tuple[int, int] | None = None
        self.builds = 0  # how many times events were aggregated (tests check incrementality)
        self._where: dict[tuple, dict[str, Any]] = {}  # answers of where(), until the next change

    # -- building ----------------------------------------------------------------------------
    def refresh(self, store: Any) -> "KnowledgeGraph":
        """Add failure events and outcomes that are new since the last refresh."""
        hi, out_id, out_ver = store.remedy_versions()
        if hi > self.event_id:
            ev = store.graph_event_frame(self.event_id, hi)
            ev["project"] = ev["project"].fillna("")
            for rel, (ka, ca), (kb, cb) in RELATIONS:
                cols = list(dict.fromkeys([ca, cb, "project"]))
                sub = ev[cols]
                sub = sub[sub[ca].notna() & sub[cb].notna() & (sub[ca] != "") & (sub[cb] != "")]
                ia, ib, ip = cols.index(ca), cols.index(cb), cols.index("project")
                for k, n in sub.groupby(cols, sort=False).size().items():
                    self._add(key(ka, _plain(k[ia])), key(kb, _plain(k[ib])), rel, k[ip], int(n))
            for (ftype, project), n in ev.groupby(["failure_type", "project"], sort=False).size().items():
                self._count_node(key("type", ftype), project, int(n))
            self.event_id = hi
            self.builds += 1
            self._where.clear()
        if (out_id, out_ver) != self.outcomes_version:
            self.g.remove_edges_from([(u, v) for u, v, r in self.g.edges(data="rel")
                                      if r == "fixed_by"])
            for ftype, sol, project, n, ok in store.graph_solution_rows():
                self._add(key("type", ftype), key("solution", sol), "fixed_by", project, n,
                          int(ok or 0))
            self.outcomes_version = (out_id, out_ver)
            self._where.clear()
        return self

    def _count_node(self, k: str, project: str | None, n: int) -> None:
        if k not in self.g:
            self.g.add_node(k, kind="type", name=k.partition(":")[2])
        d = self.g.nodes[k]
        d.setdefault("by_project", {})
        d["count"] = d.get("count", 0) + n
        d["successes"] = 0
        prev = d["by_project"].get(project or "", (0, 0))
        d["by_project"][project or ""] = (prev[0] + n, 0)

    def _add(self, u: str, v: str, rel: str, project: str | None, n: int, ok: int = 0) -> None:
        for x in (u, v):
            if x not in self.g:
                kind, _, name = x.partition(":")
                self.g.add_node(x, kind=kind, name=name)
        data = self.g.get_edge_data(u, v)
        if data is None:
            data = {"rel": rel, "count": 0, "successes": 0, "by_project": {}}
            self.g.add_edge(u, v, **data)
            data = self.g.edges[u, v]
        data["count"] += n
        data["successes"] += ok
        bp = data["by_project"]
        p = project or ""
        prev = bp.get(p, (0, 0))
        bp[p] = (prev[0] + n, prev[1] + ok)

    # -- questions ---------------------------------------------------------------------------
    @staticmethod
    def _visible(data: dict[str, Any], scope: Scope) -> tuple[int, int]:
        if scope is None:
            return data["count"], data["successes"]
        allowed = set(scope)
        n = ok = 0
        for p, (c, s) in data["by_project"].items():
            if p in allowed:
                n, ok = n + c, ok + s
        return n, ok

    def _in_scope(self, node: str, scope: Scope) -> bool:
        kind, _, name = node.partition(":")
        return scope is None or kind != "project" or name in set(scope)

    def related(self, kind: str, name: Any, scope: Scope = None, limit: int = 10
                ) -> list[dict[str, Any]]:
        """Entities linked to one entity (both directions), by count visible in the scope."""
        k = key(kind, name)
        if k not in self.g or not self._in_scope(k, scope):
            return []
        out = []
        for u, v, data in list(self.g.out_edges(k, data=True)) + list(self.g.in_edges(k, data=True)):
            other = v if u == k else u
            if not self._in_scope(other, scope):
                continue
            n, ok = self._visible(data, scope)
            if n:
                kind_o, _, name_o = other.partition(":")
                out.append({"kind": kind_o, "name": name_o, "relation": data["rel"],
                            "direction": "out" if u == k else "in", "count": n,
                            **({"successes": ok} if data["rel"] == "fixed_by" else {})})
        out.sort(key=lambda r: (-r["count"], r["kind"], r["name"]))
        return out[:limit]

    def where(self, failure_type: str, scope: Scope = None, limit: int = 5) -> dict[str, Any]:
        """Where failures of a type happen, in scope: total and the top nodes, images, projects
        and templates (cached until the graph changes)."""
        ck = (failure_type, None if scope is None else tuple(sorted(scope)), limit)
        hit = self._where.get(ck)
        if hit is not None:
            return hit
        k = key("type", failure_type)
        node = self.g.nodes.get(k, {})
        out: dict[str, Any] = {"failures": self._visible(node, scope)[0] if node.get("count") else 0}
        found: dict[str, list[tuple[int, str]]] = {"node": [], "image": [], "project": [], "template": []}
        if k in self.g:
            edges = list(self.g.out_edges(k, data=True)) + list(self.g.in_edges(k, data=True))
            for u, v, data in edges:
                other = v if u == k else u
                kind, _, name = other.partition(":")
                if kind not in found or not self._in_scope(other, scope):
                    continue
                n = data["count"] if scope is None else self._visible(data, scope)[0]
                if n:
                    found[kind].append((n, name))
        for kind, items in found.items():
            top = heapq.nsmallest(limit, items, key=lambda x: (-x[0], x[1]))
            out[kind + "s"] = [{"name": name, "count": n} for n, name in top]
        self._where[ck] = out
        return out

    def count(self, kind_a: str, a: Any, kind_b: str, b: Any, scope: Scope = None) -> int:
        data = self.g.get_edge_data(key(kind_a, a), key(kind_b, b))
        return 0 if data is None else self._visible(data, scope)[0]


def graph_for(store: Any) -> KnowledgeGraph:
    """The cached graph of a store, refreshed with what was added since the last call."""
    with _LOCK:
        kg = _CACHE.get(store)
        if kg is None:
            kg = _CACHE[store] = KnowledgeGraph()
        return kg.refresh(store)
