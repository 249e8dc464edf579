"""Memory-kill early warning: when will a running job's memory reach its limit?

`estimate(samples, limit, now)` reads one series of memory samples ((t, value) pairs, bytes, or
percent with limit 100) and returns the estimated seconds until the limit with an interval,
from a robust trend:

1. Cleaning: non-finite and negative values, samples more than `FUTURE_S` after `now` (clock
   skew, bad input) are dropped and counted; the rest is sorted by time and a repeated time
   keeps its largest value (out-of-order samples are fine).
2. Staleness: a series whose newest sample is older than `stale_s` says "stale" and never
   alarms (the job may have ended, or the sampler stopped).
3. Envelope: the recent `window_s` is cut into bins and each bin keeps its maximum. A sawtooth
   (GC, buffers freed and re-filled) then shows its peaks, which is what the kill watches; a
   spike that frees memory again is one bin among many, which the median of slopes ignores.
4. Trend: Theil-Sen slope of the envelope with its 90 % interval (Sen's, via Kendall's tau),
   on the whole window AND on its recent half; the job is "growing" only when both lower
   bounds are above zero. A plateau under the limit (flat recent half) never alarms, even right
   after a climb; a step climb shows as growth while it climbs.
5. Time to the limit = (limit - level) / slope, with level = the envelope's last bin; the
   interval uses the slope's upper (earliest) and lower (latest) bounds. `alarm` is set when
   the job is growing and the central estimate is within `horizon_s`, or it is at the limit.

Pure numpy/scipy: scoring one job takes well under a millisecond for a few hundred samples.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

FUTURE_S = 60  # a sample this far after `now` is from the future: dropped
WINDOW_S = 180  # the recent window the trend reads
STALE_S = 120  # a newest sample older than this: no estimate
HORIZON_S = 900  # alarm when the limit is this close
MIN_POINTS = 5  # envelope bins needed for a trend
MIN_SPAN_S = 30  # growth must be seen this long before it alarms (a short climb may stop)
RECENT_S = 10  # ... and have set a new high within this (or a quarter of the span)
NEW_HIGH = 0.01  # ... by this share of the limit
AT_LIMIT = 0.97  # this share of the limit, still rising: alarm whatever the estimate
#: Preferred memory metrics, best first (current RSS before the high-water mark).
METRICS = ("mem_rss_bytes", "mem_used_bytes", "mem_ave_rss_bytes", "mem_max_rss_bytes",
           "mem_used_pct")


def clean(samples: Iterable[Sequence[float]], now: float) -> tuple[np.ndarray, np.ndarray,
                                                                    dict[str, int]]:
    """(t, v) sorted, deduplicated by time (largest value kept), and the counts dropped."""
    arr = np.array([(float(t), float(v)) for t, v in samples if t is not None and v is not None],
                   dtype=np.float64).reshape(-1, 2)
    dropped = {"not_finite": 0, "negative": 0, "future": 0}
    if not len(arr):
        return arr[:, 0], arr[:, 1], dropped
    fin = np.isfinite(arr).all(axis=1)
    dropped["not_finite"] = int((~fin).sum())
    arr = arr[fin]
    neg = arr[:, 1] < 0
    dropped["negative"] = int(neg.sum())
    arr = arr[~neg]
    fut = arr[:, 0] > now + FUTURE_S
    dropped["future"] = int(fut.sum())
    arr = arr[~fut]
    if not len(arr):
        return arr[:, 0], arr[:, 1], dropped
    order = np.lexsort((-arr[:, 1], arr[:, 0]))  # by time, largest value first
    arr = arr[order]
    first = np.r_[True, np.diff(arr[:, 0]) > 0]
    return arr[first, 0], arr[first, 1], dropped


def envelope(t: np.ndarray, v: np.ndarray, t0: float, t1: float, bins: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Per bin of [t0, t1] holding samples: (time of the bin's maximum, the maximum); the
    earliest sample among equal maxima (one sort, no loop over bins)."""
    edges = np.linspace(t0, t1, bins + 1)
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, bins - 1)
    order = np.lexsort((t, -v, idx))  # by bin, largest value first, earliest first
    first = np.r_[True, idx[order][1:] != idx[order][:-1]]
    pick = order[first]
    return t[pick], v[pick]


