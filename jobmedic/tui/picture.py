"""The side panel's "current picture" and the remediation list, read out of action envelopes.

The panel shows what the stats and analyze actions computed (never numbers of its own): the
failures of the last 24 hours by type, the week's top findings, and the daily failure trend.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobmedic.tools.base import ToolResult


@dataclass
class Picture:
    failures_24h: int | None = None
    jobs_24h: int | None = None
    top_types: list[tuple[str, int]] = field(default_factory=list)
    hotspots: list[str] = field(default_factory=list)
    trend: list[float] = field(default_factory=list)
    trend_label: str = ""
    notes: list[str] = field(default_factory=list)  # why a part is empty (no data, errors)


@dataclass
class Remedy:
    """One suggested fix the user can mark as having worked or not."""

    solution_ref: str  # what record_outcome accepts: a solution id or the fix in words
    title: str
    detail: str = ""
    failure_type: str | None = None


def _num(d: dict[str, Any], *keys: str) -> float | None:
    for k in keys:
        v = d.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return v
    return None


def _group(data: dict[str, Any], dim: str) -> list[dict[str, Any]]:
    """The rows of one group-by table of a stats envelope (`groups: [{by, rows}]`)."""
    for g in data.get("groups") or []:
        if isinstance(g, dict) and g.get("by") == dim:
            return [r for r in g.get("rows") or [] if isinstance(r, dict)]
    return []


def _why(res: ToolResult) -> str:
    return f"{res.action}: {res.error.message if res.error else res.status}"


def _finding_line(f: dict[str, Any]) -> str:
    """`node:gpu07 69/152 failed` - short enough for the side panel."""
    ev = f.get("evidence") or {}
    subject = str(f.get("subject") or f.get("analyzer") or "?")
    fails, jobs = _num(ev, "failures"), _num(ev, "jobs")
    if fails is not None and jobs:
        return f"{subject} {int(fails)}/{int(jobs)} failed"
    if fails is not None:
        return f"{subject} {int(fails)} failures ({f.get('kind') or f.get('analyzer')})"
    return f"{subject} ({f.get('kind') or f.get('analyzer')})"


def picture_from(day: ToolResult, trend: ToolResult, week: ToolResult) -> Picture:
    """The picture from a 1-day stats by failure type, a 14-day stats by day and a 7-day
    analyze; an action that failed or found nothing leaves a note instead of numbers."""
    pic = Picture()
    if day.status == "ok":
        tot = day.data.get("totals") or {}
        f, j = _num(tot, "failures"), _num(tot, "jobs")
        pic.failures_24h = int(f) if f is not None else None
        pic.jobs_24h = int(j) if j is not None else None
        for r in _group(day.data, "failure_type")[:5]:
            if r.get("key") and r.get("failures"):
                pic.top_types.append((str(r["key"]), int(r["failures"])))
    elif day.status == "no_data":
        pic.failures_24h = 0
        pic.notes.append("no finished jobs in the last 24 h")
    else:
        pic.notes.append(_why(day))
    if trend.status == "ok":
        rows = sorted(_group(trend.data, "day"), key=lambda r: str(r.get("key")))
        pic.trend = [float(r.get("failures") or 0) for r in rows]
        if rows:
            pic.trend_label = f"{rows[0].get('key')} .. {rows[-1].get('key')}"
    elif trend.status == "error":
        pic.notes.append(_why(trend))
    if week.status == "ok":
        for f in (week.data.get("findings") or [])[:4]:
            if isinstance(f, dict):
                pic.hotspots.append(_finding_line(f))
    elif week.status == "error":
        pic.notes.append(_why(week))
    return pic


def remedies_from(data: dict[str, Any]) -> list[Remedy]:
    """The ranked fixes of a remediate envelope (`fixes: [{id, title, attempts, successes}]`)."""
    out: list[Remedy] = []
    ftype = data.get("failure_type")
    for s in data.get("fixes") or []:
        if not isinstance(s, dict) or not (s.get("title") or s.get("id")):
            continue
        title = str(s.get("title") or s.get("id"))
        attempts = _num(s, "attempts")
        detail = (f"{int(_num(s, 'successes') or 0)}/{int(attempts)} worked" if attempts
                  else "no history yet")
        out.append(Remedy(str(s.get("id") or title), title, detail,
                          s.get("failure_type") or ftype))
    return out
