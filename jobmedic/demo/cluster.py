"""A simulated Slurm cluster with realistic failure mechanisms, for the demo.

The jobs it produces are written out as real `sacct --parsable2` text (sacct_text.py) so the
demo runs the real reader. Planted mechanisms, each something an operator would want found:

- a failing node: gpu07 starts losing jobs (NODE_FAIL, Xid 79 "fallen off the bus") in the
  last week, across many users;
- an OOM-prone project: bio-sim under-requests memory, its jobs die OUT_OF_MEMORY with MaxRSS
  at the request, and its users resubmit the same job with twice the memory, which mostly works;
- a busy-hour spike: 13:00-15:59 UTC has 2.5x the submissions, and the overloaded scratch
  file system fails jobs minutes after they start (stale file handles);
- background: application errors, segfaults, cancellations, a few pre-emptions.

Everything is drawn from one seeded generator: the same seed and anchor give the same jobs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

HOUR, DAY = 3600, 86400
BUSY_HOURS = (13, 14, 15)
FAILING_NODE = "gpu07"
OOM_PROJECT = "bio-sim"

PROJECTS: dict[str, dict[str, Any]] = {
    "ml-team": {"users": ["alice", "dave", "gina", "omar"], "queue": "gpu",
                "names": ["train_resnet", "finetune_llm", "eval_bert"], "gpus": (1, 2, 4),
                "mem_gb": (32, 64, 128), "hours": (2, 6, 12)},
    "climate": {"users": ["bob", "carol", "ivan"], "queue": "cpu",
                "names": ["wrf_run", "cesm_case", "postproc"], "gpus": (0,),
                "mem_gb": (16, 32, 64), "hours": (4, 12, 24)},
    "bio-sim": {"users": ["erin", "frank", "hana"], "queue": "cpu",
                "names": ["md_sim", "gromacs_eq", "alphafold_db"], "gpus": (0,),
                "mem_gb": (8, 16), "hours": (2, 8)},
    "physics": {"users": ["kai", "lena"], "queue": "cpu",
                "names": ["lattice_qcd", "mpi_solver"], "gpus": (0,),
                "mem_gb": (16, 32), "hours": (6, 24)},
    "vision": {"users": ["maya", "nico", "paul"], "queue": "gpu",
               "names": ["yolo_train", "segformer", "clip_eval"], "gpus": (1, 2),
               "mem_gb": (32, 64), "hours": (1, 4, 8)},
}
CPU_NODES = [f"cn{i:03d}" for i in range(1, 41)]
GPU_NODES = [f"gpu{i:02d}" for i in range(1, 13)]
PROJECT_WEIGHTS = {"ml-team": 0.24, "climate": 0.2, "bio-sim": 0.2, "physics": 0.12, "vision": 0.24}


@dataclass
class SimJob:
    job_id: int
    name: str
    user: str
    project: str
    queue: str
    submit: int
    start: int
    end: int
    state: str
    exit_code: str
    timelimit_s: int
    cpus: int
    gpus: int
    req_mem_mb: int
    max_rss_mb: int
    nodes: list[str]
    comment: str = ""
    resubmit_of: int | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class Cluster:
    """The simulated history: `jobs` in submit order, and where each mechanism was planted."""

    anchor: int
    days: int
    jobs: list[SimJob]
    truth: dict[str, Any]


def simulate(anchor: int, days: int = 21, seed: int = 7, jobs_per_day: int = 450) -> Cluster:
    """Jobs submitted over `days` days ending at `anchor` (epoch seconds)."""
    rng = np.random.default_rng(seed)
    start = anchor - days * DAY
    node_bad_from = anchor - 7 * DAY
    jobs: list[SimJob] = []
    next_id = 700_000
    projects = list(PROJECTS)
    weights = np.array([PROJECT_WEIGHTS[p] for p in projects])
    hour_rate = np.array([0.5 if h < 7 else 1.0 for h in range(24)], dtype=float)
    hour_rate[list(BUSY_HOURS)] = 2.5
    per_hour = hour_rate / hour_rate.sum() * jobs_per_day
    for day in range(days):
        weekend = ((start + day * DAY) // DAY + 4) % 7 >= 5  # 1970-01-01 was a Thursday
        for hour in range(24):
            n = rng.poisson(per_hour[hour] * (0.6 if weekend else 1.0))
            t0 = start + day * DAY + hour * HOUR
            for submit in np.sort(t0 + rng.integers(0, HOUR, n)):
                proj = projects[rng.choice(len(projects), p=weights)]
                job = _draw(rng, next_id, proj, int(submit), node_bad_from, hour)
                next_id += 1
                jobs.append(job)
                if job.state == "OUT_OF_MEMORY" and rng.random() < 0.85:
                    retry = _resubmit(rng, next_id, job)
                    next_id += 1
                    if retry.submit < anchor:
                        jobs.append(retry)
    jobs = [j for j in jobs if j.submit < anchor]
    jobs.sort(key=lambda j: (j.submit, j.job_id))
    for j in jobs:  # nothing ends after the anchor: still running at "now"
        if j.end > anchor:
            j.state, j.exit_code, j.end = "RUNNING", "0:0", 0
    truth = {"failing_node": FAILING_NODE, "node_bad_from": node_bad_from,
             "oom_project": OOM_PROJECT, "busy_hours": list(BUSY_HOURS),
             "oom_job": next((j.job_id for j in reversed(jobs) if j.state == "OUT_OF_MEMORY"
                              and any(r.resubmit_of == j.job_id for r in jobs)), None),
             "node_fail_job": next((j.job_id for j in reversed(jobs)
                                    if "bad_node" in j.tags), None)}
    return Cluster(anchor, days, jobs, truth)


def _draw(rng: np.random.Generator, job_id: int, proj: str, submit: int, node_bad_from: int,
          hour: int) -> SimJob:
    spec = PROJECTS[proj]
    user = spec["users"][rng.integers(len(spec["users"]))]
    name = f"{spec['names'][rng.integers(len(spec['names']))]}_{int(rng.integers(1000)):03d}"
    gpus = int(rng.choice(spec["gpus"]))
    queue = spec["queue"]
    mem_mb = int(rng.choice(spec["mem_gb"])) * 1024
    limit = int(rng.choice(spec["hours"])) * HOUR
    cpus = int(rng.choice([4, 8, 16])) if gpus else int(rng.choice([8, 16, 32, 64]))
    n_nodes = 1 if gpus or rng.random() < 0.8 else int(rng.integers(2, 5))
    pool = GPU_NODES if queue == "gpu" else CPU_NODES
    first = int(rng.integers(0, len(pool) - n_nodes + 1))
    nodes = pool[first:first + n_nodes]
    wait = int(rng.exponential(900 if hour in BUSY_HOURS else 240))
    begin = submit + wait
    runtime = int(np.clip(rng.lognormal(np.log(limit * 0.35), 0.6), 60, limit))
    usage = float(rng.uniform(0.3, 0.8))
    state, code, comment, tags = "COMPLETED", "0:0", "", []
    u = rng.random()
    busy = hour in BUSY_HOURS
    if proj == OOM_PROJECT and u < 0.28:
        state, code, usage = "OUT_OF_MEMORY", "0:125", float(rng.uniform(0.99, 1.02))
        runtime = int(runtime * rng.uniform(0.1, 0.6))
    elif FAILING_NODE in nodes and submit >= node_bad_from and u < 0.45:
        tags.append("bad_node")
        runtime = int(runtime * rng.uniform(0.05, 0.7))
        if rng.random() < 0.6:
            state, code = "NODE_FAIL", "0:0"
        else:
            state, code = "FAILED", "1:0"
            comment = "NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus"
    elif busy and u < 0.09:  # scratch file system overloaded at the busy hours
        state, code = "FAILED", "1:0"
        comment = f"OSError: [Errno 116] Stale file handle: '/scratch/{user}/{name}/out.h5'"
        wait, runtime = int(rng.integers(0, 300)), int(rng.integers(30, 600))
        begin = submit + wait
    elif u < 0.025:
        state, code, runtime = "TIMEOUT", "0:0", limit
    elif u < 0.13 and rng.random() < 0.4:
        state, code = "FAILED", "1:0"
        runtime = int(runtime * rng.uniform(0.01, 0.5))
    elif u < 0.14:
        state, code = "FAILED", "0:11"
        comment = "Segmentation fault (core dumped)"
    elif u < 0.17:
        state, code = "CANCELLED by 0", "0:0"
        runtime = int(runtime * rng.uniform(0.0, 0.5))
    elif u < 0.175 and queue == "gpu":
        state, code = "PREEMPTED", "0:0"
    rss = int(mem_mb * usage)
    return SimJob(job_id, name, user, proj, queue, submit, begin, begin + max(runtime, 1), state,
                  code, limit, cpus, gpus, mem_mb, rss, nodes, comment, None, tags)


def _resubmit(rng: np.random.Generator, job_id: int, failed: SimJob) -> SimJob:
    """The same user resubmits the same job with twice the memory, soon after the failure."""
    submit = failed.end + int(rng.integers(300, 3 * HOUR))
    begin = submit + int(rng.exponential(300))
    works = rng.random() < 0.85
    mem = failed.req_mem_mb * 2
    runtime = int(np.clip(failed.timelimit_s * rng.uniform(0.2, 0.7), 60, failed.timelimit_s))
    if works:
        state, code, rss = "COMPLETED", "0:0", int(failed.max_rss_mb * rng.uniform(1.1, 1.6))
    else:
        state, code, rss = "OUT_OF_MEMORY", "0:125", int(mem * rng.uniform(0.99, 1.02))
        runtime //= 3
    return SimJob(job_id, failed.name, failed.user, failed.project, failed.queue, submit, begin,
                  begin + runtime, state, code, failed.timelimit_s, failed.cpus, failed.gpus,
                  mem, min(rss, mem + 50), _same_shape(rng, failed), "", failed.job_id,
                  ["resubmit"])


def _same_shape(rng: np.random.Generator, failed: SimJob) -> list[str]:
    """Nodes for a resubmission: as many as before, wherever the scheduler finds room."""
    pool = GPU_NODES if failed.queue == "gpu" else CPU_NODES
    first = int(rng.integers(0, len(pool) - len(failed.nodes) + 1))
    return pool[first:first + len(failed.nodes)]
