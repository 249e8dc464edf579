"""The analyze action's whole answer on existing stores, for several windows, scopes and filters:
written to a JSON file, or compared with one written before (issue 16 item 2: the analyzers
without pandas and scipy must give the same findings, to the bit).

`python -m bench.analyze_same --stores A.db,B.db --out before.json` writes the answers (the data
of every request, as the CLI would print it); `--compare before.json` computes them again and
lists every request whose answer differs (exit status 1 when any does). Stores are opened as
the CLI opens them; use stores whose rollups are built (or copies: a first read builds them).
The requests include entity-filtered ones (user, queue, project, image, node; 1-30 days; issue
16: a filter reads the window, never the entity's whole history). `--only days7,f7_*` keeps
those requests (a trailing * matches a prefix); `--repeat N` times each request N times (in-process, a
store opened per run) and prints the medians, CPU and wall, with the load average."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

from jobmedic.core.timeutil import iso

AS_OF = 1717200000  # bench_scale's T_END (the 1M and 10M stores' end)
DAY = 86400


def requests(store: Any) -> dict[str, dict[str, Any]]:
    """The requests: windows of 1-30 days (midnight and off-midnight ends), a project scope,
    and each filter on the store's busiest value."""
    def top(col: str) -> str | None:
        row = store.conn.execute(
            f"SELECT {col}, COUNT(*) c FROM jobs WHERE {col} IS NOT NULL AND end_time >= ? "
            f"GROUP BY 1 ORDER BY c DESC LIMIT 1", (AS_OF - 3 * DAY,)).fetchone()
        return row[0] if row else None

    out: dict[str, dict[str, Any]] = {}
    for days in (1, 3, 7, 14, 30):
        out[f"days{days}"] = {"action": "analyze", "lookback_days": days}
    out["days7_off_midnight"] = {"action": "analyze", "lookback_days": 7,
                                 "as_of": iso(AS_OF - 10 * 3600 - 43 * 60)}
    out["days2_earlier"] = {"action": "analyze", "lookback_days": 2,
                            "as_of": iso(AS_OF - DAY - 5 * 3600)}
    project = top("project")
    out["days7_scoped"] = {"action": "analyze", "lookback_days": 7, "allowed_projects": [project]}
    for col in ("project", "user", "image", "queue"):
        v = top(col)
        if v is not None:
            out[f"days7_{col}"] = {"action": "analyze", "lookback_days": 7, col: v}
    node = store.conn.execute(
        "SELECT n.node, COUNT(*) c FROM jobs j JOIN job_nodes n USING (cluster, job_id) "
        "WHERE j.end_time >= ? GROUP BY 1 ORDER BY c DESC LIMIT 1", (AS_OF - 6 * 3600,)).fetchone()
    if node:
        out["days7_node"] = {"action": "analyze", "lookback_days": 7, "node": node[0]}
    out["days3_max"] = {"action": "analyze", "lookback_days": 3, "max_findings": 200}
    out.update(filtered(store, top, node[0] if node else None))
    return out


