"""Remedy queries: solutions per failure type, their recorded and inferred attempts, success
counts per solution and per context (cluster, queue, GPU or CPU), and the honest ranking.

Ranking uses the lower bound of the 95 % Wilson score interval, never the raw fraction, so a
fix that worked 5 times of 6 ranks above one that worked once of once. Counts are always
recomputed from `solution_outcomes` (one row per failed job and solution, see `add_outcomes`),
so recording the same outcome twice counts once.

Scope: rates may be computed over every project (they are numbers without names); job ids,
notes, projects and per-context splits are only returned for projects in the caller's scope.
A solution whose text a user entered belongs to that user's project (failure_solutions.project)
and is listed only inside it; curated and learned solutions are shared (project NULL).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from jobmedic.knowledge.db import Queries, Scope, rows_of, scope_clause
from jobmedic.knowledge.ownership import check_outcome_rows, visible_solutions
from jobmedic.knowledge.taxonomy import FAILED_STATES

if TYPE_CHECKING:
    import pandas as pd

OUTCOME_COLUMNS = ("solution_id", "cluster", "failed_job", "followup_job", "project", "success",
                   "recorded_by", "recorded_at", "note", "inferred", "context", "dedup_key",
                   "queue", "gpu", "change")
#: A person's record replaces an inferred one (or their own earlier record) for the same key;
#: an inference never overrides a person.
_ADD_OUTCOME_SQL = (
    f"INSERT INTO solution_outcomes ({', '.join(OUTCOME_COLUMNS)}) VALUES "
    f"({', '.join('?' * len(OUTCOME_COLUMNS))}) ON CONFLICT(dedup_key) DO UPDATE SET "
    "success = excluded.success, note = COALESCE(excluded.note, note), inferred = 0, "
    "recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at, "
    "followup_job = COALESCE(excluded.followup_job, followup_job) "
    "WHERE excluded.inferred = 0 AND (success, inferred, COALESCE(note, '')) IS NOT "
    "(excluded.success, 0, COALESCE(excluded.note, note, ''))")
CONTEXTS = {"cluster": "o.cluster", "queue": "o.queue",
            "gpu": "CASE WHEN o.gpu > 0 THEN 'gpu' WHEN o.gpu = 0 THEN 'cpu' END"}
JOB_FRAME_COLUMNS = ("rowid", "cluster", "job_id", "user", "name", "script", "image", "project",
                     "queue", "state", "failure_type", "submit_time", "end_time", "req_mem_mb",
                     "timelimit_s", "req_gpus", "req_cpus", "n_nodes", "resubmit_of")


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion ((0, 1) when n = 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


class RemedyQueries(Queries):
    """Solutions, their attempts and the lookups of diagnose and record_outcome."""

    # -- solutions ---------------------------------------------------------------------------
    def seed_solutions(self, rows: Iterable[tuple[str, str, str | None]], source: str = "rule",
                       project: str | None = None) -> int:
        """Insert (failure_type, solution id, key) rows that are not there yet; `project` owns
        them (a user's own fix text) or None (shared: curated, learned)."""
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO failure_solutions (failure_type, solution, solution_key, source, "
                "project) VALUES (?, ?, ?, ?, ?) ON CONFLICT(failure_type, solution) DO NOTHING",
                [(t, s, k, source, project) for t, s, k in rows])
            return conn.total_changes - before

    def solution_rowids(self, failure_type: str | None = None) -> dict[tuple[str, str], int]:
        """(failure_type, solution id) -> failure_solutions.id."""
        sql, args = "SELECT failure_type, solution, id FROM failure_solutions", []
        if failure_type:
            sql, args = sql + " WHERE failure_type = ?", [failure_type]
        return {(t, s): i for t, s, i in self.conn.execute(sql, args)}

    def list_solutions(self, failure_type: str, scope: Scope = None) -> list[dict[str, Any]]:
        """The solutions of a type the scope may see (shared ones and its projects' own)."""
        vis, vargs = visible_solutions(scope)
        cur = self.conn.execute(
            f"SELECT id, solution, solution_key, source, success_count, failure_count, last_used, "
            f"project FROM failure_solutions s WHERE failure_type = ? AND {vis} ORDER BY id",
            (failure_type, *vargs))
        return rows_of(cur)

    # -- outcomes ----------------------------------------------------------------------------
    def add_outcomes(self, rows: Iterable[Sequence[Any]], scope: Scope = None) -> int:
        """Insert outcome rows (OUTCOME_COLUMNS order); returns rows inserted or changed.

        The dedup key names one attempt (e.g. ``job:<cluster>:<failed job>:<solution>``), so a
        repeated record changes nothing and a person's record corrects an inferred one.
        A scoped caller's rows are checked first (ownership.check_outcome_rows: ScopeError for
        another project's job or solution). Solution counts are refreshed afterwards.
        """
        with self.transaction() as conn:
            if scope is not None:
                rows = list(rows)
                check_outcome_rows(conn, rows, scope)
            before = conn.total_changes
            conn.executemany(_ADD_OUTCOME_SQL, rows)
            changed = conn.total_changes - before
            if changed:
                self.refresh_solution_counts()
                self._outcome_writes = getattr(self, "_outcome_writes", 0) + 1
        return changed

    def refresh_solution_counts(self) -> None:
        """Recompute success / failure counts and last use of every solution from its outcomes."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE failure_solutions SET success_count = COALESCE(a.s, 0), "
                "failure_count = COALESCE(a.n - a.s, 0), last_used = a.last FROM "
                "(SELECT s.id AS sid, SUM(o.success) AS s, COUNT(o.id) AS n, "
                "MAX(o.recorded_at) AS last FROM failure_solutions s LEFT JOIN solution_outcomes o "
                "ON o.solution_id = s.id GROUP BY s.id) AS a WHERE a.sid = failure_solutions.id "
                "AND (success_count, failure_count, last_used) IS NOT "
                "(COALESCE(a.s, 0), COALESCE(a.n - a.s, 0), a.last)")

    def outcome_exists(self, dedup_key: str) -> dict[str, Any] | None:
        cur = self.conn.execute(
            "SELECT success, inferred, note FROM solution_outcomes WHERE dedup_key = ?", (dedup_key,))
        r = cur.fetchone()
        return None if r is None else {"success": bool(r[0]), "inferred": bool(r[1]), "note": r[2]}

    def solution_stats(self, failure_type: str, scope: Scope = None,
                       context: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Per solution of a type: attempts and successes over all projects and in scope, and
        with `context` ({"cluster": .., "queue": .., "gpu": "gpu"|"cpu"}) the in-scope counts in
        that context, as "cluster=hpc": [successes, attempts], and `cluster_counts`: [successes,
        attempts] on that cluster over all projects. One scan of the covering index."""
        where, params = scope_clause(scope, "o.project")
        vis, vargs = visible_solutions(scope)
        ctx = [(k, v) for k, v in (context or {}).items() if k in CONTEXTS and v is not None]
        extra, eargs = "", []
        cl = dict(ctx).get("cluster")
        if cl is not None:  # all projects' attempts on that cluster (rates are names-free)
            extra += (", COALESCE(SUM(CASE WHEN o.cluster = ? THEN o.success END), 0), "
                      "COALESCE(SUM(CASE WHEN o.cluster = ? THEN 1 END), 0)")
            eargs += [cl, cl]
        for k, v in ctx:
            cond = f"o.id IS NOT NULL AND {where} AND {CONTEXTS[k]} = ?"
            extra += (f", COALESCE(SUM(CASE WHEN {cond} THEN o.success END), 0), "
                      f"COALESCE(SUM(CASE WHEN {cond} THEN 1 END), 0)")
            eargs += [*params, v, *params, v]
        cur = self.conn.execute(
            f"SELECT s.id, s.solution, s.solution_key, s.source, COUNT(o.id), "
            f"COALESCE(SUM(o.success), 0), COALESCE(SUM(o.inferred), 0), "
            f"COALESCE(SUM(CASE WHEN o.id IS NOT NULL AND {where} THEN 1 END), 0), "
            f"COALESCE(SUM(CASE WHEN o.id IS NOT NULL AND {where} THEN o.success END), 0), "
            f"MAX(o.recorded_at){extra} FROM failure_solutions s LEFT JOIN solution_outcomes o ON "
            f"o.solution_id = s.id WHERE s.failure_type = ? AND {vis} GROUP BY s.id ORDER BY s.id",
            [*params, *params, *eargs, failure_type, *vargs])
        cols = ("rowid", "solution", "key", "source", "attempts", "successes", "inferred",
                "attempts_in_scope", "successes_in_scope", "last_used")
        out = []
        for r in cur:
            d = dict(zip(cols, r))
            at = len(cols)
            if cl is not None:
                d["cluster_counts"] = [int(r[at]), int(r[at + 1])]  # [successes, attempts]
                at += 2
            if ctx:
                d["context"] = {f"{k}={v}": [r[at + 2 * i], r[at + 2 * i + 1]]
                                for i, (k, v) in enumerate(ctx) if r[at + 2 * i + 1]}
            out.append(d)
        return out

    def solution_context_stats(self, failure_type: str, by: str, scope: Scope = None
                               ) -> list[dict[str, Any]]:
        """Attempts and successes per solution and context value (cluster, queue, gpu), in scope."""
        if by not in CONTEXTS:
            raise ValueError(f"unknown context {by!r}; accepted: {', '.join(CONTEXTS)}")
        where, params = scope_clause(scope, "o.project")
        vis, vargs = visible_solutions(scope)
        cur = self.conn.execute(
            f"SELECT s.solution, {CONTEXTS[by]} AS ctx, COUNT(*), SUM(o.success) FROM "
            f"solution_outcomes o JOIN failure_solutions s ON s.id = o.solution_id WHERE "
            f"s.failure_type = ? AND {where} AND {vis} GROUP BY s.solution, ctx "
            f"HAVING ctx IS NOT NULL", [failure_type, *params, *vargs])
        return [{"solution": s, "context": by, "value": v, "attempts": n, "successes": k}
                for s, v, n, k in cur]

    def recent_outcomes(self, failure_type: str, scope: Scope = None, limit: int = 5
                        ) -> list[dict[str, Any]]:
        """The latest attempts of fixes for a type, in scope (job ids and notes included).

        One bounded index walk per solution (and per project of a scope), merged here: a
        single ORDER BY over every outcome of a common type would sort tens of thousands."""
        cols = ("solution", "cluster", "failed_job", "followup_job", "project", "success",
                "inferred", "change", "note", "recorded_at")
        sel = ("SELECT ?, cluster, failed_job, followup_job, project, success, inferred, change, "
               "note, recorded_at FROM solution_outcomes WHERE solution_id = ?")
        out: list[tuple] = []
        vis, vargs = visible_solutions(scope)
        for sid, name in self.conn.execute(
                f"SELECT id, solution FROM failure_solutions s WHERE failure_type = ? AND {vis}",
                (failure_type, *vargs)).fetchall():
            if scope is None:
                out += self.conn.execute(sel + " ORDER BY recorded_at DESC LIMIT ?",
                                         (name, sid, int(limit))).fetchall()
            else:
                for p in scope:
                    out += self.conn.execute(sel + " AND project = ? ORDER BY recorded_at DESC "
                                             "LIMIT ?", (name, sid, p, int(limit))).fetchall()
        out.sort(key=lambda r: -(r[-1] or 0))
        return [dict(zip(cols, r)) for r in out[:limit]]

    def outcomes_for_jobs(self, keys: Sequence[tuple[str, str]], scope: Scope = None
                          ) -> list[dict[str, Any]]:
        """Recorded or inferred fix attempts of the given (cluster, failed job) pairs, in scope."""
        if not keys:
            return []
        where, params = scope_clause(scope, "o.project")
        vis, vargs = visible_solutions(scope)
        out = []
        for cluster, job in keys:
            cur = self.conn.execute(
                f"SELECT s.solution, o.failed_job, o.followup_job, o.success, o.inferred, o.change "
                f"FROM solution_outcomes o JOIN failure_solutions s ON s.id = o.solution_id "
                f"WHERE o.cluster = ? AND o.failed_job = ? AND {where} AND {vis}",
                [cluster, job, *params, *vargs])
            out += [dict(zip(("solution", "failed_job", "followup_job", "success", "inferred",
                              "change"), r)) for r in cur]
        return out

    # -- lookups for diagnose / record_outcome -----------------------------------------------
    def failure_event_of(self, cluster: str, job_id: str, scope: Scope = None
                         ) -> dict[str, Any] | None:
        """The latest failure event of a job, among those of the scope's projects (diagnose
        passes the job's own project, so another project's event never stands for it)."""
        where, params = scope_clause(scope)
        cur = self.conn.execute(
            f"SELECT * FROM failure_events WHERE cluster = ? AND job_id = ? AND {where} "
            f"ORDER BY id DESC LIMIT 1", (cluster, job_id, *params))
        r = cur.fetchone()
        return None if r is None else dict(zip([d[0] for d in cur.description], r))

    def find_event(self, name: str, cluster: str | None = None, scope: Scope = None
                   ) -> dict[str, Any] | None:
        """A failure event by job id, workload name or pod name (latest first), in scope."""
        where, params = scope_clause(scope)
        extra, cargs = ("AND cluster = ?", [cluster]) if cluster else ("", [])
        for col in ("job_id", "job_name", "pod_name"):
            cur = self.conn.execute(
                f"SELECT * FROM failure_events WHERE {col} = ? {extra} AND {where} "
                f"ORDER BY id DESC LIMIT 1", [name, *cargs, *params])
            r = cur.fetchone()
            if r is not None:
                return dict(zip([d[0] for d in cur.description], r))
        return None

    def similar_failures(self, failure_type: str, template_id: int | None, node: str | None,
                         image: str | None, exclude: tuple[str, str] | None = None,
                         scope: Scope = None, per_key: int = 40) -> list[dict[str, Any]]:
        """Candidate past failures sharing the template, or the type on the same node or image,
        or just the type (latest first); each index walk is bounded by `per_key`."""
        where, params = scope_clause(scope)
        cols = ("id, cluster, job_id, job_name, project, failure_type, template_id, node_name, "
                "container_image, timestamp, evidence, resolved, resolution")
        probes: list[tuple[str, list[Any]]] = []
        if template_id is not None:
            probes.append(("template_id = ? ORDER BY id DESC", [template_id]))
        if node:
            probes.append(("node_name = ? AND failure_type = ? ORDER BY id DESC", [node, failure_type]))
        if image:
            probes.append(("container_image = ? AND failure_type = ? ORDER BY id DESC",
                           [image, failure_type]))
        probes.append(("failure_type = ? ORDER BY timestamp DESC", [failure_type]))
        seen: dict[int, dict[str, Any]] = {}
        names = [c.strip() for c in cols.split(",")]
        for cond, args in probes:
            head, _, order = cond.partition(" ORDER BY ")
            cur = self.conn.execute(
                f"SELECT {cols} FROM failure_events WHERE {head} AND {where} ORDER BY {order} "
                f"LIMIT {int(per_key)}", [*args, *params])
            for r in cur:
                row = dict(zip(names, r))
                if exclude and (row["cluster"], row["job_id"]) == exclude:
                    continue
                seen.setdefault(row["id"], row)
        return list(seen.values())

    # -- inference support -------------------------------------------------------------------
    def resubmission_frame(self) -> pd.DataFrame:
        """Every job with a user, with the columns outcome inference compares (one scan, in
        rowid order)."""
        import pandas as pd
        cols = ", ".join(JOB_FRAME_COLUMNS)
        cur = self.conn.execute(f"SELECT {cols} FROM jobs WHERE user IS NOT NULL ORDER BY rowid")
        return pd.DataFrame.from_records(cur.fetchall(), columns=list(JOB_FRAME_COLUMNS))

    # -- incremental inference (migration 11: marks, jobs_touched) ---------------------------
    def inference_mark(self) -> tuple[int, int]:
        """(watermark, current max rowid) of jobs: rows above the watermark are new since the
        last inference run; 0 when it never ran."""
        row = self.conn.execute("SELECT value FROM marks WHERE name = 'outcomes_rowid'").fetchone()
        hi = self.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM jobs").fetchone()[0]
        return (int(row[0]) if row else 0), int(hi)

    def touched_frame(self, mark: int, hi: int, window_s: float) -> pd.DataFrame:
        """The resubmission frame outcome inference needs for the jobs touched since `mark`
        (rowid in (mark, hi], or updated in place: jobs_touched), in `resubmission_frame`'s
        columns.

        Per (cluster, user) of a touched job with cutoff c = its earliest touched submit time
        - window - 1: every job of that user that ended or was submitted at or after c (two
        index ranges: jobs_user_end, jobs_user_submit). Every pair with a touched job, and
        every competitor of it, lies inside that set, and every pair found in it is the one a
        whole-store run finds. Of those, only jobs in a group that holds a failure are read
        (same name, same submit line, or unnamed jobs of that user): the others cannot pair.
        In rowid order, like `resubmission_frame`: pairing breaks ties of equal submit times
        by frame order, so both frames pair alike. With mark 0 (never ran) the touched set is
        the whole table, read in one scan."""
        import pandas as pd

        c = self.conn
        failed = ", ".join(f"'{s}'" for s in sorted(FAILED_STATES))
        c.execute("CREATE TEMP TABLE IF NOT EXISTS inf_users (cluster TEXT, user TEXT, "
                  "cutoff INTEGER, PRIMARY KEY (cluster, user)) WITHOUT ROWID")
        c.execute("CREATE TEMP TABLE IF NOT EXISTS inf_fail (cluster TEXT, user TEXT, "
                  "name TEXT, script TEXT, unnamed INTEGER)")
        c.execute("DELETE FROM temp.inf_users")
        c.execute("DELETE FROM temp.inf_fail")
        if mark > 0:
            c.execute(
                "INSERT INTO temp.inf_users SELECT cluster, user, MIN(submit_time) - ? - 1 FROM "
                "jobs WHERE (rowid > ? AND rowid <= ? OR rowid IN (SELECT rid FROM jobs_touched)) "
                "AND user IS NOT NULL AND submit_time IS NOT NULL GROUP BY cluster, user",
                (int(window_s), mark, hi))
            frm = ("temp.inf_users t CROSS JOIN jobs j ON j.user = t.user AND j.cluster = t.cluster "
                   "AND (j.end_time >= t.cutoff OR j.submit_time >= t.cutoff)")
            scan = frm
        else:
            # the whole table: one pass in rowid order (an index-driven OR over every row
            # costs more, the more so the more rows hold a failure group)
            frm, scan = "jobs j", "jobs j NOT INDEXED"
        c.execute(f"INSERT INTO temp.inf_fail SELECT DISTINCT j.cluster, j.user, j.name, j.script, "
                  f"j.name IS NULL AND j.image IS NOT NULL FROM {frm} WHERE j.user IS NOT NULL "
                  f"AND j.state IN ({failed}) AND j.failure_type IS NOT 'cancelled'")
        if not c.execute("SELECT 1 FROM temp.inf_fail LIMIT 1").fetchone():
            return pd.DataFrame({k: [] for k in JOB_FRAME_COLUMNS})
        cols = ", ".join("j." + k for k in JOB_FRAME_COLUMNS)
        cur = c.execute(
            f"SELECT {cols} FROM {scan} WHERE j.user IS NOT NULL AND ("
            "(j.name IS NOT NULL AND (j.cluster, j.user, j.name) IN "
            " (SELECT cluster, user, name FROM temp.inf_fail WHERE name IS NOT NULL)) "
            "OR (j.script IS NOT NULL AND (j.cluster, j.user, j.script) IN "
            " (SELECT cluster, user, script FROM temp.inf_fail WHERE script IS NOT NULL)) "
            "OR (j.name IS NULL AND j.image IS NOT NULL AND (j.cluster, j.user) IN "
            " (SELECT cluster, user FROM temp.inf_fail WHERE unnamed))) ORDER BY j.rowid")
        return pd.DataFrame.from_records(cur.fetchall(), columns=list(JOB_FRAME_COLUMNS))

    def set_inference_mark(self, hi: int, touched_before: int) -> None:
        """After an inference run over the jobs touched up to rowid `hi`: move the watermark
        and forget the in-place updates seen (jobs_touched rows up to `touched_before`, its
        max rowid when the run read it)."""
        import time as _time
        with self.transaction() as conn:
            conn.execute("INSERT INTO marks (name, value, updated_at) VALUES ('outcomes_rowid', ?, "
                         "?) ON CONFLICT(name) DO UPDATE SET value = excluded.value, "
                         "updated_at = excluded.updated_at", (int(hi), int(_time.time())))
            conn.execute("DELETE FROM jobs_touched WHERE rid <= ?", (int(touched_before),))

    def touched_max(self) -> int:
        """The largest rowid listed in jobs_touched (0 when none)."""
        return int(self.conn.execute("SELECT COALESCE(MAX(rid), 0) FROM jobs_touched").fetchone()[0])

    def set_resubmit_of(self, rows: Iterable[tuple[str, str, str]]) -> int:
        """Mark follow-ups: (resubmit_of, cluster, job_id) rows; unchanged rows are skipped."""
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany("UPDATE jobs SET resubmit_of = ? WHERE cluster = ? AND job_id = ? "
                             "AND resubmit_of IS NOT ?", [(a, c, j, a) for a, c, j in rows])
            return conn.total_changes - before

    def remedy_versions(self) -> tuple[int, int, int]:
        """(max failure_events id, max solution_outcomes id, a change counter of outcomes) for
        caches; O(1): rowid maxima, PRAGMA data_version (commits by other connections) and this
        connection's own outcome writes."""
        fe = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM failure_events").fetchone()[0]
        so = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM solution_outcomes").fetchone()[0]
        dv = self.conn.execute("PRAGMA data_version").fetchone()[0]
        return int(fe), int(so), int(dv) * 1_000_003 + getattr(self, "_outcome_writes", 0)

    def template_version(self) -> tuple[int, int]:
        """(count, max id) of stored templates, to know when a cached miner is stale."""
        r = self.conn.execute("SELECT COUNT(*), COALESCE(MAX(template_id), 0) FROM templates").fetchone()
        return int(r[0]), int(r[1])

    # -- knowledge graph support -------------------------------------------------------------
    def graph_event_frame(self, lo_id: int, hi_id: int) -> pd.DataFrame:
        """The entity columns of failure events with lo_id < id <= hi_id (one narrow scan)."""
        import pandas as pd
        cur = self.conn.execute(
            f"SELECT {', '.join(GRAPH_COLUMNS)} FROM failure_events WHERE id > ? AND id <= ?",
            (lo_id, hi_id))
        return pd.DataFrame.from_records(cur.fetchall(), columns=list(GRAPH_COLUMNS))

    def graph_solution_rows(self) -> list[tuple]:
        """(failure_type, solution, project, attempts, successes) over all outcomes."""
        return self.conn.execute(
            "SELECT s.failure_type, s.solution, o.project, COUNT(*), SUM(o.success) FROM "
            "solution_outcomes o JOIN failure_solutions s ON s.id = o.solution_id "
            "GROUP BY 1, 2, 3").fetchall()


GRAPH_COLUMNS = ("failure_type", "node_name", "container_image", "template_id", "project", "user")

