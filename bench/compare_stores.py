"""Compare two stores table by table, row by row (issue 16: a change to ingest must leave the
store as it was). Every table is read in rowid order (WITHOUT ROWID tables sorted) and hashed;
wall-clock columns are left out (ingest_runs' times, pid and host, rejects.recorded_at,
marks.updated_at). For the tables that differ, the columns that differ are counted.

    python -m bench.compare_stores BEFORE.db AFTER.db

Note: an inferred outcome whose follow-up job has no end time is stamped with the clock
(solution_outcomes.recorded_at, and failure_solutions.last_used from it), so two runs of the
same code differ there too; the report names those rows.
"""
from __future__ import annotations

import hashlib
import sqlite3
import sys

VOLATILE = {"ingest_runs": {"started_at", "finished_at", "pid", "host"},
            "rejects": {"recorded_at"}, "marks": {"updated_at"}}


def _rows(c: sqlite3.Connection, table: str) -> tuple[list[str], list[tuple]]:
    cols = [r[1] for r in c.execute(f"PRAGMA table_info({table})")]
    keep = [x for x in cols if x not in VOLATILE.get(table, ())]
    sel = ", ".join(f'"{x}"' for x in keep)
    try:
        return keep, c.execute(f"SELECT {sel} FROM {table} ORDER BY rowid").fetchall()
    except sqlite3.OperationalError:  # WITHOUT ROWID
        return keep, sorted(c.execute(f"SELECT {sel} FROM {table}").fetchall(), key=repr)


def compare(a_path: str, b_path: str) -> int:
    a = sqlite3.connect(f"file:{a_path}?mode=ro", uri=True)
    b = sqlite3.connect(f"file:{b_path}?mode=ro", uri=True)
    q = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    tables = sorted({r[0] for r in a.execute(q)} | {r[0] for r in b.execute(q)})
    bad = 0
    for t in tables:
        try:
            ca, ra = _rows(a, t)
            cb, rb = _rows(b, t)
        except sqlite3.OperationalError as exc:
            print(f"DIFF {t}: {exc}")
            bad += 1
            continue
        if ca == cb and ra == rb:
            if ra:
                print(f"same {t}: {len(ra):,} rows, {hashlib.sha256(repr(ra).encode()).hexdigest()[:12]}")
            continue
        bad += 1
        cols: dict[str, int] = {}
        for x, y in zip(ra, rb):
            for name, u, v in zip(ca, x, y):
                if u != v:
                    cols[name] = cols.get(name, 0) + 1
        print(f"DIFF {t}: {len(ra):,} / {len(rb):,} rows; differing values by column: {cols}")
    ia = sorted(r[0] for r in a.execute("SELECT name FROM sqlite_master WHERE type = 'index'"))
    ib = sorted(r[0] for r in b.execute("SELECT name FROM sqlite_master WHERE type = 'index'"))
    if ia != ib:
        bad += 1
        print(f"DIFF indexes: {sorted(set(ia) ^ set(ib))}")
    clock = ("SELECT COUNT(*) FROM solution_outcomes o JOIN jobs f ON f.cluster = o.cluster "
             "AND f.job_id = o.followup_job WHERE f.end_time IS NULL")
    try:
        n = a.execute(clock).fetchone()[0]
        print(f"outcomes stamped with the clock (follow-up without an end time): {n:,}")
    except sqlite3.OperationalError:
        pass
    print("identical" if not bad else f"{bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m bench.compare_stores BEFORE.db AFTER.db")
    sys.exit(compare(sys.argv[1], sys.argv[2]))
