"""The persisted knowledge graph answers exactly as a graph freshly built in memory from the
events (graph.KnowledgeGraph), on a random store, after an incremental load, after events are
changed or deleted; a new process reads it without aggregating; a read-only store falls back."""
from __future__ import annotations

import random

import pytest

from jobmedic.knowledge.graph import KnowledgeGraph, graph_for
from jobmedic.knowledge.graphstore import PersistedGraph
from jobmedic.knowledge.migrations import FAILURE_EVENT_COLUMNS
from jobmedic.knowledge.store import Store

TYPES = ["oom", "timeout", "gpu_error", "app_error", "nccl_error"]
PROJECTS = ["ml", "hpc", "bio", None]


def events(rng: random.Random, lo: int, hi: int) -> list[tuple]:
    out = []
    for i in range(lo, hi):
        ev = {"cluster": "c", "job_id": str(i), "job_name": f"j{i}",
              "project": rng.choice(PROJECTS), "user": rng.choice(["ann", "bob", "cy", None]),
              "failure_type": rng.choice(TYPES), "blame": "job", "timestamp": 1000 + i,
              "node_name": rng.choice(["n1", "n2", "n3", "n4", "", None]),
              "container_image": rng.choice(["pt:1", "tf:2", None, ""]),
              "template_id": rng.choice([1, 2, 3, None]), "source": "test", "resolved": 0}
        out.append(tuple(ev.get(c) for c in FAILURE_EVENT_COLUMNS) + (f"job:c:{i}",))
    return out


def add_outcomes(store: Store, rng: random.Random, n: int) -> None:
    store.seed_solutions([(t, f"{t}.fix{k}", None) for t in TYPES for k in range(2)])
    ids = list(store.solution_rowids().values())
    store.add_outcomes([(rng.choice(ids), "c", str(i), None, rng.choice(PROJECTS),
                         rng.randint(0, 1), "me", 5, None, 0, None, f"o{i}", None, 1, None)
                        for i in range(n)])


SCOPES = [None, ["ml"], ["hpc", "bio"], [], ["nobody"]]


def answers(kg) -> dict:
    out = {}
    for scope in SCOPES:
        s = None if scope is None else tuple(scope)
        for t in [*TYPES, "segfault"]:
            out[("where", t, s)] = kg.where(t, scope, limit=3)
            out[("related", "type", t, s)] = kg.related("type", t, scope, limit=50)
        for kind, names in [("node", ["n1", "n2", "n4"]), ("image", ["pt:1", "tf:2"]),
                            ("project", ["ml", "hpc"]), ("user", ["ann", "cy"]),
                            ("template", [1, 3]), ("solution", ["oom.fix0", "gpu_error.fix1"])]:
            for name in names:
                out[("related", kind, name, s)] = kg.related(kind, name, scope, limit=50)
        out[("count", s)] = [kg.count("type", t, "node", n, scope) for t in TYPES
                             for n in ("n1", "n2", "n3")]
    return out


def same_as_fresh(store: Store, pg: PersistedGraph) -> None:
    fresh = answers(KnowledgeGraph().refresh(store))
    got = answers(pg.refresh())
    assert got == fresh
    assert any(v for v in fresh.values())  # the comparison is not between empty answers


@pytest.fixture
def rng():
    return random.Random(16)


def test_persisted_equals_fresh_then_incremental(file_store, rng):
    file_store.add_failure_events(events(rng, 0, 400))
    add_outcomes(file_store, rng, 60)
    pg = PersistedGraph(file_store)
    same_as_fresh(file_store, pg)
    assert pg.builds == 1
    file_store.add_failure_events(events(rng, 400, 550))  # an incremental load
    add_outcomes(file_store, rng, 20)
    same_as_fresh(file_store, pg)
    assert pg.builds == 2
    assert file_store.conn.execute(
        "SELECT value FROM graph_state WHERE key = 'event_id'").fetchone()[0] == 550


def test_changed_events_are_applied(file_store, rng):
    file_store.add_failure_events(events(rng, 0, 300))
    pg = PersistedGraph(file_store).refresh()
    # a later record of the same jobs re-derives their events (type, node, template) ...
    file_store.add_failure_events(events(random.Random(99), 0, 100))
    # ... and events learn their job's project
    file_store.conn.execute("UPDATE failure_events SET project = 'bio', user = 'dan' "
                            "WHERE project IS NULL AND id > 150")
    assert file_store.conn.execute("SELECT COUNT(*) FROM graph_pending").fetchone()[0] > 0
    same_as_fresh(file_store, pg)
    assert file_store.conn.execute("SELECT COUNT(*) FROM graph_pending").fetchone()[0] == 0
    assert file_store.conn.execute("SELECT COUNT(*) FROM graph_edges WHERE n <= 0").fetchone()[0] == 0


def test_deleted_events_rebuild(file_store, rng):
    file_store.add_failure_events(events(rng, 0, 200))
    pg = PersistedGraph(file_store).refresh()
    file_store.conn.execute("DELETE FROM failure_events WHERE id % 3 = 0")
    same_as_fresh(file_store, pg)
    file_store.conn.execute("DELETE FROM failure_events WHERE id > 150")  # ids below the mark
    file_store.add_failure_events(events(rng, 1000, 1010))
    same_as_fresh(file_store, pg)


def test_a_new_process_reads_without_aggregating(tmp_path, rng):
    path = tmp_path / "s.db"
    with Store(path) as s:
        s.add_failure_events(events(rng, 0, 300))
        before = answers(PersistedGraph(s).refresh())
    with Store(path) as s:
        pg = PersistedGraph(s).refresh()
        assert pg.builds == 0
        assert answers(pg) == before


def test_graph_for_serves_the_persisted_graph_and_falls_back_when_read_only(tmp_path, rng):
    path = tmp_path / "s.db"
    with Store(path) as s:
        s.add_failure_events(events(rng, 0, 100))
        assert isinstance(graph_for(s), PersistedGraph)
        s.add_failure_events(events(rng, 100, 120))
    with Store(path) as s:
        s.conn.execute("PRAGMA query_only = ON")  # the new events are not counted yet
        kg = graph_for(s)
        assert isinstance(kg, KnowledgeGraph)
        fallback = answers(kg)
    with Store(path) as s:
        assert answers(PersistedGraph(s).refresh()) == fallback
