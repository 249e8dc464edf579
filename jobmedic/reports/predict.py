"""Markdown report of a prediction: risk and level, the factors in words, runtime and memory,
and the request to submit with its stated chance of being too low."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _h(s: float) -> str:
    return f"{s / 3600:.2f} h" if s >= 3600 else f"{s / 60:.0f} min"


def _gb(mb: float) -> str:
    return f"{mb / 1024:.1f} GB"


def render(d: Mapping[str, Any], levels: Mapping[str, float]) -> str:
    lines = [f"## Prediction (history before {d.get('submit_time')})", ""]
    if d.get("failure_risk") is not None:  # None without a failure model (listed as missing)
        lines.append(f"**Failure risk: {d['failure_risk']:.0%} ({d['risk_level']})** "
                     f"— levels: moderate ≥ {levels['moderate']:g}, high ≥ {levels['high']:g}, "
                     f"critical ≥ {levels['critical']:g}.")
    for w in d.get("warnings", []):
        lines.append(f"**Warning:** {w}.")
    if d.get("cold_start"):
        lines.append(f"History is empty for this {', '.join(d['cold_start'])} (cold start): the "
                     "risk leans on the other fields and the cluster's base rate.")
    if d.get("factors"):
        lines += ["", "Why:"]
        lines += [f"- {f['text']} ({f['direction']} the risk)" for f in d["factors"]]
    rt = d.get("runtime_s")
    if rt:
        lo, hi = rt["interval_80"]
        exp = f"expected {_h(rt['expected'])}, " if rt.get("expected") is not None else ""
        lines += ["", (f"**Runtime:** {exp}median (q0.5) {_h(rt['median'])}, 80% interval "
                       f"{_h(lo)} – {_h(hi)}.")]
    mem = d.get("memory_mb")
    if mem:
        lines += [(f"**Peak memory:** median {_gb(mem['median'])}; recommended {_gb(mem['recommended'])} "
                  f"(95% safe: {_gb(mem['safe_q0.95'])}).")]
    if d.get("request"):
        ch = d.get("chance_too_low", {})
        parts = [f"{k} {100 * v:.2g}%" for k, v in ch.items()]  # 0.1% stays readable
        lines += ["", f"**Request:** `{d['request']}` — chance of being too low: {', '.join(parts)}."]
    rb = d.get("retry_budget")
    if rb and rb.get("request"):
        lines += [f"**For a {rb['budget']:.1%} retry budget:** `{rb['request']}`"
                  + (f" — {rb['core_hours']} core-h (yours {rb['user_core_hours']})" if rb.get("user_core_hours") else "")
                  + (f", {rb['gb_hours']} GB·h (yours {rb['user_gb_hours']})" if rb.get("user_gb_hours") else "") + "."]
    for m in d.get("missing_models", []):
        lines += ["", f"_{m['kind']}: {m['message']}; {m['hint']}_"]
    job = d.get("job")
    if job:
        lines += ["", f"Job {job['job_id']} actually ended {job['state']}"
                  + (f" after {_h(job['elapsed_s'])}" if job.get("elapsed_s") else "") + "."]
    if d.get("running"):
        from jobmedic.reports.early import running_lines

        lines += running_lines(d["running"])
    lines += ["", "Models: " + ", ".join(f"{k} {v}" for k, v in d.get("models", {}).items())]
    return "\n".join(lines)
