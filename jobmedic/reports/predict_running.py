"""Markdown report of the running jobs at risk: early-warning score and memory-kill estimate."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _dur(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.0f} min" if s >= 60 else f"{s:.0f} s"


def early_cell(ew: Mapping[str, Any]) -> str:
    p = ew.get("probability")
    if p is not None:
        return f"{p:.0%}"
    return {"no_samples": "no samples", "no_model": "no model"}.get(ew.get("status") or "", "—")


def memkill_cell(mk: Mapping[str, Any]) -> str:
    st = mk.get("status") or "—"
    if mk.get("alarm"):
        lo_hi = mk.get("eta_interval_s") or [None, None]
        return (f"**kill in ~{_dur(mk.get('eta_s'))}** ({_dur(lo_hi[0])}–{_dur(lo_hi[1])})"
                if mk.get("eta_s") is not None else "**at the limit**")
    if st == "growing" and mk.get("eta_s") is not None:
        return f"growing, limit in ~{_dur(mk['eta_s'])}"
    if mk.get("fraction") is not None and st in ("plateau", "falling", "too_few", "stale"):
        return f"{st}, {mk['fraction']:.0%} of the limit"
    return st.replace("_", " ")


def render(d: Mapping[str, Any]) -> str:
    lines = [f"## Running jobs at risk (as of {d['as_of']})", "",
             (f"**{d['at_risk']} of {d['running']} running jobs at risk** (a memory-kill alarm, "
             f"or an early-warning probability ≥ {d['high_level']:.0%}).")]
    lines += [f"_{n}_" for n in d.get("notes", [])]
    lines += ["", "| job | project | user | running | early warning | memory kill |",
              "|---|---|---|---|---|---|"]
    for r in d["jobs"]:
        flag = " ⚠" if r["at_risk"] else ""
        lines.append(f"| {r['job_id']}{flag} | {r.get('project') or '—'} | {r.get('user') or '—'} "
                     f"| {_dur(r.get('running_s'))} | {early_cell(r['early_warning'])} "
                     f"| {memkill_cell(r['memory_kill'])} |")
    if d["shown"] < d["running"]:
        lines.append(f"\n{d['running'] - d['shown']} more not shown (raise `top`).")
    lines += ["", ("Early warning: the early model on the job's first minutes (research grade: on "
              "Philly it does not beat the users' failure history; docs/models.md). Memory kill: "
              "the robust trend of its memory against its request (docs/live.md).")]
    return "\n".join(lines)
