"""The server's StorePool brings the per-entity summary up to date when it opens a writable
store with trained models (server/pool.summary_at_open), so the first predict request does not
build it; a store without models or one it may not write is left alone and still answers."""
from __future__ import annotations

import logging
import os
import shutil
import sqlite3

import pytest
from fastapi.testclient import TestClient

from jobmedic.knowledge import entity_summary
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import ENDED_STATES
from jobmedic.models.synthetic import synthetic_jobs
from jobmedic.server import create_app, pool
from jobmedic.settings import Settings
from tests.models.helpers import build


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    db, models, _ = build(tmp_path_factory.mktemp("at_open"), kinds=("failure",))
    return db, models


def _drop(s: Store) -> None:
    with s.transaction() as conn:
        conn.execute("DROP TABLE entity_summary")
        conn.execute("DROP TABLE entity_summary_meta")


def _later(s: Store) -> None:
    """Jobs that ended after the summary's watermark: it is behind."""
    top = int(s.conn.execute("SELECT MAX(end_time) FROM jobs").fetchone()[0])
    s.upsert_jobs(synthetic_jobs(300, seed=9, start=top + 3600, days=2, first_id=900_000))


def _meta(path) -> tuple | None:
    with Store(path, migrate=False) as s:
        if entity_summary.watermark(s) is None:
            return None
        return tuple(s.conn.execute("SELECT * FROM entity_summary_meta").fetchone())


# case -> (prepare the store, with the models, read-only, summary watermark after open: None
# for none, "newest" for the newest ended job + 1)
CASES = {
    "no_models": (_drop, False, False, None),
    "models_no_summary": (_drop, True, False, "newest"),
    "models_summary_behind": (_later, True, False, "newest"),
    "read_only": (_drop, True, True, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_summary_at_open(case, trained, tmp_path, monkeypatch, taxonomy):
    prepare, with_models, read_only, want = CASES[case]
    db, models = trained
    path = tmp_path / "s.db"
    shutil.copy(db, path)
    with Store(path) as s:
        prepare(s)
        states = ", ".join(f"'{x}'" for x in ENDED_STATES)
        newest = float(s.conn.execute(f"SELECT MAX(end_time) FROM jobs WHERE end_time IS NOT NULL "
                                      f"AND state IN ({states})").fetchone()[0])
        user, name = s.conn.execute("SELECT user, name FROM jobs LIMIT 1").fetchone()
    if read_only:  # what a user who may not write the file sees (root may write any file)
        real = os.access
        monkeypatch.setattr(pool.os, "access", lambda p, mode: False if mode == os.W_OK and
                            str(p) == str(path) else real(p, mode))
    settings = Settings(db=str(path), models={"dir": str(models if with_models else tmp_path / "none")})
    app = create_app(settings, taxonomy=taxonomy, assistant_factory=None)
    at_open = _meta(path)
    if want is None:
        assert at_open is None, "the summary was built at open"
    else:
        assert at_open is not None and at_open[1] == newest + 1  # up to the newest ended job
    with TestClient(app) as c:
        r = c.post("/v1/actions", json={"action": "predict", "user": user, "name": name,
                                        "req_cpus": 4})
        if with_models:
            assert r.status_code == 200 and r.json()["status"] == "ok", r.text
        else:  # nothing to predict with: the model error as before
            assert r.status_code == 503 and r.json()["error"]["type"] == "model_error", r.text
        assert c.get("/healthz").json()["status"] == "ok"
    if want is not None:  # the request found it up to date: nothing rebuilt inside it
        assert _meta(path) == at_open


def test_a_failed_refresh_is_logged_and_the_pool_opens(trained, tmp_path, caplog):
    """Another writer holding the store past the busy timeout: the refresh at open fails, is
    logged, and the pool still opens (predict falls back as before)."""
    db, models = trained
    path = tmp_path / "s.db"
    shutil.copy(db, path)
    with Store(path) as s:
        _drop(s)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with caplog.at_level(logging.WARNING, logger="jobmedic.server"):
            p = pool.StorePool(path, busy_timeout_ms=100, models_dir=models)
        assert p.summary_at_open["mode"] == "failed"
        assert "per-entity summary" in caplog.text and "locked" in caplog.text
        assert p.get().conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] > 0
        p.close()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert _meta(path) is None
