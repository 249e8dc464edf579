"""The stats action: counts and failure rates grouped by a whitelisted dimension, and trend."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from jobmedic.core.timeutil import iso
from jobmedic.reports.stats import render
from jobmedic.tools.base import Invocation, ToolContext, ToolResult, WindowedRequest, no_data, ok
from jobmedic.tools.filters import resolve_filters, summary

GroupBy = Literal["failure_type", "project", "node", "image", "user", "queue", "cluster",
                  "blame", "state", "day", "hour"]
TIME_DIMS = ("day", "hour")
#: The dimensions failure events without job records can be grouped by.
EVENT_GROUPS = ("failure_type", "node", "project", "image", "user", "cluster", "day")


class StatsRequest(WindowedRequest):
    """Counts of failures and jobs, failure rates, and the daily trend."""

    action: Literal["stats"] = Field("stats",
                                     description='The action: always "stats".')
    group_by: list[GroupBy] = Field(["failure_type"], min_length=1, max_length=3,
                                    description="Dimensions to group by (one table each).")
    project: str | None = Field(None, description="Only jobs of this project.")
    cluster: str | None = Field(None, description="Only jobs of this cluster.")
    node: str | None = Field(None, description="Only jobs that ran on this node.")
    image: str | None = Field(None, description="Only jobs that used this image.")
    user: str | None = Field(None, description="Only jobs of this user.")
    queue: str | None = Field(None, description="Only jobs of this queue / partition.")
    failure_type: str | None = Field(None, description="Only failures of this taxonomy code.")
    top: int = Field(15, ge=1, le=500, description="Rows per table.")
    trend: bool = Field(True, description="Include the daily trend table.")


def _row(r: dict[str, Any], dim: str, total_fail: int, total_jobs: int) -> dict[str, Any]:
    key = r["key"]
    if dim == "day" and key is not None:
        key = iso(key)[:10]
    fails = int(r["failures"] or 0)
    jobs = int(r["jobs"] or 0)
    out = {"key": key, "failures": fails, "jobs": jobs, "users": int(r.get("users") or 0),
           "gpu_h": round(float(r["gpu_h"] or 0), 1), "core_h": round(float(r["core_h"] or 0), 1)}
    if dim == "failure_type":  # failures only: rate over all finished jobs, share of failures
        out["rate"] = round(fails / total_jobs, 5) if total_jobs else None
        out["share"] = round(fails / total_fail, 4) if total_fail else None
        out["jobs"] = total_jobs
    else:
        out["rate"] = round(fails / jobs, 4) if jobs else None
    return out


def _zero_filled(rows: list[dict[str, Any]], dim: str, window: Any) -> list[dict[str, Any]]:
    """The rows of a time dimension with the missing days (hours of the day) added as zero
    rows, in order: a day without failures or jobs is a zero in a trend, not a gap (a 3-day
    spike must not read as a plateau)."""
    if dim == "day":
        first, last = int(window.start) // 86400, (int(window.end) - 1) // 86400
        keys = [d * 86400 for d in range(first, last + 1)] if last - first < 3700 else []
    else:
        keys = list(range(24))
    have = {r["key"]: r for r in rows}
    zero = {"jobs": 0, "failures": 0, "gpu_h": 0.0, "core_h": 0.0, "users": 0}
    out = [have.pop(k, None) or {"key": k, **zero} for k in keys]
    return sorted(out + list(have.values()), key=lambda r: (r["key"] is None, r["key"] or 0))


def _event_stats(ctx: ToolContext, req: StatsRequest, window: Any, scope: list[str] | None,
                 filters: dict[str, Any]) -> dict[str, Any] | None:
    """Counts from failure events that have no job record (LANL node failures, Kubernetes /
    Run:AI events): failures by type, node, project, ... but no rate (no jobs to divide by).
    None when the window holds none either."""
    groups, total = [], None
    for dim in dict.fromkeys(["failure_type", *req.group_by]):
        if dim not in EVENT_GROUPS:
            continue
        rows = ctx.store.orphan_event_counts(dim, window, scope, filters, limit=100_000)
        by: dict[Any, dict[str, Any]] = {}
        for r in rows:
            g = by.setdefault(r["key"], {"key": r["key"], "failures": 0, "jobs": 0, "users": 0,
                                         "gpu_h": 0.0, "core_h": 0.0, "rate": None})
            g["failures"] += int(r["failures"])
            g["users"] += int(r["users"] or 0)
        if total is None:
            total = sum(g["failures"] for g in by.values())
        if dim == "day":
            body = [dict(g, key=iso(g["key"])[:10]) for g in
                    _zero_filled(list(by.values()), "day", window)]
        else:
            body = sorted(by.values(), key=lambda g: -g["failures"])
        for g in body:
            g["share"] = round(g["failures"] / total, 4) if total else None
        if dim in req.group_by:
            shown = body if dim == "day" else body[: req.top]
            groups.append({"by": dim, "rows": shown, "more": len(body) - len(shown)})
    if not total:
        return None
    skipped = [d for d in req.group_by if d not in EVENT_GROUPS]
    return {"window": window.to_dict(), "scope": scope, "filters": filters, "groups": groups,
            "trend": [], "events_only": True, "not_grouped": skipped,
            "totals": {"failures": total, "jobs": 0, "failure_rate": None, "projects_affected": 0,
                       "users_affected": 0, "failure_types": 0, "gpu_h_lost": 0.0,
                       "core_h_lost": 0.0, "cancelled": 0, "pending": 0, "running": 0}}


def run(ctx: ToolContext, req: StatsRequest) -> ToolResult:
    scope = ctx.effective_scope(req)
    window = ctx.window_for(req)
    filters: dict[str, Any] = resolve_filters(ctx, req, scope)
    if req.failure_type is not None:
        filters["failure_type"] = ctx.taxonomy.check_code(req.failure_type)
    inv = Invocation(window=window.to_dict(), filters={
        **filters, "group_by": list(req.group_by), "lookback_days": req.lookback_days,
        "as_of": req.as_of}, scope=scope)
    totals = ctx.store.window_totals(window, scope, filters)
    if not totals["jobs"] and not totals["cancelled"]:
        events = _event_stats(ctx, req, window, scope, filters)
        if events is None:
            return no_data("stats", ctx.store, window, inv, "finished jobs or failure events",
                           scope)
        return ok("stats", events, render(events), inv)
    tj, tf = int(totals["jobs"]), int(totals["failures"])
    groups = []
    for dim in dict.fromkeys(req.group_by):
        rows = ctx.store.rate_by(dim, window, scope, filters,
                                 failures_only=dim == "failure_type", outcome=dim != "state")
        if dim not in TIME_DIMS:
            rows = [r for r in rows if r["key"] is not None or r["failures"]]
        if dim in TIME_DIMS:  # every day / hour of the window, a quiet one as a zero row
            rows = _zero_filled(rows, dim, window)
        body = [_row(r, dim, tf, tj) for r in rows]
        shown = body if dim in TIME_DIMS else body[: req.top]
        groups.append({"by": dim, "rows": shown, "more": len(body) - len(shown)})
    trend = []
    if req.trend:
        trend = [{k: v for k, v in _row(r, "day", tf, tj).items() if k in ("key", "failures", "jobs", "rate")}
                 for r in _zero_filled(ctx.store.binned(window, scope, filters, 86400), "day",
                                       window)]
        trend = [{"day": d.pop("key"), **d} for d in trend]
    data = {"window": window.to_dict(), "scope": scope, "filters": filters,
            "totals": {**summary(totals), "failure_rate": round(tf / tj, 4) if tj else None,
                       **ctx.store.open_work(window, scope, filters)},
            "groups": groups, "trend": trend}
    return ok("stats", data, render(data), inv)
