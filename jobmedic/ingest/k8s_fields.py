"""Kubernetes field formats: resource quantities and RFC 3339 timestamps. Pure functions."""
from __future__ import annotations

import math
from datetime import datetime
from functools import lru_cache

from jobmedic.core.units import UnitError, k8s_quantity, parse_mem_mb

QuantityError = UnitError  # a resource quantity that is not in Kubernetes' format
quantity = k8s_quantity


def mem_mb(value: str | None) -> float | None:
    """A memory quantity in MiB, as the store counts them (dialect "k8s")."""
    return parse_mem_mb(value, "k8s")


def cpus(value: str | None) -> float | None:
    return quantity(value)


def ceil_int(x: float | None) -> int | None:
    return None if x is None else math.ceil(x - 1e-9)


@lru_cache(maxsize=65536)
def rfc3339(value: str | None) -> int | None:
    """``2024-05-01T10:00:00Z`` (or with an offset / fraction) -> epoch seconds."""
    if not value:
        return None
    try:
        return int(datetime.fromisoformat(value).timestamp())
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 time (e.g. 2024-05-01T10:00:00Z)") from None
