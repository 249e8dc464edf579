"""The fast path (jobmedic.cli.fast, issue 16 items 5 and 6) answers exactly as typer does.

Each command line runs twice in fresh interpreters: through `jobmedic.main.main` (the fast path
when it takes the line) and through the Typer app alone (`jobmedic.main.program.run`), and the
two must agree byte for byte on stdout, stderr and the exit code. The lines the fast path must
take are checked to run without typer; the lines it must leave to typer (help, usage errors,
numbers, lists, --debug, ...) are checked to go through typer.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
#: Most lines are marked slow (two interpreters each); the unmarked ones cover each kind.
SLOW = pytest.mark.slow

#: The program as users run it; the last stderr line says whether typer was imported.
VIA_MAIN = r"""
import atexit, sys
atexit.register(lambda: print("\nTYPER=" + str(int("typer" in sys.modules)), file=sys.stderr))
from jobmedic.main import main
sys.argv = ["jobmedic", *sys.argv[1:]]
main()
"""
#: The Typer app alone (what `jobmedic` ran before the fast path).
VIA_TYPER = r"""
import sys
from jobmedic.main.program import run
sys.argv = ["jobmedic", *sys.argv[1:]]
run()
"""


def _run(script: str, args: list[str], stdin: str = "", **env: str):
    e = {k: v for k, v in os.environ.items() if k != "JOBMEDIC_DEBUG"}
    e.update({"PYTHONIOENCODING": "utf-8", **env})
    return subprocess.run([sys.executable, "-c", script, *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=False, env=e)


def both(args: list[str], stdin: str = "", **env: str) -> tuple[bool, subprocess.CompletedProcess]:
    """(whether main ran without typer, main's result) after checking that main and the Typer
    app print the same and exit the same."""
    fast = _run(VIA_MAIN, args, stdin, **env)
    slow = _run(VIA_TYPER, args, stdin, **env)
    err, _, flag = fast.stderr.rpartition("\nTYPER=")
    assert flag.strip() in ("0", "1"), fast.stderr[-2000:]
    assert (fast.returncode, fast.stdout, err) == (slow.returncode, slow.stdout, slow.stderr), args
    return flag.strip() == "0", fast


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("fast") / "small.db")
    p = subprocess.run([sys.executable, "-m", "jobmedic", "--db", path, "ingest", "slurm",
                        str(FIXTURES / "sacct_states.txt")], capture_output=True, text=True,
                       cwd=ROOT, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    return path


@pytest.mark.parametrize("args", [
    ["remediate", "--job-id", "1001"],
    pytest.param(["remediate", "--job-id=1001", "--json"], marks=SLOW),
    pytest.param(["--as-of", "2024-05-02", "remediate", "--failure-type", "oom", "--platform", "slurm"], marks=SLOW),
    pytest.param(["remediate", "--job-id", "1014"], marks=SLOW),  # did not fail: error envelope, exit 1
    ["remediate", "--job-id", "no-such-job"],  # not found: exit 2 with suggestions
    pytest.param(["remediate"], marks=SLOW),  # neither field: the request model's error
    pytest.param(["remediate", "--failure-type", "bogus", "--json"], marks=SLOW),
    pytest.param(["remediate", "--job-id", "1001", "--platform", "windows"], marks=SLOW),  # a Literal given as text
    pytest.param(["--scope", "ml-team", "remediate", "--job-id", "1007"], marks=SLOW),  # out of scope
    pytest.param(["diagnose", "--job-id", "1008"], marks=SLOW),
    pytest.param(["--as-of=2024-05-02", "stats", "--project", "ml-team", "--json"], marks=SLOW),
    pytest.param(["act", '{"action": "remediate", "job_id": "1001"}'], marks=SLOW),
    ["act", '{"action": "stats", "as_of": "2024-05-02"}'],
    pytest.param(["act", '{"action": "nope"}'], marks=SLOW),
    pytest.param(["act", "{not json"], marks=SLOW),
    pytest.param(["act", ""], marks=SLOW),
    # options out of the request model's field order: the error quotes the request in field
    # order, as typer builds it (a divergence found by test_fast_path_fuzz.py)
    pytest.param(["record-outcome", "--solution", "more memory", "--job-id", "1001"], marks=SLOW),
])
def test_fast_path_answers_as_typer(db, args):
    fast, res = both(["--db", db, *args])
    assert fast, f"the fast path did not take {args}"
    assert res.stdout or res.stderr


def test_act_reads_stdin_on_the_fast_path(db):
    fast, res = both(["--db", db, "act", "-"], stdin='{"action": "remediate", "job_id": "1001"}')
    assert fast and json.loads(res.stdout)["action"] == "remediate"


@pytest.mark.parametrize("args", [
    ["--db", "{tmp}/no-such-dir/x.db", "remediate", "--job-id", "1"],  # StorePathError, exit 2
    pytest.param(["--db", "{db}", "--config", "{tmp}/missing.yaml", "remediate", "--job-id", "1001"], marks=SLOW),
    pytest.param(["--db", "{tmp}", "act", '{"action": "stats"}'], marks=SLOW),  # a folder, not a store
])
def test_faults_are_reported_as_typer_does(db, tmp_path, args):
    args = [a.replace("{tmp}", str(tmp_path)).replace("{db}", db) for a in args]
    fast, res = both(args)
    assert fast and res.returncode != 0 and res.stderr.startswith("error: ")


@pytest.mark.parametrize("args", [
    pytest.param(["--help"], marks=SLOW),
    ["remediate", "--help"],
    pytest.param(["remediate", "--job-id"], marks=SLOW),  # no value
    pytest.param(["remediate", "--job-id", "--json"], marks=SLOW),  # click takes the option as the value
    ["remediate", "--job-id", "1", "--job-id", "1001"],  # repeated
    pytest.param(["remediate", "--job_id", "1001"], marks=SLOW),
    pytest.param(["remediate", "--action", "stats"], marks=SLOW),
    pytest.param(["remediate", "--allowed-projects", "bio", "--job-id", "1007"], marks=SLOW),  # a list
    pytest.param(["remediate", "--job-id", "1001", "extra"], marks=SLOW),
    pytest.param(["remediate", "--job-id", "1001", "--json=1"], marks=SLOW),
    ["--as-of", "2024-05-02", "stats", "--lookback-days", "3"],  # a number: typer converts it
    pytest.param(["stats", "--as-of", "2024-05-02", "--group-by", "user"], marks=SLOW),  # a list
    pytest.param(["--debug", "remediate", "--job-id", "1001"], marks=SLOW),
    pytest.param(["--as-of", "--scope", "remediate", "--job-id", "1001"], marks=SLOW),
    pytest.param(["--bogus", "remediate", "--job-id", "1001"], marks=SLOW),
    pytest.param(["act"], marks=SLOW),
    pytest.param(["act", '{"action": "stats"}', "extra"], marks=SLOW),
    pytest.param(["act", "-x"], marks=SLOW),
    pytest.param(["predict", "--batch", "x.csv"], marks=SLOW),
    pytest.param(["outcome", "record", "--job-id", "1001"], marks=SLOW),
    pytest.param(["db", "info"], marks=SLOW),
    pytest.param(["nosuchcommand"], marks=SLOW),
])
def test_other_lines_go_to_typer(db, args):
    fast, _ = both(["--db", db, *args])
    assert not fast, f"the fast path took {args}"


def test_streams_click_would_wrap_go_to_typer(db):
    """An ASCII stdout is rewrapped by click, so typer prints it."""
    fast, res = both(["--db", db, "remediate", "--job-id", "1001"], PYTHONIOENCODING="ascii")
    assert not fast and res.returncode == 0


@SLOW
def test_debug_from_the_environment_goes_to_typer(db):
    fast, _ = both(["--db", db, "remediate", "--job-id", "1001"], JOBMEDIC_DEBUG="1")
    assert not fast


def test_echo_writes_what_typer_echo_writes(tmp_path):
    """On a pipe both strip ANSI styles and end the line; the bytes are the same."""
    text = "\x1b[31mred\x1b[0m plain \x1b[1;4mbold\x1b[m é ✓"
    code = ("import sys\nfrom {mod} import echo\necho(sys.argv[1])\necho(sys.argv[1], err=True)\n"
            "echo('')\n")
    outs = []
    for mod in ("jobmedic.cli.fast", "typer"):
        p = subprocess.run([sys.executable, "-c", code.format(mod=mod), text], capture_output=True,
                           cwd=ROOT, timeout=60, check=True,
                           env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        outs.append((p.stdout, p.stderr))
    assert outs[0] == outs[1]
    assert outs[0][0] == "red plain bold é ✓\n\n".encode()


def test_fast_path_commands_are_the_typer_action_commands():
    """Every command name the fast path answers is, in typer's tree, the generated command of
    the same action, and every option it accepts is one of that command's text options."""
    from jobmedic.cli import plain
    from jobmedic.cli.fast import GLOBAL_OPTIONS, action_commands
    from jobmedic.main import build

    root = build()
    assert {o for p in root.params for o in p.opts if p.name != "debug"} == set(GLOBAL_OPTIONS)
    assert root.commands["act"].params[0].nargs == 1
    for name, tool in action_commands().items():
        assert name == plain.command_name(tool.name)
        cmd = root.commands[name]
        assert cmd.tool.name == tool.name, name
        fields = tool.request_model.model_fields
        for p in cmd.params:
            if p.name in fields and plain.cli_kind(fields[p.name].annotation) == "str":
                assert p.opts == ["--" + p.name.replace("_", "-")] and not p.multiple
                assert not p.is_flag and p.nargs == 1
        assert [p.opts for p in cmd.params if p.name == "as_json"] == [["--json"]]
