"""The analyze action's whole answer on existing stores, for several windows, scopes and filters:
written to a JSON file, or compared with one written before (issue 16 item 2: the analyzers
without pandas and scipy must give the same findings, to the bit).

`python -m bench.analyze_same --stores A.db,B.db --out before.json` writes the answers (the data
of every request, as the CLI would print it); `--compare before.json` computes them again and
lists every request whose answer differs (exit status 1 when any does). Stores are opened as
the CLI opens them; use stores whose rollups are built (or copies: a first read builds them)."""
from __future__ import annotations

import argparse
import json
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
    return out


def answers(db: str) -> dict[str, Any]:
    from jobmedic.app import build_tool_context, load_taxonomy, open_store
    from jobmedic.settings import Settings
    from jobmedic.tools import run_action

    s = Settings(db=db)
    store = open_store(s)
    try:
        ctx = build_tool_context(s, store, load_taxonomy(), AS_OF)
        out = {}
        for name, req in requests(store).items():
            t = time.perf_counter()
            res = run_action(dict(req), ctx)
            out[name] = {"request": req, "status": res.status, "data": res.data,
                         "error": res.error}
            n = len((res.data or {}).get("findings", []))
            print(f"{db} {name}: {res.status}, {n} findings, {time.perf_counter() - t:.2f} s",
                  file=sys.stderr, flush=True)
        return json.loads(json.dumps(out, sort_keys=True))  # as the CLI serialises it
    finally:
        store.close()


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
    args = ap.parse_args(argv)
    got = {db: answers(db) for db in args.stores.split(",")}
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
