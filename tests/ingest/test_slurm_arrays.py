"""Pending array ranges (issue 12, item 2): sacct prints a pending array as one line
`255_[1-3,7,10-12%2]`; like Open XDMoD, jobmedic stores one job per task sharing the line's
fields, rejects absurd ranges, and stats counts the tasks as pending work."""
from __future__ import annotations

import pytest

from jobmedic.core.validate import ValueRejected
from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.ingest.slurm_fields import MAX_ARRAY_TASKS, array_range
from jobmedic.knowledge.templates import Templates
from jobmedic.tools import run_action
from jobmedic.tools.base import ToolContext
from tests.conftest import FIXTURES

HEADER = ("JobID|JobIDRaw|JobName|User|Account|State|Partition|Submit|Start|End|ExitCode|"
          "NodeList|ReqCPUS|ReqMem|Timelimit|Elapsed|Reason")


def _ingest(store, taxonomy, path):
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), cluster="tb")
    return run_ingest(store, READERS["slurm"], str(path), ctx)


@pytest.mark.parametrize("job_id,base,tasks", [
    ("123_[1-3]", "123", [1, 2, 3]),
    ("123_[9-11,13,16-20]", "123", [9, 10, 11, 13, 16, 17, 18, 19, 20]),
    ("123_[1-100%4]", "123", list(range(1, 101))),
    ("123_[1-15:4]", "123", [1, 5, 9, 13]),
    ("123_[7]", "123", [7]),
])
def test_array_ranges_expand(job_id, base, tasks):
    assert array_range(job_id) == (base, tasks)


@pytest.mark.parametrize("job_id", ["123", "123_4", "123.batch"])
def test_plain_ids_are_no_range(job_id):
    assert array_range(job_id) is None


@pytest.mark.parametrize("job_id", [
    "123_[5-1]", "123_[1-x]", "123_[]", "123_[1-3", f"123_[0-{MAX_ARRAY_TASKS}]",
    "123_[1-4000001]", "123_[1-10:0]", "123_[1--3]"])
def test_absurd_ranges_are_rejected(job_id):
    with pytest.raises(ValueRejected):
        array_range(job_id)


def test_real_pending_array_line_becomes_one_job_per_task(store, taxonomy):
    s = _ingest(store, taxonomy, FIXTURES / "sacct_array_pending.txt")
    assert s.rejected == 0
    rows = store.conn.execute(
        "SELECT job_id, array_id, name, user, project, state, queue, reason, submit_time "
        "FROM jobs ORDER BY CAST(substr(job_id, 5) AS INTEGER)").fetchall()
    assert [r[0] for r in rows] == [f"255_{i}" for i in (1, 2, 3, 7, 10, 11, 12)]
    assert {r[1:] for r in rows} == {("255", "wrap", "root", "physics", "pending", "debug",
                                      "JobHeldUser", rows[0][8])}
    assert rows[0][8] is not None


def test_pending_tasks_count_as_pending_work(store, taxonomy, tmp_path):
    p = tmp_path / "sacct.txt"
    rows = (
        ("300_[4-10%2]|300|sweep|ana|physics|PENDING|gpu|2024-05-01T10:00:00|Unknown|"
         "Unknown|0:0|None assigned|1|1G|01:00:00|00:00:00|JobArrayTaskLimit"),
        ("300_1|300|sweep|ana|physics|COMPLETED|gpu|2024-05-01T10:00:00|"
         "2024-05-01T10:01:00|2024-05-01T10:11:00|0:0|n1|1|1G|01:00:00|00:10:00|None"),
        ("300_2|300|sweep|ana|physics|FAILED|gpu|2024-05-01T10:00:00|2024-05-01T10:01:00|"
         "2024-05-01T10:02:00|1:0|n1|1|1G|01:00:00|00:01:00|None"),
        ("300_3|300|sweep|ana|physics|RUNNING|gpu|2024-05-01T10:00:00|2024-05-01T10:12:00|"
         "Unknown|0:0|n1|1|1G|01:00:00|00:01:00|None"),
        ("301_[1-5000000]|301|huge|ana|physics|PENDING|gpu|2024-05-01T10:00:00|Unknown|"
         "Unknown|0:0|None assigned|1|1G|01:00:00|00:00:00|None"),
    )
    p.write_text("\n".join((HEADER, *rows)) + "\n")
    s = _ingest(store, taxonomy, p)
    assert s.rejected == 1  # the absurd range, with its line
    assert "301_[1-5000000]" in store.recent_rejects()[0]["reason"]
    assert store.conn.execute("SELECT COUNT(*) FROM jobs WHERE array_id = '300'").fetchone()[0] == 10
    ctx = ToolContext(store=store, taxonomy=taxonomy, now=1714521600 + 86400)
    res = run_action({"action": "stats", "lookback_days": 2}, ctx)
    t = res.data["totals"]
    assert (t["jobs"], t["failures"], t["pending"], t["running"]) == (2, 1, 7, 1)
    assert "7 pending" in res.text


