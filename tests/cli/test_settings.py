"""Where settings come from (packaged defaults < $XDG_CONFIG_HOME/jobmedic/jobmedic.yaml <
--config < JOBMEDIC_* < flags), that loading them never writes os.environ, and where a store's
models live (beside the store unless models.dir says otherwise)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobmedic.app import App, build_tool_context, load_taxonomy
from jobmedic.main import app
from jobmedic.settings import ConfigError, config_text, load_settings


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    home = tmp_path / "xdg"
    (home / "jobmedic").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home / "jobmedic" / "jobmedic.yaml"


def test_defaults_are_package_data():
    assert "analyzers:" in config_text("jobmedic.yaml")
    s = load_settings()
    assert s.server.port == 8765 and s.analyzers  # from the packaged jobmedic.yaml


def test_precedence(tmp_path, xdg, monkeypatch):
    xdg.write_text("cluster: from-xdg\nserver:\n  port: 1001\n  host: 10.0.0.1\n")
    assert load_settings().cluster == "from-xdg"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cluster: from-config\nserver:\n  port: 1002\n")
    s = load_settings(str(cfg))
    assert (s.cluster, s.server.port, s.server.host) == ("from-config", 1002, "10.0.0.1")
    monkeypatch.setenv("JOBMEDIC_CLUSTER", "from-env")
    assert load_settings(str(cfg)).cluster == "from-env"
    assert load_settings(str(cfg), cluster="from-flag").cluster == "from-flag"


def test_loading_never_writes_the_environment(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cluster: c1\n")
    before = dict(os.environ)
    assert load_settings(str(cfg)).cluster == "c1"
    assert dict(os.environ) == before
    assert load_settings().cluster == "default"  # the explicit file is not remembered


def test_bad_user_file_is_an_error(xdg):
    xdg.write_text("{{{{")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings()


def test_models_live_beside_the_store(tmp_path):
    s = load_settings(db=str(tmp_path / "a.db"))
    assert s.models_dir == tmp_path / "a.db.models"
    other = load_settings(db=str(tmp_path / "b.db"))
    assert other.models_dir != s.models_dir
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"models:\n  dir: {tmp_path / 'shared-models'}\n")
    assert load_settings(str(cfg), db=str(tmp_path / "a.db")).models_dir == tmp_path / "shared-models"
    assert load_settings(db=":memory:").models_dir is None


def test_tool_context_carries_the_stores_models(tmp_path):
    a = App.open(db=str(tmp_path / "a.db"))
    try:
        assert a.tool_context().models_dir == tmp_path / "a.db.models"
    finally:
        a.close()
    mem = App.open(db=":memory:")
    assert mem.tool_context().models_dir is None
    mem.close()
    from jobmedic.knowledge.store import Store

    with Store(":memory:") as st:
        assert build_tool_context(load_settings(), st, load_taxonomy(), None).models_dir is None


def test_models_command_says_where(tmp_path):
    db = tmp_path / "x.db"
    r = CliRunner().invoke(app, ["--db", str(db), "models"])
    assert r.exit_code == 0
    assert f"models folder: {Path(str(db) + '.models')}" in r.output
