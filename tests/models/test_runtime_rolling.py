"""Sliding-window conformal recalibration: the online shifts use only residuals of jobs that
ended before the query's period, `train --recalibrate` writes a new version with the same
booster, and the runtime card reports the online figures."""
from __future__ import annotations

import numpy as np
import pytest

from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.store import Store
from jobmedic.models import artifacts, registry, training
from jobmedic.models.batch import score
from jobmedic.models.predictor import predict_one
from jobmedic.models.runtime_rolling import MIN_N, online_shifts
from tests.models.helpers import build


def test_online_shifts_follow_the_window_and_never_look_ahead():
    # residuals level 0 for the first 3000 jobs, then 1.0: the shift moves once the window fills
    n = 6000
    resid = np.where(np.arange(n) < 3000, 0.0, 1.0)[:, None] + np.zeros((n, 1))
    ends = np.arange(n, dtype=float) * 10.0
    times = np.array([5.0, 29_995.0, 30_005.0 + 1000 * 10, 59_990.0])
    s, b = online_shifts(resid, ends, times, [0.5], [9.0], [0.02], window=1000, cadence=0)
    assert s[0, 0] == 9.0            # nothing had ended: the static shift
    assert s[1, 0] == 0.0            # only the first level had ended
    assert s[2, 0] == 1.0            # the window holds only the new level
    assert b[0.02][0] != b[0.02][0]  # NaN: no full window yet
    assert b[0.02][3] == 1.0
    # a residual that ends after the query never counts
    late = resid.copy()
    late[ends >= times[1]] = 100.0
    s2, _ = online_shifts(late, ends, times[:2], [0.5], [9.0], [0.02], window=1000, cadence=0)
    np.testing.assert_array_equal(s2, s[:2])
    # with a daily cadence the window stops at the start of the query's day
    day = online_shifts(resid, ends, np.array([86_400.0 + 5]), [0.5], [9.0], [], window=MIN_N,
                        cadence=86_400)[0]
    assert day[0, 0] == 1.0


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("roll"), kinds=("failure", "runtime", "memory"))


def test_recalibrate_writes_a_new_version_with_the_same_booster(built):
    db, models, _ = built
    s = Store(db)
    before, meta0 = registry.load(models, "runtime")
    card = training.recalibrate(s, "runtime", str(models))
    after, meta1 = registry.load(models, "runtime")
    assert meta1["version"] == card["version"] != meta0["version"]
    assert card["recalibrated"]["from_version"] == meta0["version"]
    assert card["recalibrated"]["n"] >= MIN_N
    assert after.shift_ != before.shift_            # refitted on the recent jobs ...
    assert before.shift_ == meta0["conformal_shift"]  # ... without touching the served version
    X = np.zeros((3, after.booster_.num_features()))
    np.testing.assert_array_equal(after._raw(X), before._raw(X))
    assert (artifacts.current_dir(models, "runtime") / "model.ubj").exists()
    with pytest.raises(ModelError, match="no conformal shift"):
        training.recalibrate(s, "failure", str(models))
    with pytest.raises(ModelError, match="recalibration needs"):
        training.recalibrate(s, "memory", str(models), until=1)


def test_card_and_predictions_use_the_recent_runtime_features(built):
    db, models, cards = built
    v = cards["runtime"]["validation"]
    assert {"mae", "coverage", "walltime_recommendation"} <= set(v["online_recalibrated"])
    s = Store(db)
    df = s.jobs_frame()
    i = len(df) - 5
    spec = {k: df.loc[i, k] for k in ("user", "project", "queue", "name", "req_cpus", "req_mem_mb",
                                      "timelimit_s")}
    now = int(df.loc[i, "submit_time"])
    one = predict_one(s, spec, now, str(models), {"moderate": 0.3, "high": 0.6, "critical": 0.8})
    specs = df.loc[[i], ["user", "project", "queue", "name", "req_cpus", "req_mem_mb"]].assign(
        req_walltime_s=df.loc[i, "timelimit_s"], submit_time=now)
    batch = score(s, specs, str(models), now, {"moderate": 0.3, "high": 0.6, "critical": 0.8},
                  history=df)
    assert batch["runtime_q0.5"].iloc[0] == pytest.approx(one["runtime_s"]["quantiles"]["q0.5"], abs=0.1)
    assert batch["recommended_time_s"].iloc[0] == one["runtime_s"]["recommended"]


def test_the_recommended_time_is_tiered_by_the_users_limit():
    from jobmedic.models.runtime import LONG_LIMIT_S, tiered

    short, long_ = np.array([100.0, 100.0, 100.0]), np.array([50.0, 50.0, 50.0])
    tl = np.array([LONG_LIMIT_S - 1, LONG_LIMIT_S, np.nan])
    # whole minutes plus one, the short tier below the boundary and without a limit
    np.testing.assert_array_equal(tiered(short, long_, tl), [180.0, 120.0, 180.0])
    # never above the user's own limit
    assert tiered(np.array([1e9]), np.array([1e9]), np.array([3600.0]))[0] == 3600.0


def test_the_point_runtime_blends_the_unshifted_median_with_the_users_share():
    from jobmedic.models.runtime_point import POINT_WEIGHT, blend

    raw = np.log1p(np.array([100.0, 100.0, 100.0]))
    got = blend(raw, np.array([np.nan, 0.0, 400.0]))
    assert got[0] == pytest.approx(100.0) and got[1] == pytest.approx(100.0)  # no share: the median
    want = np.expm1(POINT_WEIGHT * np.log1p(100.0) + (1 - POINT_WEIGHT) * np.log1p(400.0))
    assert got[2] == pytest.approx(want) and 100.0 < got[2] < 400.0


def test_served_recommendation_is_the_allocated_budget_request(built):
    from jobmedic.models.runtime_advice import ALLOC_BUDGETS, allocate

    _db, models, cards = built
    m, _ = registry.load(models, "runtime")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, m.booster_.num_features()))
    tl = np.where(np.arange(40) % 2 == 0, 3600.0, 86_400.0)
    cpus = np.where(np.arange(40) % 3 == 0, 64.0, 1.0)
    raw = m._raw(X)
    want = allocate(np.stack([m.for_budget(X, b) for b in ALLOC_BUDGETS], axis=1), tl, cpus,
                    m.alloc_scale_, m.alloc_lambda_)[0]  # the artifact's price (its target's)
    # the budget request of the RAW top quantile (the one the table was fitted on), also where
    # the shifted quantiles cross (the top one is not the largest)
    assert (np.argmax(raw + np.asarray(m.shift_), axis=1) != len(m.alphas) - 1).any()
    np.testing.assert_array_equal(m.tier_times(raw, tl, cpus), want)
    v = cards["runtime"]["validation"]
    assert {"walltime_q0.95", "walltime_recommendation", "model_median_q0.5"} <= set(v)
