"""The per-entity history summary that serves the models' history features at "now".

One row per (entity kind, value) over all projects (`agg` = 1) and one per (kind, value,
project) (`agg` = 0, for scoped callers), holding everything the submit-time features of a job
submitted now need: counts, failures, runtime log-sum, peak memory, and the last `RECENT_K`
jobs' outcomes as a bit mask (bit i: the i-th newest failed) with the last two runtimes, the
last peak and end time; for the kinds in `RECENT_RUN_KINDS` the all-project row also keeps the
last `RECENT_K` jobs' runtimes and time limits (newest first, float64 blobs, NaN for none: the
runtime model's recent-runtime block in batch scoring). Only ENDED jobs count (a terminal state and an end time), as in the
leakage-safe online features (models/features.py); tests/models/test_entity_summary.py checks
that features read here equal `build_features` at the same moment.

Maintained incrementally with a watermark: the summary holds exactly the ended jobs with
`end_time < watermark`; `refresh` adds the jobs that ended since (a few grouped numpy/pandas
passes, then the rows of the touched entities only) and moves the watermark to the newest end
time + 1; the jobs are read in chunks of `CHUNK` (oldest first, each folded in like an
incremental refresh), so a rebuild's memory is one chunk plus the touched summary rows, whatever
the history's size. A change below the watermark (a late-arriving job, a re-ingested job whose outcome
changed, a deleted job) shows in a change log kept by triggers on the jobs table and in the
rows added since the last refresh (a rowid range), so the check costs what was loaded, not the
history (a summary from before the log is checked once by the count / failure / runtime
checksum of the jobs below it); the summary is then rebuilt from scratch. `refresh` is the small hook `app.after_ingest` calls;
the summary is first built by training (or the first batch scoring) and never on an ingest
into a store that has none.

The entity kinds are not split by cluster: the online features are not either.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jobmedic.knowledge.feature_queries import ENTITY_KINDS, RECENT_K, SHAPE_SQL, shape_key
from jobmedic.knowledge.taxonomy import ENDED_STATES, FAILED_STATES

if TYPE_CHECKING:
    import pandas as pd

    from jobmedic.knowledge.store import Store

#: The job columns a summary row depends on (an update below the watermark that changes one
#: of them makes the next refresh a rebuild).
_TRACKED = ", ".join("{p}." + c for c in ("state", "end_time", "elapsed_s", "max_rss_mb", "user",
                                           "name", "project", "image", "queue", "qos", "req_cpus",
                                           "timelimit_s"))
DDL = (
    """CREATE TABLE IF NOT EXISTS entity_summary (
        kind TEXT NOT NULL, value TEXT NOT NULL, agg INTEGER NOT NULL, pkey TEXT NOT NULL,
        n INTEGER NOT NULL, fails INTEGER NOT NULL, n_rt INTEGER NOT NULL, sum_logrt REAL NOT NULL,
        max_rss REAL, recent_n INTEGER NOT NULL, recent_bits INTEGER NOT NULL, last_end REAL,
        last_rowid INTEGER, last_fail INTEGER, last_rt REAL, prev_rt REAL, last_rss REAL,
        recent_rt BLOB, recent_tl BLOB,
        PRIMARY KEY (kind, value, agg, pkey)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS entity_summary_meta (
        id INTEGER PRIMARY KEY CHECK (id = 1), watermark REAL NOT NULL, n_ended INTEGER NOT NULL,
        n_failed INTEGER NOT NULL, sum_elapsed REAL NOT NULL, refreshed_at INTEGER NOT NULL)""",
    # The change check in proportion to the load (not a scan of the jobs below the watermark):
    # `max_rowid` is the newest job row when the summary was last refreshed (a newer row that
    # ended below the watermark is a late arrival), `dirty` counts the in-place updates of a
    # summarised job's counted columns (or one that moved below the watermark) and every
    # delete, logged by the triggers below.
    """CREATE TABLE IF NOT EXISTS entity_summary_track (
        id INTEGER PRIMARY KEY CHECK (id = 1), max_rowid INTEGER NOT NULL, dirty INTEGER NOT NULL)""",
    f"""CREATE TRIGGER IF NOT EXISTS entity_summary_jobs_update AFTER UPDATE ON jobs
        WHEN (OLD.end_time < (SELECT watermark FROM entity_summary_meta WHERE id = 1)
              OR NEW.end_time < (SELECT watermark FROM entity_summary_meta WHERE id = 1))
        AND ({_TRACKED.format(p='OLD')}) IS NOT ({_TRACKED.format(p='NEW')})
        BEGIN UPDATE entity_summary_track SET dirty = dirty + 1 WHERE id = 1; END""",
    """CREATE TRIGGER IF NOT EXISTS entity_summary_jobs_delete AFTER DELETE ON jobs
        BEGIN UPDATE entity_summary_track SET dirty = dirty + 1 WHERE id = 1; END""",
)
COLUMNS = ("kind", "value", "agg", "pkey", "n", "fails", "n_rt", "sum_logrt", "max_rss", "recent_n",
           "recent_bits", "last_end", "last_rowid", "last_fail", "last_rt", "prev_rt", "last_rss")
#: The recent runs (elapsed_s, timelimit_s) of the last RECENT_K jobs, as float64 blobs.
RECENT_RUNS = ("recent_rt", "recent_tl")
#: Every stored column (readers of the history select COLUMNS; a store from before the recent
#: runs has no RECENT_RUNS columns and is rebuilt on its next refresh).
ALL_COLUMNS = COLUMNS + RECENT_RUNS
#: The entity kinds whose all-project rows keep the recent runs.
RECENT_RUN_KINDS = ("user", "name", "shape")
#: The summary key of a job without a project (never a scope's name).
NO_PROJECT = "\x00"
_MASK = (1 << RECENT_K) - 1
#: Jobs read and folded in at a time (by end time, rowid): a rebuild from the whole history
#: holds one chunk on the caller, not the history (its peak does not grow with the store).
CHUNK = 100_000
_STATES = ", ".join(f"'{s}'" for s in sorted(ENDED_STATES))
_FAILED = ", ".join(f"'{s}'" for s in sorted(FAILED_STATES))
_ENDED = f"end_time IS NOT NULL AND state IN ({_STATES})"
_SELECT = (f"SELECT rowid, user, name, project, image, queue, qos, {SHAPE_SQL} AS shape, "
           f"state IN ({_FAILED}) AS failed, end_time, elapsed_s, timelimit_s, max_rss_mb FROM jobs "
           f"WHERE end_time IS NOT NULL AND +state IN ({_STATES})")  # = _ENDED
# (`+state`: not through an index on state, so the rows come in end-time order from jobs_end
# and a rebuild's ORDER BY needs no sort of the whole history in memory, temp_store = MEMORY)


def ensure(store: Store) -> None:
    with store.transaction() as conn:
        for sql in DDL:
            conn.execute(sql)


def _outdated(store: Store) -> bool:
    """Whether the store holds a summary from before the recent-runs columns."""
    cols = {r[1] for r in store.conn.execute("PRAGMA table_info(entity_summary)")}
    return bool(cols) and not set(RECENT_RUNS) <= cols


def watermark(store: Store) -> float | None:
    """The summary's watermark (it holds the ended jobs with end_time below it), or None when
    there is no summary."""
    try:
        row = store.conn.execute("SELECT watermark FROM entity_summary_meta WHERE id = 1").fetchone()
    except Exception:  # noqa: BLE001 - sqlite3.OperationalError: no such table yet
        return None
    return None if row is None else float(row[0])


def _checksum(store: Store, below: float) -> tuple[int, int, float]:
    r = store.conn.execute(f"SELECT COUNT(*), TOTAL(state IN ({_FAILED})), TOTAL(elapsed_s) FROM jobs "
                           f"WHERE {_ENDED} AND end_time < ?", (below,)).fetchone()
    return int(r[0]), int(r[1]), float(r[2])


def _track(store: Store) -> tuple[int, int] | None:
    """(max_rowid, dirty) of the change log, or None when this summary has none yet (built
    by an older jobmedic: its first refresh checks by the checksum)."""
    row = store.conn.execute("SELECT max_rowid, dirty FROM entity_summary_track WHERE id = 1").fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def _changed_below(store: Store, w: float, meta: Sequence[Any], track: tuple[int, int] | None) -> bool:
    """Whether the ended jobs below the watermark changed since the last refresh: from the
    change log (updates, deletes) and the job rows added since (one rowid range), in proportion
    to what was loaded; the checksum of every job below it when there is no log yet."""
    if track is None:
        now = _checksum(store, w)
        return (now[0], now[1]) != (meta[0], meta[1]) or not np.isclose(now[2], meta[2], rtol=1e-12)
    if track[1]:
        return True
    return store.conn.execute(f"SELECT 1 FROM jobs WHERE rowid > ? AND end_time < ? AND +state IN "
                              f"({_STATES}) LIMIT 1", (track[0], w)).fetchone() is not None


def _newest_end(conn: Any) -> float | None:
    """The newest end time of an ended job: the end-time index walked from its top (with the
    state as a condition the planner read every ended job through jobs_window: 2.8 s CPU at 1M)."""
    row = conn.execute(f"SELECT end_time FROM jobs WHERE end_time IS NOT NULL AND +state IN "
                       f"({_STATES}) ORDER BY end_time DESC LIMIT 1").fetchone()
    return None if row is None else row[0]


def _advanced(conn: Any, meta: Sequence[Any], w: float, new_w: float) -> tuple[int, int, float]:
    """The checksum below `new_w` from the one below `w` and the jobs that ended in between."""
    r = conn.execute(f"SELECT COUNT(*), TOTAL(state IN ({_FAILED})), TOTAL(elapsed_s) FROM jobs "
                     f"WHERE end_time >= ? AND end_time < ? AND +state IN ({_STATES})",
                     (w, new_w)).fetchone()
    return int(meta[0]) + int(r[0]), int(meta[1]) + int(r[1]), float(meta[2]) + float(r[2])


def _mark(conn: Any, track: tuple[int, int] | None) -> None:
    """The change log after a refresh: the newest row now, the updates seen by its check
    cleared (a rebuild or a first log: all of them)."""
    hi = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM jobs").fetchone()[0]
    seen = track[1] if track is not None else None
    if seen is None or not conn.execute("SELECT 1 FROM entity_summary_track").fetchone():
        conn.execute("INSERT OR REPLACE INTO entity_summary_track VALUES (1, ?, 0)", (hi,))
    else:
        conn.execute("UPDATE entity_summary_track SET max_rowid = ?, dirty = MAX(dirty - ?, 0) "
                     "WHERE id = 1", (hi, seen))


def refresh(store: Store, build: bool = False) -> dict[str, Any]:
    """Bring the summary up to the newest ended job. Without `build`, a store with no summary is
    left alone (mode "none"). Returns {mode: none|incremental|rebuild, jobs, seconds}."""
    t0 = time.perf_counter()
    w = watermark(store)
    if w is None and not build:
        return {"mode": "none", "jobs": 0, "seconds": 0.0}
    if _outdated(store):  # built by an older jobmedic: rebuilt with the recent-runs columns
        with store.transaction() as conn:
            conn.execute("DROP TABLE entity_summary")
        w = None
    ensure(store)
    mode, meta, track = "incremental", None, _track(store)
    if w is not None:
        meta = store.conn.execute("SELECT n_ended, n_failed, sum_elapsed FROM entity_summary_meta "
                                  "WHERE id = 1").fetchone()
        if _changed_below(store, w, meta, track):
            mode, w, track = "rebuild", None, None  # something changed below the watermark
    else:
        mode = "rebuild"
    import pandas as pd

    n_jobs = 0
    with store.transaction() as conn:  # one snapshot: all of it lands, or none of it
        top = _newest_end(conn)
        new_w = (float(top) + 1) if top is not None else (w if w is not None else 0.0)
        if w is None:
            conn.execute("DELETE FROM entity_summary")
        cur = conn.execute(_SELECT + ("" if w is None else " AND end_time >= ?") +
                           " ORDER BY end_time, rowid", () if w is None else (w,))
        cols = [d[0] for d in cur.description]
        first = w is None
        while rows := cur.fetchmany(CHUNK):  # every chunk ends after the ones before it
            _apply(conn, pd.DataFrame.from_records(rows, columns=cols), incremental=not first)
            n_jobs, first = n_jobs + len(rows), False
        n, f, s = _checksum(store, new_w) if w is None or meta is None else _advanced(conn, meta, w, new_w)
        conn.execute("INSERT OR REPLACE INTO entity_summary_meta VALUES (1, ?, ?, ?, ?, ?)",
                     (new_w, n, f, s, int(time.time())))
        _mark(conn, track)
    return {"mode": mode, "jobs": n_jobs, "seconds": round(time.perf_counter() - t0, 3)}


def _groups(jobs: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Per (value, agg, pkey): the statistics of `jobs` (sorted by end time, rowid)."""
    import pandas as pd

    v = jobs[kind]
    keep = v.notna().to_numpy()
    d = jobs[keep]
    if d.empty:
        return pd.DataFrame(columns=ALL_COLUMNS)
    rt = d["elapsed_s"].to_numpy(dtype="float64")
    base = pd.DataFrame({
        "value": d[kind].astype(str).to_numpy(), "failed": d["failed"].to_numpy(dtype=np.int64),
        "rt": rt, "logrt": np.where(np.isnan(rt), 0.0, np.log1p(np.maximum(np.nan_to_num(rt), 0))),
        "has_rt": (~np.isnan(rt)).astype(np.int64), "rss": d["max_rss_mb"].to_numpy(dtype="float64"),
        "end": d["end_time"].to_numpy(dtype="float64"), "rowid": d["rowid"].to_numpy(dtype=np.int64)})
    proj = d["project"].astype(object).where(d["project"].notna(), NO_PROJECT).astype(str).to_numpy()
    parts = []
    for agg, pkey in ((1, np.full(len(d), "", dtype=object)), (0, proj)):
        b = base.assign(agg=agg, pkey=pkey)
        g = b.groupby(["value", "agg", "pkey"], sort=False)
        pos = g.cumcount(ascending=False).to_numpy()  # 0: the newest of its entity
        b["bit"] = np.where(pos < RECENT_K, b["failed"].to_numpy() << np.minimum(pos, 62), 0)
        s = g.agg(n=("failed", "size"), fails=("failed", "sum"), n_rt=("has_rt", "sum"),
                  sum_logrt=("logrt", "sum"), max_rss=("rss", "max"))
        s["recent_bits"] = b.groupby(["value", "agg", "pkey"], sort=False)["bit"].sum()
        last = b[pos == 0].set_index(["value", "agg", "pkey"])
        s["last_end"], s["last_rowid"], s["last_fail"] = last["end"], last["rowid"], last["failed"]
        s["last_rt"], s["last_rss"] = last["rt"], last["rss"]
        s["prev_rt"] = b[pos == 1].set_index(["value", "agg", "pkey"])["rt"]
        s["recent_n"] = np.minimum(s["n"], RECENT_K)
        s["recent_rt"] = s["recent_tl"] = None
        if agg == 1 and kind in RECENT_RUN_KINDS:
            _recent_runs(s, b, g, pos, d)
        parts.append(s.reset_index())
    out = pd.concat(parts, ignore_index=True)
    out["kind"] = kind
    return out[list(ALL_COLUMNS)]


def _recent_runs(s: pd.DataFrame, b: pd.DataFrame, g: Any, pos: np.ndarray, d: pd.DataFrame) -> None:
    """Fill `s`'s RECENT_RUNS: each group's newest RECENT_K runtimes and time limits."""
    gid = g.ngroup().to_numpy()  # `b` is indexed 0..n-1 (positions)
    first = b.drop_duplicates(["value", "agg", "pkey"])  # a row of each group, for its key
    at = np.empty(len(s), dtype=np.int64)
    at[s.index.get_indexer(first.set_index(["value", "agg", "pkey"]).index)] = gid[first.index.to_numpy()]
    keep = pos < RECENT_K
    mats = {}
    for col, src in (("recent_rt", d["elapsed_s"]), ("recent_tl", d["timelimit_s"])):
        M = np.full((gid.max() + 1, RECENT_K), np.nan)
        M[gid[keep], pos[keep]] = src.to_numpy(dtype="float64")[keep]
        mats[col] = M[at]
    for col, M in mats.items():
        s[col] = _blobs(M)


def _blobs(M: np.ndarray) -> list[bytes]:
    return [r.tobytes() for r in np.ascontiguousarray(M, dtype="<f8")]


def runs_matrix(blobs: Sequence[Any]) -> np.ndarray:
    """(rows x RECENT_K) float64 from stored RECENT_RUNS blobs (None: all NaN)."""
    size = 8 * RECENT_K
    try:  # every one a blob of the right size (frame() gives NULLs as NaN blobs)
        joined = b"".join(blobs)
        if len(joined) == size * len(blobs):
            return np.frombuffer(joined, dtype="<f8").reshape(len(blobs), RECENT_K).copy()
    except TypeError:
        pass
    M = np.full((len(blobs), RECENT_K), np.nan)
    ok = [i for i, v in enumerate(blobs) if isinstance(v, bytes) and len(v) == size]
    if ok:
        M[ok] = np.frombuffer(b"".join([blobs[i] for i in ok]), dtype="<f8").reshape(len(ok), RECENT_K)
    return M


def _apply(conn: Any, jobs: pd.DataFrame, incremental: bool) -> None:
    """Fold `jobs` (all ended after every job already summarised) into the summary rows."""
    import pandas as pd

    for kind in ENTITY_KINDS:
        new = _groups(jobs, kind)
        if new.empty:
            continue
        if incremental:
            old = _old_rows(conn, kind, new[["value", "agg", "pkey"]].itertuples(index=False))
            if not old.empty:
                new = _combine(new, old)
        rows = new.astype(object).where(pd.notna(new), None).itertuples(index=False, name=None)
        conn.executemany(f"INSERT OR REPLACE INTO entity_summary ({', '.join(ALL_COLUMNS)}) "
                         f"VALUES ({', '.join('?' * len(ALL_COLUMNS))})", rows)


def _old_rows(conn: Any, kind: str, keys: Iterable[tuple]) -> pd.DataFrame:
    import pandas as pd

    conn.execute("CREATE TEMP TABLE IF NOT EXISTS _es_keys (value TEXT, agg INTEGER, pkey TEXT)")
    conn.execute("DELETE FROM _es_keys")
    conn.executemany("INSERT INTO _es_keys VALUES (?, ?, ?)", keys)
    cur = conn.execute(f"SELECT {', '.join('s.' + c for c in ALL_COLUMNS)} FROM _es_keys k JOIN "
                       "entity_summary s ON s.kind = ? AND s.value = k.value AND s.agg = k.agg "
                       "AND s.pkey = k.pkey", (kind,))
    return pd.DataFrame.from_records(cur.fetchall(), columns=list(ALL_COLUMNS))


def _combine(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """New rows merged onto the old ones of the same keys (every new job is newer)."""
    key = ["kind", "value", "agg", "pkey"]
    m = new.merge(old, on=key, how="left", suffixes=("", "_o"))
    had = m["n_o"].notna().to_numpy()
    o = {c: m[c + "_o"].to_numpy(dtype="float64") for c in ("n", "fails", "n_rt", "sum_logrt",
                                                             "max_rss", "recent_n", "last_rt")}
    for c in ("n", "fails", "n_rt", "sum_logrt"):
        m[c] = m[c].to_numpy(dtype="float64") + np.where(had, o[c], 0)
    m["max_rss"] = np.fmax(m["max_rss"].to_numpy(dtype="float64"), o["max_rss"])
    k = m["recent_n"].to_numpy(dtype=np.int64)  # this batch's newest, up to RECENT_K
    cnt = np.minimum(m["n"].to_numpy(dtype="float64") - np.where(had, o["n"], 0), RECENT_K).astype(np.int64)
    ob = m["recent_bits_o"].fillna(0).to_numpy(dtype=np.int64)
    nb = m["recent_bits"].to_numpy(dtype=np.int64)
    m["recent_bits"] = np.where(had, (nb | (ob << np.minimum(cnt, RECENT_K))) & _MASK, nb)
    m["recent_n"] = np.where(had, np.minimum(k + np.nan_to_num(o["recent_n"]).astype(np.int64), RECENT_K), k)
    single = cnt == 1  # the previous runtime is the old last one
    m["prev_rt"] = np.where(had & single, o["last_rt"], m["prev_rt"].to_numpy(dtype="float64"))
    runs = m["recent_rt"].notna().to_numpy() & had
    if runs.any():  # this batch's newest runs first, then the old ones, RECENT_K in all
        j = np.arange(RECENT_K)[None, :]
        c = cnt[runs][:, None]
        for col in RECENT_RUNS:
            new_m, old_m = runs_matrix(m[col].to_numpy()[runs]), runs_matrix(m[col + "_o"].to_numpy()[runs])
            merged = np.where(j < c, new_m, old_m[np.arange(len(c))[:, None], np.clip(j - c, 0, None)])
            v = m[col].to_numpy(dtype=object).copy()
            v[runs] = _blobs(merged)
            m[col] = v
    for c in ("n", "fails", "n_rt"):
        m[c] = m[c].astype(np.int64)
    return m[list(ALL_COLUMNS)]


# -- reading -----------------------------------------------------------------------------------
def fresh_at(store: Store, now: float) -> bool:
    """Whether the summary holds exactly the ended jobs before `now`: it exists, its watermark
    is not after `now`, and no job has ended in [watermark, now) since."""
    w = watermark(store)
    if w is None or w > now:
        return False
    # any job with an end time in the gap (ended or not: the cautious answer), through the
    # end-time index: no other condition, so the planner has no other index to prefer
    return store.conn.execute("SELECT 1 FROM jobs WHERE end_time >= ? AND end_time < ? LIMIT 1",
                              (w, now)).fetchone() is None


def _history(rows: Sequence[Sequence[Any]]) -> dict[str, Any] | None:
    """`FeatureQueries.entity_history`'s dict from the summary row of one entity; None for
    several rows (a scoped caller's entity in several projects: its last-K window across them
    is not in the summary, so the caller reads the jobs)."""
    if not rows:
        return {"n": 0, "fails": 0, "n_rt": 0, "sum_logrt": 0.0, "max_rss": None, "recent": []}
    if len(rows) > 1:
        return None
    c = {name: i for i, name in enumerate(COLUMNS)}
    r = rows[0]
    bits, k = int(r[c["recent_bits"]]), int(r[c["recent_n"]])
    recent: list[tuple] = [((bits >> i) & 1, None, None, None) for i in range(k)]
    if k:
        recent[0] = (int(r[c["last_fail"]]), r[c["last_rt"]], r[c["last_rss"]], r[c["last_end"]])
    if k > 1:
        recent[1] = (recent[1][0], r[c["prev_rt"]], None, None)
    return {"n": int(r[c["n"]]), "fails": int(r[c["fails"]]), "n_rt": int(r[c["n_rt"]]),
            "sum_logrt": float(r[c["sum_logrt"]]), "max_rss": r[c["max_rss"]], "recent": recent}


def histories(store: Store, spec: dict[str, Any], scope: Sequence[str] | None
              ) -> dict[str, dict[str, Any]] | None:
    """Per entity kind, the history of the spec's entity from the summary (one query), or None
    when a scoped entity spans projects (the caller reads the jobs instead)."""
    spec = dict(spec) | {"shape": shape_key(spec.get("user"), spec.get("req_cpus"), spec.get("timelimit_s"))}
    want = [(k, str(spec[k])) for k in ENTITY_KINDS if spec.get(k) not in (None, "")]
    rows: dict[tuple[str, str], list] = {}
    if want:
        where = " OR ".join("(kind = ? AND value = ?)" for _ in want)
        params: list[Any] = [x for kv in want for x in kv]
        if scope is None:
            where = f"({where}) AND agg = 1"
        else:
            sc = list(scope)
            where = f"({where}) AND agg = 0 AND pkey IN ({', '.join('?' * len(sc))})" if sc else "0"
            params += sc
        for r in store.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM entity_summary WHERE {where}",
                                    params):
            rows.setdefault((r[0], r[1]), []).append(r)
    out = {}
    for kind in ENTITY_KINDS:
        value = spec.get(kind)
        if value in (None, ""):
            continue
        h = _history(rows.get((kind, str(value)), []))
        if h is None:
            return None
        out[kind] = h
    return out


def frame(store: Store, kind: str, values: Iterable[str],
          columns: Sequence[str] = COLUMNS) -> pd.DataFrame:
    """The all-project summary rows of `kind` for `values` (batch scoring), indexed by value,
    numbers as float64 (NULL: NaN); `columns` may add RECENT_RUNS (blobs, all NaN where not
    kept; sqlite3.OperationalError on a summary without them)."""
    import json

    import pandas as pd

    sel = ", ".join(f"coalesce({c}, :none)" if c in RECENT_RUNS else c for c in columns)
    cur = store.conn.execute(
        f"SELECT {sel} FROM entity_summary WHERE kind = :kind AND agg = 1 AND value IN "
        "(SELECT value FROM json_each(:values))",
        {"kind": kind, "values": json.dumps(sorted({str(v) for v in values})),
         "none": np.full(RECENT_K, np.nan).astype("<f8").tobytes()})
    rows = cur.fetchall()
    text = {"kind", "value", "pkey", *RECENT_RUNS}
    data = list(zip(*rows)) if rows else [()] * len(columns)
    df = pd.DataFrame({c: np.array(v, dtype=object if c in text else "float64")  # None: NaN
                       for c, v in zip(columns, data)})
    return df.set_index("value")
