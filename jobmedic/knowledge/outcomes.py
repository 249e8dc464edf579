"""Outcome inference: learn which fixes work from what users did after a failure.

A failed job followed by a resubmission of the same work by the same user (same cluster and
user, and same job name, or the same submit line, or for unnamed jobs the same image
repository) within the resubmit window is a fix attempt. The two requests are compared and
every change made (memory raised, time limit raised, node excluded, image changed, GPU count or
node count lowered, more cores, another queue; or nothing: a plain retry) is recorded as one
attempt of the solution the rule base maps that change to (or of a learned `history`
solution named ``<type>.<change>`` when no curated solution covers it). The attempt succeeded
when the follow-up did not fail again with the same failure type.

Pairing, per failed job: the first job of the same work submitted after the failure ended,
if it has ended itself (running follow-ups are picked up by a later run). A follow-up counts
for one failed job only (the latest failure before it), so a chain A -> B -> C counts the
change A -> B and the change B -> C once each. All of it is vectorised (numpy searchsorted
over sorted group keys); the store scan is one SELECT. Re-running is idempotent (dedup keys).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobmedic.knowledge.rules import CHANGES, RuleBase
from jobmedic.knowledge.taxonomy import FAILED_STATES

if TYPE_CHECKING:
    import pandas as pd

    from jobmedic.knowledge.store import Store

ENDED = FAILED_STATES | {"completed"}
RAISE = 1.05  # a request counts as raised above +5 %
_EXCLUDE_RX = r"(?:--exclude[= ]|(?<!\S)-x ?)(\S+)"
CHANGE_TITLES = {
    "memory_raised": "Raise the memory request", "time_raised": "Raise the time limit",
    "node_excluded": "Exclude the node it failed on", "image_changed": "Switch the container image",
    "gpus_lowered": "Request fewer GPUs", "nodes_lowered": "Run on fewer nodes",
    "cpus_raised": "Request more cores", "queue_changed": "Move to another partition / queue",
    "retried": "Resubmit unchanged",
}


@dataclass
class InferenceSummary:
    jobs_scanned: int = 0
    pairs: int = 0
    attempts: int = 0
    outcomes_written: int = 0
    followups_marked: int = 0
    seconds: float = 0.0
    by_solution: dict[str, list[int]] = field(default_factory=dict)  # id -> [successes, attempts]

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def pair_resubmissions(df: pd.DataFrame, window_s: float) -> pd.DataFrame:
    """(failed row, follow-up row) index pairs of `df` (a resubmission_frame)."""
    import numpy as np
    import pandas as pd
    if df.empty:
        return pd.DataFrame({"a": [], "f": []}, dtype="int64")
    submit = df["submit_time"].astype("float64").to_numpy()
    end = df["end_time"].astype("float64").to_numpy()
    ref = np.fmax(np.where(np.isnan(end), submit, end), submit + 1)
    failed = (df["state"].isin(FAILED_STATES) & (df["failure_type"] != "cancelled")).to_numpy()
    failed = failed & ~np.isnan(ref)
    image_repo = df["image"].astype("string").str.replace(r"[:@][^:/@]*$", "", regex=True)
    keys = {"name": df["name"], "script": df["script"],
            "image": image_repo.where(df["name"].isna())}
    best_f = np.full(len(df), -1, dtype=np.int64)
    best_t = np.full(len(df), np.inf)
    for key in keys.values():
        ok = key.notna().to_numpy() & ~np.isnan(submit)
        if not ok.any():
            continue
        idx = np.flatnonzero(ok)
        g = pd.DataFrame({"c": df["cluster"].to_numpy()[idx], "u": df["user"].to_numpy()[idx],
                          "k": key.to_numpy()[idx]}).groupby(["c", "u", "k"], sort=False).ngroup()
        g = g.to_numpy().astype(np.int64)
        comb = g * 10**10 + submit[idx].astype(np.int64)
        order = np.argsort(comb, kind="stable")
        comb_s, idx_s, g_s = comb[order], idx[order], g[order]
        fsel = failed[idx]
        fi, fg = idx[fsel], g[fsel]
        pos = np.searchsorted(comb_s, fg * 10**10 + np.ceil(ref[fi]).astype(np.int64), side="left")
        inb = pos < len(comb_s)
        pos_c = np.minimum(pos, len(comb_s) - 1)
        cand = idx_s[pos_c]
        good = inb & (g_s[pos_c] == fg) & (submit[cand] - ref[fi] <= window_s)
        better = good & (submit[cand] < best_t[fi])
        best_f[fi[better]] = cand[better]
        best_t[fi[better]] = submit[cand[better]]
    a = np.flatnonzero(best_f >= 0)
    pairs = pd.DataFrame({"a": a, "f": best_f[a], "ref": ref[a]})
    pairs = pairs[df["state"].to_numpy()[pairs["f"]] != "cancelled"]
    pairs = pairs[np.isin(df["state"].to_numpy()[pairs["f"]], list(ENDED))]
    # One failed job per follow-up: the latest failure before it.
    pairs = pairs.sort_values("ref").drop_duplicates("f", keep="last")
    return pairs[["a", "f"]].reset_index(drop=True)


def detect_changes(a: pd.DataFrame, f: pd.DataFrame) -> pd.DataFrame:
    """Long frame (pair, change, detail) of what differs between failed and follow-up rows."""
    import numpy as np
    import pandas as pd
    a, f = a.reset_index(drop=True), f.reset_index(drop=True)

    def num(df: pd.DataFrame, c: str) -> pd.Series:
        import pandas as pd
        return pd.to_numeric(df[c], errors="coerce").astype("float64")

    parts = []

    def add(mask: pd.Series, change: str, detail: pd.Series | str) -> None:
        import numpy as np
        import pandas as pd
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            d = detail[mask] if isinstance(detail, pd.Series) else detail
            parts.append(pd.DataFrame({"pair": np.flatnonzero(mask.to_numpy()), "change": change,
                                       "detail": d if isinstance(d, str) else d.to_numpy()}))

    am, fm = num(a, "req_mem_mb"), num(f, "req_mem_mb")
    add(fm > am * RAISE, "memory_raised", "memory " + _mb(am) + " -> " + _mb(fm) + " (x"
        + (fm / am).round(2).astype(str) + ")")
    at, ft = num(a, "timelimit_s"), num(f, "timelimit_s")
    add(ft > at * RAISE, "time_raised", "time limit " + (at / 3600).round(1).astype(str) + "h -> "
        + (ft / 3600).round(1).astype(str) + "h")
    ax = a["script"].astype("string").str.extract(_EXCLUDE_RX, expand=False)
    fx = f["script"].astype("string").str.extract(_EXCLUDE_RX, expand=False)
    add(fx.notna() & (fx != ax).fillna(True), "node_excluded", "excluded " + fx.fillna(""))
    ai, fi = a["image"].astype("string"), f["image"].astype("string")
    add(ai.notna() & fi.notna() & (ai != fi), "image_changed", "image " + ai.fillna("") + " -> "
        + fi.fillna(""))
    ag, fg = num(a, "req_gpus"), num(f, "req_gpus")
    add(fg < ag, "gpus_lowered", "GPUs " + ag.astype(str) + " -> " + fg.astype(str))
    an, fn = num(a, "n_nodes"), num(f, "n_nodes")
    add(fn < an, "nodes_lowered", "nodes " + an.astype(str) + " -> " + fn.astype(str))
    ac, fc = num(a, "req_cpus"), num(f, "req_cpus")
    add(fc > ac * RAISE, "cpus_raised", "cores " + ac.astype(str) + " -> " + fc.astype(str))
    aq, fq = a["queue"].astype("string"), f["queue"].astype("string")
    add(aq.notna() & fq.notna() & (aq != fq), "queue_changed", "queue " + aq.fillna("") + " -> "
        + fq.fillna(""))
    changed = np.zeros(len(a), dtype=bool)
    for p in parts:
        changed[p["pair"].to_numpy()] = True
    add(pd.Series(~changed), "retried", "resubmitted unchanged")
    if not parts:
        return pd.DataFrame({"pair": [], "change": [], "detail": []})
    return pd.concat(parts, ignore_index=True)


def _mb(s: pd.Series) -> pd.Series:
    return (s / 1024).round(1).astype(str) + "G"


@dataclass
class OutcomePlan:
    """What inference found in a frame, before anything is written (`plan_outcomes`)."""

    pairs: int
    rows: pd.DataFrame  # solution_outcomes rows, solution_id still to fill
    keys: list[tuple[str, str]]  # (failure type, solution) of each row, for its solution_id
    sources: dict[tuple[str, str], tuple[str, str]]  # (type, solution) -> (change, rule|history)
    resubmits: list[tuple[str, str, str]]  # (resubmit_of, cluster, job_id)
    by_solution: dict[str, list[int]]


def plan_outcomes(df: pd.DataFrame, rules: RuleBase, window_h: float,
                  now: int | None = None) -> OutcomePlan:
    """Pair the resubmissions of `df` (a resubmission frame) and turn every change into an
    outcome row; reads and writes no store (so it can run beside other work)."""
    import numpy as np
    import pandas as pd
    pairs = pair_resubmissions(df, window_h * 3600)
    if pairs.empty:
        return OutcomePlan(0, pd.DataFrame(), [], {}, [], {})
    a = df.iloc[pairs["a"].to_numpy()].reset_index(drop=True)
    f = df.iloc[pairs["f"].to_numpy()].reset_index(drop=True)
    ch = detect_changes(a, f)
    ftype = a["failure_type"].fillna("unknown").to_numpy()[ch["pair"].to_numpy()]
    ch["failure_type"] = ftype
    sol_ids, sources, memo = [], {}, {}
    # plain lists: iterating a pandas string column yields one element at a time, slowly
    for t, c in zip(ch["failure_type"].tolist(), ch["change"].tolist()):
        hit = memo.get((t, c))
        if hit is None:
            rule = rules.learned_from(t, c)
            hit = memo[(t, c)] = (rule.id if rule else f"{t}.{c}", "rule" if rule else "history")
        sources[(t, hit[0])] = (c, hit[1])
        sol_ids.append(hit[0])
    ch["solution"] = sol_ids
    ch = ch.drop_duplicates(["pair", "solution"])
    p = ch["pair"].to_numpy()
    fa, ff = a.iloc[p].reset_index(drop=True), f.iloc[p].reset_index(drop=True)
    same_fail = ff["state"].isin(FAILED_STATES) & (ff["failure_type"].fillna(fa["failure_type"])
                                                   == fa["failure_type"])
    success = (~same_fail).astype(int).to_numpy()
    recorded = pd.to_numeric(ff["end_time"], errors="coerce").fillna(now or time.time())
    gpu = pd.to_numeric(fa["req_gpus"], errors="coerce")
    rows = pd.DataFrame({
        "solution_id": None,
        "cluster": fa["cluster"], "failed_job": fa["job_id"], "followup_job": ff["job_id"],
        "project": fa["project"], "success": success, "recorded_by": "inference",
        "recorded_at": recorded.astype("int64"), "note": None, "inferred": 1, "context": None,
        "dedup_key": "job:" + fa["cluster"].astype(str) + ":" + fa["job_id"].astype(str) + ":"
        + ch["solution"].to_numpy(),
        "queue": fa["queue"], "gpu": np.where(gpu.isna(), None, (gpu > 0).astype("Int64")),
        "change": ch["detail"].to_numpy(),
    })
    rows = rows.astype(object).where(rows.notna(), None)
    agg = pd.DataFrame({"s": ch["solution"].to_numpy(), "ok": success}).groupby("s")["ok"]
    return OutcomePlan(
        len(pairs), rows, list(zip(ch["failure_type"].tolist(), ch["solution"].tolist())),
        sources, list(zip(a["job_id"].tolist(), f["cluster"].tolist(), f["job_id"].tolist())),
        {k: [int(v.sum()), int(v.size)] for k, v in agg})


def write_outcomes(store: Store, plan: OutcomePlan, out: InferenceSummary) -> InferenceSummary:
    """Record a plan: its solutions seeded, its outcome rows, the follow-ups' resubmit_of."""
    out.pairs = plan.pairs
    if not plan.pairs:
        return out
    import pandas as pd
    src = plan.sources
    store.seed_solutions([(t, s, c) for (t, s), (c, k) in src.items() if k == "rule"], "rule")
    store.seed_solutions([(t, s, c) for (t, s), (c, k) in src.items() if k == "history"],
                         "history")
    rowids = store.solution_rowids()
    rows = plan.rows
    rows["solution_id"] = pd.Series([rowids[k] for k in plan.keys], index=rows.index,
                                    dtype=object)
    out.attempts = len(rows)
    out.outcomes_written = store.add_outcomes(rows.itertuples(index=False, name=None))
    out.followups_marked = store.set_resubmit_of(plan.resubmits)
    out.by_solution = plan.by_solution
    return out


