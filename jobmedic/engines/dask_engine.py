"""Training and batch scoring on a Dask cluster.

`cluster(...)` gives a `distributed.Client` on a local cluster (`--workers N`: worker
processes, the scheduler in a subprocess of its own, `_local`), an existing
scheduler (`--scheduler ADDRESS`, refused within `connect_timeout` seconds when it does not
answer) or workers started as Slurm jobs through dask-jobqueue (`--slurm-workers N`).
`train` (the store-fed path: an in-memory store, or any boosted kind given a frame; failure,
memory and runtime train from the Parquet export in dask_train.py) computes the submit-time features on the
cluster (dask_features.py, equal to the single-machine ones) and runs the ordinary `models/training.train` with XGBoost's boosting
rounds done by `xgboost.dask` on the workers (boosting.TRAINER): calibration, card, artifact
and signing are the single-machine ones, so `evaluate` and `predict` use the artifact
unchanged. A worker lost mid-training is retried once (the rounds rerun when the cluster is
whole again); a failure that remains is a ModelError raised before anything is saved: no
half-written artifact ever becomes current (tests/engines/test_dask_killed_worker.py kills a
worker process for real). A lost scheduler (XGBoost's tracker runs there and can abort when
a worker dies) is that ModelError at once, without a retry.
`score` is `models/batch.score` with the driver reading no job history: the per-entity
summary for specs at now, `export_features` (the Parquet export read on the workers) for
past specs.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jobmedic.knowledge.errors import InputError, JobmedicError, ModelError
from jobmedic.knowledge.feature_queries import ENTITY_KINDS
from jobmedic.models import boosting

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store


def _imports():
    try:
        import distributed
    except ImportError:  # pragma: no cover - the optional extra
        raise InputError("--engine dask needs Dask",
                         "install the optional extra: pip install 'jobmedic[dask]'") from None
    return distributed


@contextlib.contextmanager
def cluster(workers: int | None = None, scheduler: str | None = None,
            slurm_workers: int | None = None, *, threads_per_worker: int = 1,
            memory_per_worker: str = "4GiB", connect_timeout: float = 5.0,
            slurm: dict[str, Any] | None = None) -> Iterator[Any]:
    """A Client on the chosen cluster (exactly one of the three; default 2 local workers, whose
    scheduler runs in a subprocess: `_local`)."""
    distributed = _imports()
    if sum(x is not None for x in (workers, scheduler, slurm_workers)) > 1:
        raise InputError("give one of --workers, --scheduler, --slurm-workers", "")
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=f"{connect_timeout}s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"the Dask scheduler at {scheduler} does not answer "
                             f"({type(exc).__name__} after {connect_timeout:g} s); nothing was written",
                             "start it (`dask scheduler`) or check the address "
                             "(tcp://HOST:8786)") from None
        with client:
            yield client
        return
    if slurm_workers is not None:
        from dask_jobqueue import SLURMCluster

        opts = {"cores": threads_per_worker, "processes": 1, "memory": memory_per_worker,
                "walltime": "01:00:00"} | dict(slurm or {})
        wait_s = float(opts.pop("wait_s", 180))
        with SLURMCluster(**opts) as c, distributed.Client(c) as client:
            c.scale(jobs=slurm_workers)
            try:
                client.wait_for_workers(slurm_workers, timeout=wait_s)
            except (TimeoutError, OSError):
                raise ModelError(f"the {slurm_workers} Slurm worker job(s) did not start in time",
                                 "check `squeue` for the dask-worker jobs and the queue/"
                                 "account settings") from None
            yield client
        return
    c = _local(distributed, workers or 2, threads_per_worker, memory_per_worker)
    try:
        client = distributed.Client(c)
    except BaseException:
        _close(c)
        raise
    try:
        yield client
    finally:  # a cluster whose scheduler died must not hide the error in flight
        _close(client)
        with contextlib.suppress(Exception):
            c.sync(_stop_drain, c)
        _close(c)


def _local(distributed: Any, n: int, threads: int, memory: str) -> Any:
    """A local cluster of `n` worker processes (each under a nanny, which restarts a killed
    one) whose scheduler runs in a subprocess of its own: xgboost.dask runs XGBoost's native
    tracker inside the scheduler, and an abort there (seen when a worker dies mid-training,
    like dmlc/xgboost#11804) would otherwise kill this process, the driver; it now ends the
    scheduler only, and the training fails with a ModelError."""
    import logging

    from distributed.deploy.spec import SpecCluster
    from distributed.deploy.subprocess import SubprocessScheduler

    host = "127.0.0.1"
    worker = {"cls": distributed.Nanny,
              "options": {"nthreads": threads, "memory_limit": memory, "host": host,
                          "dashboard_address": None, "silence_logs": logging.WARNING}}
    c = SpecCluster(
        scheduler={"cls": SubprocessScheduler,
                   "options": {"scheduler_kwargs": {"host": host, "dashboard_address": None}}},
        workers={i: worker for i in range(n)}, worker=worker, silence_logs=logging.WARNING)
    # the scheduler's stderr is a pipe that distributed reads only when the start fails:
    # drained here, or a long run's log would fill it and block the scheduler
    c._jm_drain = c.sync(_start_drain, c.scheduler.process.stderr)
    return c


async def _drain(stream: Any) -> None:
    with contextlib.suppress(Exception):
        while await stream.read(1 << 16):
            pass


async def _start_drain(stream: Any) -> Any:
    import asyncio

    return asyncio.ensure_future(_drain(stream))


async def _stop_drain(c: Any) -> None:
    """Before the cluster closes: stop draining (the close reads the pipe itself) and, when
    the scheduler already died, close its pipes here (the close skips a dead process, and a
    transport left open complains once the loop is gone)."""
    task = getattr(c, "_jm_drain", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    proc = getattr(c.scheduler, "process", None)
    if proc is not None and proc.returncode is not None:
        with contextlib.suppress(Exception):
            proc._transport.close()


def _close(thing: Any) -> None:
    with contextlib.suppress(Exception):
        thing.close(timeout=5)


def scheduler_alive(client: Any) -> bool:
    """Whether the client still reaches its scheduler (one short request)."""
    if getattr(client, "status", "running") != "running":
        return False
    try:
        client.run_on_scheduler(lambda: True)
    except Exception:  # noqa: BLE001 - any failure to reach it
        return False
    return True


def _lost_workers(client: Any, before: set[str], wait_s: float = 5.0) -> list[str]:
    """Workers of `before` the scheduler no longer has (polled briefly: a killed worker's
    partner can fail its collective before the scheduler has noticed the death)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            lost = sorted(before - set(client.scheduler_info().get("workers", {})))
        except Exception:  # noqa: BLE001 - the scheduler itself is gone
            return sorted(before)
        if lost or time.monotonic() >= deadline:
            return lost
        time.sleep(0.25)


def dask_trainer(client: Any, chunks: int | None = None, retries: int = 1,
                 rejoin_s: float = 60.0):
    """A boosting.TRAINER running the boosting rounds with `xgboost.dask` on `client`.
    A worker lost mid-training (killed, out of memory, its Slurm job ended) fails the
    collective on the others; the rounds are then rerun from scratch, up to `retries` times,
    once the cluster has as many workers again (a LocalCluster's nanny or dask-jobqueue
    replaces them) within `rejoin_s`; otherwise a ModelError, and nothing is saved."""
    import dask.array as da
    from xgboost import dask as dxgb

    def once(params: dict[str, Any], X: Any, y: Any, rounds: int) -> Any:
        if isinstance(X, da.Array):  # already on the workers (engines/dask_train.py)
            Xd, yd = X.astype("float32"), y.astype("float32")
        else:
            n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
            step = max(math.ceil(len(X) / (chunks or n_workers)), 1)
            Xd = da.from_array(X, chunks=(step, X.shape[1]))
            yd = da.from_array(np.asarray(y, dtype="float32"), chunks=(step,))
        p = {k: v for k, v in params.items() if k != "nthread"}
        dtrain = dxgb.DaskDMatrix(client, Xd, yd, missing=np.nan)
        return dxgb.train(client, p, dtrain, num_boost_round=rounds, **_coll())["booster"]

    def run(params: dict[str, Any], X: Any, y: Any, rounds: int):
        if not isinstance(X, da.Array):
            X = np.asarray(X, dtype="float32")
        attempt = 0
        while True:
            before = set(client.scheduler_info().get("workers", {}))
            try:
                booster = once(params, X, y, rounds)
                break
            except JobmedicError:
                raise
            except Exception as exc:  # noqa: BLE001 - a lost worker, a broken collective, a killed job
                what = (f"{type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160] if str(exc) else ''}")
                if not scheduler_alive(client):  # XGBoost's tracker runs there: no retry
                    raise ModelError(
                        "training on the Dask cluster failed: the Dask scheduler was lost "
                        f"mid-training (XGBoost's tracker runs in it; {what}); no artifact "
                        "was written",
                        "rerun; with --scheduler, check the scheduler's log for an abort "
                        "in XGBoost's tracker") from None
                lost = _lost_workers(client, before)
                if lost and attempt < retries:
                    try:
                        client.wait_for_workers(len(before), timeout=rejoin_s)
                    except (TimeoutError, OSError):
                        pass
                    else:
                        attempt += 1
                        continue
                cause = (f"{len(lost)} worker(s) lost mid-training ({', '.join(lost)}) after "
                         f"{attempt + 1} attempt(s); " if lost else "")
                raise ModelError(f"training on the Dask cluster failed: {cause}{what}; "
                                 "no artifact was written",
                                 "rerun; if workers keep dying give them more memory "
                                 "(memory per worker) or use fewer rows per worker") from None
        booster.set_param({"nthread": int(params.get("nthread", 2))})
        run.attempts.append(attempt + 1)
        return booster
    run.attempts = []  # type: ignore[attr-defined]  # per boosting call: 1, or 2 after a retry
    return run


#: Seconds a collective operation (allreduce, allgather) or the tracker's group start / end may
#: wait on the other workers before XGBoost raises: a peer that died at the wrong moment
#: otherwise leaves the survivor waiting on its socket (XGBoost's default is 30 minutes).
COLL_TIMEOUT_S = 120


def _coll() -> dict[str, Any]:
    try:
        from xgboost.collective import Config
    except ImportError:  # pragma: no cover - xgboost < 3.0: its defaults
        return {}
    return {"coll_cfg": Config(timeout=COLL_TIMEOUT_S, tracker_timeout=COLL_TIMEOUT_S)}


def frame(store: Store, client: Any, scope: Sequence[str] | None = None,
          npartitions: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(jobs, features) with the features computed on the cluster."""
    from jobmedic.engines.dask_features import build_features_dask

    df = store.jobs_frame(scope)
    if df.empty:
        raise ModelError("the store holds no jobs to learn from",
                         "ingest accounting data first, e.g. `jobmedic ingest slurm sacct.txt`")
    n = npartitions or max(2 * len(client.scheduler_info().get("workers", {})), 2)
    return df, build_features_dask(df, client=client, npartitions=n)


def train(store: Store, kind: str, models_dir: str, client: Any, **kw: Any) -> dict[str, Any]:
    """`training.train` with features and boosting on the cluster; returns the card."""
    from jobmedic.models import training

    if kind not in ("failure", "runtime", "memory"):
        raise InputError(f"--engine dask trains the boosted kinds (failure, runtime, memory), "
                         f"not {kind}", f"train {kind} without --engine dask")
    fr = kw.pop("frame", None) or frame(store, client, kw.get("scope"))
    trainer = dask_trainer(client, retries=kw.pop("retries", 1))
    token = boosting.TRAINER.set(trainer)
    try:
        card = training.train(store, kind, models_dir, frame=fr, **kw)
    finally:
        boosting.TRAINER.reset(token)
    card["engine"] = {"name": "dask", "workers": len(client.scheduler_info().get("workers", {})),
                      "attempts": max(trainer.attempts, default=1)}
    return card


def score(store: Store, specs: pd.DataFrame, models_dir: str, now: int,
          levels: dict[str, float], client: Any, scope: Sequence[str] | None = None,
          retry_budget: float | None = None, root: str | Path | None = None) -> pd.DataFrame:
    """models/batch.score with the driver reading no job history: the same columns and values,
    the retry-budget request (budget_time_s / budget_mem_mb) included when `retry_budget` is set.

    Specs the per-entity summary is exact for (submitted at or after its watermark: scoring
    "now") take their features from it, exactly as the single-machine batch does: the driver
    reads one summary row per entity the specs name. Specs in the past (re-scoring history)
    take their as-of features from `export_features`: the workers read the Parquet export in
    `root` (brought up to date from the store first, incrementally) and the driver gathers one
    feature row per distinct spec; the request models' recent-run inputs come from indexed
    lookups (runtime_features.recent_specs). Without `root` (an in-memory store) the history
    frame is read on the driver and its features computed on the cluster."""
    from jobmedic.models import batch
    from jobmedic.models.summary_features import exact_for

    q = batch.specs_frame(specs, now)
    if scope is None and exact_for(store, q["submit_time"].to_numpy(dtype="float64")):
        return batch.score(store, specs, models_dir, now, levels, retry_budget=retry_budget)
    if root is not None:
        from jobmedic.engines import parquet

        parquet.export(store, root, tables=("jobs",))
        return batch.score(store, specs, models_dir, now, levels, scope,
                           matrix=lambda qq: export_features(root, qq, client, scope),
                           retry_budget=retry_budget)
    from jobmedic.engines.dask_features import build_features_dask

    n = max(2 * len(client.scheduler_info().get("workers", {})), 2)
    return batch.score(store, specs, models_dir, now, levels, scope,
                       features=lambda h, qq: build_features_dask(h, qq, client=client,
                                                                  npartitions=n),
                       retry_budget=retry_budget)


_Q = "_q"  # a query's row number; -1 on history rows


def _history_rows(part: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The ended jobs of an exported partition that have a value of `kind` (run on a worker)."""
    from jobmedic.engines.dask_parquet import NEEDED, ROW
    from jobmedic.models.features import is_ended, with_shape

    p = with_shape(part) if kind == "shape" else part
    p = p[is_ended(p) & p[kind].notna().to_numpy()]
    return p[[kind, ROW, *NEEDED]].assign(**{_Q: np.int64(-1)})


def _end_bounds(part: pd.DataFrame) -> pd.DataFrame:
    from jobmedic.engines.dask_parquet import lo_hi
    from jobmedic.models.features import is_ended

    return lo_hi(part["end_time"].to_numpy(dtype="float64")[is_ended(part)])


def _query_part(part: pd.DataFrame, kind: str, tmin: float, scale: float) -> pd.DataFrame:
    """One partition after the shuffle by `kind` (all history rows of its entities and the
    queries naming them): the queries' statistics, indexed by query row (run on a worker)."""
    from jobmedic.engines.dask_parquet import ROW
    from jobmedic.models.features import STATS, _kind_block

    isq = part[_Q].to_numpy() >= 0
    hist = part[~isq].sort_values(ROW, kind="stable").reset_index(drop=True)  # the store's order
    q = part[isq].reset_index(drop=True)
    cols = _kind_block(kind, hist, q, tmin, scale)
    return pd.DataFrame({f"{kind}_{s}": np.asarray(cols[s], dtype="float64") for s in STATS},
                        index=q[_Q].to_numpy())


def export_features(root: str | Path, queries: pd.DataFrame, client: Any,
                    scope: Sequence[str] | None = None,
                    npartitions: int | None = None) -> pd.DataFrame:
    """`build_features(store.jobs_frame(scope), queries)` with the history read from the Parquet
    export on the workers: per entity kind, the ended jobs with a value and the queries naming
    one are shuffled together by that value and `_kind_block` (the single-machine function)
    runs per partition on the history in the store's row order. The driver holds the queries
    and their feature rows, and two numbers of the history (its earliest and latest end)."""
    import dask
    import dask.dataframe as dd

    from jobmedic.engines.dask_parquet import NEEDED, ROW, jobs
    from jobmedic.models.features import (
        FEATURES,
        STATS,
        _request_block,
        time_bounds,
        with_shape,
    )

    q = with_shape(queries).reset_index(drop=True)
    out = pd.DataFrame(_request_block(q), index=pd.RangeIndex(len(q)))
    with dask.config.set({"dataframe.convert-string": False}):
        hist = jobs(root, scope)
        n = npartitions or max(hist.npartitions, 2)
        b = hist.map_partitions(_end_bounds, meta=_end_bounds(hist._meta)).compute()
        t = q["submit_time"].to_numpy(dtype="float64")
        t = t[np.isfinite(t)]
        lo = min(float(b["lo"].min()), float(t.min()) if len(t) else np.inf)
        hi = max(float(b["hi"].max()), float(t.max()) if len(t) else -np.inf)
        tmin, scale = time_bounds(lo if np.isfinite(lo) else np.nan,
                                  hi if np.isfinite(hi) else np.nan)
        blocks, kinds = [], []
        for kind in ENTITY_KINDS:
            named = np.flatnonzero(q[kind].notna().to_numpy())
            for s in STATS:  # no entity: what _kind_block gives a query without history
                out[f"{kind}_{s}"] = 0.0 if s in ("n", "recent_n", "recent_fails") else np.nan
            if not len(named):
                continue
            h = hist.map_partitions(_history_rows, kind,
                                    meta=_history_rows(with_shape(hist._meta), kind))
            qq = pd.DataFrame({kind: q[kind].to_numpy(dtype=object)[named],
                               ROW: np.int64(-1)} | {c: np.nan for c in NEEDED})
            qq["submit_time"] = q["submit_time"].to_numpy(dtype="float64")[named]
            qq["state"] = None
            qq[_Q] = named.astype("int64")
            both = dd.concat([h, dd.from_pandas(qq[h._meta.columns].astype(h._meta.dtypes),
                                                npartitions=1)], ignore_index=True)
            both = both.shuffle(kind, npartitions=n, shuffle_method="tasks")
            meta = pd.DataFrame({f"{kind}_{s}": pd.Series(dtype="float64") for s in STATS})
            blocks.append(both.map_partitions(_query_part, kind, tmin, scale, meta=meta))
            kinds.append(kind)
        for kind, block in zip(kinds, client.compute(blocks, sync=True)):
            out.loc[block.index, list(block.columns)] = block.to_numpy()
    out.index = queries.index
    return out[FEATURES]
