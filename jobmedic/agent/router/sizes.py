"""Resource sizes in a job spec: memory (64G, 512Mi, 1.5TB, "64 gigs of ram"), GPUs ("4 GPUs",
"a 4-GPU job", "8x A100"), CPUs ("16 cores"), nodes ("2 nodes") and wall time ("8 hours",
"--time=08:00:00", "1-12:00:00", "90 min").

Memory follows Slurm's convention (jobmedic.core.units, dialect "slurm"): 1G = 1024M, so
64G is 65536 MB.
"""
from __future__ import annotations

import re

from jobmedic.core.units import parse_mem_mb

WORD_NUMS = {"a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "dual": 2, "three": 3, "four": 4,
             "quad": 4, "five": 5, "six": 6, "eight": 8, "sixteen": 16}
_N = r"(\d+|a|an|one|single|two|dual|three|four|quad|five|six|eight|sixteen)"

RX_MEM = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(tib|tb|ti|t|gib|gb|gi|gigs?|g|mib|mb|mi|megs?|m|"
                    r"kib|kb|ki|k)\b(?!\s*(?:gpus?|nodes?|cores?|cpus?))", re.IGNORECASE)
RX_MEM_FLAG = re.compile(r"--mem(?:-per-node)?[= ](\d+(?:\.\d+)?)([tgmk]?)\b", re.IGNORECASE)
RX_GPU = re.compile(rf"\b{_N}\s*(?:x\s*)?[- ]?(?:(?:nvidia|a100|h100|h200|v100|a40|l40s?|rtx|\w+gb)\s*)?"
                    r"(?:gpus?|a100s?|h100s?|h200s?|v100s?|cards?)\b|--gres[= ]gpu(?::\w+)?:(\d+)|"
                    r"(\d+)\s*x\s*(?:a100|h100|h200|v100|a40)\b", re.IGNORECASE)
RX_CPU = re.compile(rf"\b{_N}\s*[- ]?(?:cores?|cpus?|vcpus?|threads?|procs?|processors?|tasks?)\b|"
                    r"(?:-c|--cpus-per-task|--ntasks)[= ](\d+)", re.IGNORECASE)
RX_NODES = re.compile(rf"\b{_N}\s*[- ]?nodes?\b|(?:-N|--nodes)[= ](\d+)")
RX_WALL_CLOCK = re.compile(r"(?:--time[= ]|-t\s+|\bfor\s+|\blimit (?:of\s+)?|walltime (?:of\s+)?)"
                           r"(?:(\d+)-)?(\d{1,3}):(\d{2})(?::(\d{2}))?\b")
RX_WALL = re.compile(r"(?<!last )(?<!past )(?<!\w)(\d+(?:\.\d+)?)\s*(hours?|hrs?|h|minutes?|mins?|days?|d)\b"
                     r"(?!\s+ago)", re.IGNORECASE)


def _n(word: str | None) -> int | None:
    if not word:
        return None
    w = word.lower()
    return int(w) if w.isdigit() else WORD_NUMS.get(w)


def memory_mb(text: str) -> float | None:
    """The first memory size in the text, in MB (lower-case 'm' alone is read as minutes)."""
    m = RX_MEM_FLAG.search(text)
    if m:
        return _mb(float(m[1]), (m[2] or "m").lower())
    for m in RX_MEM.finditer(text):
        unit = m[2]
        if unit == "m" or unit.lower() in ("k", "m") and unit.islower():
            continue
        return _mb(float(m[1]), unit.lower())
    return None


def _mb(value: float, unit: str) -> float:
    mb = parse_mem_mb(f"{value:.10f}{unit[0].upper()}", "slurm") or 0.0  # k.., m.., g.., t..
    return int(mb) if mb == int(mb) else round(mb, 3)


def gpus(text: str) -> int | None:
    m = RX_GPU.search(text)
    return None if not m else _n(m[1] or m[2] or m[3])


def cpus(text: str) -> int | None:
    m = RX_CPU.search(text)
    return None if not m else _n(m[1] or m[2])


def nodes(text: str) -> int | None:
    m = RX_NODES.search(text)
    return None if not m else _n(m[1] or m[2])


def walltime_s(text: str) -> int | None:
    """Requested wall time in seconds from a clock value or a duration ("8 hours", "90 min")."""
    m = RX_WALL_CLOCK.search(text)
    if m:
        return (int(m[1] or 0) * 86400 + int(m[2]) * 3600 + int(m[3]) * 60 + int(m[4] or 0)) or None
    m = RX_WALL.search(text)
    if m:
        unit = m[2].lower()
        mult = 86400 if unit.startswith("d") else 60 if unit.startswith("m") else 3600
        return int(float(m[1]) * mult) or None
    return None
