"""Parsers for Slurm's field formats: node lists, durations, memory sizes, timestamps,
exit codes and TRES strings. Pure functions, shared by the sacct and Eagle readers."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

from jobmedic.core.units import UnitError
from jobmedic.core.units import parse_mem_mb as _parse_mem_mb
from jobmedic.core.validate import MAX_NODES_PER_JOB, ValueRejected, node_product

NO_LIMIT = {"UNLIMITED", "PARTITION_LIMIT", "INVALID", "NONE", ""}


class FieldError(ValueError):
    """A field value that cannot be parsed; the message names the field and the value."""


@lru_cache(maxsize=16384)
def parse_duration(value: str | None, field: str = "duration") -> int | None:
    """Slurm durations (`[D-]HH:MM:SS`, `MM:SS`, `MM:SS.mmm`, `UNLIMITED`) in seconds."""
    if value is None:
        return None
    v = value.strip()
    if v.upper() in NO_LIMIT or v.upper() == "UNKNOWN":
        return None
    try:
        days = 0
        if "-" in v:
            d, v = v.split("-", 1)
            days = int(d)
        parts = v.split(":")
        if len(parts) == 3:
            h, m, s = int(parts[0]), int(parts[1]), float(parts[2])
        elif len(parts) == 2:
            h, m, s = 0, int(parts[0]), float(parts[1])
        elif len(parts) == 1:  # bare minutes, as in TimelimitRaw or --time=60
            h, m, s = 0, int(parts[0]), 0.0
        else:
            raise ValueError
        if days < 0 or h < 0 or m < 0 or s < 0:
            raise ValueError
        return int(days * 86400 + h * 3600 + m * 60 + s)
    except ValueError:
        raise FieldError(f"{field}: cannot parse {value!r} as [D-]HH:MM:SS") from None


@lru_cache(maxsize=8192)
def parse_mem_mb(value: str | None, field: str = "ReqMem", cpus: int | None = None,
                 nodes: int | None = None, default_unit: str = "M") -> float | None:
    """Memory in MiB, read as Slurm writes it (jobmedic.core.units, dialect "slurm"): `3000Mc`
    is per CPU, `48000Mn` per node (multiplied out); unitless values take `default_unit`
    (M for ReqMem; B, bytes, for MaxRSS). FieldError names the field."""
    try:
        return _parse_mem_mb(value, "slurm", default_unit=default_unit, cpus=cpus, nodes=nodes)
    except UnitError as exc:
        raise FieldError(f"{field}: {exc}") from None


@lru_cache(maxsize=4096)
def _day_epoch(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


@lru_cache(maxsize=65536)
def parse_time(value: str | None, field: str = "time") -> int | None:
    """ISO timestamps (`2019-07-31T22:29:13`, taken as UTC) to epoch seconds; `Unknown` -> None."""
    if value is None:
        return None
    if len(value) == 19 and value[10] == "T" and value[13] == ":" and value[16] == ":" \
            and value[11:13].isdigit() and value[14:16].isdigit() and value[17:19].isdigit():
        h, m, sec = int(value[11:13]), int(value[14:16]), int(value[17:19])
        if h < 24 and m < 60 and sec < 60:
            try:  # the common shape, without building a datetime per value
                return _day_epoch(value[:10]) + h * 3600 + m * 60 + sec
            except ValueError:
                pass
    v = value.strip()
    if not v or v.upper() in ("UNKNOWN", "NONE", "N/A", "(NULL)"):
        return None
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise FieldError(f"{field}: cannot parse {value!r} as a timestamp (YYYY-MM-DDTHH:MM:SS)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


@lru_cache(maxsize=4096)
def parse_exit(value: str | None) -> tuple[int | None, int | None]:
    """Slurm `N:S` exit code and signal."""
    if not value:
        return None, None
    code, _, sig = value.strip().partition(":")
    try:
        return (int(code) if code else None), (int(sig) if sig else None)
    except ValueError:
        raise FieldError(f"ExitCode: cannot parse {value!r} as N:S") from None


_GPU_TRES = re.compile(r"gres/gpu(?::[\w.\-]+)?=(\d+)")
_GPU_GRES = re.compile(r"gpu(?::[\w.\-]+)?:(\d+)")


@lru_cache(maxsize=16384)
def gpus_from_tres(*values: str | None) -> int | None:
    """GPU count from ReqTRES / AllocTRES (`gres/gpu=4`) or ReqGRES (`gpu:v100:2`)."""
    for v in values:
        if not v:
            continue
        m = _GPU_TRES.search(v) or _GPU_GRES.search(v)
        if m:
            return int(m.group(1))
    return None


def expand_nodelist(value: str | None) -> list[str]:
    """Expand a Slurm hostlist: `gpu[01-03,07],cn5` -> gpu01 gpu02 gpu03 gpu07 cn5.

    Handles zero padding, several bracket groups (`r[1-2]n[3-4]`) and commas inside
    brackets; `None assigned` and `(null)` give no nodes.
    """
    if not value:
        return []
    return list(_expand_cached(value))


@lru_cache(maxsize=16384)
def _expand_cached(value: str) -> tuple[str, ...]:
    v = value.strip()
    if not v or v.lower() in ("none assigned", "(null)", "none", "unknown"):
        return ()
    if "[" not in v:
        names = tuple(p.strip() for p in v.split(",") if p.strip())
        if len(names) > MAX_NODES_PER_JOB:
            raise FieldError(f"NodeList: {len(names):,} names, more than {MAX_NODES_PER_JOB:,} "
                             "nodes per job")
        return names
    items = _split_top(v)
    total = 0
    for item in items:  # the size of the expansion, before anything is expanded
        try:
            total += node_product([_group_size(g, item) for g in _GROUP_RE.findall(item)])
        except ValueRejected as exc:
            raise FieldError(str(exc)) from None
        if total > MAX_NODES_PER_JOB:
            raise FieldError(f"NodeList: {value[:60]!r} expands to more than "
                             f"{MAX_NODES_PER_JOB:,} nodes per job")
    out: list[str] = []
    for item in items:
        out.extend(_expand_one(item))
    return tuple(out)


_GROUP_RE = re.compile(r"\[([^\]]*)\]")


def _group_size(body: str, item: str) -> int:
    """How many numbers one bracket group (`01-03,07`) names."""
    n = 0
    for rng in body.split(","):
        lo, _, hi = rng.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise FieldError(f"NodeList: cannot expand range {rng!r} in {item!r}")
        n += (int(hi) - int(lo) + 1) if hi else 1
    return max(n, 1)


def _split_top(v: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in v:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _expand_one(item: str) -> list[str]:
    start = item.find("[")
    if start == -1:
        return [item]
    end = item.find("]", start)
    if end == -1:
        raise FieldError(f"NodeList: unbalanced bracket in {item!r}")
    prefix, body, rest = item[:start], item[start + 1 : end], item[end + 1 :]
    tails = _expand_one(rest) if rest else [""]
    out = []
    for rng in body.split(","):
        lo, _, hi = rng.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise FieldError(f"NodeList: cannot expand range {rng!r} in {item!r}")
        width = len(lo)
        a, b = int(lo), int(hi) if hi else int(lo)
        if b < a or b - a > 100_000:
            raise FieldError(f"NodeList: bad range {rng!r} in {item!r}")
        for n in range(a, b + 1):
            for t in tails:
                out.append(f"{prefix}{n:0{width}d}{t}")
    return out


#: A pending array line names its tasks by range: `123_[1-3]`, `123_[9-11,13,16-20]`, with an
#: optional `%N` throttle (`123_[1-100%4]`) and `:step` (`123_[1-15:4]`). Open XDMoD's Slurm
#: parser expands these into one record per task; so does jobmedic, up to this many tasks per
#: line (Slurm's own MaxArraySize tops out at 4,000,001; a line asking for more than the cap,
#: or for an index above Slurm's ceiling, is rejected rather than expanded).
MAX_ARRAY_TASKS = 100_000
MAX_ARRAY_INDEX = 4_000_000
_ARRAY_RANGE = re.compile(r"^(\d+)_\[([0-9,:\-]+)(?:%(\d+))?\]$")


def array_range(job_id: str) -> tuple[str, list[int]] | None:
    """(array job id, task indexes) of a pending array range line, or None when `job_id` is
    not one (`123`, `123_4`). Raises ValueRejected for a malformed, reversed, oversized or
    absurd range, before any task is expanded."""
    if "_[" not in job_id:
        return None
    m = _ARRAY_RANGE.match(job_id)
    if m is None:
        raise ValueRejected("JobID", job_id[:60], "is not an array range like 123_[1-3,7%2]")
    parts: list[tuple[int, int, int]] = []
    total = 0
    for item in m.group(2).split(","):
        rng, _, step_txt = item.partition(":")
        lo_txt, dash, hi_txt = rng.partition("-")
        if not lo_txt.isdigit() or (dash and not hi_txt.isdigit()) or (
                step_txt and not step_txt.isdigit()):
            raise ValueRejected("JobID", job_id[:60], f"bad array range item {item!r}")
        lo, hi, step = int(lo_txt), int(hi_txt) if dash else int(lo_txt), int(step_txt or 1)
        if hi < lo or step < 1 or hi > MAX_ARRAY_INDEX:
            raise ValueRejected("JobID", job_id[:60], f"array range item {item!r} is reversed, "
                                f"has a zero step or an index above {MAX_ARRAY_INDEX:,}")
        total += (hi - lo) // step + 1
        if total > MAX_ARRAY_TASKS:
            raise ValueRejected("JobID", job_id[:60], f"expands to more than {MAX_ARRAY_TASKS:,} "
                                "array tasks")
        parts.append((lo, hi, step))
    tasks = sorted({i for lo, hi, step in parts for i in range(lo, hi + 1, step)})
    return m.group(1), tasks
