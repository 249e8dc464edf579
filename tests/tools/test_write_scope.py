"""Issue 11's write-scope scenarios through the actions: a token for one project cannot write
onto another's job, its fix text never reaches another project, and duplicate checks are per
project."""
from __future__ import annotations

import dataclasses
import json

import pytest

from jobmedic.tools import run_action
from tests.knowledge.remedy_history import job

OOM_TEXT = "Out of memory: Killed process 4242 (python) oom-kill: constraint=CONSTRAINT_MEMCG"


@pytest.fixture
def two(tctx, store):
    store.upsert_jobs([job(job_id="1009", project="projB", user="bea", state="failed",
                           failure_type="app_error", blame="job", submit_time=1, end_time=2),
                       job(job_id="2001", project="projA", user="ann", state="oom",
                           submit_time=1, end_time=2, req_mem_mb=8192)])
    return {p: dataclasses.replace(tctx, scope=[p]) for p in ("projA", "projB")}


def act(ctx, **req):
    return run_action(req, ctx)


def test_a_cannot_write_a_failure_event_onto_bs_job(two, store):
    """jobmedic --scope projA act record_failure job 1009 (projB's) -> refused, 403."""
    r = act(two["projA"], action="record_failure", job_id="1009", cluster="c1", project="projA",
            job_name="x", error_message="... oom-kill ...")
    assert r.status == "error" and r.error.type == "forbidden", r.model_dump_json()
    assert store.table_counts()["failure_events"] == 0
    from jobmedic.knowledge.errors import status_by_kind
    assert status_by_kind()["forbidden"] == 403
    d = act(two["projB"], action="diagnose", job_id="1009")
    assert d.status == "ok" and d.data["failure_type"] != "oom"
    assert "oom-kill" not in json.dumps(d.model_dump())


def test_bs_diagnose_never_shows_an_event_a_wrote_before_the_fix(two, store):
    from jobmedic.ingest.base import event_tuple

    store.add_failure_events([event_tuple(  # as the old record_failure stored it
        {"cluster": "c1", "job_id": "1009", "job_name": "x", "project": "projA",
         "failure_type": "oom", "blame": "job", "timestamp": 5, "error_message": OOM_TEXT,
         "source": "record_failure", "resolved": 0}, "legacy")])
    d = act(two["projB"], action="diagnose", job_id="1009")
    assert d.status == "ok" and "oom-kill" not in json.dumps(d.model_dump())


def test_a_records_its_own_job_with_its_project(two, store):
    r = act(two["projA"], action="record_failure", job_id="2001", cluster="c1", job_name="t",
            error_message=OOM_TEXT)
    assert r.status == "ok" and r.data["recorded"] and r.data["project"] == "projA"
    row = store.conn.execute("SELECT project FROM failure_events").fetchall()
    assert row == [("projA",)]


def test_as_secret_solution_text_never_reaches_bs_remediate(two, store, tctx):
    secret = "SECRET rotate creds AWS_KEY=AKIAEXAMPLE then rerun"
    r = act(two["projA"], action="record_outcome", failure_type="oom", solution=secret,
            success=True)
    assert r.status == "ok" and r.data["matched_by"] == "new", r.model_dump_json()
    for ctx, seen in ((two["projB"], False), (two["projA"], True), (tctx, True)):
        rem = act(ctx, action="remediate", failure_type="oom")
        blob = json.dumps(rem.model_dump())
        assert rem.status == "ok" and ("AWS_KEY" in blob) is seen, ctx.scope
    # B writing the same words gets its own solution, not A's
    r = act(two["projB"], action="record_outcome", failure_type="oom", solution=secret,
            success=False)
    assert r.data["matched_by"] == "new" and "projA" not in json.dumps(r.model_dump())
    rem = act(two["projA"], action="remediate", failure_type="oom")
    mine = [f for f in rem.data["fixes"] if f["source"] == "user"]
    assert len(mine) == 1 and mine[0]["attempts"] == 1 and mine[0]["successes"] == 1


def test_record_failure_duplicate_check_is_per_project(two, store):
    ev = {"action": "record_failure", "job_name": "train-resnet", "cluster": "c1",
          "timestamp": "2024-05-01T10:00:00Z", "phase": "OOMKilled", "error_message": OOM_TEXT}
    a = act(two["projA"], **ev)
    b = act(two["projB"], **ev)  # B does not learn that A's event exists
    assert a.data["recorded"] and b.data["recorded"] and not b.data["duplicate"]
    again = act(two["projA"], **ev)
    assert again.data["duplicate"]
    assert store.table_counts()["failure_events"] == 2


def test_outcome_for_another_projects_job_is_refused(two, store):
    r = act(two["projA"], action="record_outcome", job_id="1009", solution="oom.raise_memory",
            success=True)
    assert r.status == "error" and r.error.type in ("not_found", "forbidden")
    r = act(two["projA"], action="record_outcome", job_id="2001", solution="oom.raise_memory",
            success=True, followup_job="1009")
    assert r.status == "error" and r.error.type == "forbidden"
    assert store.table_counts()["solution_outcomes"] == 0


def test_a_type_only_outcome_from_several_projects_must_name_one(two, tctx):
    both = dataclasses.replace(tctx, scope=["projA", "projB"])
    r = act(both, action="record_outcome", failure_type="oom", solution="oom.raise_memory",
            success=True)
    assert r.status == "error" and r.error.type == "forbidden" and "projA" in r.error.hint
    r = act(both, action="record_outcome", failure_type="oom", solution="oom.raise_memory",
            success=True, allowed_projects=["projA"])
    assert r.status == "ok"


def test_an_events_memory_request_is_read_as_a_kubernetes_quantity(tctx, store):
    """Issue 10: "4000M" was 4000 MB in remediate and 3815 in ingest; a Kubernetes 4000M is
    4e9 bytes = 3814.7 MiB wherever it is read."""
    r = act(tctx, action="record_failure", job_name="pod-mem", cluster="k", phase="OOMKilled",
            memory_request="4000M", error_message=OOM_TEXT)
    assert r.status == "ok", r.model_dump_json()
    rem = act(tctx, action="remediate", job_id="pod-mem", cluster="k")
    assert rem.status == "ok", rem.model_dump_json()
    assert round(rem.data["job"]["req_mem_mb"], 1) == 3814.7
