"""Artifacts whose metadata is bound to its content (issue 11, model artifacts): an edited
calibration, an emptied file list, a CURRENT pointing outside the model folder, a swapped model
of another kind or shape are each refused with a ModelError that names the kind and version,
never a server path."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.models import artifacts, registry
from jobmedic.settings import config_path
from jobmedic.tools import ToolContext, run_action
from tests.models.helpers import build, resign

LEVELS = {"moderate": 0.3, "high": 0.6, "critical": 0.8}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return build(tmp_path_factory.mktemp("signed"))


@pytest.fixture
def copy(trained, tmp_path):
    dst = tmp_path / "models"
    shutil.copytree(trained[1], dst)
    return dst


def _meta(models, kind):
    d = artifacts.current_dir(models, kind)
    return d, json.loads((d / "meta.json").read_text())


def _refused(models, kind, match):
    with pytest.raises(ModelError, match=match) as e:
        registry.load(models, kind)
    text = e.value.message + " " + (e.value.hint or "")
    assert kind in e.value.message and str(models) not in text and "/" not in e.value.message
    return e.value


def test_a_fresh_artifact_loads_and_is_signed(copy):
    _, meta = registry.load(copy, "failure")
    lines = (copy / "failure" / "CURRENT").read_text().splitlines()
    assert lines[0] == meta["version"]
    assert lines[1] == "sha256:" + artifacts.sha256(copy / "failure" / meta["version"] / "meta.json")


def test_editing_the_calibration_is_refused(copy):
    d, meta = _meta(copy, "failure")
    cal = meta["calibration"]
    assert cal["method"] in ("isotonic", "platt")
    if cal["method"] == "isotonic":
        cal["y"] = [1.0 for _ in cal["y"]]  # every job at maximum risk
    else:
        cal["b"] = 50.0
    (d / "meta.json").write_text(json.dumps(meta))
    err = _refused(copy, "failure", "manifest")
    assert meta["version"] in err.message


def test_an_empty_file_list_does_not_skip_the_check(copy):
    d, meta = _meta(copy, "failure")
    (d / "meta.json").write_text(json.dumps(meta | {"files": {}}))
    _refused(copy, "failure", "manifest")
    resign(copy, "failure")  # even with a matching manifest hash
    _refused(copy, "failure", "does not list model.ubj")


def test_a_malformed_calibration_is_refused_even_when_signed(copy):
    d, meta = _meta(copy, "failure")
    meta["calibration"] = {"method": "isotonic", "x": [0.5, 0.1], "y": [0.2, 7.0]}
    (d / "meta.json").write_text(json.dumps(meta))
    resign(copy, "failure")
    _refused(copy, "failure", "calibration")


@pytest.mark.parametrize("target", ["../runtime/{v}", "/tmp", "..", "v1/../../x", "", "CURRENT"])
def test_current_can_only_name_a_version_inside_the_folder(copy, target):
    v = artifacts.current_dir(copy, "runtime").name
    cur = copy / "failure" / "CURRENT"
    digest = cur.read_text().splitlines()[1]
    cur.write_text(target.format(v=v) + "\n" + digest + "\n")
    _refused(copy, "failure", "CURRENT|missing")


def test_a_version_folder_linked_out_is_refused(copy, tmp_path):
    d = artifacts.current_dir(copy, "failure")
    outside = tmp_path / "elsewhere"
    shutil.move(str(d), outside)
    os.symlink(outside, d)
    _refused(copy, "failure", "missing")


def test_a_format_1_pointer_without_a_manifest_hash_is_refused(copy):
    cur = copy / "failure" / "CURRENT"
    cur.write_text(cur.read_text().splitlines()[0] + "\n")
    _refused(copy, "failure", "manifest hash")


@pytest.mark.parametrize("into,src", [("failure", "runtime"), ("runtime", "memory"),
                                      ("memory", "failure")])
def test_a_swapped_model_of_another_kind_or_shape_is_a_model_error(copy, into, src):
    d, meta = _meta(copy, into)
    shutil.copy(artifacts.current_dir(copy, src) / "model.ubj", d / "model.ubj")
    meta["files"]["model.ubj"] = artifacts.sha256(d / "model.ubj")
    (d / "meta.json").write_text(json.dumps(meta))
    resign(copy, into)  # a consistent swap: every hash matches
    _refused(copy, into, "outputs|features")


def test_a_swapped_quantile_list_is_a_model_error(copy):
    d, meta = _meta(copy, "runtime")
    meta["alphas"], meta["conformal_shift"] = meta["alphas"][:3], meta["conformal_shift"][:3]
    (d / "meta.json").write_text(json.dumps(meta))
    resign(copy, "runtime")
    _refused(copy, "runtime", "quantiles")


def test_the_predict_action_answers_a_model_error_without_paths(trained, copy):
    db = trained[0]
    d, meta = _meta(copy, "runtime")
    shutil.copy(artifacts.current_dir(copy, "memory") / "model.ubj", d / "model.ubj")
    meta["files"]["model.ubj"] = artifacts.sha256(d / "model.ubj")
    (d / "meta.json").write_text(json.dumps(meta))
    resign(copy, "runtime")
    ctx = ToolContext(store=Store(db), taxonomy=Taxonomy.from_yaml(config_path("taxonomy.yaml")),
                      models_dir=copy, risk_levels=LEVELS)
    r = run_action({"action": "predict", "user": "user3", "req_cpus": 2}, ctx)
    assert r.status == "ok"  # the failure model is intact; the broken runtime model is named
    missing = r.data["missing_models"]
    assert [m["kind"] for m in missing] == ["runtime"] and meta["version"] in missing[0]["message"]
    assert str(copy) not in json.dumps(r.data)
    # a failure model that exists but is refused is an error, not a quiet "missing" (only a
    # failure model never trained lets the request models answer alone)
    (copy / "failure" / "CURRENT").write_text("../../etc\n")
    r = run_action({"action": "predict", "user": "user3"}, ctx)
    assert r.status == "error" and r.error.type == "model_error" and str(copy) not in r.error.message
    assert "failure" in r.error.message
