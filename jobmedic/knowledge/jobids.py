"""Close job ids for a job id the store does not hold: the ranking (pure functions).

The store (`VocabQueries.close_job_ids`) gathers candidate ids inside the caller's scope: the
ids of the same array job or step (`1234_7` -> `1234`, `1234_0`, ...; `1234.batch`), the ids
next to the asked one in index order (numeric neighbours: `4243` -> `4242`, `4244`), and, in
a small store, every id. `rank` orders them: the same job family first (nearest task or step
number first), then by edit distance and numeric distance; ids neither of the family, a
numeric neighbour nor within a few edits are not suggested.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable

#: Where an array task, a job step or a heterogeneous component starts in a Slurm id.
_FAMILY = re.compile(r"^([^_.+]*\d)[_.+]")
_TAIL = re.compile(r"^(.*?)(\d+)$")


def family(job_id: str) -> str:
    """The base job of an array task / step / het component id ("1234_7" -> "1234",
    "1234.batch" -> "1234"); the id itself otherwise."""
    m = _FAMILY.match(job_id)
    return m[1] if m else job_id


def levenshtein(a: str, b: str, cap: int) -> int:
    """Edit distance of a and b, or cap + 1 as soon as it is sure to exceed cap."""
    if abs(len(a) - len(b)) > cap:
        return cap + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > cap:
            return cap + 1
        prev = cur
    return prev[-1]


def _split_tail(job_id: str) -> tuple[str, int] | None:
    """(text before the trailing number, the number): "j1255" -> ("j", 1255)."""
    m = _TAIL.match(job_id)
    return (m[1], int(m[2])) if m else None


def rank(asked: str, candidates: Iterable[str], limit: int = 5) -> list[str]:
    """The candidates worth suggesting for `asked`, best first (at most `limit`): the same
    array job / step first (nearest task number first), then the nearest existing numbers
    below and above with the same text before them ("j1255" -> "j1249"), then ids at most
    max(1, len/3) edits away."""
    cands = {c for c in candidates if c and c != asked}
    if not cands:
        return []
    fam = family(asked)
    cap = max(1, len(asked) // 3)
    tail = _split_tail(asked)
    keyed: dict[str, tuple[int, float, float]] = {}
    below: tuple[int, str] | None = None
    above: tuple[int, str] | None = None
    for c in cands:
        ct = _split_tail(c)
        if family(c) == fam and c != fam or c == fam != asked:  # a task / step, or the base job
            if fam == asked:  # the base job asked: its tasks in order
                nd = ct[1] if ct else math.inf
            else:
                nd = abs(ct[1] - tail[1]) if ct and tail else math.inf
            keyed[c] = (0, nd, 0)
            continue
        if ct and tail and ct[0] == tail[0] and len(c) == len(asked):
            if ct[1] < tail[1] and (below is None or ct[1] > below[0]):
                below = (ct[1], c)
            if ct[1] > tail[1] and (above is None or ct[1] < above[0]):
                above = (ct[1], c)
        lev = levenshtein(asked, c, cap)
        if lev <= cap:  # ties: the longer shared beginning first ("j1211x": j1210 before j1011)
            keyed[c] = (2, lev, -len(os.path.commonprefix([asked, c])))
    for near in (below, above):
        if near is not None:
            keyed[near[1]] = (1, abs(near[0] - tail[1]) if tail else math.inf, 0)
    return sorted(keyed, key=lambda c: (*keyed[c], c))[:limit]
