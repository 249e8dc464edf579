"""Scale (issue 16 item 7): stores of 100k / 1M / 10M synthetic jobs built through the public
ingest path, and the latency of whole CLI commands on each.

    python -m bench scale [--sizes 100000,1000000,10000000] [--runs 5] [--dir /tmp]
                          [--build-only] [--keep-text]

Each store is `<dir>/jm-<size>.db` (jm-100k.db, jm-1m.db, jm-10m.db). Building one writes
bench/synthetic_sacct.py's text (bench/synthetic.py's shapes at 33,333 jobs a day, so a bigger
store is a longer history) and runs `jobmedic --db STORE ingest slurm TEXT --no-learn` in a child
process reaped with os.wait4: wall, CPU (user + system) and peak RSS of the whole command, and the
store's size on disk. The facts go to `<store>.build.json` and a finished store is reused; a
`<store>.READY` file marks it complete. Then each command (stats, analyze over the last 7 days
of the data, predict a spec, remediate a failed job) runs `--runs` times as a whole CLI process
(`jobmedic --db STORE --as-of T_END act JSON`): medians of wall, CPU and peak RSS. predict needs
a failure model: one is trained once on the 100k store (`train failure`) and its artifact folder
copied beside each bigger store, so every size serves the same model and only the store grows.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from bench import synthetic_sacct

ROOT = Path(__file__).resolve().parent.parent
LABEL = {100_000: "100k", 1_000_000: "1m", 10_000_000: "10m"}
T_END = synthetic_sacct.T_END
REQUESTS = {
    "stats": {"action": "stats", "lookback_days": 7},
    "analyze": {"action": "analyze", "lookback_days": 7},
    "predict": {"action": "predict", "user": "user001", "project": "proj01", "queue": "gpu",
                "req_cpus": 8, "req_mem_mb": 32000, "req_walltime_s": 43200},
    "remediate": {"action": "remediate", "job_id": "50", "cluster": "bench"},
}


def label(n: int) -> str:
    return LABEL.get(n, str(n))


def child(argv: list[str], out: Path | None = None) -> dict:
    """Wall, CPU (user + system) and peak RSS of one child process; stdout to `out`."""
    t0 = time.perf_counter()
    with open(out or os.devnull, "w") as f:
        p = subprocess.Popen(argv, cwd=ROOT, stdout=f, stderr=subprocess.PIPE, text=True)
        err = p.stderr.read() if p.stderr else ""
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {code}: {err[-800:]}")
    return {"wall_s": round(wall, 3), "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
            "peak_rss_mb": round(ru.ru_maxrss / 1024, 1)}


def size_mb(db: Path) -> float:
    files = [db, Path(str(db) + "-wal"), Path(str(db) + "-shm")]
    return round(sum(p.stat().st_size for p in files if p.exists()) / 2**20, 1)


def _commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "jobmedic"], cwd=ROOT,
                           capture_output=True, text=True, check=False).stdout.strip()
    return head + (f" (+{len(dirty.splitlines())} uncommitted files under jobmedic/)" if dirty else "")


def build(n: int, where: Path, keep_text: bool = False) -> dict:
    db = where / f"jm-{label(n)}.db"
    facts_file = Path(str(db) + ".build.json")
    ready = Path(str(db) + ".READY")
    if ready.exists() and facts_file.exists():
        return json.loads(facts_file.read_text()) | {"reused": True}
    for p in where.glob(db.name + "*"):
        p.unlink()
    text = where / f"jm-{label(n)}.sacct.txt"
    t0 = time.perf_counter()
    gen = synthetic_sacct.write(text, n)
    gen_s = time.perf_counter() - t0
    load0 = os.getloadavg()[0]
    commit = _commit()  # the code the ingest child loads
    run = child([sys.executable, "-m", "jobmedic", "--db", str(db), "ingest", "slurm", str(text),
                 "--cluster", "bench", "--no-learn", "--json", "--no-progress"],
                out=Path(str(db) + ".ingest.json"))
    facts = {"jobs": n, "store": str(db), "text_mb": round(gen["bytes"] / 2**20, 1),
             "days": gen["days"], "failed": gen["failed"], "text_written_s": round(gen_s, 1),
             "ingest": run | {"jobs_per_wall_s": round(n / run["wall_s"]),
                              "jobs_per_cpu_s": round(n / run["cpu_s"])},
             "store_mb": size_mb(db), "commit": commit,
             "load_avg_start_end": [round(load0, 1), round(os.getloadavg()[0], 1)],
             "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if not keep_text:
        text.unlink()
    facts_file.write_text(json.dumps(facts, indent=2))
    ready.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
    print(f"built {db}: {json.dumps(facts)}", flush=True)
    return facts


def _cols(conn, schema: str, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA {schema}.table_info({table})")]


def replicate(src: Path, n: int, where: Path) -> dict:
    """A store of `n` jobs made of copies of the ingested store `src` (m jobs), copy k shifted
    back by k x its span with job ids + k x m, written in SQL (jobs, job_nodes, failure_events,
    templates) into a store opened by this code, indexes built at the end as a bulk ingest
    does; then the knowledge graph. For sizes whose ingest does not fit the time at hand: the
    rows are the reader's own, only repeated (say so beside its figures)."""
    from jobmedic.knowledge.graphstore import PersistedGraph
    from jobmedic.knowledge.store import Store

    db = where / f"jm-{label(n)}.db"
    facts_file = Path(str(db) + ".build.json")
    ready = Path(str(db) + ".READY")
    if ready.exists() and facts_file.exists():
        return json.loads(facts_file.read_text()) | {"reused": True}
    resumed = db.exists()  # a copy broken off earlier: go on from the copies it holds
    t0, c0, load0, commit = time.perf_counter(), time.process_time(), os.getloadavg()[0], _commit()
    store = Store(db, migrate=not resumed)  # (an open would build the dropped indexes first)
    conn = store.conn

    @contextmanager
    def deferred():  # BEGIN IMMEDIATE would also lock the attached source store
        conn.execute("BEGIN")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    conn.execute("ATTACH DATABASE ? AS src", (str(src),))
    m = conn.execute("SELECT COUNT(*) FROM src.jobs").fetchone()[0]
    lo, hi = conn.execute("SELECT MIN(submit_time), MAX(end_time) FROM src.jobs").fetchone()
    span = (hi - lo) // 86400 * 86400 + 86400
    copies = -(-n // m)
    store.drop_indexes_of_empty_tables()
    times = ("submit_time", "start_time", "end_time", "failed_at", "timestamp")

    def select(table: str, k: int, limit: int | None) -> tuple[str, str]:
        cols = [c for c in _cols(conn, "main", table) if c in set(_cols(conn, "src", table))
                and c != "id"]
        out = []
        for c in cols:
            if c == "job_id":
                out.append(f"CAST(CAST(job_id AS INTEGER) + {k * m} AS TEXT)")
            elif c in times:
                out.append(f"{c} - {k * span}")
            elif c == "dedup_key":
                out.append(f"'job:' || cluster || ':' || CAST(CAST(job_id AS INTEGER) + {k * m} AS TEXT)")
            else:
                out.append(c)
        cap = f" WHERE CAST(job_id AS INTEGER) <= {limit}" if limit is not None else ""
        return ", ".join(cols), f"SELECT {', '.join(out)} FROM src.{table}{cap}"

    tcols = [c for c in _cols(conn, "main", "templates") if c in set(_cols(conn, "src", "templates"))]
    with deferred():
        conn.execute(f"INSERT OR IGNORE INTO templates ({', '.join(tcols)}) "
                     f"SELECT {', '.join(tcols)} FROM src.templates")
    for k in range(copies - 1, -1, -1):  # oldest copy first, as a history would arrive
        limit = None if (k + 1) * m <= n else n - k * m
        if conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] >= (copies - k) * m:
            continue  # written before a resume
        with deferred():
            for table in ("jobs", "job_nodes", "failure_events"):
                cols, sel = select(table, k, limit)
                conn.execute(f"INSERT INTO {table} ({cols}) {sel}")
        print(f"copy {k}: {conn.execute('SELECT COUNT(*) FROM jobs').fetchone()[0]:,} jobs",
              flush=True)
    conn.execute("DETACH DATABASE src")
    rows_s = time.perf_counter() - t0
    store.rebuild_indexes()  # the indexes dropped for the load (only those missing)
    idx_s = time.perf_counter() - t0 - rows_s
    g0 = time.perf_counter()
    PersistedGraph(store).refresh()
    graph_s = time.perf_counter() - g0
    store.close()  # no ANALYZE: the ingested stores have none either (same query plans)
    facts = {"jobs": n, "store": str(db), "built_from": str(src), "copies": copies,
             "resumed": resumed,
             "span_days": span // 86400, "replicated_s": round(rows_s, 1),
             "indexes_s": round(idx_s, 1), "graph_s": round(graph_s, 1),
             "build_wall_s": round(time.perf_counter() - t0, 1),
             "build_cpu_s": round(time.process_time() - c0, 1), "store_mb": size_mb(db),
             "commit": commit, "load_avg_start_end": [round(load0, 1), round(os.getloadavg()[0], 1)],
             "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    facts_file.write_text(json.dumps(facts, indent=2))
    ready.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
    print(f"replicated {db}: {json.dumps(facts)}", flush=True)
    return facts


def model_for(dbs: list[Path]) -> None:
    """Train one failure model on the smallest store; copy its folder beside the others."""
    src = Path(str(dbs[0]) + ".models")
    if not src.exists():
        child([sys.executable, "-m", "jobmedic", "--db", str(dbs[0]), "train", "failure"])
    for db in dbs[1:]:
        dst = Path(str(db) + ".models")
        if not dst.exists():
            shutil.copytree(src, dst)


def measure(db: Path, runs: int, commands: list[str] | None = None) -> dict:
    out = {}
    for name, req in REQUESTS.items():
        if commands and name not in commands:
            continue
        argv = [sys.executable, "-m", "jobmedic", "--db", str(db), "--as-of", str(T_END), "act",
                json.dumps(req)]
        child(argv)  # warm the page cache
        rs = [child(argv) for _ in range(runs)]
        out[name] = {k: round(statistics.median(r[k] for r in rs), 3)
                     for k in ("wall_s", "cpu_s", "peak_rss_mb")} | {"runs": runs}
        print(f"{db.name} {name:10s} {json.dumps(out[name])}", flush=True)
    return out


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="bench scale")
    ap.add_argument("--sizes", default="100000,1000000,10000000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--commands", default="", help=f"comma-separated subset of {', '.join(REQUESTS)}")
    ap.add_argument("--keep-text", action="store_true")
    ap.add_argument("--replicate-above", type=int, default=None,
                    help="sizes above this are copies of the store of this size (see replicate)")
    a = ap.parse_args(argv)
    where = Path(a.dir)
    sizes = [int(s) for s in a.sizes.split(",")]
    result: dict = {"sizes": {}}
    for n in sizes:
        if a.replicate_above and n > a.replicate_above:
            src = where / f"jm-{label(a.replicate_above)}.db"
            result["sizes"][label(n)] = {"build": replicate(src, n, where)}
        else:
            result["sizes"][label(n)] = {"build": build(n, where, a.keep_text)}
    if a.build_only:
        return result
    dbs = [where / f"jm-{label(n)}.db" for n in sizes]
    model_for(dbs)
    result["load_avg_start"] = [round(x, 1) for x in os.getloadavg()]
    for n, db in zip(sizes, dbs):
        result["sizes"][label(n)]["commands"] = measure(db, a.runs, [c for c in a.commands.split(",") if c])
    result["load_avg_end"] = [round(x, 1) for x in os.getloadavg()]
    result["commit"] = _commit()
    return result
