"""Markdown report of the analyze action: a summary line, then findings grouped by severity,
each with its evidence and its recommendation, then the hotspot table."""
from __future__ import annotations

from typing import Any

from jobmedic.analyzers.base import SEVERITIES
from jobmedic.reports.markdown import hours, num, pct, scope_line, table, window_line


def render(data: dict[str, Any]) -> str:
    s = data["summary"]
    lines = [f"## Failure analysis: {window_line(data.get('window'))}", "",
             (f"**{num(s['failures'])} failures in {num(s['jobs'])} finished jobs "
             f"({pct(s['failure_rate'])})**, {num(s['projects_affected'])} projects and "
             f"{num(s['users_affected'])} users affected, {num(s['failure_types'])} failure types; "
             f"{hours(s['gpu_h_lost'])} GPU and {hours(s['core_h_lost'])} core time lost. "
             f"{num(s['cancelled'])} cancelled jobs are not counted. Scope: {scope_line(data.get('scope'))}.")]
    findings = data["findings"]
    if not findings:
        lines += ["", ("No finding: no entity, hour or day fails significantly more than the rest "
                      "of the selection.")]
    by_sev: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        by_sev.setdefault(f["severity"], []).append(f)
    for sev in SEVERITIES:
        group = by_sev.get(sev)
        if not group:
            continue
        lines += ["", f"### {sev.capitalize()} ({len(group)})", ""]
        for f in group:
            lines.append(f"- **{f['subject']}** ({f['kind']}): {f['summary']}")
            if f.get("recommendation"):
                lines.append(f"  - Recommendation: {f['recommendation']}")
    hot = [f for f in findings if f["kind"] in ("hotspot", "explained")]
    if hot:
        rows = [(f["subject"], f["evidence"]["failures"], f["evidence"]["jobs"],
                 pct(f["evidence"]["rate"]),
                 f"{pct(f['evidence']['ci_low'], 0)}-{pct(f['evidence']['ci_high'], 0)}",
                 pct(f["evidence"]["baseline"]), f"{f['evidence']['q']:.2g}",
                 f["evidence"].get("attributed_to", f["subject"]) if f["kind"] == "hotspot"
                 else f"{f['evidence']['explained_by']} {f['evidence']['explainer']}")
                for f in hot]
        lines += ["", "### Hotspot evidence", "",
                  table(["entity", "failures", "jobs", "rate", "95% CI", "baseline", "q",
                         "attributed to"], rows)]
    if data.get("errors"):
        lines += ["", "_Analyzers that failed: " + "; ".join(
            f"{e['analyzer']}: {e['error']}" for e in data["errors"]) + "_"]
    if data.get("truncated"):
        lines += ["", f"_{data['truncated']} more findings left out (raise --max-findings)._"]
    return "\n".join(lines)
