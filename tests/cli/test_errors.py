"""Errors a person can act on: each expected fault is one `error:` line and a `hint:` line with
a non-zero exit, never a traceback; `--debug` shows the traceback instead."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from jobmedic.app import StorePathError
from jobmedic.main import app


def _invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def _one_line_error(r, needle: str, code: int = 2) -> None:
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert lines[0].startswith("error: ") and needle in lines[0], r.output
    assert any(ln.startswith("hint: ") for ln in lines), r.output


def test_db_in_a_missing_directory_is_an_error_not_a_new_store(tmp_path):
    where = tmp_path / "no" / "such" / "dir"
    r = _invoke("--db", str(where / "x.db"), "db", "info")
    _one_line_error(r, f"directory {where} does not exist; create it or choose another --db")
    assert not where.exists() and not (tmp_path / "no").exists()


def test_db_that_is_a_directory_or_not_a_store(tmp_path):
    _one_line_error(_invoke("--db", str(tmp_path), "db", "info"), "is a directory")
    junk = tmp_path / "junk.db"
    junk.write_text("this is not sqlite\n" * 100)
    r = _invoke("--db", str(junk), "stats")
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert r.output.startswith("error: ") and "not a database" in r.output


def test_db_from_the_environment_is_checked_too(tmp_path):
    r = _invoke("db", "info", env={"JOBMEDIC_DB": str(tmp_path / "missing" / "x.db")})
    _one_line_error(r, "does not exist")


def test_a_locked_store_says_so(tmp_path):
    db = tmp_path / "locked.db"
    assert _invoke("--db", str(db), "db", "info").exit_code == 0
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE IF NOT EXISTS held (x)")
    try:
        r = _invoke("--db", str(db), "db", "info")
    finally:
        holder.close()
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert r.output.startswith("error: ") and "locked" in r.output
    assert "hint: " in r.output


@pytest.mark.parametrize("content,needle", [
    (None, "does not exist"),
    ("server: [unclosed\n", "is not valid YAML"),
    ("- just\n- a list\n", "is not a mapping"),
    ("server:\n  port: not-a-number\n", "invalid setting server.port"),
])
def test_unusable_config_fails_closed(tmp_path, content, needle):
    cfg = tmp_path / "c.yaml"
    if content is not None:
        cfg.write_text(content)
    r = _invoke("--config", str(cfg), "--db", str(tmp_path / "x.db"), "db", "info")
    _one_line_error(r, needle)
    r = _invoke("--db", str(tmp_path / "x.db"), "db", "info", env={"JOBMEDIC_CONFIG": str(cfg)})
    _one_line_error(r, needle)


def test_serve_with_a_mistyped_config_does_not_start(tmp_path):
    r = _invoke("--config", str(tmp_path / "tokens.yaml"), "serve", "--host", "127.0.0.1")
    _one_line_error(r, "does not exist")


def test_missing_model_and_malformed_request(tmp_path):
    db = str(tmp_path / "x.db")
    r = _invoke("--db", db, "evaluate", "failure", "--from", "2024-01-01")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.output.startswith("error: ") and "hint: " in r.output
    deep = '{"action": "stats", "x": ' + "[" * 10_000 + "]" * 10_000 + "}"
    r = _invoke("--db", db, "act", deep)
    assert r.exit_code == 2
    assert json.loads(r.output)["error"]["type"] == "too_deep"
    r = _invoke("--db", db, "act", '{"action": "stats", "as_of": "inf"}')
    assert r.exit_code == 2 and json.loads(r.output)["error"]["field"] == "as_of"


def test_unreadable_inputs(tmp_path):
    db = str(tmp_path / "x.db")
    r = _invoke("--db", db, "predict-batch", str(tmp_path / "nope.csv"))
    _one_line_error(r, "cannot read")
    r = _invoke("--db", db, "diagnose-file", str(tmp_path / "nope.log"))
    _one_line_error(r, "cannot read")


def test_debug_shows_the_traceback(tmp_path):
    bad = str(tmp_path / "missing" / "x.db")
    r = _invoke("--debug", "--db", bad, "db", "info")
    assert r.exit_code != 0 and isinstance(r.exception, StorePathError)
    out = subprocess.run([sys.executable, "-m", "jobmedic", "--debug", "--db", bad, "db", "info"],
                         capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "Traceback" in out.stderr and "StorePathError" in out.stderr
    out = subprocess.run([sys.executable, "-m", "jobmedic", "--db", bad, "db", "info"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: directory")


def test_in_memory_store_has_no_models_folder():
    r = _invoke("--db", ":memory:", "models")
    assert r.exit_code == 0 and "(none: in-memory store)" in r.output
    r = _invoke("--db", ":memory:", "train", "failure")
    _one_line_error(r, "in-memory store has no model folder")
    r = _invoke("--db", ":memory:", "predict", "--user", "u", "--json")
    assert r.exit_code == 2 and "train" in json.loads(r.output)["error"]["message"] + \
        json.loads(r.output)["error"]["hint"]


@pytest.mark.parametrize("args", [["--help"], ["predict", "--help"], ["act", '{"action": "stats"}']])
def test_a_reader_that_leaves_is_not_an_error(tmp_path, args):
    """`jobmedic ... | head`: the pipe closing under a long output ends the command quietly,
    never with an `error: cannot use: Broken pipe` line blaming a path."""
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first line is written
    try:
        out = subprocess.run([sys.executable, "-m", "jobmedic", "--db", str(tmp_path / "s.db"), *args],
                             check=False, stdout=w, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert "error:" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    # click ends its own help output with 1 on a closed pipe; our commands with the shell's 141
    assert out.returncode == (1 if "--help" in args else 141)


def test_a_broken_pipe_that_is_not_stdout_stays_an_error():
    from jobmedic.cli import plain

    assert not plain.pipe_closed(BrokenPipeError(32, "Broken pipe"))  # stdout is fine here
    assert not plain.pipe_closed(OSError("other"))
