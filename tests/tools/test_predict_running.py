"""`predict` with running: true (issue 15 item 4): the running jobs in scope, each with its
early-warning score and memory-kill estimate, riskiest first; filters; scope; bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.settings import config_path
from jobmedic.tools import run_action
from jobmedic.tools.base import ToolContext

NOW = 1_700_000_000
MIB = 1024 * 1024
COLS = ("cluster", "job_id", "user", "project", "queue", "state", "submit_time", "start_time",
        "end_time", "req_mem_mb", "source")


def _series(job: str, fn, project_seed: int = 0) -> list[tuple]:
    rng = np.random.default_rng(project_seed)
    return [("hpc", job, "n1", "0", "mem_rss_bytes", NOW - 180 + 5 * k,
             float(fn(5 * k) + rng.normal(0, 2 * MIB)), "sstat") for k in range(37)]


@pytest.fixture
def ctx(store):
    start = NOW - 600
    store.upsert_jobs([
        ("hpc", "r1", "alice", "ml-team", "gpu", "running", start - 60, start, None, 1024.0, "slurm"),
        ("hpc", "r2", "bob", "ml-team", "cpu", "running", start - 60, start, None, 1024.0, "slurm"),
        ("hpc", "r3", "zed", "bio", "cpu", "running", start - 60, start, None, 1024.0, "slurm"),
        ("hpc", "r4", "alice", "ml-team", "gpu", "running", start - 60, start, None, 1024.0, "slurm"),
        ("hpc", "c1", "alice", "ml-team", "gpu", "completed", start - 60, start, NOW - 10, 1024.0,
         "slurm")], columns=COLS)
    store.add_samples(_series("r1", lambda x: 200 * MIB + 4 * MIB * x)  # 920 MiB at now: kill soon
                      + _series("r2", lambda x: 500 * MIB, 1)  # a plateau at half the request
                      + _series("r3", lambda x: 300 * MIB + 3.5 * MIB * x, 2))  # bio: growing
    return lambda scope=None: ToolContext(store, Taxonomy.from_yaml(config_path("taxonomy.yaml")),
                                          scope=scope, now=NOW)


def _run(c, **kw):
    return run_action({"action": "predict", "running": True, **kw}, c)


def test_lists_running_jobs_riskiest_first_with_both_estimates(ctx):
    res = _run(ctx())
    assert res.status == "ok", res
    d = res.data
    assert d["running"] == 4 and [r["job_id"] for r in d["jobs"]][:2] == ["r1", "r3"]
    r1 = d["jobs"][0]
    assert r1["memory_kill"]["alarm"] and r1["memory_kill"]["eta_s"] < 60 and r1["at_risk"]
    assert r1["early_warning"]["status"] == "no_samples"  # no GPU/CPU window: said, not hidden
    by = {r["job_id"]: r for r in d["jobs"]}
    assert by["r2"]["memory_kill"]["status"] == "plateau" and not by["r2"]["at_risk"]
    assert by["r4"]["memory_kill"]["status"] == "no_samples" and not by["r4"]["at_risk"]
    assert d["at_risk"] == 2 and "c1" not in by
    assert "2 of 4 running jobs at risk" in res.text and "kill in ~" in res.text


@pytest.mark.parametrize("kw,want", [
    ({"project": "ml-team"}, ["r1", "r2", "r4"]),
    ({"user": "alice"}, ["r1", "r4"]),
    ({"queue": "cpu"}, ["r3", "r2"]),
    ({"project": "ml-team", "queue": "cpu"}, ["r2"]),
    ({"top": 1}, ["r1"]),
])
def test_filters(ctx, kw, want):
    res = _run(ctx(), **kw)
    assert [r["job_id"] for r in res.data["jobs"]] == want


def test_scope_shows_only_the_callers_jobs(ctx):
    res = _run(ctx(["ml-team"]))
    assert [r["job_id"] for r in res.data["jobs"]] == ["r1", "r2", "r4"]
    blob = json.dumps(res.model_dump())
    assert "bio" not in blob and "zed" not in blob and "r3" not in blob
    other = _run(ctx(["ml-team"]), project="bio")  # another project looks like none
    assert other.status == "error" and other.error.type == "not_found"
    assert "bio" not in json.dumps(other.error.suggestions or []) and "zed" not in other.text


def test_bad_input_and_no_running_jobs(ctx):
    bad = _run(ctx(), req_mem_mb=4000)
    assert bad.status == "error" and "req_mem_mb" in bad.error.message
    bad = _run(ctx(), job_id="r1")
    assert bad.status == "error" and "job_id" in bad.error.message
    none = _run(ctx(["nobody"]))
    assert none.status in ("no_data", "error")
    empty = _run(ctx(), user="bob", queue="gpu")
    assert empty.status == "no_data" and "No running jobs matching" in empty.text
