"""Walk-forward refitting of the runtime model (models/runtime_walk.py, `jobmedic evaluate
runtime --refit-every`), candidates compared on a VALIDATION window inside the training 70 %.

The test cut is the runtime card's (70 % of RICC's completed jobs by submit time). The
validation window is the last `--days` (default 28, the test window's length) before it: each
candidate walks forward over it, every refit trained by `training.train(until=STEP)` (the code
of `train runtime --until STEP`) on the jobs submitted and ended before STEP, so nothing of the
test window (nor of the validation window after STEP) is seen. Candidates: static (one fit at
the window's start), a refit every 7 / 14 days (30 days = static on a 28-day window), on all
history or on a trailing 30 / 60 days. Fits shared by several candidates (same STEP and
window) run once.

    .venv/bin/python -m bench.eval_ricc_walk [--data ricc|eagle|google] [--days 28]
        [--candidates static,7d,14d,7d/60d,7d/30d] [--out FILE.json] [--nthread 1]

`--test EVERY[/WINDOW]` runs ONE chosen candidate on the test window instead (from the cut to
the end of the data), beside the static model, and records it; use it once, after choosing on
validation. The CLI path (`jobmedic evaluate runtime --from CUT --refit-every 7d`) is the same
function.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np

from bench.eval_common import OUT, store_for
from bench.eval_ricc_runtime import SOURCES
from jobmedic.knowledge.store import Store
from jobmedic.models import registry, runtime, runtime_walk, training

DAY = 86400


def parse(c: str) -> tuple[int | None, int | None]:
    """'static' -> (None, None); '7d' -> (7 d, None); '7d/60d' -> (7 d, 60 d)."""
    if c == "static":
        return None, None
    every, _, window = c.partition("/")
    return runtime_walk.span(every, "every"), (runtime_walk.span(window, "window") if window else None)


def row(res: dict, key: str) -> dict:
    out = {}
    for mode in ("model", "recalibrated_daily"):
        m = res[key][mode]
        w = m["walltime_recommendation"]
        out[mode] = {"mae": round(m["mae"], 3), "median_ae": round(m["median_ae"], 3),
                     "coverage": {k: round(v, 3) for k, v in m["coverage"].items()},
                     "killed": round(w["killed_share"], 4),
                     "saved": round(w["core_hours_saved_share"] or 0, 4)}
    return out


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", choices=sorted(SOURCES), default="ricc")
    ap.add_argument("--days", type=float, default=28)
    ap.add_argument("--candidates", default="static,7d,14d,7d/60d,7d/30d")
    ap.add_argument("--test", default=None, help="run ONE candidate (EVERY[/WINDOW]) on the test window")
    ap.add_argument("--nthread", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--db", default=None, help="a copy of the ingested store to use instead of bench/out/data/<data>.db")
    ap.add_argument("--models", default=None, help="folder for the refits' artifacts (default: a temporary one)")
    a = ap.parse_args(argv)
    reader, path, cluster = SOURCES[a.data]
    s = Store(a.db) if a.db else store_for(a.data, reader, path, cluster=cluster)
    root = a.models or tempfile.mkdtemp(prefix="jobmedic-walk-")
    frame = training._positional(training.load(s))
    df = frame[0]
    mask, _ = runtime.labels(df)
    subs = np.sort(df.loc[mask, "submit_time"].to_numpy())
    cut = int(subs[int(len(subs) * 0.7)])
    if a.test:
        start, end, cands = cut, None, [a.test]
    else:
        start, end, cands = cut - int(a.days * DAY), cut, a.candidates.split(",")
    params = {"nthread": a.nthread}
    cache: dict = {}
    costs: list = []

    def fit(step: int, train_from: int | None):
        key = (step, train_from)
        if key not in cache:
            mdir = f"{root}/{a.data}-{step}-{train_from or 'all'}"
            t, c = time.perf_counter(), time.process_time()
            card = training.train(s, "runtime", mdir, until=step, frame=frame, params=params,
                                  train_from=train_from)
            cost = {"wall_s": round(time.perf_counter() - t, 1),
                    "cpu_s": round(time.process_time() - c, 1)}
            model, _ = registry.load(mdir, "runtime")
            cache[key] = (model, card, cost)
            costs.append({"until": training._iso(step), "train_from": training._iso(train_from),
                          "fit": card["counts"]["fit"], "calibration": card["counts"]["calibration"]}
                         | cost)
            print(json.dumps(costs[-1]), flush=True)
        return cache[key]

    out: dict = {"data": a.data, "slice": "test" if a.test else "validation",
                 "window": {"from": training._iso(start), "to": training._iso(end)},
                 "candidates": {}, "refits": costs}
    for c in cands:
        every, window = parse(c)
        span = (end or int(df["submit_time"].max()) + 1) - start
        res = runtime_walk.walk_forward(s, start, end, every or span, window=window, frame=frame,
                                        fit=fit)
        out["candidates"][c] = row(res, "refit") | {
            "refits": len(res["walk_forward"]["refits"]), "n": res["refit"]["n"],
            "baselines": {k: round(v["mae"], 3) for k, v in res["refit"]["baselines"].items()}}
        if c != "static":
            out["candidates"][c]["static_same_rows"] = row(res, "static")
        print(c, json.dumps(out["candidates"][c]), flush=True)
    dest = a.out or OUT / f"runtime_walk_{a.data}_{'test' if a.test else 'validate'}.json"
    with open(dest, "w") as f:
        json.dump(out, f, indent=1, default=str)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
