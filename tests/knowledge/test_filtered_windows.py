"""Entity-filtered window reads (issue 16): with a user, queue, project, image or node filter
(or named entities, a scope) the window's jobs are read through the (entity, end_time) index
in two ranges, or through the window index, never the entity's whole history. The same rows
and the same answers as the straightforward query `event_time >= lo AND event_time < hi AND
entity = ?`, on random windows, scopes and filters over a small store holding failures
without an end, unschedulable pods, cancelled, running and multi-node jobs."""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from jobmedic.core.timeutil import Window
from jobmedic.knowledge import stats_queries
from jobmedic.knowledge.db import scope_clause
from jobmedic.knowledge.stats_queries import _F, _NOT_WAITING, DIMENSIONS, StatsQueries
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.window_from import FILTERS, TIMED, timed_window
from tests.knowledge.test_rollups import NODES, T0, canon, reads, tuples

SPAN = 6 * 86400
USERS, PROJECTS, QUEUES, IMAGES = ("u1", "u2", "u3", None), ("p1", "p2", "p3"), ("q1", "q2"), (
    "i1", "i2", None)
STATES = ("completed", "completed", "completed", "failed", "oom", "timeout", "node_fail",
          "preempted", "cancelled", "running", "pending", "pending_sched", "failed_open")


def _job(i: int, rng: random.Random) -> dict[str, Any]:
    t = T0 + rng.randrange(SPAN)
    state = rng.choice(STATES)
    row = {"cluster": rng.choice(("c1", "c2")), "job_id": f"j{i}", "name": f"n{rng.randrange(5)}",
           "project": rng.choice(PROJECTS), "user": rng.choice(USERS),
           "image": rng.choice(IMAGES), "queue": rng.choice(QUEUES), "state": state,
           "failure_type": None if state in ("completed", "cancelled", "running") else
           rng.choice(("app_error", "oom", "gpu_error")),
           "blame": rng.choice(("job", "infra", None)), "submit_time": t - 900,
           "start_time": t - 600, "end_time": t, "elapsed_s": rng.choice((None, 60, 3601)),
           "req_cpus": rng.choice((None, 1, 8)), "req_gpus": rng.choice((None, 0, 2)),
           "n_nodes": rng.choice((None, 0, 1, 2)), "source": "test"}
    if state == "pending_sched":  # an unschedulable pod: a failure with no end
        row.update(state="pending", failure_type="scheduling", end_time=None, start_time=None,
                   failed_at=t)
    elif state == "failed_open":  # a failure that never terminated (failure time, no end)
        row.update(state="failed", end_time=None, failed_at=t if rng.random() < 0.7 else None)
    elif state in ("pending", "running"):
        row.update(end_time=None)
    return row


@pytest.fixture(scope="module")
def store() -> Any:
    rng = random.Random(16)
    s = Store(":memory:")
    rows = [_job(i, rng) for i in range(400)]
    s.upsert_jobs(tuples(rows))
    s.add_job_nodes([(r["cluster"], r["job_id"], n) for r in rows
                     for n in rng.sample(NODES, rng.randrange(0, 4))])
    yield s
    s.close()


class Plain(StatsQueries):
    """The straightforward window: `event_time` in the window and each filter an equality
    (named entities appended as IN), whatever index SQLite picks."""

    def window_where(self, window: Any, scope: Sequence[str] | None,
                     filters: dict[str, Any] | None = None, outcome: bool = True,
                     within: tuple[str, Sequence[Any]] | None = None) -> tuple[str, list[Any]]:
        where, params = scope_clause(scope, "j.project")
        sql = ["j.event_time >= ? AND j.event_time < ?", where]
        args: list[Any] = [int(window.start), int(window.end), *params]
        if outcome:
            sql.append("j.state IN ('completed', 'failed', 'timeout', 'oom', 'node_fail', "
                       f"'preempted', 'pending') AND {_NOT_WAITING}")
        for key, value in (filters or {}).items():
            if value is None:
                continue
            if key in FILTERS:
                sql.append(f"{FILTERS[key]} = ?")
            elif key == "node":
                sql.append("fn.node = ?")
            elif key == "failure_type":
                sql.append(f"(j.failure_type = ? OR NOT {_F})")
            else:
                sql.append(f"{DIMENSIONS[key]} = ?")
            args.append(value)
        if within is not None:
            sql.append(f"{DIMENSIONS[within[0]]} IN ({', '.join('?' * len(within[1]))})")
            args += list(within[1])
        return " AND ".join(sql), args


