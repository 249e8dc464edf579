"""Time in jobmedic: UTC epoch seconds, half-open `Window`s, ISO rendering and the one parser
for user-given times (`--as-of`, `as_of`, `--since`, `--until`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Window:
    """A half-open time range [start, end) in UTC epoch seconds."""

    start: int
    end: int

    @classmethod
    def lookback(cls, now: int, days: float) -> Window:
        return cls(int(now - days * 86400), int(now))

    @property
    def days(self) -> float:
        return (self.end - self.start) / 86400

    def to_dict(self) -> dict[str, Any]:
        return {"start": iso(self.start), "end": iso(self.end), "start_epoch": self.start,
                "end_epoch": self.end, "days": round(self.days, 3)}


def iso(ts: float | None) -> str | None:
    """'2024-05-01T12:00:00Z' for epoch seconds; None stays None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_epoch() -> int:
    return int(datetime.now(UTC).timestamp())


#: Epoch seconds a time argument may have: up to the end of year 9999 (what datetime shows).
MAX_EPOCH = 253_402_300_799


def _epoch(x: float, field_name: str, value: object) -> int:
    if not math.isfinite(x) or abs(x) > MAX_EPOCH:
        raise ValueError(f"{field_name}: {value!r} is not a time between years 1 and 9999")
    return int(x)


def parse_time_arg(value: str | float, field_name: str = "time") -> int:
    """ISO date / datetime (UTC unless it says otherwise) or epoch seconds; ValueError for
    anything else, including inf, nan and epochs beyond year 9999."""
    if isinstance(value, (int, float)):
        return _epoch(float(value), field_name, value)
    v = str(value).strip()
    try:
        x = float(v)
    except ValueError:
        pass
    else:
        return _epoch(x, field_name, value)
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise ValueError(f"{field_name}: {value!r} is not an ISO date/time (2024-05-01, "
                         f"2024-05-01T12:00) or epoch seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())
