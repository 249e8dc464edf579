"""Training, evaluation and artifacts on a small synthetic store with tiny models."""
from __future__ import annotations

import json

import numpy as np
import pytest

from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.store import Store
from jobmedic.models import artifacts, registry, training
from tests.models.helpers import build, resign


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return build(tmp_path_factory.mktemp("train"))


def test_failure_model_beats_prior_and_is_calibrated(trained):
    db, models, cards = trained
    s = Store(db)
    until = cards["failure"]["window"]["until_epoch"]
    res = training.evaluate(s, "failure", str(models), until)
    m = res["metrics"]
    assert m["model"]["auroc"] > 0.6
    assert m["model"]["auprc"] > 1.25 * m["prior_rate"]["auprc"]
    assert m["model"]["ece"] < 0.1
    assert set(m) >= {"prior_rate", "user_failure_rate", "name_failure_rate"}
    assert "warning" not in res


def test_quantile_models_cover_and_recommend(trained):
    db, models, cards = trained
    s = Store(db)
    until = cards["runtime"]["window"]["until_epoch"]
    rt = training.evaluate(s, "runtime", str(models), until)["metrics"]
    assert rt["model"]["mae"] < rt["requested_time"]["mae"]
    assert abs(rt["model"]["coverage"]["q0.5"] - 0.5) < 0.12
    w = rt["walltime_recommendation"]
    assert w["killed_share"] < 0.15 and w["core_hours_saved_share"] > 0.2
    mem = training.evaluate(s, "memory", str(models), until)["metrics"]
    assert mem["recommendation"]["asymmetric_cost_gb_per_job"] < mem["user_request"]["asymmetric_cost_gb_per_job"]


def test_evaluating_inside_the_training_window_warns(trained):
    db, models, _cards = trained
    res = training.evaluate(Store(db), "failure", str(models), 0)
    assert "optimistic" in res["warning"]


def test_missing_model_says_how_to_train(tmp_path):
    with pytest.raises(ModelError) as e:
        registry.load(tmp_path, "failure")
    assert "jobmedic train failure" in e.value.hint


def _copy_current(models, tmp_path):
    import shutil

    dst = tmp_path / "m"
    shutil.copytree(models, dst)
    return dst, artifacts.current_dir(dst, "failure")


def test_tampered_model_file_is_refused(trained, tmp_path):
    _, models, _ = trained
    dst, d = _copy_current(models, tmp_path)
    with open(d / "model.ubj", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01")
    with pytest.raises(ModelError, match="sha256"):
        registry.load(dst, "failure")


def test_corrupt_meta_and_foreign_version_are_refused(trained, tmp_path):
    _, models, _ = trained
    dst, d = _copy_current(models, tmp_path)
    meta = json.loads((d / "meta.json").read_text())
    (d / "meta.json").write_text(json.dumps(meta | {"format_version": 99}))
    with pytest.raises(ModelError, match="format 99|format_version|artifact format"):
        registry.load(dst, "failure")
    (d / "meta.json").write_text(json.dumps(meta | {"feature_set_version": 0}))
    with pytest.raises(ModelError, match="stale"):
        registry.load(dst, "failure")
    (d / "meta.json").write_text("{not json")
    with pytest.raises(ModelError, match="corrupt"):
        registry.load(dst, "failure")


def test_garbage_model_with_matching_hash_is_refused(trained, tmp_path):
    _, models, _ = trained
    dst, d = _copy_current(models, tmp_path)
    (d / "model.ubj").write_bytes(b"not a model at all")
    meta = json.loads((d / "meta.json").read_text())
    meta["files"]["model.ubj"] = artifacts.sha256(d / "model.ubj")
    (d / "meta.json").write_text(json.dumps(meta))
    resign(dst, "failure")  # the manifest hash matches too
    with pytest.raises(ModelError, match="cannot read"):
        registry.load(dst, "failure")


def test_artifacts_hold_no_pickle(trained):
    _, models, cards = trained
    files = [p for p in models.rglob("*") if p.is_file()]
    for kind in cards:  # every trained kind left an artifact to check
        d = artifacts.current_dir(models, kind)
        assert (d / "meta.json").is_file(), kind
        assert any(p.parent == d and p.suffix != ".json" for p in files), kind
    for p in files:
        assert p.suffix in (".ubj", ".json", ".pt", ".npz", "") and not p.read_bytes().startswith(b"\x80")
        if p.suffix == ".npz":  # plain arrays: readable without pickle
            with np.load(p, allow_pickle=False) as z:
                assert all(z[k].dtype != object for k in z.files)


def test_tuning_uses_a_validation_slice_and_is_recorded(tmp_path):
    db, models, _ = build(tmp_path, kinds=())
    s = Store(db)
    card = training.train(s, "failure", str(models), tune=True, trials=3, time_budget=30,
                          params={"num_boost_round": 20})
    assert card["tuning"]["trials"] == 3 and "max_depth" in card["tuning"]["params"]
    meta = json.loads((artifacts.current_dir(models, "failure") / "meta.json").read_text())
    assert meta["params"] == card["tuning"]["params"]


def test_training_refreshes_the_history_summary(trained):
    db, _, _ = trained
    s = Store(db)
    assert s.entity_stats_as_of() is not None
    assert np.isfinite(s.entity_stats_as_of())
