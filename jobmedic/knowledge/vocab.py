"""Vocabulary queries: the names the store knows (projects, nodes, images, users, queues,
clusters, job names) and name resolution with closest matches, always inside a scope."""
from __future__ import annotations

from collections.abc import Sequence
from difflib import get_close_matches
from typing import Any

from jobmedic.knowledge.db import Queries, scope_clause
from jobmedic.knowledge.errors import NotFound
from jobmedic.knowledge.jobids import family, rank

#: Rows walked on each side of the asked id in the job-id index, and the size under which a
#: store's every in-scope id is compared by edit distance.
_WALK = 60
_SCAN_ALL = 5000

#: kind -> (table, column, project column used for scope). Whitelisted: never free SQL.
VOCAB = {
    "project": ("jobs", "project", "project"),
    "user": ("jobs", "user", "project"),
    "queue": ("jobs", "queue", "project"),
    "image": ("jobs", "image", "project"),
    "cluster": ("jobs", "cluster", "project"),
    "name": ("jobs", "name", "project"),
    "node": ("job_nodes", "node", None),
}
EVENT_VOCAB = {
    "project": "project", "user": "user", "image": "container_image", "node": "node_name",
    "cluster": "cluster", "name": "job_name",
}


class VocabQueries(Queries):
    """The names the store knows, their resolution, and one job by id."""

    def known(self, kind: str, scope: Sequence[str] | None = None, limit: int = 100_000) -> list[str]:
        """Distinct known names of one kind (project, user, queue, image, cluster, name, node)."""
        if kind not in VOCAB:
            raise ValueError(f"unknown vocabulary kind {kind!r}; accepted: {', '.join(VOCAB)}")
        table, col, _ = VOCAB[kind]
        if kind == "node":
            if scope is None:
                sql, params = "SELECT DISTINCT node FROM job_nodes", []
            else:
                where, params = scope_clause(scope, "j.project")
                sql = ("SELECT DISTINCT n.node FROM job_nodes n JOIN jobs j ON j.cluster = n.cluster "
                       f"AND j.job_id = n.job_id WHERE {where}")
        else:
            where, params = scope_clause(scope)
            sql = f"SELECT DISTINCT {col} FROM {table} WHERE {col} IS NOT NULL AND {where}"
        names = {r[0] for r in self.conn.execute(sql + f" LIMIT {int(limit)}", params)}
        ev_col = EVENT_VOCAB.get(kind)
        if ev_col:
            where, params = scope_clause(scope)
            names |= {r[0] for r in self.conn.execute(
                f"SELECT DISTINCT {ev_col} FROM failure_events WHERE {ev_col} IS NOT NULL AND "
                f"{where} LIMIT {int(limit)}", params)}
        return sorted(str(n) for n in names if n not in (None, ""))

    def resolve(self, kind: str, name: str, scope: Sequence[str] | None = None) -> str:
        """The stored spelling of `name` (exact, then case-insensitive); NotFound with the
        closest known names otherwise. Names outside the scope are treated as unknown.
        A name a job in scope carries is found by its index first (the listing of every
        known name reads the whole table: 22 s for a project's users in a 10M store)."""
        if kind in VOCAB and name and self._in_jobs(kind, name, scope):
            return name
        known = self.known(kind, scope)
        if name in known:
            return name
        lower = {k.lower(): k for k in known}
        if name.lower() in lower:
            return lower[name.lower()]
        closest = get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)
        raise NotFound(kind, name, known, [lower[c] for c in closest])

    def _in_jobs(self, kind: str, name: str, scope: Sequence[str] | None) -> bool:
        """Whether a job in scope carries exactly `name` (one index seek, mostly)."""
        where, params = scope_clause(scope, "j.project")
        if kind == "node":
            sql = ("SELECT 1 FROM job_nodes n JOIN jobs j ON j.cluster = n.cluster AND "
                   f"j.job_id = n.job_id WHERE n.node = ? AND {where} LIMIT 1"
                   if scope is not None else "SELECT 1 FROM job_nodes n WHERE n.node = ? LIMIT 1")
        else:
            sql = f"SELECT 1 FROM jobs j WHERE j.{VOCAB[kind][1]} = ? AND {where} LIMIT 1"
        return self.conn.execute(sql, [name, *(params if scope is not None else [])]
                                 ).fetchone() is not None

    def get_job(self, job_id: str, cluster: str | None = None,
                scope: Sequence[str] | None = None) -> dict[str, Any] | None:
        """One job by id (and cluster when several clusters share the id), in scope."""
        # `+project`: the job id's index drives the lookup, never a walk of a project's rows
        where, params = scope_clause(scope, "+project")
        sql = f"SELECT * FROM jobs WHERE job_id = ? AND {where}"
        args: list[Any] = [str(job_id), *params]
        if cluster:
            sql += " AND cluster = ?"
            args.append(cluster)
        cur = self.conn.execute(sql + " ORDER BY submit_time DESC LIMIT 1", args)
        row = cur.fetchone()
        if row is None:
            return None
        job = dict(zip([d[0] for d in cur.description], row))
        job["nodes"] = [r[0] for r in self.conn.execute(
            "SELECT node FROM job_nodes WHERE cluster = ? AND job_id = ? ORDER BY node",
            (job["cluster"], job["job_id"]))]
        return job

    def close_job_ids(self, job_id: str, cluster: str | None = None,
                      scope: Sequence[str] | None = None, limit: int = 5) -> list[dict[str, Any]]:
        """Existing jobs (and failure-event workloads) whose ids are close to `job_id`, in
        scope, best first: [{"job_id", "cluster", "state"}]. Each index walk is bounded."""
        asked = str(job_id)
        hi_end = "\U0010ffff"
        cands: dict[str, tuple[str, str]] = {}  # id -> (cluster, state)
        where, params = scope_clause(scope)
        sources = (("jobs", "job_id", "state"), ("failure_events", "job_id", "'failed'"),
                   ("failure_events", "job_name", "'failed'"))
        fam = family(asked)
        for table, col, state in sources:
            walks = [(f"{col} < ? ORDER BY {col} DESC", [asked]),
                     (f"{col} > ? ORDER BY {col}", [asked])]
            if fam is not None:
                walks.append((f"{col} >= ? AND {col} < ? ORDER BY {col}", [fam, fam + hi_end]))
            for cond, args in walks:
                sql = (f"SELECT v, cluster, st FROM (SELECT {col} AS v, cluster, {state} AS st, "
                       f"project FROM {table} WHERE {col} IS NOT NULL AND {cond} LIMIT {_WALK}) "
                       f"WHERE {where}")
                for v, cl, st in self.conn.execute(sql, [*args, *params]):
                    cands.setdefault(str(v), (cl, st))
            held = self.conn.execute(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE {col} IS NOT NULL AND {where} "
                f"LIMIT {_SCAN_ALL + 1})", params).fetchone()[0]
            if held <= _SCAN_ALL:  # a small store: every id is a candidate
                for v, cl, st in self.conn.execute(
                        f"SELECT {col}, cluster, {state} FROM {table} WHERE {col} IS NOT NULL "
                        f"AND {where}", params):
                    cands.setdefault(str(v), (cl, st))
        best = rank(asked, cands, limit)
        out = [{"job_id": c, "cluster": cands[c][0], "state": cands[c][1]} for c in best]
        if cluster:  # the same id on another cluster is the best hint of all
            other = self.conn.execute(
                f"SELECT cluster, state FROM jobs WHERE job_id = ? AND cluster != ? AND {where} "
                "LIMIT 1", [asked, cluster, *params]).fetchone()
            if other:
                out.insert(0, {"job_id": asked, "cluster": other[0], "state": other[1]})
        return out[:limit]
