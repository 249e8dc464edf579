"""Per-day rollups (issue 16): every window read answered from the rollups equals the raw query
over the jobs, on random stores, windows, scopes, clusters and filters, after late updates
(state and failure type changes, a failure time without an end, nodes added and removed,
jobs deleted) made through the ingest methods and through plain SQL."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from jobmedic.core.timeutil import Window
from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.rollup_reads import split
from jobmedic.knowledge.store import Store

T0 = 1_700_006_400  # a UTC midnight
SPAN = 6 * 86400
CLUSTERS, PROJECTS = ("c1", "c2"), ("p1", "p2", "p3", None)
USERS, IMAGES, QUEUES = ("u1", "u2", "u3", None), ("i1", "i2", None), ("q1", "q2", None)
NODES = ("n1", "n2", "n3", "n4")
STATES = ("completed", "completed", "failed", "oom", "timeout", "node_fail", "preempted",
          "cancelled", "running", "pending", "pending_sched")
TYPES = ("app_error", "oom", "gpu_error", "scheduling", None)
DIMS = ("project", "user", "image", "queue", "cluster", "failure_type", "day")


def job(i: int, d: Any, cluster: str | None = None) -> dict[str, Any]:
    t = T0 + d.draw(st.integers(0, SPAN))
    state = d.draw(st.sampled_from(STATES))
    row = {"cluster": cluster or d.draw(st.sampled_from(CLUSTERS)), "job_id": f"j{i}",
           "project": d.draw(st.sampled_from(PROJECTS)), "user": d.draw(st.sampled_from(USERS)),
           "image": d.draw(st.sampled_from(IMAGES)), "queue": d.draw(st.sampled_from(QUEUES)),
           "state": state, "failure_type": d.draw(st.sampled_from(TYPES)),
           "submit_time": t - 600, "start_time": t - 500, "end_time": t,
           "elapsed_s": d.draw(st.sampled_from((None, 60, 500, 3601))),
           "req_cpus": d.draw(st.sampled_from((None, 1, 8))),
           "req_gpus": d.draw(st.sampled_from((None, 0, 2))),
           "n_nodes": d.draw(st.sampled_from((None, 0, 1, 2, 3))), "source": "test"}
    if state == "pending_sched":  # an unschedulable pod: a failure with no end
        row.update(state="pending", failure_type="scheduling", end_time=None, start_time=None,
                   failed_at=t)
    elif state in ("pending", "running"):
        row.update(end_time=None)
    elif d.draw(st.booleans()) and state != "completed":  # failed without terminating
        row.update(end_time=None, failed_at=t)
    return row


def tuples(rows: list[dict[str, Any]]) -> list[tuple]:
    return [tuple(r.get(c) for c in JOB_COLUMNS) for r in rows]


def nodes_of(row: dict[str, Any], d: Any) -> list[tuple[str, str, str]]:
    chosen = d.draw(st.lists(st.sampled_from(NODES), min_size=0, max_size=3, unique=True))
    return [(row["cluster"], row["job_id"], n) for n in chosen]


@contextmanager
def raw(store: Store):
    store.rollups.enabled = False
    try:
        yield
    finally:
        store.rollups.enabled = True


def canon(rows: Any) -> Any:
    """Rows in a stable order (values exact: weighted failures are rounded to 1e-9 by both)."""
    if isinstance(rows, dict):
        return rows
    return sorted((canon(r) for r in rows), key=lambda r: repr(sorted(r.items())))


def reads(store: Store, w: Window, scope: list[str] | None, filters: dict[str, Any]) -> dict:
    s = store.stats
    out = {"totals": canon(s.window_totals(w, scope, filters)),
           "failures": s.window_failures(w, scope, filters),
           "combos": canon(s._entity_combos(w, scope, filters)),
           "hourly": canon(s.hourly(w, scope, filters)),
           "daily": canon(s.binned(w, scope, filters, 86400)),
           "nodes": canon(s.node_rates(w, scope, filters, lean=True)),
           "nodes_full": canon(s.node_rates(w, scope, filters))}
    for dim in DIMS:
        out[dim] = canon(s.rate_by(dim, w, scope, filters))
    for dim, by in (("project", "user"), ("user", "image"), ("image", "failure_type"),
                    ("queue", "project"), ("user", "name"), ("node", "user")):
        values = {"project": ["p1", "p3"], "user": ["u1", "u2"], "image": ["i1"],
                  "queue": ["q1"], "node": ["n1", "n2"]}[dim]
        out[f"{dim}/{by}"] = canon(s.breakdown(dim, values, by, w, scope, filters))
    return out


def check(store: Store, d: Any) -> None:
    for _ in range(3):
        if d.draw(st.booleans()):  # whole days, the bench's shape
            a = T0 + 86400 * d.draw(st.integers(-1, 6))
            w = Window(a, a + 86400 * d.draw(st.integers(1, 7)))
        else:
            a = T0 + d.draw(st.integers(-3600, SPAN))
            w = Window(a, a + d.draw(st.integers(1, SPAN)))
        scope = d.draw(st.sampled_from((None, None, [], ["p1"], ["p2", "p3"])))
        filters = {k: d.draw(st.sampled_from(vals)) for k, vals in
                   (("cluster", ("c1", "c2")), ("project", ("p1", "p2")), ("user", ("u1", "u2")),
                    ("image", ("i1",)), ("queue", ("q2",))) if d.draw(st.integers(0, 4)) == 0}
        with raw(store):
            want = reads(store, w, scope, filters)
        got = reads(store, w, scope, filters)
        assert got == want, (w, scope, filters)


def late_updates(d: Any) -> None:
    store = Store(":memory:")
    rows = [job(i, d) for i in range(d.draw(st.integers(0, 40)))]
    store.upsert_jobs(tuples(rows))
    store.add_job_nodes([n for r in rows for n in nodes_of(r, d)])
    check(store, d)  # first read: built from scratch
    assert store.rollups.state() is not None
    for step in range(d.draw(st.integers(1, 3))):
        # late updates through ingest's methods: states, types, times, entity changes
        changed = [job(int(r["job_id"][1:]), d, r["cluster"]) for r in rows
                   if d.draw(st.integers(0, 3)) == 0]
        new = [job(1000 * (step + 1) + i, d) for i in range(d.draw(st.integers(0, 8)))]
        store.upsert_jobs(tuples(changed + new))
        store.add_job_nodes([n for r in changed + new for n in nodes_of(r, d)])
        rows += new
        # and through plain SQL: a failure time without an end, a node removed, a job deleted
        for r in rows:
            k = d.draw(st.integers(0, 9))
            key = (r["cluster"], r["job_id"])
            if k == 0:
                store.conn.execute("UPDATE jobs SET end_time = NULL, failed_at = ?, state = 'failed' "
                                   "WHERE cluster = ? AND job_id = ?", (T0 + 3 * 86400 + 7, *key))
            elif k == 1:
                store.conn.execute("DELETE FROM job_nodes WHERE cluster = ? AND job_id = ? AND "
                                   "node = 'n1'", key)
            elif k == 2:
                store.conn.execute("DELETE FROM jobs WHERE cluster = ? AND job_id = ?", key)
        if d.draw(st.booleans()):
            store.refresh_rollups()  # as ingest does after a load; reads refresh otherwise
        check(store, d)
    store.close()


_SETTINGS = {"deadline": None, "database": None, "phases": [Phase.generate], "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=8, **_SETTINGS)
@given(st.data())
def test_rollups_equal_raw_queries_after_late_updates(data: Any) -> None:
    late_updates(data)


@pytest.mark.slow
@settings(max_examples=300, **_SETTINGS)
@given(st.data())
def test_rollups_equal_raw_queries_many_stores(data: Any) -> None:
    late_updates(data)


def test_split_into_whole_days_and_partial_ends() -> None:
    assert split(T0, T0 + 2 * 86400, 86400) == ((T0, T0 + 2 * 86400), [])
    assert split(T0 + 5, T0 + 86400 + 9, 86400) == (None, [(T0 + 5, T0 + 86400 + 9)])
    inner, edges = split(T0 - 5, T0 + 2 * 86400 + 9, 86400)
    assert inner == (T0, T0 + 2 * 86400) and edges == [(T0 - 5, T0), (T0 + 2 * 86400, T0 + 2 * 86400 + 9)]
    assert split(T0 + 5, T0 + 50, 86400) == (None, [(T0 + 5, T0 + 50)])


def test_rollups_are_built_on_first_read_and_kept_by_ingest_refresh() -> None:
    store = Store(":memory:")
    assert store.rollups.state() is None  # nothing built until a window is read
    assert store.refresh_rollups() == {"built": False, "new": 0, "changed": 0}
    w = Window(T0, T0 + 86400)
    store.upsert_jobs(tuples([{"cluster": "c", "job_id": "a", "state": "failed", "end_time": T0 + 5,
                               "failure_type": "oom", "source": "t", "project": "p"}]))
    assert store.window_totals(w, None)["failures"] == 1
    st0 = store.rollups.state()
    assert st0 is not None and st0["watermark"] == 1
    # a late update moves the job to another day's cell: the failure leaves this window
    store.upsert_jobs(tuples([{"cluster": "c", "job_id": "a", "state": "failed",
                               "end_time": T0 + 86400 + 5, "source": "t"}]))
    assert store.conn.execute("SELECT COUNT(*) FROM rollup_job_log").fetchone()[0] == 1
    assert store.refresh_rollups()["changed"] == 1
    assert store.window_totals(w, None)["failures"] == 0
    assert store.window_totals(Window(T0, T0 + 2 * 86400), None)["failures"] == 1
    cells = store.conn.execute("SELECT day, failures FROM rollup_jobs_day").fetchall()
    assert cells == [(T0 + 86400, 1)]  # the emptied cell is gone


def test_read_only_store_falls_back_to_raw_queries(tmp_path: Any) -> None:
    path = tmp_path / "s.db"
    with Store(path) as store:
        store.upsert_jobs(tuples([{"cluster": "c", "job_id": "a", "state": "completed",
                                   "end_time": T0 + 5, "source": "t"}]))
    ro = Store(path, migrate=False)
    ro.conn.execute("PRAGMA query_only = ON")
    assert ro.rollups.usable() is False
    assert ro.window_totals(Window(T0, T0 + 86400), None)["jobs"] == 1
    ro.close()


@pytest.mark.parametrize("version", [0, 999])
def test_rollups_of_another_version_are_rebuilt(version: int) -> None:
    store = Store(":memory:")
    store.upsert_jobs(tuples([{"cluster": "c", "job_id": "a", "state": "completed",
                               "end_time": T0 + 5, "source": "t"}]))
    w = Window(T0, T0 + 86400)
    assert store.window_totals(w, None)["jobs"] == 1
    store.conn.execute("UPDATE rollup_state SET version = ?", (version,))
    store.conn.execute("DELETE FROM rollup_jobs_day")  # what an old definition would not match
    assert store.window_totals(w, None)["jobs"] == 1
    assert store.rollups.state()["version"] != version


def test_dropped_rollups_leave_job_writes_working_and_are_built_again() -> None:
    store = Store(":memory:")
    row = {"cluster": "c", "job_id": "a", "state": "completed", "end_time": T0 + 5, "source": "t"}
    store.upsert_jobs(tuples([row]))
    w = Window(T0, T0 + 86400)
    assert store.window_totals(w, None)["jobs"] == 1
    store.rollups.drop()
    assert store.rollups.state() is None
    store.upsert_jobs(tuples([{**row, "state": "failed", "failure_type": "oom"}]))  # no trigger left
    assert store.window_totals(w, None)["failures"] == 1
    assert store.rollups.state() is not None