def _cases() -> list[tuple[Window, list[str] | None, dict[str, Any]]]:
    """Fixed cases (whole days, an hour, the store's edges) then random ones."""
    day = 86400
    out: list[tuple[Window, list[str] | None, dict[str, Any]]] = [
        (Window(T0, T0 + 7 * day), None, {"user": "u1"}),
        (Window(T0 + day, T0 + 3 * day), None, {"queue": "q2"}),
        (Window(T0 + 5000, T0 + 5000 + 3600), None, {"project": "p1"}),
        (Window(T0 - day, T0 + 2 * day + 77), ["p1", "p2"], {"image": "i1"}),
        (Window(T0, T0 + 6 * day), ["p3"], {"user": "u2", "queue": "q1"}),
        (Window(T0 + 2 * day, T0 + 4 * day), None, {"node": "n1"}),
        (Window(T0, T0 + 6 * day), None, {"node": "n2", "user": "u3"}),
        (Window(T0, T0 + 6 * day), [], {"user": "u1"}),
    ]
    rng = random.Random(1616)
    for _ in range(8):
        a = T0 + rng.randrange(-3600, SPAN)
        w = Window(a, a + rng.randrange(1, SPAN))
        scope = rng.choice((None, None, ["p1"], ["p2", "p3"]))
        pool = [("user", USERS[:3]), ("queue", QUEUES), ("project", PROJECTS), ("image", ("i1", "i2")),
                ("cluster", ("c1", "c2")), ("node", NODES[:3])]
        filters = {k: rng.choice(v) for k, v in rng.sample(pool, rng.randrange(1, 3))}
        out.append((w, scope, filters))
    return out


CASES = _cases()


def _reference_rows(s: Store, w: Window, scope: Any, filters: dict[str, Any]) -> list[int]:
    where, args = Plain(s._db).window_where(w, scope, filters, outcome=False)
    frm = ("job_nodes fn JOIN jobs j ON j.cluster = fn.cluster AND j.job_id = fn.job_id"
           if filters.get("node") else "jobs j")
    return sorted(r[0] for r in s.conn.execute(f"SELECT j.rowid FROM {frm} WHERE {where}", args))


@pytest.mark.parametrize("w,scope,filters",
                         [c for c in CASES if any(k in TIMED for k in c[2])])
def test_each_form_of_the_timed_window_selects_the_same_jobs(store, w, scope, filters):
    """timed_window driven by each entity's index, and through the window index, against
    the plain event_time range: the same job rows (failures without an end included). Cases
    filtering only by cluster or node have no (entity, end_time) form to drive."""
    keyed = [(TIMED[k], [v]) for k, v in filters.items() if k in TIMED]
    extra = {k: v for k, v in filters.items() if k not in TIMED and k != "node"}
    ex_where = " AND ".join(f"{FILTERS[k]} = ?" for k in extra) or "1"
    sc, sargs = scope_clause(scope, "j.project")
    want = _reference_rows(store, w, scope, {k: v for k, v in filters.items() if k != "node"})
    for drive in (None, *range(len(keyed))):
        sql, args = timed_window(int(w.start), int(w.end), keyed, drive)
        got = sorted(r[0] for r in store.conn.execute(
            f"SELECT j.rowid FROM jobs j WHERE {sql} AND {sc} AND {ex_where}",
            [*args, *sargs, *extra.values()]))
        assert got == want, (drive, w, scope, filters)
    assert any(store.conn.execute("SELECT 1 FROM jobs WHERE end_time IS NULL AND event_time "
                                  "IS NOT NULL"))  # the second range is exercised


