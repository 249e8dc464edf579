"""The entity summary's change check in proportion to the load (knowledge/entity_summary.py):
triggers log in-place updates and deletes below the watermark, new rows are found above the
last refresh's rowid, so an incremental refresh reads no job below its watermark; every change
that matters still turns the refresh into a rebuild, and the rows equal a from-scratch build."""
from __future__ import annotations

import numpy as np
import pytest

from jobmedic.knowledge import entity_summary
from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.store import Store
from jobmedic.models.synthetic import synthetic_jobs

C = {c: i for i, c in enumerate(JOB_COLUMNS)}


def _rows(s: Store) -> list[tuple]:
    return s.conn.execute("SELECT * FROM entity_summary ORDER BY kind, value, agg, pkey").fetchall()


def _equals_a_rebuild(s: Store) -> None:
    got = _rows(s)
    with s.transaction() as conn:
        conn.execute("DELETE FROM entity_summary_meta")
    entity_summary.refresh(s, build=True)
    want = _rows(s)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a[:4] == b[:4]
        for x, y in zip(a[4:], b[4:]):
            if isinstance(x, float) or isinstance(y, float):
                assert x == pytest.approx(y, rel=1e-9, nan_ok=True)
            else:
                assert x == y


@pytest.fixture
def store(tmp_path):
    rows = synthetic_jobs(1200, seed=21)
    order = np.argsort([r[C["end_time"]] for r in rows], kind="stable")
    s = Store(tmp_path / "s.db")
    s.upsert_jobs([rows[i] for i in order[:800]])
    entity_summary.refresh(s, build=True)
    yield s, rows, order
    s.close()


def _no_scan(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the checksum of every job below the watermark was read")
    monkeypatch.setattr(entity_summary, "_checksum", boom)


def test_new_loads_are_checked_without_reading_the_jobs_below(store, monkeypatch):
    s, rows, order = store
    with monkeypatch.context() as m:
        _no_scan(m)
        s.upsert_jobs([rows[i] for i in order[800:1000]])
        got = entity_summary.refresh(s)
        assert got["mode"] == "incremental" and got["jobs"] == 200
        again = entity_summary.refresh(s)
        assert again["mode"] == "incremental" and again["jobs"] == 0
    # the check's queries: a rowid range and the end-time index, never a scan of jobs
    plans = [" ".join(r[3] for r in s.conn.execute("EXPLAIN QUERY PLAN " + q, p))
             for q, p in (((f"SELECT 1 FROM jobs WHERE rowid > ? AND end_time < ? AND +state IN "
                           f"({entity_summary._STATES}) LIMIT 1"), (1, 2.0)),
                          ((f"SELECT COUNT(*) FROM jobs WHERE end_time >= ? AND end_time < ? AND "
                           f"+state IN ({entity_summary._STATES})"), (1.0, 2.0)))]
    assert "rowid>?" in plans[0] and "jobs_end" in plans[1] and "SCAN" not in " ".join(plans)
    meta = s.conn.execute("SELECT n_ended, n_failed, sum_elapsed FROM entity_summary_meta").fetchone()
    full = entity_summary._checksum(s, entity_summary.watermark(s))
    assert meta[:2] == full[:2] and meta[2] == pytest.approx(full[2], rel=1e-12)
    _equals_a_rebuild(s)


@pytest.mark.parametrize("change", ["state", "runtime", "delete", "late", "above"])
def test_changes_below_the_watermark_rebuild(store, change):
    s, rows, order = store
    w = entity_summary.watermark(s)
    below = next(rows[i] for i in order[:800] if rows[i][C["end_time"]] < w - 10)
    if change == "state":  # a re-read with another final state
        r = list(below)
        r[C["state"]] = "completed" if r[C["state"]] != "completed" else "failed"
        s.upsert_jobs([tuple(r)])
    elif change == "runtime":
        r = list(below)
        r[C["elapsed_s"]] = (r[C["elapsed_s"]] or 0) + 17.0
        s.upsert_jobs([tuple(r)])
    elif change == "delete":
        with s.transaction() as conn:
            conn.execute("DELETE FROM jobs WHERE cluster = ? AND job_id = ?",
                         (below[C["cluster"]], below[C["job_id"]]))
    elif change == "late":  # a new row that ended long ago
        r = list(below)
        r[C["job_id"]] = "late-1"
        s.upsert_jobs([tuple(r)])
    else:  # the same values re-read, and jobs above the watermark: no rebuild
        s.upsert_jobs([below] + [rows[i] for i in order[800:900]])
    got = entity_summary.refresh(s)
    assert got["mode"] == ("incremental" if change == "above" else "rebuild"), got
    # the log is cleared: the next refresh with nothing new is incremental
    assert entity_summary.refresh(s)["mode"] == "incremental"
    _equals_a_rebuild(s)


def test_a_summary_without_the_log_checks_by_the_checksum_once(store):
    s, rows, order = store
    with s.transaction() as conn:  # as built by jobmedic before the log
        conn.execute("DROP TRIGGER entity_summary_jobs_update")
        conn.execute("DROP TRIGGER entity_summary_jobs_delete")
        conn.execute("DROP TABLE entity_summary_track")
    s.upsert_jobs([rows[i] for i in order[800:]])
    assert entity_summary.refresh(s)["mode"] == "incremental"
    assert s.conn.execute("SELECT max_rowid, dirty FROM entity_summary_track").fetchone() == (
        s.conn.execute("SELECT MAX(rowid) FROM jobs").fetchone()[0], 0)
    _equals_a_rebuild(s)
