"""The store core: migrations, WAL, atomic transactions, upsert semantics, scope."""
from __future__ import annotations

import sqlite3

import pytest

from jobmedic.ingest.base import job_tuple
from jobmedic.knowledge.errors import SchemaTooNew
from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.store import SCHEMA_VERSION, Store, scope_clause


def job(**kw):
    base = {"cluster": "c", "job_id": "1", "state": "running", "source": "test", "project": "p"}
    base.update(kw)
    return job_tuple(base)


def test_migrations_create_schema_and_are_idempotent(file_store):
    assert file_store.schema_version == SCHEMA_VERSION
    assert file_store.migrate() == SCHEMA_VERSION
    cols = [r[1] for r in file_store.conn.execute("PRAGMA table_info(jobs)")]
    assert set(JOB_COLUMNS) <= set(cols)
    tables = {r[0] for r in file_store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "job_nodes", "failure_events", "failure_solutions", "solution_outcomes",
            "rejects"} <= tables


def test_wal_and_busy_timeout(file_store):
    assert file_store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert file_store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_refuses_newer_schema(tmp_path):
    p = tmp_path / "new.db"
    con = sqlite3.connect(p)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    con.close()
    with pytest.raises(SchemaTooNew, match="newer"):
        Store(p)


def test_upsert_inserts_updates_and_keeps_known_values(store):
    assert store.upsert_jobs([job(user="alice", req_mem_mb=100.0)]) == (1, 0)
    assert store.upsert_jobs([job(user="alice", req_mem_mb=100.0)]) == (0, 0)  # identical
    # The final state replaces the running one; a None does not erase what was known.
    assert store.upsert_jobs([job(state="failed", exit_code=1, user=None)]) == (0, 1)
    row = store.get_job("1")
    assert row["state"] == "failed" and row["user"] == "alice" and row["req_mem_mb"] == 100.0


def test_transaction_rolls_back_on_error(store):
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_jobs([job(job_id="a"), job(job_id="b")])
        raise RuntimeError("crash mid-batch")
    assert store.table_counts()["jobs"] == 0


def test_scope_clause():
    assert scope_clause(None) == ("1", [])
    assert scope_clause([]) == ("0", [])
    sql, params = scope_clause(["a", "b"], "j.project")
    assert sql == "j.project IN (?, ?)" and params == ["a", "b"]


def test_known_and_resolve_respect_scope(store):
    from jobmedic.knowledge.errors import NotFound

    store.upsert_jobs([job(job_id="1", project="ml-team"), job(job_id="2", project="research")])
    assert store.known("project") == ["ml-team", "research"]
    assert store.known("project", ["ml-team"]) == ["ml-team"]
    assert store.resolve("project", "ML-Team") == "ml-team"
    with pytest.raises(NotFound) as ei:
        store.resolve("project", "ml-teem")
    assert ei.value.closest == ["ml-team"]
    with pytest.raises(NotFound) as ei:  # out of scope looks exactly like unknown
        store.resolve("project", "research", ["ml-team"])
    assert "research" not in ei.value.known


def test_data_range_in_scope(store):
    store.upsert_jobs([job(job_id="1", project="a", submit_time=100, end_time=200),
                       job(job_id="2", project="b", submit_time=50, end_time=900)])
    assert store.data_range() == (50, 900)
    assert store.data_range(["a"]) == (100, 200)
