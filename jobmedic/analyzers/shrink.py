"""Empirical-Bayes shrinkage for ranking flagged subjects: a significance test decides *whether*
to flag; the shrunken rate decides the *order*.

Binomial (failures of jobs): a beta prior is fitted to all subjects of a dimension by the
method of moments (exposure-weighted rates, the binomial noise taken out of their spread); a
subject's posterior is Beta(a + k, b + n - k). Poisson (failures over node-days or GPU-days):
a gamma prior fitted the same way; the posterior is Gamma(shape + k, rate + exposure).

Ranked by the posterior's 5 % quantile (`low`, the default: a subject needs both a high rate
and the evidence for it) or its mean. A subject with one failure in two jobs no longer outranks
one with 40 in 100; a busy subject's many failures no longer outrank a quiet one's higher rate
when the evidence for that rate is there. Chosen and measured on real traces in
bench/eval_hotspot_ranking.py (docs/analyzers.md).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


def beta_scores(k: np.ndarray, n: np.ndarray, prior: tuple[float, float] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(posterior mean, posterior 5 % quantile) of each subject's failure rate."""
    import numpy as np
    from scipy.special import betaincinv  # on use: scipy's import is slow

    k, n = np.asarray(k, float), np.asarray(n, float)
    a0, b0 = prior or beta_prior(k, n)
    a, b = a0 + k, b0 + np.maximum(n - k, 0.0)
    return a / (a + b), betaincinv(a, b, LOWER_Q)


def gamma_scores(k: np.ndarray, e: np.ndarray, prior: tuple[float, float] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(posterior mean, posterior 5 % quantile) of each subject's event rate per exposure."""
    import numpy as np
    from scipy.special import gammaincinv

    k, e = np.asarray(k, float), np.asarray(e, float)
    s0, r0 = prior or gamma_prior(k, e)
    shape, rate = s0 + k, r0 + e
    return shape / rate, gammaincinv(shape, LOWER_Q) / rate


def poisson_vs_rest(k: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-sided exact test of each subject's event count against everyone else's rate,
    conditional on the total (k ~ Binomial(k + k_rest, e / (e + e_rest))): (p, rest's rate)."""
    import numpy as np
    from scipy import stats

    k, e = np.asarray(k, float), np.asarray(e, float)
    K, E = k.sum(), e.sum()
    k_rest, e_rest = K - k, np.maximum(E - e, 1e-12)
    share = e / (e + e_rest)
    kk = np.rint(k).astype(int)
    p = stats.binom.sf(kk - 1, np.rint(k + k_rest).astype(int), share)
    return np.where(kk > 0, p, 1.0), k_rest / e_rest
