"""Build small stores with planted truth: jobs with known nodes, users, images and outcomes."""
from __future__ import annotations

from typing import Any

import numpy as np

from jobmedic.core.timeutil import Window
from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.store import Store

T0 = 1_700_006_400  # 2023-11-15 00:00 UTC, a Wednesday
BLAME = {"node_failure": "cluster", "gpu_error": "cluster", "oom": "job", "app_error": "job",
         "crash_loop": "job", "timeout": "job", "filesystem_error": "cluster"}
STATE = {"oom": "oom", "timeout": "timeout", "node_failure": "node_fail"}


class Planted:
    """Accumulates jobs, then writes them (and their nodes) through the Store's bulk methods."""

    def __init__(self, store: Store, seed: int = 0, days: int = 7, cluster: str = "c1") -> None:
        self.store, self.rng, self.days, self.cluster = store, np.random.default_rng(seed), days, cluster
        self.jobs: list[tuple] = []
        self.nodes: list[tuple[str, str, str]] = []
        self.window = Window(T0, T0 + days * 86400)

    def add(self, n: int, *, nodes: list[str] | str = "n01", user: str | list[str] = "u1",
            image: str | None = "img:1", project: str = "p1", queue: str = "batch",
            fail: float = 0.0, ftype: str = "app_error", hours: list[int] | None = None,
            day_from: float = 0, day_to: float | None = None, n_nodes: int = 1,
            exact: bool = True, elapsed: int = 3600, gpus: int = 0, name: str | None = None) -> None:
        """n jobs; a fraction `fail` of them fail (exactly, spread at random when `exact`)."""
        day_to = self.days if day_to is None else day_to
        if exact:
            failed = np.zeros(n, bool)
            failed[self.rng.choice(n, round(fail * n), replace=False)] = True
        else:
            failed = self.rng.random(n) < fail
        for i in range(n):
            jid = f"j{len(self.jobs)}"
            t = T0 + self.rng.uniform(day_from, day_to) * 86400
            if hours is not None:
                t = (int(t) // 86400) * 86400 + int(self.rng.choice(hours)) * 3600 + int(self.rng.integers(3600))
            u = user if isinstance(user, str) else str(self.rng.choice(user))
            node_list = [nodes] if isinstance(nodes, str) else (
                list(nodes) if n_nodes > 1 else [str(self.rng.choice(nodes))])
            state = STATE.get(ftype, "failed") if failed[i] else "completed"
            row: dict[str, Any] = {
                "cluster": self.cluster, "job_id": jid, "name": name or f"job-{u}", "user": u,
                "project": project, "queue": queue, "image": image, "state": state,
                "failure_type": ftype if failed[i] else None,
                "blame": BLAME.get(ftype, "job") if failed[i] else None,
                "submit_time": int(t) - elapsed, "start_time": int(t) - elapsed, "end_time": int(t),
                "elapsed_s": elapsed, "req_cpus": 4, "req_gpus": gpus, "n_nodes": len(node_list),
                "source": "test"}
            self.jobs.append(tuple(row.get(c) for c in JOB_COLUMNS))
            self.nodes += [(self.cluster, jid, nd) for nd in node_list]

    def write(self) -> Window:
        self.store.upsert_jobs(self.jobs)
        self.store.add_job_nodes(self.nodes)
        self.jobs, self.nodes = [], []
        return self.window
