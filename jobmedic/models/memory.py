"""Peak memory at submit time: quantile models read with an asymmetric cost. Under-allocation
kills the job and costs 5x over-allocation, so the recommendation is the 5/6 quantile (the
minimiser of that cost); it is compared with the user's own request and the user's past max."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jobmedic.core.units import fmt_mem
from jobmedic.models import metrics
from jobmedic.models.base import table
from jobmedic.models.features import FEATURES
from jobmedic.models.quantile import QuantileModel

UNDER_COST = 5.0
RECOMMEND_ALPHA = round(UNDER_COST / (UNDER_COST + 1), 4)
ALPHAS = [0.5, RECOMMEND_ALPHA, 0.95]
BUDGETS = [0.01, 0.02, 0.05]  # retry budgets evaluated on the card


def labels(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(mask of completed jobs with a recorded peak memory, peak MB)."""
    y = df["max_rss_mb"].to_numpy(dtype="float64")
    return ((df["state"] == "completed").to_numpy() & np.isfinite(y) & (y > 0)
            & df["end_time"].notna().to_numpy()), y


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
    for b in BUDGETS:  # the conformal request for a retry budget (calibrated on the later slice)
        alloc = model.for_budget(X[FEATURES].to_numpy(), b)
        if alloc is not None:
            out[f"retry_budget_{b:g}"] = allocation(y, np.ceil(alloc / 256) * 256)
    out["user_request"] = allocation(y, df["req_mem_mb"].to_numpy(dtype="float64"))
    out["user_past_max"] = allocation(y, X["user_max_rss"].to_numpy())
    return out


class MemoryModel(QuantileModel):
    name = "memory"
    ALPHAS = ALPHAS
    labels = staticmethod(labels)

    def evaluate(self, frame, rows, y, card, reference=None) -> dict[str, Any]:
        df, X = frame
        return evaluate(self, X.iloc[rows], y, df.iloc[rows])

    @staticmethod
    def card_lines(m: dict[str, Any]) -> list[str]:
        rows = {k: v for k, v in m.items() if isinstance(v, dict) and "under_allocated_share" in v}
        return table(rows, ["n", "under_allocated_share", "over_allocated_gb_per_job",
                            "total_allocated_over_used", "asymmetric_cost_gb_per_job"]) + [
            "", f"Median: {m['model']}"]

    def advice_columns(self, q, timelimit, raw=None):  # raw: the runtime's advice reads it
        out = {f"memory_q{a:g}": np.round(q[:, i], 1) for i, a in enumerate(ALPHAS)}
        out["recommended_mem_mb"] = recommend(q)
        return out

    def budget_columns(self, request, timelimit):
        return {"budget_mem_mb": np.ceil(request / 256) * 256}

    def advice(self, q, spec, raw=None):
        qd = {f"q{a:g}": round(float(v), 1) for a, v in zip(ALPHAS, q[0])}
        rec = float(recommend(q)[0])
        block = {"median": qd["q0.5"], "quantiles": qd, "recommended": rec, "safe_q0.95": qd["q0.95"]}
        return "memory_mb", block, f"--mem={fmt_mem(rec, request=True)}", ("memory", round(1 - RECOMMEND_ALPHA, 3))
