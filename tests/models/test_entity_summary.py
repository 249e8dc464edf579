"""The per-entity summary (knowledge/entity_summary.py) serves the SAME history features as the
leakage-safe online features (models/features.build_features) at "now": built at once,
maintained incrementally over several loads, rebuilt after a late arrival, and bypassed when
it is not exact (jobs ended since its watermark, a scoped entity across projects)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobmedic.knowledge import entity_summary
from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.store import Store
from jobmedic.models.features import FEATURES, build_features, spec_features
from jobmedic.models.runtime_features import recent_block, recent_specs
from jobmedic.models.summary_features import summary_features
from jobmedic.models.summary_recent import recent_block as summary_recent_block
from jobmedic.models.synthetic import synthetic_jobs

C = {c: i for i, c in enumerate(JOB_COLUMNS)}


def _jobs(n: int = 3000, seed: int = 4) -> list[tuple]:
    """Synthetic jobs with the awkward cases: missing runtime / peak / project, jobs still
    running, equal end times, a few projects per user."""
    rng = np.random.default_rng(seed)
    rows = [list(r) for r in synthetic_jobs(n, seed=seed, n_users=25, names_per_user=4, days=20)]
    for r in rows:
        x = rng.random()
        if x < 0.05:
            r[C["elapsed_s"]] = None
        elif x < 0.10:
            r[C["max_rss_mb"]] = None
        elif x < 0.13:
            r[C["project"]] = None
        elif x < 0.16:
            r[C["state"]], r[C["end_time"]] = "running", None
        elif x < 0.25:
            r[C["end_time"]] = r[C["end_time"]] // 600 * 600  # ties
        if rng.random() < 0.3:
            r[C["project"]] = f"proj{rng.integers(0, 3)}" if r[C["project"]] else None
    return [tuple(r) for r in rows]


def _specs(rows: list[tuple], now: int, k: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pick = [rows[i] for i in rng.integers(0, len(rows), k)]
    q = pd.DataFrame({c: [r[C[c]] for r in pick] for c in ("user", "name", "project", "queue",
                                                            "qos", "image", "req_cpus",
                                                            "timelimit_s", "req_gpus",
                                                            "req_mem_mb", "n_nodes")})
    q.loc[::7, "user"] = "nobody"  # cold start
    q.loc[::11, "name"] = None
    q["submit_time"] = float(now)
    for c in ("req_cpus", "timelimit_s", "req_gpus", "req_mem_mb", "n_nodes"):
        q[c] = pd.to_numeric(q[c]).astype("float64")
    return q


def _reference(s: Store, q: pd.DataFrame) -> np.ndarray:
    return build_features(s.jobs_frame(), q)[FEATURES].to_numpy()


def _recent_equal(s: Store, q: pd.DataFrame) -> None:
    """The runtime model's recent-runtime block from the summary equals the as-of computation
    over the jobs frame and the per-spec indexed lookups."""
    fast = summary_recent_block(s, q)
    assert fast is not None
    ref = recent_block(s.jobs_frame(), q)
    assert np.isfinite(ref).any() and np.isnan(ref).any()  # histories and cold starts
    _close(fast, ref)
    _close(fast, recent_specs(s, q))


def _close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True)


def _now(s: Store) -> int:
    return int(s.conn.execute("SELECT MAX(end_time) FROM jobs").fetchone()[0]) + 60


def test_summary_features_equal_the_online_features(tmp_path):
    s = Store(tmp_path / "s.db")
    rows = _jobs()
    s.upsert_jobs(rows)
    assert entity_summary.refresh(s)["mode"] == "none"  # never built on an ingest alone
    assert entity_summary.refresh(s, build=True)["mode"] == "rebuild"
    now = _now(s)
    q = _specs(rows, now)
    ref = _reference(s, q)
    _close(summary_features(s, q).to_numpy(), ref)
    _recent_equal(s, q)
    for i in range(0, len(q), 37):  # one job: the predict path, from the summary
        spec = {k: v for k, v in q.iloc[i].items() if k != "submit_time" and pd.notna(v)}
        x, _ = spec_features(s, spec, now)
        _close(x, ref[i])


def test_incremental_loads_and_a_late_arrival(tmp_path):
    s = Store(tmp_path / "s.db")
    rows = _jobs(seed=5)
    order = np.argsort([r[C["end_time"]] or 0 for r in rows], kind="stable")
    first, second, third = (order[:1500], order[1500:2300], order[2300:])
    s.upsert_jobs([rows[i] for i in first])
    entity_summary.refresh(s, build=True)
    s.upsert_jobs([rows[i] for i in second])
    now = _now(s)
    assert not entity_summary.fresh_at(s, now)  # jobs ended since: the summary is bypassed
    q = _specs([rows[i] for i in np.concatenate([first, second])], now, seed=1)
    assert summary_features(s, q) is None
    assert summary_recent_block(s, q) is None
    x, _ = spec_features(s, {"user": q["user"].iloc[1], "name": q["name"].iloc[1]}, now)
    assert entity_summary.refresh(s)["mode"] == "incremental"
    _close(summary_features(s, q).to_numpy(), _reference(s, q))
    _recent_equal(s, q)
    y, _ = spec_features(s, {"user": q["user"].iloc[1], "name": q["name"].iloc[1]}, now)
    _close(x, y)
    s.upsert_jobs([rows[i] for i in third])
    assert entity_summary.refresh(s)["mode"] == "incremental"
    q = _specs(rows, _now(s), seed=2)
    _close(summary_features(s, q).to_numpy(), _reference(s, q))
    _recent_equal(s, q)
    # a late arrival: a job that ended long before the watermark
    late = list(next(rows[i] for i in first if rows[i][C["end_time"]] is not None))
    late[C["job_id"]], late[C["state"]] = "late-1", "failed"
    s.upsert_jobs([tuple(late)])
    assert entity_summary.refresh(s)["mode"] == "rebuild"
    _close(summary_features(s, q).to_numpy(), _reference(s, q))
    _recent_equal(s, q)


@pytest.mark.parametrize("scope", [["proj1"], ["proj0", "proj2"]])
def test_scoped_predictions_read_the_same_history(tmp_path, scope):
    s = Store(tmp_path / "s.db")
    rows = _jobs(seed=6)
    s.upsert_jobs(rows)
    now = _now(s)
    q = _specs(rows, now, k=60, seed=3)
    before = [spec_features(s, {k: v for k, v in q.iloc[i].items() if pd.notna(v)}, now, scope)[0]
              for i in range(len(q))]  # no summary: indexed lookups of the jobs
    entity_summary.refresh(s, build=True)
    ref = build_features(s.jobs_frame(scope), q)[FEATURES].to_numpy()
    for i in range(len(q)):
        x, _ = spec_features(s, {k: v for k, v in q.iloc[i].items() if pd.notna(v)}, now, scope)
        _close(x, before[i])
        _close(x, ref[i])


def test_the_ingest_hook_keeps_the_summary_current(tmp_path):
    from jobmedic.app import App, after_ingest
    from jobmedic.settings import load_settings

    s = Store(tmp_path / "s.db")
    rows = _jobs(seed=7)
    s.upsert_jobs(rows[:2000])
    app = App(load_settings(db=str(tmp_path / "s.db")), store=s)
    after_ingest(app, s)
    assert entity_summary.watermark(s) is None  # an ingest alone builds none
    entity_summary.refresh(s, build=True)
    s.upsert_jobs(rows[2000:])
    now = _now(s)
    assert not entity_summary.fresh_at(s, now)
    after_ingest(app, s)
    assert entity_summary.fresh_at(s, now)
    q = _specs(rows, now, seed=4)
    _close(summary_features(s, q).to_numpy(), _reference(s, q))
    _recent_equal(s, q)


def test_incremental_recent_runs_with_small_loads(tmp_path):
    """Loads of a few jobs each (fewer than RECENT_K per entity): the recent runs are merged
    newest first onto the stored ones, and still equal the as-of computation."""
    s = Store(tmp_path / "s.db")
    rows = _jobs(n=1200, seed=8)
    order = np.argsort([r[C["end_time"]] or 0 for r in rows], kind="stable")
    s.upsert_jobs([rows[i] for i in order[:600]])
    entity_summary.refresh(s, build=True)
    for part in np.array_split(order[600:], 6):
        s.upsert_jobs([rows[i] for i in part])
        assert entity_summary.refresh(s)["mode"] == "incremental"
    _recent_equal(s, _specs(rows, _now(s), seed=9))


def test_a_summary_from_before_the_recent_runs_is_rebuilt(tmp_path):
    s = Store(tmp_path / "s.db")
    rows = _jobs(n=800, seed=10)
    s.upsert_jobs(rows)
    entity_summary.refresh(s, build=True)
    with s.transaction() as conn:  # the table as an older jobmedic wrote it
        conn.execute("ALTER TABLE entity_summary DROP COLUMN recent_tl")
    q = _specs(rows, _now(s), seed=11)
    assert summary_recent_block(s, q) is None  # cannot serve the runs: the caller reads the jobs
    _close(summary_features(s, q).to_numpy(), _reference(s, q))  # the history still served
    assert entity_summary.refresh(s)["mode"] == "rebuild"
    _recent_equal(s, q)


def test_a_rebuild_in_small_chunks_equals_one_in_a_single_chunk(tmp_path, monkeypatch):
    """A rebuild reads the history `CHUNK` jobs at a time (bounded memory); chunk edges fall
    inside runs of equal end times here, and the rows are those of a one-chunk rebuild."""
    rows = _jobs(seed=7)
    stores = []
    for name, chunk in (("one", 10**9), ("small", 97)):
        monkeypatch.setattr(entity_summary, "CHUNK", chunk)
        s = Store(tmp_path / f"{name}.db")
        s.upsert_jobs(rows)
        got = entity_summary.refresh(s, build=True)
        assert got["mode"] == "rebuild" and got["jobs"] > 2000
        stores.append(s)
    sql = (f"SELECT {', '.join(entity_summary.ALL_COLUMNS)} FROM entity_summary "
           "ORDER BY kind, value, agg, pkey")
    one, small = (pd.DataFrame(s.conn.execute(sql).fetchall()) for s in stores)
    pd.testing.assert_frame_equal(one, small, check_exact=False, rtol=1e-12)
    q = _specs(rows, _now(stores[1]), seed=3)
    _close(summary_features(stores[1], q).to_numpy(), _reference(stores[1], q))
    _recent_equal(stores[1], q)
