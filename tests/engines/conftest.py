from __future__ import annotations

import pytest

pytest.importorskip("distributed")


@pytest.fixture(scope="session")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def export(store, tmp_path_factory):
    """The jobs of the module's `store` fixture exported as Parquet (engines/parquet.py)."""
    from jobmedic.engines import parquet

    root = tmp_path_factory.mktemp("pq")
    parquet.export(store, root, tables=("jobs",))
    return root
