"""Feature queries for the predictive models: bulk job frames for training and batch scoring,
and fast indexed per-entity history lookups for single predictions.

History is always "as of" a moment: only jobs that had ENDED (a terminal state and an end
time) strictly before it count, exactly what a deployed jobmedic would have seen. The
`entity_stats` summary (migration 4) holds per (kind, value, project) totals up to its `as_of`
so a prediction adds only the few jobs that ended since, instead of scanning a big history.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobmedic.knowledge.db import Queries, scope_clause
from jobmedic.knowledge.taxonomy import ENDED_STATES, FAILED_STATES

if TYPE_CHECKING:
    import pandas as pd

#: Entity kinds whose online history is a feature: whitelisted jobs columns, plus "shape",
#: the user's exact request (user, cpus, time limit): what a resubmitted job usually repeats.
ENTITY_KINDS = ("user", "name", "project", "image", "queue", "qos", "shape")
SHAPE_SQL = ("(user || '|' || CAST(req_cpus AS INTEGER) || '|' || CAST(timelimit_s AS INTEGER))")


def shape_key(user, cpus, timelimit) -> str | None:
    """The "shape" entity value of a request; None when any part is missing."""
    try:
        if user in (None, "") or cpus is None or timelimit is None:
            return None
        return f"{user}|{int(cpus)}|{int(timelimit)}"
    except (TypeError, ValueError):  # NaN
        return None
FRAME_COLUMNS = ("cluster", "job_id", "name", "user", "project", "queue", "qos", "image",
                 "state", "submit_time", "start_time", "end_time", "elapsed_s", "timelimit_s",
                 "req_cpus", "req_gpus", "req_mem_mb", "max_rss_mb", "n_nodes", "source")
RECENT_K = 10
_ENDED_SQL = "(end_time IS NOT NULL AND state IN ({}))".format(
    ", ".join(f"'{s}'" for s in sorted(ENDED_STATES)))
#: the runtime point's repeats: completed jobs only (models/runtime_point.py)
_COMPLETED_SQL = "(end_time IS NOT NULL AND state = 'completed')"
_FAIL_SQL = "(state IN ({}))".format(", ".join(f"'{s}'" for s in sorted(FAILED_STATES)))
_TEXT_COLS = ("cluster", "job_id", "name", "user", "project", "queue", "qos", "image", "state",
              "source")


def _kind_column(kind: str) -> str:
    """The SQL expression of an entity kind's value (whitelisted: never free SQL)."""
    if kind not in ENTITY_KINDS:
        raise ValueError(f"unknown entity kind {kind!r}; accepted: {', '.join(ENTITY_KINDS)}")
    return SHAPE_SQL if kind == "shape" else kind


def _kind_match(kind: str, value: str) -> tuple[str, list[Any]]:
    """WHERE fragment selecting one entity's jobs through an index."""
    if kind == "shape":
        user, cpus, tl = value.rsplit("|", 2)
        return "user = ? AND req_cpus = ? AND timelimit_s = ?", [user, int(cpus), int(tl)]
    return f"{_kind_column(kind)} = ?", [value]


def frame_of(rows: Sequence[Sequence[Any]], lead: Sequence[str] = ()) -> pd.DataFrame:
    """Rows of (`lead` columns, then FRAME_COLUMNS) as the models' jobs frame: text columns
    as objects, the rest float64 (NULL as NaN)."""
    import pandas as pd
    df = pd.DataFrame.from_records(rows, columns=[*lead, *FRAME_COLUMNS])
    for c in FRAME_COLUMNS:
        if c in _TEXT_COLS:
            df[c] = df[c].astype(object)
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df


