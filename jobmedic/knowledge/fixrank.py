"""Fix ranking that respects context: empirical-Bayes success rates per (failure type, cluster),
curated fixes as a prior, and GPU-memory against host-memory OOM.

**Rates.** For one failure type, a beta prior is fitted to the global success rates of its
fixes (method of moments when at least three fixes have five attempts; otherwise the type's
pooled rate with the strength of `PRIOR_STRENGTH` attempts). A curated fix starts from that
prior; a learned or user-described fix starts from a sceptical one (half the mean, the same
strength), since nobody vetted it. Its global posterior is the prior plus its attempts on every
cluster.

**Clusters.** Hardware differs between clusters, so for a job the rate is the fix's rate *on
that job's cluster*, with the fix's posterior on the *other* clusters as the prior, worth at
most `CLUSTER_POOL` attempts (hierarchical pooling): a fix that worked 9 times of 10 elsewhere
but failed 9 times of 10 here ranks low here; a cluster with no attempts borrows the rest.

**Order.** The score is the 5 % quantile of the posterior (a lower bound: evidence and rate
balanced). Curated fixes that were tried and learned fixes with at least `MIN_LEARNED` attempts
are ranked by it; then curated fixes nobody tried yet, in rule-base order; then learned fixes
with fewer attempts, so a single inferred attempt never outranks a curated fix.

**Memory.** An OOM's text says whether the GPU ran out ("CUDA out of memory",
torch.cuda.OutOfMemoryError, "RESOURCE_EXHAUSTED ... GPU") or the host (OOMKilled, the OOM
killer, Slurm's OUT_OF_MEMORY). Fixes tagged `memory: host` (more --mem, a bigmem partition)
are dropped for a GPU OOM (no host request raises GPU memory); fixes tagged `memory: gpu`
(batch size, mixed precision, a larger GPU) rank after the host ones for a host OOM.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from functools import lru_cache
from itertools import accumulate
from typing import Any

PRIOR_STRENGTH = 4.0
CLUSTER_POOL = 8.0
MIN_LEARNED = 3
LOWER_Q = 0.05

#: Lower-case phrases that name a GPU / host OOM (plain substring search: a regex over a long
#: paste cost milliseconds); (phrase, words one of which must follow on the same line).
_GPU = ("cuda out of memory", "cuda error: out of memory", "cuda.outofmemoryerror",
        "outofmemoryerror: cuda", "cudaerrormemoryallocation", "cublas_status_alloc_failed",
        "hip out of memory", "out of memory on gpu", "out of memory on device")
_GPU_LINE = (("resource_exhausted", ("gpu", "device")), ("oom when allocating tensor", ("gpu",)),
             ("xla", ("out of memory",)), ("nvml", ("out of memory",)))
_HOST = ("oomkilled", "oom-kill", "oom_kill", "oom kill", "out of memory: kill", "out_of_memory",
         "memory cgroup out of memory", "exceeded job memory limit", "exceeded step memory limit",
         "exceeded memory limit", "memoryerror", "std::bad_alloc", "cannot allocate memory",
         "term_memlimit", "pbs: job killed: mem", "pbs: job killed: vmem", "pbs: job killed: pmem")


def _first(low: str, phrases: tuple[str, ...], line: tuple = ()) -> int:
    """The earliest position of any phrase in `low` (-1 when none)."""
    hits = [i for i in (low.find(p) for p in phrases) if i >= 0]
    for head, tails in line:
        i = low.find(head)
        while i >= 0:
            eol = low.find("\n", i)
            rest = low[i:eol if eol >= 0 else len(low)]
            if any(t in rest for t in tails):
                hits.append(i)
                break
            i = low.find(head, i + 1)
    return min(hits) if hits else -1


def memory_kind(*texts: str | None) -> str | None:
    """"gpu" when the text says the GPU ran out of memory, "host" when the host did, None when
    it says neither; with both, the earlier line decides (the root cause comes first)."""
    low = "\n".join(t for t in texts if t).lower()
    g, h = _first(low, _GPU, _GPU_LINE), _first(low, _HOST)
    if g >= 0 and h >= 0:
        return "gpu" if g <= h else "host"
    return "gpu" if g >= 0 else "host" if h >= 0 else None


@lru_cache(maxsize=1)
def _grid() -> tuple[list[float], list[float], list[float]]:
    """The midpoint grid on (0, 1) with its log and log(1 - x)."""
    grid = [(i + 0.5) / 4000 for i in range(4000)]
    return grid, [math.log(x) for x in grid], [math.log1p(-x) for x in grid]


@lru_cache(maxsize=4096)
def beta_quantile(a: float, b: float, q: float) -> float:
    """The q quantile of Beta(a, b), integrated on a midpoint grid and interpolated (error
    about 1e-3; scipy's import would cost this module seconds). Plain Python (about 2 ms), so a
    one-shot `remediate` does not import numpy. Cached: a type's fixes keep their counts
    between calls."""
    grid, log, log1m = _grid()
    logp = [(a - 1) * x + (b - 1) * y for x, y in zip(log, log1m)]
    top = max(logp)
    cdf = list(accumulate(math.exp(v - top) for v in logp))
    total = cdf[-1]
    cdf = [c / total for c in cdf]
    if q <= cdf[0]:
        return grid[0]
    if q >= cdf[-1]:
        return grid[-1]
    j = bisect_right(cdf, q) - 1  # cdf[j] <= q < cdf[j + 1], as numpy.interp
    return (grid[j + 1] - grid[j]) / (cdf[j + 1] - cdf[j]) * (q - cdf[j]) + grid[j]


def fit_prior(counts: Sequence[tuple[int, int]]) -> tuple[float, float]:
    """(mean, strength) of a beta prior for a type's fixes from their (successes, attempts)."""
    S = sum(k for k, _ in counts)
    N = sum(n for _, n in counts)
    mean = (S + 1.0) / (N + 2.0)
    rich = [(k, n) for k, n in counts if n >= 5]
    if len(rich) < 3:
        return mean, PRIOR_STRENGTH
    rates = [k / n for k, n in rich]
    m = sum(rates) / len(rates)
    var = sum((r - m) ** 2 for r in rates) / (len(rates) - 1)
    noise = sum(m * (1 - m) / n for _, n in rich) / len(rich)
    between = var - noise
    if m <= 0 or m >= 1:
        return mean, PRIOR_STRENGTH
    strength = m * (1 - m) / between - 1 if between > 0 else 50.0
    return min(max(m, 0.02), 0.98), min(max(strength, 2.0), 50.0)


def score(prior: tuple[float, float], curated: bool, k: int, n: int,
          cluster: tuple[int, int] | None = None) -> dict[str, Any]:
    """The posterior of one fix: global (prior + all attempts) or, with `cluster` = (successes,
    attempts) on the job's cluster, that cluster's posterior pooled towards the others."""
    mean, strength = prior
    if not curated:
        mean = mean / 2
    a0, b0 = strength * mean, strength * (1 - mean)
    if cluster is None:
        a, b, basis = a0 + k, b0 + n - k, "all clusters"
    else:
        kc, nc = cluster
        ao, bo = a0 + (k - kc), b0 + (n - k) - (nc - kc)  # the other clusters
        pool = min(CLUSTER_POOL, ao + bo)
        po = ao / (ao + bo)
        a, b = pool * po + kc, pool * (1 - po) + nc - kc
        basis = f"this cluster ({kc} of {nc}), the others as prior"
    return {"mean": round(a / (a + b), 4), "low": round(beta_quantile(a, b, LOWER_Q), 4),
            "basis": basis, "prior": "curated" if curated else "learned"}


def tier(entry: dict[str, Any], memory: str | None) -> int:
    """0: ranked by score; 1: curated, never tried; 2: learned with too few attempts;
    3: a fix for the other kind of memory."""
    if memory == "host" and entry.get("memory") == "gpu":
        return 3
    if entry["attempts"] == 0:
        return 1 if entry["source"] == "rule" else 2
    if entry["source"] != "rule" and entry["attempts"] < MIN_LEARNED:
        return 2
    return 0
