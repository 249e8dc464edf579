"""A job's final record replaces an earlier one, and so does its failure event (issue 12,
item 3): sacct read first without its steps classifies a job by its allocation line (exit 1:
app_error); read again with the steps (a step killed by SIGSEGV) the job becomes a segfault, and
its failure event must say so too, not keep the old type."""
from __future__ import annotations

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.templates import Templates

HEADER = "JobID|JobName|User|Account|State|ExitCode|Submit|Start|End|NodeList|MaxRSS"
ALLOC = ("77|sim|ana|physics|FAILED|1:0|2024-05-01T10:00:00|2024-05-01T10:00:05|"
         "2024-05-01T10:30:00|cn01|")
STEPS = [("77.batch|batch|||FAILED|1:0|2024-05-01T10:00:05|2024-05-01T10:00:05|"
          "2024-05-01T10:30:00|cn01|100M"),
         ("77.0|sim|||FAILED|0:11|2024-05-01T10:00:06|2024-05-01T10:00:06|"
          "2024-05-01T10:30:00|cn01|900M")]


def _ingest(store, taxonomy, tmp_path, lines, name):
    p = tmp_path / name
    p.write_text("\n".join([HEADER, *lines]) + "\n")
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), cluster="c")
    return run_ingest(store, READERS["slurm"], str(p), ctx)


def _state(store):
    job = store.conn.execute("SELECT failure_type, blame FROM jobs WHERE job_id = '77'").fetchone()
    ev = store.conn.execute("SELECT failure_type, blame FROM failure_events WHERE job_id = '77'"
                            ).fetchall()
    return job, ev


def test_reingest_with_steps_rederives_the_failure_event(store, taxonomy, tmp_path):
    _ingest(store, taxonomy, tmp_path, [ALLOC], "alloc.txt")
    job, ev = _state(store)
    assert job[0] == "app_error" and ev == [job]
    again = _ingest(store, taxonomy, tmp_path, [ALLOC, *STEPS], "steps.txt")
    job, ev = _state(store)
    assert job[0] == "segfault"
    assert ev == [job]  # one event, re-derived with the job
    assert again.events == 1
    # a third identical read changes nothing
    third = _ingest(store, taxonomy, tmp_path, [ALLOC, *STEPS], "steps2.txt")
    assert (third.inserted, third.updated, third.events) == (0, 0, 0)
    assert _state(store) == (job, ev)


def test_a_resolved_event_keeps_its_resolution(store, taxonomy, tmp_path):
    _ingest(store, taxonomy, tmp_path, [ALLOC], "alloc.txt")
    store.conn.execute("UPDATE failure_events SET resolved = 1, resolution = 'rebuilt' "
                       "WHERE job_id = '77'")
    _ingest(store, taxonomy, tmp_path, [ALLOC, *STEPS], "steps.txt")
    assert store.conn.execute("SELECT failure_type, resolved, resolution FROM failure_events "
                              "WHERE job_id = '77'").fetchone() == ("segfault", 1, "rebuilt")
