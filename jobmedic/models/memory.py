"""Peak memory at submit time: quantile models read with an asymmetric cost. Under-allocation
kills the job and costs 5x over-allocation, so the recommendation is the 5/6 quantile (the
minimiser of that cost); it is compared with the user's own request and the user's past max."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jobmedic.models import metrics
from jobmedic.models.features import FEATURES
from jobmedic.models.quantile import QuantileModel

UNDER_COST = 5.0
RECOMMEND_ALPHA = round(UNDER_COST / (UNDER_COST + 1), 4)
ALPHAS = [0.5, RECOMMEND_ALPHA, 0.95]


def labels(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(mask of completed jobs with a recorded peak memory, peak MB)."""
    y = df["max_rss_mb"].to_numpy(dtype="float64")
    return ((df["state"] == "completed").to_numpy() & np.isfinite(y) & (y > 0)
            & df["end_time"].notna().to_numpy()), y


def new_model(params: dict[str, Any] | None = None) -> QuantileModel:
    m = QuantileModel(ALPHAS, params)
    m.kind = "memory"
    return m


def recommend(q: np.ndarray) -> np.ndarray:
    """Memory to request (MB), rounded up to 256 MB."""
    return np.ceil(q[:, ALPHAS.index(RECOMMEND_ALPHA)] / 256) * 256


def allocation(y: np.ndarray, alloc: np.ndarray) -> dict[str, float]:
    """Share under-allocated, memory over-allocated (GB per job), and the 5:1 cost per job."""
    ok = np.isfinite(alloc)
    y, a = y[ok], alloc[ok]
    under = np.clip(y - a, 0, None) / 1024
    over = np.clip(a - y, 0, None) / 1024
    return {"n": int(ok.sum()), "under_allocated_share": float(np.mean(a < y)) if len(y) else None,
            "over_allocated_gb_per_job": float(np.mean(over)) if len(y) else None,
            "total_allocated_over_used": float(a.sum() / y.sum()) if len(y) else None,
            "asymmetric_cost_gb_per_job": float(np.mean(UNDER_COST * under + over)) if len(y) else None}


def evaluate(model: QuantileModel, X: pd.DataFrame, y: np.ndarray, df: pd.DataFrame) -> dict[str, Any]:
    q = model.predict(X[FEATURES].to_numpy())
    med = q[:, ALPHAS.index(0.5)]
    out: dict[str, Any] = {"n": len(y), "unit": "GB",
                           "model": metrics.regression(y, med, 1024)
                           | {"coverage": metrics.quantile_coverage(y, q, ALPHAS)}}
    out["recommendation"] = allocation(y, recommend(q))
    out["user_request"] = allocation(y, df["req_mem_mb"].to_numpy(dtype="float64"))
    out["user_past_max"] = allocation(y, X["user_max_rss"].to_numpy())
    return out
