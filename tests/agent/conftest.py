"""An assistant over a store built from real-format fixtures: tests/fixtures/sacct_states.txt
and tests/agent/fixtures/sacct_agent.txt through the slurm reader, plus Run:AI-style events.
"Now" is 2024-05-03 12:00 UTC (a Friday), just after the fixtures' last jobs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobmedic.agent import Assistant
from jobmedic.app import build_tool_context
from jobmedic.core.timeutil import parse_time_arg
from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.ingest.base import event_tuple
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.templates import Templates
from jobmedic.settings import load_settings
from tests.conftest import FIXTURES

HERE = Path(__file__).resolve().parent
NOW = parse_time_arg("2024-05-03T12:00:00")


def add_events(store: Store, taxonomy, events: list[dict], source: str = "runai") -> int:
    rows = []
    for ev in events:
        ev = dict(ev, cluster=ev.get("cluster", "default"), source=source, resolved=0,
                  timestamp=parse_time_arg(ev["timestamp"]),
                  blame=taxonomy.blame_of(ev["failure_type"]))
        rows.append(event_tuple(ev, f"{source}:{ev['job_name']}:{ev['timestamp']}"))
    return store.add_failure_events(rows)


def build_store(store: Store, taxonomy) -> Store:
    for path in (FIXTURES / "sacct_states.txt", HERE / "fixtures" / "sacct_agent.txt"):
        run_ingest(store, READERS["slurm"], str(path),
                   IngestContext(taxonomy, Templates(store.load_templates())))
    add_events(store, taxonomy, json.loads((HERE / "fixtures" / "runai_events.json").read_text()))
    return store


def make_ctx(store: Store, taxonomy, scope=None):
    return build_tool_context(load_settings(), store, taxonomy, NOW, scope)


@pytest.fixture
def agent_store(store, taxonomy):
    return build_store(store, taxonomy)


@pytest.fixture
def agent_ctx(agent_store, taxonomy):
    return make_ctx(agent_store, taxonomy)


@pytest.fixture
def assistant(agent_ctx):
    return Assistant(agent_ctx)
