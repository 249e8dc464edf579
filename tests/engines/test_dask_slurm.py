"""Dask workers started as Slurm jobs through dask-jobqueue on the single-node testbed
(scripts/slurm-testbed), training the failure model there. Skips without the testbed (root,
slurmctld) like tests/live; run alone: `.venv/bin/python -m pytest -q -m slurm tests/engines`."""
from __future__ import annotations

import pytest

from jobmedic.engines import dask_engine
from jobmedic.knowledge.store import Store
from jobmedic.models import registry
from jobmedic.models.synthetic import fill_store
from tests.live.conftest import slurm_testbed  # noqa: F401  (the shared, locked fixture)

pytestmark = pytest.mark.slurm


def test_train_on_workers_started_as_slurm_jobs(slurm_testbed, tmp_path):  # noqa: F811
    s = Store(":memory:")
    fill_store(s, 2000, seed=7, n_users=20)
    opts = {"account": slurm_testbed["account"], "walltime": "00:15:00", "wait_s": 300,
            "log_directory": str(tmp_path / "logs")}
    with dask_engine.cluster(slurm_workers=1, memory_per_worker="1500MiB", slurm=opts) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 1
        card = dask_engine.train(s, "failure", str(tmp_path / "m"), client,
                                 params={"num_boost_round": 30})
    assert card["engine"]["workers"] == 1
    _, meta = registry.load(str(tmp_path / "m"), "failure")
    assert meta["version"] == card["version"] and card["validation"]["model"]["auroc"] > 0.6
