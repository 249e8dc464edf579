"""One validation layer for values, shared by every reader and every request model.

Each check takes a value and the name of the field it came from, returns the value (converted
where the check says so) or raises `ValueRejected(field, value, reason)`. The checks are plain
functions on Python scalars, cheap enough for a reader's per-record loop (no per-row pydantic);
the columnar readers apply the same bounds to whole numpy columns (jobmedic/ingest/frames.py).

The bounds:

* numbers are finite (no NaN, no infinity) and within a range; integer ids fit in 64 bits;
* times (epoch seconds) lie between 1970-01-01 and now + 1 year;
* counts (CPUs, GPUs, nodes, memory) are non-negative and below a sane ceiling;
* durations lie between 0 and 100 years; exit codes fit in 32 bits;
* strings are bounded, hold no NUL character and are valid UTF-8 (no lone surrogates);
* a node list expands to at most `MAX_NODES_PER_JOB` names.
"""
from __future__ import annotations

import math
import time
from typing import Any

from jobmedic.core.timeutil import parse_time_arg

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EPOCH_MIN = 0  # 1970-01-01T00:00:00Z
YEAR_S = 366 * 86400
MAX_DURATION_S = 100 * 365 * 86400
MAX_CPUS = 10_000_000
MAX_GPUS = 1_000_000
MAX_NODES = 1_000_000
MAX_MEM_MB = 2.0**40  # 1 EiB in MB
MAX_COUNT = 2**31 - 1  # restarts, repeats, other event counts
EXIT_MIN, EXIT_MAX = -(2**31), 2**32 - 1
MAX_NODES_PER_JOB = 10_000
MAX_TEXT = 65_536  # characters of one free-text field (messages, logs, scripts)
MAX_NAME = 1_024  # characters of one identifier (job id, user, project, node, image)
MAX_LINE = 1 << 20  # characters of one input line / record


class ValueRejected(ValueError):
    """A value that fails a check; names the field, shows the value (shortened) and says why."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field, self.value, self.reason = field, value, reason
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        super().__init__(f"{field}: {shown} {reason}")


def epoch_max(now: float | None = None) -> int:
    """The latest acceptable time: now + 1 year."""
    return int((time.time() if now is None else now) + YEAR_S)


def _number(value: Any, field: str) -> float | int:
    if isinstance(value, bool):
        raise ValueRejected(field, value, "is a boolean, not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueRejected(field, value, "is not a finite number")
        return value
    if isinstance(value, str):
        try:
            v = float(value.strip())
        except ValueError:
            raise ValueRejected(field, value, "is not a number") from None
        if not math.isfinite(v):
            raise ValueRejected(field, value, "is not a finite number")
        if v.is_integer() and abs(v) < 2**53:
            return int(v)
        text = value.strip()
        if text.lstrip("+-").isdigit():  # an integer too long for a float: keep it exact
            return int(text)
        return v
    raise ValueRejected(field, value, f"is a {type(value).__name__}, not a number")


def finite(value: Any, field: str, lo: float = -math.inf, hi: float = math.inf) -> float | int:
    """A finite number (int, float or numeric text) within [lo, hi]."""
    v = _number(value, field)
    if not lo <= v <= hi:
        raise ValueRejected(field, value, f"is outside [{_fmt(lo)}, {_fmt(hi)}]")
    return v


def integer(value: Any, field: str, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int:
    """An integer within [lo, hi] (64-bit by default); a float must be whole."""
    v = _number(value, field)
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueRejected(field, value, "is not a whole number")
        if not lo <= v <= hi:
            raise ValueRejected(field, value, f"is outside [{_fmt(lo)}, {_fmt(hi)}]")
        v = int(v)
    if not lo <= v <= hi:
        raise ValueRejected(field, value, f"is outside [{_fmt(lo)}, {_fmt(hi)}]")
    return v


def count(value: Any, field: str, hi: float = MAX_COUNT) -> int:
    """A non-negative whole count (CPUs, GPUs, nodes, restarts); fractions round up."""
    v = _number(value, field)
    if v < 0:
        raise ValueRejected(field, value, "is negative")
    if v > hi:
        raise ValueRejected(field, value, f"is more than {_fmt(hi)}")
    return v if isinstance(v, int) else math.ceil(v - 1e-9)


def amount(value: Any, field: str, hi: float = MAX_MEM_MB) -> float:
    """A non-negative finite amount (memory in MB, CPU fractions)."""
    v = _number(value, field)
    if v < 0:
        raise ValueRejected(field, value, "is negative")
    if v > hi:
        raise ValueRejected(field, value, f"is more than {_fmt(hi)}")
    return float(v)


def epoch(value: Any, field: str, now: float | None = None) -> int:
    """Epoch seconds between 1970-01-01 and now + 1 year."""
    v = _number(value, field)
    top = epoch_max(now)
    if not EPOCH_MIN <= v <= top:
        raise ValueRejected(field, value, "is not a time between 1970 and now + 1 year")
    return int(v)


def duration(value: Any, field: str) -> int:
    """Seconds between 0 and 100 years."""
    v = _number(value, field)
    if not 0 <= v <= MAX_DURATION_S:
        raise ValueRejected(field, value, "is not a duration between 0 and 100 years")
    return int(v)


def exit_code(value: Any, field: str = "exit_code") -> int:
    return integer(value, field, EXIT_MIN, EXIT_MAX)


def text(value: Any, field: str, max_len: int = MAX_TEXT) -> str:
    """A string of at most `max_len` characters, without NUL, encodable as UTF-8."""
    if not isinstance(value, str):
        raise ValueRejected(field, value, f"is a {type(value).__name__}, not text")
    if len(value) > max_len:
        raise ValueRejected(field, value[:40], f"is longer than {max_len:,} characters "
                                               f"({len(value):,})")
    if "\x00" in value:
        raise ValueRejected(field, value, f"holds a NUL character at {value.index(chr(0))}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueRejected(field, value, f"is not valid UTF-8 at character {exc.start}"
                                ) from None
    return value


def name(value: Any, field: str) -> str:
    """An identifier: text of at most `MAX_NAME` characters."""
    return text(value, field, MAX_NAME)


def utf8(data: bytes, field: str = "input") -> str:
    """Bytes decoded as UTF-8, or a reject that says at which byte it was not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueRejected(field, data[max(0, exc.start - 10):exc.start + 10],
                            f"is not valid UTF-8 at byte {exc.start}") from None


