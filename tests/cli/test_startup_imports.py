"""Start-up (issue 16 item 6): the commands that do not need them import no heavy library.

Behavioural, not timed: each command runs in a fresh interpreter and reports the modules it
loaded (sys.modules at exit), so a top-level `import pandas` anywhere on the CLI's import path
fails here whatever the machine's speed.
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
HEAVY = ("torch", "xgboost", "sklearn", "scipy", "pandas", "numpy", "networkx", "pyarrow")

#: Run jobmedic.main's command line, then print the top-level packages loaded and the
#: jobmedic.tools modules loaded (on stderr, so the command's own output and exit code are left
#: alone).
PROBE = r"""
import atexit, json, sys
atexit.register(lambda: print("LOADED=" + json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr))
atexit.register(lambda: print("TOOLMODS=" + json.dumps(sorted(m for m in sys.modules if m.startswith("jobmedic.tools."))), file=sys.stderr))
atexit.register(lambda: print("JOBMEDIC=" + json.dumps(sorted(m for m in sys.modules if m.startswith("jobmedic."))), file=sys.stderr))
from jobmedic.main import main
sys.argv = ["jobmedic", *sys.argv[1:]]
main()
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)


def _line(p: subprocess.CompletedProcess, key: str) -> list[str]:
    line = [ln for ln in p.stderr.splitlines() if ln.startswith(key + "=")]
    assert line, p.stderr[-2000:]
    return json.loads(line[-1][len(key) + 1:])


def loaded(*args: str) -> tuple[int, set[str], str]:
    p = _run(*args)
    return p.returncode, set(_line(p, "LOADED")), p.stdout


def action_modules(*args: str) -> tuple[int, set[str], set[str], str]:
    """(exit code, top-level packages, the action modules among jobmedic.tools.*, stdout)."""
    from jobmedic.tools import TOOLS

    p = _run(*args)
    actions = {f"jobmedic.tools.{t.module}" for t in TOOLS}
    return p.returncode, set(_line(p, "LOADED")), set(_line(p, "TOOLMODS")) & actions, p.stdout


@pytest.fixture(scope="module")
def small_db(tmp_path_factory) -> str:
    db = str(tmp_path_factory.mktemp("startup") / "small.db")
    p = subprocess.run([sys.executable, "-m", "jobmedic", "--db", db, "ingest", "slurm",
                        str(FIXTURES / "sacct_states.txt")], capture_output=True, text=True,
                       cwd=ROOT, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    return db


def test_help_imports_no_heavy_library():
    rc, mods, tools, out = action_modules("--help")
    assert rc == 0 and "ingest" in out and "analyze" in out
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))
    # the commands are listed from the lazy registry: no action module, no settings library
    assert "Counts of failures and jobs" in out
    assert not tools, sorted(tools)
    assert "pydantic_settings" not in mods
    # nor pydantic, yaml or the store: listing needs names and summaries only
    p = _run("--help")
    assert not {"pydantic", "yaml"} & set(_line(p, "LOADED"))
    assert not {"jobmedic.knowledge.store", "jobmedic.ingest.base"} & set(_line(p, "JOBMEDIC"))


def test_db_info_imports_no_heavy_library(small_db):
    rc, mods, tools, out = action_modules("--db", small_db, "db", "info")
    assert rc == 0 and "jobs" in out
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))
    assert "pydantic_settings" not in mods  # settings on plain pydantic (jobmedic.settings)
    assert not tools, sorted(tools)


@pytest.mark.parametrize("request_", [
    {"action": "stats"}, {"action": "analyze"}, {"action": "remediate", "failure_type": "oom"},
    {"action": "remediate", "job_id": "1001"},
], ids=lambda r: "-".join(map(str, r.values())))
def test_act_imports_only_the_action_it_runs(small_db, request_):
    """The registry is lazy: `act` imports the one action module it runs (issue 16 item 6)."""
    rc, mods, tools, out = action_modules("--db", small_db, "act", json.dumps(request_))
    assert rc == 0, out
    assert json.loads(out)["action"] == request_["action"]
    assert tools == {f"jobmedic.tools.{request_['action']}"}
    assert "pydantic_settings" not in mods


