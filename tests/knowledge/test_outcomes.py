"""Outcome inference from resubmissions: the planted history is learned, nothing by hand."""
from __future__ import annotations

import yaml

from jobmedic.knowledge.outcomes import infer_outcomes
from jobmedic.knowledge.remedies import wilson
from jobmedic.knowledge.rules import RuleBase
from jobmedic.settings import config_path
from tests.knowledge.remedy_history import T0, job, planted_oom_history


def rules(taxonomy):
    with open(config_path("remediations.yaml"), encoding="utf-8") as fh:
        return RuleBase.from_dict(yaml.safe_load(fh), taxonomy.codes)


def stats(store, ftype="oom"):
    return {s["solution"]: s for s in store.solution_stats(ftype)}


def test_planted_rates_are_learned_and_ranked(store, taxonomy):
    store.upsert_jobs(planted_oom_history())
    summary = infer_outcomes(store, rules(taxonomy), window_h=72)
    assert summary.pairs == 100
    st = stats(store)
    double, image = st["oom.raise_memory"], st["oom.image_changed"]
    assert (double["successes"], double["attempts"]) == (40, 50)
    assert (image["successes"], image["attempts"]) == (10, 50)
    assert double["inferred"] == 50 and image["source"] == "history"
    lo, hi = wilson(40, 50)
    assert lo < 0.8 < hi and wilson(10, 50)[0] < 0.2 < wilson(10, 50)[1]
    assert lo > wilson(10, 50)[1]  # doubling ranks first by its lower bound
    # failure_solutions counts agree; follow-ups are marked
    row = next(r for r in store.list_solutions("oom") if r["solution"] == "oom.raise_memory")
    assert (row["success_count"], row["failure_count"]) == (40, 10)
    assert store.get_job("0r")["resubmit_of"] == "0"
    assert store.table_counts()["solution_outcomes"] == 100


def test_rerun_is_idempotent(store, taxonomy):
    store.upsert_jobs(planted_oom_history(10, 8, 10, 2))
    rb = rules(taxonomy)
    infer_outcomes(store, rb, 72)
    again = infer_outcomes(store, rb, 72)
    assert again.outcomes_written == 0 and again.followups_marked == 0
    assert stats(store)["oom.raise_memory"]["attempts"] == 10


def test_chain_counts_each_change_once(store, taxonomy):
    """8G fails -> 16G fails -> 32G works: two attempts of raise_memory, one failure, one success."""
    rows = []
    for k, (mem, state) in enumerate([(8192, "oom"), (16384, "oom"), (32768, "completed")]):
        t = T0 + k * 3600
        rows.append(job(job_id=f"c{k}", user="ann", name="big", project="p", state=state,
                        submit_time=t, end_time=t + 600, req_mem_mb=mem))
    store.upsert_jobs(rows)
    infer_outcomes(store, rules(taxonomy), 72)
    d = stats(store)["oom.raise_memory"]
    assert (d["successes"], d["attempts"]) == (1, 2)
    assert store.get_job("c2")["resubmit_of"] == "c1"
    assert store.get_job("c1")["resubmit_of"] == "c0"


def test_window_user_and_running_followups(store, taxonomy):
    rows = [
        job(job_id="a", user="ann", name="x", project="p", state="oom", submit_time=T0,
            end_time=T0 + 60, req_mem_mb=1000),
        # another user's job of the same name is not a resubmission
        job(job_id="b", user="bob", name="x", project="p", state="completed", submit_time=T0 + 100,
            end_time=T0 + 200, req_mem_mb=2000),
        # too late for a 1 h window
        job(job_id="c", user="ann", name="x", project="p", state="completed",
            submit_time=T0 + 7200, end_time=T0 + 7300, req_mem_mb=2000),
        job(job_id="d", user="cy", name="y", project="p", state="oom", submit_time=T0,
            end_time=T0 + 60, req_mem_mb=1000),
        job(job_id="e", user="cy", name="y", project="p", state="running", submit_time=T0 + 100,
            req_mem_mb=2000),
    ]
    store.upsert_jobs(rows)
    s = infer_outcomes(store, rules(taxonomy), window_h=1)
    assert s.pairs == 0
    s = infer_outcomes(store, rules(taxonomy), window_h=72)
    assert s.pairs == 1  # a -> c; d's follow-up still runs


def test_changes_map_to_solutions(store, taxonomy):
    rows = [
        job(job_id="n1", user="u", name="sim", project="p", state="node_fail", raw_state="NODE_FAIL",
            failure_type="node_failure", submit_time=T0, end_time=T0 + 60,
            script="sbatch run.sh"),
        job(job_id="n2", user="u", name="sim", project="p", state="completed",
            submit_time=T0 + 100, end_time=T0 + 900, script="sbatch --exclude=cn07 run.sh"),
        job(job_id="t1", user="u", name="long", project="p", state="timeout", raw_state="TIMEOUT",
            failure_type="timeout", submit_time=T0, end_time=T0 + 3600, timelimit_s=3600),
        job(job_id="t2", user="u", name="long", project="p", state="completed",
            submit_time=T0 + 4000, end_time=T0 + 9000, timelimit_s=7200),
    ]
    store.upsert_jobs(rows)
    infer_outcomes(store, rules(taxonomy), 72)
    assert stats(store, "node_failure")["node_failure.exclude_node"]["successes"] == 1
    assert stats(store, "timeout")["timeout.raise_time"]["successes"] == 1
    outs = store.recent_outcomes("timeout")
    assert outs[0]["change"] == "time limit 1.0h -> 2.0h"
