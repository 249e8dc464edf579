"""Whole-CLI analyze, two code versions side by side (issue 16 item 2): the installed tree
("after") and another copy of the package put first on PYTHONPATH ("before"), alternated on the
same stores so both see the same load; wall, CPU and peak RSS of each process (os.wait4).

    mkdir -p /tmp/ab_old && cp -r jobmedic /tmp/ab_old/ && rm -r /tmp/ab_old/jobmedic/analyzers
    git archive 7e2f1cf^ jobmedic/analyzers | tar -x -C /tmp/ab_old
    python -m bench.analyze_ab --old /tmp/ab_old --stores /tmp/jm-1m.db,/tmp/h16s/jm-10m.db

(the analyzers before they dropped pandas and scipy, with everything else as in this tree)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REQ = '{"action":"analyze","lookback_days":7}'


def run_once(old: str | None, db: str, as_of: int, req: str = REQ) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one `jobmedic --db DB --as-of T act REQ` process."""
    env = dict(os.environ)
    if old:
        env["PYTHONPATH"] = old
    exe = str(Path(sys.executable).with_name("jobmedic"))
    t = time.perf_counter()
    p = subprocess.Popen([exe, "--db", db, "--as-of", str(as_of), "act", req],
                         stdout=subprocess.DEVNULL, env=env, cwd="/tmp")
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(f"{'before' if old else 'after'} on {db} failed (status {status})")
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.analyze_ab")
    ap.add_argument("--old", required=True, help="folder holding the 'before' jobmedic package")
    ap.add_argument("--stores", required=True, help="comma-separated stores")
    ap.add_argument("--as-of", type=int, default=1717200000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--request", default=REQ, help="the act request (JSON); default: 7 days")
    args = ap.parse_args(argv)
    out: dict = {}
    for db in args.stores.split(","):
        load0 = [round(x, 1) for x in os.getloadavg()]
        versions = {"before": args.old, "after": None}
        for old in versions.values():
            run_once(old, db, args.as_of, args.request)  # warm the page cache and the bytecode
        res: dict[str, list] = {v: [] for v in versions}
        for _ in range(args.runs):
            for v, old in versions.items():
                res[v].append(run_once(old, db, args.as_of, args.request))
        out[db] = {v: {"wall_s": round(statistics.median(r[0] for r in rs), 3),
                       "cpu_s": round(statistics.median(r[1] for r in rs), 3),
                       "peak_rss_mb": round(statistics.median(r[2] for r in rs), 1)}
                   for v, rs in res.items()}
        out[db]["load_avg"] = load0 + [round(x, 1) for x in os.getloadavg()]
        print(db, json.dumps(out[db]), flush=True)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