def filtered(store: Any, top: Any, node: str | None) -> dict[str, dict[str, Any]]:
    """Entity-filtered requests (each filter reads its window through the entity's
    (entity, end_time) index or the window index, never the entity's whole history): the
    busiest and a quiet value, 1-30 day windows, an off-midnight end, combined filters and
    a filter inside a scope."""
    def quiet(col: str) -> str | None:
        row = store.conn.execute(
            f"SELECT {col}, COUNT(*) c FROM jobs WHERE {col} IS NOT NULL AND end_time >= ? "
            f"GROUP BY 1 HAVING c >= 20 ORDER BY c, 1 LIMIT 1", (AS_OF - 7 * DAY,)).fetchone()
        return row[0] if row else None

    out: dict[str, dict[str, Any]] = {}
    for col in ("user", "queue", "project", "image"):
        for name, v in (("", top(col)), ("_quiet", quiet(col))):
            if v is None:
                continue
            for days in (1, 7, 30):
                out[f"f{days}_{col}{name}"] = {"action": "analyze", "lookback_days": days, col: v}
    user, queue, project = top("user"), top("queue"), top("project")
    off = iso(AS_OF - 10 * 3600 - 43 * 60)
    if user is not None:
        out["f7_user_off_midnight"] = {"action": "analyze", "lookback_days": 7, "as_of": off,
                                       "user": user}
    if user is not None and queue is not None:
        out["f7_user_queue"] = {"action": "analyze", "lookback_days": 7, "user": user,
                                "queue": queue}
    if project is not None and user is not None:
        out["f7_user_scoped"] = {"action": "analyze", "lookback_days": 7, "user": user,
                                 "allowed_projects": [project]}
    if node is not None:
        for days in (1, 30):
            out[f"f{days}_node"] = {"action": "analyze", "lookback_days": days, "node": node}
        if queue is not None:
            out["f7_node_queue"] = {"action": "analyze", "lookback_days": 7, "node": node,
                                    "queue": queue}
    return out


def answers(db: str, only: str = "", repeat: int = 1) -> dict[str, Any]:
    """Every request's answer; each request timed in-process (the action alone, CPU and
    wall) on a store opened for it (no memo of an earlier request), the median of `repeat`."""
    from jobmedic.app import build_tool_context, load_taxonomy, open_store
    from jobmedic.settings import Settings
    from jobmedic.tools import run_action

    s = Settings(db=db)
    taxonomy = load_taxonomy()
    store = open_store(s)
    try:
        reqs = {k: v for k, v in requests(store).items() if not only or any(
            k == o or (o.endswith("*") and k.startswith(o[:-1])) for o in only.split(","))}
    finally:
        store.close()
    out = {}
    for name, req in reqs.items():
        walls, cpus = [], []
        for _ in range(max(1, repeat)):
            store = open_store(s)
            try:
                ctx = build_tool_context(s, store, taxonomy, AS_OF)
                t, c = time.perf_counter(), time.process_time()
                res = run_action(dict(req), ctx)
                walls.append(time.perf_counter() - t)
                cpus.append(time.process_time() - c)
            finally:
                store.close()
        out[name] = {"request": req, "status": res.status, "data": res.data, "error": res.error}
        n = len((res.data or {}).get("findings", []))
        print(f"{db} {name}: {res.status}, {n} findings, median of {len(walls)}: "
              f"{statistics.median(walls):.2f} s wall, {statistics.median(cpus):.2f} CPU-s "
              f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    return json.loads(json.dumps(out, sort_keys=True))  # as the CLI serialises it


def differences(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, before, after) of every leaf that differs."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += differences(a.get(k), b.get(k), f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [(path, a, b)]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.analyze_same")
    ap.add_argument("--stores", required=True, help="comma-separated stores")
    ap.add_argument("--out", default="", help="write the answers here")
    ap.add_argument("--compare", default="", help="compare with answers written before")
    ap.add_argument("--only", default="",
                    help="only these requests (comma-separated names; a trailing * matches a prefix)")
    ap.add_argument("--repeat", type=int, default=1, help="time each request this many times")
    args = ap.parse_args(argv)
    got = {db: answers(db, args.only, args.repeat) for db in args.stores.split(",")}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(got, fh, sort_keys=True, indent=1)
    if not args.compare:
        return 0
    with open(args.compare) as fh:
        before = json.load(fh)
    bad = 0
    for db, reqs in got.items():
        for name, ans in reqs.items():
            old = (before.get(db) or {}).get(name)
            same = old == ans
            bad += not same
            print(f"{db} {name}: {'same' if same else 'DIFFERENT'}")
            if not same:
                for path, x, y in differences(old, ans)[:10]:
                    print(f"    {path}: {x!r} -> {y!r}")
    print(f"{bad} of {sum(len(r) for r in got.values())} answers differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
