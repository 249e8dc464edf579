"""The jobs table's secondary index build after a bulk load, index by index (issue 16 item 1).

    python -m bench index_build --db STORE [--pragma threads=2 ...] [--together]
    python bench/bench_index_build.py [--synthetic 490845] [--pragma ...]

`--db` copies a store (never written), drops the jobs table's secondary indexes and builds
them back as `BulkLoads.rebuild_indexes` does (the migrations' SQL), timing each `CREATE
INDEX` (CPU of this process, all threads; wall). `--synthetic N` builds N Google-2011-shaped
jobs instead (same value shapes: ~930 users, ~66k logical names, 4 queues, the trace's
states), so it runs where no store or pandas exists: it needs only the standard library and
jobmedic/knowledge/migrations.py (loaded by path, nothing else of jobmedic). `--together`
builds them all in one transaction (as the ingest does) and reports the total only.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

_MIG = Path(__file__).resolve().parents[1] / "jobmedic" / "knowledge" / "migrations.py"
_INDEX_RE = re.compile(r"^\s*CREATE\s+INDEX\s+(\w+)\s+ON\s+(\w+)", re.IGNORECASE)
_DROP_RE = re.compile(r"^\s*DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?(\w+)", re.IGNORECASE)


def _migrations():
    spec = importlib.util.spec_from_file_location("_jm_migrations", _MIG)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def jobs_indexes(mig) -> dict[str, str]:
    """name -> CREATE INDEX SQL of the jobs table, as `db.expected_indexes` derives them."""
    out: dict[str, tuple[str, str]] = {}
    for _v, _t, statements in mig.MIGRATIONS:
        for sql in statements:
            if m := _INDEX_RE.match(sql):
                out[m.group(1)] = (m.group(2), sql)
            if d := _DROP_RE.match(sql):
                out.pop(d.group(1), None)
    return {n: sql for n, (t, sql) in out.items() if t == "jobs"}


def synthetic(path: str, n: int, mig, seed: int = 7) -> None:
    """A store file holding the migrated schema and n Google-shaped jobs."""
    rnd = random.Random(seed)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("BEGIN")
    for _v, _t, statements in mig.MIGRATIONS:
        for sql in statements:
            if not sql.lstrip().upper().startswith(("UPDATE",)):
                con.execute(sql)
    for name in jobs_indexes(mig):
        con.execute(f"DROP INDEX IF EXISTS {name}")
    finals = [("completed", "FINISH", None, None)] * 60 + [("cancelled", "KILL", "cancelled", "job")] * 30 \
        + [("failed", "FAIL", "app_error", "job")] * 6 + [("preempted", "EVICT", "preempted", "cluster")] * 2 \
        + [("running", "RUNNING", None, None)] * 2
    cols = ("cluster", "job_id", "name", "user", "project", "queue", "state", "raw_state",
            "failure_type", "blame", "reason", "submit_time", "start_time", "end_time",
            "elapsed_s", "source")
    sql = f"INSERT INTO jobs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    t0, jid = 1_304_290_200, 6_250_000_000
    rows = []
    for i in range(n):
        jid += rnd.randint(1, 30)
        user = f"u{int(rnd.paretovariate(1.2)) % 930}"
        st, raw, ft, bl = rnd.choice(finals)
        sub = t0 + int(i * 2_520_000 / n) + rnd.randint(0, 600)
        start = sub + rnd.randint(0, 120)
        end = None if st == "running" else start + int(rnd.expovariate(1 / 1800))
        rows.append(("google2011", str(jid), f"job-{rnd.randint(0, 66_000)}", user, user,
                     f"class-{rnd.randint(0, 3)}", st, raw, ft, bl, None, sub, start, end,
                     None if end is None else end - start, "google2011"))
    rnd.shuffle(rows)  # the file is not in key order either
    con.executemany(sql, rows)
    con.execute("COMMIT")
    con.close()


def build(path: str, pragmas: list[str], together: bool, mig) -> dict:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("PRAGMA temp_store = MEMORY")
    con.execute("PRAGMA cache_size = -65536")
    want = jobs_indexes(mig)
    for name in want:
        con.execute(f"DROP INDEX IF EXISTS {name}")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for p in pragmas:
        con.execute(f"PRAGMA {p}")
    out: dict = {"pragmas": pragmas, "rows": con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0],
                 "indexes": {}}
    w0, c0 = time.perf_counter(), time.process_time()
    if together:
        con.execute("BEGIN IMMEDIATE")
    for name, sql in want.items():
        w, c = time.perf_counter(), time.process_time()
        if not together:
            con.execute("BEGIN IMMEDIATE")
        con.execute(sql)
        if not together:
            con.execute("COMMIT")
        out["indexes"][name] = [round(time.process_time() - c, 3), round(time.perf_counter() - w, 3)]
    if together:
        con.execute("COMMIT")
    out["total_cpu_s"] = round(time.process_time() - c0, 3)
    out["total_wall_s"] = round(time.perf_counter() - w0, 3)
    con.close()
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--db", help="a store to copy (read only)")
    src.add_argument("--synthetic", type=int, default=490_845,
                     help="build this many Google-shaped jobs (the default, 490,845)")
    ap.add_argument("--pragma", action="append", default=[], help="e.g. threads=2 (repeatable)")
    ap.add_argument("--together", action="store_true", help="one transaction, as the ingest")
    ap.add_argument("--keep", help="folder for the working copy (default: a temporary one)")
    a = ap.parse_args(argv)
    mig = _migrations()
    work = Path(a.keep or tempfile.mkdtemp(prefix="jm-idx-"))
    work.mkdir(parents=True, exist_ok=True)
    path = str(work / "idx.db")
    for ext in ("", "-wal", "-shm"):
        if os.path.exists(path + ext):
            os.remove(path + ext)
    if a.db:
        shutil.copy(a.db, path)
    else:
        synthetic(path, a.synthetic, mig)
    result = build(path, a.pragma, a.together, mig)
    result["source"] = a.db or f"synthetic {a.synthetic:,}"
    print(json.dumps(result, indent=1))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
