"""Runtime on the PWA RICC-2010-2 log (and, with `--data`, the NREL Eagle sample or the Google
2011 job durations): completed jobs, first 70 % by submit time to train (its last 20 % for the
conformal shift), last 30 % to test, through `training.train` / `training.evaluate`, the code
behind `jobmedic train runtime` / `evaluate runtime`. Goals on RICC: MAE <= 1.7 h; coverage of
each quantile within 3 points; the recommended --time kills <= 5 % of jobs and saves >= half
of the requested core-hours. The test figures are given twice: with the static conformal shift
of the calibration slice, and recalibrated daily on a sliding window (`online_recalibrated`,
models/runtime_rolling.py).

`--validate` scores the VALIDATION slice instead, carved from the training period: fit and
calibrate on the first 80 % of the completed jobs before the test cut (the same 80/20 split
inside it), score the jobs submitted from there to the cut. The runtime model's settings
(POINT_WEIGHT, LONG_LIMIT_S, TIER_BUDGETS in models/runtime.py) were chosen on it; the test
split is run once per final candidate.

    .venv/bin/python -m bench.eval_ricc_runtime [--data ricc|eagle|google] [--validate] [--out FILE.json] [--models DIR] [--nthread N]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from bench.eval_common import DATA, OUT, models_dir, store_for
from jobmedic.models import runtime, training

SOURCES = {
    "ricc": ("swf", DATA / "pwa_ricc" / "RICC-2010-2.swf.gz", "ricc"),
    "eagle": ("eagle", DATA / "eagle_sample" / "sample_eagle_data.csv", "eagle"),
    "google": ("google2011", DATA / "google_clusterdata_2011" / "google2011_jobs.csv.gz", None),
}


def goals(m: dict) -> dict:
    cov = m["coverage"]
    w = m["walltime_recommendation"]
    return {"mae_1.7h": m["mae"] <= 1.7,
            "coverage_3pts": all(abs(v - float(k[1:])) <= 0.03 for k, v in cov.items()),
            "kills_5pct": w["killed_share"] <= 0.05,
            "saves_half": (w["core_hours_saved_share"] or 0) >= 0.5}


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", choices=sorted(SOURCES), default="ricc")
    ap.add_argument("--out", default=None)
    ap.add_argument("--validate", action="store_true",
                    help="score the validation slice (last 20 %% of the training period)")
    ap.add_argument("--models", default=None,
                    help="models dir (default bench/out/data/models-<data>[-validate])")
    ap.add_argument("--nthread", type=int, default=None,
                    help="XGBoost threads (1 on a loaded machine: no spinning between threads)")
    a = ap.parse_args(argv)
    reader, path, cluster = SOURCES[a.data]
    s = store_for(a.data, reader, path, cluster=cluster)
    t, c = time.perf_counter(), time.process_time()
    frame = training.load(s)
    df = frame[0]
    mask, _ = runtime.labels(df)
    subs = np.sort(df.loc[mask, "submit_time"].to_numpy())
    until = int(subs[int(len(subs) * 0.7)])
    start, end, mdir = until, None, models_dir(a.data)
    if a.validate:  # the training period's last 20 % (by submit, completed before the cut)
        sub_all = df["submit_time"].to_numpy()
        tr = np.sort(sub_all[mask & (sub_all < until) & (df["end_time"].to_numpy() < until)])
        start, end, mdir = int(tr[int(len(tr) * 0.8)]), until, models_dir(a.data + "-validate")
    mdir = a.models or mdir
    load_s = (time.perf_counter() - t, time.process_time() - c)
    t, c = time.perf_counter(), time.process_time()
    params = {"nthread": a.nthread} if a.nthread else None
    card = training.train(s, "runtime", mdir, start, frame=frame, params=params)
    train_s = (time.perf_counter() - t, time.process_time() - c)
    res = training.evaluate(s, "runtime", mdir, start, end, frame=frame)
    m = res["metrics"]
    static = m["model"] | {"walltime_recommendation": m["walltime_recommendation"]}
    out = {"data": a.data, "slice": "validation" if a.validate else "test", "load_features_s": {"wall": round(load_s[0], 1), "cpu": round(load_s[1], 1)},
           "train_s": {"wall": round(train_s[0], 1), "cpu": round(train_s[1], 1)},
           "train_card": card, "test": res, "goals_static": goals(static)}
    if "online_recalibrated" in m:
        out["goals_online"] = goals(m["online_recalibrated"])
    print(json.dumps({k: v for k, v in out.items() if k != "train_card"}, indent=1, default=str))
    dest = a.out or OUT / f"runtime_{a.data}{'_validate' if a.validate else ''}.json"
    with open(dest, "w") as f:
        json.dump(out, f, indent=1, default=str)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
