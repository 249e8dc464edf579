"""Markdown report of the stats action: totals, one table per group_by, the daily trend."""
from __future__ import annotations

from typing import Any

from jobmedic.reports.markdown import hours, num, pct, scope_line, table, window_line


def render(data: dict[str, Any]) -> str:
    t = data["totals"]
    if data.get("events_only"):
        return _render_events(data)
    lines = [f"## Failure statistics: {window_line(data.get('window'))}", "",
             (f"**{num(t['failures'])} failures in {num(t['jobs'])} finished jobs "
             f"({pct(t['failure_rate'])})**; {num(t['cancelled'])} cancelled (not counted); "
             f"{hours(t['gpu_h_lost'])} GPU and {hours(t['core_h_lost'])} core time lost. "
             f"Scope: {scope_line(data.get('scope'))}.")]
    if t.get("pending") or t.get("running"):
        lines.append(f"\nNot finished (not counted): {num(t.get('pending', 0))} pending "
                     f"(each array task apart), {num(t.get('running', 0))} running.")
    for g in data["groups"]:
        lines += ["", f"### By {g['by']}", ""]
        if g["by"] == "failure_type":
            rows = [(r["key"], r["failures"], pct(r["share"]), pct(r["rate"], 2), r["users"],
                     hours(r["gpu_h"]), hours(r["core_h"])) for r in g["rows"]]
            lines.append(table(["failure type", "failures", "share", "rate", "users",
                                "GPU lost", "core lost"], rows))
        else:
            rows = [(r["key"], r["failures"], r["jobs"], pct(r["rate"]), r["users"],
                     hours(r["gpu_h"]), hours(r["core_h"])) for r in g["rows"]]
            lines.append(table([g["by"], "failures", "jobs", "rate", "users failing",
                                "GPU lost", "core lost"], rows))
        if g.get("more"):
            lines.append(f"\n_{num(g['more'])} more rows (raise --top)._")
    trend = data.get("trend") or []
    if trend:
        lines += ["", "### Daily trend", "",
                  table(["day", "failures", "jobs", "rate"],
                        [(d["day"], d["failures"], d["jobs"], pct(d["rate"])) for d in trend])]
    return "\n".join(lines)


def _render_events(data: dict[str, Any]) -> str:
    """Failure events without job records (e.g. LANL node failures): counts, no rates."""
    t = data["totals"]
    lines = [f"## Failure statistics: {window_line(data.get('window'))}", "",
             (f"**{num(t['failures'])} failure events**, with no job records in this window, so "
              f"no failure rate (no jobs to divide by). Scope: {scope_line(data.get('scope'))}.")]
    for g in data["groups"]:
        lines += ["", f"### By {g['by']}", ""]
        rows = [(r["key"], r["failures"], pct(r["share"])) for r in g["rows"]]
        lines.append(table([g["by"], "failure events", "share"], rows))
        if g.get("more"):
            lines.append(f"\n_{num(g['more'])} more rows (raise --top)._")
    if data.get("not_grouped"):
        lines.append(f"\n_Not available from failure events alone: by "
                     f"{', '.join(data['not_grouped'])}._")
    return "\n".join(lines)
