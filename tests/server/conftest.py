"""Fixtures of the HTTP API tests: a store file with real-format data, settings, a TestClient,
and a live uvicorn server on a free loopback port (for slow-client and concurrency tests)."""
from __future__ import annotations

import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.templates import Templates
from jobmedic.server import create_app
from jobmedic.server.auth import hash_token
from jobmedic.settings import Settings
from tests.conftest import FIXTURES

TOKENS = {"admin": None, "ml": ["ml-team"], "bio": ["bio"]}


@pytest.fixture
def db_path(tmp_path, taxonomy):
    path = tmp_path / "api.db"
    with Store(path) as store:
        ctx = IngestContext(taxonomy, Templates(store.load_templates()), cluster="hpc")
        run_ingest(store, READERS["slurm"], str(FIXTURES / "sacct_states.txt"), ctx)
    return path


def make_settings(db_path, tokens: bool = False, **kw) -> Settings:
    server = {"max_body_bytes": kw.pop("max_body_bytes", 1_048_576)}
    if tokens:
        server["tokens"] = [{"sha256": hash_token(f"secret-{n}"), "projects": p, "name": n}
                            for n, p in TOKENS.items()]
    return Settings(db=str(db_path), server=server, as_of="2024-05-03", **kw)


@pytest.fixture
def client(db_path, taxonomy):
    app = create_app(make_settings(db_path), taxonomy=taxonomy)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def token_client(db_path, taxonomy):
    app = create_app(make_settings(db_path, tokens=True), taxonomy=taxonomy)
    with TestClient(app) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(db_path, taxonomy):
    """A real uvicorn server in a thread; yields its base URL."""
    import uvicorn

    app = create_app(make_settings(db_path), taxonomy=taxonomy, body_timeout_s=1.0)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_keep_alive=5))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
