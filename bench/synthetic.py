"""Synthetic cluster load for the analyze / stats benchmarks: N jobs over D days on a few
thousand nodes, written straight through Store.upsert_jobs / add_job_nodes (no ingest parsing),
with planted trouble (a few bad nodes, a bad image, an OOM-prone user, a noisy hour) so the
analyzers have real work to do. Deterministic for a given seed."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.store import Store

T_END = 1_717_200_000  # 2024-06-01 00:00 UTC
TYPES = np.array(["app_error", "oom", "timeout", "node_failure", "gpu_error", "segfault"])
BLAMES = np.array(["job", "job", "job", "cluster", "cluster", "job"])
STATES = np.array(["failed", "oom", "timeout", "node_fail", "failed", "failed"])


def build(path: str | Path, n_jobs: int, days: int = 30, seed: int = 0, batch: int = 100_000,
          n_nodes: int = 2000) -> dict:
    """Create (or reuse) a store with `n_jobs` synthetic jobs; returns build facts."""
    path = Path(path)
    if path.exists():
        with Store(path) as s:
            if s.table_counts()["jobs"] == n_jobs:
                return {"path": str(path), "jobs": n_jobs, "built_s": None, "reused": True}
        path.unlink()
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    nodes = np.array([f"node{i:04d}" for i in range(n_nodes)])
    users = np.array([f"user{i:03d}" for i in range(500)])
    projects = np.array([f"proj{i:02d}" for i in range(30)])
    images = np.array([f"registry/app{i:03d}:v{i % 7}" for i in range(200)])
    queues = np.array(["batch", "gpu", "debug", "long", "short"])
    bad_nodes = {7, 77, 777}
    with Store(path) as store:
        store.conn.execute("PRAGMA synchronous = OFF")
        for lo in range(0, n_jobs, batch):
            m = min(batch, n_jobs - lo)
            end = (T_END - rng.uniform(0, days * 86400, m)).astype(np.int64)
            u = rng.zipf(1.6, m) % len(users)
            node0 = rng.integers(0, n_nodes, m)
            img = rng.zipf(1.4, m) % len(images)
            width = np.where(rng.random(m) < 0.05, rng.integers(2, 9, m), 1)
            p = np.full(m, 0.04)
            p[np.isin(node0, list(bad_nodes))] = 0.35
            p[img == 13] = 0.5
            p[u == 42] = 0.4
            p[(end // 3600) % 24 == 3] += 0.05
            failed = rng.random(m) < p
            ft = rng.integers(0, len(TYPES), m)
            ft[np.isin(node0, list(bad_nodes))] = 4
            ft[u == 42] = 1
            elapsed = rng.integers(60, 36000, m)
            gpus = np.where(rng.random(m) < 0.3, rng.integers(1, 9, m), 0)
            rows = []
            nrows = []
            for i in range(m):
                jid = f"b{lo + i}"
                f = bool(failed[i])
                k = int(ft[i])
                rows.append(tuple({
                    "cluster": "bench", "job_id": jid, "name": f"job{int(u[i])}-{int(img[i]) % 5}",
                    "user": users[u[i]], "project": projects[int(u[i]) % 30],
                    "queue": queues[int(u[i]) % 5], "image": images[img[i]],
                    "state": STATES[k] if f else "completed",
                    "failure_type": TYPES[k] if f else None, "blame": BLAMES[k] if f else None,
                    "submit_time": int(end[i] - elapsed[i] - 60), "start_time": int(end[i] - elapsed[i]),
                    "end_time": int(end[i]), "elapsed_s": int(elapsed[i]), "req_cpus": 8,
                    "req_gpus": int(gpus[i]), "n_nodes": int(width[i]), "source": "bench",
                }.get(c) for c in JOB_COLUMNS))
                first = int(node0[i])
                for w in range(int(width[i])):
                    nrows.append(("bench", jid, nodes[(first + w) % n_nodes]))
            store.upsert_jobs(rows)
            store.add_job_nodes(nrows)
        store.conn.execute("ANALYZE")
    return {"path": str(path), "jobs": n_jobs, "built_s": round(time.perf_counter() - t0, 1),
            "reused": False}
