"""Small, vectorised statistics the analyzers share: Wilson intervals, one-sided exact binomial
tests of an entity against the rest, Benjamini-Hochberg q values, and binomial change points.

Exact tests rather than normal approximations because the interesting entities (a node, an
image) often have a handful of jobs; vectorised because a cluster has thousands of nodes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def wilson(k: np.ndarray | float, n: np.ndarray | float, conf: float = 0.95
           ) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes out of n (k may be fractional); (0, 1) for n = 0."""
    import numpy as np
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    from jobmedic.analyzers.special import norm_ppf  # numpy only: scipy's import is slow

    z = norm_ppf(0.5 + conf / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / n, 0.0)
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        lo = np.where(n > 0, np.clip(centre - half, 0, 1), 0.0)
        hi = np.where(n > 0, np.clip(centre + half, 0, 1), 1.0)
    return lo, hi


def binom_excess_p(k: np.ndarray, n: np.ndarray, p0: np.ndarray) -> np.ndarray:
    """One-sided exact binomial p value P(X >= k | n, p0): is the entity's rate above p0?

    Fractional k (failures of multi-node jobs shared 1/n per node) is rounded to the nearest
    whole failure, the conservative reading of shared blame.
    """
    import numpy as np
    k = np.rint(np.asarray(k, dtype=float))
    n = np.asarray(n, dtype=float)
    p0 = np.clip(np.asarray(p0, dtype=float), 1e-12, 1 - 1e-12)
    p = binom_sf(k - 1, n, p0)
    return np.where(k <= 0, 1.0, np.clip(p, 0.0, 1.0))


def binom_sf(x: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """P(X > x) for X ~ Binomial(n, p), the same answers at x < 0 and x >= n as
    scipy.stats.binom.sf, without importing scipy (~0.3 s of CPU in every analyze process,
    issue 16): analyzers/special.py's incomplete beta, within 1e-15 of the exact value (scipy's
    boost within ~1e-13). Integer-valued x and n >= 0, 0 <= p <= 1."""
    from jobmedic.analyzers.special import binom_sf as sf

    return sf(x, n, p)


def vs_rest(k: np.ndarray, n: np.ndarray, k_total: float, n_total: float) -> tuple[np.ndarray, np.ndarray]:
    """Each entity's one-sided exact p value against the rate of everything else, and that rate."""
    import numpy as np
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    n_rest = np.maximum(n_total - n, 1.0)
    rest = np.clip((k_total - k) / n_rest, 0.0, 1.0)
    # With no failures elsewhere the rest rate is 0 and any failure looks infinitely unlikely;
    # use half a failure elsewhere instead (a continuity floor) so tiny clusters stay sane.
    rest = np.maximum(rest, 0.5 / n_rest)
    return binom_excess_p(k, n, rest), rest


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p values (q values), in the input order."""
    import numpy as np
    p = np.asarray(p, dtype=float)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.clip(q, 0, 1)
    return out


@dataclass(frozen=True)
class ChangePoint:
    """A shift in a binomial rate: the first index of the new segment and the two rates."""

    index: int
    rate_before: float
    rate_after: float
    failures_before: int
    jobs_before: int
    failures_after: int
    jobs_after: int
    llr: float
    p_value: float


def _loglik(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Maximised binomial log-likelihood of k failures in n jobs (vectorised, 0 log 0 = 0)."""
    import numpy as np
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / n, 0.0)
        a = np.where(k > 0, k * np.log(np.where(p > 0, p, 1.0)), 0.0)
        b = np.where(n - k > 0, (n - k) * np.log(np.where(p < 1, 1 - p, 1.0)), 0.0)
    return a + b


def change_points(k: np.ndarray, n: np.ndarray, alpha: float = 0.01, min_seg: int = 2,
                  min_jobs: int = 20, max_points: int = 3) -> list[ChangePoint]:
    """Binary segmentation on daily (failures, jobs) with a binomial likelihood-ratio test.

    A split is kept when twice the log-likelihood gain exceeds the chi-square(1) quantile at
    alpha / (number of candidate splits) (a Bonferroni guard for scanning every day), and each
    side has at least `min_seg` bins and `min_jobs` jobs.
    """
    import numpy as np
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    found: list[ChangePoint] = []
    segments = [(0, len(k))]
    while segments and len(found) < max_points:
        lo, hi = segments.pop(0)
        if hi - lo < 2 * min_seg:
            continue
        ck, cn = np.cumsum(k[lo:hi]), np.cumsum(n[lo:hi])
        K, N = ck[-1], cn[-1]
        idx = np.arange(min_seg, hi - lo - min_seg + 1)  # split before position idx
        kb, nb = ck[idx - 1], cn[idx - 1]
        ka, na = K - kb, N - nb
        ok = (nb >= min_jobs) & (na >= min_jobs)
        if not ok.any():
            continue
        llr = 2 * (_loglik(kb, nb) + _loglik(ka, na) - _loglik(K, N))
        llr = np.where(ok, llr, -np.inf)
        best = int(np.argmax(llr))
        m = int(ok.sum())
        from jobmedic.analyzers.special import chi2_sf_1  # erfc: no scipy import

        p = float(min(1.0, chi2_sf_1(float(llr[best])) * m))
        if not math.isfinite(llr[best]) or p > alpha:
            continue
        at = lo + int(idx[best])
        found.append(ChangePoint(at, float(kb[best] / nb[best]), float(ka[best] / na[best]),
                                 round(kb[best]), int(nb[best]), round(ka[best]),
                                 int(na[best]), float(llr[best]), p))
        segments += [(lo, at), (at, hi)]
    return sorted(found, key=lambda c: c.index)
