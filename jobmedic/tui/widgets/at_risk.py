"""The side panel's "running jobs at risk": what `predict` with running: true computed (a
memory-kill alarm or a high early-warning probability), at most a few lines."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.widgets import Static

from jobmedic.tools.base import ToolResult

SHOWN = 3


@dataclass
class RiskView:
    running: int | None = None  # running jobs scored (None: unknown)
    at_risk: int = 0
    lines: list[str] = field(default_factory=list)
    note: str = ""


def _dur(s: Any) -> str:
    if not isinstance(s, (int, float)):
        return "?"
    return f"{s / 3600:.1f}h" if s >= 3600 else f"{s / 60:.0f}m" if s >= 60 else f"{s:.0f}s"


def _line(r: dict[str, Any]) -> str:
    mk, ew = r.get("memory_kill") or {}, r.get("early_warning") or {}
    why = []
    if mk.get("alarm"):
        why.append(f"OOM ~{_dur(mk.get('eta_s'))}" if mk.get("eta_s") is not None else "OOM now")
    p = ew.get("probability")
    if p is not None:
        why.append(f"fail {p:.0%}")
    who = f" {r['user']}" if r.get("user") else ""
    return f"! {r.get('job_id')}{who}: {', '.join(why) or 'at risk'}"


def risk_from(res: ToolResult) -> RiskView:
    """The view of a `predict` running envelope: counts and the first at-risk jobs."""
    if res.status == "no_data":
        return RiskView(running=0, note="no running jobs")
    if res.status != "ok":
        return RiskView(note=f"predict: {res.error.message if res.error else res.status}")
    d = res.data
    jobs = [r for r in d.get("jobs") or [] if isinstance(r, dict) and r.get("at_risk")]
    return RiskView(running=int(d.get("running") or 0), at_risk=int(d.get("at_risk") or 0),
                    lines=[_line(r) for r in jobs[:SHOWN]])


class AtRisk(Static):
    """Running jobs at risk, refreshed with the rest of the side panel."""

    def __init__(self, **kw: Any) -> None:
        super().__init__("", markup=False, **kw)

    def on_mount(self) -> None:
        self.border_title = "Running at risk"

    def show(self, view: RiskView) -> None:
        if view.running is None:
            self.update(view.note or "unavailable")
            return
        if not view.running:
            self.update(view.note or "no running jobs")
            return
        head = (f"{view.at_risk} of {view.running} running" if view.at_risk
                else f"none of {view.running} running")
        more = view.at_risk - len(view.lines)
        self.update("\n".join([head, *view.lines] + ([f"  +{more} more"] if more > 0 else [])))
