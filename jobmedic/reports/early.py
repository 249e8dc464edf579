"""Markdown lines of a running job's early warning (the `running` block of predict)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _s(v: float | None) -> str:
    if v is None:
        return "?"
    return f"{v:.0f} s" if v < 120 else f"{v / 60:.0f} min"


def running_lines(r: Mapping[str, Any]) -> list[str]:
    head = (f"**Running job** ({r.get('samples', 0)} telemetry samples: "
            f"{', '.join(r.get('metrics') or []) or 'none'})")
    out = ["", head]
    e = r.get("early_warning") or {}
    if e.get("status") == "scored":
        out.append(f"- early warning: failure probability {e['probability']:.0%} from its first "
                   f"{e['horizon_s'] / 60:.0f} min ({e['model']} model {e['version']}; "
                   f"{e['minutes_with_samples']} minutes with samples)")
    else:
        out.append(f"- early warning: {e.get('note') or e.get('status')}")
    m = r.get("memory_kill") or {}
    if m.get("status") == "growing":
        lo, hi = m.get("eta_interval_s") or [None, None]
        out.append(f"- memory: {100 * (m.get('fraction') or 0):.0f}% of its limit and growing; "
                   f"limit reached in ~{_s(m.get('eta_s'))} ({_s(lo)} – {_s(hi)})"
                   + (" — **alarm**" if m.get("alarm") else ""))
    elif m.get("status") in ("plateau", "falling"):
        out.append(f"- memory: {100 * (m.get('fraction') or 0):.0f}% of its limit, not growing "
                   f"({m['status']}): no kill expected")
    else:
        out.append(f"- memory: no estimate ({m.get('note') or m.get('status')})")
    return out
