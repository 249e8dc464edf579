"""A replayed history for remedy tests: failed jobs and their resubmissions, written through
the Store's own methods (no outcome is recorded by hand)."""
from __future__ import annotations

from typing import Any

from jobmedic.knowledge.migrations import JOB_COLUMNS

T0 = 1_700_000_000


def job(**kw: Any) -> tuple:
    base = {"cluster": "c1", "source": "slurm", "queue": "batch", "req_cpus": 4, "req_gpus": 0,
            "timelimit_s": 3600, "n_nodes": 1}
    base.update(kw)
    if base["state"] == "oom":
        base.setdefault("failure_type", "oom")
        base.setdefault("blame", "job")
    return tuple(base.get(c) for c in JOB_COLUMNS)


def planted_oom_history(n_double: int = 50, ok_double: int = 40, n_image: int = 50,
                        ok_image: int = 10, project: str = "ml") -> list[tuple]:
    """OOM failures fixed by doubling memory (ok_double of n_double work) or by switching the
    image (ok_image of n_image work)."""
    rows = []
    for i in range(n_double + n_image):
        t = T0 + i * 10_000
        user, name = f"u{i % 7}", f"train-{i}"
        rows.append(job(job_id=f"{i}", user=user, name=name, project=project, state="oom",
                        raw_state="OUT_OF_MEMORY", submit_time=t, start_time=t + 10,
                        end_time=t + 600, req_mem_mb=8192, max_rss_mb=8100, image="pytorch:2.1"))
        doubling = i < n_double
        works = i < ok_double if doubling else i - n_double < ok_image
        follow = {"job_id": f"{i}r", "user": user, "name": name, "project": project,
                  "submit_time": t + 900, "start_time": t + 910, "end_time": t + 2000,
                  "req_mem_mb": 16384 if doubling else 8192,
                  "image": "pytorch:2.1" if doubling else "pytorch:2.1-slim",
                  "state": "completed" if works else "oom",
                  "raw_state": "COMPLETED" if works else "OUT_OF_MEMORY"}
        rows.append(job(**follow))
    return rows
