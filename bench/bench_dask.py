"""Dask engine figures (issue 17; docs/scale.md): feature extraction and failure-model
training on a local Dask cluster of 1 and 2 worker processes against the single-machine path,
on a copy of a store; checks the features are equal and the held-out AUROC of the Dask model
is within 0.01 of the single-machine model on the same split (last 20 % of submissions held
out, `training.default_until`).

    .venv/bin/python -m bench.bench_dask fresco              # bench/out/data/fresco.db
    .venv/bin/python -m bench.bench_dask google --part single  # one part per process:
    .venv/bin/python -m bench.bench_dask google --part 1       #   single, 1 or 2 workers
    .venv/bin/python -m bench.bench_dask 1m --db /tmp/jm-1m.db --rounds 100 --part 2
    .venv/bin/python -m bench.bench_dask driver --db /tmp/jm-100k.db --path parquet|store
    .venv/bin/python -m bench.bench_dask driver --db /tmp/jm-1m.db --path parquet --kind runtime
Options: --rounds R (300), --part single|1|2|all (all), --db PATH (default
bench/out/data/NAME.db), --no-equal (skip the single-machine features and the equality check).
Writes bench/out/dask_NAME[_PART].json: wall and CPU seconds (driver process; workers' CPU
from their rusage), peak RSS of the driver and of each worker (VmHWM; before 2026-11-29 17:00
the worker figures were ru_maxrss, which a spawned worker inherits from the driver).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jobmedic.engines import dask_engine
from jobmedic.engines.dask_features import build_features_dask
from jobmedic.knowledge.store import Store
from jobmedic.models import training
from jobmedic.models.features import FEATURES, build_features

OUT = Path(__file__).resolve().parent / "out"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _hwm_mb() -> float:
    """Peak RSS of this process's own address space (VmHWM). Not ru_maxrss: a spawned Dask
    worker's ru_maxrss includes the parent's RSS at fork time (kept across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker_usage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, _hwm_mb()


def _equal(a, b) -> bool:
    x, y = a[FEATURES].to_numpy(), b[FEATURES].to_numpy()
    same_nan = np.array_equal(np.isnan(x), np.isnan(y))
    ok = ~np.isnan(x)
    return bool(same_nan and np.allclose(x[ok], y[ok], rtol=1e-12, atol=1e-9))


def _timed(fn):
    w, c = time.perf_counter(), _cpu()
    out = fn()
    return out, round(time.perf_counter() - w, 2), round(_cpu() - c, 2)


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="bench.bench_dask")
    ap.add_argument("name", nargs="?", default="fresco")
    ap.add_argument("rounds_pos", nargs="?", type=int)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--part", default="all", choices=["all", "single", "1", "2"])
    ap.add_argument("--db")
    ap.add_argument("--no-equal", action="store_true")
    a = ap.parse_args(argv)
    rounds = a.rounds_pos or a.rounds
    src = Path(a.db) if a.db else OUT / "data" / f"{a.name}.db"
    tmp = Path(tempfile.mkdtemp(prefix="jm_dask_"))
    db = tmp / "s.db"
    shutil.copy(src, db)
    s = Store(db)
    df = s.jobs_frame()
    n = len(df)
    res: dict = {"store": a.name, "jobs": n, "rounds": rounds, "part": a.part,
                 "load_avg_start": [round(x, 1) for x in os.getloadavg()]}
    until = training.default_until(df, 0.2)
    end = int(df["submit_time"].max()) + 1
    res["split_until"] = until
    X1 = None
    if a.part in ("all", "single") or not a.no_equal:
        X1, res["features_single_s"], res["features_single_cpu_s"] = _timed(
            lambda: build_features(df))
    if a.part in ("all", "single"):
        frame = (df, X1)
        card, res["train_single_s"], res["train_single_cpu_s"] = _timed(
            lambda: training.train(s, "failure", str(tmp / "m-single"), until, frame=frame,
                                   params={"num_boost_round": rounds}))
        ev = training.evaluate(s, "failure", str(tmp / "m-single"), until, end, frame=frame)
        res["counts"] = card["counts"]
        res["single"] = {"val_auroc": card["validation"]["model"]["auroc"],
                         "test_auroc": ev["metrics"]["model"]["auroc"]}
    for k in (1, 2):
        if a.part not in ("all", str(k)):
            continue
        with dask_engine.cluster(workers=k, memory_per_worker="6GiB") as client:
            w0 = client.run(_worker_usage)
            Xd, fs, fcpu = _timed(lambda k=k, client=client: build_features_dask(
                df, client=client, npartitions=2 * k))
            w1 = client.run(_worker_usage)
            eq = _equal(X1, Xd) if X1 is not None else None
            c, ts, tcpu = _timed(lambda k=k, client=client, Xd=Xd: dask_engine.train(
                s, "failure", str(tmp / f"m-dask{k}"), client, until=until, frame=(df, Xd),
                params={"num_boost_round": rounds}))
            w2 = client.run(_worker_usage)
        fe = (df, X1 if X1 is not None else Xd)
        ev = training.evaluate(s, "failure", str(tmp / f"m-dask{k}"), until, end, frame=fe)
        res["counts"] = c["counts"]
        res[f"dask_{k}"] = {
            "features_s": fs, "features_driver_cpu_s": fcpu,
            "features_workers_cpu_s": round(sum(w1[w][0] - w0[w][0] for w in w1), 2),
            "features_equal": eq, "features_jobs_per_s": round(n / fs),
            "train_s": ts, "train_driver_cpu_s": tcpu,
            "train_workers_cpu_s": round(sum(w2[w][0] - w1[w][0] for w in w2 if w in w1), 2),
            "train_rows_per_s": round(c["counts"]["fit"] / ts),
            "worker_peak_rss_mb": [round(v[1]) for v in w2.values()],  # VmHWM
            "val_auroc": c["validation"]["model"]["auroc"],
            "test_auroc": ev["metrics"]["model"]["auroc"]}
        if "single" in res:
            res[f"dask_{k}"]["test_auroc_diff"] = round(
                abs(res[f"dask_{k}"]["test_auroc"] - res["single"]["test_auroc"]), 4)
    res["driver_peak_rss_mb"] = round(_rss_mb())
    res["load_avg_end"] = [round(x, 1) for x in os.getloadavg()]
    s.close()
    shutil.rmtree(tmp, ignore_errors=True)
    suffix = "" if a.part == "all" else f"_{a.part}"
    (OUT / f"dask_{a.name}{suffix}.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return res


def driver(argv: list[str]) -> dict:
    """The driver's peak memory of one `train KIND --engine dask` run (--kind failure, the
    default, memory or runtime), one path per process:
    `--path store` (the jobs frame read from SQLite, features gathered: dask_engine.train) or
    `--path parquet` (export, then everything per job on the workers: dask_train.train).
    Peak RSS is this process's VmHWM (the workers are other processes)."""
    from jobmedic.engines import dask_train

    ap = argparse.ArgumentParser(prog="bench.bench_dask driver")
    ap.add_argument("--db", required=True)
    ap.add_argument("--path", choices=["store", "parquet"], required=True)
    ap.add_argument("--kind", choices=["failure", "memory", "runtime"], default="failure")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--memory-per-worker", default="6GiB")
    ap.add_argument("--pq", help="--path parquet: an export folder to use as it is (no export "
                                 "in this process: the training's own driver peak)")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="jm_dask_driver_"))
    db = tmp / "s.db"
    shutil.copy(a.db, db)
    s = Store(db)
    res: dict = {"db": a.db, "path": a.path, "kind": a.kind, "workers": a.workers,
                 "rounds": a.rounds,
                 "load_avg_start": [round(x, 1) for x in os.getloadavg()],
                 "driver_rss_at_start_mb": round(_hwm_mb())}
    params = {"num_boost_round": a.rounds}
    with dask_engine.cluster(workers=a.workers, memory_per_worker=a.memory_per_worker) as client:
        res["driver_rss_with_cluster_mb"] = round(_hwm_mb())
        w0 = client.run(_worker_usage)
        if a.path == "parquet":
            from jobmedic.engines import parquet

            pq_dir = Path(a.pq) if a.pq else tmp / "pq"
            if not a.pq:
                ex, res["export_s"], res["export_cpu_s"] = _timed(
                    lambda: parquet.export(s, pq_dir, tables=("jobs",)))
                res["export_rows"] = ex["rows_written"]
                res["driver_peak_after_export_mb"] = round(_hwm_mb())
            card, res["train_s"], res["train_driver_cpu_s"] = _timed(
                lambda: dask_train.train(s, a.kind, str(tmp / "m"), client, pq_dir,
                                         params=params, export=False))
        else:
            card, res["train_s"], res["train_driver_cpu_s"] = _timed(
                lambda: dask_engine.train(s, a.kind, str(tmp / "m"), client, params=params))
        w1 = client.run(_worker_usage)
    res["workers_cpu_s"] = round(sum(w1[w][0] - w0[w][0] for w in w1 if w in w0), 2)
    res["worker_peak_rss_mb"] = [round(v[1]) for v in w1.values()]
    res["counts"] = card["counts"]
    m = card["validation"]["model"]
    if "auroc" in m:
        res["val_auroc"] = m["auroc"]
    else:  # a request model: the point error (hours) and coverage on the calibration slice
        res["val_mae_h"], res["val_coverage"] = m["mae"], m.get("coverage")
    res["driver_stages"] = card["engine"].get("driver")
    res["driver_peak_rss_mb"] = round(_hwm_mb())
    res["load_avg_end"] = [round(x, 1) for x in os.getloadavg()]
    s.close()
    shutil.rmtree(tmp, ignore_errors=True)
    name = Path(a.db).stem
    kind = "" if a.kind == "failure" else f"_{a.kind}"
    (OUT / f"dask_driver_{name}{kind}_{a.path}{'_reused' if a.pq else ''}.json").write_text(
        json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return res


def batch(argv: list[str]) -> dict:
    """The driver's peak memory of one `predict --batch` run on a copy of a store, one engine
    per process: `--engine local` (models/batch.score: the history frame, or the per-entity
    summary for specs at now) or `--engine dask` (dask_engine.score: the summary for specs at
    now, else the Parquet export read on the workers). `--when past`: sampled jobs' specs
    submitted 2 h after them; `--when now`: the same specs without a submit time, after the
    summary is built in a child process (its own peak is not this one's).
        .venv/bin/python -m bench.bench_dask batch --db /tmp/jm-1m.db --engine dask --when past
    """
    import subprocess

    import pandas as pd

    from jobmedic.models import batch as mbatch

    ap = argparse.ArgumentParser(prog="bench.bench_dask batch")
    ap.add_argument("--db", required=True)
    ap.add_argument("--models", help="a models folder with a failure model (copied; default: "
                                     "DB.models)")
    ap.add_argument("--engine", choices=["local", "dask"], required=True)
    ap.add_argument("--when", choices=["past", "now"], default="past")
    ap.add_argument("--specs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-per-worker", default="6GiB")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="jm_dask_batch_"))
    db = tmp / "s.db"
    shutil.copy(a.db, db)
    shutil.copytree(a.models or a.db + ".models", tmp / "m")
    if a.when == "now":
        build = ("import sys; from jobmedic.knowledge.store import Store; "
                 "from jobmedic.knowledge import entity_summary as e; "
                 "e.refresh(Store(sys.argv[1]), build=True)")
        subprocess.run([sys.executable, "-c", build, str(db)], check=True)
    s = Store(db)
    n = s.conn.execute("SELECT MAX(rowid) FROM jobs").fetchone()[0]
    rows = np.linspace(1, n, a.specs).astype(int).tolist()
    cols = ["user", "name", "project", "queue", "req_cpus", "req_mem_mb", "submit_time"]
    specs = pd.DataFrame([s.conn.execute(f"SELECT {', '.join(cols)} FROM jobs WHERE rowid = ?",
                                         (r,)).fetchone() for r in rows], columns=cols)
    specs["submit_time"] = specs["submit_time"] + 7200
    if a.when == "now":
        specs = specs.drop(columns=["submit_time"])
    now = int(time.time())
    levels = {"moderate": 0.2, "high": 0.4, "critical": 0.7}
    res: dict = {"db": a.db, "engine": a.engine, "when": a.when, "specs": len(specs),
                 "load_avg_start": [round(x, 1) for x in os.getloadavg()],
                 "driver_rss_at_start_mb": round(_hwm_mb())}
    if a.engine == "local":
        out, res["score_s"], res["score_driver_cpu_s"] = _timed(
            lambda: mbatch.score(s, specs, str(tmp / "m"), now, levels))
    else:
        with dask_engine.cluster(workers=a.workers,
                                 memory_per_worker=a.memory_per_worker) as client:
            res["driver_rss_with_cluster_mb"] = round(_hwm_mb())
            w0 = client.run(_worker_usage)
            if a.when == "past":  # the export score brings up to date first, on its own
                from jobmedic.engines import parquet

                _, res["export_s"], res["export_cpu_s"] = _timed(
                    lambda: parquet.export(s, tmp / "pq", tables=("jobs",)))
                res["driver_peak_after_export_mb"] = round(_hwm_mb())
            out, res["score_s"], res["score_driver_cpu_s"] = _timed(
                lambda: dask_engine.score(s, specs, str(tmp / "m"), now, levels, client,
                                          root=tmp / "pq"))
            w1 = client.run(_worker_usage)
        res["workers_cpu_s"] = round(sum(w1[w][0] - w0[w][0] for w in w1 if w in w0), 2)
        res["worker_peak_rss_mb"] = [round(v[1]) for v in w1.values()]
    res["driver_peak_rss_mb"] = round(_hwm_mb())
    res["load_avg_end"] = [round(x, 1) for x in os.getloadavg()]
    res["risk_sha256"] = __import__("hashlib").sha256(out.to_csv(index=False).encode()).hexdigest()
    s.close()
    shutil.rmtree(tmp, ignore_errors=True)
    (OUT / f"dask_batch_{Path(a.db).stem}_{a.when}_{a.engine}.json").write_text(
        json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    if sys.argv[1:2] == ["driver"]:
        driver(sys.argv[2:])
    elif sys.argv[1:2] == ["batch"]:
        batch(sys.argv[2:])
    else:
        main(sys.argv[1:])
