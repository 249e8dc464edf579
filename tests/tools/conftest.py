"""Fixtures shared by the analyze and stats action tests: one planted store per module."""
from __future__ import annotations

import pytest

from tests.tools.analyze_data import context, fill


@pytest.fixture(scope="module")
def filled():
    from jobmedic.knowledge.store import Store

    s = Store(":memory:")
    fill(s)
    yield s
    s.close()


@pytest.fixture
def ctx(filled):
    return context(filled)  # a fresh context per test over one read-only store
