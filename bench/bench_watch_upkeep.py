"""Per-poll cost of the models' after-load upkeep in `jobmedic watch` (live/watch.py ->
models/gnn_refresh.after_load: the gnn serving state when there is one, then the per-entity
summary) on a large store, against the change check it replaced (the count / failure / runtime
checksum of every ended job below the summary's watermark).

Each poll re-submits the store's newest ended jobs under new ids, moved after everything in the
store (so each one joins the summary), through a Watcher step whose poller writes them with
`Store.upsert_jobs`; the step's upkeep is timed (CPU and wall, from StepResult.upkeep), and
the old full checksum is timed after it. Medians of `--repeat` polls per size; the load
average is recorded (the machine is shared).

    .venv/bin/python -m bench.bench_watch_upkeep --store /tmp/jm-1m.db [--polls 100,1000]
        [--repeat 3] [--in-place]

The store is copied to a temporary folder first (it is written to), unless `--in-place` says
it already is a scratch copy. A store without a summary gets one built first (timed).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "watch_upkeep.json"


def main(argv: list[str] | None = None) -> dict:
    from jobmedic.knowledge import entity_summary
    from jobmedic.knowledge.migrations import JOB_COLUMNS
    from jobmedic.knowledge.store import Store
    from jobmedic.live.poller import PollResult
    from jobmedic.live.rules import RuleSet
    from jobmedic.live.sinks import Dispatcher
    from jobmedic.live.watch import Watcher
    from jobmedic.models.synthetic import replayed

    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--polls", default="100,1000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--in-place", action="store_true")
    a = ap.parse_args(argv)
    src = Path(a.store)
    tmp = None
    if a.in_place:
        path = src
    else:
        tmp = Path(tempfile.mkdtemp())
        path = tmp / src.name
        shutil.copyfile(src, path)
    s = Store(path)
    out: dict = {"store": str(src), "jobs": s.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0],
                 "loadavg_start": os.getloadavg(), "polls": []}
    if entity_summary.watermark(s) is None:
        c0, t0 = time.process_time(), time.perf_counter()
        out["summary_build"] = entity_summary.refresh(s, build=True) | {
            "cpu_s": round(time.process_time() - c0, 2), "wall_s": round(time.perf_counter() - t0, 2)}
    else:  # a summary from before the change log: its first refresh checks by the checksum
        entity_summary.refresh(s)
    c = {name: i for i, name in enumerate(JOB_COLUMNS)}
    cols = ", ".join(JOB_COLUMNS)
    sizes = [int(x) for x in a.polls.split(",")]
    need = max(sizes)
    last = s.conn.execute(f"SELECT {cols} FROM jobs WHERE end_time IS NOT NULL ORDER BY end_time DESC "
                          f"LIMIT {need}").fetchall()[::-1]
    rules = RuleSet({k: {"enabled": False} for k in ("repeat_failures", "node_users", "hotspot",
                                                     "known_fix", "memkill", "changepoint")})

    class Poll:
        def __init__(self) -> None:
            self.rows: list[tuple] = []
            self.upsert_s = 0.0

        def poll(self, now=None, since=None):
            t = time.perf_counter()
            s.upsert_jobs(self.rows)
            self.upsert_s = time.perf_counter() - t
            ids = [r[c["job_id"]] for r in self.rows]
            return PollResult(read=len(ids), new_jobs=s.live.jobs_by_ids(self.rows[0][c["cluster"]], ids))

    poller = Poll()
    w = Watcher(s, None, poller, rules, Dispatcher(s, []), read_output=False,
                retention={"enabled": False})
    k = 0
    for size in sizes:
        for _ in range(a.repeat):
            top = float(s.conn.execute("SELECT MAX(end_time) FROM jobs").fetchone()[0])
            rows = replayed(last[-size:], top, f"u{k}")
            k += 1
            poller.rows = rows
            res = w.step()
            up = res.upkeep or {}
            c0, t0 = time.process_time(), time.perf_counter()
            entity_summary._checksum(s, entity_summary.watermark(s))  # the check it replaced
            old = (round(time.process_time() - c0, 3), round(time.perf_counter() - t0, 3))
            row = {"poll_jobs": size, "upsert_wall_s": round(poller.upsert_s, 3),
                   "upkeep_cpu_s": up.get("cpu_seconds"), "upkeep_wall_s": up.get("seconds"),
                   "gnn": (up.get("gnn") or {}).get("mode"), "step_wall_s": round(res.seconds, 3),
                   "old_check_cpu_s": old[0], "old_check_wall_s": old[1],
                   "loadavg": round(os.getloadavg()[0], 1)}
            out["polls"].append(row)
            print(json.dumps(row), flush=True)
    out["median"] = {}
    for size in sizes:
        rs = [r for r in out["polls"] if r["poll_jobs"] == size]
        out["median"][size] = {key: statistics.median(r[key] for r in rs) for key in (
            "upsert_wall_s", "upkeep_cpu_s", "upkeep_wall_s", "step_wall_s", "old_check_cpu_s",
            "old_check_wall_s")}
    out["loadavg_end"] = os.getloadavg()
    print(json.dumps(out["median"]))
    s.close()
    if tmp is not None:
        shutil.rmtree(tmp)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1, default=str))
    return out


if __name__ == "__main__":
    main()
