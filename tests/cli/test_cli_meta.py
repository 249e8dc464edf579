"""Meta-tests in the manner of sqlite-utils: every command has help, and is documented."""
from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from jobmedic.main import app, build


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        path = prefix + (name,)
        yield path, cmd
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, path)


ALL = list(_commands(build()))


@pytest.mark.parametrize("path,cmd", ALL, ids=[" ".join(p) for p, _ in ALL])
def test_every_command_has_help(path, cmd):
    assert (cmd.help or "").strip(), f"{' '.join(path)} has no help"
    res = CliRunner().invoke(app, [*path, "--help"])
    assert res.exit_code == 0, res.output
    assert "Usage" in res.output
    for p in cmd.params:
        if type(p).__name__.endswith("Option") and not getattr(p, "hidden", False):
            assert p.help, f"{' '.join(path)} {p.opts} has no help"


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "jobmedic", "--help"], capture_output=True,
                         text=True, check=True)
    assert "ingest" in out.stdout


def test_db_info_and_ingest_via_cli(tmp_path):
    from tests.conftest import FIXTURES

    db = str(tmp_path / "x.db")
    r = CliRunner().invoke(app, ["--db", db, "ingest", "slurm", str(FIXTURES / "sacct_states.txt"), "--json"])
    assert r.exit_code == 0, r.output
    assert '"inserted": 17' in r.output  # the pending range 1010_[5-7,9] is 4 jobs (issue 12)
    r = CliRunner().invoke(app, ["--db", db, "db", "info", "--json"])
    assert r.exit_code == 0 and '"jobs": 17' in r.output


@pytest.mark.parametrize("args,needle", [
    (["ingest", "nosuch", "x"], "unknown source"),
    (["ingest", "slurm", "/nonexistent/file"], "cannot read"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, args, needle):
    r = CliRunner().invoke(app, ["--db", str(tmp_path / "x.db"), *args])
    assert r.exit_code == 2
    assert needle in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("payload,field", [
    ('{"action": "stats", "lookback_days": 0}', "lookback_days"),
    ('{"action": "stats", "lookback_days": -3}', "lookback_days"),
    ('{"action": "stats", "lookback_days": 100000}', "lookback_days"),
    ('{"action": "stats", "group_by": ["bogus"]}', "group_by"),
    ('{"action": "stats", "lookback_days": "soon"}', "lookback_days"),
    ('{"action": "nosuch"}', "action"),
    ('{"action": "stats", ', None),
])
def test_act_bad_input_names_the_field(tmp_path, payload, field):
    import json

    r = CliRunner().invoke(app, ["--db", str(tmp_path / "x.db"), "act", payload])
    assert r.exit_code == 2, r.output
    env = json.loads(r.output)
    assert env["status"] == "error"
    if field:
        assert field in env["error"]["message"] or env["error"]["field"].startswith(field)
    else:
        assert env["error"]["type"] == "invalid_json"
