"""Ownership of writes in the store layer: a scoped write names only its own projects' jobs,
events and solutions; user-entered solutions stay inside their project."""
from __future__ import annotations

import pytest

from jobmedic.knowledge.errors import InputError, ScopeError
from jobmedic.knowledge.migrations import FAILURE_EVENT_COLUMNS
from tests.knowledge.remedy_history import job


def event(**kw):
    base = {"cluster": "c1", "job_id": "1009", "job_name": "train", "project": "projB",
            "failure_type": "oom", "blame": "job", "timestamp": 100, "source": "test",
            "error_message": "oom-kill", "resolved": 0}
    base.update(kw)
    return (*(base.get(c) for c in FAILURE_EVENT_COLUMNS), kw.get("dedup", f"k:{base['project']}"))


def outcome(sid, cluster=None, failed=None, project=None, followup=None, key="o1"):
    return (sid, cluster, failed, followup, project, 1, "user", 1, "note", 0, None, key, None,
            None, None)


@pytest.fixture
def jobs(store):
    store.upsert_jobs([job(job_id="1009", project="projB", user="bea", state="oom"),
                       job(job_id="2001", project="projA", user="ann", state="oom")])
    return store


def test_write_project_is_the_jobs_own_and_refuses_another_projects_job(jobs):
    assert jobs.write_project("c1", "2001", None, ["projA"]) == "projA"
    assert jobs.write_project("c1", "1009", None, None) == "projB"  # unrestricted: the owner
    with pytest.raises(ScopeError, match="not in your projects") as exc:
        jobs.write_project("c1", "1009", "projA", ["projA"])
    assert exc.value.http_status == 403
    with pytest.raises(InputError, match="belongs to project 'projA'"):
        jobs.write_project("c1", "2001", "projB", ["projA", "projB"])
    with pytest.raises(ScopeError):  # no job: the project must be the caller's
        jobs.write_project("c1", None, "projB", ["projA"])
    with pytest.raises(ScopeError, match="say which"):
        jobs.write_project("c1", None, None, ["projA", "projC"])
    assert jobs.write_project("c1", "unknown-9", "projA", ["projA"]) == "projA"


def test_scoped_event_onto_another_projects_job_is_refused_and_nothing_is_written(jobs):
    with pytest.raises(ScopeError):
        jobs.add_failure_events([event(project="projA", dedup="a")], ["projA"])
    assert jobs.table_counts()["failure_events"] == 0
    assert jobs.add_failure_events([event(project="projB", dedup="b")], ["projB"]) == 1
    # an id already used by another project's events (a workload without a jobs row)
    jobs.add_failure_events([event(job_id="pod-7", project="projB", dedup="c")])
    with pytest.raises(ScopeError):
        jobs.add_failure_events([event(job_id="pod-7", project="projA", dedup="d")], ["projA"])


def test_failure_event_of_respects_the_scope(jobs):
    jobs.add_failure_events([event(project="projB", error_message="B's own", dedup="b"),
                             event(project="projA", error_message="A's text", dedup="a")])
    assert jobs.failure_event_of("c1", "1009")["error_message"] == "A's text"  # latest, unscoped
    assert jobs.failure_event_of("c1", "1009", ["projB"])["error_message"] == "B's own"
    assert jobs.failure_event_of("c1", "1009", ["projC"]) is None


def test_user_solutions_are_seen_only_inside_their_project(store):
    store.seed_solutions([("oom", "oom.raise_memory", None)], "rule")
    store.seed_solutions([("oom", "oom.user_secret@projA", "SECRET AWS_KEY=x")], "user",
                         project="projA")
    ids = store.solution_rowids("oom")
    secret = ids[("oom", "oom.user_secret@projA")]
    store.add_outcomes([outcome(secret, project="projA", key="a")], ["projA"])
    store.add_outcomes([outcome(ids[("oom", "oom.raise_memory")], project="projB", key="b")],
                       ["projB"])

    def names(rows):
        return {r["solution"] for r in rows}

    assert names(store.list_solutions("oom", ["projB"])) == {"oom.raise_memory"}
    assert names(store.list_solutions("oom", ["projA"])) == {"oom.raise_memory",
                                                             "oom.user_secret@projA"}
    assert names(store.list_solutions("oom")) == names(store.list_solutions("oom", ["projA"]))
    assert names(store.solution_stats("oom", ["projB"])) == {"oom.raise_memory"}
    assert "oom.user_secret@projA" in names(store.solution_stats("oom", ["projA"]))
    assert names(store.recent_outcomes("oom", ["projB"])) == {"oom.raise_memory"}
    assert not store.solution_context_stats("oom", "cluster", ["projB"])
    # counts of shared solutions stay shared (numbers without names)
    shared = next(s for s in store.solution_stats("oom", ["projA"]) if s["solution"] ==
                  "oom.raise_memory")
    assert shared["attempts"] == 1 and shared["attempts_in_scope"] == 0
    # and another project cannot attach an outcome to the private solution
    with pytest.raises(ScopeError):
        store.add_outcomes([outcome(secret, project="projB", key="c")], ["projB"])


def test_scoped_outcome_onto_another_projects_job_is_refused(jobs):
    jobs.seed_solutions([("oom", "oom.raise_memory", None)], "rule")
    sid = jobs.solution_rowids("oom")[("oom", "oom.raise_memory")]
    with pytest.raises(ScopeError):
        jobs.add_outcomes([outcome(sid, "c1", "1009", "projA", key="x")], ["projA"])
    with pytest.raises(ScopeError):  # the follow-up job is another project's
        jobs.add_outcomes([outcome(sid, "c1", "2001", "projA", followup="1009", key="y")],
                          ["projA"])
    with pytest.raises(InputError):  # stored with another project than its job's
        jobs.add_outcomes([outcome(sid, "c1", "2001", "projB", key="z")], ["projA", "projB"])
    assert jobs.table_counts()["solution_outcomes"] == 0
    assert jobs.add_outcomes([outcome(sid, "c1", "2001", "projA", key="ok")], ["projA"]) == 1


def test_migration_gives_old_user_solutions_to_the_one_project_that_tried_them(tmp_path):
    import sqlite3

    from jobmedic.knowledge.store import Store

    path = tmp_path / "old.db"
    with Store(path) as s:
        s.seed_solutions([("oom", "oom.user_a", "A's words"), ("oom", "oom.user_both", "b")],
                         "user")
        ids = s.solution_rowids("oom")
        s.add_outcomes([outcome(ids[("oom", "oom.user_a")], project="projA", key="1"),
                        outcome(ids[("oom", "oom.user_both")], project="projA", key="2"),
                        outcome(ids[("oom", "oom.user_both")], project="projB", key="3")])
        s.conn.execute("UPDATE failure_solutions SET project = NULL")
        s.conn.execute("PRAGMA user_version = 8")
    con = sqlite3.connect(path)  # as a store of schema 8 had it: no project column
    con.execute("ALTER TABLE failure_solutions DROP COLUMN project")
    for sql in ("DROP INDEX jobs_event_time", "DROP INDEX jobs_window",  # nor migration 10's
                "ALTER TABLE jobs DROP COLUMN event_time", "ALTER TABLE jobs DROP COLUMN failed_at"):
        con.execute(sql)
    con.commit()
    con.close()
    with Store(path) as s:
        got = dict(s.conn.execute("SELECT solution, project FROM failure_solutions"))
    assert got == {"oom.user_a": "projA", "oom.user_both": None}
