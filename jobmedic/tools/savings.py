"""The savings action: over a window, the core-hours and GB-hours requested but unused, and
what following the recommendations at a retry budget would have saved and how many jobs it
would have killed, per user, project and queue.

Jobs counted: those submitted in the window that completed with a runtime (their runtime and
peak memory are what they really needed). "Requested" is the time limit x CPUs and the memory
request x runtime; "recommended" is the request the runtime / memory models give at the budget
from the history before each job's submit time (the same features as batch scoring), never above
the user's own time limit. A job the recommended time or memory is below is counted as killed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from jobmedic.knowledge.errors import ModelError
from jobmedic.reports.savings import render
from jobmedic.tools.base import Invocation, ToolContext, ToolResult, WindowedRequest, no_data, ok

if TYPE_CHECKING:  # numpy and pandas load when the action runs, not with the CLI
    import numpy as np
    import pandas as pd

Dim = Literal["user", "project", "queue"]
SUMS = ["jobs", "requested_core_h", "used_core_h", "unused_core_h", "requested_gb_h", "used_gb_h",
        "unused_gb_h", "saved_core_h", "saved_gb_h", "killed_by_time", "killed_by_memory"]


class SavingsRequest(WindowedRequest):
    """Requested-but-unused resources and what the recommendations would have saved."""

    action: Literal["savings"] = Field("savings", description='The action: always "savings".')
    retry_budget: float | None = Field(None, ge=0.001, le=0.5,
                                       description="Acceptable share of killed runs for the recommendations "
                                                   "(0.001..0.5; default the cluster's, 2 %).")
    cluster: str | None = Field(None, description="Only jobs of this cluster.")
    group_by: list[Dim] = Field(["user", "project", "queue"], min_length=1, max_length=3,
                                description="Tables to give: per user, project and/or queue.")
    top: int = Field(10, ge=1, le=500, description="Rows per table (largest unused core-hours first).")


def _recommended(ctx: ToolContext, hist: pd.DataFrame, win: pd.DataFrame, budget: float
                 ) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """(time s, memory MB) at `budget` per window job, and the models that were missing."""
    import numpy as np

    from jobmedic.models import registry
    from jobmedic.models.features import FEATURES, build_features
    from jobmedic.models.runtime import budget_time

    missing: list[str] = []
    if ctx.models_dir is None:
        return None, None, ["runtime", "memory"]
    X = build_features(hist, win)[FEATURES].to_numpy()
    out: dict[str, np.ndarray | None] = {}
    for kind in ("runtime", "memory"):
        try:
            m, _ = registry.load(str(ctx.models_dir), kind)
        except ModelError:
            missing.append(kind)
            continue
        b = m.for_budget(m.batch_inputs(X, win, ctx.store, None, hist), budget)
        out[kind] = b
        if b is None:
            missing.append(kind)
    rt, mem = out.get("runtime"), out.get("memory")
    tl = win["timelimit_s"].to_numpy(dtype="float64")
    return (None if rt is None else budget_time(rt, tl),
            None if mem is None else np.ceil(mem / 256) * 256, missing)


def _per_job(win: pd.DataFrame, rec_t: np.ndarray | None, rec_m: np.ndarray | None) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    f = lambda c: win[c].to_numpy(dtype="float64")
    cpus = np.where(np.isfinite(f("req_cpus")) & (f("req_cpus") > 0), f("req_cpus"), 1.0)
    el, tl, rm, rss = f("elapsed_s"), f("timelimit_s"), f("req_mem_mb"), f("max_rss_mb")
    has_tl, has_m = np.isfinite(tl) & (tl > 0), np.isfinite(rm) & np.isfinite(rss)
    t = pd.DataFrame({"jobs": 1.0, "used_core_h": el * cpus / 3600,
                      "requested_core_h": np.where(has_tl, tl * cpus / 3600, 0.0),
                      "requested_gb_h": np.where(has_m, rm / 1024 * el / 3600, 0.0),
                      "used_gb_h": np.where(has_m, rss / 1024 * el / 3600, 0.0)}, index=win.index)
    t["used_core_h"] = np.where(has_tl, t["used_core_h"], 0.0)
    t["unused_core_h"] = (t["requested_core_h"] - t["used_core_h"]).clip(lower=0)
    t["unused_gb_h"] = (t["requested_gb_h"] - t["used_gb_h"]).clip(lower=0)
    zero = np.zeros(len(win))
    t["saved_core_h"] = (np.where(has_tl, (tl - rec_t) * cpus / 3600, 0.0) if rec_t is not None else zero)
    t["killed_by_time"] = (has_tl & (el > rec_t)).astype(float) if rec_t is not None else zero
    t["saved_gb_h"] = (np.where(has_m, (rm - rec_m) / 1024 * el / 3600, 0.0) if rec_m is not None else zero)
    t["killed_by_memory"] = (has_m & (rss > rec_m)).astype(float) if rec_m is not None else zero
    return t


def _table(t: pd.DataFrame, keys: pd.Series, top: int) -> list[dict[str, Any]]:
    g = t.groupby(keys.fillna("(none)").astype(str).to_numpy()).sum()
    g = g.sort_values("unused_core_h", ascending=False).head(top)
    return [{"key": k} | {c: (int(v[c]) if c in ("jobs", "killed_by_time", "killed_by_memory")
                              else round(float(v[c]), 2)) for c in SUMS} for k, v in g.iterrows()]


def run(ctx: ToolContext, req: SavingsRequest) -> ToolResult:
    import numpy as np

    scope = ctx.effective_scope(req)
    window = ctx.window_for(req)
    budget = req.retry_budget if req.retry_budget is not None else ctx.retry_budget(req.cluster)
    inv = Invocation(window=window.to_dict(), filters={
        k: v for k, v in req.model_dump().items()
        if v is not None and k not in ("action", "allowed_projects", "lookback_days", "as_of")}
        | {"retry_budget": budget}, scope=scope)
    hist = ctx.store.jobs_frame(scope, until=int(window.end))
    sub = hist["submit_time"].to_numpy(dtype="float64")
    sel = ((sub >= window.start) & (sub < window.end) & (hist["state"] == "completed").to_numpy()
           & np.isfinite(hist["elapsed_s"].to_numpy(dtype="float64")))
    if req.cluster:
        sel &= (hist["cluster"] == req.cluster).to_numpy()
    win = hist[sel]
    if win.empty:
        return no_data("savings", ctx.store, window, inv, "completed jobs", scope)
    rec_t, rec_m, missing = _recommended(ctx, hist, win, budget)
    t = _per_job(win, rec_t, rec_m)
    total = {c: round(float(t[c].sum()), 2) for c in SUMS}
    for c in ("jobs", "killed_by_time", "killed_by_memory"):
        total[c] = int(total[c])
    data = {"window": window.to_dict(), "scope": scope, "retry_budget": budget,
            "missing_models": missing, "total": total,
            "groups": [{"by": d, "rows": _table(t, win[d], req.top)} for d in req.group_by]}
    return ok("savings", data, render(data), inv)
