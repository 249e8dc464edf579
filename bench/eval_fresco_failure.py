"""Failure risk on real Stampede jobs (FRESCO accounting, Sep-Nov 2017), split by time inside
those months: the failure model trains on jobs submitted AND ended before 2017-10-16 (its own
last 20 % by submit time is the calibration slice; nothing is tuned on the test window) and is
tested on every job submitted from 2017-10-16 to the end of November. Positive = FAILED,
TIMEOUT or NODE_FAIL (CANCELLED is not a failure, as everywhere in jobmedic).

Baselines, computed online without leakage (each job sees only the jobs of the same user /
job name / account that ENDED strictly before its submit time): the smoothed historical failure
rate of the user, the job name and the account, and a plain XGBoost (default-ish parameters,
no re-weighting, no tuning) on those three rates and counts, fitted on the same training jobs.

    .venv/bin/python -m bench.eval_fresco_failure [--tune] [--split 2017-10-16]

Writes bench/out/fresco_failure.json (fresco_failure_tuned.json with --tune); the store is bench/out/data/fresco.db (rebuilt from the
CSVs when missing).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.eval_common import DATA, OUT, models_dir
from jobmedic.core.timeutil import iso
from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.knowledge.templates import Templates
from jobmedic.models import metrics, training
from jobmedic.models.features import is_ended, is_failed
from jobmedic.settings import config_path

FOLDER = DATA / "fresco_stampede_accounting"
MONTHS = ("sep", "oct", "nov")
NOV = 1509494400  # 2017-11-01T00:00:00Z
SMOOTH = 2.0  # pseudo-jobs at the training base rate behind every online rate


def fresco_store() -> Store:
    OUT.mkdir(parents=True, exist_ok=True)
    s = Store(OUT / "fresco.db")
    if s.table_counts()["jobs"] == 0:
        tax = Taxonomy.from_yaml(config_path("taxonomy.yaml"))
        for m in MONTHS:
            path = FOLDER / f"stampede_{m}_2017_job_accounting.csv"
            ctx = IngestContext(tax, Templates(s.load_templates()))
            summ = run_ingest(s, READERS["fresco"], str(path), ctx)
            print(f"ingested {path.name}: {summ.inserted} jobs, {summ.rejected} rejected "
                  f"in {summ.seconds:.1f}s", file=sys.stderr)
    return s


def online_rates(df: pd.DataFrame, key: str, prior: float) -> pd.DataFrame:
    """Per job: n and failures of earlier jobs with the same `key` that ended strictly before
    its submit time (an as-of merge), and their smoothed rate."""
    ended = df[is_ended(df) & df[key].notna()]
    ev = pd.DataFrame({"t": ended["end_time"].to_numpy(float), key: ended[key].to_numpy(),
                       "f": is_failed(ended).astype(float)}).sort_values([key, "t"])
    ev["cn"] = ev.groupby(key).cumcount() + 1.0
    ev["cf"] = ev.groupby(key)["f"].cumsum()
    q = pd.DataFrame({"t": df["submit_time"].to_numpy(float), key: df[key].to_numpy(),
                      "row": np.arange(len(df))}).dropna(subset=["t"]).sort_values("t")
    m = pd.merge_asof(q, ev.sort_values("t")[["t", key, "cn", "cf"]], on="t", by=key,
                      allow_exact_matches=False, direction="backward").sort_values("row")
    n = np.zeros(len(df))
    f = np.zeros(len(df))
    n[m["row"].to_numpy()] = m["cn"].fillna(0).to_numpy()
    f[m["row"].to_numpy()] = m["cf"].fillna(0).to_numpy()
    return pd.DataFrame({f"{key}_n": n, f"{key}_rate": (f + SMOOTH * prior) / (n + SMOOTH)},
                        index=df.index)


def baseline_booster(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray) -> np.ndarray:
    import xgboost as xgb

    clf = xgb.XGBClassifier(n_estimators=300, max_depth=4, learning_rate=0.05, subsample=0.8,
                            colsample_bytree=0.8, tree_method="hist", n_jobs=2, random_state=0)
    clf.fit(Xtr, ytr)
    return clf.predict_proba(Xte)[:, 1]


def _short(m: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()
            if k in ("n", "positives", "base_rate", "auroc", "auprc", "brier", "ece")}


def main(argv: list[str]) -> dict:
    split = argv[argv.index("--split") + 1] if "--split" in argv else "2017-10-16"
    until = int(pd.Timestamp(split, tz="UTC").timestamp())
    s = fresco_store()
    t = time.perf_counter()
    frame = training.load(s)
    df, _X = frame
    mdir = models_dir("fresco")
    card = training.train(s, "failure", mdir, until, frame=frame, tune="--tune" in argv,
                          trials=15, time_budget=240)
    train_s = time.perf_counter() - t
    res = training.evaluate(s, "failure", mdir, until, None, frame=frame)

    # the same rows training and evaluation used
    ended, failed = is_ended(df), is_failed(df).astype(int)
    sub, end = df["submit_time"].to_numpy(float), df["end_time"].to_numpy(float)
    tr = ended & (sub < until) & (end < until)
    te = ended & (sub >= until)
    prior = float(failed[tr].mean())
    feats = pd.concat([online_rates(df, k, prior) for k in ("user", "name", "project")], axis=1)
    out_models: dict[str, dict] = {"failure_model": _short(res["metrics"]["model"])}
    for k, label in (("user", "user_rate"), ("name", "jobname_rate"), ("project", "account_rate")):
        out_models[label] = _short(metrics.classification(failed[te], feats.loc[te, f"{k}_rate"]))
    p = baseline_booster(feats[tr].to_numpy(), failed[tr], feats[te].to_numpy())
    out_models["booster_on_rates"] = _short(metrics.classification(failed[te], p))
    out_models["prior_rate"] = _short(metrics.classification(
        failed[te], np.full(int(te.sum()), prior), calibrated=True))
    # the same models on the later part of the test window alone (further from training)
    periods = {}
    for lo, hi in ((until, NOV), (NOV, None)):
        part = te & (sub >= lo) & ((sub < hi) if hi else True)
        r = training.evaluate(s, "failure", mdir, lo, hi, frame=frame)["metrics"]
        sel = part[te]
        periods[f"{iso(lo)[:10]}..{iso(hi)[:10] if hi else 'end'}"] = {
            "failure_model": _short(r["model"]),
            "user_rate": _short(metrics.classification(failed[part],
                                                       feats.loc[part, "user_rate"])),
            "booster_on_rates": _short(metrics.classification(failed[part], p[sel]))}
    out = {
        "data": f"{len(df)} FRESCO Stampede jobs, {iso(np.nanmin(sub))} .. {iso(np.nanmax(sub))}",
        "split": {"train": f"submitted and ended before {iso(until)} "
                           f"({int(tr.sum())} jobs, {int(failed[tr].sum())} failed; last 20 % "
                           "by submit time = calibration slice)",
                  "test": f"submitted from {iso(until)} ({int(te.sum())} jobs, "
                          f"{int(failed[te].sum())} failed)"},
        "tuned": "--tune" in argv, "train_seconds": round(train_s, 1),
        "train_counts": card["counts"], "tuning": card.get("tuning"),
        "models": out_models, "by_period": periods,
        "jobmedic_card_baselines": {k: _short(v) for k, v in res["metrics"].items()
                                    if isinstance(v, dict) and k != "model"},
    }
    name = "fresco_failure_tuned.json" if "--tune" in argv else "fresco_failure.json"
    Path(OUT).parent.joinpath(name).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
