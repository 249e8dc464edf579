"""After-ingest outcome inference runs over the jobs a load touched (watermark + jobs_touched,
issue 16) and learns exactly what a whole-store run learns."""
from __future__ import annotations

import random

import yaml

from jobmedic.knowledge.outcomes import infer_new_outcomes, infer_outcomes
from jobmedic.knowledge.rules import RuleBase
from jobmedic.knowledge.store import Store
from jobmedic.settings import config_path
from tests.knowledge.remedy_history import T0, job

STATES = ["completed"] * 5 + ["oom", "failed", "timeout", "cancelled", "node_fail"]


def rules(taxonomy):
    with open(config_path("remediations.yaml"), encoding="utf-8") as fh:
        return RuleBase.from_dict(yaml.safe_load(fh), taxonomy.codes)


def history(n: int, seed: int, t0: int = T0, prefix: str = "j") -> list[tuple]:
    """Jobs of a few users resubmitting a few programs: failures, changes, retries, unnamed
    jobs (image key), script-only jobs, running ones."""
    rnd = random.Random(seed)
    rows = []
    t = t0
    for i in range(n):
        t += rnd.choice([0, 0, rnd.randint(60, 4 * 3600)])  # ties: equal submit times
        state = rnd.choice(STATES + ["running"])
        ended = state != "running"
        ft = {"oom": "oom", "failed": "app_error", "timeout": "timeout", "node_fail": "node_failure",
              "cancelled": "cancelled"}.get(state)
        name = rnd.choice([f"prog{rnd.randint(0, 4)}", None])
        rows.append(job(job_id=f"{prefix}{i}", user=f"u{rnd.randint(0, 3)}", name=name,
                        project="p", state=state, failure_type=ft,
                        script=rnd.choice([None, f"sbatch run{rnd.randint(0, 2)}.sh"]),
                        image=rnd.choice(["app:1", "app:2", None]),
                        submit_time=t, start_time=t + 5,
                        end_time=t + rnd.randint(30, 7200) if ended else None,
                        req_mem_mb=rnd.choice([1000, 2000, 4000]),
                        timelimit_s=rnd.choice([3600, 7200])))
    return rows


def learned(s: Store) -> tuple[set, set]:
    outcomes = set(s.conn.execute(
        "SELECT o.cluster, o.failed_job, o.followup_job, f.solution, o.success, o.change FROM "
        "solution_outcomes o JOIN failure_solutions f ON f.id = o.solution_id"))
    marks = set(s.conn.execute("SELECT job_id, resubmit_of FROM jobs WHERE resubmit_of IS NOT NULL"))
    return outcomes, marks


def test_loads_in_parts_learn_what_one_whole_run_learns(taxonomy):
    rb = rules(taxonomy)
    rows = history(900, seed=3)
    whole = Store()
    whole.upsert_jobs(rows)
    infer_outcomes(whole, rb, 72)
    parts = Store()
    for lo in range(0, len(rows), 150):  # six loads, each inferred over what it touched
        parts.upsert_jobs(rows[lo:lo + 150])
        infer_new_outcomes(parts, rb, 72)
    assert learned(parts) == learned(whole)
    assert learned(whole)[0]  # the history has pairs to learn


def test_a_job_updated_in_place_is_inferred_again(taxonomy):
    """A follow-up that was running at the first load and ended later (same row, updated)."""
    rb = rules(taxonomy)
    s = Store()
    s.upsert_jobs([job(job_id="a", user="ann", name="x", project="p", state="oom",
                       submit_time=T0, end_time=T0 + 60, req_mem_mb=1000),
                   job(job_id="b", user="ann", name="x", project="p", state="running",
                       submit_time=T0 + 100, req_mem_mb=2000)])
    assert infer_new_outcomes(s, rb, 72).outcomes_written == 0  # b still running
    s.upsert_jobs([job(job_id="b", user="ann", name="x", project="p", state="completed",
                       submit_time=T0 + 100, end_time=T0 + 900, req_mem_mb=2000)])
    out = infer_new_outcomes(s, rb, 72)
    assert out.outcomes_written == 1 and s.get_job("b")["resubmit_of"] == "a"
    assert s.conn.execute("SELECT COUNT(*) FROM jobs_touched").fetchone()[0] == 0
    again = infer_new_outcomes(s, rb, 72)
    assert again.jobs_scanned == 0 and again.outcomes_written == 0


def test_work_follows_the_new_jobs_not_the_store(taxonomy):
    rb = rules(taxonomy)
    s = Store()
    s.upsert_jobs(history(3000, seed=5))
    first = infer_new_outcomes(s, rb, 72)
    assert first.jobs_scanned > 1000
    last_t = s.conn.execute("SELECT MAX(submit_time) FROM jobs").fetchone()[0]
    s.upsert_jobs(history(20, seed=6, t0=last_t + 3600, prefix="new"))
    second = infer_new_outcomes(s, rb, 72)
    # the 20 new jobs and the touched users' jobs of the last window, not the 3,000
    assert 0 < second.jobs_scanned < 200
    whole = Store()
    whole.upsert_jobs(history(3000, seed=5) + history(20, seed=6, t0=last_t + 3600, prefix="new"))
    infer_outcomes(whole, rb, 72)
    assert learned(s) == learned(whole)


def test_existing_store_first_run_covers_everything(tmp_path, taxonomy):
    """A store that never ran the incremental step (no watermark) is inferred whole once."""
    rb = rules(taxonomy)
    s = Store(tmp_path / "jm.db")
    s.upsert_jobs(history(400, seed=9))
    assert s.remedies.inference_mark()[0] == 0
    out = infer_new_outcomes(s, rb, 72)
    assert out.pairs > 0
    assert s.remedies.inference_mark()[0] == s.remedies.inference_mark()[1]
    s.close()