def infer_outcomes(store: Store, rules: RuleBase, window_h: float, now: int | None = None,
                   df: pd.DataFrame | None = None) -> InferenceSummary:
    """Pair resubmissions over the whole store (or over `df`, a resubmission frame of a few
    users' recent jobs, for incremental runs) and record them as inferred outcomes."""
    t0 = time.perf_counter()
    df = store.resubmission_frame() if df is None else df
    out = write_outcomes(store, plan_outcomes(df, rules, window_h, now),
                         InferenceSummary(jobs_scanned=len(df)))
    out.seconds = time.perf_counter() - t0
    return out


def infer_new_outcomes(store: Store, rules: RuleBase, window_h: float, now: int | None = None,
                       ahead: InferenceAhead | None = None) -> InferenceSummary:
    """`infer_outcomes` over the jobs touched since the last run only (the after-ingest step).

    The watermark (marks.outcomes_rowid) says which job rows are new; jobs_touched lists rows
    updated in place since (a running job that ended). `RemedyQueries.touched_frame` reads the
    touched jobs' users' jobs from their earliest touched submit time minus the window on, and
    of those only the groups that hold a failure, so the work is proportional to what the load
    brought, not to the store. The first run (no watermark) covers the whole store.

    `ahead` (an `InferenceAhead` started when the load's last batch was committed) has read
    and paired the same jobs on a connection of its own; its plan is used when the store still
    shows the same watermark, newest row and in-place updates it read (nothing has written
    jobs since), else the work is done here again. An error it raised is raised here."""
    q = store.remedies
    t0 = time.perf_counter()
    mark, hi = q.inference_mark()
    touched = q.touched_max()
    if hi <= mark and not touched:
        if ahead is not None:
            ahead.cancel()
        return InferenceSummary(seconds=time.perf_counter() - t0)
    got = ahead.result() if ahead is not None else None
    if got is not None and got.state == (mark, hi, touched):
        ahead.used = True
        out = InferenceSummary(jobs_scanned=got.scanned)
        if got.plan is not None:
            write_outcomes(store, got.plan, out)
    else:
        df = q.touched_frame(mark, hi, window_h * 3600)
        out = infer_outcomes(store, rules, window_h, now, df=df) if len(df) else InferenceSummary()
    q.set_inference_mark(hi, touched)
    out.seconds = time.perf_counter() - t0
    return out


