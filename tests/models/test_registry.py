"""The MODELS registry: every kind implements the one ModelKind contract, and training,
loading, scoring and cards go through it with no branch on the kind's name."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.store import Store
from jobmedic.models import artifacts, registry, training
from jobmedic.models.base import ModelKind
from jobmedic.models.cards import card_markdown
from tests.models.helpers import build

MODELS_SRC = Path(registry.__file__).parent


def test_every_kind_implements_the_contract():
    assert list(registry.MODELS) == ["failure", "runtime", "memory", "gnn", "early"]
    for name, cls in registry.MODELS.items():
        assert issubclass(cls, ModelKind) and cls.name == name and not inspect.isabstract(cls)
        assert cls.role in ("risk", "request", "research") and cls.FILES
        assert cls.compare_with in (None, *registry.MODELS)
    assert [k.name for k in registry.of_role("request")] == ["runtime", "memory"]
    assert artifacts.KINDS == tuple(registry.MODELS)  # `jobmedic models` lists every kind
    with pytest.raises(ModelError, match="no model kind 'nope'") as e:
        registry.kind("nope")
    assert "failure" in e.value.hint


def test_no_module_branches_on_the_kind_name():
    for p in MODELS_SRC.glob("*.py"):
        code = "\n".join(line for line in p.read_text().splitlines()
                         if not line.lstrip().startswith(("#", '"', "`")))
        assert not re.search(r"kind\s*(==|!=|in\s*\()", code), p.name


def test_the_gnn_module_needs_neither_training_nor_registry():
    src = (MODELS_SRC / "gnn.py").read_text() + (MODELS_SRC / "gnn_graph.py").read_text()
    assert not re.search(r"import (registry|training)|models\.(registry|training)", src)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return build(tmp_path_factory.mktemp("registry"))


@pytest.mark.parametrize("name", ["failure", "runtime", "memory"])
def test_each_kind_round_trips_through_its_artifact(trained, name):
    db, models, cards = trained
    s = Store(db)
    frame = training.load(s)
    cls = registry.MODELS[name]
    model, meta = registry.load(models, name)
    assert isinstance(model, cls) and meta["kind"] == name
    rows = np.arange(50)
    out = model.predict(model.inputs(frame, rows))
    assert len(out) == 50 and np.isfinite(out).all()
    mask, y = cls.labels(frame[0])
    assert mask.dtype == bool and len(y) == len(frame[0])
    res = training.evaluate(s, name, str(models), cards[name]["window"]["until_epoch"], frame=frame)
    md = card_markdown(res)
    assert md.startswith(f"## {name} model {meta['version']}") and "|" in md


def test_a_refused_artifact_is_not_reread_on_every_call(trained, tmp_path, monkeypatch):
    import shutil

    from tests.models.helpers import resign

    _, models, _ = trained
    dst = tmp_path / "m"
    shutil.copytree(models, dst)
    d = artifacts.current_dir(dst, "failure")
    meta = (d / "meta.json").read_text()
    (d / "meta.json").write_text(meta.replace('"calibration"', '"calibration_gone"', 1))
    resign(dst, "failure")
    reads = []
    real = artifacts.load_meta
    monkeypatch.setattr(artifacts, "load_meta", lambda *a, **k: reads.append(1) or real(*a, **k))
    for _ in range(3):
        with pytest.raises(ModelError, match="calibration"):
            registry.load(dst, "failure")
    assert len(reads) == 1  # refused once, then answered from memory
    monkeypatch.setattr(registry, "REFUSAL_TTL_S", 0.0)
    with pytest.raises(ModelError):
        registry.load(dst, "failure")
    assert len(reads) == 2  # after the TTL the files are read again
