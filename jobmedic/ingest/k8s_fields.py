"""Kubernetes field formats: resource quantities and RFC 3339 timestamps. Pure functions."""
from __future__ import annotations

import math
import re
from datetime import datetime
from functools import lru_cache

_QTY_RE = re.compile(r"^\s*([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_SUFFIX = {
    "": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "P": 1e15, "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
    "Pi": 2.0**50, "Ei": 2.0**60,
}


class QuantityError(ValueError):
    """A resource quantity that is not in Kubernetes' format."""


@lru_cache(maxsize=4096)
def quantity(value: str | int | float | None) -> float | None:
    """A Kubernetes quantity as a number: ``"500m"`` -> 0.5, ``"64Gi"`` -> 68719476736."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    m = _QTY_RE.match(str(value))
    if not m or m.group(2) not in _SUFFIX:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 64Gi)")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def mem_mb(value: str | None) -> float | None:
    """A memory quantity in MB as the store counts them (MiB: 2^20 bytes)."""
    q = quantity(value)
    return None if q is None else q / 2.0**20


def cpus(value: str | None) -> float | None:
    return quantity(value)


def ceil_int(x: float | None) -> int | None:
    return None if x is None else int(math.ceil(x - 1e-9))


@lru_cache(maxsize=65536)
def rfc3339(value: str | None) -> int | None:
    """``2024-05-01T10:00:00Z`` (or with an offset / fraction) -> epoch seconds."""
    if not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 time (e.g. 2024-05-01T10:00:00Z)") from None
