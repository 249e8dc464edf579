"""Alert rule `changepoint`: the failure rate stepped up recently (a change point).

The series: jobs with an outcome and failures per `bucket_s` bucket over the last `window_s`
(buckets on multiples of `bucket_s`, so a step keeps its time from poll to poll; the last
bucket, the one of now, is partial), per cluster (`by: cluster`) or per project (`by:
project`), counted by the stats queries' window rule (cancelled jobs left out).

The test: for each split of the window into a *before* and an *after* segment (the after
segment runs to now), the binomial generalised likelihood ratio

    G = 2 [l(k_b, n_b) + l(k_a, n_a) - l(k_b + k_a, n_b + n_a)],   l(k, n) = max log-lik.

Failures are rarely independent (an array of 50 tasks fails as one), so G is divided by the
dispersion of the series around the two-segment fit (Pearson's chi-square over the buckets
per degree of freedom, never below 1: a quasi-binomial correction; the step itself is in the
fit, so it does not inflate the dispersion). A step is reported when the largest
corrected G over the splits reaches the chi-square(1) quantile at `alpha / splits` (a
Bonferroni guard for scanning every split; `threshold` overrides it), the rate went *up* by at
least `min_ratio`, the after segment holds `min_failures` failures and both segments
`min_jobs` jobs. The candidate stays while the step is in the window: it resolves when the
rate falls back (G no longer passes) or the step leaves the window (the new level has become
the baseline).

Configuration (`live.alerts.changepoint`, defaults in `DEFAULTS`):

    changepoint: {enabled: true, by: cluster, bucket_s: 3600, window_s: 172800, alpha: 0.001,
                  threshold: null, min_jobs: 30, min_failures: 5, min_ratio: 1.5,
                  every_s: 0, severity: high, settle_s: 900, refresh_s: 3600}

The watcher keeps the counts of the buckets that ended `settle_s` or more ago and reads only
the newer ones at each poll (all of them again every `refresh_s`, so jobs a late load brings
into old buckets count within the hour).
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from jobmedic.knowledge.errors import InputError
from jobmedic.live.candidate import Candidate

SKEW_S = 300  # the scheduler's clock may run a little ahead of this host's
DEFAULTS: dict[str, Any] = {
    "enabled": True, "by": "cluster", "bucket_s": 3600, "window_s": 2 * 86400,
    "alpha": 0.001, "threshold": None, "min_jobs": 30, "min_failures": 5, "min_ratio": 1.5,
    "every_s": 0, "severity": "high", "settle_s": 900, "refresh_s": 3600,
}


@dataclass(frozen=True)
class Step:
    """An upward step in a binomial rate: `split` is the first bucket of the after segment."""

    split: int
    stat: float  # 2 x log likelihood ratio over the dispersion
    threshold: float
    dispersion: float
    jobs_before: int
    failures_before: int
    jobs_after: int
    failures_after: int

    @property
    def rate_before(self) -> float:
        return self.failures_before / self.jobs_before

    @property
    def rate_after(self) -> float:
        return self.failures_after / self.jobs_after


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """The rule's settings over the defaults; InputError naming the bad one otherwise."""
    c = {**DEFAULTS, **(cfg or {})}
    unknown = sorted(set(c) - set(DEFAULTS))
    hint = "see the alert rules in docs/live.md (live.alerts.changepoint)"
    if unknown:
        raise InputError(f"live.alerts.changepoint: unknown setting(s) {', '.join(unknown)}",
                         hint=f"known: {', '.join(DEFAULTS)}")
    if c["by"] not in ("cluster", "project"):
        raise InputError(f"live.alerts.changepoint.by must be cluster or project, not "
                         f"{c['by']!r}", hint=hint)
    try:
        bucket, window = float(c["bucket_s"]), float(c["window_s"])
        alpha, ratio = float(c["alpha"]), float(c["min_ratio"])
        thr = None if c["threshold"] is None else float(c["threshold"])
        counts = (int(c["min_jobs"]), int(c["min_failures"]), float(c["every_s"]),
                  float(c["settle_s"]), float(c["refresh_s"]))
    except (TypeError, ValueError) as exc:
        raise InputError(f"live.alerts.changepoint: a setting is not a number ({exc})",
                         hint=hint) from None
    problems = [msg for bad, msg in (
        (bucket < 60, "bucket_s must be at least 60"),
        (window < 2 * bucket, "window_s must hold at least two buckets (2 x bucket_s)"),
        (not 0 < alpha < 1, "alpha must be between 0 and 1"),
        (thr is not None and thr <= 0, "threshold must be positive (or null for alpha's)"),
        (ratio < 1, "min_ratio must be at least 1 (the rule reports steps up)"),
        (min(counts) < 0, "counts and seconds (min_jobs ... refresh_s) must not be negative"),
    ) if bad]
    if problems:
        raise InputError(f"live.alerts.changepoint: {'; '.join(problems)}", hint=hint)
    return c


