"""remediate: the learned ranking of the planted history, fixes fitted to a job's request,
scope (other projects' history as numbers only), bad input, and the CLI end to end."""
from __future__ import annotations

import json
from datetime import UTC, datetime

from typer.testing import CliRunner

from jobmedic.cli import app
from jobmedic.knowledge.outcomes import infer_outcomes
from jobmedic.tools import run_action
from jobmedic.tools.remedy_common import rules_of
from tests.knowledge.remedy_history import job, planted_oom_history


def test_planted_history_ranking(tctx, store):
    store.upsert_jobs(planted_oom_history())
    infer_outcomes(store, rules_of(tctx), 72)
    r = run_action({"action": "remediate", "failure_type": "oom"}, tctx)
    assert r.status == "ok", r.error
    first, second = r.data["fixes"][:2]
    assert first["id"] == "oom.raise_memory" and (first["successes"], first["attempts"]) == (40, 50)
    assert first["interval"][0] < 0.8 < first["interval"][1] and first["inferred"] == 50
    assert second["id"] == "oom.image_changed" and (second["successes"], second["attempts"]) == (10, 50)
    assert second["interval"][0] < 0.2 < second["interval"][1]
    assert "80% (40/50)" in r.text and "20% (10/50)" in r.text
    assert r.data["description"].startswith("Out of memory")


def test_fitted_to_the_jobs_request(tctx, store):
    store.upsert_jobs([
        job(job_id="s1", user="a", project="p", state="oom", raw_state="OUT_OF_MEMORY",
            submit_time=1, end_time=2, req_mem_mb=8192, max_rss_mb=8090),
        job(job_id="k1", user="a", project="p", state="oom", source="kubernetes",
            submit_time=1, end_time=2, req_mem_mb=8192, req_gpus=1),
        job(job_id="t1", user="a", project="p", state="timeout", failure_type="timeout",
            submit_time=1, end_time=3700, timelimit_s=3600, elapsed_s=3605),
        job(job_id="g1", user="a", project="p", state="failed", failure_type="gpu_error",
            blame="cluster", submit_time=1, end_time=2, req_gpus=4),
    ])
    store.add_job_nodes([("c1", "g1", "gpu-03")])

    def top(job_id, **kw):
        r = run_action({"action": "remediate", "job_id": job_id, **kw}, tctx)
        assert r.status == "ok", r.error
        return r

    r = top("s1")
    assert r.data["fixes"][0]["fitted"]["summary"] == \
        "raise --mem from 8G to 16G: its MaxRSS reached 7.9G of 8G"
    assert "--mem=16G" in r.data["fixes"][0]["fitted"]["change"]
    assert "raise --mem from 8G to 16G: its MaxRSS reached 7.9G of 8G" in r.text
    assert "oom.reduce_batch_size" not in [f["id"] for f in r.data["fixes"]]  # CPU job
    k = top("k1").data
    assert k["platform"] == "kubernetes"
    assert k["fixes"][0]["fitted"]["summary"].startswith(
        "raise resources.limits.memory from 8Gi to 16Gi: it was killed at its 8Gi limit")
    assert "oom.reduce_batch_size" in [f["id"] for f in k["fixes"]]  # a GPU job
    t = top("t1").data["fixes"][0]["fitted"]
    assert t["summary"] == "raise --time from 01:00:00 to 01:30:00: it ran 01:00:05 of its 01:00:00 limit"
    g = top("g1").data["fixes"][0]
    assert g["id"] == "gpu_error.exclude_node" and g["fitted"]["change"].startswith("--exclude=gpu-03")
    assert top("g1", platform="kubernetes").data["fixes"][0]["fitted"]["change"].startswith(
        "nodeAffinity NotIn [gpu-03]")


def test_scope_sees_other_projects_only_as_numbers(tctx, store):
    store.upsert_jobs(planted_oom_history(project="secret-lab"))
    store.upsert_jobs([job(job_id="mine", user="me", name="m", project="ml", state="oom",
                           submit_time=1, end_time=2, req_mem_mb=1024)])
    infer_outcomes(store, rules_of(tctx), 72)
    tctx.scope = ["ml"]
    r = run_action({"action": "remediate", "failure_type": "oom"}, tctx)
    assert r.status == "ok"
    top = r.data["fixes"][0]
    assert (top["successes"], top["attempts"]) == (40, 50)  # numbers learned elsewhere
    assert (top["attempts_in_scope"], top["successes_in_scope"]) == (0, 0)
    assert r.data["recent_outcomes"] == []
    dumped = json.dumps(r.model_dump())
    assert "secret-lab" not in dumped and "train-" not in dumped and '"0r"' not in dumped
    r = run_action({"action": "remediate", "job_id": "mine"}, tctx)
    assert r.status == "ok" and r.data["context_stats"] == {}
    r = run_action({"action": "remediate", "job_id": "0"}, tctx)  # the other project's job
    assert r.status == "error" and r.error.type == "not_found"


