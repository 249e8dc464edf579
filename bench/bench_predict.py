"""Predict and training benchmarks on a 1,000,000-job synthetic store, before and after
issue 16 side by side in one run (the "before" path is the same code with the numpy walk of
the boosters and the per-entity summary switched off, calls interleaved one by one so both see
the same machine load):

* predict: p50 / p95 (wall and CPU) of one `predict` action (features, three models,
  attributions, the report) over 1,000 specs;
* batch scoring: jobs/s (wall and CPU) of `models.batch.score` on 200,000 specs submitted
  now, end to end from the store: "before" (issue 16's start: the history read and as-of
  features), "previous" (commit 4e1e529: summary features, the recent-runtime block by one
  lookup per (entity, submit time), every spec scored), "after" (the recent runs from the
  summary, identical specs scored once, XGBoost with batch.THREADS threads; also with 1), and
  the same on specs made all distinct; and of the model part alone (features given).

    .venv/bin/python -m bench predict [--jobs N] [--reuse] [--calls N] [--train KIND] [--skip-slow]
    (--reuse: keep trained models; --train KIND: train only that kind and stop;
     --skip-slow: leave out the "before" and "previous" batch runs)
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np

from jobmedic.knowledge import entity_summary
from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.models import batch as batch_mod
from jobmedic.models import forest, registry, summary_recent, training
from jobmedic.models.batch import distinct_rows, score, specs_frame
from jobmedic.models.synthetic import synthetic_jobs
from jobmedic.settings import config_path
from jobmedic.tools import run_action
from jobmedic.tools.base import ToolContext

OUT = Path(__file__).resolve().parent / "out" / "data"
LEVELS = {"moderate": 0.3, "high": 0.6, "critical": 0.8}
START = 1_700_000_000


def _store(n: int) -> Store:
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / f"synth_{n}.db"
    s = Store(db)
    if s.table_counts()["jobs"] < n:  # built once, then reused
        t = time.perf_counter()
        for i in range(0, n, 200_000):
            s.upsert_jobs(synthetic_jobs(min(200_000, n - i), seed=i, n_users=2000, names_per_user=10,
                                         first_id=100_000 + i,
                                         start=START + int(i / n * 365 * 86400), days=365 * min(200_000, n - i) / n))
        print(f"built {n} jobs in {time.perf_counter() - t:.0f}s")
    return s


@contextmanager
def before_issue16():
    """The predict path as it was: XGBoost for one job, history from the jobs table."""
    small, fresh = forest.SMALL, entity_summary.fresh_at
    forest.SMALL = 0
    entity_summary.fresh_at = lambda *a, **k: False
    try:
        yield
    finally:
        forest.SMALL, entity_summary.fresh_at = small, fresh


@contextmanager
def previous_batch():
    """Batch scoring as it was before the recent runs in the summary (commit 4e1e529): every
    spec scored (no grouping of identical ones), the recent-runtime block from one lookup of the
    jobs per distinct (entity, submit time)."""
    recent = summary_recent.recent_block
    summary_recent.recent_block = lambda *a, **k: None
    try:
        with no_grouping():
            yield
    finally:
        summary_recent.recent_block = recent


@contextmanager
def no_grouping():
    """Every spec scored, identical ones too."""
    distinct = batch_mod.distinct_rows
    batch_mod.distinct_rows = lambda q: (np.arange(len(q)), np.arange(len(q)))
    try:
        yield
    finally:
        batch_mod.distinct_rows = distinct


@contextmanager
def batch_before_issue16():
    with before_issue16(), no_grouping():
        yield


def _timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def _pct(xs, q):
    return round(float(np.percentile(np.asarray(xs) * 1000, q)), 2)


def main(argv: list[str]) -> dict:
    n = int(argv[argv.index("--jobs") + 1]) if "--jobs" in argv else 1_000_000
    calls = int(argv[argv.index("--calls") + 1]) if "--calls" in argv else 1000
    s = _store(n)
    mdir = str(OUT / f"models-synth-{n}")
    frame = training.load(s)
    df = frame[0]
    # full-size models (300 trees) trained on the first 10 % of the year to keep this quick
    until = int(np.quantile(df["submit_time"], 0.1))
    t = time.perf_counter()
    reuse = "--reuse" in argv and (Path(mdir) / "memory" / "CURRENT").exists()
    if "--train" in argv:  # one kind per command on a busy machine, then --reuse
        kind = argv[argv.index("--train") + 1]
        training.train(s, kind, mdir, until, frame=frame)
        return {"trained": kind, "train_s": round(time.perf_counter() - t, 1)}
    for kind in ("failure", "runtime", "memory") if not reuse else ():
        training.train(s, kind, mdir, until, frame=frame)
    train_s = None if reuse else round(time.perf_counter() - t, 1)
    s.refresh_entity_stats(int(df["end_time"].max()) + 1)
    summary = entity_summary.refresh(s, build=True)
    ctx = ToolContext(store=s, taxonomy=Taxonomy.from_yaml(config_path("taxonomy.yaml")),
                      now=int(df["end_time"].max()) + 60, models_dir=Path(mdir), risk_levels=LEVELS)
    rng = np.random.default_rng(0)
    users, names = df["user"].unique(), df["name"].unique()
    load0 = os.getloadavg()
    lat: dict[str, dict[str, list]] = {k: {"wall": [], "cpu": []} for k in ("before", "after")}
    for i in range(calls):
        spec = {"action": "predict", "user": str(rng.choice(users)) if i % 10 else f"new{i}",
                "name": str(rng.choice(names)), "queue": "normal", "qos": "normal",
                "req_cpus": int(rng.integers(1, 64)), "req_mem_mb": float(rng.integers(1, 64) * 1024),
                "req_walltime_s": int(rng.integers(1, 48) * 3600), "retry_budget": 0.02}
        runs = {}
        for which in (("before", "after") if i % 2 else ("after", "before")):
            with before_issue16() if which == "before" else _nothing():
                r, w, c = _timed(partial(run_action, spec, ctx))
            assert r.status == "ok", r.error
            runs[which] = r.data
            if i >= 20:  # warm-up: model loads, the forest compiled for old artifacts
                lat[which]["wall"].append(w)
                lat[which]["cpu"].append(c)
        assert abs(runs["before"]["failure_risk"] - runs["after"]["failure_risk"]) <= 2e-4, spec
        assert runs["before"]["history"] == runs["after"]["history"], spec
    load1 = os.getloadavg()
    specs = df.sample(200_000, random_state=0)[["user", "name", "project", "queue", "qos", "req_cpus",
                                                 "req_mem_mb", "timelimit_s"]].rename(
        columns={"timelimit_s": "req_walltime_s"}).reset_index(drop=True)
    # every spec distinct (a thousandth of a MB apart): what the boosters cost without repeats
    distinct = specs.assign(req_mem_mb=specs["req_mem_mb"] + np.arange(len(specs)) * 1e-3)
    batch: dict = {"distinct_specs": len(distinct_rows(specs_frame(specs, ctx.now))[1])}
    results = {}
    runs = [("before", specs, batch_before_issue16(), 1), ("previous", specs, previous_batch(), 1),
            ("after_1_thread", specs, _nothing(), 1), ("after", specs, _nothing(), 2),
            ("after_all_distinct_1_thread", distinct, _nothing(), 1),
            ("after_all_distinct", distinct, _nothing(), 2)]
    if "--skip-slow" in argv:  # the history read and the per-spec lookups take minutes under load
        runs = runs[2:]
    for which, sp, switch, threads in runs:
        batch_mod.THREADS = threads
        l0 = os.getloadavg()[0]
        with switch:
            res, w, c = _timed(partial(score, s, sp, mdir, ctx.now, LEVELS))
        batch[which] = {"jobs_per_s_wall": round(len(res) / w), "jobs_per_s_cpu": round(len(res) / c),
                        "wall_s": round(w, 2), "cpu_s": round(c, 2), "threads": threads,
                        "load": [round(l0, 1), round(os.getloadavg()[0], 1)]}
        results[which] = res
        print(which, batch[which], flush=True)
    batch_mod.THREADS = 2
    ref = results.get("before", results.get("previous"))
    for which, res in results.items():  # the same answers on every path
        other = ref if ref is not None and "distinct" not in which else results["after_all_distinct_1_thread"]
        np.testing.assert_allclose(res["failure_risk"].to_numpy(), other["failure_risk"].to_numpy())
        if "runtime_q0.5" in res:
            np.testing.assert_allclose(res["runtime_q0.5"].to_numpy(), other["runtime_q0.5"].to_numpy(),
                                       rtol=1e-5)
    if ref is None:
        ref = results["after_1_thread"]
    np.testing.assert_allclose(results["after"]["failure_risk"].to_numpy(), ref["failure_risk"].to_numpy())
    loaded = []
    for k in ("failure", "runtime", "memory"):
        try:
            loaded.append(registry.load(mdir, k)[0])
        except ModelError:  # e.g. an artifact of another feature layout: left out, as predict does
            continue
    _, w, c = _timed(lambda: [m.predict(m.inputs(frame, np.arange(200_000))) for m in loaded])
    out = {"store_jobs": len(df), "train_three_models_s": train_s, "summary_build": summary,
           "calls": calls - 20, "loadavg_start_end": [round(load0[0], 2), round(load1[0], 2)],
           "predict": {k: {"wall_p50_ms": _pct(v["wall"], 50), "wall_p95_ms": _pct(v["wall"], 95),
                           "cpu_p50_ms": _pct(v["cpu"], 50), "cpu_p95_ms": _pct(v["cpu"], 95)}
                       for k, v in lat.items()},
           "batch_200k_end_to_end": batch,
           "models_loaded": [m.name for m in loaded],
           "batch_models_only": {"jobs_per_s_wall": round(200_000 / w), "jobs_per_s_cpu": round(200_000 / c)},
           "loadavg_end": round(os.getloadavg()[0], 2)}
    print(out)
    return out


@contextmanager
def _nothing():
    yield


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