def threshold_for(alpha: float, splits: int) -> float:
    """The chi-square(1) upper quantile at alpha / splits."""
    z = NormalDist().inv_cdf(1 - alpha / (2 * max(splits, 1)))
    return z * z


def _loglik(k: float, n: float) -> float:
    """Maximised binomial log-likelihood of k failures in n jobs (0 log 0 = 0)."""
    if n <= 0 or k <= 0 or k >= n:
        return 0.0
    p = k / n
    return k * math.log(p) + (n - k) * math.log1p(-p)


def _pearson(sum_k2_n: float, k: float, p: float) -> float:
    """Pearson's chi-square of a segment's buckets around its own rate p: sum over the buckets
    of (k_i - n_i p)^2 / (n_i p (1 - p)), from sum(k_i^2 / n_i) and sum(k_i)."""
    return (sum_k2_n - p * k) / (p * (1 - p)) if 0 < p < 1 else 0.0


def detect(jobs: Sequence[int], failures: Sequence[int], *, alpha: float = 0.001,
           threshold: float | None = None, min_jobs: int = 30, min_failures: int = 5,
           min_ratio: float = 1.5) -> Step | None:
    """The strongest upward step of the series ending at its last bucket, or None when no
    split passes (see the module docstring)."""
    b = len(jobs)
    if b < 2 or len(failures) != b:
        return None
    thr = float(threshold) if threshold is not None else threshold_for(alpha, b - 1)
    n_all, k_all = float(sum(jobs)), float(sum(failures))
    s_all = sum(k * k / n for n, k in zip(jobs, failures) if n > 0)
    used_all = sum(1 for n in jobs if n > 0)
    l_all = _loglik(k_all, n_all)
    best: Step | None = None
    nb = kb = s_b = 0.0  # before segment: jobs, failures, sum of k^2/n over its buckets
    for split in range(1, b):
        n_i, k_i = jobs[split - 1], failures[split - 1]
        nb, kb = nb + n_i, kb + k_i
        if n_i > 0:
            s_b += k_i * k_i / n_i
        na, ka = n_all - nb, k_all - kb
        if nb < min_jobs or na < min_jobs or ka < min_failures:
            continue
        p0, p1 = kb / nb, ka / na
        if p1 <= p0 or p1 < min_ratio * p0:
            continue
        disp = 1.0
        if used_all > 2:
            x2 = _pearson(s_b, kb, p0) + _pearson(s_all - s_b, ka, p1)
            disp = max(1.0, x2 / (used_all - 2))
        g = 2 * (_loglik(kb, nb) + _loglik(ka, na) - l_all) / disp
        if g >= thr and (best is None or g > best.stat):
            best = Step(split, g, thr, disp, int(nb), int(kb), int(na), int(ka))
    return best


def _series(rows: list[tuple], buckets: int) -> dict[tuple[str, str | None], tuple[list, list]]:
    out: dict[tuple[str, str | None], tuple[list, list]] = {}
    for cluster, project, i, n, k in rows:
        jobs, fails = out.setdefault((cluster, project), ([0] * buckets, [0] * buckets))
        i = min(max(int(i), 0), buckets - 1)  # a job a little past now joins the last bucket
        jobs[i] += n
        fails[i] += k
    return out


def _stamp(t: int) -> str:
    return time.strftime("%Y-%m-%d %H:%MZ", time.gmtime(t))


