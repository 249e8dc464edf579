"""Jobs per job name in a window (StatsQueries.name_runs, the patterns analyzer's denominator):
equal to a count over event_time on a random store (ended jobs, failures without an end,
unended jobs outside any window), unscoped and scoped, and the unscoped read is a range of the
(name, end_time) index, not each name's whole history (issue 16: analyze at 10M)."""
from __future__ import annotations

import random

from jobmedic.core.timeutil import Window
from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.store import Store

T0 = 1_700_006_400


def _store() -> tuple[Store, list[dict]]:
    rnd = random.Random(16)
    rows = []
    for i in range(600):
        t = T0 + rnd.randrange(0, 20 * 86400)
        state = rnd.choice(("completed", "failed", "oom", "cancelled", "running", "pending"))
        row = {"cluster": rnd.choice(("c1", "c2")), "job_id": f"j{i}", "state": state,
               "name": rnd.choice(("train", "eval", "prep", None)),
               "project": rnd.choice(("p1", "p2", None)), "submit_time": t - 600,
               "start_time": t - 500, "end_time": t, "source": "test"}
        if state in ("running", "pending"):
            row["end_time"] = None
        elif state != "completed" and rnd.random() < 0.4:  # a failure that never ended
            row.update(end_time=None, failed_at=t)
        rows.append(row)
    store = Store(":memory:")
    store.upsert_jobs([tuple(r.get(c) for c in JOB_COLUMNS) for r in rows])
    return store, rows


def _event_time(r: dict) -> int | None:
    if r["end_time"] is not None:
        return r["end_time"]
    return r.get("failed_at") if r["state"] in ("failed", "oom") else None


def test_name_runs_equal_a_count_over_event_time() -> None:
    store, rows = _store()
    names = ["train", "eval", "prep", "absent"]
    rnd = random.Random(7)
    for _ in range(25):
        a = T0 + rnd.randrange(-86400, 21 * 86400)
        b = a + rnd.randrange(1, 8 * 86400)
        for scope in (None, ["p1"]):
            want: dict[str, int] = {}
            for r in rows:
                et = _event_time(r)
                if (r["name"] in names and et is not None and a <= et < b
                        and (scope is None or r["project"] in scope)):
                    want[r["name"]] = want.get(r["name"], 0) + 1
            assert store.name_runs(names, Window(a, b), scope) == want


def test_unscoped_name_runs_read_a_range_of_the_name_index() -> None:
    store, _ = _store()
    sql: list[str] = []
    store.conn.set_trace_callback(sql.append)
    store.name_runs(["train"], Window(T0, T0 + 86400), None)
    store.conn.set_trace_callback(None)
    plan = " ".join(r[3] for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql[-1]))
    assert "jobs_name_end (name=? AND end_time>? AND end_time<?)" in plan, plan
