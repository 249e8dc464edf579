from __future__ import annotations

import numpy as np
import pandas as pd

from jobmedic.engines.dask_features import build_features_dask
from jobmedic.knowledge.store import Store
from jobmedic.models.features import FEATURES, build_features
from jobmedic.models.synthetic import fill_store


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns) == FEATURES
    assert a.index.equals(b.index)
    for c in FEATURES:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        assert np.array_equal(np.isnan(x), np.isnan(y)), c
        ok = ~np.isnan(x)
        assert np.allclose(x[ok], y[ok], rtol=1e-12, atol=1e-9), c


def test_dask_features_equal_single_machine_row_by_row(client):
    s = Store(":memory:")
    fill_store(s, 3000, seed=3, n_users=25)
    df = s.jobs_frame()
    single = build_features(df)
    dist = build_features_dask(df, client=client, npartitions=3)
    _same(single, dist)
    # not vacuous: the history columns carry information
    assert single["user_n"].max() > 10 and single["name_fail_rate"].notna().sum() > 1000


def test_dask_features_for_separate_queries(client):
    s = Store(":memory:")
    fill_store(s, 1500, seed=4, n_users=15)
    df = s.jobs_frame()
    q = df.iloc[::7].copy()
    q["submit_time"] = q["submit_time"] + 3600
    _same(build_features(df, q), build_features_dask(df, q, client=client, npartitions=2))
