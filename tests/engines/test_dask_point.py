"""`train runtime --engine dask` and the runtime model's point (models/runtime_point.py): the
boosting rounds get the fit slice as a Dask array (sliced to the booster's columns on the
workers, never gathered on the driver); the exact repeat is computed on the workers in the
shape pass (dask_parquet._kind_rows, runtime_point.repeat_asof: repeat_bulk's rule, ties
included), gathered with the calibration slice, and the artifact has the point stack that the
single-machine code fits for the same booster on the whole history (coefficients, n, served
points)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from jobmedic.engines import dask_engine, dask_parquet, dask_train
from jobmedic.knowledge.store import Store
from jobmedic.models import registry, runtime_point, training
from jobmedic.models.features import time_bounds
from jobmedic.models.synthetic import fill_store


def _cal_rows(df, mask, until):
    """The single-machine calibration slice (training.train's split)."""
    sub, end = df["submit_time"].to_numpy(), df["end_time"].to_numpy()
    lab = np.flatnonzero(mask & (sub < until) & (end < until))
    order = lab[np.argsort(sub[lab], kind="stable")]
    return order[training.calibration_cut(len(order), 0.2):]


def test_dask_runtime_fits_on_a_dask_array_and_fits_the_local_point_stack(client, tmp_path,
                                                                          monkeypatch):
    import dask.array as da

    seen: list[tuple[type, tuple]] = []
    real = dask_engine.dask_trainer

    def recording(*a, **kw):
        trainer = real(*a, **kw)

        def run(params, X, y, rounds):
            seen.append((type(X), tuple(X.shape)))
            return trainer(params, X, y, rounds)
        run.attempts = trainer.attempts  # type: ignore[attr-defined]
        return run

    monkeypatch.setattr(dask_engine, "dask_trainer", recording)
    s = Store(":memory:")
    fill_store(s, 2000, seed=9, n_users=8)  # enough calibration jobs with a repeat (>= 200)
    d = str(tmp_path / "d")
    card = dask_train.train(s, "runtime", d, client, tmp_path / "pq", npartitions=2,
                            params={"num_boost_round": 8})
    # the booster: a Dask array of its own columns (the repeat is not one of them)
    assert seen and all(issubclass(t, da.Array) for t, _ in seen), seen
    assert all(shape[1] == runtime_point._WIDTH for _, shape in seen)
    assert all(shape[0] == card["counts"]["fit"] for _, shape in seen)
    model, meta = registry.load(d, "runtime")
    assert meta["point_stack"] is not None and "point_stack_reason" not in meta
    assert model.uses_repeat()
    # the stack the single-machine code fits for this booster from the whole history's inputs
    # (runtime_point.repeat_bulk for the repeat): the same jobs, the same coefficients
    fr = training.load(s)
    mask, y = model.labels(fr[0])
    cal_i = _cal_rows(fr[0], mask, card["window"]["until_epoch"])
    assert len(cal_i) == card["counts"]["calibration"]
    local, _ = registry.load(d, "runtime")
    Xc = local.inputs(fr, cal_i)
    assert Xc.shape[1] == runtime_point._WIDTH + 1
    local.calibrate(Xc, y[cal_i])
    assert local.stack_ is not None and local.stack_["n"] == meta["point_stack"]["n"] >= 200
    np.testing.assert_allclose(meta["point_stack"]["coef"], local.stack_["coef"], rtol=1e-6)
    # the served points agree (held-out jobs; most have a repeat, so the stack serves them)
    held = np.flatnonzero(fr[0]["submit_time"].to_numpy() >= card["window"]["until_epoch"])
    Xh = model.inputs(fr, held)
    assert np.isfinite(Xh[:, runtime_point._WIDTH]).mean() > 0.5
    np.testing.assert_allclose(model.point(Xh), local.point(Xh), rtol=1e-6)
    # local training of the same data fits its stack on as many jobs (its booster differs:
    # xgboost.dask over two workers vs one process, so its coefficients are close, not equal)
    single = training.train(s, "runtime", str(tmp_path / "s"), params={"num_boost_round": 8})
    _, smeta = registry.load(str(tmp_path / "s"), "runtime")
    assert smeta["point_stack"]["n"] == meta["point_stack"]["n"]
    assert single["counts"] == card["counts"]


def test_worker_shape_pass_gives_repeat_bulk_ties_and_all():
    """dask_parquet._kind_rows (one shuffled partition of the shape pass) gives each job the
    repeat of repeat_bulk: completed jobs only, ended strictly before the submit, ties in end
    time by row order; rows arrive out of row order, as after a shuffle."""
    t = 1_600_000_000
    rows = [  # (user, cpus, limit, state, submit, end, elapsed)
        ("a", 4, 3600, "completed", t, t + 100, 100.0),
        ("a", 4, 3600, "completed", t + 1, t + 100, 99.0),  # tie in end time: the later row
        ("a", 4, 3600, "failed", t + 2, t + 150, 148.0),  # not completed: never the repeat
        ("a", 4, 3600, "completed", t + 100, t + 300, 200.0),  # submit == an end: not before
        ("a", 4, 3600, "completed", t + 101, None, np.nan),  # no end time
        ("a", 4, 3600, "timeout", t + 400, t + 4000, 3600.0),
        ("a", 8, 3600, "completed", t + 500, t + 600, 100.0),  # another shape
        ("b", 4, 3600, "completed", t + 50, t + 60, 10.0),
        ("a", 4, 3600, "completed", t + 5000, t + 5010, 10.0),
    ]
    df = dask_parquet._typed(pd.DataFrame(rows, columns=[
        "user", "req_cpus", "timelimit_s", "state", "submit_time", "end_time", "elapsed_s"]
        ).assign(**{dask_parquet.ROW: np.arange(len(rows))}))  # jobs_frame's columns and dtypes
    want = runtime_point.repeat_bulk(df)[:, 0]
    np.testing.assert_array_equal(
        want, [np.nan, np.nan, np.nan, np.nan, 99.0, 200.0, np.nan, np.nan, 200.0])
    part = dask_parquet._base(df)
    cols = ["shape", dask_parquet.ROW, *dask_parquet.NEEDED, "timelimit_s"]
    shuffled = part[part["shape"].notna()][cols].iloc[::-1]
    got = dask_parquet._kind_rows(shuffled, "shape", *time_bounds(t - 10, t + 6000), True)
    got = got.sort_values(dask_parquet.ROW)
    np.testing.assert_array_equal(got[runtime_point.REPEAT[0]].to_numpy(), want)
    # without the runtime model's inputs the pass adds no repeat
    plain = dask_parquet._kind_rows(shuffled, "shape", *time_bounds(t - 10, t + 6000))
    assert runtime_point.REPEAT[0] not in plain
