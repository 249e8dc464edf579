"""Named-node window reads through the shared temp table of the window's jobs on those nodes
(RollupReads.node_jobs, issue 16: analyze at 10M read each node's whole history once per
query): node breakdowns, impact, failure mix, node combinations and a node-filtered rate equal
the direct reads of job_nodes (rollups off) on a random store, scoped and not, after changes
made between two reads (the table is rebuilt), and one table serves every query of a window
whose nodes it holds."""
from __future__ import annotations

import random
from typing import Any

from jobmedic.core.timeutil import Window
from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.store import Store

T0 = 1_700_006_400
NODES = [f"n{i}" for i in range(6)]


def _rows(rnd: random.Random, lo: int, hi: int) -> list[dict[str, Any]]:
    out = []
    for i in range(lo, hi):
        t = T0 + rnd.randrange(0, 10 * 86400)
        state = rnd.choice(("completed", "completed", "failed", "oom", "node_fail", "cancelled",
                            "running"))
        row = {"cluster": rnd.choice(("c1", "c2")), "job_id": f"j{i}", "state": state,
               "failure_type": rnd.choice(("app_error", "oom", "gpu_error", None)),
               "blame": rnd.choice(("user", "infra", None)), "name": rnd.choice(("a", "b", None)),
               "project": rnd.choice(("p1", "p2", None)), "user": rnd.choice(("u1", "u2", None)),
               "image": rnd.choice(("i1", None)), "queue": rnd.choice(("q1", "q2")),
               "submit_time": t - 600, "start_time": t - 500, "end_time": t,
               "elapsed_s": rnd.choice((None, 60, 3601)), "req_cpus": rnd.choice((None, 8)),
               "req_gpus": rnd.choice((None, 2)), "n_nodes": rnd.choice((None, 0, 1, 2)),
               "source": "test"}
        if state == "running":
            row["end_time"] = None
        elif state != "completed" and rnd.random() < 0.3:
            row.update(end_time=None, failed_at=t)
        out.append(row)
    return out


def _load(store: Store, rnd: random.Random, rows: list[dict[str, Any]]) -> None:
    store.upsert_jobs([tuple(r.get(c) for c in JOB_COLUMNS) for r in rows])
    store.add_job_nodes([(r["cluster"], r["job_id"], n) for r in rows
                         for n in rnd.sample(NODES, rnd.randrange(0, 3))])


def _reads(store: Store, w: Window, scope: Any, nodes: list[str]) -> list[Any]:
    out: list[Any] = [store.breakdown("node", nodes, by, w, scope) for by in ("user", "name", "image")]
    out += [store.impact_of("node", nodes, w, scope), store.failure_mix("node", nodes, w, scope),
            store.node_combos(nodes, w, scope)]
    out += [store.rate_by("day", w, scope, {"node": n}) for n in nodes]
    return [sorted(map(repr, x)) if isinstance(x, list) else x for x in out]


def _both(store: Store, w: Window, scope: Any, nodes: list[str]) -> tuple[list[Any], list[Any]]:
    store.rollups.enabled = False
    try:
        want = _reads(store, w, scope, nodes)
    finally:
        store.rollups.enabled = True
    return want, _reads(store, w, scope, nodes)


def test_named_node_reads_equal_the_direct_reads() -> None:
    rnd = random.Random(16)
    store = Store(":memory:")
    _load(store, rnd, _rows(rnd, 0, 500))
    seen = 0
    for step in range(12):
        a = T0 + rnd.randrange(-86400, 10 * 86400)
        w = Window(a, a + rnd.randrange(3600, 6 * 86400))
        nodes = rnd.sample(NODES, rnd.randrange(1, 4))
        for scope in (None, ["p1"]):
            want, got = _both(store, w, scope, nodes)
            assert got == want, (w, scope, nodes)
            seen += sum(len(x) for x in want)
        if step % 3 == 2:  # a late load and a changed job between reads of the same window
            _load(store, rnd, _rows(rnd, 1000 * step, 1000 * step + 40))
            store.conn.execute("UPDATE jobs SET state = 'failed', failure_type = 'oom' "
                               "WHERE job_id = 'j7'")
            want, got = _both(store, w, None, nodes)
            assert got == want
    assert seen > 100  # the reads are not empty


def test_one_table_serves_a_window_and_its_subsets() -> None:
    rnd = random.Random(3)
    store = Store(":memory:")
    _load(store, rnd, _rows(rnd, 0, 300))
    w = Window(T0 + 86400, T0 + 5 * 86400)
    made: list[str] = []
    store.conn.set_trace_callback(lambda s: made.append(s) if "CREATE TABLE temp.rollup_edge" in s
                                  and "job_nodes" in s else None)
    store.breakdown("node", ["n1", "n2", "n3"], "user", w, None)
    store.failure_mix("node", ["n1", "n2", "n3"], w, None)
    store.node_combos(["n2", "n3"], w, None)
    store.rate_by("day", w, None, {"node": "n1"})
    assert len(made) == 1
    store.rate_by("day", w, None, {"node": "n4"})  # a node it does not hold: a new table
    assert len(made) == 2
    store.conn.set_trace_callback(None)
