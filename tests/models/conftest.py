"""Fixtures shared by the model tests."""
from __future__ import annotations

import pytest

from jobmedic.knowledge.store import Store
from jobmedic.models.synthetic import synthetic_jobs


@pytest.fixture(scope="module")
def store_df():
    """An in-memory store of 2,000 synthetic jobs (15 users, 20 days) and its jobs frame: the
    recent-runs tests (runtime features, the point's exact repeat) read both."""
    s = Store()
    s.upsert_jobs(synthetic_jobs(2000, seed=5, n_users=15, days=20))
    return s, s.jobs_frame()
