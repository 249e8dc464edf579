"""The knowledge graph: entities and edges from failure events and outcomes, scoped questions,
and incremental refresh (new rows only)."""
from __future__ import annotations

from jobmedic.knowledge.graph import KnowledgeGraph, graph_for
from jobmedic.knowledge.migrations import FAILURE_EVENT_COLUMNS


def event(i, **kw):
    ev = {"cluster": "c", "job_id": str(i), "job_name": f"j{i}", "project": "ml", "user": "ann",
          "failure_type": "gpu_error", "blame": "cluster", "timestamp": 1000 + i,
          "node_name": "gpu-03", "container_image": "pt:1", "template_id": 7, "source": "test",
          "resolved": 0}
    ev.update(kw)
    return tuple(ev.get(c) for c in FAILURE_EVENT_COLUMNS) + (f"k{i}",)


def test_related_and_scope(store):
    store.add_failure_events([event(i) for i in range(5)] + [
        event(10, project="secret", user="zed", failure_type="oom", node_name="gpu-03",
              container_image="other:2", template_id=9)])
    kg = KnowledgeGraph().refresh(store)
    rel = kg.related("node", "gpu-03")
    assert {"kind": "type", "name": "gpu_error", "relation": "failed_on", "direction": "in",
            "count": 5} in rel
    assert any(r["name"] == "oom" for r in rel)
    scoped = kg.related("node", "gpu-03", scope=["ml"])
    assert all(r["name"] not in ("oom", "other:2", "9") for r in scoped)
    assert kg.related("project", "secret", scope=["ml"]) == []
    w = kg.where("gpu_error", scope=["ml"])
    assert w["failures"] == 5 and w["nodes"] == [{"name": "gpu-03", "count": 5}]
    assert kg.where("oom", scope=["ml"])["failures"] == 0
    assert kg.count("image", "pt:1", "node", "gpu-03") == 5


def test_incremental_refresh_adds_only_new_rows(store):
    store.add_failure_events([event(i) for i in range(3)])
    kg = graph_for(store)
    assert kg.builds == 1 and kg.count("type", "gpu_error", "node", "gpu-03") == 3
    assert graph_for(store) is kg and kg.builds == 1  # nothing new: no re-aggregation
    store.add_failure_events([event(3), event(4, node_name="gpu-04")])
    kg2 = graph_for(store)
    assert kg2 is kg and kg.builds == 2
    assert kg.count("type", "gpu_error", "node", "gpu-03") == 4
    assert kg.count("type", "gpu_error", "node", "gpu-04") == 1
    assert kg.where("gpu_error")["failures"] == 5


def test_fixed_by_edges_follow_outcomes(store):
    store.add_failure_events([event(1)])
    store.seed_solutions([("gpu_error", "gpu_error.exclude_node", "node_excluded")])
    sid = store.solution_rowids()[("gpu_error", "gpu_error.exclude_node")]
    kg = graph_for(store)
    assert kg.related("solution", "gpu_error.exclude_node") == []
    store.add_outcomes([(sid, "c", "1", None, "ml", 1, "me", 5, None, 0, None, "k1", None, 1, None)])
    rel = graph_for(store).related("type", "gpu_error")
    fix = next(r for r in rel if r["relation"] == "fixed_by")
    assert fix["name"] == "gpu_error.exclude_node" and fix["count"] == 1 and fix["successes"] == 1
    assert graph_for(store).related("solution", "gpu_error.exclude_node", scope=["other"]) == []


def test_scoped_counts_survive_refreshes(store):
    store.add_failure_events([event(1), event(2, project="other")])
    kg = graph_for(store)
    assert kg.count("type", "gpu_error", "node", "gpu-03", scope=["ml"]) == 1
    assert kg.where("gpu_error", scope=["other"])["failures"] == 1
    store.seed_solutions([("gpu_error", "gpu_error.resubmit", "retried")])
    sid = store.solution_rowids()[("gpu_error", "gpu_error.resubmit")]
    store.add_outcomes([(sid, "c", "1", None, "ml", 0, "me", 5, None, 0, None, "k1", None, 1, None)])
    store.add_failure_events([event(3)])
    kg = graph_for(store)
    assert kg.count("type", "gpu_error", "node", "gpu-03", scope=["ml"]) == 2
    assert kg.count("type", "gpu_error", "node", "gpu-03", scope=["other"]) == 1
    assert kg.where("gpu_error", scope=["ml", "other"])["failures"] == 3
    fix = [r for r in kg.related("type", "gpu_error", scope=["ml"]) if r["relation"] == "fixed_by"]
    assert fix == [{"kind": "solution", "name": "gpu_error.resubmit", "relation": "fixed_by",
                    "direction": "out", "count": 1, "successes": 0}]
    assert [r for r in kg.related("type", "gpu_error", scope=["other"]) if r["relation"] == "fixed_by"] == []
