"""`train runtime --engine dask` and the runtime model's point (models/runtime_point.py): the
boosting rounds get the fit slice as a Dask array (sliced to the booster's columns on the
workers, never gathered on the driver), and the artifact has no point stack, with the reason in
its meta (the Dask engine's calibration inputs carry no repeat column), so it serves the blend."""
from __future__ import annotations

import numpy as np

from jobmedic.engines import dask_engine, dask_train
from jobmedic.knowledge.store import Store
from jobmedic.models import registry, runtime_point
from jobmedic.models.synthetic import fill_store


def test_dask_runtime_fits_on_a_dask_array_and_says_why_it_has_no_stack(client, tmp_path,
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
    fill_store(s, 900, seed=9, n_users=10)
    d = str(tmp_path / "d")
    card = dask_train.train(s, "runtime", d, client, tmp_path / "pq", npartitions=2,
                            params={"num_boost_round": 8})
    assert seen and all(issubclass(t, da.Array) for t, _ in seen), seen
    assert all(shape[1] == runtime_point._WIDTH for _, shape in seen)
    assert all(shape[0] == card["counts"]["fit"] for _, shape in seen)
    model, meta = registry.load(d, "runtime")
    assert meta["point_stack"] is None and model.stack_ is None
    assert meta["point_stack_reason"] == runtime_point.NO_REPEAT
    # so it serves the blend, and its spec paths skip the repeat lookup
    assert not model.uses_repeat()
    X = np.full((3, runtime_point._WIDTH + 1), np.nan)
    raw = model._raw(X)
    np.testing.assert_array_equal(model.point(X), runtime_point.blend(
        raw[:, model._mid], X[:, runtime_point._RATIO]))
