"""The sacct poller's cursor on recorded sacct output of the testbed (tests/fixtures/live):
poll 1 sees two failed jobs and one running, poll 2 sees the running one end (and misses job
46, which slurmdbd had not recorded yet), poll 3 sees 46. Restarts neither miss nor repeat."""
from __future__ import annotations

from pathlib import Path

import pytest

from jobmedic.live.poller import SacctPoller, SourceUnavailable, run_sacct
from jobmedic.live.watch import Watcher

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "live"
POLLS = [(FIX / f"sacct_poll{i}.txt").read_text() for i in (1, 2, 3)]
T0 = 1_795_954_940  # 2026-11-29T12:22:20Z, just before the recorded jobs


class Recorded:
    """Answers each sacct call with the next recorded output; remembers the commands."""

    def __init__(self, outputs: list[str]) -> None:
        self.outputs, self.calls = list(outputs), []

    def __call__(self, cmd: list[str]) -> str:
        self.calls.append(cmd)
        return self.outputs.pop(0)


def _poller(store, taxonomy, outputs):
    return SacctPoller(store, taxonomy, "testbed", runner=Recorded(outputs), overlap_s=300)


def test_each_job_is_new_once_across_polls_and_restarts(file_store, taxonomy):
    p = _poller(file_store, taxonomy, POLLS[:2])
    r1 = p.poll(now=T0 + 10, since=T0 - 3600)
    assert sorted(j["job_id"] for j in r1.new_jobs) == ["43", "45"]
    assert r1.running == 1 and r1.read == 3
    assert "--starttime=2026-11-29T11:22:20" in p.runner.calls[0]
    r2 = p.poll(now=T0 + 20)
    assert [j["job_id"] for j in r2.new_jobs] == ["44"]  # the late update of a running job
    assert r2.running == 0
    # The cursor is sacct's own latest End (12:22:22) minus the overlap.
    assert "--starttime=2026-11-29T12:17:22" in p.runner.calls[1]
    # A new watcher process (restart) on the same store: only job 46 is new.
    p2 = _poller(file_store, taxonomy, [POLLS[2], POLLS[2]])
    r3 = p2.poll(now=T0 + 30)
    assert "--starttime=2026-11-29T12:17:34" in p2.runner.calls[0]  # from the stored cursor
    assert [j["job_id"] for j in r3.new_jobs] == ["46"]
    assert p2.poll(now=T0 + 40).new_jobs == []
    n = file_store.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    ev = file_store.conn.execute("SELECT COUNT(*) FROM failure_events").fetchone()[0]
    assert (n, ev) == (4, 4)


def test_since_is_a_floor_the_overlap_never_crosses(store, taxonomy):
    p = _poller(store, taxonomy, [POLLS[0], POLLS[1]])
    p.poll(now=T0 + 10, since=T0 + 1)
    p.poll(now=T0 + 20)
    assert "--starttime=2026-11-29T12:22:21" in p.runner.calls[1]  # not 12:17:22


def test_new_failures_carry_state_and_type(store, taxonomy):
    # the poller's own cluster name is a default: sacct names the cluster of each job
    r = SacctPoller(store, taxonomy, "default", runner=Recorded([POLLS[2]])).poll(
        now=T0 + 30, since=T0)
    by_id = {j["job_id"]: j for j in r.new_failures}
    assert set(by_id) == {"43", "44", "45", "46"}
    assert by_id["44"]["exit_code"] == 2 and by_id["44"]["state"] == "failed"
    assert by_id["43"]["name"] == "train" and by_id["43"]["project"] == "physics"


def test_sacct_missing_is_a_source_error():
    with pytest.raises(SourceUnavailable, match="not on PATH"):
        run_sacct(["sacct-that-does-not-exist", "--parsable2"])


def test_sacct_failing_is_a_source_error(tmp_path):
    fake = tmp_path / "sacct"
    fake.write_text("#!/bin/sh\necho 'sacct: error: Problem talking to the database' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    with pytest.raises(SourceUnavailable, match="Problem talking to the database"):
        run_sacct([str(fake)])


def test_watch_keeps_polling_with_backoff_when_sacct_fails(store, taxonomy):
    from jobmedic.live.rules import RuleSet
    from jobmedic.live.sinks import Dispatcher

    calls = []

    def broken(cmd):
        calls.append(cmd)
        raise SourceUnavailable("sacct exited with 1: cannot reach slurmdbd")

    logs: list[str] = []
    w = Watcher(store, taxonomy, SacctPoller(store, taxonomy, "c", runner=broken),
                RuleSet(), Dispatcher(store, []), log=logs.append)
    import threading

    stop = threading.Event()
    waits = []

    class Stopper(threading.Event):
        def wait(self, t=None):
            waits.append(t)
            if len(waits) == 3:
                self.set()
            return self.is_set()

        def is_set(self):
            return len(waits) >= 3

    stop = Stopper()
    failures = w.run(10, stop=stop)
    assert failures == 3 and len(calls) == 3
    assert [round(t) for t in waits] == [20, 40, 80]  # backoff doubles (from each start)
    assert all("cannot reach slurmdbd" in m for m in logs)
