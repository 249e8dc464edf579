"""Analyze and stats latency on synthetic stores of growing size (issue 3).

`python -m bench analyze [--sizes 100000,1000000] [--days 30] [--repeat 5]`: builds (or reuses)
bench/out/analyze_<N>.db through Store methods, then times `analyze` and `stats` in-process
through run_action with a 7-day window ending at the data's end; prints the medians."""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from bench.synthetic import T_END, build
from jobmedic.core.timeutil import Window
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.settings import config_path
from jobmedic.tools import ToolContext, run_action

OUT = Path(__file__).resolve().parent / "out"
REQUESTS = {
    "analyze": {"action": "analyze", "lookback_days": 7},
    "stats": {"action": "stats", "lookback_days": 7},
    "stats_node_day": {"action": "stats", "lookback_days": 7, "group_by": ["node", "day"]},
    "analyze_scoped": {"action": "analyze", "lookback_days": 7, "allowed_projects": ["proj03"]},
}


def time_one(ctx: ToolContext, req: dict, repeat: int) -> dict:
    times, cpu, status = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        res = run_action(dict(req), ctx)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        status = res.status
        assert status == "ok", res.error
    # CPU time of this process as well as wall time: the machine is shared, and the CPU
    # time is what the action costs when it has a core to itself
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "max_s": round(max(times), 3), "cpu_median_s": round(statistics.median(cpu), 3),
            "runs": repeat,
            "findings": len(res.data.get("findings", [])) if "findings" in res.data else None}


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench analyze")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    tax = Taxonomy.from_yaml(config_path("taxonomy.yaml"))
    result = {"days_of_data": args.days, "window_days": 7, "sizes": {}}
    for n in [int(x) for x in args.sizes.split(",")]:
        facts = build(OUT / f"analyze_{n}.db", n, args.days)
        print(f"store of {n:,} jobs: {facts}")
        with Store(facts["path"]) as store:
            ctx = ToolContext(store, tax, now=T_END)
            totals = store.window_totals(Window.lookback(T_END, 7), None)
            row = {"build": facts, "jobs_in_window": totals["jobs"]}
            run_action(dict(REQUESTS["analyze"]), ctx)  # warm the page cache once
            for name, req in REQUESTS.items():
                row[name] = time_one(ctx, req, args.repeat)
                print(f"  {name:16s} median {row[name]['median_s']:.3f} s "
                      f"(min {row[name]['min_s']:.3f}, max {row[name]['max_s']:.3f}; "
                      f"CPU {row[name]['cpu_median_s']:.3f} s)")
            row["load_avg_1m"] = os.getloadavg()[0]
            result["sizes"][n] = row
    return result
