"""Shared fixtures: an in-memory store, the taxonomy, and the real data folder (skipped when absent).

The tests never read the developer's own configuration: XDG_CONFIG_HOME points at an empty
folder and JOBMEDIC_* variables are cleared for the whole session (the settings layer reads
$XDG_CONFIG_HOME/jobmedic/jobmedic.yaml and JOBMEDIC_* as user overrides).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.knowledge.templates import Templates
from jobmedic.settings import config_path
from tests.tools.remedy_fixtures import remediations, tctx  # noqa: F401 (shared fixtures)

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

_XDG = tempfile.mkdtemp(prefix="jobmedic-tests-xdg-")
os.environ["XDG_CONFIG_HOME"] = _XDG
for _name in [n for n in os.environ if n.startswith("JOBMEDIC_")]:
    del os.environ[_name]


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


@pytest.fixture
def frame_threads(monkeypatch) -> list[str]:
    """The thread's name at each `RemedyQueries.touched_frame` call: the after-ingest
    inference reads its frame on the main thread, or on InferenceAhead's own."""
    import threading

    from jobmedic.knowledge.remedies import RemedyQueries

    names: list[str] = []
    real = RemedyQueries.touched_frame

    def named(self, *a, **kw):
        names.append(threading.current_thread().name)
        return real(self, *a, **kw)
    monkeypatch.setattr(RemedyQueries, "touched_frame", named)
    return names
