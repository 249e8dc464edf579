"""The read-only result cache: identical requests are answered once per store version, and
any write to the store, by this server or another process, makes cached answers stale."""
from __future__ import annotations

import threading

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.templates import Templates
from jobmedic.server.cache import ResultCache, store_version
from tests.conftest import FIXTURES

STATS = {"action": "stats", "lookback_days": 30}


def test_repeated_requests_hit_and_writes_invalidate(client, db_path, taxonomy):
    cache = client.app.state.jm.cache
    first = client.post("/v1/actions", json=STATS)
    again = client.post("/v1/actions", json=STATS)
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert (cache.misses, cache.hits) == (1, 1)
    jobs_before = first.json()["data"]["totals"]["jobs"]
    with Store(db_path) as store:  # another writer: an ingest of a second cluster
        ctx = IngestContext(taxonomy, Templates(store.load_templates()), cluster="other")
        run_ingest(store, READERS["slurm"], str(FIXTURES / "sacct_states.txt"), ctx)
    after = client.post("/v1/actions", json=STATS)
    assert after.json()["data"]["totals"]["jobs"] == 2 * jobs_before
    assert cache.misses == 2
    assert 'jobmedic_cache_requests_total{result="hit"} 1' in client.get("/metrics").text


def test_scope_is_part_of_the_key(token_client):
    ml = token_client.post("/v1/actions", json=STATS, headers={"authorization": "Bearer secret-ml"})
    bio = token_client.post("/v1/actions", json=STATS, headers={"authorization": "Bearer secret-bio"})
    assert ml.json()["invocation"]["scope"] == ["ml-team"]
    assert bio.json()["invocation"]["scope"] == ["bio"]


def test_errors_are_not_cached(client):
    cache = client.app.state.jm.cache
    for _ in range(2):
        r = client.post("/v1/actions", json={"action": "stats", "project": "nosuch"})
        assert r.status_code == 404
    assert cache.hits == 0 and cache.misses == 2


def test_single_flight_and_version(tmp_path):
    db = tmp_path / "v.db"
    with Store(db) as s:
        v1 = store_version(str(db))
        s.add_rejects([("t", "f", 1, "r", "x")])
        assert store_version(str(db)) != v1
    cache = ResultCache(str(db))
    calls, gate = [], threading.Event()

    def compute():
        calls.append(1)
        gate.wait(5)
        return 200, b"{}", True

    threads = [threading.Thread(target=cache.get_or_compute, args=("k", compute)) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(5)
    assert len(calls) == 1 and cache.hits == 7
