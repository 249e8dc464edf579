"""The few special functions the analyzers' default path needs, in numpy alone: importing
scipy.special costs ~0.3 s of CPU in every analyze process (issue 16), more than the analysis.

- `binom_sf`: the binomial upper tail P(X > x) as the regularized incomplete beta
  I_p(x + 1, n - x), from its continued fraction (modified Lentz) on the side where it converges,
  times the leading term computed without cancellation: Loader's saddle-point binomial density
  (Stirling-series error terms and the deviance `bd0`, as in R's dbinom), so tails down to the
  smallest doubles keep their relative precision. Within ~1e-14 of scipy.stats.binom.sf (boost)
  relative (tests/analyzers/test_binom_sf.py pins the grid and the extreme tails).
- `betaincinv`: the beta quantile, by safeguarded Newton steps on the same incomplete beta.
- `norm_ppf`: the normal quantile (statistics' AS241, refined by one Newton step on the tail).
- `chi2_sf_1`: the chi-square(1) upper tail, erfc(sqrt(x / 2)).

scipy stays the reference in the tests; shrink.py's optional priors (`ml`, `exposure`) still
import scipy.optimize on use."""
from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_LN_2PI = math.log(2 * math.pi)
_LN_SQRT_2PI = 0.5 * _LN_2PI
#: stirlerr(n) = log(n!) - log(sqrt(2 pi n) (n / e)^n) at n = 0, 0.5, ..., 15 (mpmath, 25 digits:
#: parsed to the extended precision)
_SFERR_HALVES = (
    "0.0", "0.1534264097200273452913839", "0.08106146679532725821967026",
    "0.0548141210519176538961387", "0.04134069595540929409382208", "0.03316287351993628748511051",
    "0.02767792568499833914878929", "0.02374616365629749597133028", "0.02079067210376509311152277",
    "0.01848845053267318523077936", "0.01664469118982119216319487", "0.01513497322191737887351384",
    "0.01387612882307074799874573", "0.01281046524292022692425066", "0.01189670994589177009505572",
    "0.01110455975820691732663076", "0.01041126526197209649747857",
    "0.009799416126158803298390373", "0.009255462182712732917728637",
    "0.008768700134139385462955047", "0.008330563433362871256469319",
    "0.007934114564314020547249562", "0.007573675487951840794972024",
    "0.007244554301320383179546197", "0.006942840107209529865664153",
    "0.006665247032707682442356181", "0.006408994188004207068439631",
    "0.006171712263039457647534605", "0.005951370112758847735624416",
    "0.005746216513010115682026102", "0.00555473355196280137103869",)
#: log(2 pi) to the extended precision's last place
_LN_2PI_LONG = "1.837877066409345483560659472811235279722794947275566825634"
_EPS = 2.220446049250313e-16
_LONG_EPS = 1.1e-19
_TINY = 1e-300
_SMALLEST = 2.2250738585072014e-308  # the smallest normal double
_MAX_ITER = 200_000


def norm_ppf(y: float) -> float:
    """The standard normal quantile of y (0 < y < 1)."""
    from statistics import NormalDist

    if not 0.0 < y < 1.0:
        return -math.inf if y == 0.0 else math.inf if y == 1.0 else math.nan
    x = NormalDist().inv_cdf(y)
    # one Newton step on the smaller tail Q(u) = erfc(u / sqrt 2) / 2 (no cancellation there)
    t, sign = (1.0 - y, 1.0) if y > 0.5 else (y, -1.0)
    u = abs(x)
    q = 0.5 * math.erfc(u / math.sqrt(2.0))
    phi = math.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)
    return sign * (u + (q - t) / phi)


def chi2_sf_1(x: float) -> float:
    """P(X > x) for X ~ chi-square with one degree of freedom."""
    if math.isnan(x):
        return math.nan
    return 1.0 if x <= 0 else math.erfc(math.sqrt(0.5 * x))


@functools.cache
def _sferr_halves() -> np.ndarray:
    import numpy as np
    return np.array([np.longdouble(v) for v in _SFERR_HALVES], np.longdouble)


