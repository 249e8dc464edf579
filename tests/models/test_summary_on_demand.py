"""predict brings the per-entity summary up to its moment once when it is missing or behind
(models/features.summary_ready, issue 16) and answers exactly as the slow path (indexed reads of
each entity's history) would; a read-only store, a past moment or a scoped caller keep the
slow path's answers."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from jobmedic.knowledge import entity_summary
from jobmedic.knowledge.store import Store
from jobmedic.models.features import spec_features, summary_ready
from jobmedic.models.predictor import predict_one
from jobmedic.models.synthetic import synthetic_jobs
from tests.models.helpers import build

LEVELS = {"moderate": 0.3, "high": 0.6, "critical": 0.8}
SPEC_KEYS = ("user", "name", "project", "queue", "qos", "image", "req_cpus", "req_gpus",
             "req_mem_mb", "timelimit_s", "n_nodes")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    db, models, _ = build(tmp_path_factory.mktemp("on_demand"))  # training builds the summary
    return db, models


def _top_end(s: Store) -> int:
    return int(s.conn.execute("SELECT MAX(end_time) FROM jobs").fetchone()[0])


def _drop(s: Store) -> None:
    with s.transaction() as conn:
        conn.execute("DROP TABLE entity_summary")
        conn.execute("DROP TABLE entity_summary_meta")


def _later_jobs(s: Store) -> None:
    """Jobs of the same users and names that ended after the summary's watermark."""
    s.upsert_jobs(synthetic_jobs(300, seed=9, start=_top_end(s) + 3600, days=2, first_id=900_000))


def _missing(s: Store) -> int:
    _drop(s)
    return _top_end(s) + 60


def _stale(s: Store) -> int:
    _later_jobs(s)
    return _top_end(s) + 60


def _past(s: Store) -> int:  # an explicit past submit time: the summary serves "now" only
    _drop(s)
    return _top_end(s) - 5 * 86400


# case -> (prepare the store and return `now`, store read-only, scope, refresh mode or None)
CASES = {
    "missing": (_missing, False, None, "rebuild"),
    "stale": (_stale, False, None, "incremental"),
    "missing_read_only": (_missing, True, None, None),
    "stale_read_only": (_stale, True, None, None),
    "past_moment": (_past, False, None, None),
    "missing_scoped": (_missing, False, ["proj1"], "rebuild"),
}


def _specs(s: Store, k: int = 12) -> list[dict]:
    cols = ", ".join(SPEC_KEYS)
    rows = s.conn.execute(f"SELECT {cols} FROM jobs ORDER BY rowid").fetchall()
    pick = np.random.default_rng(3).choice(len(rows), k, replace=False)
    specs = [{c: v for c, v in zip(SPEC_KEYS, rows[i]) if v is not None} for i in pick]
    specs[0]["user"] = "nobody"  # a cold start among them
    return specs


def _answers(s: Store, specs: list[dict], now: int, models, scope) -> list[str]:
    return [json.dumps(predict_one(s, sp, now, str(models), LEVELS, scope), sort_keys=True)
            for sp in specs]


@pytest.mark.parametrize("case", list(CASES))
def test_predict_brings_the_summary_up_to_its_moment_once(trained, tmp_path, case):
    prepare, read_only, scope, mode = CASES[case]
    db, models = trained
    shutil.copy(db, tmp_path / "s.db")
    s = Store(tmp_path / "s.db")
    now = prepare(s)
    before = entity_summary.watermark(s)
    assert not entity_summary.fresh_at(s, now)
    specs = _specs(s)
    slow_x = [spec_features(s, sp, now, scope)[0] for sp in specs]  # not fresh: the jobs
    s.conn.execute("PRAGMA query_only = ON")  # the slow path's whole answers, nothing written
    slow = _answers(s, specs, now, models, scope)
    assert entity_summary.watermark(s) == before
    if not read_only:
        s.conn.execute("PRAGMA query_only = OFF")
    if mode is not None:  # the first call of a writable store: exactly one refresh
        done = summary_ready(s, now)
        assert done is not None and done["mode"] == mode
        assert entity_summary.fresh_at(s, now)
        assert summary_ready(s, now) is None  # serves `now` now: nothing more to do
    got = _answers(s, specs, now, models, scope)
    assert got == slow
    for sp, x in zip(specs, slow_x):
        np.testing.assert_allclose(spec_features(s, sp, now, scope)[0], x, rtol=1e-9, atol=1e-9,
                                   equal_nan=True)
    assert entity_summary.fresh_at(s, now) == (mode is not None)
    if mode is None:
        assert entity_summary.watermark(s) == before  # read-only or a past moment: untouched
    s.close()


def test_predict_builds_the_missing_summary_itself(trained, tmp_path):
    """Through predict_one alone (no separate summary_ready call): the first call builds it."""
    db, models = trained
    shutil.copy(db, tmp_path / "s.db")
    s = Store(tmp_path / "s.db")
    now = _missing(s)
    assert entity_summary.watermark(s) is None
    predict_one(s, _specs(s, 1)[0], now, str(models), LEVELS)
    assert entity_summary.fresh_at(s, now)
    s.close()


def test_a_failed_refresh_is_not_retried_on_every_call(trained, tmp_path, monkeypatch):
    """A refresh that fails (a writer holding the lock, a read-only file) leaves the slow path,
    and the next calls within RETRY_S do not try again."""
    import sqlite3
    import time

    from jobmedic.models import features

    db, _ = trained
    shutil.copy(db, tmp_path / "s.db")
    s = Store(tmp_path / "s.db")
    now = _missing(s)
    calls = []

    def locked(store, build=False):
        calls.append(build)
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(entity_summary, "refresh", locked)
    assert summary_ready(s, now) is None
    assert summary_ready(s, now) is None
    assert calls == [True]
    monkeypatch.undo()  # the real refresh again, once the retry window has passed
    features._REFRESH_FAILED[s] = time.monotonic() - features.RETRY_S - 1
    assert summary_ready(s, now)["mode"] == "rebuild"
    s.close()
