"""Markdown for the remediate action: the ranked fixes with their counts and intervals, what
each change is on Slurm and Kubernetes, where the failures happen, and recent attempts."""
from __future__ import annotations

from typing import Any

from jobmedic.core.units import fmt_mem


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def fix_row(i: int, f: dict[str, Any]) -> str:
    title = f["title"]
    if f.get("fitted", {}).get("summary") and f["fitted"].get("new"):
        title += f": {f['fitted']['summary']}"
    if f["attempts"]:
        rate = f"{pct(f['success_rate'])} ({f['successes']}/{f['attempts']})"
        interval = f"{pct(f['interval'][0])}-{pct(f['interval'][1])}"
    else:
        rate, interval = "not tried yet", "-"
    src = f["source"] + (f", {f['inferred']} inferred" if f.get("inferred") else "")
    return f"| {i} | {title} | {rate} | {interval} | {src} |"


def fixes_table(fixes: list[dict[str, Any]], limit: int | None = None) -> list[str]:
    out = ["| # | fix | worked | 95% interval | source |", "|---|---|---|---|---|"]
    out += [fix_row(i, f) for i, f in enumerate(fixes[:limit] if limit else fixes, 1)]
    return out


def fix_details(fixes: list[dict[str, Any]], limit: int = 6) -> list[str]:
    out = []
    for f in fixes[:limit]:
        if not (f.get("slurm") or f.get("kubernetes") or f.get("fitted")):
            continue
        out.append(f"- **{f['title']}** (`{f['id']}`)" + (f": {f['why']}" if f.get("why") else ""))
        if f.get("fitted"):
            out.append(f"  - for this job: `{f['fitted']['change']}`")
        else:
            for plat in ("slurm", "kubernetes"):
                if f.get(plat):
                    out.append(f"  - {plat}: `{f[plat]}`")
    return out


def render(d: dict[str, Any]) -> str:
    lines = [f"## Fixes for `{d['failure_type']}` (usual blame: {d['blame']})", "",
             d.get("description") or ""]
    job = d.get("job")
    if job:
        bits = [f"state {job.get('state')}"]
        if job.get("req_mem_mb"):
            bits.append(f"asked {fmt_mem(job['req_mem_mb'])} memory")
        if job.get("max_rss_mb"):
            bits.append(f"MaxRSS {fmt_mem(job['max_rss_mb'])}")
        if job.get("nodes"):
            bits.append("on " + ", ".join(job["nodes"][:5]))
        lines += ["", f"Job **{job['job_id']}** ({job.get('cluster')}): " + ", ".join(bits) + "."]
    lines += [""] + fixes_table(d["fixes"])
    mem = next((f.get("oom_memory") for f in d["fixes"] if f.get("oom_memory")), None)
    if mem == "gpu":
        lines += ["", ("The GPU ran out of memory: fixes that raise the host memory request "
                      "(`--mem`, a bigmem partition) cannot help and are left out.")]
    elif mem == "host":
        lines += ["", "The host ran out of memory (not the GPU): host memory fixes come first."]
    if any(f["attempts"] for f in d["fixes"]):
        top = d["fixes"][0].get("posterior") or {}
        where = (f" on cluster {top['cluster']}, the other clusters as prior" if top.get("cluster")
                 else "")
        lines += ["", (f"Ranked by a cautious (5 %) estimate of each fix's success rate{where}: "
                      f"curated fixes start from the type's rate, a learned fix needs 3 attempts "
                      f"to rank above them; success rates are counted over "
                      f"{d.get('rates_from', 'the store')} (numbers only).")]
    det = fix_details(d["fixes"])
    if det:
        lines += ["", "### The changes", ""] + det
    ctx = d.get("context_stats") or {}
    if ctx:
        lines += ["", "### In this job's context", ""]
        for sol, parts in ctx.items():
            lines.append(f"- `{sol}`: " + "; ".join(f"{k}: {s}/{n} worked" for k, (s, n) in parts.items()))
    w = d.get("where") or {}
    if w.get("failures"):
        lines += ["", f"### Where ({w['failures']:,} recorded failures of this type)", ""]
        for kind in ("nodes", "images", "projects"):
            if w.get(kind):
                lines.append(f"- {kind}: " + ", ".join(f"{x['name']} ({x['count']})" for x in w[kind]))
    recent = d.get("recent_outcomes") or []
    if recent:
        lines += ["", "### Recent attempts", ""]
        for r in recent:
            how = "inferred" if r["inferred"] else "recorded"
            what = f" ({r['change']})" if r.get("change") else ""
            lines.append(f"- job {r['failed_job'] or '-'}: `{r['solution']}`{what} "
                         f"{'worked' if r['success'] else 'did not work'} ({how})")
    return "\n".join(lines).strip() + "\n"
