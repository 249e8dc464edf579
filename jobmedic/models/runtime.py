"""Runtime at submit time: quantiles of the runtime of jobs that complete, the interval they
imply, and the walltime recommendation (the upper quantile as `--time`), compared with the
requested time, the mean of the user's last two runtimes and the global median."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jobmedic.models import metrics
from jobmedic.models.features import FEATURES
from jobmedic.models.quantile import QuantileModel

ALPHAS = [0.1, 0.5, 0.9, 0.95]
RECOMMEND_ALPHA = 0.95


def labels(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(mask of completed jobs with a runtime, runtime in seconds)."""
    y = df["elapsed_s"].to_numpy(dtype="float64")
    return ((df["state"] == "completed").to_numpy() & np.isfinite(y) & (y >= 0)
            & df["end_time"].notna().to_numpy()), y


def new_model(params: dict[str, Any] | None = None) -> QuantileModel:
    m = QuantileModel(ALPHAS, params)
    m.kind = "runtime"
    return m


def recommend(q: np.ndarray, timelimit: np.ndarray | None = None) -> np.ndarray:
    """The walltime to request: the upper quantile, never above the user's own limit."""
    rec = np.ceil(q[:, ALPHAS.index(RECOMMEND_ALPHA)] / 60) * 60 + 60
    if timelimit is not None:
        rec = np.where(np.isfinite(timelimit) & (timelimit > 0), np.minimum(rec, timelimit), rec)
    return rec


def walltime_effect(y: np.ndarray, rec: np.ndarray, timelimit: np.ndarray, cpus: np.ndarray) -> dict:
    """Share of jobs the recommended --time would have killed, and requested core-hours saved."""
    ok = np.isfinite(timelimit) & (timelimit > 0)
    c = np.where(np.isfinite(cpus) & (cpus > 0), cpus, 1)
    req = float(np.sum(timelimit[ok] * c[ok]))
    new = float(np.sum(rec[ok] * c[ok]))
    return {"killed_share": float(np.mean(y > rec)),
            "requested_core_hours": req / 3600, "recommended_core_hours": new / 3600,
            "core_hours_saved_share": (1 - new / req) if req else None,
            "n_with_limit": int(ok.sum())}


def evaluate(model: QuantileModel, X: pd.DataFrame, y: np.ndarray, df: pd.DataFrame,
             global_median: float) -> dict[str, Any]:
    q = model.predict(X[FEATURES].to_numpy())
    med = q[:, ALPHAS.index(0.5)]
    tl = df["timelimit_s"].to_numpy(dtype="float64")
    out: dict[str, Any] = {"n": len(y), "model": metrics.regression(y, med, 3600)
                           | {"coverage": metrics.quantile_coverage(y, q, ALPHAS)}}
    out["model"]["interval_80_coverage"] = float(np.mean((y >= q[:, 0]) & (y <= q[:, 2])))
    last2 = X["user_last2_rt"].to_numpy()
    base = {"requested_time": np.where(np.isfinite(tl), tl, global_median),
            "user_last_two_mean": np.where(np.isfinite(last2), last2, global_median),
            "global_median": np.full(len(y), global_median)}
    for name, pred in base.items():
        out[name] = metrics.regression(y, pred, 3600)
    rec = recommend(q, tl)
    out["walltime_recommendation"] = walltime_effect(y, rec, tl, df["req_cpus"].to_numpy(dtype="float64"))
    out["unit"] = "hours"
    return out