def _more_reads(s: StatsQueries, w: Window, scope: Any, filters: dict[str, Any]) -> dict:
    """The window reads reads() of test_rollups leaves out (the raw queries only)."""
    out = {"detail": canon(s.failure_detail(w, scope, filters)),
           "names": s.name_runs(["n1", "n2", "n4"], w, scope, filters),
           "node_combos": canon(s.node_combos(["n1", "n3"], w, scope, filters)),
           "totals": canon(s.window_totals(w, scope, filters))}
    for dim, values in (("user", ["u1", "u3"]), ("project", ["p2"]), ("queue", ["q1", "q2"]),
                        ("image", ["i2"]), ("node", ["n2", "n4"]), ("failure_type", ["oom"])):
        out[f"impact/{dim}"] = s.impact_of(dim, values, w, scope, filters)
        out[f"mix/{dim}"] = canon(s.failure_mix(dim, values, w, scope, filters))
        out[f"by/{dim}"] = canon(s.breakdown(dim, values, "name", w, scope, filters))
    for dim in ("state", "hour", "name", "blame"):
        out[f"rate/{dim}"] = canon(s.rate_by(dim, w, scope, filters, outcome=dim != "state"))
    return out


def _bits(x: Any) -> Any:
    """Floats to 12 significant digits: a sum of 1/n node shares depends on the order the
    rows are visited in, which the index that drives the query decides (the old plan's
    order was the planner's too); everything else compares exactly."""
    if isinstance(x, float):
        return float(f"{x:.12g}")
    if isinstance(x, dict):
        return {k: _bits(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_bits(v) for v in x]
    return x


def _answers(store: Store, s: StatsQueries, w: Window, scope: Any, filters: dict[str, Any]):
    store.stats, keep = s, store.stats
    try:
        return _bits([reads(store, w, scope, filters), _more_reads(s, w, scope, filters)])
    finally:
        store.stats = keep


@pytest.fixture(scope="module")
def plain(store) -> list[Any]:
    """The plain query's answers for each case (rollups off)."""
    store.rollups.enabled = False
    try:
        return [_answers(store, Plain(store._db), *case) for case in CASES]
    finally:
        store.rollups.enabled = True


@pytest.mark.parametrize("force", ["auto", "window index", "first entity", "last entity"])
def test_filtered_reads_equal_the_plain_query(store, plain, monkeypatch, force):
    """Every window read with each filter, scope and window: the same answers as the plain
    event_time query, whichever index drives (rollups off; and on, as analyze reads, where
    the named-node reads go through the request's temp table)."""
    if force != "auto":
        monkeypatch.setattr(stats_queries, "driver", lambda conn, lo, hi, keyed, outcome: (
            None if force == "window index" and outcome else
            len(keyed) - 1 if force == "last entity" else 0))
    for (w, scope, filters), want in zip(CASES, plain):
        store.rollups.enabled = False
        try:
            got = _answers(store, StatsQueries(store._db), w, scope, filters)
        finally:
            store.rollups.enabled = True
        assert got == want, (force, w, scope, filters)
        if force == "auto":
            assert _answers(store, StatsQueries(store._db), w, scope, filters) == want


def test_a_filter_name_in_scope_resolves_without_listing_every_name(store, monkeypatch):
    """resolve() finds a name a job in scope carries by its index, without the listing of
    every known name (which read the whole table); out of scope, misspelt or differently
    cased names still go through the listing: the same answers as before."""
    from jobmedic.knowledge.errors import NotFound

    v = store.vocab
    real = type(v).known
    listed: list[str] = []
    monkeypatch.setattr(type(v), "known", lambda self, kind, scope=None, limit=100_000: (
        listed.append(kind), real(self, kind, scope, limit))[1])
    for kind, name, scope in (("user", "u1", None), ("user", "u2", ["p1", "p3"]),
                              ("queue", "q2", ["p2"]), ("image", "i1", None),
                              ("project", "p3", ["p3"]), ("cluster", "c2", None),
                              ("name", "n4", ["p1"]), ("node", "n2", None),
                              ("node", "n3", ["p2"])):
        assert v.resolve(kind, name, scope) == name
    assert listed == []
    assert v.resolve("user", "U1") == "u1" and listed == ["user"]  # case: through the listing
    with pytest.raises(NotFound):
        v.resolve("project", "p1", ["p2"])  # a name outside the scope stays unknown
    with pytest.raises(NotFound):
        v.resolve("user", "u9")
    with pytest.raises(NotFound):
        v.resolve("node", "n1", [])
