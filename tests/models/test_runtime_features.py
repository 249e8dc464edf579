"""The runtime model's recent-runtime features: leakage-safe, and equal in the bulk path
(training, evaluation, batch with a history frame), the single-spec path (predict) and the
per-spec lookups (batch from the summary)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobmedic.knowledge.store import Store
from jobmedic.models.runtime_features import (
    RT_FEATURES,
    recent_block,
    recent_spec,
    recent_specs,
)
from jobmedic.models.synthetic import synthetic_jobs


def test_no_feature_changes_when_later_jobs_are_added():
    rows = synthetic_jobs(1500, seed=7, n_users=10, days=15)
    s1, s2 = Store(), Store()
    s1.upsert_jobs(rows[:900])
    s2.upsert_jobs(rows)
    e1 = recent_block(s1.jobs_frame())
    e2 = recent_block(s2.jobs_frame())[:900]
    np.testing.assert_array_equal(e1, e2)
    assert np.isfinite(e2[:, RT_FEATURES.index("user_med_logrt")]).mean() > 0.5


def test_values_are_the_last_runs_that_ended_before_submit(store_df):
    _, df = store_df
    E = pd.DataFrame(recent_block(df), columns=RT_FEATURES, index=df.index)
    checked = 0
    for i in range(500, 2000, 37):
        u, t = df.loc[i, "user"], df.loc[i, "submit_time"]
        ended = df[(df["user"] == u) & (df["end_time"] < t) & df["state"].notna()]
        ended = ended[ended["state"].isin(["completed", "failed", "oom", "timeout", "node_fail",
                                           "cancelled", "preempted"])]
        last = ended.sort_values("end_time", kind="stable").tail(10)
        if len(last) < 3:
            continue
        want = np.nanmedian(np.log1p(last["elapsed_s"].clip(lower=0)))
        assert E.loc[i, "user_med_logrt"] == pytest.approx(want)
        newest = last.iloc[-1]
        assert E.loc[i, "user_last_ratio"] == pytest.approx(newest["elapsed_s"] / newest["timelimit_s"])
        assert E.loc[i, "user_ratio_rt"] == pytest.approx(
            df.loc[i, "timelimit_s"] * E.loc[i, "user_med_ratio"])
        checked += 1
    assert checked >= 10


def test_single_and_per_spec_lookups_equal_bulk(store_df):
    s, df = store_df
    E = recent_block(df)
    idx = [3, 400, 999, 1500, 1999]
    for i in idx:
        v = recent_spec(s, df.loc[i].to_dict(), int(df.loc[i, "submit_time"]))[0]
        np.testing.assert_allclose(E[i], v, rtol=1e-12, equal_nan=True)
    q = df.loc[idx].reset_index(drop=True)
    np.testing.assert_allclose(E[idx], recent_specs(s, q), rtol=1e-12, equal_nan=True)
    # and the bulk path on explicit queries equals the history's own rows
    np.testing.assert_allclose(E[idx], recent_block(df, q), rtol=1e-12, equal_nan=True)


def test_cold_start_and_scope(store_df):
    s, df = store_df
    v = recent_spec(s, {"user": "nobody", "req_cpus": 2, "timelimit_s": 3600}, 2_000_000_000)
    assert np.isnan(v).all()
    u = df.loc[1800, "user"]
    spec = {"user": u, "req_cpus": 1, "timelimit_s": 60}
    seen = recent_spec(s, spec, 2_000_000_000)[0]
    hidden = recent_spec(s, spec, 2_000_000_000, scope=["no-such-project"])[0]
    assert np.isfinite(seen[RT_FEATURES.index("user_med_logrt")])
    assert np.isnan(hidden).all()
