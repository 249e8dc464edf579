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


def test_real_eagle_resubmission_chain(store, taxonomy, shared_data):
    """NREL Eagle sample (real Slurm jobs): user0018 resubmits a timed-out job unchanged, then
    with 2700 s instead of 900 s (times out again), then with more cores (completes)."""
    import pandas as pd

    d = pd.read_csv(shared_data / "eagle_sample/sample_eagle_data.csv")

    def ts(col):
        return (pd.to_datetime(d[col]).astype("int64") // 10**9).astype(int)

    state = d["state"].str.lower()
    jobs = pd.DataFrame({
        "job_id": d["job_id"].astype(str), "user": d["user"], "project": d["account"],
        "name": d["name"], "queue": d["partition"], "state": state, "raw_state": d["state"],
        "failure_type": state.where(state == "timeout"), "submit_time": ts("submit_time"),
        "start_time": ts("start_time"), "end_time": ts("end_time"),
        "timelimit_s": d["wallclock_req"].astype(int), "req_cpus": d["processors_req"],
        "req_gpus": d["gpus_req"], "n_nodes": d["nodes_req"], "script": d["submit_line"],
    })
    store.upsert_jobs([job(**{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()})
                       for r in jobs.to_dict("records")])
    s = infer_outcomes(store, rules(taxonomy), 72)
    assert s.pairs >= 4
    chain = {j: store.get_job(j)["resubmit_of"] for j in ("532502", "532507", "532591")}
    assert chain == {"532502": "532501", "532507": "532502", "532591": "532507"}
    outs = {(o["failed_job"], o["solution"]): o for o in store.recent_outcomes("timeout", limit=50)}
    raised = outs[("532502", "timeout.raise_time")]
    assert raised["success"] == 0 and raised["change"] == "time limit 0.2h -> 0.8h"
    assert outs[("532507", "timeout.more_cpus")]["success"] == 1  # it also asked for more cores
    assert outs[("532501", "timeout.retried")]["success"] == 0
