"""Does the after-ingest inference's read-and-pair thread overlap the index rebuild? (issue 16)

On a COPY of a loaded store (its indexes are dropped and rebuilt): the rebuild alone, then the
rebuild with `InferenceAhead`'s work (touched frame + plan_outcomes over the whole store) on a
thread and connection of its own, with the process CPU over the overlap's wall (about 2 when
both run at once on two free cores, about 1 when they take turns).

    python -m bench.bench_overlap COPY.db [--threads 0]
"""
from __future__ import annotations

import argparse
import sqlite3
import threading
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store", help="a copy of a loaded store (its indexes are rebuilt)")
    ap.add_argument("--threads", type=int, default=2, help="PRAGMA threads for the rebuild")
    args = ap.parse_args()

    import pandas  # noqa: F401 - imported before timing, as a warm process has it

    from jobmedic.app import load_rules, load_taxonomy
    from jobmedic.knowledge import outcomes
    from jobmedic.knowledge.db import SCHEMA_VERSION, Db, expected_indexes
    from jobmedic.knowledge.remedies import RemedyQueries

    rules = load_rules(load_taxonomy())
    want = [(n, sql) for n, (t, sql) in expected_indexes(SCHEMA_VERSION).items()
            if t in ("jobs", "job_nodes", "failure_events")]

    def rebuild() -> float:
        c = sqlite3.connect(args.store, isolation_level=None, check_same_thread=False)
        c.execute("PRAGMA cache_size = -65536")
        c.execute(f"PRAGMA threads = {int(args.threads)}")
        c.execute("BEGIN IMMEDIATE")
        for name, _ in want:
            c.execute(f"DROP INDEX IF EXISTS {name}")
        c.execute("COMMIT")
        t = time.perf_counter()
        c.execute("BEGIN IMMEDIATE")
        for _, sql in want:
            c.execute(sql)
        c.execute("COMMIT")
        c.close()
        return time.perf_counter() - t

    def side() -> float:
        q = RemedyQueries(Db(args.store, migrate=False))
        t = time.perf_counter()
        outcomes.plan_outcomes(q.touched_frame(0, 10**12, 72 * 3600), rules, 72)
        return time.perf_counter() - t

    alone = rebuild()
    side_alone = side()
    res: dict[str, float] = {}
    c0, w0 = time.process_time(), time.perf_counter()
    th = threading.Thread(target=lambda: res.setdefault("side", side()))
    th.start()
    both = rebuild()
    th.join()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    print(f"rebuild alone {alone:.2f}s, read-and-pair alone {side_alone:.2f}s; together: "
          f"rebuild {both:.2f}s, read-and-pair {res['side']:.2f}s, {wall:.2f}s wall, "
          f"process CPU {cpu:.2f}s ({cpu / wall:.2f} cores)")


if __name__ == "__main__":
    main()
