"""Markdown for the write actions: record_outcome and record_failure."""
from __future__ import annotations

from typing import Any

from jobmedic.core.timeutil import iso


def render_outcome(d: dict[str, Any]) -> str:
    what = f"job {d['job_id']}" if d.get("job_id") else f"`{d['failure_type']}`"
    result = "worked" if d["success"] else "did not work"
    head = {"recorded": "Recorded", "updated": "Updated (corrected an earlier record)",
            "duplicate": "Already recorded (counted once)"}[d["status"]]
    how = {"id": "by its id", "title": "by its title", "keyword": "by a keyword",
           "tokens": "by its words", "new": "as a new fix"}.get(d["matched_by"], d["matched_by"])
    c = d["counts"]
    return (f"{head}: on {what}, `{d['solution']}` {result} (solution matched {how}).\n\n"
            f"`{d['solution']}` has now worked {c['successes']} of {c['attempts']} times.\n")


def render_failure(d: dict[str, Any]) -> str:
    head = "Recorded" if d["recorded"] else "Already recorded (same event, counted once)"
    lines = [f"{head}: failure of **{d['job_name']}**"
             + (f" in {d['project']}" if d.get("project") else "")
             + f" at {iso(d['timestamp'])}: `{d['failure_type']}` (blame: {d['blame']}).", ""]
    if d.get("root_cause"):
        lines.append(f"Root cause: {d['root_cause']['phrase']}")
    if d.get("evidence"):
        lines += ["Evidence:", ""] + [f"    {e}" for e in d["evidence"][:3]]
    lines.append(f"\nSee the fixes with `jobmedic remediate --failure-type {d['failure_type']}`.")
    return "\n".join(lines) + "\n"
