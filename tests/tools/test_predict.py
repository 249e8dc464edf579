"""The predict action end to end: spec and job-id predictions, cold start, bad requests that
name the field and range, missing models that say how to train, and scope."""
from __future__ import annotations

import numpy as np
import pytest

from jobmedic.knowledge.store import Store
from jobmedic.models import registry, runtime_advice
from jobmedic.tools import run_action
from jobmedic.tools.base import ToolContext
from tests.models.helpers import START, build

LEVELS = {"moderate": 0.3, "high": 0.6, "critical": 0.8}


@pytest.fixture(scope="module")
def env(tmp_path_factory, taxonomy):
    db, models, _ = build(tmp_path_factory.mktemp("predict"))
    s = Store(db)
    ctx = ToolContext(store=s, taxonomy=taxonomy, now=START + 61 * 86400,
                      models_dir=models, risk_levels=LEVELS)
    yield s, ctx, models
    s.close()


def test_spec_prediction_has_risk_factors_runtime_memory_and_request(env):
    _s, ctx, _ = env
    r = run_action({"action": "predict", "user": "user3", "name": "job25", "req_cpus": 4,
                    "req_mem_mb": 8000, "req_walltime_s": 7200}, ctx)
    assert r.status == "ok", r.error
    d = r.data
    assert 0 <= d["failure_risk"] <= 1 and d["risk_level"] in ("low", "moderate", "high", "critical")
    assert d["factors"] and all(f["text"] for f in d["factors"])
    lo, hi = d["runtime_s"]["interval_80"]
    assert lo <= d["runtime_s"]["median"] <= hi
    # the point runtime (what `evaluate runtime` scores) beside the q0.5, shown first in the text
    assert d["runtime_s"]["expected"] > 0 and d["runtime_s"]["median"] == d["runtime_s"]["quantiles"]["q0.5"]
    assert "**Runtime:** expected " in r.text and "median (q0.5)" in r.text
    assert d["runtime_s"]["recommended"] <= 7200  # never above the user's own limit
    assert d["request"].startswith("--time=") and "--mem=" in d["request"]
    # the retry budget this job's core-hours earned (models/runtime_advice.py): 4 CPUs x 2 h
    # is little at stake, so the most cautious budget of the grid; the chance of too low a
    # --time is the kill share measured for that budget on the calibration slice
    assert d["runtime_s"]["retry_budget_taken"] == 0.001
    m, _ = registry.load(ctx.models_dir, "runtime")
    want = runtime_advice.chance_too_low(np.array([0.001]), m.alloc_kills_)[0]
    assert m.alloc_kills_ is not None and m.alloc_kills_["jobs"][0] > 0
    assert d["chance_too_low"] == {"time": want, "memory": pytest.approx(1 / 6, abs=1e-3)}
    assert "Failure risk" in r.text and "--time=" in r.text


def test_factors_quote_the_history(env):
    s, ctx, _ = env
    # a job name with many failures: its history must appear in words
    df = s.jobs_frame()
    failing = df[df["state"] != "completed"].groupby("name").size().idxmax()
    r = run_action({"action": "predict", "name": failing, "user": df.loc[df["name"] == failing, "user"].iloc[0]}, ctx)
    texts = " ".join(f["text"] for f in r.data["factors"])
    assert f"job name {failing}" in texts and "failed" in texts


def test_prediction_for_a_known_job(env):
    s, ctx, _ = env
    job_id = s.jobs_frame()["job_id"].iloc[1500]
    r = run_action({"action": "predict", "job_id": job_id}, ctx)
    assert r.status == "ok" and r.data["job"]["job_id"] == job_id
    assert "actually ended" in r.text


def test_unknown_job_id_is_not_found(env):
    _, ctx, _ = env
    r = run_action({"action": "predict", "job_id": "no-such-job"}, ctx)
    assert r.status == "error" and r.error.type == "not_found"


def test_cold_start_says_history_is_empty(env):
    _, ctx, _ = env
    r = run_action({"action": "predict", "user": "brand-new-user", "name": "never-run", "req_cpus": 2}, ctx)
    assert r.status == "ok"
    assert set(r.data["cold_start"]) >= {"user", "job name"}
    assert "History is empty" in r.text


