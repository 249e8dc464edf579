"""Memory sizes and durations: the one parser and the one pair of formatters.

jobmedic's "MB" columns (`req_mem_mb`, `max_rss_mb`) are MiB (2^20 bytes). A size written by
a person or a scheduler is read in its dialect, because the two conventions disagree on the
same letters:

- ``"slurm"`` (sacct ReqMem / MaxRSS, ``--mem``, sizes typed in a question): every unit is
  binary, 1G = 1024M, so ``4000M`` is 4000 MiB. ``c`` / ``n`` after the unit mean per CPU /
  per node (multiplied out when the count is given). A bare number is in `default_unit`
  (M for ReqMem and --mem, B (bytes) for MaxRSS).
- ``"k8s"`` (Kubernetes and Run:AI quantities): k, M, G, T, P, E are decimal and Ki, Mi, Gi,
  Ti, Pi, Ei binary, so ``4000M`` is 4e9 bytes = 3814.7 MiB; a bare number is bytes.

`fmt_mem` writes a size back in a dialect (``8G`` / ``7.9G``; ``8Gi`` for Kubernetes), so
``parse_mem_mb(fmt_mem(x, d), d)`` gives x back up to the shown precision; `fmt_duration`
writes Slurm's ``[D-]HH:MM:SS``. With ``request=True`` both round UP to whole units, the form
a scheduler accepts for a request (Slurm refuses ``--mem=5.3G``) that is never below the value.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Literal

Dialect = Literal["slurm", "k8s"]
MIB = 2.0**20

#: Slurm units in MiB (binary; K, M, G, T, P with an optional "i" and / or "B").
SLURM_UNITS = {"B": 1 / MIB, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}
#: Kubernetes quantity suffixes as multipliers of one (bytes for memory).
K8S_SUFFIXES = {
    "": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "P": 1e15, "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
    "Pi": 2.0**50, "Ei": 2.0**60,
}
_PLAIN_UNITS = frozenset("KMGTP")
_SLURM_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMGTP]?)(i?B?)?\s*([cn]?)\s*$", re.IGNORECASE)
_K8S_RE = re.compile(r"^\s*([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


class UnitError(ValueError):
    """A size that is not written in the dialect it was read in."""


@lru_cache(maxsize=4096)
def k8s_quantity(value: str | float | None) -> float | None:
    """A Kubernetes quantity as a number: ``"500m"`` -> 0.5, ``"64Gi"`` -> 68719476736."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    m = _K8S_RE.match(str(value))
    if not m or m.group(2) not in K8S_SUFFIXES:
        raise UnitError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 64Gi)")
    return float(m.group(1)) * K8S_SUFFIXES[m.group(2)]


@lru_cache(maxsize=8192)
def parse_mem_mb(value: str | float | None, dialect: Dialect = "slurm", *,
                 default_unit: str = "M", cpus: int | None = None,
                 nodes: int | None = None) -> float | None:
    """A memory size in MiB, read in `dialect`; None for no value (and Slurm's Unknown).

    Raises UnitError for text that is not a size in that dialect."""
    if dialect == "k8s":
        q = k8s_quantity(value)
        return None if q is None else q / MIB
    if dialect != "slurm":
        raise ValueError(f"unknown size dialect {dialect!r}; accepted: slurm, k8s")
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) * SLURM_UNITS[default_unit.upper() or "M"]
    if value[-1:] in _PLAIN_UNITS and value[:-1].isdigit():  # "8200K", "4000M": most of sacct
        return int(value[:-1]) * SLURM_UNITS[value[-1]]
    v = value.strip()
    if v == "" or v.upper() in ("UNKNOWN", "NONE"):
        return None
    if v.upper() in ("0N", "0C"):
        return 0.0
    m = _SLURM_RE.match(v)
    if not m:
        raise UnitError(f"cannot parse {value!r} as a memory size (e.g. 4000M, 3000Mc, 4G)")
    num, unit, _suffix, per = m.groups()
    mb = float(num) * SLURM_UNITS[(unit or default_unit or "M").upper()]
    per = per.lower()
    if per == "c" and cpus:
        mb *= cpus
    elif per == "n" and nodes:
        mb *= nodes
    return mb


def fmt_mem(mb: float | None, dialect: Dialect = "slurm", *, request: bool = False) -> str:
    """A size in MiB as the dialect writes it: ``8G``, ``7.9G``, ``512M`` (``8Gi``, ``512Mi``
    for Kubernetes); ``request``: a whole number of G (M below 1 G), rounded up; ``?`` for None."""
    if mb is None:
        return "?"
    i = "i" if dialect == "k8s" else ""
    if request:
        return f"{math.ceil(mb / 1024)}G{i}" if mb >= 1024 else f"{math.ceil(mb)}M{i}"
    g = mb / 1024
    if g >= 1:
        return f"{g:.0f}G{i}" if abs(g - round(g)) < 0.05 else f"{g:.1f}G{i}"
    return f"{mb:.0f}M{i}"


def mem_quantity(mb: float | None) -> str | None:
    """A size in MiB as an exact Kubernetes quantity (``4000Mi``); None for None."""
    return None if mb is None else f"{mb:.0f}Mi"


def fmt_duration(s: float | None, *, request: bool = False) -> str:
    """Seconds as Slurm's ``[D-]HH:MM:SS``; ``request``: at least a minute, rounded up to
    whole minutes (a time limit to ask for); ``?`` for None."""
    if s is None:
        return "?"
    s = max(math.ceil(s / 60) * 60, 60) if request else int(s)
    d, rem = divmod(int(s), 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    return (f"{d}-" if d else "") + f"{h:02d}:{m:02d}:{sec:02d}"
