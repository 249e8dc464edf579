"""The savings action on a synthetic store with trained models: totals add up from the jobs,
a tighter budget saves less and kills fewer, the per-group tables sum to the totals, and a store
without models still reports the unused resources and says which models are missing."""
from __future__ import annotations

import numpy as np
import pytest

from jobmedic.knowledge.store import Store
from jobmedic.tools import run_action
from jobmedic.tools.base import ToolContext
from tests.models.helpers import START, build

AS_OF = START + 61 * 86400


@pytest.fixture(scope="module")
def env(tmp_path_factory, taxonomy):
    db, models, _ = build(tmp_path_factory.mktemp("savings"))
    s = Store(db)
    yield s, models, taxonomy
    s.close()


def _run(ctx, **kw):
    r = run_action({"action": "savings", "as_of": str(AS_OF), "lookback_days": 30} | kw, ctx)
    assert r.status == "ok", r.error
    return r


def test_totals_match_the_jobs_and_groups_sum_to_them(env):
    s, models, taxonomy = env
    ctx = ToolContext(store=s, taxonomy=taxonomy, models_dir=models)
    r = _run(ctx, retry_budget=0.05, top=500)
    t = r.data["total"]
    df = s.jobs_frame()
    w = df[(df["submit_time"] >= AS_OF - 30 * 86400) & (df["submit_time"] < AS_OF)
           & (df["state"] == "completed")]
    assert t["jobs"] == len(w) > 0
    cpus = w["req_cpus"].fillna(1).clip(lower=1)
    assert t["requested_core_h"] == pytest.approx(float((w["timelimit_s"] * cpus).sum() / 3600), rel=1e-3)
    assert r.data["missing_models"] == []
    for g in r.data["groups"]:
        assert sum(x["jobs"] for x in g["rows"]) == t["jobs"]
        assert sum(x["unused_core_h"] for x in g["rows"]) == pytest.approx(t["unused_core_h"], rel=1e-3)
    assert "Savings at a 5.0% retry budget" in r.text and "Per project" in r.text


def test_a_tighter_budget_saves_less_and_kills_fewer(env):
    s, models, taxonomy = env
    ctx = ToolContext(store=s, taxonomy=taxonomy, models_dir=models, retry_budgets={"*": 0.2})
    loose = _run(ctx).data  # the configured default
    tight = _run(ctx, retry_budget=0.005).data
    assert loose["retry_budget"] == 0.2
    assert tight["total"]["saved_core_h"] <= loose["total"]["saved_core_h"]
    assert tight["total"]["killed_by_time"] <= loose["total"]["killed_by_time"]
    assert tight["total"]["killed_by_memory"] <= loose["total"]["killed_by_memory"]
    assert loose["total"]["killed_by_time"] > 0  # a 20 % budget does kill some


def test_without_models_unused_is_still_reported(env, tmp_path):
    s, _, taxonomy = env
    ctx = ToolContext(store=s, taxonomy=taxonomy, models_dir=tmp_path / "none")
    d = _run(ctx, group_by=["user"]).data
    assert d["missing_models"] == ["runtime", "memory"] and d["total"]["saved_core_h"] == 0
    assert d["total"]["unused_core_h"] > 0 and [g["by"] for g in d["groups"]] == ["user"]
    assert np.isfinite(d["total"]["unused_gb_h"])
    text = _run(ctx, group_by=["user"]).text
    assert "train them with `jobmedic train runtime` and `jobmedic train memory`" in text


def test_one_missing_model_is_the_one_named(env, tmp_path):
    from jobmedic.reports.savings import render

    d = _run(ToolContext(store=env[0], taxonomy=env[2], models_dir=tmp_path / "none"),
             group_by=["user"]).data
    text = render(d | {"missing_models": ["memory"]})
    assert "train it with `jobmedic train memory`" in text and "train runtime" not in text