def test_an_action_command_imports_only_its_action(small_db):
    """`jobmedic stats` and `jobmedic remediate --job-id` generate only their own command's
    options (from their request model), not every action's."""
    rc, _, tools, out = action_modules("--db", small_db, "remediate", "--job-id", "1001")
    assert rc == 0 and "oom" in out
    assert tools == {"jobmedic.tools.remediate"}
    rc, _, tools, out = action_modules("stats", "--help")
    assert rc == 0 and "--group-by" in out and "--lookback-days" in out
    assert tools == {"jobmedic.tools.stats"}


def test_registry_summaries_are_the_request_models_docstrings():
    """The lazy registry lists each action with a summary that must be its request model's
    docstring (what the generated command's help starts with)."""
    from jobmedic.main import build
    from jobmedic.tools import TOOLS

    root = build()
    for t in TOOLS:
        assert t.summary == (t.request_model.__doc__ or "").strip(), t.name
        name = t.name.replace("_", "-")
        cmd = root.commands[name] if name in root.commands else \
            root.commands["outcome"].commands["record"]
        assert cmd.short_help == t.summary
        assert cmd.help.startswith(t.summary) and t.description in cmd.help


@pytest.mark.parametrize("action", ["stats", "analyze"])
def test_windowed_actions_import_no_ml_library(small_db, action):
    rc, mods, out = loaded("--db", small_db, "act", json.dumps({"action": action}))
    assert rc == 0, out
    assert json.loads(out)["action"] == action
    assert not mods & {"torch", "xgboost", "sklearn", "scipy"}, sorted(mods & set(HEAVY))


@pytest.mark.parametrize("args", [
    ["act", json.dumps({"action": "remediate", "job_id": "1001"})],
    ["act", json.dumps({"action": "remediate", "failure_type": "oom"})],
    ["remediate", "--job-id", "1001"],
    ["act", json.dumps({"action": "diagnose", "job_id": "1001"})],
])
def test_remediate_and_diagnose_import_no_heavy_library(small_db, args):
    """The knowledge graph is read from the store's tables (graphstore), not rebuilt with
    pandas and networkx, and fix ranking needs no numpy (issue 16 item 5)."""
    rc, mods, out = loaded("--db", small_db, *args)
    assert rc == 0, out
    assert "oom" in out
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))


@pytest.mark.parametrize("args", [
    ["remediate", "--job-id", "1001"],
    ["act", json.dumps({"action": "remediate", "job_id": "1001"})],
    ["act", json.dumps({"action": "stats"})],
])
def test_action_commands_run_without_typer_or_rich(small_db, args):
    """The fast path (jobmedic.cli.fast) runs these without the CLI framework: no typer (nor
    its click), no rich and no markdown parser when the output is not a terminal (issue 16
    items 5 and 6); tests/cli/test_fast_path.py checks the answers equal typer's."""
    rc, mods, out = loaded("--db", small_db, *args)
    assert rc == 0, out
    assert not mods & {"typer", "click", "rich", "markdown_it", "shellingham"}, sorted(mods)
    assert "pydantic_settings" not in mods and not mods & set(HEAVY)
    from jobmedic.settings import user_config_file

    if not user_config_file().is_file() and not os.environ.get("JOBMEDIC_CONFIG"):
        assert "yaml" not in mods  # the packaged YAML files' parsed forms are read instead


def test_the_probe_sees_a_heavy_import():
    """The check above can fail: a command that does load pandas is reported as such."""
    p = subprocess.run([sys.executable, "-c", "import pandas\n" + PROBE, "--help"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert "pandas" in json.loads(p.stderr.split("LOADED=")[-1].splitlines()[0])


def test_lazy_reader_registry_names_match_their_readers():
    from jobmedic.ingest import READERS

    assert len(READERS) == len(list(READERS)) >= 10
    for name in READERS:
        assert READERS[name].name == name
    assert READERS.get("no-such-source") is None


def test_taxonomy_compiles_its_text_rules_on_first_use():
    """Loading the taxonomy (every command that opens the store) compiles no regex; the text
    rules are compiled when text is first classified, with the same answers."""
    from jobmedic.knowledge.taxonomy import Taxonomy
    from jobmedic.settings import config_path

    tax = Taxonomy.from_yaml(config_path("taxonomy.yaml"))
    assert not {"patterns", "readout", "_combined"} & set(vars(tax))
    hit = tax.classify(text="RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert hit.failure_type.endswith("oom") and hit.rule.startswith("text:")
    assert {"patterns", "_combined"} <= set(vars(tax))
    assert [rx.pattern for _, rx in tax.patterns] == [rx for _, rx in tax.pattern_sources]
    assert len(tax.readout) == len(tax.readout_sources) > 0