def _stirlerr(n: np.ndarray) -> np.ndarray:
    """log(n!) - log(sqrt(2 pi n) (n / e)^n) for n >= 0 (the tabled halves up to 15, Stirling's
    series beyond)."""
    import numpy as np
    n = np.asarray(n, np.longdouble)
    out = np.empty_like(n)
    small = n <= 15.0
    if small.any():
        s = n[small]
        twice = 2.0 * s
        half = twice == np.floor(twice)
        v = np.empty_like(s)
        v[half] = np.take(_sferr_halves(), twice[half].astype(int))
        other = ~half
        if other.any():
            v[other] = [math.lgamma(z + 1.0) - (z + 0.5) * math.log(z) + z - _LN_SQRT_2PI
                        for z in s[other].astype(float).tolist()]
        out[small] = v
    big = ~small
    if big.any():
        s = n[big]
        nn = s * s
        s0, s1, s2, s3, s4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188
        v = np.where(s > 500, (s0 - s1 / nn) / s,
                     np.where(s > 80, (s0 - (s1 - s2 / nn) / nn) / s,
                              np.where(s > 35, (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / s,
                                       (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / s)))
        out[big] = v
    return out


def _bd0(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The deviance term x log(x / m) + m - x, without cancellation when x is near m (x, m > 0)."""
    import numpy as np
    x, m = np.broadcast_arrays(np.asarray(x, np.longdouble), np.asarray(m, np.longdouble))
    out = np.empty(x.shape, np.longdouble)
    near = np.abs(x - m) < 0.1 * (x + m)
    far = ~near
    if far.any():
        xf, mf = x[far], m[far]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[far] = np.where(xf > 0, xf * np.log(xf / mf), 0.0) + mf - xf
    if near.any():
        xs, ms = x[near], m[near]
        v = (xs - ms) / (xs + ms)
        s = (xs - ms) * v
        ej = 2.0 * xs * v
        v2 = v * v
        todo = np.abs(s) >= np.finfo(np.longdouble).tiny
        j = 1
        while todo.any() and j < 1000:
            ej = np.where(todo, ej * v2, ej)
            s1 = s + np.where(todo, ej / (2 * j + 1), 0.0)
            todo &= s1 != s
            s = s1
            j += 1
        out[near] = s
    return out


def _log_every(n: np.ndarray, hit: np.ndarray, miss: np.ndarray) -> np.ndarray:
    """log(hit ** n): the log density at an edge of the binomial, k = 0 (hit = q, miss = p)
    or k = n (hit = p, miss = q); by the deviance form where `miss` is small (Loader)."""
    import numpy as np
    small = miss < 0.1
    v = np.empty(n.shape, np.longdouble)
    if small.any():
        v[small] = -_bd0(n[small], n[small] * hit[small]) - n[small] * miss[small]
    v[~small] = n[~small] * np.log(hit[~small])
    return v


def _dbinom(k: np.ndarray, n: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The binomial density at k of n trials with success probability p (q = 1 - p), for real
    0 <= k <= n, by Loader's saddle-point expansion (relative precision in the far tails)."""
    import numpy as np
    k, n, p, q = np.broadcast_arrays(*(np.asarray(z, np.longdouble) for z in (k, n, p, q)))
    out = np.zeros(k.shape, np.longdouble)
    lc = np.full(k.shape, -np.inf, np.longdouble)
    lf = np.zeros(k.shape, np.longdouble)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        zero_p, zero_q = p == 0, q == 0
        out[zero_p] = (k[zero_p] == 0).astype(float)
        out[zero_q & ~zero_p] = (k[zero_q & ~zero_p] == n[zero_q & ~zero_p]).astype(float)
        rest = ~zero_p & ~zero_q
        at0 = rest & (k == 0)
        atn = rest & (k == n) & ~at0
        mid = rest & ~at0 & ~atn
        if at0.any():
            lc[at0] = np.where(n[at0] == 0, 0.0, _log_every(n[at0], q[at0], p[at0]))
        if atn.any():
            lc[atn] = _log_every(n[atn], p[atn], q[atn])
        if mid.any():
            kk, nn, pp, qq = k[mid], n[mid], p[mid], q[mid]
            lc[mid] = (_stirlerr(nn) - _stirlerr(kk) - _stirlerr(nn - kk)
                       - _bd0(kk, nn * pp) - _bd0(nn - kk, nn * qq))
            lf[mid] = np.longdouble(_LN_2PI_LONG) + np.log(kk) + np.log1p(-kk / nn)
        done = at0 | atn | mid
        out[done] = np.exp(lc[done] - 0.5 * lf[done])
    return out


def _front(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """x^a (1 - x)^b / (a B(a, b)): the continued fraction's leading factor. For a, b >= 1 it
    is the binomial density at a of a + b - 1 trials times (1 - x) (no cancellation); below
    that, from log-gamma."""
    import numpy as np
    a, b, x = np.broadcast_arrays(*(np.asarray(z, np.longdouble) for z in (a, b, x)))
    out = np.empty(a.shape, np.longdouble)
    loader = (a >= 1) & (b >= 1)
    if loader.any():
        aa, bb, xx = a[loader], b[loader], x[loader]
        out[loader] = _dbinom(aa, aa + bb - 1, xx, 1.0 - xx) * (1.0 - xx)
    other = ~loader
    if other.any():
        aa, bb, xx = a[other], b[other], x[other]
        lbeta = np.array([math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v)
                          for u, v in zip(aa.astype(float).tolist(), bb.astype(float).tolist())])
        with np.errstate(divide="ignore"):
            out[other] = np.exp(aa * np.log(xx) + bb * np.log1p(-xx) - lbeta) / aa
    return out


def _cf(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The incomplete beta's continued fraction (modified Lentz), for x < (a + 1) / (a + b + 2)
    where it converges; I_x(a, b) = _front(a, b, x) * _cf(a, b, x). Elementwise; the arrays
    are narrowed to the unconverged elements only when some converge."""
    import numpy as np
    a, b, x = a.ravel(), b.ravel(), x.ravel()
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones(a.shape, np.longdouble)
    d = 1.0 - qab * x / qap
    d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
    h = d.copy()
    out = h.copy()
    idx = np.arange(a.size)
    for m in range(1, _MAX_ITER):
        if idx.size == 0:
            break
        m2 = 2.0 * m
        num = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + num * d
        d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
        c = 1.0 + num / c
        c = np.where(np.abs(c) < _TINY, _TINY, c)
        h = h * d * c
        num = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + num * d
        d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
        c = 1.0 + num / c
        c = np.where(np.abs(c) < _TINY, _TINY, c)
        delta = d * c
        h = h * delta
        done = np.abs(delta - 1.0) <= _LONG_EPS
        if done.any():
            out[idx[done]] = h[done]
            keep = ~done
            idx, a, b, x, qab, qap, qam, c, d, h = (
                z[keep] for z in (idx, a, b, x, qab, qap, qam, c, d, h))
    out[idx] = h  # not converged within _MAX_ITER: the last approximant
    return out


def betainc(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The regularized incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1 (nan outside)."""
    import numpy as np
    a, b, x = np.broadcast_arrays(*(np.asarray(z, float) for z in (a, b, x)))
    out = np.full(a.shape, np.nan)
    ok = (a > 0) & (b > 0) & (x >= 0) & (x <= 1)
    out[ok & (x == 0)] = 0.0
    out[ok & (x == 1)] = 1.0
    inner = ok & (x > 0) & (x < 1)
    if not inner.any():
        return out
    # in extended precision (x86's 64-bit significand): the deviances and the fraction's
    # rounding stay below the double's last place, so the answer is (nearly always) the double
    # nearest the exact value
    aa, bb, xx = (z.astype(np.longdouble) for z in (a[inner], b[inner], x[inner]))
    direct = xx < (aa + 1.0) / (aa + bb + 2.0)
    v = np.empty(aa.shape, np.longdouble)
    if direct.any():
        u, w, z = aa[direct], bb[direct], xx[direct]
        v[direct] = _front(u, w, z) * _cf(u, w, z)
    flip = ~direct
    if flip.any():  # I_x(a, b) = 1 - I_{1-x}(b, a)
        u, w, z = bb[flip], aa[flip], 1.0 - xx[flip]
        v[flip] = 1.0 - _front(u, w, z) * _cf(u, w, z)
    out[inner] = v.astype(float)
    return out


def binom_sf(x: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """P(X > x) for X ~ Binomial(n, p): 1 for x < 0, 0 for x >= n, I_p(x + 1, n - x) between
    (x floored; integer n >= 0, 0 <= p <= 1; nan for p outside)."""
    import numpy as np
    x, n, p = np.broadcast_arrays(np.floor(np.asarray(x, dtype=float)),
                                  np.asarray(n, dtype=float), np.asarray(p, dtype=float))
    out = np.where(x < 0, 1.0, 0.0)
    inside = (x >= 0) & (x < n)
    if inside.any():
        out[inside] = betainc(x[inside] + 1.0, n[inside] - x[inside], p[inside])
    return out


def betaincinv(a: np.ndarray, b: np.ndarray, y: float) -> np.ndarray:
    """The x with I_x(a, b) = y (a, b > 0, 0 < y < 1): Newton steps on the incomplete beta,
    bracketed (a step that leaves the bracket bisects it), to a few units in the last place."""
    import numpy as np
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    shape = a.shape
    a, b = a.ravel().copy(), b.ravel().copy()
    out = np.full(a.shape, np.nan)
    ok = (a > 0) & (b > 0) & np.isfinite(a) & np.isfinite(b)
    if not 0.0 < y < 1.0 or not ok.any():
        if y == 0.0:
            out[ok] = 0.0
        elif y == 1.0:
            out[ok] = 1.0
        return out.reshape(shape)
    aa, bb = a[ok], b[ok]
    lo, hi = np.zeros(aa.shape), np.ones(aa.shape)
    mean = aa / (aa + bb)
    sd = np.sqrt(aa * bb / ((aa + bb) ** 2 * (aa + bb + 1.0)))
    x = np.clip(mean + norm_ppf(y) * sd, 1e-300, 1.0 - 1e-16)
    active = np.ones(aa.shape, bool)
    for _ in range(200):
        if not active.any():
            break
        i = np.flatnonzero(active)
        xi, ai, bi = x[i], aa[i], bb[i]
        f = betainc(ai, bi, xi) - y
        lo[i] = np.where(f < 0, xi, lo[i])
        hi[i] = np.where(f > 0, xi, hi[i])
        # the density x^(a-1) (1-x)^(b-1) / B(a, b) = a * _front(a, b, x) / (x (1 - x))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            dens = ai * _front(ai, bi, xi) / (xi * (1.0 - xi))
            nxt = xi - f / dens
        bad = ~np.isfinite(nxt) | (nxt <= lo[i]) | (nxt >= hi[i]) | (nxt < _SMALLEST)
        nxt = np.where(bad, 0.5 * (lo[i] + hi[i]), nxt)
        # a bracket down to the smallest normal double: bisect geometrically below 1e-8
        geo = bad & (hi[i] < 1e-8)
        nxt = np.where(geo, np.sqrt(np.maximum(lo[i], _SMALLEST)) * np.sqrt(hi[i]), nxt)
        step = np.abs(nxt - xi)
        x[i] = nxt
        conv = ((f == 0) | (step <= 4 * _EPS * np.abs(nxt)) | (hi[i] - lo[i] <= 4 * _EPS * hi[i])
                | (hi[i] <= _SMALLEST))  # below the normal doubles (scipy's answer there too)
        x[i] = np.where(hi[i] <= _SMALLEST, _SMALLEST, x[i])
        active[i[conv]] = False
    out[ok] = x
    return out.reshape(shape)
