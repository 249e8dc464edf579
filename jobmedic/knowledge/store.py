"""The knowledge store: one SQLite file (WAL, busy timeout, versioned migrations).

`Store` is a small facade. Its core (`db.Db`) owns the connection, migrations and
transactions; each query family is a class of its own module holding that one `Db`
(composition): `store.loads` (ingest's bulk writes), `store.facts` (counts, ranges),
`store.vocab`, `store.stats`, `store.features`, `store.remedies`, `store.sessions`,
`store.telemetry`.
`store.ownership` checks the scope of writes.
Every family takes a `scope` (the projects a caller may see) that is applied inside the SQL.
The families' methods are also the Store's own (`store.window_totals(...)` is
`store.stats.window_totals(...)`), listed below family by family, so callers need one object.
"""
from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from jobmedic.knowledge.alerts import LiveQueries
from jobmedic.knowledge.db import SCHEMA_VERSION, Db, Scope, expected_indexes, scope_clause
from jobmedic.knowledge.export_queries import ExportQueries
from jobmedic.knowledge.facts import StoreFacts
from jobmedic.knowledge.feature_queries import FeatureQueries
from jobmedic.knowledge.loads import BulkLoads
from jobmedic.knowledge.ownership import OwnershipQueries
from jobmedic.knowledge.remedies import RemedyQueries
from jobmedic.knowledge.rollup_reads import rollup_reads
from jobmedic.knowledge.rollups import Rollups
from jobmedic.knowledge.sessions import SessionQueries
from jobmedic.knowledge.stats_queries import StatsQueries
from jobmedic.knowledge.telemetry import TelemetryQueries
from jobmedic.knowledge.vocab import VocabQueries

