"""The JOBMEDIC_* environment source (jobmedic.settings.env_values): jobmedic's own copy of
pydantic-settings' environment rules for the Settings fields, so a command's start does not
import pydantic-settings (issue 16 item 6). Each rule is pinned with its expected value; where
pydantic-settings is installed (the dev extra) every case is also compared with its
EnvSettingsSource and with a BaseSettings class of the same fields and sources."""
from __future__ import annotations

import json
import os

import pytest

from jobmedic.settings import ConfigError, Settings, _yaml_values, env_values, load_settings

TOKENS = json.dumps([{"sha256": "ab" * 32, "projects": ["a"], "name": "ci"}])

#: (environment, what env_values must give) - the rules, one case each.
CASES: list[tuple[dict[str, str], dict]] = [
    ({}, {}),
    ({"JOBMEDIC_CLUSTER": "c1", "JOBMEDIC_DB": "/x.db"}, {"cluster": "c1", "db": "/x.db"}),
    ({"jobmedic_cluster": "lower"}, {"cluster": "lower"}),  # names in any case
    ({"JOBMEDIC_DB": ""}, {"db": ""}),  # empty is a value
    ({"JOBMEDIC_AS_OF": "2024-05-03"}, {"as_of": "2024-05-03"}),  # str | None: plain text
    ({"JOBMEDIC_ALLOWED_PROJECTS": '["a","b"]'}, {"allowed_projects": ["a", "b"]}),
    ({"JOBMEDIC_ALLOWED_PROJECTS": "null"}, {}),  # JSON null is "not set" (as before)
    # a union holding a list keeps a value that is not JSON (pydantic then rejects it)
    ({"JOBMEDIC_ALLOWED_PROJECTS": "a,b"}, {"allowed_projects": "a,b"}),
    ({"JOBMEDIC_SERVER__PORT": "9000"}, {"server": {"port": "9000"}}),
    ({"JOBMEDIC_SERVER__TOKENS": TOKENS}, {"server": {"tokens": json.loads(TOKENS)}}),
    ({"JOBMEDIC_SERVER": '{"PORT": 1, "host": "h"}'}, {"server": {"port": 1, "host": "h"}}),
    # a JSON object and nested variables for the same field are deep-merged
    ({"JOBMEDIC_SERVER": '{"port": 1, "host": "h"}', "JOBMEDIC_SERVER__HOST": "h2"},
     {"server": {"port": 1, "host": "h2"}}),
    ({"JOBMEDIC_ANALYZERS__HOTSPOTS__FDR": "0.1"}, {"analyzers": {"hotspots": {"fdr": "0.1"}}}),
    ({"JOBMEDIC_ANALYZERS__HOTSPOTS": '{"fdr": 0.2}'}, {"analyzers": {"hotspots": {"fdr": 0.2}}}),
    ({"JOBMEDIC_ANALYZERS": '{"blame": {"min_jobs": 3}}'},
     {"analyzers": {"blame": {"min_jobs": 3}}}),
    ({"JOBMEDIC_RETRY_BUDGET__SLURM": "0.05"}, {"retry_budget": {"slurm": "0.05"}}),
    ({"JOBMEDIC_RETRY_BUDGET": '{"*": 0.1}'}, {"retry_budget": {"*": 0.1}}),
    ({"JOBMEDIC_LIVE__ALERTS__X": '{"a": 1}'}, {"live": {"alerts": {"x": '{"a": 1}'}}}),
    ({"JOBMEDIC_LIVE__SMTP": '{"host": "m", "port": 25}'},
     {"live": {"smtp": {"host": "m", "port": 25}}}),
    ({"JOBMEDIC_LIVE__SINKS": '["slack"]', "JOBMEDIC_LIVE__READ_OUTPUT": "false"},
     {"live": {"sinks": ["slack"], "read_output": "false"}}),
    ({"JOBMEDIC_INGEST__BATCH_SIZE": "500", "JOBMEDIC_MODELS__DIR": "/m"},
     {"ingest": {"batch_size": "500"}, "models": {"dir": "/m"}}),
    ({"JOBMEDIC_SERVER__NOPE": "1"}, {"server": {"nope": "1"}}),  # dropped by validation
    ({"JOBMEDIC_NOPE": "1", "OTHER_CLUSTER": "x"}, {}),
]

