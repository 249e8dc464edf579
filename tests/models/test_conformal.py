"""The retry budget: the conformal table meets its stated share of exceedances on exchangeable
data, picks the cautious grid point, refuses absurd budgets, survives an artifact round trip,
and reaches the predict action (default from the cluster's configuration, or the request)."""
from __future__ import annotations

import numpy as np
import pytest

from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.store import Store
from jobmedic.models import conformal, registry
from jobmedic.tools import run_action
from jobmedic.tools.base import ToolContext
from tests.models.helpers import START, build


def test_table_meets_each_budget_on_fresh_draws():
    rng = np.random.default_rng(0)
    cal, test = rng.normal(size=5000), rng.normal(size=200_000)
    table = conformal.fit_table(cal)
    for b in (0.01, 0.02, 0.05, 0.2):
        exceed = float(np.mean(test > conformal.shift_for(table, b)))
        assert exceed <= b + 0.006, (b, exceed)
        assert exceed >= b * 0.5, (b, exceed)  # not absurdly conservative either


def test_sliding_window_keeps_the_latest_residuals():
    old, new = np.zeros(1000), np.full(500, 3.0)
    table = conformal.fit_table(np.concatenate([old, new]), window=500)
    assert table["n"] == 500 and conformal.shift_for(table, 0.5) == 3.0


def test_between_grid_points_the_cautious_one_and_bounds():
    table = conformal.fit_table(np.arange(1000.0))
    assert conformal.shift_for(table, 0.025) == conformal.shift_for(table, 0.02)
    assert conformal.shift_for(table, 0.01) > conformal.shift_for(table, 0.05)
    with pytest.raises(ModelError):
        conformal.shift_for(table, 0.9)
    with pytest.raises(ModelError):
        conformal.loaded({"budgets": [0.1], "shifts": [float("nan")]})
    assert conformal.loaded(None) is None


@pytest.fixture(scope="module")
def env(tmp_path_factory, taxonomy):
    db, models, _ = build(tmp_path_factory.mktemp("budget"), kinds=("failure", "runtime", "memory"))
    s = Store(db)
    yield s, models, taxonomy
    s.close()


def test_budget_requests_grow_as_the_budget_shrinks_after_a_round_trip(env):
    _, models, _ = env
    for kind in ("runtime", "memory"):
        m, meta = registry.load(str(models), kind)
        assert meta["budget_table"]["n"] > 0
        X = np.full((3, m.booster_.num_features()), np.nan)  # FEATURES, then the kind's EXTRA
        X[:, 0] = [1, 4, 16]
        tight, loose = m.for_budget(X, 0.01), m.for_budget(X, 0.2)
        assert np.all(tight >= loose) and np.all(loose > 0)


def test_predict_returns_the_request_for_the_budget(env):
    s, models, taxonomy = env
    spec = {"action": "predict", "user": "user3", "name": "job25", "req_cpus": 4,
            "req_mem_mb": 8000, "req_walltime_s": 7 * 86400}
    ctx = ToolContext(store=s, taxonomy=taxonomy, now=START + 61 * 86400, models_dir=models,
                      retry_budgets={"*": 0.2})
    r = run_action(spec, ctx)
    assert r.status == "ok", r.error
    loose = r.data["retry_budget"]
    assert loose["budget"] == 0.2 and loose["time_s"] > 0 and loose["mem_mb"] > 0
    assert loose["user_core_hours"] == round(7 * 86400 * 4 / 3600, 3)
    tight = run_action(spec | {"retry_budget": 0.005}, ctx).data["retry_budget"]
    assert tight["budget"] == 0.005
    assert tight["mem_mb"] >= loose["mem_mb"] and tight["time_s"] >= loose["time_s"]
    bad = run_action(spec | {"retry_budget": 0.9}, ctx)
    assert bad.status == "error" and "retry_budget" in bad.error.message + str(bad.error.field)


def test_batch_scoring_adds_the_budget_request(env):
    import pandas as pd

    from jobmedic.models.batch import score

    s, models, _ = env
    specs = pd.DataFrame({"user": ["user3", "user5"], "req_cpus": [4, 1],
                          "req_walltime_s": [7 * 86400, 600]})
    now = START + 61 * 86400
    loose = score(s, specs, str(models), now, {"moderate": .3, "high": .6, "critical": .8},
                  retry_budget=0.2)
    tight = score(s, specs, str(models), now, {"moderate": .3, "high": .6, "critical": .8},
                  retry_budget=0.005)
    assert (tight["budget_mem_mb"] >= loose["budget_mem_mb"]).all()
    assert (tight["budget_time_s"] >= loose["budget_time_s"]).all()
    assert tight.loc[1, "budget_time_s"] <= 600  # never above the user's own limit
    plain = score(s, specs, str(models), now, {"moderate": .3, "high": .6, "critical": .8})
    assert "budget_mem_mb" not in plain and plain["recommended_mem_mb"].equals(loose["recommended_mem_mb"])
