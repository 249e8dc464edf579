"""record_outcome and record_failure: matching free text to solutions, counting once, errors
that name the job or the closest failure type; the CLI commands."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from jobmedic.cli import app
from jobmedic.tools import run_action
from tests.knowledge.remedy_history import job


def rec(tctx, **kw):
    return run_action({"action": "record_outcome", **kw}, tctx)


def seed(store):
    store.upsert_jobs([
        job(job_id="42", user="ann", project="ml", state="oom", submit_time=1, end_time=2,
            req_mem_mb=8192, queue="gpu", req_gpus=1),
        job(job_id="43", user="ann", project="ml", state="completed", submit_time=1, end_time=2),
        job(job_id="77", user="eve", project="secret", state="oom", submit_time=1, end_time=2),
    ])


def test_free_text_matches_existing_solution_and_counts_once(tctx, store):
    seed(store)
    r = rec(tctx, job_id="42", solution="doubled the memory", success=True, note="16G was enough")
    assert r.status == "ok", r.error
    d = r.data
    assert (d["status"], d["solution"], d["matched_by"]) == ("recorded", "oom.raise_memory", "keyword")
    assert d["counts"] == {"successes": 1, "attempts": 1}
    r = rec(tctx, job_id="42", solution="oom.raise_memory", success=True, note="16G was enough")
    assert r.data["status"] == "duplicate" and r.data["counts"] == {"successes": 1, "attempts": 1}
    assert "counted once" in r.text
    r = rec(tctx, job_id="42", solution="raise memory", success=False)
    assert r.data["status"] == "updated" and r.data["counts"] == {"successes": 0, "attempts": 1}
    outs = store.recent_outcomes("oom")
    assert len(outs) == 1 and outs[0]["note"] == "16G was enough" and outs[0]["inferred"] == 0


def test_unmatched_text_becomes_a_user_solution_and_is_matched_next_time(tctx, store):
    seed(store)
    r = rec(tctx, failure_type="oom", solution="Switched to the streaming data loader", success=True)
    assert r.data["matched_by"] == "new" and r.data["solution"].startswith("oom.user_")
    sid = r.data["solution"]
    r = rec(tctx, failure_type="oom", solution="switched to streaming data loader", success=True,
            recorded_by="bob")
    assert r.data["solution"] == sid and r.data["matched_by"] in ("title", "tokens")
    assert r.data["counts"]["attempts"] == 2
    fixes = run_action({"action": "remediate", "failure_type": "oom"}, tctx).data["fixes"]
    user = next(f for f in fixes if f["id"] == sid)
    assert user["source"] == "user" and user["title"] == "Switched to the streaming data loader"


def test_record_outcome_errors(tctx, store):
    seed(store)
    r = rec(tctx, job_id="nope-9", solution="oom.raise_memory", success=True)
    assert r.status == "error" and r.error.type == "not_found" and "'nope-9'" in r.error.message
    r = rec(tctx, job_id="43", solution="oom.raise_memory", success=True)
    assert r.status == "error" and "did not fail" in r.error.message
    r = rec(tctx, failure_type="timeoutt", solution="raise time", success=True)
    assert r.status == "error" and r.error.type == "unknown_failure_type"
    assert "timeout" in r.error.message and "oom" in r.error.hint
    tctx.scope = ["ml"]
    r = rec(tctx, job_id="77", solution="oom.raise_memory", success=True)
    assert r.status == "error" and r.error.type == "not_found"
    r = run_action({"action": "record_outcome", "job_id": "42", "solution": "x"}, tctx)
    assert r.status == "error" and r.error.field == "success"


def test_record_failure_classifies_templates_and_dedups(tctx, store):
    ev = {"action": "record_failure", "job_name": "bert-ft", "project": "ml", "user": "ann",
          "phase": "Failed", "timestamp": "2024-05-14T10:00:00Z", "pod_name": "bert-ft-0",
          "node_name": "gpu-node-03", "container_image": "nvcr.io/pt:24.03", "gpu_count": 8,
          "memory_request": "64Gi",
          "logs_snippet": "NVRM: Xid (PCI:0000:3b:00): 79, pid=1, GPU has fallen off the bus."}
    r = run_action(ev, tctx)
    assert r.status == "ok", r.error
    d = r.data
    assert (d["recorded"], d["failure_type"], d["blame"]) == (True, "gpu_error", "cluster")
    assert d["evidence"][0].startswith("NVRM: Xid") and d["template_id"] is not None
    assert "Xid 79" in d["root_cause"]["phrase"]
    assert store.load_templates()
    r = run_action(ev, tctx)
    assert r.data["duplicate"] and store.table_counts()["failure_events"] == 1
    ev2 = {**ev, "failure_type": "nccl_error", "pod_name": "bert-ft-1"}
    assert run_action(ev2, tctx).data["failure_type"] == "nccl_error"
    r = run_action({**ev, "failure_type": "gpu_eror"}, tctx)
    assert r.status == "error" and "gpu_error" in r.error.message
    r = run_action({"action": "record_failure", "job_name": "x", "error_message":
                    "Error: DEPLOY_ENV is not set", "phase": "CrashLoopBackOff", "project": "ml"}, tctx)
    assert r.data["failure_type"] == "config_error"  # past the symptom to the cause, as diagnose
    # a diagnose of the workload by name finds the event
    d = run_action({"action": "diagnose", "job_id": "bert-ft"}, tctx).data
    assert d["failure_type"] in ("gpu_error", "nccl_error")


def test_record_failure_respects_scope(tctx):
    tctx.scope = ["ml"]
    r = run_action({"action": "record_failure", "job_name": "x", "project": "secret",
                    "error_message": "boom"}, tctx)
    assert r.status == "error" and r.error.field == "project"
    r = run_action({"action": "record_failure", "job_name": "x", "error_message": "Segmentation fault"}, tctx)
    assert r.status == "ok" and r.data["project"] == "ml" and r.data["failure_type"] == "segfault"


def test_cli_outcome_record_and_record_failure(tmp_path):
    db = str(tmp_path / "jm.db")
    run = CliRunner().invoke
    res = run(app, ["--db", db, "record-failure", "--job-name", "etl", "--project", "data",
                    "--error-message", "ModuleNotFoundError: No module named 'pandas'", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["data"]["failure_type"] == "dependency_error"
    res = run(app, ["--db", db, "outcome", "record", "--job-id", "etl", "--solution",
                    "pip install the missing package", "--success"])
    assert res.exit_code == 0, res.output
    assert "dependency_error.install_module" in res.stdout
    res = run(app, ["--db", db, "outcome", "record", "--job-id", "ghost", "--solution", "x",
                    "--no-success"])
    assert res.exit_code == 2 and "ghost" in res.output
