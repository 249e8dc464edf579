"""The watch loop itself: the telemetry retention it runs on its own schedule (kept in the
store across restarts and `--once` runs), and polls started on a fixed schedule."""
from __future__ import annotations

import threading
import time

import pytest

from jobmedic.knowledge.errors import InputError
from jobmedic.live.poller import PollResult
from jobmedic.live.rules import RuleSet
from jobmedic.live.sinks import Dispatcher
from jobmedic.live.watch import Watcher

DAY = 86400
NOW = 1_800_000_000


class Idle:
    """A poller with nothing new, which takes `seconds` to answer."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds, self.starts = seconds, []

    def poll(self, now=None, since=None):
        self.starts.append(time.monotonic())
        time.sleep(self.seconds)
        return PollResult()


def _no_rules():
    return RuleSet({k: {"enabled": False} for k in ("repeat_failures", "node_users", "hotspot",
                                                    "known_fix", "memkill", "changepoint")})


def _watcher(store, taxonomy, poller=None, **kw):
    return Watcher(store, taxonomy, poller or Idle(), _no_rules(), Dispatcher(store, []),
                   read_output=False, **kw)


def _samples(store, now):
    """A job's memory every 10 s over its last 10 days, and a year-old node sample."""
    store.upsert_jobs([("c", "1", "p", "completed", now - 10 * DAY, now, "sstat")],
                      columns=("cluster", "job_id", "project", "state", "start_time",
                               "end_time", "source"))
    rows = [("c", "1", "n1", None, "mem_used_bytes", now - 10 * DAY + 10 * i, float(i), "sstat")
            for i in range(10 * DAY // 10)]
    rows.append(("c", None, "n1", None, "node_mem_available_bytes", now - 365 * DAY, 1.0, "p"))
    store.add_samples(rows)
    return len(rows)


def test_watch_runs_the_telemetry_retention_on_its_schedule(file_store, taxonomy):
    n = _samples(file_store, NOW)
    logs: list[str] = []
    w = _watcher(file_store, taxonomy, log=logs.append)
    r = w.step(now=NOW)
    # the year-old node sample is pruned; the raw samples older than 7 days become 5-minute
    # buckets (3 days of 10 s samples: 25,920 rows -> 864), the last 7 days stay raw
    assert r.retention is not None and r.retention["pruned"] == 1
    assert (r.retention["rows_before"], r.retention["rows_after"]) == (3 * DAY // 10,
                                                                        3 * DAY // 300)
    left = file_store.telemetry_counts()["rows"]
    assert left == n - 1 - 3 * DAY // 10 + 3 * DAY // 300
    assert any("telemetry retention" in m for m in logs)
    # within the hour: not again, not even from a new watcher (a restart, a cron `--once`)
    assert w.step(now=NOW + 60).retention is None
    assert _watcher(file_store, taxonomy).step(now=NOW + 1800).retention is None
    # later: it runs again (and a day and an hour more of raw samples aged past 7 days)
    again = _watcher(file_store, taxonomy).step(now=NOW + 3600 + DAY)
    assert again.retention is not None and again.retention["rows_after"] == (DAY + 3600) // 300
    assert file_store.live.live_get("retention")["at"] == NOW + 3600 + DAY


def test_retention_settings(store, taxonomy):
    w = _watcher(store, taxonomy, retention={"every_s": 60, "raw_keep_s": 3600, "step_s": 60,
                                             "keep_s": 7200})
    _samples(store, NOW)
    r = w.step(now=NOW)
    assert r.retention["rows_after"] == 3600 // 60  # [2 h, 1 h) ago in 1 min buckets
    assert w.step(now=NOW + 30).retention is None and w.step(now=NOW + 60).retention is not None
    assert _watcher(store, taxonomy, retention={"enabled": False}).step(
        now=NOW + DAY).retention is None
    for bad, word in (({"every_s": "hourly"}, "not a number"), ({"keep": 1}, "unknown"),
                      ({"raw_keep_s": 10, "keep_s": 5}, "keep_s at least raw_keep_s")):
        with pytest.raises(InputError, match=word):
            _watcher(store, taxonomy, retention=bad)


class Stopper(threading.Event):
    """Records the waits between polls instead of waiting; stops after `n`."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.waits = n, []

    def wait(self, t=None):
        self.waits.append(t)
        return self.is_set()

    def is_set(self):
        return len(self.waits) >= self.n


def test_polls_start_on_a_fixed_schedule(store, taxonomy):
    """A poll that takes 0.3 s of a 1 s interval: the next one starts 1 s after it started
    (a wait of at most 0.7 s), not 1 s after it ended; one that overruns is followed at once."""
    w = _watcher(store, taxonomy, Idle(0.3), retention={"enabled": False})
    stop = Stopper(3)
    w.run(1.0, stop=stop)
    assert len(stop.waits) == 3 and all(0 <= t <= 0.7 for t in stop.waits), stop.waits
    slow = _watcher(store, taxonomy, Idle(0.3), retention={"enabled": False})
    stop = Stopper(2)
    slow.run(0.2, stop=stop)
    assert stop.waits == [0.0, 0.0]


def test_watch_once_reads_the_retention_settings(tmp_path):
    """`live.retention` reaches the watcher: a bad value stops `watch --once` with exit 2 and
    the setting's name; a good one runs the retention and keeps its time in the store."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from jobmedic.knowledge.store import Store

    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "sacct").write_text("#!/bin/sh\necho 'JobID|JobIDRaw|JobName|State|End'\n")
    (bin_ / "sacct").chmod(0o755)
    env = {**os.environ, "JOBMEDIC_DB": str(tmp_path / "w.db"),
           "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}
    exe = Path(sys.executable).with_name("jobmedic")
    cfg = tmp_path / "jm.yaml"
    cmd = [str(exe), "--config", str(cfg), "watch", "--once", "--sink", "stdout"]
    cfg.write_text("live:\n  retention: {every_s: hourly}\n")
    bad = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "live.retention" in bad.stderr, bad.stderr
    cfg.write_text("live:\n  read_output: false\n  retention: {every_s: 600}\n"
                   "  alerts: {memkill: {enabled: false}}\n")
    ok = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and "telemetry retention" in ok.stderr, ok.stderr
    with Store(tmp_path / "w.db") as s:
        assert s.live.live_get("retention")["at"] >= int(time.time()) - 120


class Replay:
    """A poller that writes the next chunk of a history and reports its jobs as new."""

    def __init__(self, store, chunks):
        self.store, self.chunks = store, list(chunks)

    def poll(self, now=None, since=None):
        rows = self.chunks.pop(0)
        self.store.upsert_jobs(rows)
        from jobmedic.knowledge.migrations import JOB_COLUMNS

        ids = [r[JOB_COLUMNS.index("job_id")] for r in rows]
        return PollResult(read=len(rows), new_jobs=self.store.live.jobs_by_ids("c1", ids))


def _outcomes(store):
    return sorted(store.conn.execute(
        "SELECT o.failed_job, o.followup_job, s.solution, o.success FROM solution_outcomes o "
        "JOIN failure_solutions s ON s.id = o.solution_id").fetchall())


def test_incremental_outcome_inference_matches_the_whole_store(taxonomy, remediations):
    """Jobs arriving poll by poll (a planted history of OOMs fixed or not, with other jobs of
    the same users between them and failures retried twice): the watcher's inference over
    each poll's resubmission groups records exactly what one whole-store run records."""
    from jobmedic.knowledge.outcomes import infer_outcomes
    from jobmedic.knowledge.rules import RuleBase
    from jobmedic.knowledge.store import Store
    from tests.knowledge.remedy_history import T0, job, planted_oom_history

    rulebase = RuleBase.from_dict(remediations, taxonomy.codes)

    rows = planted_oom_history(20, 15, 10, 4)
    for i in range(30):  # noise: the same users, other names, some failing
        t = T0 + i * 10_000 + 300
        rows.append(job(job_id=f"n{i}", user=f"u{i % 7}", name=f"etl-{i % 3}", project="ml",
                        state="failed" if i % 4 == 0 else "completed", raw_state="FAILED",
                        failure_type="app_error" if i % 4 == 0 else None,
                        submit_time=t, start_time=t + 5, end_time=t + 400, req_mem_mb=1000))
    for i in range(5):  # a failure retried twice: oom, oom with more memory, then completed
        t = T0 + 40 * 10_000 + i * 20_000
        for k, (st, mem) in enumerate((("oom", 4096), ("oom", 8192), ("completed", 16384))):
            rows.append(job(job_id=f"x{i}-{k}", user="u1", name=f"retry-{i}", project="ml",
                            state=st, submit_time=t + k * 3000, start_time=t + k * 3000 + 10,
                            end_time=t + k * 3000 + 2000, req_mem_mb=mem))
    from jobmedic.knowledge.migrations import JOB_COLUMNS

    sub = JOB_COLUMNS.index("submit_time")
    rows.sort(key=lambda r: r[sub])
    whole, inc = Store(":memory:"), Store(":memory:")
    try:
        whole.upsert_jobs(rows)
        infer_outcomes(whole, rulebase, 24)
        chunks = [rows[i:i + 7] for i in range(0, len(rows), 7)]
        w = Watcher(inc, taxonomy, Replay(inc, chunks), _no_rules(), Dispatcher(inc, []),
                    rulebase=rulebase, resubmit_window_h=24, read_output=False,
                    retention={"enabled": False})
        learned = sum(w.step(now=T0).outcomes for _ in chunks)
        want = _outcomes(whole)
        assert len(want) > 30 and learned == len(want)
        assert _outcomes(inc) == want
    finally:
        whole.close()
        inc.close()
