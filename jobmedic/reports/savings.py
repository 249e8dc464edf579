"""The savings report: requested-but-unused core-hours and GB-hours, and what the recommended
requests at a retry budget would have saved and killed, per user / project / queue."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COLS = [("jobs", "jobs"), ("requested_core_h", "core-h asked"), ("unused_core_h", "core-h unused"),
        ("saved_core_h", "core-h saved"), ("killed_by_time", "killed (time)"),
        ("unused_gb_h", "GB·h unused"), ("saved_gb_h", "GB·h saved"),
        ("killed_by_memory", "killed (memory)")]


def _pct(part: float, whole: float) -> str:
    return f" ({part / whole:.0%})" if whole else ""


def render(d: Mapping[str, Any]) -> str:
    t = d["total"]
    lines = [f"## Savings at a {d['retry_budget']:.1%} retry budget", "",
             (f"{t['jobs']:,} completed jobs asked for {t['requested_core_h']:,.0f} core-hours and used "
             f"{t['used_core_h']:,.0f}: **{t['unused_core_h']:,.0f} unused**"
             f"{_pct(t['unused_core_h'], t['requested_core_h'])}; memory: {t['unused_gb_h']:,.0f} of "
             f"{t['requested_gb_h']:,.0f} GB·h unused.")]
    if len(d.get("missing_models") or []) < 2:
        lines += ["", (f"Following the recommendations would have saved **{t['saved_core_h']:,.0f} "
                  f"core-hours**{_pct(t['saved_core_h'], t['requested_core_h'])} and "
                  f"**{t['saved_gb_h']:,.0f} GB·h**, killing {t['killed_by_time']:,} jobs on time"
                  f"{_pct(t['killed_by_time'], t['jobs'])} and {t['killed_by_memory']:,} on memory"
                  f"{_pct(t['killed_by_memory'], t['jobs'])} (each a retry).")]
    if d.get("missing_models"):
        kinds = d["missing_models"]
        lines += ["", (f"_No {' / '.join(kinds)} model with a budget table: "
                       f"{'its' if len(kinds) == 1 else 'their'} savings are counted as 0; train "
                       f"{'it' if len(kinds) == 1 else 'them'} with "
                       f"{' and '.join(f'`jobmedic train {k}`' for k in kinds)}._")]
    for g in d["groups"]:
        lines += ["", f"### Per {g['by']}", "",
                  "| " + g["by"] + " | " + " | ".join(h for _, h in COLS) + " |",
                  "|---" * (len(COLS) + 1) + "|"]
        lines += ["| " + str(r["key"]) + " | " + " | ".join(f"{r[c]:,}" if isinstance(r[c], int)
                                                          else f"{r[c]:,.1f}" for c, _ in COLS) + " |"
                  for r in g["rows"]]
    return "\n".join(lines)
