"""`jobmedic watch` keeps the models' serving data fresh: after the polls that bring jobs it
runs the same after-load upkeep as `jobmedic ingest` (the GNN serving state brought forward,
then the per-entity summary), so `predict` keeps the GNN + XGBoost ensemble on a watched
cluster; with `live.refresh_every_s` it runs at most that often."""
from __future__ import annotations

import json

import numpy as np
import pytest

from jobmedic.knowledge import entity_summary, gnn_state
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.store import Store
from jobmedic.live.poller import PollResult
from jobmedic.live.rules import RuleSet
from jobmedic.live.sinks import Dispatcher
from jobmedic.live.watch import Watcher
from jobmedic.models import artifacts, training
from jobmedic.models.predictor import predict_one
from jobmedic.models.synthetic import seen_at, synthetic_jobs
from tests.models.helpers import resign
from tests.models.test_gnn_serving import LEVELS, TINY

C = {name: i for i, name in enumerate(JOB_COLUMNS)}


class Polls:
    """A poller that stores the next batch of jobs as a scheduler poll would (new jobs and
    running ones that ended) and reports the newly final ones."""

    def __init__(self, store, batches):
        self.store, self.batches = store, list(batches)

    def poll(self, now=None, since=None):
        rows = self.batches.pop(0) if self.batches else []
        if rows:
            self.store.upsert_jobs(rows)
        final = [r[C["job_id"]] for r in rows if r[C["state"]] != "running"]
        return PollResult(read=len(rows), new_jobs=self.store.live.jobs_by_ids("synth", final))


def _watcher(store, batches, **kw):
    rules = RuleSet({k: {"enabled": False} for k in ("repeat_failures", "node_users", "hotspot",
                                                     "known_fix", "memkill", "changepoint")})
    return Watcher(store, None, Polls(store, batches), rules, Dispatcher(store, []),
                   read_output=False, retention={"enabled": False}, **kw)


@pytest.mark.slow
def test_watch_polls_keep_the_summary_and_the_gnn_state_fresh(tmp_path):
    rows = synthetic_jobs(1800, seed=11)
    sub = np.array([r[C["submit_time"]] for r in rows])
    t1, t2, t3 = (int(np.quantile(sub, f)) for f in (0.8, 0.87, 0.94))
    s = Store(tmp_path / "jm.db")
    s.upsert_jobs(seen_at(rows, t1))
    models = tmp_path / "m"
    training.train(s, "failure", str(models), params={"num_boost_round": 20, "nthread": 1})
    training.train(s, "gnn", str(models), params=TINY)
    d = artifacts.current_dir(models, "gnn")
    meta = json.loads((d / "meta.json").read_text())
    meta["card"]["ensemble_with_xgboost"] = True  # whatever validation said: the path is tested
    (d / "meta.json").write_text(json.dumps(meta))
    resign(models, "gnn")
    w0 = gnn_state.header(s)[1]
    assert entity_summary.watermark(s) == w0
    polls = [seen_at(rows, t2), [], seen_at(rows, t3), list(rows)]
    w = _watcher(s, polls)
    results = [w.step() for _ in polls]
    assert results[1].upkeep is None  # a poll with nothing new does no upkeep
    for r in (results[0], results[2], results[3]):
        assert r.upkeep is not None and r.upkeep["gnn"]["mode"] == "incremental", r.upkeep
        assert r.upkeep["cpu_seconds"] >= 0 and r.upkeep["gnn"]["jobs"] > 0
    top = s.conn.execute("SELECT MAX(end_time) FROM jobs").fetchone()[0]
    wm = entity_summary.watermark(s)
    assert wm == top + 1 and gnn_state.header(s)[1] == wm  # both at the newest job
    assert entity_summary.fresh_at(s, wm + 60)
    spec = {"user": rows[-1][C["user"]], "name": rows[-1][C["name"]], "req_cpus": 8,
            "timelimit_s": 7200}
    out = predict_one(s, spec, int(wm) + 60, str(models), LEVELS)
    assert out["ensemble"]["used"] is True, out["ensemble"]
    # the incremental summary equals one built from scratch
    got = s.conn.execute("SELECT * FROM entity_summary ORDER BY kind, value, agg, pkey").fetchall()
    with s.transaction() as conn:
        conn.execute("DELETE FROM entity_summary_meta")
    entity_summary.refresh(s, build=True)
    want = s.conn.execute("SELECT * FROM entity_summary ORDER BY kind, value, agg, pkey").fetchall()
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a[:4] == b[:4]
        for x, y in zip(a[4:], b[4:]):
            assert x == (pytest.approx(y, rel=1e-9, nan_ok=True) if isinstance(y, float) else y)
    s.close()


def test_refresh_every_s_sets_the_upkeep_cadence(tmp_path):
    rows = sorted(synthetic_jobs(900, seed=3), key=lambda r: r[C["end_time"]])
    s = Store(tmp_path / "jm.db")
    s.upsert_jobs(rows[:600])
    entity_summary.refresh(s, build=True)
    batches = [rows[600:700], rows[700:800], [], rows[800:]]
    w = _watcher(s, batches, refresh_every_s=3600)
    first = w.step()
    assert first.upkeep is not None and first.upkeep["gnn"] is None  # no gnn state here
    w1 = entity_summary.watermark(s)
    assert w1 == rows[699][C["end_time"]] + 1
    assert w.step().upkeep is None and w.step().upkeep is None  # within the hour: later
    assert entity_summary.watermark(s) == w1
    w._upkeep_at -= 3600  # an hour on: the jobs of the polls between come in too
    assert w.step().upkeep is not None
    assert entity_summary.watermark(s) == max(r[C["end_time"]] for r in rows) + 1
    every = _watcher(s, [rows[:5]])  # 0 (the default): after every poll that brought jobs
    assert every.step().upkeep is not None
    with pytest.raises(InputError, match="refresh_every_s"):
        _watcher(s, [], refresh_every_s=-1)
    s.close()
