"""A Dask worker process killed for real (SIGKILL) while xgboost.dask is boosting.

Without a retry the training fails with a ModelError naming the lost worker, and the current
model (CURRENT pointer, version folders) is exactly as before; with the default single retry
the rounds rerun once the LocalCluster's nanny has replaced the worker, and a complete,
verified version becomes current. 20 s at load average ~3, 77 s at ~15 on the shared 2-core
machine (two worker processes), hence the `slow` marker."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from jobmedic.engines import dask_engine
from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.store import Store
from jobmedic.models import artifacts, registry, training
from jobmedic.models.synthetic import fill_store

pytestmark = pytest.mark.slow

ROUNDS = 20_000  # far more than the seconds before the kill can finish
#: How long a training may take to fail after a kill: a survivor stuck on its socket gives up
#: after dask_engine.COLL_TIMEOUT_S (XGBoost's collective timeout), plus time under load.
WAIT = dask_engine.COLL_TIMEOUT_S + 60


def _kill_a_worker_mid_training(client, seconds: float = 1.0, victim: int | None = None,
                                sig: int = signal.SIGKILL) -> int:
    """SIGKILL one worker process (or send `sig` to `victim`) once the boosting tasks run on
    both workers (xgboost.dask names them fn-<uuid>, after the DaskDMatrix tasks); returns the
    pid."""
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items()
                if any(str(k).startswith("fn-") for k in keys)]
        if len(busy) == len(pids):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the boosting tasks never started")
    time.sleep(seconds)  # inside the boosting rounds
    victim = pids[min(pids)] if victim is None else victim
    os.kill(victim, sig)
    return victim


def _train_in_thread(**kw):
    res: dict = {}

    def go():
        try:
            res["card"] = dask_engine.train(**kw)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            res["error"] = exc
    th = threading.Thread(target=go, daemon=True)
    th.start()
    return th, res


def _skip_if_the_tracker_took_the_scheduler(client, err, d, pointer, before):
    """XGBoost's native tracker (in the scheduler process) sometimes aborts when a worker dies
    (3 of 8 runs on 2026-11-29, like dmlc/xgboost#11804). The scheduler runs in a subprocess
    (dask_engine._local), so that is a clear ModelError here, with nothing written; the rest
    of the test needs the cluster, so it stops there and says so."""
    if dask_engine.scheduler_alive(client):
        return
    assert isinstance(err, ModelError) and "scheduler was lost" in str(err), err
    assert "no artifact was written" in str(err)
    assert (d / "failure" / "CURRENT").read_bytes() == pointer
    assert _versions(d) == before
    proc = getattr(getattr(getattr(client, "cluster", None), "scheduler", None), "process", None)
    rc = None
    for _ in range(50):  # the exit status, once the subprocess is reaped
        rc = getattr(proc, "returncode", None)
        if rc is not None:
            break
        time.sleep(0.1)
    pytest.skip("the scheduler died when the worker was killed (exit status "
                f"{rc}; -6 is SIGABRT: XGBoost's tracker, dmlc/xgboost#11804-like): a clear "
                "ModelError, nothing written; the rest of the test needs the cluster")


def test_scheduler_abort_mid_training_is_a_clear_failure_and_writes_nothing(tmp_path):
    """The abort itself, forced: SIGABRT to the scheduler process (where xgboost.dask runs
    XGBoost's tracker) while the rounds run. The driver survives and gets a ModelError; the
    current model and the version folders are as before."""
    s = Store(":memory:")
    fill_store(s, 1500, seed=5, n_users=20)
    fr = training.load(s)
    d = tmp_path / "models"
    t0 = time.monotonic()
    with dask_engine.cluster(workers=2) as client:
        first = dask_engine.train(s, "failure", str(d), client, frame=fr,
                                  params={"num_boost_round": 10})
        pointer = (d / "failure" / "CURRENT").read_bytes()
        before = _versions(d)
        scheduler = client.run_on_scheduler(os.getpid)
        assert scheduler != os.getpid()  # the scheduler is not this process
        th, res = _train_in_thread(store=s, kind="failure", models_dir=str(d), client=client,
                                   frame=fr, params={"num_boost_round": ROUNDS})
        _kill_a_worker_mid_training(client, victim=scheduler, sig=signal.SIGABRT)
        th.join(90)
        assert not th.is_alive(), "training hung after the scheduler died"
    err = res.get("error")
    assert isinstance(err, ModelError), res
    assert "scheduler was lost" in str(err) and "no artifact was written" in str(err)
    assert (d / "failure" / "CURRENT").read_bytes() == pointer
    assert _versions(d) == before
    assert artifacts.current(d, "failure")[0].name == first["version"]
    assert time.monotonic() - t0 < 180


def _versions(d):
    return sorted(p.name for p in (d / "failure").iterdir() if p.is_dir())


def test_killed_worker_fails_clearly_or_retries_and_never_half_writes(tmp_path):
    s = Store(":memory:")
    fill_store(s, 3000, seed=5, n_users=30)
    fr = training.load(s)
    d = tmp_path / "models"
    t0 = time.monotonic()
    with dask_engine.cluster(workers=2) as client:
        first = dask_engine.train(s, "failure", str(d), client, frame=fr,
                                  params={"num_boost_round": 20})
        pointer = (d / "failure" / "CURRENT").read_bytes()
        before = _versions(d)

        # no retry: a clear failure, nothing of the broken run is current or on disk
        th, res = _train_in_thread(store=s, kind="failure", models_dir=str(d), client=client,
                                   frame=fr, params={"num_boost_round": ROUNDS}, retries=0)
        victim = _kill_a_worker_mid_training(client)
        th.join(WAIT)
        assert not th.is_alive(), "training hung after the worker was killed"
        err = res.get("error")
        assert isinstance(err, ModelError), res
        assert "lost mid-training" in str(err) and "no artifact was written" in str(err)
        assert (d / "failure" / "CURRENT").read_bytes() == pointer
        assert _versions(d) == before
        assert artifacts.current(d, "failure")[0].name == first["version"]
        with pytest.raises(ProcessLookupError):
            os.kill(victim, 0)

        _skip_if_the_tracker_took_the_scheduler(client, err, d, pointer, before)

        # one retry (the default): the nanny replaces the worker, the rounds rerun, and the
        # new version is whole (loaded through its manifest hashes)
        client.wait_for_workers(2, timeout=60)
        th, res = _train_in_thread(store=s, kind="failure", models_dir=str(d), client=client,
                                   frame=fr, params={"num_boost_round": 400})
        _kill_a_worker_mid_training(client, seconds=0.3)
        th.join(WAIT + dask_engine.COLL_TIMEOUT_S)
        assert not th.is_alive()
        _skip_if_the_tracker_took_the_scheduler(client, res.get("error"), d, pointer, before)
        if "error" in res:  # the 400 rounds finished before the kill landed: not a retry test
            raise res["error"]
        card = res["card"]
        assert card["engine"]["attempts"] == 2
        _, meta = registry.load(str(d), "failure")
        assert meta["version"] == card["version"] != first["version"]
        assert _versions(d) == sorted(before + [card["version"]])
    assert time.monotonic() - t0 < 240 + 3 * dask_engine.COLL_TIMEOUT_S