#: Values that are not JSON where JSON is required: a ConfigError naming the variable.
BAD = [{"JOBMEDIC_SERVER": "port=1"}, {"JOBMEDIC_SERVER__TOKENS": "abc"},
       {"JOBMEDIC_ANALYZERS": "{"}, {"JOBMEDIC_LIVE__SINKS": "slack"}, {"JOBMEDIC_INGEST": ""}]


@pytest.mark.parametrize(("env", "want"), CASES)
def test_environment_rules(env, want):
    assert env_values(Settings, env) == want


@pytest.mark.parametrize("env", BAD)
def test_json_that_does_not_parse_is_a_config_error(env, monkeypatch):
    with pytest.raises(ConfigError, match=next(iter(env))):
        env_values(Settings, env)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match="not valid JSON"):  # not an internal error
        load_settings()


def test_the_environment_reaches_the_settings(monkeypatch):
    monkeypatch.setenv("JOBMEDIC_SERVER__PORT", "9000")
    monkeypatch.setenv("JOBMEDIC_SERVER__TOKENS", TOKENS)
    monkeypatch.setenv("JOBMEDIC_ANALYZERS__HOTSPOTS__FDR", "0.1")
    monkeypatch.setenv("JOBMEDIC_RETRY_BUDGET__SLURM", "0.05")
    s = load_settings()
    assert s.server.port == 9000 and s.server.tokens[0].projects == ["a"]
    assert s.server.host == "127.0.0.1"  # the other keys of the file's server: stay
    assert s.analyzers["hotspots"]["fdr"] == "0.1"  # free-form mappings keep strings
    assert s.analyzers.keys() > {"hotspots"}  # the packaged analyzers settings stay merged
    assert s.retry_budget == {"*": 0.02, "slurm": 0.05}
    monkeypatch.setenv("JOBMEDIC_SERVER__PORT", "not-a-port")
    with pytest.raises(ConfigError, match="server.port"):
        load_settings()


def test_flags_over_environment_over_files(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("server:\n  port: 1002\n  host: 10.0.0.1\n")
    monkeypatch.setenv("JOBMEDIC_SERVER", '{"port": 1003}')
    s = load_settings(str(cfg))
    assert (s.server.port, s.server.host) == (1003, "10.0.0.1")  # merged key by key
    s = Settings(server={"host": "flag"})
    assert (s.server.port, s.server.host) == (1003, "flag")
    assert Settings(CLUSTER="upper").cluster == "upper"  # keyword names in any case


# -- the same answers as pydantic-settings, where it is installed ---------------------------------
def _reference():
    ps = pytest.importorskip("pydantic_settings")
    from pydantic import create_model

    class Base(ps.BaseSettings):
        model_config = ps.SettingsConfigDict(env_prefix="JOBMEDIC_", env_nested_delimiter="__",
                                             extra="ignore")

        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                       dotenv_settings, file_secret_settings):
            return init_settings, env_settings, lambda: _yaml_values()

    fields = {n: (f.annotation, f) for n, f in Settings.model_fields.items()}
    return ps, create_model("Reference", __base__=Base, **fields)


def _environ(monkeypatch, env):
    for k in [k for k in os.environ if k.upper().startswith("JOBMEDIC_")]:
        monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)


@pytest.mark.parametrize(("env", "want"), CASES)
def test_same_as_pydantic_settings(env, want, monkeypatch):
    ps, ref = _reference()
    _environ(monkeypatch, env)
    assert env_values(Settings, os.environ) == ps.EnvSettingsSource(ref)()
    try:
        expected = ref(cluster="flag").model_dump()
    except Exception as exc:  # noqa: BLE001 - a validation error there must be one here too
        with pytest.raises(type(exc)):
            Settings(cluster="flag")
    else:
        assert Settings(cluster="flag").model_dump() == expected


@pytest.mark.parametrize("env", BAD)
def test_pydantic_settings_rejects_the_same_values(env, monkeypatch):
    ps, ref = _reference()
    _environ(monkeypatch, env)
    with pytest.raises(ps.SettingsError):
        ps.EnvSettingsSource(ref)()
