"""Ownership of writes: a write that names a job, an event or a solution is checked against
the caller's scope here, in the store layer, inside the write's own transaction.

A scope of None is an unrestricted caller (an administrator, ingest, outcome inference): its
writes are not refused. A scoped caller may write only onto its own projects' jobs and
events, must say which of its projects a write belongs to, and may attach outcomes only to
solutions it can see (shared ones, or its own project's). What is shared and what is not is
described in docs/remediation.md ("What is shared between projects").
"""
from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from jobmedic.knowledge.db import Queries, Scope, scope_clause
from jobmedic.knowledge.errors import InputError, ScopeError

_NOT_YOURS = "is not in your projects"


def write_project(conn: sqlite3.Connection, cluster: str | None, job_id: str | None,
                  project: str | None, scope: Scope) -> str | None:
    """The project a write naming job (cluster, job_id) is stored with: the job's own project
    (or `project` when no job is named or known). ScopeError when the job or the events
    already recorded under that id belong to a project outside `scope`, or when a scoped
    write names no project of the scope; InputError when the job is the caller's but
    `project` names another of the caller's projects."""
    if job_id is not None:
        row = conn.execute("SELECT project FROM jobs WHERE cluster IS ? AND job_id = ? LIMIT 1",
                           (cluster, str(job_id))).fetchone()
        if row is not None:
            owner = row[0]
            if scope is not None and owner not in scope:
                raise ScopeError(f"job {job_id!r} on cluster {cluster!r} {_NOT_YOURS}",
                                 hint="write only about jobs of your own projects")
            if project is not None and owner is not None and project != owner:
                raise InputError(f"job {job_id!r} belongs to project {owner!r}, not {project!r}",
                                 hint=f"record it under project {owner!r}, or leave project out")
            return owner if owner is not None else project
        if scope is not None:
            where, params = scope_clause(scope)
            other = conn.execute(
                f"SELECT 1 FROM failure_events WHERE cluster IS ? AND job_id = ? AND project IS "
                f"NOT NULL AND NOT ({where}) LIMIT 1", [cluster, str(job_id), *params]).fetchone()
            if other is not None:
                raise ScopeError(f"job {job_id!r} on cluster {cluster!r} {_NOT_YOURS}",
                                 hint="write only about jobs of your own projects")
    if scope is not None and project not in scope:
        raise ScopeError(f"project {project!r} {_NOT_YOURS}" if project is not None
                         else "say which of your projects this belongs to",
                         hint="your projects: " + ", ".join(scope))
    return project


def check_solution(conn: sqlite3.Connection, solution_id: int, scope: Scope) -> None:
    """ScopeError unless the solution (failure_solutions.id) is shared or in the scope."""
    if scope is None:
        return
    row = conn.execute("SELECT project FROM failure_solutions WHERE id = ?",
                       (int(solution_id),)).fetchone()
    if row is None or (row[0] is not None and row[0] not in scope):
        raise ScopeError(f"solution #{solution_id} {_NOT_YOURS}",
                         hint="name a shared solution or one of your project's own")


def check_event_rows(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]], scope: Scope
                     ) -> None:
    """Check failure-event rows (FAILURE_EVENT_COLUMNS order: cluster, job_id, job_name,
    project, ...) written by a scoped caller: each must be stored with its job's project."""
    if scope is None:
        return
    for r in rows:
        owner = write_project(conn, r[0], r[1], r[3], scope)
        if owner != r[3]:
            raise InputError(f"the event of job {r[1]!r} must be stored with project {owner!r}")


def check_outcome_rows(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]], scope: Scope
                       ) -> None:
    """Check solution_outcomes rows (OUTCOME_COLUMNS order: solution_id, cluster, failed_job,
    followup_job, project, ...) written by a scoped caller: the failed and follow-up jobs and
    the project must be the caller's, and the solution visible to it."""
    if scope is None:
        return
    for r in rows:
        check_solution(conn, r[0], scope)
        owner = write_project(conn, r[1], r[2], r[4], scope)
        if owner != r[4]:
            raise InputError(f"the outcome of job {r[2]!r} must be stored with project {owner!r}")
        if r[3] is not None:
            write_project(conn, r[1], r[3], r[4], scope)


def visible_solutions(scope: Scope, alias: str = "s") -> tuple[str, list[Any]]:
    """SQL fragment keeping the solutions a scope may see: shared ones (no project) and, for a
    scope, its own projects' (every solution for an unrestricted caller)."""
    if scope is None:
        return "1", []
    where, params = scope_clause(scope, f"{alias}.project")
    return f"({alias}.project IS NULL OR {where})", params


class OwnershipQueries(Queries):
    """The check a write tool makes before it builds its row (the write re-checks it)."""

    def write_project(self, cluster: str | None, job_id: str | None, project: str | None,
                      scope: Scope) -> str | None:
        """See `write_project`: the project to store a write about this job with."""
        return write_project(self.conn, cluster, job_id, project, scope)
