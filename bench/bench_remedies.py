"""Remediate / diagnose latency and outcome-inference time on a synthetic store (issue 4).

`python -m bench remedies [--jobs 1000000] [--repeat 30] [--rebuild]`: builds (or reuses)
bench/out/remedies_<N>.db through Store methods: N jobs of 2,000 users in 50 projects over a
year, ~14 % failures of the taxonomy's types with failure events and templates, and a
resubmission after 40 % of the failures (memory doubled, time raised, node excluded, image
changed or unchanged; the follow-up works with a rate that depends on the change). Then it times,
in-process through run_action: outcome inference over the whole store (`learn`), the cold
knowledge-graph build, and the median / p95 of remediate (by type, by job, scoped) and
diagnose (pasted texts, by job id).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import yaml

from jobmedic.knowledge.graph import graph_for
from jobmedic.knowledge.migrations import FAILURE_EVENT_COLUMNS, JOB_COLUMNS
from jobmedic.knowledge.outcomes import infer_outcomes
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.settings import config_path
from jobmedic.tools import ToolContext, run_action
from jobmedic.tools.remedy_common import rules_of

OUT = Path(__file__).resolve().parent / "out"
FIX = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "diagnose"
T0 = 1_700_000_000
TYPES = [  # (type, state, share of failures, message template)
    ("oom", "oom", 0.30, "slurmstepd: error: Detected {n} oom_kill event in StepId={j}.batch."),
    ("timeout", "timeout", 0.20, "slurmstepd: error: *** JOB {j} ON cn{n} CANCELLED AT 2024 DUE TO TIME LIMIT ***"),
    ("app_error", "failed", 0.18, "error: process exited with status {n}"),
    ("node_failure", "node_fail", 0.07, "JOB {j} DUE TO NODE FAILURE on cn{n}"),
    ("gpu_error", "failed", 0.06, "NVRM: Xid (PCI:0000:{n}:00): 79, pid={j}, GPU has fallen off the bus."),
    ("nccl_error", "failed", 0.05, "[Rank {n}] Watchdog caught collective operation timeout: WorkNCCL(SeqNum={j})"),
    ("dependency_error", "failed", 0.06, "ModuleNotFoundError: No module named 'mod{n}'"),
    ("disk_quota", "failed", 0.04, "OSError: [Errno 122] Disk quota exceeded: '/home/u{n}/f{j}'"),
    ("segfault", "failed", 0.04, "line 9: {j} Segmentation fault (core dumped) ./a{n}.out"),
]
TEXTS = {p.stem: p.read_text() for p in sorted(FIX.glob("*.txt"))} | {
    "cuda_oom": "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; "
                "79.15 GiB total capacity)",
    "xid": "NVRM: Xid (PCI:0000:3b:00): 79, pid=2211, GPU has fallen off the bus.",
    "module": "ModuleNotFoundError: No module named 'transformers'",
}


def build(path: Path, n: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    store = Store(path)
    store.drop_indexes_of_empty_tables()
    users = rng.integers(0, 2000, n)
    names = rng.integers(0, 300, n)
    submit = T0 + np.arange(n) * (365 * 86400 // n) + rng.integers(0, 20, n)
    elapsed = rng.integers(60, 20_000, n)
    mem = rng.choice([2048, 4096, 8192, 16384, 32768], n)
    tl = rng.choice([3600, 7200, 14400, 86400], n)
    gpus = np.where(rng.random(n) < 0.3, rng.choice([1, 2, 4, 8], n), 0)
    image = np.array([f"img{k}:v{v}" for k, v in zip(rng.integers(0, 40, n), rng.integers(1, 4, n))])
    node = rng.integers(0, 800, n)
    ftype = np.full(n, "", dtype=object)
    failed = rng.random(n) < 0.14
    fidx = np.flatnonzero(failed)
    shares = np.array([t[2] for t in TYPES])
    ftype[fidx] = np.array([t[0] for t in TYPES])[rng.choice(len(TYPES), len(fidx), p=shares / shares.sum())]
    # resubmissions: job i+1 redoes failed job i (same user and name) with a change
    r = fidx[(rng.random(len(fidx)) < 0.4) & (fidx + 1 < n)]
    r = r[~failed[r + 1]]
    for a in (users, names, image, node, gpus):
        a[r + 1] = a[r]
    submit[r + 1] = submit[r] + elapsed[r] + rng.integers(60, 3600, len(r))
    change = rng.choice(["mem", "time", "exclude", "image", "same"], len(r))
    mem[r + 1] = np.where(change == "mem", mem[r] * 2, mem[r])
    tl[r + 1] = np.where(change == "time", tl[r] * 2, tl[r])
    image[r + 1] = np.where(change == "image", np.char.add(image[r].astype(str), "b"), image[r])
    script = np.full(n, None, dtype=object)
    script[r + 1] = np.where(change == "exclude", "sbatch --exclude=cn0001 run.sh", None)
    works = rng.random(len(r)) < np.select([change == "mem", change == "time", change == "exclude"],
                                           [0.8, 0.7, 0.6], 0.25)
    ftype[r + 1] = np.where(works, "", ftype[r])
    state = np.full(n, "completed", dtype=object)
    tmap = {t[0]: t[1] for t in TYPES}
    has = ftype != ""
    state[has] = [tmap[t] for t in ftype[has]]
    order = np.argsort(submit, kind="stable")
    rows, nodes, events = [], [], []
    col = {c: i for i, c in enumerate(JOB_COLUMNS)}
    for k, i in enumerate(order):
        jid = str(1_000_000 + k)
        row = [None] * len(JOB_COLUMNS)
        s, e = int(submit[i]), int(submit[i] + elapsed[i])
        u = int(users[i])
        vals = {"cluster": "hpc", "job_id": jid, "name": f"job{names[i]}", "user": f"u{u}",
                "project": f"p{u % 50:02d}", "queue": "gpu" if gpus[i] else "batch",
                "image": image[i], "state": state[i], "raw_state": state[i].upper(),
                "failure_type": ftype[i] or None, "blame": "job" if ftype[i] else None,
                "submit_time": s, "start_time": s + 5, "end_time": e, "elapsed_s": int(elapsed[i]),
                "timelimit_s": int(tl[i]), "req_cpus": 8, "req_gpus": int(gpus[i]),
                "req_mem_mb": float(mem[i]), "max_rss_mb": float(mem[i]) * 0.97 if ftype[i] == "oom" else
                float(mem[i]) * 0.5, "n_nodes": 1, "script": script[i], "source": "slurm",
                "exit_code": 1 if ftype[i] else 0}
        for c, v in vals.items():
            row[col[c]] = v
        rows.append(tuple(row))
        nodes.append(("hpc", jid, f"cn{node[i]:04d}"))
        if ftype[i]:
            t = next(x for x in TYPES if x[0] == ftype[i])
            msg = t[3].format(n=int(node[i]) % 97, j=jid)
            ev = {"cluster": "hpc", "job_id": jid, "job_name": vals["name"], "project": vals["project"],
                  "user": vals["user"], "failure_type": ftype[i], "blame": "job", "timestamp": e,
                  "node_name": nodes[-1][2], "container_image": image[i], "error_message": msg,
                  "evidence": msg, "template_id": TYPES.index(t) + 1, "source": "bench", "resolved": 0,
                  "gpu_count": int(gpus[i])}
            events.append(tuple(ev.get(c) for c in FAILURE_EVENT_COLUMNS) + (f"job:hpc:{jid}",))
        if len(rows) >= 100_000:
            _flush(store, rows, nodes, events)
    _flush(store, rows, nodes, events)
    store.save_templates([(k + 1, t[3].replace("{n}", "<NUM>").replace("{j}", "<NUM>"), 1, t[0], T0)
                          for k, t in enumerate(TYPES)])
    store.rebuild_indexes()
    store.conn.execute("ANALYZE")
    store.close()


def _flush(store: Store, rows: list, nodes: list, events: list) -> None:
    with store.transaction():
        store.upsert_jobs(rows)
        store.add_job_nodes(nodes)
        store.add_failure_events(events)
    rows.clear(), nodes.clear(), events.clear()


def timed(ctx: ToolContext, reqs: list[dict]) -> dict:
    times = []
    for req in reqs:
        t = time.perf_counter()
        res = run_action(dict(req), ctx)
        times.append(time.perf_counter() - t)
        assert res.status == "ok", (req.get("action"), res.error)
    times.sort()
    return {"median_ms": round(1000 * statistics.median(times), 2),
            "p95_ms": round(1000 * times[int(0.95 * (len(times) - 1))], 2), "calls": len(times)}


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench remedies")
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    path = OUT / f"remedies_{args.jobs}.db"
    result: dict = {"jobs": args.jobs}
    if args.rebuild or not path.exists():
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
        t = time.perf_counter()
        build(path, args.jobs)
        result["build_s"] = round(time.perf_counter() - t, 1)
    store = Store(path)
    tax = Taxonomy.from_yaml(config_path("taxonomy.yaml"))
    with open(config_path("remediations.yaml"), encoding="utf-8") as fh:
        ctx = ToolContext(store, tax, extras={"remediations": yaml.safe_load(fh)})
    result["counts"] = store.table_counts()
    t = time.perf_counter()
    s = infer_outcomes(store, rules_of(ctx), 72)
    result["inference"] = {"seconds": round(time.perf_counter() - t, 2), **{
        k: v for k, v in s.to_dict().items() if k != "by_solution"}, "by_solution": s.by_solution}
    t = time.perf_counter()
    graph_for(store)
    result["graph_cold_s"] = round(time.perf_counter() - t, 2)
    rng = np.random.default_rng(1)
    failed_ids = [r[0] for r in store.conn.execute(
        "SELECT job_id FROM jobs WHERE failure_type IS NOT NULL ORDER BY random() LIMIT ?",
        (args.repeat,))]
    types = [t[0] for t in TYPES]
    rep = args.repeat
    result["remediate_type"] = timed(ctx, [{"action": "remediate", "failure_type": types[i % len(types)]}
                                           for i in range(rep)])
    result["remediate_job"] = timed(ctx, [{"action": "remediate", "job_id": j} for j in failed_ids])
    result["remediate_scoped"] = timed(ctx, [{"action": "remediate", "failure_type": "oom",
                                              "allowed_projects": [f"p{rng.integers(0, 50):02d}"]}
                                             for _ in range(rep)])
    names = list(TEXTS)
    result["diagnose_text"] = timed(ctx, [{"action": "diagnose", "text": TEXTS[names[i % len(names)]]}
                                          for i in range(rep)])
    result["diagnose_job"] = timed(ctx, [{"action": "diagnose", "job_id": j} for j in failed_ids])
    for k, v in result.items():
        print(f"{k}: {v}")
    store.close()
    return result
