"""The analyze action: cross-job patterns, hotspots, blame, time spikes and change points."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from jobmedic.core.timeutil import Window
from jobmedic.tools.base import Invocation, ToolContext, ToolResult, WindowedRequest, no_data, ok
from jobmedic.tools.filters import resolve_filters, summary


class AnalyzeRequest(WindowedRequest):
    """Find what is failing, where and since when, ranked by impact."""

    action: Literal["analyze"] = Field("analyze",
                                       description='The action: always "analyze".')
    project: str | None = Field(None, description="Only jobs of this project (Slurm account, namespace, Run:AI project).")
    cluster: str | None = Field(None, description="Only jobs of this cluster.")
    node: str | None = Field(None, description="Only jobs that ran on this node.")
    image: str | None = Field(None, description="Only jobs that used this container image.")
    user: str | None = Field(None, description="Only jobs of this user.")
    queue: str | None = Field(None, description="Only jobs of this queue / partition.")
    max_findings: int = Field(20, ge=1, le=200, description="Most findings to report.")


def has_data(ctx: ToolContext, window: Window, scope: list[str] | None,
             filters: dict[str, str], totals: dict[str, Any]) -> bool:
    if totals["jobs"] or totals["cancelled"]:
        return True
    return bool(ctx.store.orphan_event_counts("failure_type", window, scope, filters, 1))


def run(ctx: ToolContext, req: AnalyzeRequest) -> ToolResult:
    scope = ctx.effective_scope(req)
    window = ctx.window_for(req)
    filters = resolve_filters(ctx, req, scope)
    inv = Invocation(window=window.to_dict(), filters={**filters, "lookback_days": req.lookback_days,
                                                        "as_of": req.as_of}, scope=scope)
    totals = ctx.store.window_totals(window, scope, filters)
    if not has_data(ctx, window, scope, filters, totals):
        return no_data("analyze", ctx.store, window, inv, "finished jobs or failure events", scope)
    from jobmedic.analyzers import build, ranking, run_all  # numpy/pandas: only when analyzing

    analyzers = build(ctx.options)
    findings, errors = run_all(analyzers, ctx.store, window, scope, filters,
                               rank_with=ranking(ctx.options))
    shown = findings[: req.max_findings]
    data = {"window": window.to_dict(), "scope": scope, "filters": filters,
            "summary": summary(totals), "findings": [f.to_dict() for f in shown],
            "counts": _counts(findings), "errors": errors,
            "truncated": len(findings) - len(shown)}
    from jobmedic.reports.analyze import render  # imports the analyzers (stats imports this module)

    return ok("analyze", data, render(data), inv)


def _counts(findings: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in findings:
        out[f.kind] = out.get(f.kind, 0) + 1
    return out
