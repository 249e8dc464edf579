"""Runtime on the PWA RICC-2010-2 log: completed jobs, first 70 % by submit time to train
(its last 20 % for the conformal shift), last 30 % to test. Goals: MAE <= 1.7 h; coverage of
each quantile within 3 points; the recommended --time kills <= 5 % of jobs and saves >= half
of the requested core-hours.

    .venv/bin/python -m bench.eval_ricc_runtime
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from bench.eval_common import DATA, models_dir, store_for
from jobmedic.models import runtime, training


def main(argv: list[str]) -> dict:
    s = store_for("ricc", "swf", DATA / "pwa_ricc" / "RICC-2010-2.swf.gz", cluster="ricc")
    t = time.perf_counter()
    frame = training.load(s)
    df = frame[0]
    mask, _ = runtime.labels(df)
    subs = np.sort(df.loc[mask, "submit_time"].to_numpy())
    until = int(subs[int(len(subs) * 0.7)])
    card = training.train(s, "runtime", models_dir("ricc"), until, frame=frame)
    train_s = time.perf_counter() - t
    res = training.evaluate(s, "runtime", models_dir("ricc"), until, None, frame=frame)
    m = res["metrics"]
    cov = m["model"]["coverage"]
    w = m["walltime_recommendation"]
    out = {"train_total_s": round(train_s, 1), "train_card": card, "test": res,
           "goal_mae_1.7h": m["model"]["mae"] <= 1.7,
           "goal_coverage_3pts": all(abs(v - float(k[1:])) <= 0.03 for k, v in cov.items()),
           "goal_kills_5pct": w["killed_share"] <= 0.05,
           "goal_saves_half": (w["core_hours_saved_share"] or 0) >= 0.5}
    print(json.dumps({k: v for k, v in out.items() if k != "train_card"}, indent=1, default=str))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