#: z of the two-sided interval: Sen's interval of `theil_sen` (alpha 0.90 -> 1.6449).
_Z = {0.90: NormalDist().inv_cdf(0.05)}


def _tie_term(a: np.ndarray) -> float:
    """Sum of k(k-1)(2k+5) over the groups of k > 1 equal values (Sen 1968, eq. 2.6)."""
    s = np.sort(a)
    change = np.r_[True, s[1:] != s[:-1]]
    k = np.diff(np.r_[np.flatnonzero(change), len(s)]).astype(np.float64)
    k = k[k > 1]
    return float((k * (k - 1) * (2 * k + 5)).sum())


def theil_sen(t: np.ndarray, v: np.ndarray, alpha: float = 0.90) -> tuple[float, float, float]:
    """(slope, lower, upper): the median pairwise slope and Sen's interval; the same figures
    as scipy.stats.theilslopes (tests/models/test_memkill.py compares them), computed here
    with one broadcast instead of scipy's per-call argument handling (~20x faster on the
    24-bin envelopes this module reads)."""
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if len(t) < 3 or float(np.ptp(t)) <= 0:
        return 0.0, -math.inf, math.inf
    dt = t[:, None] - t
    pos = dt > 0
    slopes = np.sort((v[:, None] - v)[pos] / dt[pos])
    med = float(np.median(slopes))
    a = 1.0 - alpha if alpha > 0.5 else alpha
    z = _Z[alpha] if alpha in _Z else NormalDist().inv_cdf(a / 2)
    n, nt = len(v), len(slopes)
    sigsq = (n * (n - 1) * (2 * n + 5) - _tie_term(t) - _tie_term(v)) / 18.0
    if not sigsq >= 0:
        return med, math.nan, math.nan
    sigma = math.sqrt(sigsq)
    hi = min(int(np.round((nt - z * sigma) / 2.0)), nt - 1)
    lo = max(int(np.round((nt + z * sigma) / 2.0)) - 1, 0)
    return med, float(slopes[lo]), float(slopes[hi])


def _eta(gap: float, slope: float) -> float | None:
    return max(gap, 0.0) / slope if slope > 0 else None


