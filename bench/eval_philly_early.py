"""Failure risk from the first minutes on the real Microsoft Philly GPU jobs (4,219 jobs with
per-minute GPU / CPU / memory windows from 10 minutes before to 3 minutes after the start).

Time split by submit time: the early kind trains on jobs submitted AND ended before the 80th
percentile of the labelled jobs' submit times (inside that, candidates fit on the first 80 % and
are chosen on the last 20 % — the validation slice — and the calibration is the last 20 % of
the training slice as everywhere in jobmedic), and is tested once on every job submitted
after. Horizons: "start" (only the 10 minutes before the job began) and "start+3min". Each
candidate (history, telemetry, window, gru, ae, window_ae) and the raw user failure rate are
reported with AUROC / AUPRC / Brier on the test period.

    .venv/bin/python -m bench.eval_philly_early [--horizon start|start+3min]...

Writes bench/out/data/philly_early.json; the store is bench/out/data/philly.db (ingested when
missing).
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from bench.eval_common import DATA, OUT, models_dir, store_for
from jobmedic.knowledge.store import Store
from jobmedic.models import early_data, training

SRC = DATA / "philly_gpu_jobs"


def store() -> Store:
    return store_for("philly", "philly", SRC, cluster="philly")


def run(horizon: str) -> dict:
    st = store()
    frame = early_data.frame(st, horizon_s=early_data.HORIZONS[horizon])
    df = frame[0]
    lab = df["has_telemetry"].to_numpy()
    until = int(np.quantile(df["submit_time"].to_numpy()[lab], 0.8))
    d = models_dir(f"philly_early_{horizon.replace('+', '_')}")
    t0 = time.perf_counter()
    card = training.train(st, "early", d, until=until, frame=frame)
    secs = time.perf_counter() - t0
    res = training.evaluate(st, "early", d, until, frame=frame)
    m = res["metrics"]
    keep = ("n", "positives", "base_rate", "auroc", "auprc", "brier", "ece")
    return {"horizon": horizon, "until": until, "train_seconds": round(secs, 1),
            "fit_seconds": card["split"]["seconds"], "chosen": card["chosen"],
            "validation_auroc": card["validation_auroc"], "counts": card["counts"],
            "test": {k: {a: v.get(a) for a in keep} for k, v in m.items() if isinstance(v, dict)
                     and "n" in v}}


def main(argv: list[str]) -> None:
    hs = [argv[i + 1] for i, a in enumerate(argv) if a == "--horizon"] or list(early_data.HORIZONS)
    out = {h: run(h) for h in hs}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "philly_early.json").write_text(json.dumps(out, indent=2, default=float))
    print(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main(sys.argv[1:])
