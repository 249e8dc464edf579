"""The change-point rule (live/changepoint.py): the detector on series with and without a step
(binomial noise, over-dispersed noise, steps up and down, too few counts), the rule on a store
through the alert engine (fire, quiet refresh, resolve; per project in scope), its settings,
and `jobmedic watch --once` raising it on a store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jobmedic.knowledge.errors import InputError
from jobmedic.live.alerting import AlertEngine
from jobmedic.live.changepoint import detect, threshold_for, validate
from jobmedic.live.rules import RuleSet

B = 48  # two days of hourly buckets, the default window


def _noise(seed, n, p, over=None):
    """B buckets of about n jobs at rate p; `over` draws each bucket's rate from a beta with
    that concentration (failures that come in bursts: over-dispersed)."""
    rng = np.random.default_rng(seed)
    jobs = rng.poisson(n, B)
    rate = rng.beta(p * over, (1 - p) * over, B) if over else np.full(B, p)
    return jobs.tolist(), rng.binomial(jobs, rate).tolist()


def _step(seed, n, p, factor, last):
    """B buckets at rate p, the `last` ones at p * factor."""
    rng = np.random.default_rng(seed)
    jobs = rng.poisson(n, B)
    rate = np.full(B, p)
    rate[B - last:] *= factor
    return jobs.tolist(), rng.binomial(jobs, rate).tolist()


# (case, series, the first bucket of the step or None for no alert)
CASES = [
    *[(f"binomial noise n=100 p=5% seed {s}", _noise(s, 100, 0.05), None) for s in range(10)],
    *[(f"binomial noise n=1400 p=6% seed {s}", _noise(s, 1400, 0.06), None) for s in range(10)],
    *[(f"sparse noise n=30 p=10% seed {s}", _noise(s, 30, 0.10), None) for s in range(10)],
    *[(f"bursty noise n=1400 p=6% seed {s}", _noise(s, 1400, 0.06, over=20), None)
      for s in range(10)],
    ("a step down (fewer failures)", _step(1, 200, 0.15, 1 / 3, 8), None),
    ("a big cluster, 4.0% -> 4.4% (significant, but under min_ratio)",
     _step(2, 100_000, 0.04, 1.1, 12), None),
    ("3 failures in the last hour after none (under min_failures)",
     ([100] * 47 + [20], [0] * 47 + [3]), None),
    ("nothing but completions", ([50] * B, [0] * B), None),
    ("an empty window", ([0] * B, [0] * B), None),
    ("5% -> 15% over the last 6 hours, n=100", _step(3, 100, 0.05, 3, 6), B - 6),
    ("6% -> 15% in the last 2 hours, n=1400", _step(4, 1400, 0.06, 2.5, 2), B - 2),
    ("2% -> 10% for the last 12 hours, n=5000", _step(5, 5000, 0.02, 5, 12), B - 12),
    ("0% -> 20% in the last hour, n=100", ([100] * 47 + [100], [0] * 47 + [20]), B - 1),
]


@pytest.mark.parametrize(("case", "series", "split"), CASES, ids=[c[0] for c in CASES])
def test_detector_alerts_on_a_step_and_not_on_noise(case, series, split):
    jobs, fails = series
    step = detect(jobs, fails)  # the default thresholds
    if split is None:
        assert step is None, (case, step)
        return
    assert step is not None, case
    assert abs(step.split - split) <= 1, (case, step)  # found where it happened, give or take
    assert step.rate_after > 1.5 * step.rate_before and step.stat >= step.threshold


def test_bursty_noise_needs_the_dispersion_correction():
    """Without the quasi-binomial correction the same bursty series would alert: the
    correction is what keeps it quiet, not a lack of power."""
    jobs, fails = _noise(0, 1400, 0.06, over=20)
    step = detect(jobs, fails)
    assert step is None
    loud = [detect(*_noise(s, 1400, 0.06, over=20), threshold=1e-9) for s in range(10)]
    assert any(s is not None and s.dispersion > 5 for s in loud)


def test_threshold_is_the_bonferroni_chi_square_quantile():
    assert threshold_for(0.05, 1) == pytest.approx(3.8415, abs=1e-3)  # chi2(1) 95 %
    assert threshold_for(0.001, 47) == pytest.approx(18.11, abs=0.05)
    jobs, fails = _step(3, 100, 0.05, 3, 6)
    assert detect(jobs, fails, threshold=1e6) is None  # an explicit threshold overrides alpha


def test_settings_are_checked():
    assert validate({})["bucket_s"] == 3600
    for bad, word in (({"by": "node"}, "cluster or project"), ({"alpha": 2}, "alpha"),
                      ({"window_s": 3600}, "two buckets"), ({"min_ratio": 0.5}, "min_ratio"),
                      ({"min_jobs": "many"}, "not a number"), ({"windw_s": 1}, "unknown")):
        with pytest.raises(InputError, match=word):
            validate(bad)
    with pytest.raises(InputError, match="cluster or project"):
        RuleSet({"changepoint": {"by": "node"}})


# -- the rule on a store -------------------------------------------------------------------
NOW = 1_800_000_000 // 3600 * 3600 + 1800  # half past an hour
COLS = ("cluster", "job_id", "name", "user", "project", "state", "failure_type", "blame",
        "submit_time", "end_time", "source")


def _load(store, now, projects=("ml",), per_hour=40, base=0.05, high=0.30, last=3, seed=0):
    """48 h of jobs per project; the failure rate is `high` in the last `last` hours for the
    first project only."""
    rng = np.random.default_rng(seed)
    rows = []
    for pi, proj in enumerate(projects):
        for h in range(B):
            t0 = now - (B - h) * 3600
            p = high if pi == 0 and h >= B - last else base
            for i in range(per_hour):
                t = t0 + int(rng.integers(0, 3600))
                failed = rng.random() < p
                rows.append(("c1", f"{proj}-{h}-{i}", f"job-{proj}-{h}-{i}", f"u{i % 7}", proj,
                             "failed" if failed else "completed", "oom" if failed else None,
                             "job" if failed else None, t - 600, t, "slurm"))
    store.upsert_jobs(rows, columns=COLS)


def _only_changepoint(**cp):
    return RuleSet({"repeat_failures": {"enabled": False}, "node_users": {"enabled": False},
                    "hotspot": {"enabled": False}, "known_fix": {"enabled": False},
                    "memkill": {"enabled": False}, "changepoint": cp})


def _run(store, rules, engine, now):
    cands, ran = rules.evaluate(store, now)
    return engine.apply(cands, ran, now)


def test_rule_fires_once_on_a_step_and_resolves(store):
    _load(store, NOW)
    rules, engine = _only_changepoint(), AlertEngine(store, cooldown_s=1800)
    r = _run(store, rules, engine, NOW)
    assert (r.opened, [n.event for n in r.notices]) == (1, ["fire"])
    a = r.notices[0].to_dict()
    assert a["rule"] == "changepoint" and a["subject"] == "rate:cluster"
    assert a["cluster"] == "c1" and a["project"] is None  # a cluster: unscoped callers only
    assert "failure rate of cluster c1 rose from" in a["text"] and a["failure_type"] == "oom"
    assert a["job_ids"] and all(int(j.split("-")[1]) >= B - 4 for j in a["job_ids"])  # the step
    # polls a minute later: the same step, refreshed quietly
    r = _run(store, rules, engine, NOW + 60)
    assert (r.opened, r.notices) == (0, [])
    # three days on, nothing in the window: resolved, and said so
    r = _run(store, rules, engine, NOW + 3 * 86400)
    assert r.resolved == 1 and [n.event for n in r.notices] == ["resolve"]


def test_rule_stays_quiet_without_a_step(store):
    _load(store, NOW, high=0.05)
    r = _run(store, _only_changepoint(), AlertEngine(store), NOW)
    assert (r.opened, r.notices) == (0, [])


def test_rule_per_project_is_scoped(store):
    _load(store, NOW, projects=("ml", "bio"))
    r = _run(store, _only_changepoint(by="project"), AlertEngine(store), NOW)
    assert [n.alert["subject"] for n in r.notices] == ["rate:project:ml"]
    assert r.notices[0].alert["project"] == "ml"
    assert [a["subject"] for a in store.live.list_alerts(["ml"])] == ["rate:project:ml"]
    assert store.live.list_alerts(["bio"]) == []


def test_rule_runs_at_most_every_every_s(store):
    _load(store, NOW)
    rules = _only_changepoint(every_s=600)
    assert "changepoint" in rules.evaluate(store, NOW)[1]
    assert "changepoint" not in rules.evaluate(store, NOW + 60)[1]  # skipped: resolves nothing
    assert "changepoint" in rules.evaluate(store, NOW + 600)[1]


def test_watch_once_raises_the_change_point_on_a_store(tmp_path):
    """`jobmedic watch --once` over a store holding a step, with a `sacct` on PATH that has
    nothing new: the alert comes from the rule alone, and `jobmedic alerts` lists it."""
    from jobmedic.knowledge.store import Store

    db = tmp_path / "w.db"
    now = int(time.time())
    with Store(db) as s:
        _load(s, now)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "sacct").write_text("#!/bin/sh\necho 'JobID|JobIDRaw|JobName|State|End'\n")
    (bin_ / "sacct").chmod(0o755)
    cfg = tmp_path / "jm.yaml"
    cfg.write_text("live:\n  read_output: false\n  alerts:\n"
                   "    repeat_failures: {enabled: false}\n    hotspot: {enabled: false}\n"
                   "    known_fix: {enabled: false}\n    memkill: {enabled: false}\n"
                   "    changepoint: {min_jobs: 30, alpha: 0.001}\n")
    env = {**os.environ, "JOBMEDIC_DB": str(db),
           "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}
    exe = Path(sys.executable).with_name("jobmedic")
    out = tmp_path / "a.jsonl"
    proc = subprocess.run([str(exe), "--config", str(cfg), "watch", "--once",
                           "--sink", f"jsonl:{out}"], check=False, capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    fired = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [(a["rule"], a["event"]) for a in fired] == [("changepoint", "fire")], fired
    listed = subprocess.run([str(exe), "alerts", "--json"], check=True, capture_output=True,
                            text=True, env=env, timeout=120).stdout
    assert [a["rule"] for a in json.loads(listed)] == ["changepoint"]
    # a bad setting stops watch before it polls, naming the setting
    cfg.write_text("live:\n  alerts:\n    changepoint: {by: node}\n")
    bad = subprocess.run([str(exe), "--config", str(cfg), "watch", "--once"], check=False,
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "cluster or project" in bad.stderr


def _agg(rows):
    out = {}
    for cluster, project, i, n, k in rows:
        a, b = out.get((cluster, project, i), (0, 0))
        out[(cluster, project, i)] = (a + n, b + k)
    return out


def test_the_cached_series_is_the_series(store):
    """Polls every 10 minutes for 3 hours with jobs arriving: the series the cache assembles
    (settled buckets held, the newest read) is the series a fresh read gives, and so are the
    alerts; a job a late load puts into a settled bucket counts after `refresh_s`."""
    from jobmedic.live.changepoint import SKEW_S, SeriesCache, changepoint

    _load(store, NOW)
    cache = SeriesCache()
    rng = np.random.default_rng(5)
    for k in range(18):
        now = NOW + k * 600
        rows = [("c1", f"live-{k}-{i}", "live", "u1", "ml",
                 "failed" if rng.random() < 0.3 else "completed", "oom", "job",
                 now - 900, now - int(rng.integers(0, 400)), "slurm") for i in range(20)]
        store.upsert_jobs(rows, columns=COLS)
        since = (now - 2 * 86400) // 3600 * 3600
        cached = cache.rows(store, since, now, 3600, "cluster", 900, 3600)
        fresh = store.live.failure_series(since, now + SKEW_S, 3600, "cluster")
        assert _agg(cached) == _agg(fresh), k
        assert [c.text for c in changepoint(store, now, {}, cache)] == \
               [c.text for c in changepoint(store, now, {})]
    # a late job in a settled bucket (five hours ago): not counted until the refresh (the
    # last one was at poll 12, NOW + 2 h)
    now = NOW + 17 * 600 + 60
    store.upsert_jobs([("c1", "late-1", "late", "u1", "ml", "failed", "oom", "job",
                        now - 5 * 3600 - 600, now - 5 * 3600, "slurm")], columns=COLS)
    since = (now - 2 * 86400) // 3600 * 3600
    fresh = _agg(store.live.failure_series(since, now + SKEW_S, 3600, "cluster"))
    assert _agg(cache.rows(store, since, now, 3600, "cluster", 900, 3600)) != fresh
    later = now + 3600  # the hourly refresh re-reads every bucket
    since = (later - 2 * 86400) // 3600 * 3600
    assert _agg(cache.rows(store, since, later, 3600, "cluster", 900, 3600)) == \
        _agg(store.live.failure_series(since, later + SKEW_S, 3600, "cluster"))