def estimate(samples: Iterable[Sequence[float]], limit: float | None, now: float, *,
             window_s: float = WINDOW_S, stale_s: float = STALE_S,
             horizon_s: float = HORIZON_S, bins: int = 24, metric: str | None = None,
             min_span_s: float = MIN_SPAN_S, recent_s: float = RECENT_S) -> dict[str, Any]:
    """The memory-kill estimate of one series against `limit` (same unit); see the module
    docstring. Always returns a dict with `status` and `alarm`; never raises on bad input."""
    t, v, dropped = clean(samples, now)
    out: dict[str, Any] = {"status": "", "alarm": False, "metric": metric, "limit": limit,
                           "samples": len(t), "dropped": dropped, "window_s": window_s,
                           "level": None, "fraction": None, "slope_per_s": None,
                           "slope_interval": None, "eta_s": None, "eta_interval_s": None}
    if not len(t):
        out["status"] = "no_samples"
        return out
    last_t = float(t[-1])
    out["last_sample_age_s"] = round(now - last_t, 1)
    out["level"] = float(v[-1])
    if not limit or limit <= 0 or not math.isfinite(limit):
        out["status"] = "no_limit"
        return out
    if now - last_t > stale_s:
        out["status"] = "stale"
        out["fraction"] = float(v[-1] / limit)
        return out
    t0 = max(float(t[0]), last_t - window_s)
    m = t >= t0
    tw, vw = t[m], v[m]
    span = last_t - t0
    bt, bv = envelope(tw, vw, t0, last_t + 1e-9, bins) if span > 0 else (tw, vw)
    level = float(bv[-1])
    out.update(level=level, fraction=round(level / limit, 4), envelope_points=len(bt))
    if len(bt) < MIN_POINTS:
        out["status"] = "too_few"
        return out
    slope, lo, hi = theil_sen(bt, bv)
    half = bt >= t0 + span / 2
    r_slope, r_lo, r_hi = theil_sen(bt[half], bv[half]) if half.sum() >= 3 else (slope, lo, hi)
    # the job grows when both the window and its recent half rise; the smaller slope is used
    use, use_lo, _use_hi = (slope, lo, hi) if slope <= r_slope else (r_slope, r_lo, r_hi)
    out["slope_per_s"] = round(use, 6)
    out["slope_interval"] = [round(use_lo, 6), round(max(r_hi, hi), 6)]
    growing = lo > 0 and r_lo > 0
    gap = limit - level
    old = tw < last_t - max(recent_s, span / 4)
    if growing and old.any() and vw[~old].max() <= vw[old].max() + NEW_HIGH * limit:
        growing = False  # no new high lately: it has levelled off
    if not growing:
        out["status"] = "falling" if r_slope < 0 and r_hi < 0 else "plateau"
        return out
    out["status"] = "growing"
    eta = _eta(gap, use)
    early = _eta(gap, max(hi, r_hi))
    late = _eta(gap, min(lo, r_lo))
    out["eta_s"] = None if eta is None else round(eta, 1)
    out["eta_interval_s"] = [None if early is None else round(early, 1),
                             None if late is None else round(late, 1)]
    out["growth_seen_s"] = round(span, 1)
    out["alarm"] = bool(span >= min_span_s and (
        (eta is not None and eta <= horizon_s) or level >= AT_LIMIT * limit))
    return out


def pick_series(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str, str], list]:
    """Telemetry rows (store.job_samples) -> {(metric, node, device): [(t, value), ...]} for
    the best memory metric present (METRICS order); counters of tasks are not summed."""
    by: dict[tuple[str, str, str], list] = {}
    present = {r["metric"] for r in rows}
    metric = next((m for m in METRICS if m in present), None)
    if metric is None:
        return by
    for r in rows:
        if r["metric"] == metric:
            val = r["vmax"] if r.get("vmax") is not None else r["value"]
            by.setdefault((metric, r.get("node") or "", r.get("device") or ""), []).append(
                (r["t"], val))
    return by


def job_estimate(rows: Sequence[dict[str, Any]], req_mem_mb: float | None, now: float,
                 **kw: Any) -> dict[str, Any]:
    """The most urgent estimate over a job's memory series (each step / node on its own, as
    the limit applies to each). The limit is `req_mem_mb` in bytes (100 for a percent metric).
    """
    series = pick_series(rows)
    if not series:
        return {"status": "no_samples", "alarm": False, "samples": 0, "limit": None,
                "metric": None, "eta_s": None,
                "note": "no memory samples for this job (sstat, Prometheus or another reader)"}
    best: dict[str, Any] | None = None
    for (metric, node, device), pts in series.items():
        limit = 100.0 if metric.endswith("_pct") else (
            float(req_mem_mb) * 1024 * 1024 if req_mem_mb else None)
        est = estimate(pts, limit, now, metric=metric, **kw)
        est.update(node=node or None, step=device or None)
        if best is None or _urgency(est) > _urgency(best):
            best = est
    assert best is not None
    best["series"] = len(series)
    return best


def _urgency(e: dict[str, Any]) -> tuple:
    eta = e.get("eta_s")
    return (e.get("alarm", False), e.get("status") == "growing",
            -(eta if eta is not None else math.inf), e.get("fraction") or 0.0)
