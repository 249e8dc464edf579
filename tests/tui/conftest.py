"""Fixtures of the chat UI tests: a store built from the demo's simulated cluster (real sacct
text through the real reader), fixed in time, and an app factory with a fixed clock."""
from __future__ import annotations

import shutil

import pytest

from jobmedic.app import build_tool_context
from jobmedic.demo.cluster import simulate
from jobmedic.demo.sacct_text import write_sacct
from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.templates import Templates
from jobmedic.settings import Settings
from jobmedic.tui.app import ChatApp
from jobmedic.tui.backend import ChatBackend

ANCHOR = 1763856000  # 2025-11-23T00:00:00Z


@pytest.fixture(scope="session")
def chat_db_template(tmp_path_factory, taxonomy):
    d = tmp_path_factory.mktemp("chat")
    cluster = simulate(ANCHOR, days=8, seed=3, jobs_per_day=150)
    write_sacct(cluster.jobs, d / "sacct.txt")
    with Store(d / "chat.db") as store:
        ctx = IngestContext(taxonomy, Templates(store.load_templates()), cluster="hpc")
        run_ingest(store, READERS["slurm"], str(d / "sacct.txt"), ctx)
        add_memory_samples(store)
    return d / "chat.db", d / "sacct.txt", cluster


def add_memory_samples(store: Store) -> list[str]:
    """sstat-style memory samples (every 5 s, the last 3 minutes before ANCHOR) for two running
    jobs: the first climbs towards its request (a memory-kill warning), the second is flat."""
    rows = store.conn.execute("SELECT job_id, req_mem_mb FROM jobs WHERE state = 'running' AND "
                              "req_mem_mb > 0 ORDER BY job_id LIMIT 2").fetchall()
    samples = []
    for i, (job, mem) in enumerate(rows):
        limit = mem * 1024 * 1024
        for k in range(37):
            frac = 0.45 + 0.5 * k / 36 if i == 0 else 0.4
            samples.append(("hpc", job, "n1", "0", "mem_rss_bytes", ANCHOR - 180 + 5 * k,
                            frac * limit, "sstat"))
    store.add_samples(samples)
    return [r[0] for r in rows]


@pytest.fixture
def chat_db(chat_db_template, tmp_path):
    src, _, _ = chat_db_template
    dst = tmp_path / "chat.db"
    shutil.copy(src, dst)
    return dst


def make_app(db, taxonomy, factory="assistant", refresh_s: float = 0) -> ChatApp:
    settings = Settings(db=str(db))
    if factory == "assistant":
        from jobmedic.agent import Assistant

        def factory(ctx):
            return Assistant(ctx)
    backend = ChatBackend(str(db), lambda store: build_tool_context(settings, store, taxonomy,
                                                                    ANCHOR), factory)
    return ChatApp(backend, refresh_s=refresh_s, clock=lambda: "00:00:00 UTC")


@pytest.fixture
def app_factory(chat_db, taxonomy):
    def make(**kw):
        return make_app(chat_db, taxonomy, **kw)
    return make
