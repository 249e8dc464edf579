"""Small markdown helpers shared by the reports: tables, percentages, counts, hours, times.

Plain GitHub-flavoured markdown that reads in a terminal (rich renders it) and in a chat.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def pct(x: float | None, digits: int = 1) -> str:
    """0.0423 -> '4.2%'; None -> '-'."""
    if x is None:
        return "-"
    return f"{100 * float(x):.{digits}f}%"


def num(x: Any) -> str:
    """Thousands separators for counts, up to one decimal for fractional values."""
    if x is None:
        return "-"
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.1f}"
    try:
        return f"{int(x):,}"
    except (TypeError, ValueError):
        return str(x)


def hours(x: float | None) -> str:
    """GPU / core hours: '1,234 h', '0.5 h'."""
    if not x:
        return "0 h"
    return f"{x:,.0f} h" if x >= 10 else f"{x:.1f} h"


def cell(v: Any) -> str:
    s = num(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v if v is not None else "-")
    return s.replace("|", "\\|").replace("\n", " ")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A markdown table; `align` is one character per column: l, r or c."""
    rows = [[cell(v) for v in r] for r in rows]
    if not rows:
        return "_(none)_"
    align = align or "l" + "r" * (len(headers) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def window_line(window: dict[str, Any] | None) -> str:
    if not window:
        return ""
    return f"{window['start'][:16].replace('T', ' ')} to {window['end'][:16].replace('T', ' ')} UTC ({window['days']:g} days)"


def scope_line(scope: Sequence[str] | None) -> str:
    return "all projects" if scope is None else ("projects " + ", ".join(scope) if scope else "no projects")