def _lines(tmp_path, name, *rows):
    p = tmp_path / name
    p.write_text("\n".join((HEADER, *rows)) + "\n")
    return p


PENDING_123 = ("123_[1-3]|123|sweep|ana|physics|PENDING|gpu|2024-05-01T10:00:00|Unknown|"
               "Unknown|0:0|None assigned|1|1G|01:00:00|00:00:00|Priority")
FINISHED_123 = tuple(
    f"123_{i}|123|sweep|ana|physics|{st}|gpu|2024-05-01T10:00:00|2024-05-01T10:01:00|"
    f"2024-05-01T10:0{i + 1}:00|{code}:0|n1|1|1G|01:00:00|00:0{i}:00|None"
    for i, st, code in ((1, "COMPLETED", 0), (2, "FAILED", 1), (3, "COMPLETED", 0)))


def _jobs(store):
    return dict(store.conn.execute("SELECT job_id, state FROM jobs WHERE cluster = 'tb'"))


def test_reingest_after_the_pending_range_ran_counts_each_task_once(store, taxonomy, tmp_path):
    """sacct with `123_[1-3]` PENDING, then sacct with 123_1..123_3 finished: 3 jobs."""
    _ingest(store, taxonomy, _lines(tmp_path, "a.txt", PENDING_123))
    assert _jobs(store) == {f"123_{i}": "pending" for i in (1, 2, 3)}
    _ingest(store, taxonomy, _lines(tmp_path, "b.txt", *FINISHED_123))
    assert _jobs(store) == {"123_1": "completed", "123_2": "failed", "123_3": "completed"}


def test_range_rows_stored_before_expansion_are_replaced_by_the_tasks(store, taxonomy, tmp_path):
    """A store written before ranges were expanded holds `123_[1-3]` as one pending job (with
    a node row and a failure event): the tasks replace it, other arrays' and clusters' rows stay."""
    from jobmedic.knowledge.migrations import FAILURE_EVENT_COLUMNS, JOB_COLUMNS

    def old_row(cluster, job_id, array_id):
        row = dict.fromkeys(JOB_COLUMNS)
        row.update(cluster=cluster, job_id=job_id, array_id=array_id, state="pending",
                   submit_time=1714557600, source="slurm", user="ana", project="physics")
        return tuple(row[c] for c in JOB_COLUMNS)

    store.upsert_jobs([old_row("tb", "123_[1-3]", "123"), old_row("tb", "124_[1-2]", "124"),
                       old_row("other", "123_[1-3]", "123")])
    store.add_job_nodes([("tb", "123_[1-3]", "n9")])
    ev = dict.fromkeys(FAILURE_EVENT_COLUMNS)
    ev.update(cluster="tb", job_id="123_[1-3]", failure_type="scheduling", blame="cluster",
              timestamp=1714557600, source="slurm", resolved=0)
    store.add_failure_events([tuple(ev[c] for c in FAILURE_EVENT_COLUMNS) + ("old-range",)])
    _ingest(store, taxonomy, _lines(tmp_path, "b.txt", *FINISHED_123))
    assert _jobs(store) == {"123_1": "completed", "123_2": "failed", "123_3": "completed",
                            "124_[1-2]": "pending"}
    q = store.conn.execute
    assert q("SELECT COUNT(*) FROM jobs WHERE cluster = 'other'").fetchone()[0] == 1
    assert q("SELECT COUNT(*) FROM job_nodes WHERE job_id = '123_[1-3]'").fetchone()[0] == 0
    assert q("SELECT COUNT(*) FROM failure_events WHERE job_id = '123_[1-3]'").fetchone()[0] == 0
    ctx = ToolContext(store=store, taxonomy=taxonomy, now=1714521600 + 86400)
    t = run_action({"action": "stats", "lookback_days": 2, "cluster": "tb"}, ctx).data["totals"]
    assert (t["jobs"], t["failures"], t["pending"]) == (3, 1, 1)  # 124_[1-2] is still pending