class FeatureQueries(Queries):
    """Job frames, the entity summary and per-entity history for the models."""

    # -- bulk --------------------------------------------------------------------------------
    def jobs_frame(self, scope: Sequence[str] | None = None, since: int | None = None,
                   until: int | None = None) -> pd.DataFrame:
        """Jobs (in scope, optionally submitted in [since, until)) as a DataFrame in rowid order."""
        where, params = scope_clause(scope)
        if since is not None:
            where += " AND submit_time >= ?"
            params.append(int(since))
        if until is not None:
            where += " AND submit_time < ?"
            params.append(int(until))
        cur = self.conn.execute(f"SELECT {', '.join(FRAME_COLUMNS)} FROM jobs WHERE {where} "
                                "ORDER BY rowid", params)
        return frame_of(cur.fetchall())

    # -- entity summary ----------------------------------------------------------------------
    def refresh_entity_stats(self, as_of: int) -> int:
        """Rebuild the per-entity summary of jobs that ended before `as_of`; returns rows."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM entity_stats")
            for kind in ENTITY_KINDS:
                col = _kind_column(kind)
                conn.execute(
                    f"INSERT INTO entity_stats (kind, value, project, n, fails, n_rt, sum_logrt, "
                    f"max_rss, as_of) SELECT ?, {col}, COALESCE(project, ''), COUNT(*), "
                    f"SUM({_FAIL_SQL}), COUNT(elapsed_s), SUM(ln(1.0 + MAX(elapsed_s, 0))), "
                    f"MAX(max_rss_mb), ? FROM jobs WHERE {col} IS NOT NULL AND {_ENDED_SQL} AND "
                    f"end_time < ? GROUP BY {col}, COALESCE(project, '')",
                    (kind, int(as_of), int(as_of)))
            conn.execute("DELETE FROM entity_stats_meta")
            conn.execute("INSERT INTO entity_stats_meta (as_of) VALUES (?)", (int(as_of),))
        return int(self.conn.execute("SELECT COUNT(*) FROM entity_stats").fetchone()[0])

    def entity_stats_as_of(self) -> int | None:
        row = self.conn.execute("SELECT MAX(as_of) FROM entity_stats_meta").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def ended_after(self, t: float) -> bool:
        """Whether any job (in any state) has an end time after `t`: one seek of the end-time
        index. A summary refresh cannot serve a moment before such a job (models/features.py)."""
        return self.conn.execute("SELECT 1 FROM jobs WHERE end_time > ? LIMIT 1",
                                 (t,)).fetchone() is not None

    # -- single lookups ----------------------------------------------------------------------
    def entity_history(self, kind: str, value: str, before: int,
                       scope: Sequence[str] | None = None,
                       summary_as_of: int | None = None) -> dict[str, Any]:
        """History of one entity from the jobs that ended before `before` (in scope).

        Returns totals (n, fails, n_rt, sum_logrt, max_rss) and the last `RECENT_K` ended jobs
        (newest first) as (failed, elapsed_s, max_rss_mb, end_time). Uses the summary when it
        is not newer than `before`, plus the jobs that ended since; else scans the index.
        """
        import numpy as np
        match, mparams = _kind_match(kind, value)
        where, params = scope_clause(scope)
        params = mparams + params
        agg = (f"SELECT COUNT(*), SUM({_FAIL_SQL}), COUNT(elapsed_s), "
               f"SUM(ln(1.0 + MAX(elapsed_s, 0))), MAX(max_rss_mb) FROM jobs WHERE {match} AND "
               f"{_ENDED_SQL} AND {where} AND end_time < ?")
        tot = np.zeros(4)
        mx = None
        if summary_as_of is not None and summary_as_of <= before:
            w2, p2 = scope_clause(scope)
            r = self.conn.execute(
                f"SELECT SUM(n), SUM(fails), SUM(n_rt), SUM(sum_logrt), MAX(max_rss) FROM "
                f"entity_stats WHERE kind = ? AND value = ? AND {w2}", [kind, value, *p2]).fetchone()
            tot += [x or 0 for x in r[:4]]
            mx = r[4]
            r = self.conn.execute(agg + " AND end_time >= ?",
                                  [*params, int(before), int(summary_as_of)]).fetchone()
        else:
            r = self.conn.execute(agg, [*params, int(before)]).fetchone()
        tot += [x or 0 for x in r[:4]]
        if r[4] is not None:
            mx = r[4] if mx is None else max(mx, r[4])
        recent = self.conn.execute(
            f"SELECT {_FAIL_SQL}, elapsed_s, max_rss_mb, end_time FROM jobs WHERE {match} AND "
            f"{_ENDED_SQL} AND {where} AND end_time < ? ORDER BY end_time DESC, rowid DESC "
            f"LIMIT {RECENT_K}", [*params, int(before)]).fetchall()
        return {"n": int(tot[0]), "fails": int(tot[1]), "n_rt": int(tot[2]),
                "sum_logrt": float(tot[3]), "max_rss": mx, "recent": recent}

    def recent_runs(self, kind: str, value: str, before: int, scope: Sequence[str] | None = None,
                    k: int = RECENT_K, completed: bool = False) -> list[tuple[Any, Any]]:
        """(elapsed_s, timelimit_s) of the entity's last `k` jobs that ended before `before`
        (in scope), newest first (the order of `entity_history`'s recent jobs); `completed`:
        of its completed jobs only (the runtime model's repeat, models/runtime_point.py)."""
        match, mparams = _kind_match(kind, value)
        where, params = scope_clause(scope)
        ended = _COMPLETED_SQL if completed else _ENDED_SQL
        return self.conn.execute(
            f"SELECT elapsed_s, timelimit_s FROM jobs WHERE {match} AND {ended} AND {where} "
            f"AND end_time < ? ORDER BY end_time DESC, rowid DESC LIMIT {int(k)}",
            [*mparams, *params, int(before)]).fetchall()

    def last_completed_runtimes(self, shapes: Sequence[tuple[str, int, int, int]],
                                scope: Sequence[str] | None = None) -> list[float | None]:
        """The runtime of the last completed job of each (user, CPUs, time limit, before)
        shape that ended before `before`, in order (None: none): what `recent_runs("shape",
        ..., 1, completed=True)` gives one shape at a time, in one statement per 500 shapes
        (each a seek of `jobs_shape_end`)."""
        where, params = scope_clause(scope)
        out: list[float | None] = []
        for i in range(0, len(shapes), 500):
            chunk = shapes[i:i + 500]
            values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
            flat = [v for j, sh in enumerate(chunk) for v in (j, *sh)]
            out += [r[0] for r in self.conn.execute(
                f"WITH q(i, u, c, t, b) AS (VALUES {values}) SELECT (SELECT elapsed_s FROM jobs "
                f"WHERE user = q.u AND req_cpus = q.c AND timelimit_s = q.t AND {_COMPLETED_SQL} "
                f"AND {where} AND end_time < q.b "
                "ORDER BY end_time DESC, rowid DESC LIMIT 1) FROM q ORDER BY q.i",
                [*flat, *params]).fetchall()]
        return out
