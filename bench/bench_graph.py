"""The knowledge graph, in memory vs persisted (issue 16 item 5).

    python -m bench graph [--db /tmp/jm-1m.db] [--runs 5]

Copies the failure events (and outcomes) of `--db` into a temporary store, then times, each
the median of `--runs` (CPU and wall): the in-memory build every process used to pay
(graph.KnowledgeGraph: pandas + networkx over all events), the persisted graph's full build
(graphstore.PersistedGraph: SQL GROUP BYs into graph_edges), an incremental refresh after 1 %
more events, and a fresh process's first answer (open the store, `where` for every failure type,
unscoped and scoped to one project). Checks that both graphs give the same answers.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobmedic.knowledge.graph import KnowledgeGraph
from jobmedic.knowledge.graphstore import DROP, PersistedGraph
from jobmedic.knowledge.store import Store

ROOT = Path(__file__).resolve().parent.parent
FRESH = r"""
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
from jobmedic.knowledge.graphstore import PersistedGraph
from jobmedic.knowledge.store import Store
s = Store(sys.argv[1])
g = PersistedGraph(s).refresh()
for t in sys.argv[3:]:
    g.where(t)
    g.where(t, [sys.argv[2]])
print(time.perf_counter() - t0, time.process_time() - c0)
"""


def timed(fn, runs: int) -> dict:
    walls, cpus = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return {"wall_s": round(statistics.median(walls), 4), "cpu_s": round(statistics.median(cpus), 4)}


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="bench graph")
    ap.add_argument("--db", default="/tmp/jm-1m.db")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jm-graph-") as tmp:
        path = Path(tmp) / "events.db"
        s = Store(path)
        conn = s.conn
        conn.execute("ATTACH DATABASE ? AS src", (a.db,))
        cols = [r[1] for r in conn.execute("PRAGMA src.table_info(failure_events)")]
        n = conn.execute("SELECT COUNT(*) FROM src.failure_events").fetchone()[0]
        held = n // 101  # the last ~1 % arrive later, as an incremental load
        rows = conn.execute(f"SELECT {', '.join(cols)} FROM src.failure_events ORDER BY id").fetchall()
        other = {t: conn.execute(f"SELECT * FROM src.{t}").fetchall()
                 for t in ("failure_solutions", "solution_outcomes")}
        conn.execute("DETACH DATABASE src")  # a write transaction would lock the source too
        rest = rows[n - held:]
        with s.transaction():
            conn.executemany(f"INSERT INTO failure_events ({', '.join(cols)}) VALUES "
                             f"({', '.join('?' * len(cols))})", rows[:n - held])
            for t, trows in other.items():
                if trows:
                    conn.executemany(f"INSERT OR IGNORE INTO {t} VALUES "
                                     f"({', '.join('?' * len(trows[0]))})", trows)
        types = [r[0] for r in conn.execute("SELECT DISTINCT failure_type FROM failure_events")]
        project = conn.execute("SELECT project FROM failure_events GROUP BY project "
                               "ORDER BY COUNT(*) DESC LIMIT 1").fetchone()[0]
        res: dict = {"db": a.db, "events": n, "incremental_events": held, "runs": a.runs,
                     "load_avg_start": [round(x, 1) for x in os.getloadavg()]}
        res["memory_build"] = timed(lambda: KnowledgeGraph().refresh(s), a.runs)

        def full() -> None:
            with s.transaction():
                for sql in DROP:
                    conn.execute(sql)
            PersistedGraph(s).refresh()
        res["persisted_full_build"] = timed(full, a.runs)
        pg = PersistedGraph(s).refresh()

        def answers(g) -> list:
            return [(g.where(t), g.where(t, [project]), g.related("type", t, [project], 50))
                    for t in types]
        same_full = answers(pg) == answers(KnowledgeGraph().refresh(s))
        with s.transaction():
            conn.executemany(f"INSERT INTO failure_events ({', '.join(cols)}) VALUES "
                             f"({', '.join('?' * len(cols))})", rest)
        t, c = time.perf_counter(), time.process_time()
        pg.refresh()
        res["incremental_refresh"] = {"wall_s": round(time.perf_counter() - t, 4),
                                      "cpu_s": round(time.process_time() - c, 4)}
        res["same_answers"] = same_full and answers(pg) == answers(KnowledgeGraph().refresh(s))
        s.close()
        fresh = []
        for _ in range(a.runs):
            out = subprocess.run([sys.executable, "-c", FRESH, str(path), project, *types],
                                 capture_output=True, text=True, cwd=ROOT, check=True).stdout
            fresh.append([float(x) for x in out.split()])
        res["fresh_process_answers"] = {
            "wall_s": round(statistics.median(f[0] for f in fresh), 4),
            "cpu_s": round(statistics.median(f[1] for f in fresh), 4),
            "what": f"imports + open + where() x {2 * len(types)}"}
        res["load_avg_end"] = [round(x, 1) for x in os.getloadavg()]
    for k, v in res.items():
        print(f"{k}: {v}")
    return res
