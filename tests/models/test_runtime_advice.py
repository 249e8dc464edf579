"""The recommended --time spends the kill budget where the core-hours are
(models/runtime_advice.py): each job takes the retry budget minimising its requested
core-seconds plus a price per unit of budget, set so that the mean budget is a target kill
share (at calibrate, at each recalibration and in the card's daily replay); predict, batch and
the card serve the same rule; artifacts written before the scale existed keep the limit tiers,
those written before the target their fixed price."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.store import Store
from jobmedic.models import artifacts, registry, runtime_advice, runtime_rolling, training
from jobmedic.models.batch import score
from jobmedic.models.features import FEATURES
from jobmedic.models.predictor import predict_one
from jobmedic.models.runtime_advice import (
    ALLOC_BUDGETS,
    ALLOC_LAMBDA,
    ALLOC_TARGET,
    TIER_BUDGETS,
    allocate,
    budget_time,
    from_times,
    lambda_for_target,
    loaded_lambda,
    loaded_scale,
    request_scale,
)
from tests.models.helpers import build, resign

LEVELS = {"moderate": 0.3, "high": 0.6, "critical": 0.8}


def _times(base: float, n: int = 1) -> np.ndarray:
    """Conformal requests falling with the budget: base x (1 - 3 b) per budget."""
    return np.tile(base * (1 - 3 * np.asarray(ALLOC_BUDGETS)), (n, 1))


@pytest.mark.parametrize(("cpus", "limit", "want_budget"), [
    (1, 7200.0, ALLOC_BUDGETS[0]),     # little at stake: the most cautious budget
    (512, 86_400.0, ALLOC_BUDGETS[-1]),  # many CPUs: each minute saved outweighs the risk
    (np.nan, 7200.0, ALLOC_BUDGETS[0]),  # no CPU count: one CPU
])
def test_a_job_takes_more_risk_the_more_core_hours_it_holds(cpus, limit, want_budget):
    t = _times(5000.0)
    rec, b = allocate(t, np.array([limit]), np.array([cpus]), scale=1e6)
    assert b[0] == want_budget
    i = ALLOC_BUDGETS.index(want_budget)
    assert rec[0] == budget_time(t[:, i], np.array([limit]))[0]


def test_the_allocation_minimises_the_stated_cost_and_respects_the_limit():
    rng = np.random.default_rng(3)
    n = 300
    t = np.sort(rng.uniform(600, 90_000, (n, len(ALLOC_BUDGETS))), axis=1)[:, ::-1]
    tl = rng.choice([3600.0, 43_200.0, 172_800.0, np.nan], n)
    cpus = rng.choice([1.0, 4.0, 64.0, np.nan], n)
    scale = 200_000.0
    rec, b = allocate(t, tl, cpus, scale)
    c = np.where(np.isfinite(cpus), cpus, 1.0)
    every = budget_time(t, tl[:, None])
    cost = c[:, None] * every / scale + ALLOC_LAMBDA * np.asarray(ALLOC_BUDGETS)
    np.testing.assert_allclose(c * rec / scale + ALLOC_LAMBDA * b, cost.min(axis=1))
    assert (rec[np.isfinite(tl)] <= tl[np.isfinite(tl)]).all()
    # one scale per job (walk-forward: each period's model) is the same rule
    np.testing.assert_array_equal(allocate(t, tl, cpus, np.full(n, scale))[0], rec)
    # more CPUs on the same request never take less risk
    r1, b1 = allocate(t, tl, np.ones(n), scale)
    r64, b64 = allocate(t, tl, np.full(n, 64.0), scale)
    assert (b64 >= b1).all() and (r64 <= r1).all()


def test_request_scale_and_stored_scale_are_checked():
    X = np.full((3, len(FEATURES)), np.nan)
    X[:, FEATURES.index("req_cpus")] = [2, np.nan, 8]
    X[:, FEATURES.index("timelimit_s")] = [3600, 7200, np.nan]
    assert request_scale(X) == pytest.approx((2 * 3600 + 1 * 7200) / 2)
    assert request_scale(X[:0]) is None
    assert loaded_scale(None) is None and loaded_scale({"scale_core_s": None}) is None
    assert loaded_scale({"scale_core_s": 5.0}) == 5.0
    for bad in ({"scale_core_s": -1}, {"scale_core_s": "x"}, {"scale_core_s": float("nan")}):
        with pytest.raises(ModelError, match="allocation scale"):
            loaded_scale(bad)


def test_without_a_scale_the_limit_tiers_and_without_tables_nothing():
    t = {b: np.array([9000.0, 9000.0]) * (1 - b) for b in (*ALLOC_BUDGETS, *TIER_BUDGETS)}
    tl = np.array([3600.0 * 2, 3600.0 * 24])
    _rec, b, rule = from_times(t, tl, None, None)
    assert rule == "tiers" and list(b) == list(TIER_BUDGETS)
    assert from_times(t, tl, None, 1e5)[2] == "allocated"
    assert from_times({0.02: t[0.02]}, tl, None, 1e5) is None


def test_the_allocation_can_be_switched_off_for_the_tiers(monkeypatch):
    t = {b: np.array([9000.0, 9000.0]) * (1 - b) for b in (*ALLOC_BUDGETS, *TIER_BUDGETS)}
    tl = np.array([3600.0 * 2, 3600.0 * 24])
    monkeypatch.setattr(runtime_advice, "ALLOCATE", False)
    rec, b, rule = from_times(t, tl, np.array([512.0, 512.0]), 1e5)
    assert rule == "tiers" and list(b) == list(TIER_BUDGETS)
    np.testing.assert_array_equal(rec, runtime_advice.tiered(t[0.01], t[0.05], tl))


def _slice(n: int = 2000, seed: int = 5):
    """A synthetic calibration slice: conformal requests falling with the budget, mixed
    limits and CPU counts (some unknown)."""
    rng = np.random.default_rng(seed)
    base = rng.lognormal(8.5, 1.2, n)
    t = base[:, None] * (1 + 2 * (0.1 - np.asarray(ALLOC_BUDGETS)))[None, :] ** 2
    tl = rng.choice([3600.0, 43_200.0, 172_800.0, np.nan], n)
    cpus = rng.choice([1.0, 4.0, 16.0, 256.0, np.nan], n)
    return t, tl, cpus, 150_000.0


def _mean_budget(t, tl, cpus, scale, lam):
    return float(np.mean(allocate(t, tl, cpus, scale, lam)[1]))


@pytest.mark.parametrize("target", [0.01, 0.02, 0.03, 0.035, 0.04, 0.045, 0.06])
def test_lambda_is_the_smallest_price_whose_mean_budget_meets_the_target(target):
    t, tl, cpus, scale = _slice()
    lam = lambda_for_target(t, tl, cpus, scale, target)
    got = _mean_budget(t, tl, cpus, scale, lam)
    assert got <= target
    assert _mean_budget(t, tl, cpus, scale, lam / 1.001) > target  # the smallest such price
    assert got > target - 0.01  # the steps are small on 2,000 jobs: near the target


def test_the_mean_budget_falls_as_the_price_grows_and_the_bounds_hold():
    t, tl, cpus, scale = _slice()
    means = [_mean_budget(t, tl, cpus, scale, lam) for lam in np.geomspace(1e-4, 1e4, 81)]
    assert all(a >= b for a, b in itertools.pairwise(means))
    assert means[0] > means[-1]
    lo, hi = runtime_advice.LAMBDA_RANGE
    assert lambda_for_target(t, tl, cpus, scale, 1.0) == lo  # every budget meets it
    assert lambda_for_target(t, tl, cpus, scale, 0.0) == hi  # none does: the dearest price
    assert lambda_for_target(t[:0], tl[:0], cpus[:0], scale, 0.04) is None
    # per-job prices are the same rule as one price
    np.testing.assert_array_equal(allocate(t, tl, cpus, scale, np.full(len(t), 0.3))[0],
                                  allocate(t, tl, cpus, scale, 0.3)[0])


@pytest.mark.parametrize(("stored", "want"), [
    (None, (ALLOC_LAMBDA, None)),  # before the allocation
    ({"scale_core_s": 5.0}, (ALLOC_LAMBDA, None)),
    ({"scale_core_s": 5.0, "lambda": 0.5, "budgets": list(ALLOC_BUDGETS)}, (0.5, None)),  # before the target
    ({"scale_core_s": 5.0, "lambda": 0.25, "target": 0.04}, (0.25, 0.04)),
])
def test_stored_lambda_and_target_load(stored, want):
    assert loaded_lambda(stored) == want


@pytest.mark.parametrize("bad", [{"lambda": -1}, {"lambda": "x"}, {"lambda": 0.5, "target": 0},
                                 {"lambda": 0.5, "target": float("nan")}, {"lambda": True}])
def test_a_malformed_lambda_or_target_is_refused(bad):
    with pytest.raises(ModelError, match="walltime allocation"):
        loaded_lambda(bad)


@pytest.mark.parametrize("budgets", [[0.01], [*ALLOC_BUDGETS[:-1], 0.2], "x", [True] * 9])
def test_an_allocation_fitted_on_another_budget_grid_is_refused(budgets):
    with pytest.raises(ModelError, match="other retry budgets") as e:
        loaded_lambda({"scale_core_s": 5.0, "lambda": 0.5, "target": 0.02, "budgets": budgets})
    assert "jobmedic train runtime" in e.value.hint


def test_kill_shares_are_measured_per_budget_taken_and_served_from_enough_jobs():
    n = len(ALLOC_BUDGETS)
    taken = np.repeat(np.asarray(ALLOC_BUDGETS), [40] + [0] * (n - 3) + [40, 5])
    rec = np.full(len(taken), 100.0)
    y = np.full(len(taken), 50.0)
    y[:4] = 200.0  # 4 of the 40 at the first budget killed
    y[40:50] = 200.0  # 10 of the 40 at the second largest
    y[-1] = 200.0  # 1 of the 5 at the largest
    k = runtime_advice.kill_shares(y, rec, taken)
    assert k["jobs"] == [40] + [0] * (n - 3) + [40, 5]
    assert k["kill_share"] == [0.1] + [None] * (n - 3) + [0.25, 0.2]
    assert runtime_advice.loaded_kills({"kills": k}) == k
    assert runtime_advice.loaded_kills({"lambda": 0.5}) is None and runtime_advice.loaded_kills(None) is None
    served = runtime_advice.chance_too_low(np.asarray([ALLOC_BUDGETS[0], ALLOC_BUDGETS[1],
                                                       ALLOC_BUDGETS[-2], ALLOC_BUDGETS[-1]]), k)
    # measured where >= KILL_MIN_JOBS took it, the nominal budget where fewer or none did
    np.testing.assert_array_equal(served, [0.1, ALLOC_BUDGETS[1], 0.25, ALLOC_BUDGETS[-1]])
    np.testing.assert_array_equal(runtime_advice.chance_too_low(np.array([0.02]), None), [0.02])


@pytest.mark.parametrize("bad", [
    {"kill_share": [0.1], "jobs": [3]},  # another length
    {"kill_share": [1.5] + [None] * 8, "jobs": [3] + [0] * 8},  # not a share
    {"kill_share": [None] * 9, "jobs": [3] + [0] * 8},  # jobs without a share
    {"kill_share": [0.1] + [None] * 8, "jobs": [-1] + [0] * 8},
    {"kill_share": "x", "jobs": [0] * 9}, [0.1],
])
def test_malformed_kill_shares_are_refused(bad):
    with pytest.raises(ModelError, match="kill shares"):
        runtime_advice.loaded_kills({"kills": bad})


def test_the_daily_replay_sets_each_days_price_on_the_window_that_had_ended():
    t, tl, cpus, scale = _slice(3000)
    top = np.log1p(t[:, 0])  # the top quantile before its shift; shifts of 0 per budget
    shifts = np.log1p(t) - top[:, None]
    shift = shifts.mean(axis=0)
    ends = np.arange(3000.0) * 60  # one job ends a minute
    days = np.array([0.5, 1.2, 1.9, 2.1, 1.5]) * 86400  # query times
    bshift = {b: np.full(len(days), shift[i]) for i, b in enumerate(ALLOC_BUDGETS)}
    bshift[ALLOC_BUDGETS[0]][0] = np.nan  # day 0: the tables were not refitted
    # a later day whose window was full but one budget's table not refitted: the static price
    bshift[ALLOC_BUDGETS[-1]][4] = np.nan
    days[4] = 3.5 * 86400
    assert int(np.searchsorted(ends, 3 * 86400, side="left")) >= 1000  # the window was full
    lam = runtime_rolling.online_lambdas(top, tl, cpus, ends, days, bshift, 0.5, scale, 0.03,
                                         window=1000)
    assert lam[0] == 0.5
    assert lam[4] == 0.5
    for k, day in ((1, 1), (3, 2)):
        p = int(np.searchsorted(ends, day * 86400, side="left"))
        r = slice(p - 1000, p)
        want = lambda_for_target(np.expm1(top[r][:, None] + shift[None, :]), tl[r], cpus[r],
                                 scale, 0.03)
        assert lam[k] == want
    assert lam[1] == lam[2]  # the same day, the same price


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("advice"), kinds=("failure", "runtime"))


def _spec(df, i, cpus):
    return {"user": df.loc[i, "user"], "project": df.loc[i, "project"], "queue": df.loc[i, "queue"],
            "name": df.loc[i, "name"], "req_cpus": cpus, "req_mem_mb": df.loc[i, "req_mem_mb"],
            "timelimit_s": 86_400.0}


def test_predict_batch_and_card_serve_the_allocation(built):
    db, models, cards = built
    m, meta = registry.load(models, "runtime")
    assert meta["walltime_allocation"]["scale_core_s"] == pytest.approx(m.alloc_scale_)
    assert m.alloc_scale_ > 0
    v = cards["runtime"]["validation"]
    assert v["walltime_recommendation"]["rule"] == "allocated"
    assert v["online_recalibrated"]["walltime_recommendation"]["rule"] == "allocated"
    s = Store(db)
    df = s.jobs_frame()
    i = len(df) - 3
    now = int(df.loc[i, "submit_time"])
    got = {}
    for cpus in (1, 1_000_000):
        one = predict_one(s, _spec(df, i, cpus), now, str(models), LEVELS)
        spec = _spec(df, i, cpus)
        batch = score(s, _batch_frame(spec, now), str(models), now, LEVELS, history=df)
        assert batch["recommended_time_s"].iloc[0] == one["runtime_s"]["recommended"]
        taken = one["runtime_s"]["retry_budget_taken"]
        assert taken in ALLOC_BUDGETS
        # the chance of too low a --time: the share measured at calibrate for that budget
        assert one["chance_too_low"]["time"] == runtime_advice.chance_too_low(
            np.array([taken]), m.alloc_kills_)[0]
        got[cpus] = (one["runtime_s"]["recommended"], taken)
    # one CPU holds little: the most cautious budget; a million CPUs hold so many core-hours
    # that each minute saved outweighs any price: the largest budget and a shorter --time
    assert got[1][1] == ALLOC_BUDGETS[0] and got[1_000_000][1] == ALLOC_BUDGETS[-1]
    assert got[1_000_000][0] < got[1][0]


def test_a_model_whose_quantiles_cross_serves_and_scores_the_raw_top(built, monkeypatch):
    """predict == batch == evaluate == the daily replay's rule on the same tables, all the
    allocation over expm1(raw top + the budget's shift), where the shifted quantiles cross."""
    from jobmedic.models import runtime
    from jobmedic.models.runtime import RuntimeModel

    db, models, _ = built
    d = artifacts.current_dir(models, "runtime")
    text = (d / "meta.json").read_text()
    meta = json.loads(text)
    meta["conformal_shift"][3] = meta["conformal_shift"][2] - 3.0  # q0.95 shifted below q0.9
    (d / "meta.json").write_text(json.dumps(meta))
    resign(models, "runtime")
    try:
        m, _ = registry.load(models, "runtime")
        s = Store(db)
        frame = training._positional(training.load(s))
        df = frame[0]
        mask, y = m.labels(df)
        rows = np.flatnonzero(mask)[-300:]
        X = m.inputs(frame, rows)
        raw = m._raw(X)
        assert (np.argmax(raw + np.asarray(m.shift_), axis=1) != 3).all()  # every job crosses
        tl = df["timelimit_s"].to_numpy(dtype="float64")[rows]
        cpus = df["req_cpus"].to_numpy(dtype="float64")[rows]
        times = runtime_advice.table_times(raw[:, 3], m.budget_)
        want = allocate(times, tl, cpus, m.alloc_scale_, m.alloc_lambda_)
        rec = m.recommendation(raw, tl, cpus)
        assert rec[2] == "allocated"
        np.testing.assert_array_equal(rec[0], want[0])
        np.testing.assert_array_equal(rec[1], want[1])
        # the sorted top (what was served before) asks for another --time
        sorted_top = np.log1p(m.predict(X)[:, 3]) - m.shift_[3]
        assert not np.array_equal(allocate(runtime_advice.table_times(sorted_top, m.budget_), tl,
                                           cpus, m.alloc_scale_, m.alloc_lambda_)[0], want[0])
        # evaluate's static row == the replay's rule (`_scored`) on the static tables
        ev = runtime.evaluate(m, X, frame[1].iloc[rows], y[rows], df.iloc[rows], 1000.0)
        bt = {b: m.for_budget(X, b) for b in sorted(set(ALLOC_BUDGETS) | set(TIER_BUDGETS))}
        replay = runtime._scored(y[rows], m.predict(X), tl, cpus, bt, m.point(X),
                                 m.alloc_scale_, m.alloc_lambda_)
        assert ev["walltime_recommendation"] == replay["walltime_recommendation"]
        assert ev["walltime_recommendation"] == runtime.recommendation_effect(
            y[rows], (*want, "allocated"), tl, cpus)
        # predict and batch of one job serve the same, from the raw output they computed
        seen = []
        serve = RuntimeModel.serve

        def spy(self, X, budget):
            out = serve(self, X, budget)
            seen.append(out.raw)
            return out

        monkeypatch.setattr(RuntimeModel, "serve", spy)
        i = int(rows[-3])
        spec, now = _spec(df, i, 64), int(df.loc[i, "submit_time"])
        one = predict_one(s, spec, now, str(models), LEVELS)
        batch = score(s, _batch_frame(spec, now), str(models), now, LEVELS, history=df)
        r1 = seen[0]
        assert np.argmax(r1[0] + np.asarray(m.shift_)) != 3
        w1 = allocate(runtime_advice.table_times(r1[:, 3], m.budget_), np.array([86_400.0]),
                      np.array([64.0]), m.alloc_scale_, m.alloc_lambda_)
        assert one["runtime_s"]["recommended"] == w1[0][0]
        assert one["runtime_s"]["retry_budget_taken"] == w1[1][0]
        assert batch["recommended_time_s"].iloc[0] == w1[0][0]
        np.testing.assert_allclose(seen[1], r1)
    finally:
        (d / "meta.json").write_text(text)
        resign(models, "runtime")


def test_the_artifact_stores_the_price_that_meets_the_target_and_recalibrate_resets_it(built):
    db, models, _ = built
    m, meta = registry.load(models, "runtime")
    alloc = meta["walltime_allocation"]
    assert alloc["target"] == ALLOC_TARGET == m.alloc_target_
    assert alloc["lambda"] == m.alloc_lambda_ and m.alloc_lambda_ > 0
    s = Store(db)
    frame = training._positional(training.load(s))
    df = frame[0]
    mask, _y = m.labels(df)
    card = training.recalibrate(s, "runtime", str(models))
    r, meta2 = registry.load(models, "runtime")
    assert card["recalibrated"]["allocation_target"] == ALLOC_TARGET
    assert meta2["walltime_allocation"]["lambda"] == r.alloc_lambda_
    # the price is the one that meets the target on the window's jobs under the new table
    since = runtime_rolling.epoch(card["window"]["calibration_from"])
    rows = runtime_rolling.pool(df, mask, since, float(df["end_time"].max()) + 1)
    rows = rows[-runtime_rolling.WINDOW:]
    X = r.inputs(frame, rows)
    times = runtime_advice.table_times(r._raw(X)[:, -1], r.budget_)
    want = lambda_for_target(times, X[:, FEATURES.index("timelimit_s")],
                             X[:, FEATURES.index("req_cpus")], r.alloc_scale_, ALLOC_TARGET)
    assert r.alloc_lambda_ == want
    rec, b, rule = r.recommendation(r._raw(X), X[:, FEATURES.index("timelimit_s")],
                                    X[:, FEATURES.index("req_cpus")])
    assert rule == "allocated" and float(np.mean(b)) <= ALLOC_TARGET
    # the kill share per budget taken, measured on the same window, stored and checked on load
    want_kills = runtime_advice.kill_shares(_y[rows], rec, b)
    assert r.alloc_kills_ == want_kills == meta2["walltime_allocation"]["kills"]
    assert card["recalibrated"]["allocation_kills"] == want_kills
    assert sum(want_kills["jobs"]) == len(rows)


def test_an_artifact_before_the_target_keeps_its_fixed_price(built):
    _db, models, _ = built
    d = artifacts.current_dir(models, "runtime")
    meta = json.loads((d / "meta.json").read_text())
    meta["walltime_allocation"] = {"scale_core_s": meta["walltime_allocation"]["scale_core_s"],
                                   "lambda": 0.5, "budgets": list(ALLOC_BUDGETS)}
    (d / "meta.json").write_text(json.dumps(meta))
    resign(models, "runtime")
    old, _ = registry.load(models, "runtime")
    assert (old.alloc_lambda_, old.alloc_target_, old.alloc_kills_) == (0.5, None, None)
    X = np.zeros((3, old.booster_.num_features()))
    X[:, FEATURES.index("timelimit_s")] = 86_400.0
    X[:, FEATURES.index("req_cpus")] = [1, 64, 4096]
    raw = old._raw(X)
    rec, b, rule = old.recommendation(raw, X[:, FEATURES.index("timelimit_s")],
                                      X[:, FEATURES.index("req_cpus")])
    times = runtime_advice.table_times(raw[:, -1], old.budget_)  # the raw top quantile
    want = allocate(times, X[:, FEATURES.index("timelimit_s")], X[:, FEATURES.index("req_cpus")],
                    old.alloc_scale_, 0.5)
    assert rule == "allocated"
    np.testing.assert_array_equal(rec, want[0])
    np.testing.assert_array_equal(b, want[1])
    # no target: the price and what it served stay
    assert old.reset_allocation(X, np.full(3, 60.0))["allocation_lambda"] == 0.5
    assert old.alloc_kills_ is None


def _batch_frame(spec, now):
    row = {k: spec[k] for k in ("user", "project", "queue", "name", "req_cpus", "req_mem_mb")}
    return pd.DataFrame([row | {"req_walltime_s": spec["timelimit_s"], "submit_time": now}])


def test_an_artifact_without_the_scale_keeps_the_limit_tiers(built):
    db, models, _ = built
    d = artifacts.current_dir(models, "runtime")
    meta = json.loads((d / "meta.json").read_text())
    meta.pop("walltime_allocation")
    (d / "meta.json").write_text(json.dumps(meta))
    resign(models, "runtime")
    old, _ = registry.load(models, "runtime")
    assert old.alloc_scale_ is None
    raw = old._raw(np.zeros((2, old.booster_.num_features())))
    tl = np.array([3600.0, 86_400.0])
    _rec, b, rule = old.recommendation(raw, tl, np.array([64.0, 64.0]))
    assert rule == "tiers" and list(b) == list(TIER_BUDGETS)
    s = Store(db)
    df = s.jobs_frame()
    i = len(df) - 3
    one = predict_one(s, _spec(df, i, 64), int(df.loc[i, "submit_time"]), str(models), LEVELS)
    assert one["chance_too_low"]["time"] == TIER_BUDGETS[1]  # a 24 h limit: the long tier
    assert runtime_advice.is_long(np.array([86_400.0]))[0]
