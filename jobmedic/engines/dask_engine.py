"""Training and batch scoring on a Dask cluster.

`cluster(...)` gives a `distributed.Client` on a local cluster (`--workers N`), an existing
scheduler (`--scheduler ADDRESS`, refused within `connect_timeout` seconds when it does not
answer) or workers started as Slurm jobs through dask-jobqueue (`--slurm-workers N`).
`train` (the store-fed path: runtime, or any boosted kind given a frame; failure and memory
train from the Parquet export in dask_train.py) computes the submit-time features on the
cluster (dask_features.py, equal to the single-machine ones) and runs the ordinary `models/training.train` with XGBoost's boosting
rounds done by `xgboost.dask` on the workers (boosting.TRAINER): calibration, card, artifact
and signing are the single-machine ones, so `evaluate` and `predict` use the artifact
unchanged. A worker lost mid-training is retried once (the rounds rerun when the cluster is
whole again); a failure that remains is a ModelError raised before anything is saved: no
half-written artifact ever becomes current (tests/engines/test_dask_killed_worker.py kills a
worker process for real).
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jobmedic.knowledge.errors import InputError, JobmedicError, ModelError
from jobmedic.models import boosting

if TYPE_CHECKING:
    import pandas as pd

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
    """A Client on the chosen cluster (exactly one of the three; default 2 local workers)."""
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
    with distributed.LocalCluster(n_workers=workers or 2, threads_per_worker=threads_per_worker,
                                  processes=True, memory_limit=memory_per_worker,
                                  dashboard_address=None) as c, distributed.Client(c) as client:
        yield client


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
        return dxgb.train(client, p, dtrain, num_boost_round=rounds)["booster"]

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
                lost = _lost_workers(client, before)
                what = (f"{type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160] if str(exc) else ''}")
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
          retry_budget: float | None = None) -> pd.DataFrame:
    """models/batch.score with the history features computed on the cluster: the same columns,
    the retry-budget request (budget_time_s / budget_mem_mb) included when `retry_budget` is set."""
    from jobmedic.engines.dask_features import build_features_dask
    from jobmedic.models import batch

    n = max(2 * len(client.scheduler_info().get("workers", {})), 2)
    return batch.score(store, specs, models_dir, now, levels, scope,
                       features=lambda h, q: build_features_dask(h, q, client=client,
                                                                 npartitions=n),
                       retry_budget=retry_budget)