@pytest.mark.parametrize("field,value,rng", [
    ("req_cpus", 0, "greater than or equal to 1"),
    ("req_mem_mb", 1e13, "less than or equal to 1000000000"),
    ("req_walltime_s", 100 * 365 * 86400, "less than or equal to 31622400"),
    ("req_gpus", -1, "greater than or equal to 0"),
])
def test_absurd_requests_name_the_field_and_range(env, field, value, rng):
    _, ctx, _ = env
    r = run_action({"action": "predict", "user": "u", field: value}, ctx)
    assert r.status == "error" and r.error.type == "invalid_field"
    assert r.error.field == field and field in r.error.message and rng in r.error.message


def test_missing_model_is_an_error_that_says_how_to_train(env, tmp_path, taxonomy):
    s, _, _ = env
    ctx = ToolContext(store=s, taxonomy=taxonomy, models_dir=tmp_path, risk_levels=LEVELS)
    r = run_action({"action": "predict", "user": "user3"}, ctx)
    assert r.status == "error" and r.error.type == "model_error"
    assert "jobmedic train failure" in r.error.hint


def test_levels_come_from_configuration(env, taxonomy):
    s, _, models = env
    ctx = ToolContext(store=s, taxonomy=taxonomy, now=START + 61 * 86400,
                      models_dir=models,
                      risk_levels={"moderate": 0.0, "high": 0.0, "critical": 0.0})
    r = run_action({"action": "predict", "user": "user3"}, ctx)
    assert r.data["risk_level"] == "critical"


def test_scope_hides_other_projects_history(env, taxonomy):
    s, _, models = env
    ctx = ToolContext(store=s, taxonomy=taxonomy, now=START + 61 * 86400, scope=["nobody's"],
                      models_dir=models, risk_levels=LEVELS)
    r = run_action({"action": "predict", "user": "user3"}, ctx)
    assert r.data["history"]["user"]["finished_jobs"] == 0
    r = run_action({"action": "predict", "job_id": s.jobs_frame()["job_id"].iloc[10]}, ctx)
    assert r.status == "error" and r.error.type == "not_found"


def test_without_a_failure_model_the_requests_still_come(env, tmp_path, taxonomy):
    """A cluster with no failures to learn from (MGnify's builds) trains runtime and memory only:
    predict and predict --batch still give the requests, and say the failure model is missing."""
    import shutil

    import pandas as pd

    from jobmedic.models import batch

    s, _, models = env
    for kind in ("runtime", "memory"):
        shutil.copytree(models / kind, tmp_path / kind)
    ctx = ToolContext(store=s, taxonomy=taxonomy, now=START + 61 * 86400,
                      models_dir=tmp_path, risk_levels=LEVELS)
    spec = {"user": "user3", "name": "job25", "req_cpus": 4, "req_mem_mb": 8000,
            "req_walltime_s": 7200}
    r = run_action({"action": "predict", "retry_budget": 0.02} | spec, ctx)
    assert r.status == "ok", r.error
    d = r.data
    assert d["failure_risk"] is None and d["risk_level"] is None and d["factors"] == []
    assert [m["kind"] for m in d["missing_models"]] == ["failure"]
    assert "jobmedic train failure" in d["missing_models"][0]["hint"]
    assert set(d["models"]) == {"runtime", "memory"}
    assert d["request"].startswith("--time=") and d["retry_budget"]["mem_mb"] > 0
    assert "Failure risk" not in r.text and "**Request:**" in r.text
    full = run_action({"action": "predict", "retry_budget": 0.02} | spec, ToolContext(
        store=s, taxonomy=taxonomy, now=START + 61 * 86400, models_dir=models, risk_levels=LEVELS))
    assert full.data["request"] == d["request"] and full.data["retry_budget"] == d["retry_budget"]
    specs = pd.DataFrame([spec])
    got = batch.score(s, specs, str(tmp_path), ctx.now, LEVELS, retry_budget=0.02)
    assert "failure_risk" not in got and {"runtime_q0.5", "memory_q0.5", "budget_mem_mb"} <= set(got)
    assert [m["kind"] for m in got.attrs["missing_models"]] == ["failure"]
    with_failure = batch.score(s, specs, str(models), ctx.now, LEVELS, retry_budget=0.02)
    assert got["budget_mem_mb"].tolist() == with_failure["budget_mem_mb"].tolist()
