"""Write simulated jobs as `sacct --parsable2 --duplicates --format=...` prints them: a header
line, then each job's allocation line followed by its `.batch` and `.extern` steps, with
compressed node lists (`cn[003-005]`), `N:S` exit codes, `[D-]HH:MM:SS` durations and
memory with units, exactly the text `jobmedic sync slurm` would read from a real cluster."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jobmedic.demo.cluster import SimJob

FIELDS = ("JobID", "JobIDRaw", "JobName", "User", "Account", "Partition", "QOS", "State",
          "ExitCode", "Reason", "Submit", "Start", "End", "Elapsed", "ElapsedRaw", "Timelimit",
          "TimelimitRaw", "ReqCPUS", "NCPUS", "ReqMem", "MaxRSS", "NNodes", "NodeList",
          "ReqTRES", "AllocTRES", "WorkDir", "SubmitLine", "Cluster", "Comment")
CLUSTER = "hpc"


def _ts(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S") if t else "Unknown"


def _dur(s: int) -> str:
    d, rem = divmod(max(int(s), 0), 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    return (f"{d}-" if d else "") + f"{h:02d}:{m:02d}:{sec:02d}"


def compress_nodes(nodes: list[str]) -> str:
    """`cn003,cn004,cn005` -> `cn[003-005]` (one prefix, contiguous runs), as Slurm prints."""
    if len(nodes) <= 1:
        return nodes[0] if nodes else "None assigned"
    prefix = nodes[0].rstrip("0123456789")
    width = len(nodes[0]) - len(prefix)
    nums = sorted(int(n[len(prefix):]) for n in nodes)
    runs, lo, prev = [], nums[0], nums[0]
    for n in nums[1:] + [None]:  # type: ignore[list-item]
        if n is not None and n == prev + 1:
            prev = n
            continue
        runs.append(f"{lo:0{width}d}" if lo == prev else f"{lo:0{width}d}-{prev:0{width}d}")
        if n is not None:
            lo = prev = n
    return f"{prefix}[{','.join(runs)}]"


def job_lines(j: SimJob) -> list[str]:
    running = j.state == "RUNNING"
    elapsed = (j.end - j.start) if not running else 0
    nodelist = compress_nodes(j.nodes)
    mem = f"{j.req_mem_mb // 1024}G" if j.req_mem_mb % 1024 == 0 else f"{j.req_mem_mb}M"
    tres = f"billing={j.cpus},cpu={j.cpus},mem={mem},node={len(j.nodes)}" + (
        f",gres/gpu={j.gpus}" if j.gpus else "")
    script = f"sbatch --mem={mem} --time={_dur(j.timelimit_s)} {j.name}.sh"
    reason = "None"
    alloc = [str(j.job_id), str(j.job_id), j.name, j.user, j.project, j.queue, "normal", j.state,
             j.exit_code, reason, _ts(j.submit), _ts(j.start), _ts(j.end), _dur(elapsed),
             str(elapsed), _dur(j.timelimit_s), str(j.timelimit_s // 60), str(j.cpus),
             str(j.cpus), mem, "", str(len(j.nodes)), nodelist, tres, tres,
             f"/home/{j.user}/{j.name}", script, CLUSTER, j.comment]
    lines = ["|".join(alloc)]
    if running:
        return lines
    batch_state = {"NODE_FAIL": "CANCELLED", "TIMEOUT": "CANCELLED",
                   "PREEMPTED": "CANCELLED"}.get(j.state, j.state.split(" ")[0])
    batch_exit = {"TIMEOUT": "0:15", "NODE_FAIL": "0:9", "PREEMPTED": "0:15"}.get(j.state, j.exit_code)
    for step, state, code, rss in ((".batch", batch_state, batch_exit, f"{j.max_rss_mb * 1024}K"),
                                   (".extern", "COMPLETED", "0:0", "1024K")):
        sid = f"{j.job_id}{step}"
        lines.append("|".join([sid, sid, step[1:], "", j.project, "", "", state, code, "",
                               _ts(j.start), _ts(j.start), _ts(j.end), _dur(elapsed),
                               str(elapsed), "", "", str(j.cpus), str(j.cpus), mem, rss,
                               "1", j.nodes[0], "", tres, "", "", CLUSTER, ""]))
    return lines


def write_sacct(jobs: list[SimJob], path: str | Path) -> int:
    """Write the jobs to `path`; returns the number of lines written (header included)."""
    n = 1
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("|".join(FIELDS) + "\n")
        for j in jobs:
            lines = job_lines(j)
            fh.write("\n".join(lines) + "\n")
            n += len(lines)
    return n
