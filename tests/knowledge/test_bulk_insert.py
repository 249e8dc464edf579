"""upsert_jobs during a bulk load into an empty jobs table: a plain INSERT while no key repeats,
with the same rows, rowids and counts as the upsert statement itself; the upsert otherwise."""
from __future__ import annotations

import sqlite3

import pytest

from jobmedic.knowledge.loads import _upsert_jobs_sql
from jobmedic.knowledge.store import Store

COLS = ("cluster", "job_id", "user", "state", "end_time", "source")


def row(job_id: str, cluster: str = "c", user: str | None = "u", state: str = "completed",
        end: int | None = 100) -> tuple:
    return (cluster, job_id, user, state, end, "test")


def _dump(s: Store) -> list[tuple]:
    return s.conn.execute("SELECT rowid, * FROM jobs ORDER BY rowid").fetchall()


def _reference(batches: list[list[tuple]]) -> tuple[list[tuple], list[tuple[int, int]]]:
    """What the upsert statement alone makes of the batches: rows and (inserted, updated)."""
    s = Store(":memory:")
    counts = []
    for b in batches:
        before = s.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM jobs").fetchone()[0]
        changed = s.conn.executemany(_upsert_jobs_sql(COLS), b).rowcount
        after = s.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM jobs").fetchone()[0]
        counts.append((after - before, changed - (after - before)))
    out = _dump(s)
    s.close()
    return out, counts


def _bulk(batches: list[list[tuple]], s: Store | None = None
          ) -> tuple[list[tuple], list[tuple[int, int]], list[str]]:
    """The batches as run_ingest writes them: indexes dropped, each batch in a transaction."""
    s = s or Store(":memory:")
    s.drop_indexes_of_empty_tables()
    sent: list[str] = []
    s.conn.set_trace_callback(sent.append)
    counts = []
    for b in batches:
        with s.transaction():
            counts.append(s.upsert_jobs(iter(b), COLS))  # any iterable, as before
    s.conn.set_trace_callback(None)
    s.rebuild_indexes()
    out = _dump(s)
    s.close()
    return out, counts, sent


def _upserted(sent: list[str]) -> int:
    """Rows sent through the upsert statement (distinct traced texts: a row whose upsert
    updates can be traced more than once)."""
    return len({q for q in sent if "ON CONFLICT" in q})


@pytest.mark.parametrize("batches,upserted", [
    # a fresh load whose keys never repeat: plain INSERTs only
    ([[row("1"), row("2"), row("3")], [row("0"), row("5")]], 0),
    # a later batch re-sends a job (its final state; a NULL keeps the known user): that
    # batch's INSERT is rolled back and the upsert runs; so do the batches after it
    ([[row("1"), row("2", state="running", end=None)], [row("3"), row("2", user=None)],
      [row("4")]], 3),
    # a key repeated inside the first batch
    ([[row("1"), row("2", state="running", end=None), row("2", user=None, end=50)]], 3),
    # one id in two clusters is two jobs
    ([[row("1"), row("1", cluster="d")], [row("1", cluster="e")]], 0),
])
def test_bulk_load_equals_the_upsert(batches, upserted):
    want_rows, want_counts = _reference(batches)
    got_rows, got_counts, sent = _bulk(batches)
    assert got_rows == want_rows
    assert got_counts == want_counts
    assert _upserted(sent) == upserted


def test_only_into_an_empty_table_and_only_during_the_load():
    s = Store(":memory:")
    s.upsert_jobs([row("1")], COLS)
    s.drop_indexes_of_empty_tables()  # jobs is not empty: nothing dropped, no INSERT path
    assert not s.loads._fresh_jobs
    s2 = Store(":memory:")
    s2.drop_indexes_of_empty_tables()
    assert s2.loads._fresh_jobs
    s2.rebuild_indexes()  # the end of the load
    assert not s2.loads._fresh_jobs
    s.close()
    s2.close()


def test_a_refused_row_raises_as_before_and_the_batch_rolls_back():
    s = Store(":memory:")
    s.drop_indexes_of_empty_tables()
    with s.transaction():
        assert s.upsert_jobs([row("1")], COLS) == (1, 0)
    bad = [row("2"), ("c", "3", "u", None, 1, "test")]  # state is NOT NULL
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL constraint failed: jobs.state"), \
            s.transaction():
        s.upsert_jobs(bad, COLS)
    assert [r[0] for r in s.conn.execute("SELECT job_id FROM jobs")] == ["1"]
    with s.transaction():
        assert s.upsert_jobs([row("2")], COLS) == (1, 0)  # the store is usable after it
    s.rebuild_indexes()
    s.close()


def test_fewer_checkpoints_during_a_bulk_load_only(tmp_path):
    from jobmedic.knowledge.loads import BULK_CHECKPOINT_PAGES

    def pages(s: Store) -> int:
        return s.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]

    s = Store(tmp_path / "a.db")
    assert pages(s) == 1000
    s.drop_indexes_of_empty_tables()
    assert pages(s) == BULK_CHECKPOINT_PAGES
    s.drop_indexes_of_empty_tables()  # again before the end: the interval to restore is kept
    with s.transaction():
        s.upsert_jobs([row("1")], COLS)
    s.rebuild_indexes()
    assert pages(s) == 1000
    s.drop_indexes_of_empty_tables()  # jobs is not empty now: its indexes stay
    s.rebuild_indexes()
    assert pages(s) == 1000
    s.close()
