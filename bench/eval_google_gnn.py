"""The GraphSAGE failure model on the Google Borg 2011 split (train days 0-14, test 15-20),
beside the XGBoost model of `bench.eval_google_failure` (run that first: it trains the
XGBoost artifact this compares with) and their average.

    .venv/bin/python -m bench.eval_google_gnn [--epochs N]
"""
from __future__ import annotations

import json
import sys
import time

import torch

from bench.eval_common import DATA, models_dir, store_for
from jobmedic.ingest.google2011 import EPOCH_OFFSET
from jobmedic.models import training

DAY = 86400


def main(argv: list[str]) -> dict:
    torch.set_num_threads(2)
    s = store_for("google", "google2011", DATA / "google_clusterdata_2011" / "google2011_jobs.csv.gz")
    until, end = EPOCH_OFFSET + 15 * DAY, EPOCH_OFFSET + 21 * DAY
    params = {}
    if "--epochs" in argv:
        params["epochs"] = int(argv[argv.index("--epochs") + 1])
    frame = training.load(s)
    t = time.perf_counter()
    card = training.train(s, "gnn", models_dir("google"), until, frame=frame, params=params)
    train_s = time.perf_counter() - t
    res = training.evaluate(s, "gnn", models_dir("google"), until, end, frame=frame)
    out = {"train_s": round(train_s, 1), "train_card": card, "test": res}
    print(json.dumps(out, indent=1, default=str))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
