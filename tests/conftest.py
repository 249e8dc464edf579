"""Shared fixtures: an in-memory store, the taxonomy, and the real data folder (skipped when absent)."""
from __future__ import annotations

from pathlib import Path

import pytest

from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.knowledge.templates import Templates
from jobmedic.settings import config_path

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return Taxonomy.from_yaml(config_path("taxonomy.yaml"))


@pytest.fixture
def store():
    s = Store(":memory:")
    yield s
    s.close()


@pytest.fixture
def file_store(tmp_path):
    s = Store(tmp_path / "jm.db")
    yield s
    s.close()


@pytest.fixture
def ingest_ctx(taxonomy, store):
    from jobmedic.ingest import IngestContext

    return IngestContext(taxonomy, Templates(store.load_templates()))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the checkout)")
    return SHARED_DATA
