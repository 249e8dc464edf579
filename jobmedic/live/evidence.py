"""Evidence for failed jobs from what they printed, stored on their failure events.

For Slurm jobs the output files are found and read by `joboutput`; `scontrol show job -o` is
asked once per pass (not once per job) for the jobs the controller still knows. For
Kubernetes pods a configurable command (default `kubectl logs --previous`) gives the last
terminated container's log. `diagnose <job>` then quotes the job's own line.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobmedic.live.joboutput import SNIPPET_CHARS, JobOutput, classify, read_job_output, redact

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

KUBE_LOGS = "kubectl logs --previous --tail=200 -n {namespace} {pod}"
_TIMEOUT_S = 20


@dataclass
class EvidenceSummary:
    jobs: int = 0
    with_output: int = 0
    retyped: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "with_output": self.with_output, "retyped": self.retyped,
                "notes": self.notes[:20]}


def scontrol_jobs(exe: str | None = None) -> dict[str, str]:
    """Job id (`123`, or `45_2` for an array task) -> its `scontrol show job -o` line, for
    every job the controller still holds; {} when scontrol is missing or fails."""
    exe = exe or shutil.which("scontrol")
    if not exe:
        return {}
    try:
        proc = subprocess.run([exe, "show", "job", "-o"], capture_output=True, text=True,
                              timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return {}
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        m = re.search(r"\bJobId=(\d+)", line)
        if not m:
            continue
        arr = re.search(r"\bArrayJobId=(\d+) ArrayTaskId=(\d+)\b", line)
        out[f"{arr.group(1)}_{arr.group(2)}" if arr else m.group(1)] = line
    return out


def kube_logs(job: dict[str, Any], template: str = KUBE_LOGS) -> str | None:
    """The last terminated container's log of a pod (None when the command is unavailable)."""
    pod = job.get("pod_name") or job.get("name") or job.get("job_id")
    ns = job.get("project") or "default"
    try:
        cmd = [w.format(pod=pod, namespace=ns, job_id=job.get("job_id"))
               for w in shlex.split(template)]
    except (ValueError, KeyError, IndexError):
        return None
    if not cmd or shutil.which(cmd[0]) is None:
        return None
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return redact(proc.stdout[-64 * 1024:].decode("utf-8", "replace"))


def _read(job: dict[str, Any], taxonomy: Any, known: dict[str, str],
          kube_command: str | None) -> JobOutput:
    if job.get("source") == "slurm" or job.get("work_dir"):
        return read_job_output(job, taxonomy, known.get(str(job["job_id"])))
    res = JobOutput()
    if kube_command and job.get("source") in ("kubernetes", "runai"):
        text = kube_logs(job, kube_command)
        if text:
            res.text = text.strip()
            classify(res, taxonomy)
    return res


def collect(store: Store, taxonomy: Any, jobs: list[dict[str, Any]], *, use_scontrol: bool = True,
            kube_command: str | None = None) -> EvidenceSummary:
    """Read the output of each failed job in `jobs` and store it on its failure event."""
    summary = EvidenceSummary()
    jobs = [j for j in jobs if j.get("state") in ("failed", "timeout", "oom", "node_fail",
                                                     "preempted")]
    if not jobs:
        return summary
    known = scontrol_jobs() if use_scontrol and any(j.get("source") == "slurm"
                                                     for j in jobs) else {}
    rows: list[tuple] = []  # written in one transaction at the end
    for job in jobs:
        summary.jobs += 1
        res = _read(job, taxonomy, known, kube_command)
        summary.notes += res.notes
        if not res.text:  # looked, found nothing: '' so that it is not read again
            rows.append((job["cluster"], str(job["job_id"]), "", None, None, None))
            continue
        summary.with_output += 1
        ftype = blame = None
        stored = job.get("failure_type")
        if (res.failure_type and res.failure_type not in ("unknown", "app_error", "cancelled")
                and stored in ("app_error", "unknown", None)):
            ftype, blame = res.failure_type, taxonomy.blame_of(res.failure_type)
            summary.retyped += 1
        line = res.evidence[0] if res.evidence else None
        rows.append((job["cluster"], str(job["job_id"]), res.snippet[-SNIPPET_CHARS:], line,
                     ftype, blame))
    store.live.set_job_outputs(rows)
    return summary


def collect_since(store: Store, taxonomy: Any, since: int, **kw: Any) -> EvidenceSummary:
    """Evidence for every failed job ended since `since` that has none yet."""
    return collect(store, taxonomy, store.live.failed_jobs_without_output(since), **kw)


_REL = re.compile(r"^now(?:([-+])(\d+)(seconds|minutes|hours|days|weeks)?)?$", re.IGNORECASE)
_UNIT_S = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}


def sacct_time_to_epoch(value: str | None, now: int) -> int:
    """sacct's --starttime spelling (`now-1days`, `2024-05-01`, `2024-05-01T12:00`) as epoch
    seconds; a day ago when it cannot be read."""
    from jobmedic.core.timeutil import parse_time_arg

    v = (value or "").strip()
    m = _REL.match(v)
    if m:
        sign, n, unit = m.groups()
        delta = int(n or 0) * _UNIT_S[(unit or "seconds").lower()]
        return now - delta if sign != "+" else now + delta
    try:
        return parse_time_arg(v)
    except ValueError:
        return now - 86400


def after_sync(store: Store, taxonomy: Any, since: str | None, now: int,
               echo: Any = None) -> EvidenceSummary:
    """`jobmedic sync slurm`'s last step: the output of the failed jobs it brought."""
    s = collect_since(store, taxonomy, sacct_time_to_epoch(since, now))
    if echo and s.jobs:
        echo(f"job output: read for {s.with_output} of {s.jobs} failed jobs"
             + (f", {s.retyped} retyped from what they printed" if s.retyped else ""))
    return s
