"""A synthetic Slurm-like workload with known mechanisms, for tests, benchmarks and demos.

Each (user, job name) has a latent failure propensity, a lognormal runtime and a peak memory;
users over-request time and memory by their own habit; a job whose peak memory exceeds its
request is an OOM. The models must recover these from the history, which is what the tests and
benchmarks check. Rows come in `JOB_COLUMNS` order for `Store.upsert_jobs`.

`telemetry_jobs` is a second, smaller workload for the early kind: ended jobs with per-minute GPU
and memory samples around their start, where failing jobs idle their GPUs more.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from jobmedic.knowledge.migrations import JOB_COLUMNS

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store


def synthetic_jobs(n: int, *, seed: int = 0, n_users: int = 60, names_per_user: int = 8,
                   start: int = 1_700_000_000, days: float = 60.0, cluster: str = "synth",
                   first_id: int = 100000) -> list[tuple]:
    """`n` jobs submitted uniformly over `days`, as tuples in JOB_COLUMNS order."""
    rng = np.random.default_rng(seed)
    n_names = n_users * names_per_user
    name_user = np.repeat(np.arange(n_users), names_per_user)
    p_fail = rng.beta(0.6, 6.0, n_names)
    mu_rt = rng.normal(np.log(3600), 1.2, n_names)
    mu_mem = rng.normal(np.log(4000), 1.0, n_names)
    over_t = np.exp(rng.normal(1.2, 0.5, n_users))
    over_m = np.exp(rng.normal(0.5, 0.4, n_users))
    gpus = rng.choice([0, 0, 0, 1, 4], n_names)
    nm = rng.integers(0, n_names, n)
    u = name_user[nm]
    submit = np.sort(start + rng.uniform(0, days * 86400, n)).astype(np.int64)
    wait = rng.exponential(300, n).astype(np.int64)
    runtime = np.exp(mu_rt[nm] + rng.normal(0, 0.35, n))
    rss = np.exp(mu_mem[nm] + rng.normal(0, 0.25, n))
    req_mem = np.round(np.exp(mu_mem[nm]) * over_m[u] * 1.1 / 1024) * 1024 + 1024
    req_t = np.ceil(np.exp(mu_rt[nm]) * over_t[u] / 3600) * 3600
    cpus = 2 ** rng.integers(0, 6, n_names)[nm]
    fail = rng.random(n) < p_fail[nm]
    oom = rss > req_mem
    timeout = runtime > req_t
    state = np.where(oom, "oom", np.where(timeout, "timeout", np.where(fail, "failed", "completed")))
    elapsed = np.where(timeout, req_t, np.where(fail | oom, runtime * rng.uniform(0.05, 0.9, n), runtime))
    elapsed = elapsed.astype(np.int64)
    queues = np.where(gpus[nm] > 0, "gpu", np.where(cpus >= 16, "large", "normal"))
    rows = []
    for i in range(n):
        st = state[i]
        rows.append(tuple({
            "cluster": cluster, "job_id": str(first_id + i), "name": f"job{nm[i]}",
            "user": f"user{u[i]}", "project": f"proj{u[i] % 7}", "queue": str(queues[i]),
            "qos": "normal", "image": f"img{nm[i] % 23}" if gpus[nm[i]] else None, "state": st,
            "raw_state": st.upper(), "exit_code": 0 if st == "completed" else 1,
            "submit_time": int(submit[i]), "start_time": int(submit[i] + wait[i]),
            "end_time": int(submit[i] + wait[i] + elapsed[i]), "elapsed_s": int(elapsed[i]),
            "timelimit_s": int(req_t[i]), "req_cpus": int(cpus[i]),
            "req_gpus": int(gpus[nm[i]]), "req_mem_mb": float(req_mem[i]),
            "max_rss_mb": float(min(rss[i], req_mem[i])) if st != "oom" else float(req_mem[i]),
            "n_nodes": 1, "source": "synthetic",
            "failure_type": {"oom": "oom", "timeout": "timeout", "failed": "app_error"}.get(st),
        }.get(c) for c in JOB_COLUMNS))
    return rows


def fill_store(store: Store, n: int, **kw) -> int:
    """Insert `n` synthetic jobs into `store`; returns the number inserted."""
    rows = synthetic_jobs(n, **kw)
    inserted, _ = store.upsert_jobs(rows)
    return inserted


TELEMETRY_T0 = 1_599_999_960  # a whole minute: the first submit time of `telemetry_jobs`
TELEMETRY_COLUMNS = ("cluster", "job_id", "user", "project", "state", "submit_time",
                     "start_time", "end_time", "req_gpus", "req_mem_mb", "source")


def seen_at(rows: list[tuple], t: int) -> list[tuple]:
    """Job rows (JOB_COLUMNS order) as a poll at `t` saw them: those submitted before `t`,
    still running (no end, state RUNNING) if they end at or after it."""
    c = {name: i for i, name in enumerate(JOB_COLUMNS)}
    out = []
    for r in rows:
        if r[c["submit_time"]] >= t:
            continue
        r = list(r)
        if r[c["end_time"]] >= t:
            for col in ("end_time", "elapsed_s", "max_rss_mb", "exit_code", "failure_type"):
                r[c[col]] = None
            r[c["state"]], r[c["raw_state"]] = "running", "RUNNING"
        out.append(tuple(r))
    return out


def replayed(rows: list[tuple], top: float, tag: str) -> list[tuple]:
    """Job rows (JOB_COLUMNS order) replayed as a later poll: job ids suffixed `-tag`, times
    shifted so the earliest submission is 60 s after `top` (the store's newest end time)."""
    c = {name: i for i, name in enumerate(JOB_COLUMNS)}
    shift = float(top) - min(r[c["submit_time"]] for r in rows) + 60
    out = []
    for r in rows:
        r = list(r)
        r[c["job_id"]] = f"{r[c['job_id']]}-{tag}"
        for col in ("submit_time", "start_time", "end_time"):
            if r[c[col]] is not None:
                r[c[col]] = r[c[col]] + shift
        out.append(tuple(r))
    return out


def telemetry_jobs(n: int, *, seed: int = 0, n_users: int = 25,
                   req_mem_mb: float | None = None) -> tuple[list[tuple], list[tuple]]:
    """`n` ended philly jobs, one every 10 minutes from TELEMETRY_T0, and their samples.

    Users ``u0..`` have their own failure propensity; a failing job's GPU utilisation is drawn
    around 30 %, a completed one's around 60 % (sd 15, clipped to 0..100), with a memory-used
    percentage beside it, one sample a minute from 10 minutes before the start to 3 after.
    Returns (jobs in TELEMETRY_COLUMNS order, samples in `Store.add_samples` order)."""
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(n_users)]
    prop = dict(zip(users, rng.uniform(0.05, 0.9, len(users))))
    jobs, samples = [], []
    for i in range(n):
        u = users[rng.integers(len(users))]
        fail = rng.random() < prop[u]
        sub = TELEMETRY_T0 + i * 600
        start = sub + 60
        end = start + int(rng.integers(600, 3000))
        jobs.append(("philly", str(i), u, "vc1", "failed" if fail else "completed", sub, start,
                     end, 1, req_mem_mb, "philly"))
        for k in range(-10, 4):
            g = rng.normal(30 if fail else 60, 15)
            t = start // 60 * 60 + 60 * k
            samples.append(("philly", str(i), "m1", "gpu0", "gpu_util_pct", t,
                            float(np.clip(g, 0, 100)), "philly"))
            samples.append(("philly", str(i), "m1", "", "mem_used_pct", t,
                            float(rng.uniform(10, 50)), "philly"))
    return jobs, samples


def fill_telemetry(store: Store, n: int, **kw) -> None:
    """Insert `telemetry_jobs(n, **kw)` (jobs and samples) into `store`."""
    jobs, samples = telemetry_jobs(n, **kw)
    store.upsert_jobs(jobs, columns=TELEMETRY_COLUMNS)
    store.add_samples(samples)
