"""Analyze and stats with and without the per-day rollups (issue 16 item 2), on the synthetic
stores of the analyze benchmark (bench/synthetic.py), in-process through run_action.

`python -m bench rollups [--sizes 1000000] [--dir /tmp/jobmedic-bench] [--repeat 5]`: builds (or
reuses) DIR/analyze_<N>.db, then per size: the rollups' first build (CPU / wall), the requests
below with the rollups off (the raw queries, as before them) and on, medians side by side with
a check that both give the same findings, and an incremental refresh after a late load (new
jobs and state changes of old ones, rolled back afterwards so the store is kept).

`python -m bench rollups --stores /tmp/jm-1m-copy.db,/tmp/jm-10m-copy.db [--first-build]
[--repeat 5]`: the same through stores that exist already (bench/bench_scale.py's 1M and 10M
stores, or copies of them: the run writes the rollups), each read at bench_scale's T_END
(`--as-of`): with `--first-build`, the rollups dropped and built once in a child process (wall,
CPU, peak RSS); then analyze and stats over 7 days, side by side per store, as whole CLI
commands (`jobmedic --db STORE --as-of T act JSON`, one warm-up then `--repeat` runs: wall,
CPU and peak RSS of the process) and in-process through run_action (the action without the
start-up; each request building its own temp tables, and reusing the previous request's),
medians, with the load average before and after each store; `--check`: one run with the
rollups off (the raw queries) and whether its answer is the same."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.synthetic import T_END, build
from jobmedic.core.timeutil import iso
from jobmedic.knowledge.rollup_reads import rollup_reads
from jobmedic.knowledge.rollups import TABLES
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.settings import config_path
from jobmedic.tools import ToolContext, run_action

OFF_DAY = T_END - 10 * 3600 - 43 * 60  # a window that does not start or end at midnight
REQUESTS = {
    "analyze": {"action": "analyze", "lookback_days": 7},
    "analyze_off_midnight": {"action": "analyze", "lookback_days": 7, "as_of": iso(OFF_DAY)},
    "analyze_scoped": {"action": "analyze", "lookback_days": 7, "allowed_projects": ["proj03"]},
    "stats": {"action": "stats", "lookback_days": 7},
    "stats_node_day": {"action": "stats", "lookback_days": 7, "group_by": ["node", "day"]},
}


class _Rollback(Exception):
    pass


def timed(fn: Any) -> tuple[Any, float, float]:
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def time_one(ctx: ToolContext, req: dict, repeat: int, fresh: bool = False) -> dict:
    """Medians of `repeat` runs after a warm-up; `fresh`: each run builds its own temp tables
    (the partial days, the named nodes' jobs) as a new process would, instead of reusing the
    previous request's while the store is unchanged."""
    reads = rollup_reads(ctx.store._db)
    run_action(dict(req), ctx)  # warm
    walls, cpus, res = [], [], None
    for _ in range(repeat):
        if fresh:
            reads._edges.clear()
        res, w, c = timed(lambda: run_action(dict(req), ctx))
        assert res.status == "ok", res.error
        walls.append(w)
        cpus.append(c)
    return {"wall_s": round(statistics.median(walls), 3), "cpu_s": round(statistics.median(cpus), 3),
            "findings": [f["subject"] for f in res.data.get("findings", [])], "data": res.data}


def first_build(store: Store) -> dict:
    """Drop the rollups and build them as a first window read would."""
    store.rollups.drop()
    done, w, c = timed(lambda: store.refresh_rollups(build=True))
    rows = {t: store.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
    return {"wall_s": round(w, 2), "cpu_s": round(c, 2), "rows": rows, **done}


def late_load(store: Store, n_new: int, n_changed: int) -> dict:
    """Refresh after n_new new jobs and n_changed old ones turned failed (rolled back)."""
    cols = ("cluster", "job_id", "state", "failure_type", "end_time", "source", "project", "user")
    out: dict[str, Any] = {}
    try:
        with store.transaction():
            rows = [("bench", f"late{i}", "failed", "oom", T_END - 3600 - i, "bench", "proj01",
                     "user001") for i in range(n_new)]
            rows += [("bench", f"b{i * 37}", "failed", "gpu_error", None, "bench", None, None)
                     for i in range(n_changed)]
            store.upsert_jobs(rows, cols)
            store.add_job_nodes([("bench", f"late{i}", f"node{i % 2000:04d}") for i in range(n_new)])
            done, w, c = timed(store.refresh_rollups)
            out = {"new_jobs": n_new, "changed_jobs": n_changed, "wall_s": round(w, 3),
                   "cpu_s": round(c, 3), **done}
            raise _Rollback
    except _Rollback:
        pass
    return out


STORE_REQUESTS = {
    "analyze": {"action": "analyze", "lookback_days": 7},
    "stats": {"action": "stats", "lookback_days": 7},
}


def _load() -> list[float]:
    return [round(x, 1) for x in os.getloadavg()]


def build_only(db: str) -> dict:
    """Child of --first-build: drop the rollups of `db` and build them (prints the facts)."""
    with Store(db) as store:
        out = first_build(store)
    print(json.dumps(out))
    return out


def on_stores(paths: list[str], as_of: int, repeat: int, build: bool, check: bool) -> dict:
    """The rollup path through existing stores: first build, CLI and in-process latencies."""
    from bench.bench_scale import child

    tax = Taxonomy.from_yaml(config_path("taxonomy.yaml"))
    result: dict[str, Any] = {"as_of": as_of, "window_days": 7, "stores": {}}
    # every CLI command first: a child's peak RSS counts the image it was forked from, so the
    # children are started while this process is still small (before any in-process run)
    for db in paths:
        row: dict[str, Any] = {"load_avg_start": _load()}
        result["stores"][db] = row
        with Store(db) as store:
            row["jobs"] = store.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM jobs").fetchone()[0]
        if build:
            out = Path(db + ".rollups-build.json")
            row["first_build"] = child([sys.executable, "-m", "bench.bench_rollups",
                                        "--build-only", db], out=out)
            row["first_build"] |= json.loads(out.read_text())
            out.unlink()
            print(f"{db}: first build {json.dumps(row['first_build'])}", flush=True)
        for name, req in STORE_REQUESTS.items():
            argv = [sys.executable, "-m", "jobmedic", "--db", db, "--as-of", str(as_of), "act",
                    json.dumps(req)]
            child(argv)  # warm the page cache (and refresh the rollups if anything changed)
            rs = [child(argv) for _ in range(repeat)]
            row[f"{name}_cli"] = {k: round(statistics.median(r[k] for r in rs), 3)
                                  for k in ("wall_s", "cpu_s", "peak_rss_mb")}
            print(f"{db} {name} CLI: {json.dumps(row[f'{name}_cli'])}", flush=True)
    for db in paths:
        row = result["stores"][db]
        with Store(db) as store:
            ctx = ToolContext(store, tax, now=as_of)
            for name, req in STORE_REQUESTS.items():
                for fresh in (True, False):
                    r = time_one(ctx, req, repeat, fresh)
                    key = f"{name}_in_process" + ("" if fresh else "_reusing")
                    row[key] = {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
                                "findings": len(r["findings"])}
                    print(f"{db} {key}: {json.dumps(row[key])}", flush=True)
                if check:  # one run of the raw queries (rollups off): the same answer?
                    store.rollups.enabled = False
                    raw, w, c = timed(lambda q=req, x=ctx: run_action(dict(q), x))
                    store.rollups.enabled = True
                    row[f"{name}_raw_once"] = {"wall_s": round(w, 3), "cpu_s": round(c, 3),
                                               "same_answer": raw.data == r["data"]}
                    print(f"{db} {name} raw once: {json.dumps(row[f'{name}_raw_once'])}",
                          flush=True)
        row["load_avg_end"] = _load()
    return result


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench rollups")
    ap.add_argument("--stores", default="", help="comma-separated existing stores (see above)")
    ap.add_argument("--as-of", type=int, default=None, help="with --stores (default: "
                    "bench_scale's T_END)")
    ap.add_argument("--first-build", action="store_true", help="with --stores")
    ap.add_argument("--check", action="store_true", help="with --stores: one raw run, same answer?")
    ap.add_argument("--build-only", default="", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="1000000")
    ap.add_argument("--dir", default="/tmp/jobmedic-bench")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    if args.build_only:
        return build_only(args.build_only)
    if args.stores:
        from bench.synthetic_sacct import T_END as SACCT_END

        return on_stores(args.stores.split(","), args.as_of or SACCT_END, args.repeat,
                         args.first_build, args.check)
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    tax = Taxonomy.from_yaml(config_path("taxonomy.yaml"))
    result: dict[str, Any] = {"window_days": 7, "sizes": {}}
    for n in [int(x) for x in args.sizes.split(",")]:
        facts = build(Path(args.dir) / f"analyze_{n}.db", n, args.days)
        with Store(facts["path"]) as store:
            row: dict[str, Any] = {"store": facts, "load_avg_1m_start": os.getloadavg()[0],
                                   "first_build": first_build(store)}
            print(f"{n:,} jobs: rollups built in {row['first_build']['wall_s']} s wall "
                  f"({row['first_build']['cpu_s']} s CPU), rows {row['first_build']['rows']}")
            ctx = ToolContext(store, tax, now=T_END)
            for name, req in REQUESTS.items():
                both = {}
                for on in (False, True):
                    store.rollups.enabled = on
                    both["rollups" if on else "raw"] = time_one(ctx, req, args.repeat)
                raw, rol = both["raw"], both["rollups"]
                same = raw["data"] == rol["data"]  # the whole answer, evidence included
                row[name] = {"raw": {k: raw[k] for k in ("wall_s", "cpu_s")},
                             "rollups": {k: rol[k] for k in ("wall_s", "cpu_s")},
                             "same_answer": same, "findings": len(rol["findings"])}
                print(f"  {name:22s} raw {raw['wall_s']:.3f} s wall / {raw['cpu_s']:.3f} s CPU   "
                      f"rollups {rol['wall_s']:.3f} / {rol['cpu_s']:.3f}   same answer: {same}")
            store.rollups.enabled = True
            row["late_load"] = late_load(store, 10_000, 5_000)
            print(f"  refresh after a late load: {row['late_load']}")
            row["load_avg_1m_end"] = os.getloadavg()[0]
            result["sizes"][n] = row
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
