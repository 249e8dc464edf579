"""Walk-forward refitting of the runtime model (models/runtime_walk.py, `evaluate runtime
--refit-every`): it beats a single fit on a store with planted drift, a model refitted at STEP
sees no job submitted at or after STEP nor the end of a job still running then, and the CLI
reports both side by side."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.store import Store
from jobmedic.main import app
from jobmedic.models import registry, runtime_walk, training
from jobmedic.models.synthetic import seen_at

DAY = 86400
T0 = 1_700_000_000
SMALL = {"num_boost_round": 40, "eta": 0.3, "max_depth": 3, "nthread": 1}


def drifting_jobs(n: int = 2400, days: int = 60, seed: int = 3) -> list[tuple]:
    """Completed jobs, each from a new user and job name (no history to adapt through), whose
    runtime is 300 s x CPUs, eight times that for the jobs submitted from day `days` - 19 on:
    only a refit learns the new level. The time limit (30 days) says nothing about it."""
    rng = np.random.default_rng(seed)
    sub = np.sort(T0 + rng.uniform(0, days * DAY, n)).astype(np.int64)
    cpus = rng.choice([1, 2, 4, 8, 16, 32], n)
    level = np.where(sub >= T0 + (days - 19) * DAY, 8.0, 1.0)
    rt = (300 * cpus * level * np.exp(rng.normal(0, 0.2, n))).astype(np.int64)
    rows = []
    for i in range(n):
        v = {"cluster": "drift", "job_id": str(i), "name": f"n{i}", "user": f"u{i}",
             "project": "p", "queue": "normal", "qos": "normal", "state": "completed",
             "raw_state": "COMPLETED", "exit_code": 0, "submit_time": int(sub[i]),
             "start_time": int(sub[i]) + 60, "end_time": int(sub[i]) + 60 + int(rt[i]),
             "elapsed_s": int(rt[i]), "timelimit_s": 30 * DAY, "req_cpus": int(cpus[i]),
             "req_gpus": 0, "req_mem_mb": 4096.0, "max_rss_mb": 1000.0, "n_nodes": 1,
             "source": "synthetic"}
        rows.append(tuple(v.get(c) for c in JOB_COLUMNS))
    return rows


@pytest.fixture(scope="module")
def drift_store():
    s = Store()
    s.upsert_jobs(drifting_jobs())
    return s


def test_walk_forward_beats_a_single_fit_under_drift(drift_store):
    start = T0 + 40 * DAY
    res = runtime_walk.walk_forward(drift_store, start, None, 5 * DAY, params=SMALL)
    win = runtime_walk.walk_forward(drift_store, start, None, 5 * DAY, window=10 * DAY,
                                    params=SMALL)
    static, walk, walk_w = (res["static"]["model"]["mae"], res["refit"]["model"]["mae"],
                            win["refit"]["model"]["mae"])
    assert res["refit"]["n"] == res["static"]["n"] == win["refit"]["n"] > 700
    assert walk < 0.9 * static         # refitted on all history: the level moves up
    assert walk_w < 0.5 * static       # on the trailing 10 days: it follows the level
    # the static median is far too low (almost no runtime at or below it); refits come back
    assert res["static"]["model"]["coverage"]["q0.5"] < 0.1
    assert res["refit"]["model"]["coverage"]["q0.5"] > 0.2
    assert win["refit"]["model"]["coverage"]["q0.5"] > 0.35
    # a refit every 5 days from day 40 of 60: four training runs, each scoring its own period
    # the recalibrated replay allocates the kill budget with each period's model's scale
    assert res["refit"]["recalibrated_daily"]["walltime_recommendation"]["rule"] == "allocated"
    # the static tables' row is what predict serves, with its rule, mean budget and net saving
    for key in ("refit", "static"):
        st = res[key]["model"]["walltime_recommendation"]
        assert st["rule"] == "allocated" and 0.001 <= st["mean_budget"] <= 0.1
        assert st["core_hours_saved_net_of_retries_share"] is not None
    w = res["walk_forward"]
    assert [r["until"] for r in w["refits"]] == [training._iso(start + k * 5 * DAY) for k in range(4)]
    assert sum(r["scored"] for r in w["refits"]) == res["refit"]["n"]
    # the trailing window trains on fewer jobs than all history
    assert all(a["fit"] < b["fit"] for a, b in zip(win["walk_forward"]["refits"][1:], w["refits"][1:]))


def test_a_refit_at_step_sees_nothing_at_or_after_step(tmp_path, drift_store):
    rows = drifting_jobs()
    step = T0 + 45 * DAY
    later = Store()  # the full history: jobs after STEP, and the ends of jobs running at STEP
    later.upsert_jobs(rows)
    then = Store()  # what a poll at STEP saw: what a cron's `train --until STEP` would have
    then.upsert_jobs(seen_at(rows, step))
    c1 = training.train(later, "runtime", str(tmp_path / "a"), until=step, params=SMALL)
    c2 = training.train(then, "runtime", str(tmp_path / "b"), until=step, params=SMALL)
    m1, _ = registry.load(tmp_path / "a", "runtime")
    m2, _ = registry.load(tmp_path / "b", "runtime")
    sub = np.array([r[JOB_COLUMNS.index("submit_time")] for r in rows])
    end = np.array([r[JOB_COLUMNS.index("end_time")] for r in rows])
    assert c1["counts"] == c2["counts"]
    assert c1["counts"]["fit"] + c1["counts"]["calibration"] == int(((sub < step) & (end < step)).sum())
    assert ((sub < step) & (end >= step)).sum() > 0  # some were running at STEP
    frame = training.load(later)
    X = m1.inputs(frame, np.arange(len(rows)))
    np.testing.assert_array_equal(m1._raw(X), m2._raw(X))  # the same booster ...
    assert m1.shift_ == m2.shift_ and m1.budget_ == m2.budget_  # ... and conformal tables
    assert c1["global_median_s"] == c2["global_median_s"]
    # and walk_forward's refits count exactly those labels
    res = runtime_walk.walk_forward(later, step, step + 10 * DAY, 5 * DAY, params=SMALL)
    for r in res["walk_forward"]["refits"]:
        u = int(np.datetime64(r["until"].rstrip("Z")).astype("datetime64[s]").astype(int))
        assert r["fit"] + r["calibration"] == int(((sub < u) & (end < u)).sum())


def test_spans_and_bad_input():
    assert runtime_walk.span("7d", "--x") == 7 * DAY
    assert runtime_walk.span("36h", "--x") == 36 * 3600
    assert runtime_walk.span("2w", "--x") == 14 * DAY
    assert runtime_walk.span("30", "--x") == 30 * DAY
    for bad in ("soon", "-3d", "0"):
        with pytest.raises(ModelError):
            runtime_walk.span(bad, "--refit-every")
    with pytest.raises(ModelError, match="shorter than an hour"):
        runtime_walk.steps(0, 10 * DAY, 60)
    with pytest.raises(ModelError, match="empty"):
        runtime_walk.steps(10, 10, DAY)


def test_cli_walk_forward_and_trailing_window(tmp_path):
    db = tmp_path / "jm.db"
    s = Store(db)
    s.upsert_jobs(drifting_jobs(1200, days=40))
    s.close()
    r = CliRunner()
    start = str(T0 + 30 * DAY)
    out = r.invoke(app, ["--db", str(db), "evaluate", "runtime", "--from", start,
                         "--refit-every", "5d", "--window", "10d", "--param", "nthread=1",
                         "--param", "num_boost_round=20", "--json"])
    assert out.exit_code == 0, out.output
    import json

    res = json.loads(out.stdout)  # progress lines go to stderr
    assert "refit until" in out.stderr
    assert res["walk_forward"]["every_s"] == 5 * DAY and res["walk_forward"]["window_s"] == 10 * DAY
    assert len(res["walk_forward"]["refits"]) == 2
    assert not (tmp_path / "jm.db.models" / "runtime").exists()  # no current artifact written
    md = r.invoke(app, ["--db", str(db), "evaluate", "runtime", "--from", start,
                        "--refit-every", "10d", "--param", "num_boost_round=20"])
    assert md.exit_code == 0, md.output
    assert "walk-forward" in md.output and "static (first step only)" in md.output
    bad = r.invoke(app, ["--db", str(db), "evaluate", "failure", "--from", start, "--refit-every", "7d"])
    assert bad.exit_code == 2 and "runtime model" in bad.output
    bad = r.invoke(app, ["--db", str(db), "evaluate", "runtime", "--from", start, "--refit-every", "1m"])
    assert bad.exit_code == 2 and "shorter than an hour" in bad.output
    # train --window: only the trailing span's jobs are labels
    tr = r.invoke(app, ["--db", str(db), "train", "runtime", "--until", start, "--window", "10d",
                        "--param", "num_boost_round=20"])
    assert tr.exit_code == 0, tr.output
    card = registry.load(tmp_path / "jm.db.models", "runtime")[1]["card"]
    assert card["window"]["train_from"] == training._iso(T0 + 20 * DAY)
    n = card["counts"]["fit"] + card["counts"]["calibration"]
    assert 250 < n < 330  # about 10 of the 40 days' 1,200 jobs
