"""Markdown for the diagnose action: type and blame, the evidence lines, the root cause,
similar past failures and what fixed them, and the top fixes."""
from __future__ import annotations

from typing import Any

from jobmedic.reports.remediate import fixes_table

DECIDERS = {"rules": "the taxonomy rules", "classifier": "the learned text classifier",
            "template": "similarity to templates of past failures", "stored": "the stored job record"}


def render(d: dict[str, Any]) -> str:
    job = d.get("job")
    head = f"job {job['job_id']}" if job else "the text"
    if not d.get("failure_type"):
        return f"## Diagnosis of {head}\n\n" + "\n".join(f"- {n}" for n in d.get("notes", [])) + "\n"
    lines = [f"## Diagnosis of {head}: `{d['failure_type']}` (blame: {d['blame']})", "",
             d.get("description") or ""]
    if d.get("decided_by") and d["decided_by"] != "none":
        lines += ["", (f"Decided by: {DECIDERS.get(d['decided_by'], d['decided_by'])} "
                      f"(confidence {d.get('confidence', 0):.2f}).")]
    if d.get("symptom"):
        lines += ["", f"The `{d['symptom']}` is a symptom; the text names a more specific cause."]
    rc = d.get("root_cause")
    if rc:
        lines += ["", f"**Root cause:** {rc['phrase']}"]
    if d.get("evidence"):
        lines += ["", "**Evidence** (the deciding line first, as pasted):", ""] + [
            f"    {e}" for e in d["evidence"]]
    if d.get("considered"):
        lines += ["", "**Lines considered** (none names a known failure):", ""] + [
            f"    {e}" for e in d["considered"]]
    if d.get("fixes"):
        lines += ["", "### Top fixes", ""] + fixes_table(d["fixes"])
        fitted = [f for f in d["fixes"] if f.get("fitted", {}).get("new")]
        for f in fitted:
            lines.append(f"\nFor this job: {f['fitted']['summary']} (`{f['fitted']['change']}`).")
    if d.get("similar"):
        lines += ["", "### Similar past failures", ""]
        for s in d["similar"]:
            where = ", ".join(x for x in (s.get("node_name"), s.get("container_image")) if x)
            fixed = "; ".join(f"`{f['solution']}` {'worked' if f['success'] else 'failed'}"
                              for f in s.get("fixed_by", []))
            lines.append(f"- {s.get('job_id') or s.get('job_name')} ({s['failure_type']}"
                         + (f", {where}" if where else "") + ")" + (f": {fixed}" if fixed else ""))
    if d.get("related"):
        lines += ["", "Related to its node: " + ", ".join(
            f"{r['kind']} {r['name']} ({r['count']})" for r in d["related"])]
    for n in d.get("notes") or []:
        lines += ["", f"_Note: {n}_"]
    return "\n".join(lines).strip() + "\n"
