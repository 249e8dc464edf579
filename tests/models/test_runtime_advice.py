"""The recommended --time spends the kill budget where the core-hours are
(models/runtime_advice.py): each job takes the retry budget minimising its requested
core-seconds plus a price per unit of budget; predict, batch and the card serve the same rule;
artifacts written before the scale existed keep the limit tiers."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.store import Store
from jobmedic.models import artifacts, registry, runtime_advice
from jobmedic.models.batch import score
from jobmedic.models.features import FEATURES
from jobmedic.models.predictor import predict_one
from jobmedic.models.runtime_advice import (
    ALLOC_BUDGETS,
    ALLOC_LAMBDA,
    TIER_BUDGETS,
    allocate,
    budget_time,
    from_times,
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
    for cpus in (1, 4096):
        one = predict_one(s, _spec(df, i, cpus), now, str(models), LEVELS)
        spec = _spec(df, i, cpus)
        batch = score(s, _batch_frame(spec, now), str(models), now, LEVELS, history=df)
        assert batch["recommended_time_s"].iloc[0] == one["runtime_s"]["recommended"]
        assert one["chance_too_low"]["time"] in ALLOC_BUDGETS
        got[cpus] = (one["runtime_s"]["recommended"], one["chance_too_low"]["time"])
    # the same job with 4,096 CPUs holds far more core-hours: it takes at least as much risk
    assert got[4096][1] >= got[1][1] and got[4096][0] <= got[1][0]


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
    q = old.predict(np.zeros((2, old.booster_.num_features())))
    tl = np.array([3600.0, 86_400.0])
    _rec, b, rule = old.recommendation(q, tl, np.array([64.0, 64.0]))
    assert rule == "tiers" and list(b) == list(TIER_BUDGETS)
    s = Store(db)
    df = s.jobs_frame()
    i = len(df) - 3
    one = predict_one(s, _spec(df, i, 64), int(df.loc[i, "submit_time"]), str(models), LEVELS)
    assert one["chance_too_low"]["time"] == TIER_BUDGETS[1]  # a 24 h limit: the long tier
    assert runtime_advice.is_long(np.array([86_400.0]))[0]
