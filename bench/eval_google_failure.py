"""Failure risk on the Google Borg 2011 trace: train on jobs submitted in days 0-14, test on
days 15-20 (positive = a failed state: FAIL, plus the 31 EVICT/LOST jobs). Goal: AUROC >= 0.95
and AUPRC >= 1.1 x the best online-history baseline of the same run.

    .venv/bin/python -m bench.eval_google_failure [--tune]
"""
from __future__ import annotations

import json
import sys
import time

import torch  # noqa: F401  (imported first: the GNN comparison shares this process)

from bench.eval_common import DATA, models_dir, store_for
from jobmedic.ingest.google2011 import EPOCH_OFFSET
from jobmedic.models import training

DAY = 86400


def main(argv: list[str]) -> dict:
    s = store_for("google", "google2011", DATA / "google_clusterdata_2011" / "google2011_jobs.csv.gz")
    until, end = EPOCH_OFFSET + 15 * DAY, EPOCH_OFFSET + 21 * DAY
    t = time.perf_counter()
    frame = training.load(s)
    feat_s = time.perf_counter() - t
    tune = "--tune" in argv
    card = training.train(s, "failure", models_dir("google"), until, frame=frame, tune=tune,
                          trials=15, time_budget=240)
    train_s = time.perf_counter() - t
    res = training.evaluate(s, "failure", models_dir("google"), until, end, frame=frame)
    m = res["metrics"]
    out = {"features_s": round(feat_s, 1), "train_total_s": round(train_s, 1),
           "train_card": card, "test": res,
           "goal_auroc_0.95": (m["model"]["auroc"] or 0) >= 0.95,
           "goal_auprc_1.1x_baseline": (m["auprc_over_best_baseline"] or 0) >= 1.1}
    print(json.dumps({k: v for k, v in out.items() if k != "train_card"}, indent=1, default=str))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
