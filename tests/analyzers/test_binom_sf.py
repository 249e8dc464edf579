"""stats_utils.binom_sf (the exact tests' tail without importing scipy.stats) gives
scipy.stats.binom.sf's values bit for bit, edges included (x < 0, x >= n, n = 0, p = 0 or 1)."""
from __future__ import annotations

import numpy as np
from scipy import stats

from jobmedic.analyzers.stats_utils import binom_sf


def test_binom_sf_is_scipy_stats_binom_sf() -> None:
    rnd = np.random.default_rng(16)
    n = rnd.integers(0, 3000, 50_000).astype(float)
    p = rnd.uniform(0, 1, 50_000) ** 4
    p[:50], p[50:100] = 0.0, 1.0
    x = np.floor(rnd.uniform(-0.2, 1.2, 50_000) * n) - 1
    assert np.array_equal(binom_sf(x, n, p), stats.binom.sf(x, n, p))
    assert np.array_equal(binom_sf(np.array([-1.0, 0, 3, 2]), np.array([0.0, 5, 2, 2]), 0.3),
                          stats.binom.sf(np.array([-1.0, 0, 3, 2]), np.array([0.0, 5, 2, 2]), 0.3))