def test_bad_input(tctx, store):
    r = run_action({"action": "remediate", "failure_type": "oomm"}, tctx)
    assert r.status == "error" and r.error.type == "unknown_failure_type"
    assert "'oom'" in r.error.message or "oom" in r.error.message
    assert "timeout" in r.error.hint and "image_pull" in r.error.hint
    r = run_action({"action": "remediate"}, tctx)
    assert r.status == "error" and "failure_type or job_id" in r.error.message
    store.upsert_jobs([job(job_id="ok1", user="a", project="p", state="completed", submit_time=1)])
    r = run_action({"action": "remediate", "job_id": "ok1"}, tctx)
    assert r.status == "error" and "did not fail" in r.error.message
    r = run_action({"action": "remediate", "failure_type": "oom", "project": "nope"}, tctx)
    assert r.status == "error" and r.error.type == "not_found"


def _sacct(path, n_double=20, ok_double=16, n_retry=10, ok_retry=2):
    head = "JobID|JobName|User|Account|Partition|State|ExitCode|Submit|Start|End|ReqMem|MaxRSS|NodeList"
    lines = [head]

    def t(x):
        return datetime.fromtimestamp(x, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")

    base = 1_714_000_000
    for i in range(n_double + n_retry):
        s = base + i * 7200
        name, user = f"fit{i}", f"user{i % 3}"
        lines.append(f"{1000 + i}|{name}|{user}|ml|batch|OUT_OF_MEMORY|0:125|{t(s)}|{t(s + 5)}|"
                     f"{t(s + 300)}|8G||cn{i % 4:02d}")
        lines.append(f"{1000 + i}.batch|batch|||batch|OUT_OF_MEMORY|0:125|{t(s)}|{t(s + 5)}|"
                     f"{t(s + 300)}||7.9G|cn{i % 4:02d}")
        works = i < ok_double if i < n_double else i - n_double < ok_retry
        mem = "16G" if i < n_double else "8G"
        state, code = ("COMPLETED", "0:0") if works else ("OUT_OF_MEMORY", "0:125")
        lines.append(f"{5000 + i}|{name}|{user}|ml|batch|{state}|{code}|{t(s + 600)}|{t(s + 610)}|"
                     f"{t(s + 3000)}|{mem}||cn{i % 4:02d}")
    path.write_text("\n".join(lines) + "\n")


def test_cli_end_to_end_learns_at_ingest(tmp_path):
    db, src = tmp_path / "jm.db", tmp_path / "sacct.txt"
    _sacct(src)
    run = CliRunner().invoke
    res = run(app, ["--db", str(db), "ingest", "slurm", str(src)])
    assert res.exit_code == 0, res.output
    assert "learned 30 fix attempts from 30 resubmissions" in res.output
    res = run(app, ["--db", str(db), "remediate", "--failure-type", "oom", "--json"])
    assert res.exit_code == 0, res.output
    fixes = json.loads(res.stdout)["data"]["fixes"]
    assert fixes[0]["id"] == "oom.raise_memory" and (fixes[0]["successes"], fixes[0]["attempts"]) == (16, 20)
    retry = next(f for f in fixes if f["id"] == "oom.retried")
    assert (retry["successes"], retry["attempts"]) == (2, 10)
    res = run(app, ["--db", str(db), "remediate", "--job-id", "1025"])
    assert res.exit_code == 0, res.output
    assert "raise --mem from 8G to 16G: its MaxRSS reached 7.9G of 8G" in res.stdout
    res = run(app, ["--db", str(db), "act", '{"action": "remediate", "failure_type": "nope"}'])
    assert res.exit_code == 2 and "unknown_failure_type" in res.stdout
    res = run(app, ["--db", str(db), "learn", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["outcomes_written"] == 0
