"""stats_utils.binom_sf and the other special functions of analyzers/special.py (numpy only, so
that analyze never imports scipy: issue 16) against scipy and against the exact values.

binom_sf is not scipy's bits: boost's answer is itself off by up to ~1e-13 relative on large n
(and by whole units of the last place often), while special.py keeps the deviances and the
continued fraction in extended precision and lands on the double nearest the exact value
(mpmath) nearly always (within an ulp). So: a tight tolerance against scipy over the old grid, the edges
exactly (x < 0, x >= n, n = 0, p = 0 or 1), and the exact values within an ulp over
ordinary and extreme tails (down to 1e-300): 3e-16 relative."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from jobmedic.analyzers import special as sp
from jobmedic.analyzers.stats_utils import binom_sf


def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a == b, 0.0, np.abs(a - b) / np.abs(b))


def test_binom_sf_matches_scipy_stats_binom_sf() -> None:
    rnd = np.random.default_rng(16)
    n = rnd.integers(0, 3000, 50_000).astype(float)
    p = rnd.uniform(0, 1, 50_000) ** 4
    p[:50], p[50:100] = 0.0, 1.0
    x = np.floor(rnd.uniform(-0.2, 1.2, 50_000) * n) - 1
    ours, ref = binom_sf(x, n, p), stats.binom.sf(x, n, p)
    normal = ref > 1e-250  # below that boost loses digits (and underflows to 0 near 1e-308)
    assert _rel(ours[normal], ref[normal]).max() < 1e-12
    assert np.all(np.abs(ours[~normal] - ref[~normal]) < 1e-250)
    edges = (x < 0) | (x >= n) | (p == 0) | (p == 1)
    assert np.array_equal(ours[edges], ref[edges])  # 1, 0 and the degenerate p exactly
    assert np.array_equal(binom_sf(np.array([-1.0, 0, 3, 2]), np.array([0.0, 5, 2, 2]), 0.3),
                          stats.binom.sf(np.array([-1.0, 0, 3, 2]), np.array([0.0, 5, 2, 2]), 0.3))


def test_binom_sf_large_n_matches_scipy() -> None:
    """Hotspot-sized tests: n up to a million jobs, x around the mean +- 6 sd."""
    rnd = np.random.default_rng(7)
    n = rnd.integers(1, 1_000_000, 5_000).astype(float)
    p = rnd.uniform(1e-4, 0.5, 5_000)
    x = np.floor(n * p + rnd.normal(0, 3, 5_000) * np.sqrt(n * p * (1 - p)))
    ref = stats.binom.sf(x, n, p)
    normal = ref > 1e-250
    assert _rel(binom_sf(x, n, p)[normal], ref[normal]).max() < 1e-11  # boost's error, mostly


def _exact_sf(mp: object, x: int, n: int, p: float) -> object:
    """P(X > x) at 50 digits: the pmf terms summed from x + 1 up (or 1 minus those from x
    down, whichever side is the tail), each from the last by the ratio recursion."""
    P = mp.mpf(p)
    Q = 1 - P

    def pmf(j: int) -> object:
        return mp.exp(mp.loggamma(n + 1) - mp.loggamma(j + 1) - mp.loggamma(n - j + 1)
                      + j * mp.log(P) + (n - j) * mp.log(Q))

    up = x + 1 > n * p
    j = x + 1 if up else x
    term = pmf(j)
    total = mp.mpf(0)
    while 0 <= j <= n and term != 0:
        total += term
        if term < total * mp.mpf(10) ** -45:
            break
        term = term * ((n - j) / mp.mpf(j + 1) * P / Q if up else j / mp.mpf(n - j + 1) * Q / P)
        j += 1 if up else -1
    return total if up else 1 - total


def test_binom_sf_is_exact_in_ordinary_and_extreme_tails() -> None:
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    cases = [(1, 3, 0.1667735728030789), (2, 5, 0.15715202052597818), (0, 1, 0.3),
             (0, 10, 0.01), (9, 10, 0.5), (24, 50, 1e-12), (25, 50, 1e-12), (23, 100, 1e-12),
             (82, 100, 0.01), (90, 100, 0.001), (26, 1000, 1e-12), (308, 1000, 0.1),
             (462, 1000, 0.3), (513, 10_000, 0.01), (1090, 10_000, 0.05), (40, 20_000, 0.001),
             (4999, 100_000, 0.05), (5200, 100_000, 0.05), (51_000, 1_000_000, 0.05),
             (0, 1_000_000, 1e-7), (999_990, 1_000_000, 0.99999)]
    for x, n, p in cases:
        exact = _exact_sf(mp, x, n, p)
        got = float(binom_sf(x, n, p))
        assert got > 0 and math.isfinite(got)
        assert abs(got - float(exact)) <= 3e-16 * float(exact), (x, n, p, got, exact)


def test_betaincinv_and_norm_ppf_match_scipy() -> None:
    rnd = np.random.default_rng(3)
    a = np.r_[rnd.uniform(1e-3, 2_000, 2_000), 1e-6, 0.5, 1.0, 3.0]
    b = np.r_[rnd.uniform(0.5, 200_000, 2_000), 1e6, 0.5, 1.0, 1e-3]
    for q in (0.05, 0.5, 0.95):
        ours, ref = sp.betaincinv(a, b, q), special.betaincinv(a, b, q)
        tiny = ref < 1e-280  # the quantile of a near-zero shape parameter: underflow either way
        assert _rel(ours[~tiny], ref[~tiny]).max() < 1e-10
        assert np.all(ours[tiny] < 1e-280)
    for y in (1e-300, 1e-20, 1e-5, 0.025, 0.2, 0.5, 0.8, 0.975, 0.999999):
        assert abs(sp.norm_ppf(y) - float(special.ndtri(y))) <= 4e-16 * max(1.0, abs(sp.norm_ppf(y)))
    assert abs(sp.norm_ppf(0.975) - 1.959963984540054) <= 2.3e-16  # the Wilson z (1 ulp)
    for x in (0.0, 1e-12, 0.5, 3.84, 10.0, 50.0, 700.0):
        assert abs(sp.chi2_sf_1(x) - float(special.chdtrc(1, x))) <= 1e-13 * float(special.chdtrc(1, x))
    assert sp.chi2_sf_1(-1e-15) == 1.0