class SeriesCache:
    """The counts of settled buckets (ended `settle_s` or more before now), so a poll reads
    only the last few buckets; everything is re-read every `refresh_s` (jobs a late load
    brought into old buckets count from then on) and whenever the settings change."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.edge: int | None = None  # buckets starting before this are held
        self.refreshed = float("-inf")
        self.held: dict[int, list[tuple]] = {}  # bucket start -> [(cluster, project, n, k)]

    def rows(self, store: Any, since: int, now: int, bucket: int, by: str, settle_s: float,
             refresh_s: float) -> list[tuple]:
        edge = max(since, int(now - settle_s) // bucket * bucket)
        key = (bucket, by, settle_s)
        if (key != self.key or self.edge is None or edge < self.edge
                or now - self.refreshed >= refresh_s):
            self.key, self.edge, self.refreshed, self.held = key, since, now, {}
        lo = max(self.edge, since)
        if edge > lo:  # buckets that settled since the last poll
            for cluster, project, i, n, k in store.live.failure_series(lo, edge, bucket, by):
                self.held.setdefault(lo + i * bucket, []).append((cluster, project, n, k))
            self.edge = edge
        for start in [t for t in self.held if t < since]:  # left the window
            del self.held[start]
        out = [(cl, pr, (t - since) // bucket, n, k) for t, held in self.held.items()
               for cl, pr, n, k in held]
        out += [(cl, pr, (edge - since) // bucket + i, n, k) for cl, pr, i, n, k in
                store.live.failure_series(edge, now + SKEW_S, bucket, by)]
        return out


def changepoint(store: Any, now: int, cfg: dict[str, Any],
                cache: SeriesCache | None = None) -> list[Candidate]:
    """One candidate per cluster (or project) whose failure rate stepped up in the window.
    With a `cache` (the watcher keeps one), settled buckets are read once."""
    c = validate(cfg)
    bucket = max(int(c["bucket_s"]), 60)
    since = (now - int(c["window_s"])) // bucket * bucket  # whole buckets: stable boundaries
    buckets = max(2, (now - since) // bucket + 1)  # the last one is the bucket of now
    by = "project" if c["by"] == "project" else "cluster"
    if cache is None:
        rows = store.live.failure_series(since, now + SKEW_S, bucket, by)
    else:
        rows = cache.rows(store, since, now, bucket, by, float(c["settle_s"]),
                          float(c["refresh_s"]))
    out = []
    for (cluster, project), (jobs, fails) in sorted(_series(rows, buckets).items(),
                                                    key=lambda kv: (kv[0][0], kv[0][1] or "")):
        step = detect(jobs, fails, alpha=float(c["alpha"]), threshold=c["threshold"],
                      min_jobs=int(c["min_jobs"]), min_failures=int(c["min_failures"]),
                      min_ratio=float(c["min_ratio"]))
        if step is None:
            continue
        at = since + step.split * bucket
        recent = store.live.failed_jobs_between(cluster, project, at, now + SKEW_S, 20)
        ids = [j["job_id"] for j in recent]
        types = [j["failure_type"] for j in recent if j["failure_type"]]
        ftype = max(set(types), key=types.count) if types else None
        what = f"project {project}" if by == "project" else f"cluster {cluster}"
        out.append(Candidate(
            "changepoint", f"rate:{by}" + (f":{project}" if by == "project" else ""),
            c["severity"],
            f"failure rate of {what} rose from {step.rate_before:.1%} "
            f"({step.failures_before}/{step.jobs_before} jobs) to {step.rate_after:.1%} "
            f"({step.failures_after}/{step.jobs_after}) since {_stamp(at)} "
            f"(change-point statistic {step.stat:.1f} >= {step.threshold:.1f}, dispersion "
            f"{step.dispersion:.1f}); most common type since then: {ftype or 'unknown'}",
            ids, ftype, store.live.latest_evidence(cluster, ids),
            f"look at what changed around {_stamp(at)}: `jobmedic analyze --lookback-days 1"
            + (f" --project {project}`" if by == "project" else "`"),
            project if by == "project" else None, cluster))
    return out
