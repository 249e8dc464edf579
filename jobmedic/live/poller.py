"""The sacct poller: what is new since the last poll, with a cursor kept in the store.

The cursor is the latest End time sacct reported for a finished job, in sacct's own clock
(so clock skew between the controller and this host does not lose jobs). Each poll asks for
`--starttime=<cursor - overlap>`: sacct then lists every job that ended after that moment and
every job still running (however long ago it started), so late updates of running jobs are
re-read until they end. Re-reading is harmless (the store's keys make ingest idempotent); a
job counts as *new* only when the store did not yet hold it in that final state, so a restart
neither misses nor double-counts a job.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.errors import JobmedicError
from jobmedic.knowledge.templates import Templates

# The sacct columns asked for by `jobmedic watch` and `jobmedic sync slurm` (cli/ingest_cmd.py
# imports this one list).
SACCT_FIELDS = ("JobID,JobIDRaw,JobName,User,Account,Partition,QOS,State,ExitCode,Reason,Submit,"
                "Start,End,Elapsed,ElapsedRaw,Timelimit,TimelimitRaw,ReqCPUS,NCPUS,ReqMem,MaxRSS,"
                "NNodes,NodeList,ReqTRES,AllocTRES,WorkDir,SubmitLine,Cluster,Comment")
OPEN_STATES = {"running", "pending", "unknown"}
Runner = Callable[[list[str]], str]


class SourceUnavailable(JobmedicError):
    """The scheduler's accounting command is missing or failed (the watcher keeps polling)."""

    kind = "source_unavailable"
    http_status = 503


@dataclass
class PollResult:
    read: int = 0
    new_jobs: list[dict[str, Any]] = field(default_factory=list)  # newly final, as stored
    running: int = 0
    start: int | None = None
    cursor: int | None = None
    seconds: float = 0.0
    rejected: int = 0  # records that could not be read (in the rejects table)

    @property
    def new_failures(self) -> list[dict[str, Any]]:
        return [j for j in self.new_jobs if j.get("state") not in ("completed", "cancelled")]


def run_sacct(cmd: list[str]) -> str:
    """Run sacct and return its output; SourceUnavailable when it is missing or fails."""
    exe = shutil.which(cmd[0])
    if exe is None:
        raise SourceUnavailable(f"{cmd[0]} is not on PATH",
                                hint="run the watcher on a Slurm login node")
    try:
        proc = subprocess.run([exe, *cmd[1:]], capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SourceUnavailable(f"{cmd[0]} could not run: {exc}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[:300]
        raise SourceUnavailable(f"{cmd[0]} exited with {proc.returncode}: {err}",
                                hint="is slurmdbd up? (sacct reads the accounting database)")
    return proc.stdout.decode("utf-8", "replace")


def _by_cluster(keys: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c, jid in keys:
        out.setdefault(c, []).append(jid)
    return out


def _stamp(epoch: int) -> str:
    """An epoch as sacct's naive timestamp, read back the way the slurm reader reads it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


class SacctPoller:
    """Polls sacct for one cluster; state lives in the store under `sacct:<cluster>`."""

    def __init__(self, store: Any, taxonomy: Any, cluster: str, *, overlap_s: int = 300,
                 first_lookback_s: int = 3600, runner: Runner = run_sacct,
                 exe: str = "sacct", all_users: bool = True, batch_size: int = 5000) -> None:
        self.store, self.taxonomy, self.cluster = store, taxonomy, cluster
        self.overlap_s, self.first_lookback_s = overlap_s, first_lookback_s
        self.runner, self.exe, self.all_users, self.batch_size = runner, exe, all_users, batch_size
        self.key = f"sacct:{cluster}"

    def command(self, start: int) -> list[str]:
        cmd = [self.exe, "--parsable2", "--duplicates", f"--format={SACCT_FIELDS}",
               f"--starttime={_stamp(start)}"]
        return cmd + (["--allusers"] if self.all_users else [])

    def start_time(self, now: int, since: int | None = None) -> int:
        """`since` when given (it also becomes the floor the overlap never reaches below),
        else the stored cursor minus the overlap, else `first_lookback_s` ago."""
        cur = self.store.live.live_get(self.key) or {}
        if since is not None:
            return since
        if cur.get("end") is not None:
            return max(int(cur["end"]) - self.overlap_s, int(cur.get("floor") or 0))
        return now - self.first_lookback_s

    def poll(self, now: int | None = None, since: int | None = None) -> PollResult:
        t0 = time.perf_counter()
        now = int(time.time()) if now is None else now
        res = PollResult(start=self.start_time(now, since))
        text = self.runner(self.command(res.start))
        seen = self._parse(text)
        res.read = len(seen)
        before = {(c, j["job_id"]): (j["state"], j["end_time"])
                  for c, ids in _by_cluster(seen).items()
                  for j in self.store.live.jobs_by_ids(c, ids)}
        changed = [key for key, v in seen.items() if before.get(key) != v]
        fresh = [key for key in changed if seen[key][0] not in OPEN_STATES]
        res.running = sum(1 for s, _ in seen.values() if s in OPEN_STATES)
        if changed:  # an idle poll writes nothing
            res.rejected = self._write(text)
        for c, ids in _by_cluster(fresh).items():
            res.new_jobs += self.store.live.jobs_by_ids(c, ids)
        ends = [e for s, e in seen.values() if s not in OPEN_STATES and e]
        cur = self.store.live.live_get(self.key) or {}
        floor = since if since is not None else cur.get("floor")
        old_end = cur.get("end")
        res.cursor = max([*ends, *([old_end] if old_end is not None else [])], default=None)
        if res.cursor is None:
            res.cursor = res.start + self.overlap_s  # nothing ended: keep the window moving
        self.store.live.live_put(self.key, {"end": res.cursor, "floor": floor,
                                            "polled_at": now, "running": res.running})
        res.seconds = time.perf_counter() - t0
        return res

    def _ctx(self) -> IngestContext:
        return IngestContext(self.taxonomy, Templates(self.store.load_templates()),
                             cluster=self.cluster, batch_size=self.batch_size)

    def _parse(self, text: str) -> dict[tuple[str, str], tuple[str, int | None]]:
        """(cluster, job id) -> (normalised state, end time) of every job in the sacct text
        (sacct names the cluster of each job; `cluster` is the name when it does not)."""
        from jobmedic.ingest.slurm import COLUMNS

        i_c, i_id, i_state, i_end = (COLUMNS.index(c)
                                     for c in ("cluster", "job_id", "state", "end_time"))
        out: dict[tuple[str, str], tuple[str, int | None]] = {}
        if not text.strip():
            return out
        for batch in READERS["slurm"].batches(io.StringIO(text), self._ctx()):
            for row in batch.jobs:
                out[(str(row[i_c]), str(row[i_id]))] = (row[i_state], row[i_end])
        return out

    def _write(self, text: str) -> int:
        """Ingest the sacct text; returns the lines rejected."""
        fd, path = tempfile.mkstemp(suffix=".sacct", prefix="jobmedic-watch-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return run_ingest(self.store, READERS["slurm"], path, self._ctx()).rejected
        finally:
            os.unlink(path)
