"""Empirical-Bayes shrinkage for ranking flagged subjects: a significance test decides *whether*
to flag; the shrunken rate decides the *order*.

Binomial (failures of jobs): a beta prior is fitted to all subjects of a dimension by the
method of moments (exposure-weighted rates, the binomial noise taken out of their spread); a
subject's posterior is Beta(a + k, b + n - k). Poisson (failures over node-days or GPU-days):
a gamma prior fitted the same way; the posterior is Gamma(shape + k, rate + exposure).

Other fits of the same priors: by marginal likelihood (`*_ml`), with a mean that depends on
exposure (`*_exposure`), and from the spread that persists between the two halves of the window
(`*_split`: the covariance of the subjects' rates in the halves, so transient bursts do not
count as lasting differences). Ranked by the posterior mean or its 5 % quantile (`low`: a
subject needs both a high rate and the evidence for it). The hotspots' default, the split prior
and the mean, was chosen on development splits of three real traces in
bench/eval_hotspot_ranking.py (docs/analyzers.md).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

LOWER_Q = 0.05
MAX_STRENGTH = 1e6


def beta_prior(k: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """(a, b) of the beta prior of subjects with k failures of n (k may be fractional)."""
    import numpy as np
    k, n = np.asarray(k, float), np.asarray(n, float)
    keep = n > 0
    k, n = k[keep], n[keep]
    if len(n) == 0 or n.sum() <= 0:
        return 1.0, 1.0
    p = float(np.clip(k.sum() / n.sum(), 1e-6, 1 - 1e-6))
    if len(n) < 3:
        return p * 2.0, (1 - p) * 2.0
    r = k / n
    s2 = float((n * (r - p) ** 2).sum() / n.sum())
    noise = p * (1 - p) * len(n) / n.sum()
    between = s2 - noise
    strength = MAX_STRENGTH if between <= 0 else min(max(p * (1 - p) / between - 1, 1.0), MAX_STRENGTH)
    return p * strength, (1 - p) * strength


def gamma_prior(k: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """(shape, rate) of the gamma prior of subjects with k events over exposure e."""
    import numpy as np
    k, e = np.asarray(k, float), np.asarray(e, float)
    keep = e > 0
    k, e = k[keep], e[keep]
    if len(e) == 0 or k.sum() <= 0:
        return 1.0, max(float(e.sum()), 1.0)
    lam = float(k.sum() / e.sum())
    if len(e) < 3:
        return 1.0, 1.0 / lam
    s2 = float((e * (k / e - lam) ** 2).sum() / e.sum())
    noise = lam * len(e) / e.sum()
    between = s2 - noise
    if between <= 0:
        return MAX_STRENGTH, MAX_STRENGTH / lam
    shape = min(max(lam * lam / between, 1e-3), MAX_STRENGTH)
    return shape, shape / lam


def beta_prior_ml(k: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """(a, b) of the beta prior by marginal likelihood: the beta-binomial's likelihood of all
    subjects' (k, n) maximised over the prior's mean and strength (started from the moments'
    fit). Unlike the moments, it weighs each subject by what its count says given its
    exposure, so a few low-exposure subjects with extreme rates do not set the spread."""
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import betaln

    k, n = np.asarray(k, float), np.asarray(n, float)
    keep = n > 0
    k, n = k[keep], np.maximum(n[keep], k[keep])
    a0, b0 = beta_prior(k, n)
    if len(n) < 3 or k.sum() <= 0 or k.sum() >= n.sum():
        return a0, b0

    def nll(x: np.ndarray) -> float:
        m, s = 1 / (1 + np.exp(-x[0])), np.exp(x[1])
        a, b = m * s, (1 - m) * s
        return -float((betaln(a + k, b + n - k) - betaln(a, b)).sum())

    m0 = float(np.clip(a0 / (a0 + b0), 1e-6, 1 - 1e-6))
    x0 = np.array([np.log(m0 / (1 - m0)), np.log(min(a0 + b0, MAX_STRENGTH))])
    res = minimize(nll, x0, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-6})
    x = res.x if res.success and nll(res.x) <= nll(x0) else x0
    m, s = 1 / (1 + np.exp(-x[0])), float(np.clip(np.exp(x[1]), 1e-2, MAX_STRENGTH))
    return m * s, (1 - m) * s


def gamma_prior_ml(k: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """(shape, rate) of the gamma prior by marginal likelihood (the negative binomial's
    likelihood of all subjects' counts over their exposures), started from the moments' fit."""
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import gammaln

    k, e = np.asarray(k, float), np.asarray(e, float)
    keep = e > 0
    k, e = k[keep], e[keep]
    s0, r0 = gamma_prior(k, e)
    if len(e) < 3 or k.sum() <= 0:
        return s0, r0
    lam = float(k.sum() / e.sum())

    def nll(x: np.ndarray) -> float:  # shape alpha = exp(x); mean kept at the pooled rate
        a = np.exp(x[0])
        b = a / lam
        return -float((gammaln(a + k) - gammaln(a) + a * np.log(b) - (a + k) * np.log(b + e)).sum())

    x0 = np.array([np.log(min(s0, MAX_STRENGTH))])
    res = minimize(nll, x0, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-6})
    x = res.x if res.success and nll(res.x) <= nll(x0) else x0
    shape = float(np.clip(np.exp(x[0]), 1e-3, MAX_STRENGTH))
    return shape, shape / lam


def _exposure_z(n: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """log exposure standardised on the reference subjects' (0 when it does not vary)."""
    import numpy as np
    ln, lref = np.log(np.maximum(n, 1e-9)), np.log(np.maximum(ref, 1e-9))
    sd = float(lref.std())
    return (ln - float(lref.mean())) / sd if sd > 1e-6 else np.zeros_like(ln)


def beta_prior_exposure(k: np.ndarray, n: np.ndarray) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A beta prior whose mean depends on the subject's exposure: mean = expit(c0 + c1 * z),
    z the standardised log of its jobs, one strength for all; the three fitted by the
    beta-binomial's marginal likelihood. Where being busy goes with failing more (a failing
    machine gets more, shorter attempts: Google 2011's busiest tenth fail at twice the rate of
    the rest), a busy subject's prior is higher; where it does not, c1 comes out near 0 and
    this is the plain marginal-likelihood prior. Returns `prior(n) -> (a, b)` arrays."""
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import betaln, expit

    k, n = np.asarray(k, float), np.asarray(n, float)
    keep = n > 0
    k, n = k[keep], np.maximum(n[keep], k[keep])
    a0, b0 = beta_prior_ml(k, n)
    ref = n.copy()
    if len(n) < 5 or k.sum() <= 0 or k.sum() >= n.sum():
        return lambda m: (np.full(np.shape(m), a0), np.full(np.shape(m), b0))
    z = _exposure_z(n, ref)

    def nll(x: np.ndarray) -> float:
        mu, s = expit(x[0] + x[1] * z), np.exp(x[2])
        return -float((betaln(mu * s + k, (1 - mu) * s + n - k) - betaln(mu * s, (1 - mu) * s)).sum())

    m0 = float(np.clip(a0 / (a0 + b0), 1e-6, 1 - 1e-6))
    x0 = np.array([np.log(m0 / (1 - m0)), 0.0, np.log(min(a0 + b0, MAX_STRENGTH))])
    res = minimize(nll, x0, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-6})
    x = res.x if np.isfinite(res.fun) and res.fun <= nll(x0) else x0
    s = float(np.clip(np.exp(x[2]), 1e-2, MAX_STRENGTH))

    def prior(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = expit(x[0] + x[1] * _exposure_z(np.asarray(m, float), ref))
        return mu * s, (1 - mu) * s
    return prior


def gamma_prior_exposure(k: np.ndarray, e: np.ndarray) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The Poisson counterpart: gamma prior with mean exp(c0 + c1 * z) (z the standardised log
    exposure) and one shape, fitted by the negative binomial's marginal likelihood. Returns
    `prior(e) -> (shape, rate)` arrays."""
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import gammaln

    k, e = np.asarray(k, float), np.asarray(e, float)
    keep = e > 0
    k, e = k[keep], e[keep]
    s0, r0 = gamma_prior_ml(k, e)
    ref = e.copy()
    if len(e) < 5 or k.sum() <= 0:
        return lambda m: (np.full(np.shape(m), s0), np.full(np.shape(m), r0))
    z = _exposure_z(e, ref)

    def nll(x: np.ndarray) -> float:
        lam, a = np.exp(x[0] + x[1] * z), np.exp(x[2])
        b = a / lam
        return -float((gammaln(a + k) - gammaln(a) + a * np.log(b) - (a + k) * np.log(b + e)).sum())

    x0 = np.array([np.log(s0 / r0), 0.0, np.log(min(s0, MAX_STRENGTH))])
    res = minimize(nll, x0, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-6})
    x = res.x if np.isfinite(res.fun) and res.fun <= nll(x0) else x0
    shape = float(np.clip(np.exp(x[2]), 1e-3, MAX_STRENGTH))

    def prior(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lam = np.exp(x[0] + x[1] * _exposure_z(np.asarray(m, float), ref))
        return np.full(np.shape(lam), shape), shape / lam
    return prior


def beta_prior_split(k1: np.ndarray, n1: np.ndarray, k2: np.ndarray, n2: np.ndarray
                     ) -> tuple[float, float]:
    """(a, b) of a beta prior whose spread is the *persistent* part of the subjects' spread:
    the exposure-weighted covariance of their rates in the two halves of the window (binomial
    noise is independent between halves, so it drops out; a burst confined to one half does
    too). Mean: the pooled rate. No persistent spread: a very strong prior (the order then
    follows the excess failures k - p n)."""
    import numpy as np
    k1, n1, k2, n2 = (np.asarray(x, float) for x in (k1, n1, k2, n2))
    keep = (n1 > 0) & (n2 > 0)
    k, n = k1 + k2, n1 + n2
    if keep.sum() < 3 or n.sum() <= 0:
        return beta_prior(k, n)
    p = float(np.clip(k.sum() / n.sum(), 1e-6, 1 - 1e-6))
    w = np.sqrt(n1[keep] * n2[keep])
    cov = float((w * (k1[keep] / n1[keep] - p) * (k2[keep] / n2[keep] - p)).sum() / w.sum())
    if cov <= 0:
        return p * MAX_STRENGTH, (1 - p) * MAX_STRENGTH
    strength = min(max(p * (1 - p) / cov - 1, 1.0), MAX_STRENGTH)
    return p * strength, (1 - p) * strength


def gamma_prior_split(k1: np.ndarray, e1: np.ndarray, k2: np.ndarray, e2: np.ndarray
                      ) -> tuple[float, float]:
    """The Poisson counterpart of `beta_prior_split`: (shape, rate) from the covariance of the
    subjects' event rates in the two halves."""
    import numpy as np
    k1, e1, k2, e2 = (np.asarray(x, float) for x in (k1, e1, k2, e2))
    keep = (e1 > 0) & (e2 > 0)
    k, e = k1 + k2, e1 + e2
    if keep.sum() < 3 or k.sum() <= 0:
        return gamma_prior(k, e)
    lam = float(k.sum() / e.sum())
    w = np.sqrt(e1[keep] * e2[keep])
    cov = float((w * (k1[keep] / e1[keep] - lam) * (k2[keep] / e2[keep] - lam)).sum() / w.sum())
    if cov <= 0:
        return MAX_STRENGTH, MAX_STRENGTH / lam
    shape = min(max(lam * lam / cov, 1e-3), MAX_STRENGTH)
    return shape, shape / lam


def beta_scores(k: np.ndarray, n: np.ndarray, prior: tuple[float, float] | None = None,
                only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(posterior mean, posterior 5 % quantile) of each subject's failure rate; `only` (a
    boolean mask): the quantile of those subjects alone (nan for the rest: it is the costly
    half, and the analyzer reports it for the flagged few)."""
    import numpy as np

    from jobmedic.analyzers.special import betaincinv  # numpy only: scipy's import is slow

    k, n = np.asarray(k, float), np.asarray(n, float)
    a0, b0 = prior if prior is not None else beta_prior(k, n)
    a, b = np.broadcast_arrays(a0 + k, b0 + np.maximum(n - k, 0.0))
    if only is None:
        return a / (a + b), betaincinv(a, b, LOWER_Q)
    low = np.full(a.shape, np.nan)
    only = np.asarray(only, bool)
    if only.any():
        low[only] = betaincinv(a[only], b[only], LOWER_Q)
    return a / (a + b), low


def gamma_scores(k: np.ndarray, e: np.ndarray, prior: tuple[float, float] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(posterior mean, posterior 5 % quantile) of each subject's event rate per exposure."""
    import numpy as np
    from scipy.special import gammaincinv

    k, e = np.asarray(k, float), np.asarray(e, float)
    s0, r0 = prior if prior is not None else gamma_prior(k, e)
    shape, rate = s0 + k, r0 + e
    return shape / rate, gammaincinv(shape, LOWER_Q) / rate


def poisson_vs_rest(k: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-sided exact test of each subject's event count against everyone else's rate,
    conditional on the total (k ~ Binomial(k + k_rest, e / (e + e_rest))): (p, rest's rate)."""
    import numpy as np

    from jobmedic.analyzers.stats_utils import binom_sf

    k, e = np.asarray(k, float), np.asarray(e, float)
    K, E = k.sum(), e.sum()
    k_rest, e_rest = K - k, np.maximum(E - e, 1e-12)
    share = e / (e + e_rest)
    kk = np.rint(k).astype(int)
    p = binom_sf(kk - 1, np.rint(k + k_rest).astype(int), share)
    return np.where(kk > 0, p, 1.0), k_rest / e_rest


#: Prior strengths tried by `validated_strength`, as multiples of the median exposure (the
#: largest orders by excess failures k - p n, the smallest nearly by the raw rate).
STRENGTHS = tuple(10.0 ** (x / 2) for x in range(8, -5, -1))
#: `validated_strength`'s answer when the order by raw count validates best.
COUNT = -1.0


def top_rate(score: np.ndarray, k: np.ndarray, n: np.ndarray, K: int) -> float:
    """Pooled rate k / n of the top K subjects by `score`; subjects with equal scores are one
    group, and a group cut at K contributes its share (the mean over every order of the ties)."""
    import numpy as np
    o = np.argsort(-np.asarray(score, float), kind="stable")
    s, kk, nn = np.asarray(score, float)[o], np.asarray(k, float)[o], np.asarray(n, float)[o]
    gid = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1
    size = np.bincount(gid).astype(float)
    before = np.cumsum(size) - size
    share = np.clip((K - before) / size, 0.0, 1.0)
    f, e = float((share * np.bincount(gid, kk)).sum()), float((share * np.bincount(gid, nn)).sum())
    return f / e if e > 0 else 0.0


def validated_strength(k1: np.ndarray, n1: np.ndarray, k2: np.ndarray, n2: np.ndarray,
                       m: int, poisson: bool = False) -> float:
    """The prior strength whose order validates best inside the ranking window: every subject
    is scored on the window's first half (posterior mean, prior mean the pooled rate, strength
    s = c x the median exposure for c in STRENGTHS, or the raw count), and judged by the pooled
    second-half rate of its top K (K = m / 2, m and 2 m; m the number flagged; ties at their
    share). Returns the strength (pseudo-jobs or pseudo-exposure) of the best, or COUNT; ties
    go to the count first, then to the stronger prior, so a rate-like order must earn its
    place. Binomial by default; `poisson` for events over exposure."""
    import numpy as np
    k1, n1, k2, n2 = (np.asarray(x, float) for x in (k1, n1, k2, n2))
    keep = n1 > 0
    k1, n1, k2, n2 = k1[keep], n1[keep], k2[keep], n2[keep]
    if len(n1) < 3 or k1.sum() <= 0 or n2.sum() <= 0 or m < 1:
        return COUNT
    p = float(k1.sum() / n1.sum())
    if not poisson:
        p = min(p, 1 - 1e-6)
    med = float(np.median(n1))
    ks = sorted({max(1, -(-m // 2)), m, 2 * m} & set(range(1, len(n1) + 1))) or [len(n1)]

    def score(order_by: np.ndarray) -> float:
        return float(np.mean([top_rate(order_by, k2, n2, K) for K in ks]))

    best, best_score = COUNT, score(k1)
    for c in STRENGTHS:
        s = c * med
        mean = (k1 + p * s) / (n1 + s)
        v = score(mean)
        if v > best_score + 1e-12:
            best, best_score = s, v
    return best