__all__ = ["SCHEMA_VERSION", "Scope", "Store", "expected_indexes", "scope_clause"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _via(family: str, fn: Callable[Concatenate[Any, _P], _R]
         ) -> Callable[Concatenate[Store, _P], _R]:
    """A Store method that runs `fn` of the query family held in attribute `family`."""
    @functools.wraps(fn)
    def method(self: Store, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return fn(getattr(self, family), *args, **kwargs)
    return method


class Store:
    """The jobmedic knowledge store. Open with a path (or ``:memory:``) and use the methods."""

    BULK_TABLES = BulkLoads.BULK_TABLES

    def __init__(self, path: str | Path = ":memory:", *, busy_timeout_ms: int = 10_000,
                 migrate: bool = True) -> None:
        self._db = db = Db(path, busy_timeout_ms=busy_timeout_ms, migrate=migrate)
        self.path = db.path
        self.loads = BulkLoads(db)
        self.facts = StoreFacts(db)
        self.vocab = VocabQueries(db)
        self.stats = StatsQueries(db)
        self.rollups = rollup_reads(db).rollups  # per-day rollups behind the window reads
        self.features = FeatureQueries(db)
        self.export = ExportQueries(db)  # Parquet export partitions (engines/parquet.py)
        self.remedies = RemedyQueries(db)
        self.sessions = SessionQueries(db)
        self.ownership = OwnershipQueries(db)
        self.telemetry = TelemetryQueries(db)
        self.live = LiveQueries(db)  # alerts, the watcher's cursor, job output evidence
        if migrate:  # a run left `running` by a killed ingest is marked (ingest_runs)
            self.loads.mark_interrupted_runs()

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        return self._db.conn

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._db.schema_version

    def migrate(self) -> int:
        """Apply pending migrations; refuse a store written by a newer jobmedic."""
        return self._db.migrate()

    def ensure_indexes(self) -> list[str]:
        """Recreate any secondary index the migrations define but the file lacks."""
        return self._db.ensure_indexes()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE): all of it lands, or none of it."""
        with self._db.transaction() as conn:
            yield conn

    # -- loads: ingest's bulk writes ---------------------------------------------------------
    upsert_jobs = _via("loads", BulkLoads.upsert_jobs)
    drop_indexes_of_empty_tables = _via("loads", BulkLoads.drop_indexes_of_empty_tables)
    rebuild_indexes = _via("loads", BulkLoads.rebuild_indexes)
    add_job_nodes = _via("loads", BulkLoads.add_job_nodes)
    drop_array_ranges = _via("loads", BulkLoads.drop_array_ranges)
    add_failure_events = _via("loads", BulkLoads.add_failure_events)
    link_events_to_jobs = _via("loads", BulkLoads.link_events_to_jobs)
    add_rejects = _via("loads", BulkLoads.add_rejects)
    clear_rejects = _via("loads", BulkLoads.clear_rejects)
    start_ingest_run = _via("loads", BulkLoads.start_ingest_run)
    finish_ingest_run = _via("loads", BulkLoads.finish_ingest_run)
    mark_interrupted_runs = _via("loads", BulkLoads.mark_interrupted_runs)
    load_templates = _via("loads", BulkLoads.load_templates)
    save_templates = _via("loads", BulkLoads.save_templates)

    # -- facts: what the store holds ---------------------------------------------------------
    table_counts = _via("facts", StoreFacts.table_counts)
    time_ranges = _via("facts", StoreFacts.time_ranges)
    data_range = _via("facts", StoreFacts.data_range)
    recent_rejects = _via("facts", StoreFacts.recent_rejects)
    file_size_bytes = _via("facts", StoreFacts.file_size_bytes)

    # -- vocab: names ------------------------------------------------------------------------
    known = _via("vocab", VocabQueries.known)
    resolve = _via("vocab", VocabQueries.resolve)
    get_job = _via("vocab", VocabQueries.get_job)
    close_job_ids = _via("vocab", VocabQueries.close_job_ids)

    # -- stats: window aggregates ------------------------------------------------------------
    window_where = _via("stats", StatsQueries.window_where)
    window_totals = _via("stats", StatsQueries.window_totals)
    window_failures = _via("stats", StatsQueries.window_failures)
    open_work = _via("stats", StatsQueries.open_work)
    entity_combos = _via("stats", StatsQueries.entity_combos)
    binned = _via("stats", StatsQueries.binned)
    hourly = _via("stats", StatsQueries.hourly)
    failure_detail = _via("stats", StatsQueries.failure_detail)
    rate_by = _via("stats", StatsQueries.rate_by)
    node_rates = _via("stats", StatsQueries.node_rates)
    impact_of = _via("stats", StatsQueries.impact_of)
    name_runs = _via("stats", StatsQueries.name_runs)
    breakdown = _via("stats", StatsQueries.breakdown)
    failure_mix = _via("stats", StatsQueries.failure_mix)
    node_combos = _via("stats", StatsQueries.node_combos)
    template_texts = _via("stats", StatsQueries.template_texts)
    types_seen_before = _via("stats", StatsQueries.types_seen_before)
    history_before = _via("stats", StatsQueries.history_before)
    orphan_event_counts = _via("stats", StatsQueries.orphan_event_counts)
    orphan_event_counts_by = _via("stats", StatsQueries.orphan_event_counts_by)
    refresh_rollups = _via("rollups", Rollups.refresh)

    # -- features: the models' data ----------------------------------------------------------
    jobs_frame = _via("features", FeatureQueries.jobs_frame)
    refresh_entity_stats = _via("features", FeatureQueries.refresh_entity_stats)
    entity_stats_as_of = _via("features", FeatureQueries.entity_stats_as_of)
    ended_after = _via("features", FeatureQueries.ended_after)
    entity_history = _via("features", FeatureQueries.entity_history)
    recent_runs = _via("features", FeatureQueries.recent_runs)
    last_completed_runtimes = _via("features", FeatureQueries.last_completed_runtimes)

    # -- remedies: solutions, outcomes, diagnose lookups -------------------------------------
    seed_solutions = _via("remedies", RemedyQueries.seed_solutions)
    solution_rowids = _via("remedies", RemedyQueries.solution_rowids)
    list_solutions = _via("remedies", RemedyQueries.list_solutions)
    add_outcomes = _via("remedies", RemedyQueries.add_outcomes)
    refresh_solution_counts = _via("remedies", RemedyQueries.refresh_solution_counts)
    outcome_exists = _via("remedies", RemedyQueries.outcome_exists)
    solution_stats = _via("remedies", RemedyQueries.solution_stats)
    solution_context_stats = _via("remedies", RemedyQueries.solution_context_stats)
    recent_outcomes = _via("remedies", RemedyQueries.recent_outcomes)
    outcomes_for_jobs = _via("remedies", RemedyQueries.outcomes_for_jobs)
    failure_event_of = _via("remedies", RemedyQueries.failure_event_of)
    find_event = _via("remedies", RemedyQueries.find_event)
    similar_failures = _via("remedies", RemedyQueries.similar_failures)
    resubmission_frame = _via("remedies", RemedyQueries.resubmission_frame)
    set_resubmit_of = _via("remedies", RemedyQueries.set_resubmit_of)
    remedy_versions = _via("remedies", RemedyQueries.remedy_versions)
    template_version = _via("remedies", RemedyQueries.template_version)
    graph_event_frame = _via("remedies", RemedyQueries.graph_event_frame)
    graph_solution_rows = _via("remedies", RemedyQueries.graph_solution_rows)
    inference_mark = _via("remedies", RemedyQueries.inference_mark)
    touched_frame = _via("remedies", RemedyQueries.touched_frame)
    touched_max = _via("remedies", RemedyQueries.touched_max)
    set_inference_mark = _via("remedies", RemedyQueries.set_inference_mark)

    # -- sessions: assistant state -----------------------------------------------------------
    load_session = _via("sessions", SessionQueries.load_session)
    save_session = _via("sessions", SessionQueries.save_session)
    list_sessions = _via("sessions", SessionQueries.list_sessions)
    data_stamp = _via("sessions", SessionQueries.data_stamp)
    cache_get = _via("sessions", SessionQueries.cache_get)
    cache_put = _via("sessions", SessionQueries.cache_put)
    find_job_refs = _via("sessions", SessionQueries.find_job_refs)
    top_failure_type = _via("sessions", SessionQueries.top_failure_type)

    # -- ownership: the scope check of writes -----------------------------------------------
    write_project = _via("ownership", OwnershipQueries.write_project)

    # -- telemetry: samples of running and past jobs -----------------------------------------
    add_samples = _via("telemetry", TelemetryQueries.add_samples)
    job_samples = _via("telemetry", TelemetryQueries.job_samples)
    job_telemetry_summary = _via("telemetry", TelemetryQueries.job_telemetry_summary)
    node_samples = _via("telemetry", TelemetryQueries.node_samples)
    telemetry_counts = _via("telemetry", TelemetryQueries.telemetry_counts)
    downsample_telemetry = _via("telemetry", TelemetryQueries.downsample)
    prune_telemetry = _via("telemetry", TelemetryQueries.prune)
    apply_telemetry_retention = _via("telemetry", TelemetryQueries.apply_retention)