def node_product(sizes: list[int], field: str = "NodeList", cap: int = MAX_NODES_PER_JOB
                 ) -> int:
    """The number of names one hostlist item expands to (the product of its bracket groups'
    sizes), checked against `cap` before anything is expanded."""
    total = 1
    for s in sizes:
        total *= s
        if total > cap:
            raise ValueRejected(field, f"{len(sizes)} ranges", f"expands to more than {cap:,} "
                                "nodes")
    return total


def cell(value: Any, field: str) -> Any:
    """A value about to be stored: None, a 64-bit int, a finite float or bounded text.
    The last line of defence of the JSON readers, whose values may be of any JSON type."""
    t = type(value)
    if value is None or t is str and len(value) < 256 and value.isascii() and "\x00" not in value:
        return value
    if t is int:
        if INT64_MIN <= value <= INT64_MAX:
            return value
        raise ValueRejected(field, value, "does not fit in 64 bits")
    if t is float:
        if math.isfinite(value):
            return value
        raise ValueRejected(field, value, "is not a finite number")
    if t is str:
        return text(value, field)
    raise ValueRejected(field, value, f"is a {t.__name__}, not a value that can be stored")


def _fmt(x: float) -> str:
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:g}"


# -- request models (pydantic validators call these; a ValueError becomes a field error) -------
REQUEST_TEXT = 64 << 20  # characters of one request field (the fields' own limits are lower)


def request_value(value: Any, field: str) -> Any:
    """Any request field: text without NUL and valid UTF-8, finite floats, 64-bit ints
    (lists item by item). Used by every action's request model (tools/base.py)."""
    t = type(value)
    if t is str:
        return text(value, field, REQUEST_TEXT)
    if t is float:
        return finite(value, field)
    if t is int:
        return integer(value, field)
    if t is list or t is tuple:
        for x in value:
            request_value(x, field)
    return value


def request_time(value: str | float | None, field: str, stored: bool = True
                 ) -> str | float | None:
    """A time argument (ISO text or epoch seconds): finite and a real date (years 1..9999)
    always; a time that will be stored (`stored`, e.g. record_failure's timestamp) must also
    lie between 1970 and now + 1 year, like every time a reader stores. A read's time (as_of,
    predict's submit_time) may name any date. The value itself is kept (the tool parses it)."""
    if value is None:
        return None
    t = parse_time_arg(value, field)
    if stored:
        epoch(t, field)
    return value