@dataclass
class AheadResult:
    state: tuple[int, int, int]  # (watermark, max job rowid, max jobs_touched rid) it read
    scanned: int  # jobs in the frame it read
    plan: OutcomePlan | None  # None: nothing to pair
    seconds: float  # its own wall time


class InferenceAhead:
    """The read half of `infer_new_outcomes` on a thread and a read connection of its own.

    `start()` is meant for the moment a load's last batch is committed (run_ingest's
    `on_loaded`): while the loading connection links events, refreshes the graph and rollups
    and rebuilds the indexes a bulk load dropped (SQLite runs those with the GIL released),
    this thread reads the touched jobs (WAL: it sees the committed load) and pairs them. It
    writes nothing to the store (its temporary tables are its connection's own); the rows are
    written by `infer_new_outcomes` on the store's connection. A store in memory has no second
    connection: `start()` then does nothing and the work runs in `infer_new_outcomes`."""

    def __init__(self, path: str, rules: RuleBase, window_h: float, now: int | None = None,
                 ) -> None:
        self.path, self.rules, self.window_h, self.now = path, rules, window_h, now
        self._thread: threading.Thread | None = None
        self._db: Any = None
        self._cancelled = False
        self._lock = threading.Lock()
        self._result: AheadResult | None = None
        self._error: BaseException | None = None
        self.used = False  # whether infer_new_outcomes took its plan

    def start(self) -> None:
        if self.path == ":memory:" or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="jobmedic-inference-ahead",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from jobmedic.knowledge.db import Db
        from jobmedic.knowledge.remedies import RemedyQueries
        t0 = time.perf_counter()
        try:
            with self._lock:
                if self._cancelled:
                    return
                self._db = Db(self.path, migrate=False)
            q = RemedyQueries(self._db)
            mark, hi = q.inference_mark()
            touched = q.touched_max()
            plan, n = None, 0
            if hi > mark or touched:
                df = q.touched_frame(mark, hi, self.window_h * 3600)
                n = len(df)
                if n and not self._cancelled:
                    plan = plan_outcomes(df, self.rules, self.window_h, self.now)
            self._result = AheadResult((mark, hi, touched), n, plan, time.perf_counter() - t0)
        except BaseException as exc:  # noqa: BLE001 - raised again by result() in the caller
            self._error = exc
        finally:
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None

    def result(self) -> AheadResult | None:
        """Its result (None when it was never started); raises what the thread raised."""
        if self._thread is None:
            return None
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self) -> None:
        """Stop it (an ingest that failed or was interrupted) and wait for the thread."""
        with self._lock:
            self._cancelled = True
            if self._db is not None:
                self._db.conn.interrupt()
        if self._thread is not None:
            self._thread.join()


assert set(CHANGE_TITLES) == set(CHANGES)
