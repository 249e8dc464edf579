"""Failure events without a jobs row, counted for several dimensions in one statement
(`orphan_event_counts_by`, issue 16 item 2): the same rows, in the same order, as
`orphan_event_counts` run once per dimension, with ties, scopes, filters and limits; and the
orphan test (a search of the jobs key per event) planned once, not once per dimension."""
from __future__ import annotations

import random

import pytest

from jobmedic.core.timeutil import Window
from jobmedic.knowledge.migrations import FAILURE_EVENT_COLUMNS, JOB_COLUMNS

T0 = 1_700_006_400


def _event(i: int, rng: random.Random) -> tuple:
    ev = dict.fromkeys(FAILURE_EVENT_COLUMNS)
    linked = rng.random() < 0.3
    ev.update(cluster="k8s", job_id=f"j{rng.randrange(60)}" if linked or rng.random() < 0.5 else None,
              job_name=f"pod-{i}", project=rng.choice(["p1", "p2", "p3", None]),
              user=rng.choice(["u1", "u2", "u3", None]),
              failure_type=rng.choice(["image_pull", "oom", "scheduling"]), blame="job",
              timestamp=T0 + rng.randrange(-86400, 4 * 86400),
              node_name=rng.choice([f"n{k}" for k in range(6)] + [None]),
              container_image=rng.choice([f"img{k}" for k in range(4)] + [None]),
              template_id=rng.choice([None, 1, 2, 3]), source="test", resolved=0)
    return tuple(ev[c] for c in FAILURE_EVENT_COLUMNS) + (f"dk{i}",)


@pytest.fixture
def events(store):
    rng = random.Random(16)
    jobs = []
    for k in range(30):  # half the linked job ids exist: those events are not orphans
        row = dict.fromkeys(JOB_COLUMNS)
        row.update(cluster="k8s", job_id=f"j{k}", state="failed", failure_type="oom",
                   submit_time=T0, end_time=T0 + 60, source="test", project="p1")
        jobs.append(tuple(row[c] for c in JOB_COLUMNS))
    store.upsert_jobs(jobs)
    store.add_failure_events([_event(i, rng) for i in range(600)])
    return store


@pytest.mark.parametrize("scope", [None, ["p1"], ["p2", "p3"]])
@pytest.mark.parametrize("filters", [{}, {"user": "u2"}, {"node": "n1", "project": None},
                                     {"failure_type": "oom"}])
@pytest.mark.parametrize("limit", [1, 2, 5, 50])
def test_same_rows_as_one_query_per_dimension(events, scope, filters, limit):
    window = Window(T0, T0 + 3 * 86400)
    for dims in (["node", "image"], ["image"], ["node", "failure_type", "day", "user"]):
        got = events.orphan_event_counts_by(dims, window, scope, filters, limit)
        assert list(got) == dims
        for d in dims:
            assert got[d] == events.orphan_event_counts(d, window, scope, filters, limit), d
    assert any(events.orphan_event_counts_by(["node"], window, None, {}, 5).values())


def test_ties_keep_the_single_query_order(store):
    """Many groups with the same count around the limit: the cut falls where it did."""
    ev = []
    for i in range(40):
        row = dict.fromkeys(FAILURE_EVENT_COLUMNS)
        row.update(cluster="k8s", job_name=f"p{i}", failure_type=("a", "b")[i % 2], blame="job",
                   timestamp=T0 + i, node_name=f"n{(i * 7) % 20:02d}",
                   container_image=f"i{(i * 3) % 10}", source="test", resolved=0, user="u")
        ev.append(tuple(row[c] for c in FAILURE_EVENT_COLUMNS) + (f"t{i}",))
    store.add_failure_events(ev)
    window = Window(T0, T0 + 86400)
    for limit in (1, 3, 7, 19):
        got = store.orphan_event_counts_by(["node", "image"], window, None, {}, limit)
        assert got["node"] == store.orphan_event_counts("node", window, None, {}, limit)
        assert got["image"] == store.orphan_event_counts("image", window, None, {}, limit)


def test_refuses_an_unknown_dimension_and_answers_none(store):
    with pytest.raises(ValueError, match="unknown event dimension 'nodes'"):
        store.orphan_event_counts_by(["node", "nodes"], Window(T0, T0 + 1), None)
    assert store.orphan_event_counts_by([], Window(T0, T0 + 1), None) == {}


def test_the_orphan_lookup_is_planned_once(events):
    """One search of the jobs key per event for every dimension together, through the
    events' time index (the statement patterns.events sends)."""
    seen: list[str] = []
    events.conn.set_trace_callback(seen.append)
    try:
        events.orphan_event_counts_by(["node", "image"], Window(T0, T0 + 86400), None, {}, 5)
    finally:
        events.conn.set_trace_callback(None)
    sql = next(s for s in seen if "failure_events" in s)
    plan = [r[3] for r in events.conn.execute("EXPLAIN QUERY PLAN " + sql)]
    lookups = [p for p in plan if p.startswith("SEARCH x ")]
    assert len(lookups) == 1, plan
    assert any("failure_events_time" in p for p in plan), plan
    assert not any(p.startswith("SCAN e") for p in plan), plan
