"""Versioned schema migrations for the knowledge store.

The schema is part of the product (docs/schema.md): change it only by appending a migration.
Each migration is a list of SQL statements applied in one transaction; `PRAGMA user_version`
records the version reached.
"""
from __future__ import annotations

JOB_COLUMNS = (
    "cluster", "job_id", "array_id", "name", "user", "project", "queue", "qos", "image",
    "state", "raw_state", "exit_code", "signal", "failure_type", "blame", "reason",
    "submit_time", "start_time", "end_time", "elapsed_s", "timelimit_s", "req_cpus",
    "req_gpus", "req_mem_mb", "max_rss_mb", "n_nodes", "node_list", "work_dir", "script",
    "template_id", "source", "resubmit_of", "failed_at",
)

FAILURE_EVENT_COLUMNS = (
    "cluster", "job_id", "job_name", "project", "user", "failure_type", "blame", "phase",
    "timestamp", "pod_name", "node_name", "container_image", "error_message", "logs_snippet",
    "events_snippet", "gpu_count", "memory_request", "cpu_request", "template_id", "evidence",
    "source", "resolved", "resolution",
)

#: A row (of jobs, unaliased) that is a failure: a failure state, or a pod that cannot be
#: scheduled (state pending, failure_type scheduling: it failed to start, with no end).
FAILING_ROW_SQL = ("(state IN ('failed', 'timeout', 'oom', 'node_fail', 'preempted') "
                   "OR (state = 'pending' AND failure_type = 'scheduling'))")

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "initial schema", [
        """CREATE TABLE jobs (
            cluster TEXT NOT NULL, job_id TEXT NOT NULL, array_id TEXT, name TEXT,
            user TEXT, project TEXT, queue TEXT, qos TEXT, image TEXT,
            state TEXT NOT NULL, raw_state TEXT, exit_code INTEGER, signal INTEGER,
            failure_type TEXT, blame TEXT, reason TEXT,
            submit_time INTEGER, start_time INTEGER, end_time INTEGER,
            elapsed_s INTEGER, timelimit_s INTEGER, req_cpus INTEGER, req_gpus INTEGER,
            req_mem_mb REAL, max_rss_mb REAL, n_nodes INTEGER, node_list TEXT,
            work_dir TEXT, script TEXT, template_id INTEGER,
            source TEXT NOT NULL, resubmit_of TEXT,
            PRIMARY KEY (cluster, job_id)
        )""",
        "CREATE INDEX jobs_submit ON jobs(submit_time)",
        "CREATE INDEX jobs_end ON jobs(end_time)",
        "CREATE INDEX jobs_project_submit ON jobs(project, submit_time)",
        "CREATE INDEX jobs_user_submit ON jobs(user, submit_time)",
        "CREATE INDEX jobs_image ON jobs(image)",
        "CREATE INDEX jobs_failure_type ON jobs(failure_type, submit_time)",
        "CREATE INDEX jobs_name ON jobs(name)",
        """CREATE TABLE job_nodes (
            cluster TEXT NOT NULL, job_id TEXT NOT NULL, node TEXT NOT NULL,
            PRIMARY KEY (cluster, job_id, node)
        ) WITHOUT ROWID""",
        "CREATE INDEX job_nodes_node ON job_nodes(node)",
        """CREATE TABLE failure_events (
            id INTEGER PRIMARY KEY,
            cluster TEXT NOT NULL DEFAULT 'default', job_id TEXT, job_name TEXT,
            project TEXT, user TEXT, failure_type TEXT NOT NULL, blame TEXT NOT NULL,
            phase TEXT, timestamp INTEGER NOT NULL, pod_name TEXT, node_name TEXT,
            container_image TEXT, error_message TEXT, logs_snippet TEXT, events_snippet TEXT,
            gpu_count INTEGER, memory_request TEXT, cpu_request TEXT, template_id INTEGER,
            evidence TEXT, source TEXT NOT NULL, resolved INTEGER NOT NULL DEFAULT 0,
            resolution TEXT, dedup_key TEXT NOT NULL UNIQUE
        )""",
        "CREATE INDEX failure_events_time ON failure_events(timestamp)",
        "CREATE INDEX failure_events_project ON failure_events(project, timestamp)",
        "CREATE INDEX failure_events_node ON failure_events(node_name)",
        "CREATE INDEX failure_events_image ON failure_events(container_image)",
        "CREATE INDEX failure_events_type ON failure_events(failure_type, timestamp)",
        "CREATE INDEX failure_events_job ON failure_events(cluster, job_id)",
        "CREATE INDEX failure_events_template ON failure_events(template_id)",
        """CREATE TABLE failure_solutions (
            id INTEGER PRIMARY KEY, failure_type TEXT NOT NULL, solution TEXT NOT NULL,
            solution_key TEXT, success_count INTEGER NOT NULL DEFAULT 0,
            failure_count INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL DEFAULT 'rule',
            last_used INTEGER, UNIQUE (failure_type, solution)
        )""",
        """CREATE TABLE solution_outcomes (
            id INTEGER PRIMARY KEY, solution_id INTEGER NOT NULL REFERENCES failure_solutions(id),
            cluster TEXT, failed_job TEXT, followup_job TEXT, project TEXT,
            success INTEGER NOT NULL, recorded_by TEXT, recorded_at INTEGER NOT NULL,
            note TEXT, inferred INTEGER NOT NULL DEFAULT 0, context TEXT,
            dedup_key TEXT NOT NULL UNIQUE
        )""",
        "CREATE INDEX solution_outcomes_solution ON solution_outcomes(solution_id)",
        "CREATE INDEX solution_outcomes_job ON solution_outcomes(cluster, failed_job)",
        """CREATE TABLE rejects (
            id INTEGER PRIMARY KEY, source TEXT NOT NULL, file TEXT, line INTEGER,
            reason TEXT NOT NULL, raw TEXT, recorded_at INTEGER NOT NULL
        )""",
        """CREATE TABLE templates (
            template_id INTEGER PRIMARY KEY, template TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
            failure_type TEXT, first_seen INTEGER, last_seen INTEGER
        )""",
        """CREATE TABLE ingest_runs (
            id INTEGER PRIMARY KEY, source TEXT NOT NULL, file TEXT, started_at INTEGER NOT NULL,
            finished_at INTEGER, read INTEGER, inserted INTEGER, updated INTEGER,
            rejected INTEGER, status TEXT NOT NULL
        )""",
    ]),
    (2, "covering index for window aggregation (analyze, stats)", [
        # Window scans read only this index, never the table: one end_time range per state
        # (so failure-only scans touch failures only), with the columns the analyzers group
        # and sum by riding along.
        """CREATE INDEX jobs_window ON jobs(state, end_time, project, cluster, user, image,
            queue, failure_type, blame, job_id, n_nodes, elapsed_s, req_cpus, req_gpus, name,
            template_id)""",
    ]),
    (3, "remedies: resubmission matching index, outcome context columns", [
        # Outcome inference pairs a failed job with the same user's next job of the same name.
        "CREATE INDEX jobs_user_name_submit ON jobs(user, name, submit_time)",
        # The context of an attempt (queue, GPU or CPU) and the change that was made, so
        # success rates can be split by where they were learned.
        "ALTER TABLE solution_outcomes ADD COLUMN queue TEXT",
        "ALTER TABLE solution_outcomes ADD COLUMN gpu INTEGER",
        "ALTER TABLE solution_outcomes ADD COLUMN change TEXT",
        "CREATE INDEX solution_outcomes_followup ON solution_outcomes(cluster, followup_job)",
        # Covering index: success counts per solution, in scope and per context, and the latest
        # attempts, are read from the index alone (remediate stays fast at a million jobs).
        """CREATE INDEX solution_outcomes_stats ON solution_outcomes(solution_id, project, success,
            inferred, recorded_at, cluster, queue, gpu)""",
        "CREATE INDEX solution_outcomes_recent ON solution_outcomes(solution_id, recorded_at)",
        # diagnose / record_outcome find Run:AI-style events by workload name.
        "CREATE INDEX failure_events_job_name ON failure_events(job_name)",
        # diagnose / remediate by job id alone (the primary key leads with the cluster).
        "CREATE INDEX jobs_job_id ON jobs(job_id)",
        "CREATE INDEX failure_events_job_id ON failure_events(job_id)",
    ]),
    (4, "model features: per-entity history summary and (entity, end_time) indexes", [
        """CREATE TABLE entity_stats (
            kind TEXT NOT NULL, value TEXT NOT NULL, project TEXT NOT NULL, n INTEGER NOT NULL,
            fails INTEGER NOT NULL, n_rt INTEGER NOT NULL, sum_logrt REAL, max_rss REAL,
            as_of INTEGER NOT NULL, PRIMARY KEY (kind, value, project)
        ) WITHOUT ROWID""",
        "CREATE TABLE entity_stats_meta (as_of INTEGER NOT NULL)",
        "CREATE INDEX jobs_user_end ON jobs(user, end_time)",
        "CREATE INDEX jobs_name_end ON jobs(name, end_time)",
        "CREATE INDEX jobs_project_end ON jobs(project, end_time)",
        "CREATE INDEX jobs_image_end ON jobs(image, end_time)",
        "CREATE INDEX jobs_queue_end ON jobs(queue, end_time)",
        "CREATE INDEX jobs_qos_end ON jobs(qos, end_time)",
        "CREATE INDEX jobs_shape_end ON jobs(user, req_cpus, timelimit_s, end_time)",
    ]),
    (5, "assistant sessions and vocabulary cache", [
        """CREATE TABLE sessions (
            name TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at INTEGER NOT NULL
        )""",
        """CREATE TABLE agent_cache (
            key TEXT PRIMARY KEY, stamp TEXT NOT NULL, value TEXT NOT NULL
        )""",
    ]),
    (6, "telemetry: per-job and per-node samples (sstat, Prometheus, Philly windows)", [
        # One row per (series, time). job_id / node / device are '' when a sample has none
        # (NULLs would defeat the key). value is the mean of the n raw samples a downsampled
        # row stands for, vmax their maximum (memory peaks survive downsampling).
        """CREATE TABLE telemetry (
            cluster TEXT NOT NULL, job_id TEXT NOT NULL DEFAULT '',
            metric TEXT NOT NULL, node TEXT NOT NULL DEFAULT '',
            device TEXT NOT NULL DEFAULT '', t INTEGER NOT NULL, value REAL NOT NULL,
            vmax REAL, n INTEGER NOT NULL DEFAULT 1, source TEXT,
            PRIMARY KEY (cluster, job_id, metric, node, device, t)
        ) WITHOUT ROWID""",
        "CREATE INDEX telemetry_t ON telemetry(t)",
        "CREATE INDEX telemetry_node ON telemetry(cluster, node, metric, t)",
    ]),
    (7, "ingest_runs: the process that runs an ingest (a killed run is marked on next open)", [
        "ALTER TABLE ingest_runs ADD COLUMN pid INTEGER",
        "ALTER TABLE ingest_runs ADD COLUMN host TEXT",
    ]),
    (8, "live operation: alerts, their deliveries, and the watcher's cursor", [
        # One row per firing of a condition; while it is open (or acknowledged) its dedup_key
        # is unique, a resolved one may fire again as a new row. job_ids is a JSON list.
        """CREATE TABLE alerts (
            id INTEGER PRIMARY KEY, rule TEXT NOT NULL, subject TEXT NOT NULL,
            dedup_key TEXT NOT NULL, severity TEXT NOT NULL, text TEXT NOT NULL,
            job_ids TEXT, failure_type TEXT, evidence TEXT, fix TEXT, project TEXT,
            cluster TEXT, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
            last_sent INTEGER, state TEXT NOT NULL DEFAULT 'open', resolved_at INTEGER,
            acked_at INTEGER, acked_by TEXT, count INTEGER NOT NULL DEFAULT 1
        )""",
        "CREATE UNIQUE INDEX alerts_open_key ON alerts(dedup_key) WHERE state != 'resolved'",
        "CREATE INDEX alerts_state ON alerts(state, last_seen)",
        "CREATE INDEX alerts_project ON alerts(project, last_seen)",
        # Each notification of an alert to a sink: written before it is sent, so none is lost
        # when a webhook is down or the watcher stops (pending ones are retried).
        """CREATE TABLE alert_deliveries (
            id INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL REFERENCES alerts(id),
            sink TEXT NOT NULL, event TEXT NOT NULL, status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, created_at INTEGER NOT NULL,
            sent_at INTEGER
        )""",
        "CREATE INDEX alert_deliveries_status ON alert_deliveries(status, created_at)",
        ("CREATE TABLE live_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
        "updated_at INTEGER NOT NULL)"),
    ]),
    (9, "ownership of written knowledge: user-entered solutions belong to a project", [
        # NULL: shared (curated rule solutions, fixes learned from history, or entered without
        # a scope); a project: a fix whose text a user of that project entered, seen only there.
        "ALTER TABLE failure_solutions ADD COLUMN project TEXT",
        # User fixes recorded before this migration: owned by the one project that tried them.
        """UPDATE failure_solutions SET project = (SELECT MIN(o.project) FROM solution_outcomes o
            WHERE o.solution_id = failure_solutions.id) WHERE source = 'user' AND
            (SELECT COUNT(DISTINCT o.project) FROM solution_outcomes o
             WHERE o.solution_id = failure_solutions.id) = 1""",
    ]),
    (10, "failures counted at their failure time: failed_at, event_time, window index on it", [
        # A job or pod that failed without terminating (ImagePullBackOff, CrashLoopBackOff,
        # evicted or unschedulable pods, Run:AI records without an end) has no end_time; the
        # reader sets failed_at, the time of its failure event. event_time is when a job
        # counts in a window: its end, or for a failure without one, its failure time (the
        # start or submit time when the source gives none). Windowed queries use it for both
        # numerator and denominator.
        "ALTER TABLE jobs ADD COLUMN failed_at INTEGER",
        f"""ALTER TABLE jobs ADD COLUMN event_time INTEGER GENERATED ALWAYS AS (COALESCE(end_time,
            CASE WHEN {FAILING_ROW_SQL} THEN COALESCE(failed_at, start_time, submit_time) END))
            VIRTUAL""",
        "DROP INDEX IF EXISTS jobs_window",
        """CREATE INDEX jobs_window ON jobs(state, event_time, project, cluster, user, image,
            queue, failure_type, blame, job_id, n_nodes, elapsed_s, req_cpus, req_gpus, name,
            template_id)""",
        "CREATE INDEX jobs_event_time ON jobs(event_time)",
    ]),
    (11, "jobs index set from the queries (issue 16); touched jobs for incremental inference", [
        # Each index serves a query family (docs/schema.md; tests/knowledge/test_query_plans.py
        # checks every hot query's plan). jobs_image and jobs_name were prefixes of
        # jobs_image_end / jobs_name_end; jobs_user_name_submit only served an analyze
        # drill-down that jobs_user_end serves as well.
        "DROP INDEX IF EXISTS jobs_image",
        "DROP INDEX IF EXISTS jobs_name",
        "DROP INDEX IF EXISTS jobs_user_name_submit",
        # Entity lookups always name a value (x = ?, x IN (...)), which implies x IS NOT NULL:
        # partial indexes hold only the rows that have the column, so sources without images,
        # QOS, request shapes or failure types (most trace formats) pay nothing for them.
        "DROP INDEX IF EXISTS jobs_failure_type",
        ("CREATE INDEX jobs_failure_type ON jobs(failure_type, submit_time) "
         "WHERE failure_type IS NOT NULL"),
        "DROP INDEX IF EXISTS jobs_image_end",
        "CREATE INDEX jobs_image_end ON jobs(image, end_time) WHERE image IS NOT NULL",
        "DROP INDEX IF EXISTS jobs_qos_end",
        "CREATE INDEX jobs_qos_end ON jobs(qos, end_time) WHERE qos IS NOT NULL",
        "DROP INDEX IF EXISTS jobs_queue_end",
        "CREATE INDEX jobs_queue_end ON jobs(queue, end_time) WHERE queue IS NOT NULL",
        "DROP INDEX IF EXISTS jobs_shape_end",
        ("CREATE INDEX jobs_shape_end ON jobs(user, req_cpus, timelimit_s, end_time) "
         "WHERE req_cpus IS NOT NULL AND timelimit_s IS NOT NULL"),
        # Outcome inference runs over the jobs touched since its last run: rows above the
        # watermark (marks.outcomes_rowid) are new; rows updated in place (a running job that
        # ended, a re-read with its final state) are listed here by this trigger.
        # Only rows at or below the watermark are listed (newer rows are new to it anyway);
        # without a watermark the first run covers the whole store, so nothing is listed.
        """CREATE TABLE IF NOT EXISTS marks (name TEXT PRIMARY KEY, value INTEGER NOT NULL,
            updated_at INTEGER NOT NULL)""",
        "CREATE TABLE IF NOT EXISTS jobs_touched (rid INTEGER PRIMARY KEY)",
        """CREATE TRIGGER IF NOT EXISTS jobs_touched_update AFTER UPDATE OF state, failure_type,
            user, name, script, image, queue, submit_time, end_time, req_mem_mb, timelimit_s,
            req_gpus, req_cpus, n_nodes ON jobs
            WHEN OLD.rowid <= (SELECT value FROM marks WHERE name = 'outcomes_rowid')
            AND NOT EXISTS (SELECT 1 FROM jobs_touched WHERE rid = OLD.rowid)
            BEGIN INSERT INTO jobs_touched (rid) VALUES (OLD.rowid); END""",
    ]),
]
