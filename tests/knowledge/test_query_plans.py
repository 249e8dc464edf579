"""The jobs index set is designed from the queries (migration 11, issue 16): every hot query
family runs here through its real code path, each statement it sends that reads `jobs` is
planned with EXPLAIN QUERY PLAN, and none may scan the jobs table (a full SCAN, by rowid or
through a whole index); each family must reach jobs through the index named for it.

The store is small but not ANALYZEd, so SQLite plans as for a big table (its default row
estimates), the way a fresh million-job store without statistics is planned.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.feature_queries import ENTITY_KINDS
from jobmedic.knowledge.rules import RuleBase
from jobmedic.knowledge.templates import Templates
from jobmedic.tools import run_action
from jobmedic.tools.base import ToolContext
from tests.knowledge.remedy_history import T0, job, planted_oom_history

FIXTURES = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures"
NOW = T0 + 120 * 86400
#: How a plan line names a full pass over jobs (the aliases the queries give the table).
_SCAN = re.compile(r"^SCAN (jobs|j|x)\b")


@pytest.fixture(scope="module")
def env(tmp_path_factory, taxonomy):
    import yaml

    from jobmedic.knowledge.store import Store
    from jobmedic.settings import config_path

    s = Store(tmp_path_factory.mktemp("plans") / "jm.db")
    run_ingest(s, READERS["slurm"], str(FIXTURES / "sacct_states.txt"),
               IngestContext(taxonomy, Templates(s.load_templates())))
    s.upsert_jobs(planted_oom_history(20, 15, 20, 5))
    s.upsert_jobs([job(job_id=f"w{i}", user=f"u{i % 5}", name=f"n{i % 9}", project=f"p{i % 3}",
                       image=f"img{i % 4}", qos="normal", state="failed" if i % 7 == 0 else
                       "completed", failure_type="app_error" if i % 7 == 0 else None,
                       submit_time=NOW - 86400 * 3 + i * 600, start_time=NOW - 86400 * 3 + i * 600,
                       end_time=NOW - 86400 * 3 + i * 600 + 300, elapsed_s=300, req_mem_mb=1000)
                   for i in range(300)])
    s.upsert_jobs([job(job_id="r1", user="u1", name="n1", project="p1", state="running",
                       submit_time=NOW - 600, start_time=NOW - 500)])
    with open(config_path("remediations.yaml"), encoding="utf-8") as fh:
        rules = RuleBase.from_dict(yaml.safe_load(fh), taxonomy.codes)
    ctx = ToolContext(store=s, taxonomy=taxonomy, now=NOW, rules=rules, resubmit_window_h=72)
    from jobmedic.knowledge.outcomes import infer_new_outcomes

    infer_new_outcomes(s, rules, 72)  # the first run reads the whole store; later ones do not
    failed = s.conn.execute("SELECT cluster, job_id FROM jobs WHERE job_id = '1001'").fetchone()
    assert failed is not None
    yield s, ctx
    s.close()


def _analyze(**kw: Any) -> Callable:
    return lambda s, ctx: run_action({"action": "analyze", "lookback_days": 7, **kw}, ctx)


def _stats(**kw: Any) -> Callable:
    return lambda s, ctx: run_action({"action": "stats", "lookback_days": 7, **kw}, ctx)


def _history(kind: str, scoped: bool) -> Callable:
    values = {"user": "u1", "name": "n1", "project": "p1", "image": "img1", "queue": "batch",
              "qos": "normal", "shape": "u1|4|3600"}
    return lambda s, ctx: s.entity_history(kind, values[kind], NOW, ["p1"] if scoped else None,
                                           NOW - 86400 if scoped else None)


def _live_rules(s: Any, ctx: Any) -> None:
    from jobmedic.live.rules import RuleSet

    RuleSet().evaluate(s, NOW)


def _live_queries(s: Any, ctx: Any) -> None:
    s.live.failed_jobs_between("c1", "p1", NOW - 86400, NOW)
    s.live.failed_jobs_named("c1", "p1", "n1", NOW - 86400, NOW)
    s.live.failed_jobs_without_output(NOW - 86400)
    s.live.live_metrics(NOW)
    s.live.resubmission_frame_for(["u1"], NOW - 86400)
    s.telemetry.running_jobs(sampled_since=NOW - 3600)


def _tenant(s: Any, ctx: Any) -> None:
    s.data_range(["p1"])
    s.history_before(NOW - 86400, ["p1"])
    s.types_seen_before(["app_error", "oom"], NOW - 86400, ["p1"])
    s.types_seen_before(["app_error"], NOW - 86400, None)
    s.get_job("w7", scope=["p1"])


def _inference(s: Any, ctx: Any) -> None:
    from jobmedic.knowledge.outcomes import infer_new_outcomes

    s.upsert_jobs([job(job_id="late", user="u2", name="n2", project="p2", state="completed",
                       submit_time=NOW - 100, end_time=NOW - 50)])
    infer_new_outcomes(s, ctx.rules, 72)


#: (hot query family, how it runs, the index it must reach jobs through)
HOT = [
    ("analyze", _analyze(), "jobs_window"),
    ("analyze project", _analyze(project="p1"), "jobs_project_end"),
    ("analyze user", _analyze(user="u1"), "jobs_user_end"),
    ("analyze image", _analyze(image="img1"), "jobs_image_end"),
    ("analyze queue", _analyze(queue="batch"), "jobs_queue_end"),
    ("analyze node", _analyze(node="gpu01"), "sqlite_autoindex_jobs_1"),
    ("analyze scoped", _analyze(allowed_projects=["p1"]), "jobs_window"),
    ("stats", _stats(group_by=["failure_type", "user", "node"]), "jobs_window"),
    ("stats scoped by day", _stats(group_by=["day"], allowed_projects=["p1"]), "jobs_window"),
    ("remediate job", lambda s, ctx: run_action({"action": "remediate", "job_id": "1001"}, ctx),
     "jobs_job_id"),
    ("remediate job scoped", lambda s, ctx: run_action(
        {"action": "remediate", "job_id": "1001", "allowed_projects": ["ml-team"]}, ctx),
     "jobs_job_id"),
    ("diagnose job", lambda s, ctx: run_action({"action": "diagnose", "job_id": "1001"}, ctx),
     "jobs_job_id"),
    *[(f"predict history {k}", _history(k, False), f"jobs_{k}_end") for k in ENTITY_KINDS],
    # scoped: the entity's index or the project's (both are an indexed range; SQLite picks
    # by its statistics)
    *[(f"predict history {k} scoped", _history(k, True), (f"jobs_{k}_end", "jobs_project_end"))
      for k in ENTITY_KINDS],
    ("predict runtime repeat (last completed job of the shape)", lambda s, ctx: s.recent_runs(
        "shape", "u1|4|3600", NOW, None, 1, completed=True), "jobs_shape_end"),
    ("predict --batch runtime repeats, many shapes in one statement", lambda s, ctx:
        s.last_completed_runtimes([("u1", 4, 3600, NOW), ("u2", 8, 7200, NOW)]), "jobs_shape_end"),
    ("live watch rules", _live_rules, "jobs_window"),
    ("live watch queries", _live_queries, "jobs_user_submit"),
    ("tenant-scoped reads", _tenant, "jobs_project_submit"),
    ("store range", lambda s, ctx: s.data_range(None), "jobs_end"),
    ("history before, unscoped", lambda s, ctx: s.history_before(NOW, None), "jobs_event_time"),
    ("history before, first submit", lambda s, ctx: s.history_before(NOW, None), "jobs_submit"),
    ("new failure types", lambda s, ctx: s.types_seen_before(["oom"], NOW, None),
     "jobs_failure_type"),
    ("incremental outcome inference", _inference, "jobs_user_end"),
]


@pytest.mark.parametrize("name,run,index", HOT, ids=[h[0] for h in HOT])
def test_hot_query_uses_an_index(env, name, run, index):
    s, ctx = env
    sent: list[str] = []
    s.conn.set_trace_callback(sent.append)
    try:
        res = run(s, ctx)
    finally:
        s.conn.set_trace_callback(None)
    if res is not None and hasattr(res, "status"):
        assert res.status in ("ok", "no_data"), (name, res.error)
    reads = [q for q in dict.fromkeys(sent)
             if re.search(r"\bjobs\b", q) and q.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert reads, f"{name}: no statement read jobs"
    used: set[str] = set()
    for q in reads:
        plan = [r[3] for r in s.conn.execute("EXPLAIN QUERY PLAN " + q)]
        scans = [p for p in plan if _SCAN.match(p)]
        assert not scans, f"{name}: {scans} in the plan of {q[:300]}"
        used.update(m for p in plan for m in re.findall(r"INDEX (\w+)", p))
    want = (index,) if isinstance(index, str) else index
    assert used & set(want), f"{name}: none of {want} among the indexes used ({sorted(used)})"


def test_every_jobs_index_serves_a_hot_query():
    """No index is kept that no hot query above names (drop what no plan uses)."""
    from jobmedic.knowledge.db import SCHEMA_VERSION, expected_indexes

    named = {i for h in HOT for i in ((h[2],) if isinstance(h[2], str) else h[2])}
    jobs_indexes = {n for n, (t, _) in expected_indexes(SCHEMA_VERSION).items() if t == "jobs"}
    assert jobs_indexes <= named, sorted(jobs_indexes - named)



def test_a_version_10_store_opens_with_the_new_index_set(tmp_path):
    """Migration 11 on an existing store: the old indexes go, the partial ones replace the
    full ones, the jobs are kept, and the inference bookkeeping is there."""
    import sqlite3

    from jobmedic.knowledge.db import SCHEMA_VERSION, expected_indexes
    from jobmedic.knowledge.store import Store

    path = tmp_path / "old.db"
    with Store(path) as s:
        s.upsert_jobs(planted_oom_history(3, 2, 3, 1))
    con = sqlite3.connect(path)
    for sql in ("DROP TRIGGER jobs_touched_update", "DROP TABLE jobs_touched", "DROP TABLE marks",
                "DROP INDEX jobs_image_end", "CREATE INDEX jobs_image_end ON jobs(image, end_time)",
                "CREATE INDEX jobs_image ON jobs(image)", "CREATE INDEX jobs_name ON jobs(name)",
                "CREATE INDEX jobs_user_name_submit ON jobs(user, name, submit_time)",
                "PRAGMA user_version = 10"):
        con.execute(sql)
    con.commit()
    con.close()
    with Store(path) as s:
        assert s._db.schema_version == SCHEMA_VERSION
        have = {name: sql for name, sql in s.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' "
            "AND sql IS NOT NULL")}
        want = {n for n, (t, _) in expected_indexes(SCHEMA_VERSION).items() if t == "jobs"}
        assert set(have) == want
        assert "WHERE image IS NOT NULL" in have["jobs_image_end"]
        assert s.table_counts()["jobs"] == 12
        assert s.remedies.inference_mark() == (0, 12)


#: Entity-filtered analyze (issue 16): (case, request fields, what drives: the statements' own
#: choice, an entity's (entity, end_time) index, or the window index)
FILTERED = [("user", {"user": "u1"}, "auto"), ("project", {"project": "p1"}, "entity"),
            ("image", {"image": "img1"}, "entity"), ("queue", {"queue": "batch"}, "entity"),
            ("user and queue in a scope", {"user": "u1", "queue": "batch",
                                           "allowed_projects": ["p1"]}, "entity"),
            ("user, window index", {"user": "u1"}, "window"),
            ("image, window index", {"image": "img1"}, "window"),
            ("cluster (no entity index: the window index)", {"cluster": "c1"}, "auto")]


@pytest.mark.parametrize("name,kw,drive", FILTERED, ids=[f[0] for f in FILTERED])
def test_filtered_analyze_reads_the_window_not_the_entity_history(env, monkeypatch, name, kw,
                                                                  drive):
    """Every statement of a filtered analyze that reads jobs (alias j) reaches them through a
    time range: an (entity, end_time) range or the window index's event_time range, never
    `entity = ?` alone (the entity's whole history). Planned with the statements' own
    parameters, as they run."""
    from jobmedic.knowledge import stats_queries

    s, ctx = env
    if drive != "auto":  # window_from.driver's choice, forced (and not remembered)
        monkeypatch.setattr(stats_queries, "driver",
                            lambda *a: None if drive == "window" and a[4] else 0)
    s.stats.__dict__.pop("_driver_cache", None)
    sent: list[tuple[str, Any]] = []
    conn = s._db.conn

    class Recorder:
        def execute(self, sql: str, args: Any = ()) -> Any:
            sent.append((sql, args))
            return conn.execute(sql, args)

        def __getattr__(self, key: str) -> Any:
            return getattr(conn, key)

    s._db.conn = Recorder()
    try:
        res = _analyze(**kw)(s, ctx)
    finally:
        s._db.conn = conn
        s.stats.__dict__.pop("_driver_cache", None)
    assert res.status in ("ok", "no_data"), res.error
    reads = [(q, a) for q, a in sent if re.search(r"\bjobs j\b", q)
             and q.lstrip().upper().startswith(("SELECT", "WITH"))
             and not q.rstrip().endswith("LIMIT 1")]  # existence checks: one seek
    assert reads, name
    used = set()
    for q, a in reads:
        for p in [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + q, a)]:
            assert not _SCAN.match(p), f"{name}: {p} in the plan of {q[:300]}"
            m = re.match(r"SEARCH j USING (?:COVERING )?INDEX (\w+) \((.*)\)", p)
            if m:
                used.add(m[1])
                assert re.search(r"\b(end_time|event_time)[<>=]", m[2]), (
                    f"{name}: {p} reads the entity's history in {q[:300]}")
    assert ("jobs_window" in used) == (drive != "entity"), (name, used)
