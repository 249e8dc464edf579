"""The RICC validation sweeps' shared split (bench/eval_common.validation_rows) and the
alloc sweep's scoring (bench/eval_ricc_alloc.effect, through runtime.recommendation_effect)."""
from __future__ import annotations

import numpy as np
import pytest

from bench.eval_common import validation_rows
from bench.eval_ricc_alloc import effect


def test_validation_rows_never_reach_the_test_slice():
    rng = np.random.default_rng(3)
    n = 2000
    sub = np.sort(rng.uniform(0, 1e6, n))
    sub[100:110] = sub[100]  # ties in submit order stay in row order
    end = sub + rng.exponential(2e4, n)
    mask = rng.random(n) > 0.1  # the labelled (completed) jobs
    fit, cal, ev = validation_rows(mask, sub, end)
    until = np.sort(sub[mask])[int(mask.sum() * 0.7)]  # the test cut
    assert sub[ev].max() < until and sub[fit].max() < until and sub[cal].max() < until
    assert mask[np.concatenate([fit, cal, ev])].all()
    # fit and calibration: every labelled job submitted and ended before the validation cut,
    # in submit order, the first 80 % to fit
    cut = sub[ev].min()
    lab = np.flatnonzero(mask & (sub < cut) & (end < cut))
    assert sorted(np.concatenate([fit, cal]).tolist()) == lab.tolist()
    assert len(fit) == int(len(lab) * 0.8)
    assert sub[fit].max() <= sub[cal].min() and np.all(np.diff(sub[cal]) >= 0)
    assert (end[np.concatenate([fit, cal])] < cut).all()
    # validation: every labelled job submitted from the cut to the test cut
    assert ev.tolist() == np.flatnonzero(mask & (sub >= cut) & (sub < until)).tolist()
    assert not set(ev) & set(fit.tolist() + cal.tolist())


def test_effect_counts_kills_savings_and_retries():
    y = np.array([100.0, 500.0, 100.0, 100.0])
    rec = np.array([200.0, 300.0, 100.0, 50.0])  # the second and the fourth are killed
    tl = np.array([400.0, 1000.0, np.nan, 200.0])  # the third has no limit: no saving counted
    cpus = np.array([1.0, 2.0, 4.0, np.nan])  # no CPU count: one CPU
    got = effect(y, tl, cpus, rec)
    req = 400 + 2000 + 200  # requested core-seconds of the jobs with a limit
    assert got["killed_%"] == 50.0
    assert got["saved_%"] == pytest.approx(round(100 * (1 - (200 + 600 + 50) / req), 2))
    # a killed run reruns at the user's limit
    assert got["saved_net_%"] == pytest.approx(round(100 * (1 - (200 + 2 * 1300 + 250) / req), 2))
