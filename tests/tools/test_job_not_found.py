"""A job id that does not exist (issue 13, bad input): every action that looks a job up says
which id (and cluster) was asked and suggests the closest existing ids the caller may see
(the same array job or step, the nearest numbers below and above, a few edits away), never an
id of another project. Through the action API, the CLI, HTTP and the assistant's answer.

The store is tests/fixtures/sacct_states.txt (cluster hpc): ml-team 1001 1005 1006 and the
array 1010_4..1010_7, 1010_9; physics 1002-1004; bio 1007-1009, 1011, 1012, 1014."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from jobmedic.agent import Assistant
from jobmedic.app import build_tool_context
from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.jobids import family, levenshtein, rank
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.templates import Templates
from jobmedic.settings import load_settings
from jobmedic.tools import run_action
from tests.agent.conftest import NOW
from tests.conftest import FIXTURES

ML = ["ml-team"]
FOREIGN_TO_ML = {"1002", "1003", "1004", "1007", "1008", "1009", "1011", "1012", "1014"}


def _fill(store: Store, taxonomy) -> Store:
    run_ingest(store, READERS["slurm"], str(FIXTURES / "sacct_states.txt"),
               IngestContext(taxonomy, Templates(store.load_templates()), cluster="hpc"))
    return store


@pytest.fixture
def filled(store, taxonomy):
    return _fill(store, taxonomy)


# (scope, asked id, cluster, the suggestions expected first, in order)
CASES = [
    (None, "1010_8", None, ["1010_7", "1010_9"]),  # array task: its siblings, nearest first
    (None, "1010", None, ["1010_4", "1010_5", "1010_6", "1010_7", "1010_9"]),  # the array's tasks
    (None, "1010_4.batch", None, ["1010_4"]),  # a step of an existing task
    (None, "1013", None, ["1012", "1014"]),  # numeric neighbours below and above
    (None, "1O12", None, ["1012"]),  # a typo (letter O for zero)
    (ML, "1008", None, ["1006", "1001", "1005"]),  # bio's job: only ml-team's ids come back
    (ML, "1012x", None, []),  # nothing of ml-team is close: no suggestion, no leak
    (ML, "1010_8", None, ["1010_7", "1010_9"]),
    (None, "1001", "other", ["1001"]),  # the same id exists on another cluster
    (None, "zzzz-unrelated-name", None, []),
]


@pytest.mark.parametrize("scope,asked,cluster,first", CASES)
@pytest.mark.parametrize("action", ["diagnose", "remediate", "predict", "record_outcome"])
def test_a_missing_job_id_names_itself_and_suggests_close_ids_in_scope(
        filled, taxonomy, scope, asked, cluster, first, action):
    ctx = build_tool_context(load_settings(), filled, taxonomy, NOW, scope)
    body = {"action": action, "job_id": asked} | ({"cluster": cluster} if cluster else {})
    if action == "record_outcome":
        body |= {"solution": "doubled the memory", "success": True}
    res = run_action(body, ctx)
    assert res.status == "error" and res.error.type == "not_found", res
    msg = res.error.message
    assert f"no job {asked!r}" in msg
    if cluster:
        assert f"on cluster {cluster!r}" in msg
    got = [s["job_id"] for s in res.error.suggestions or []]
    assert got[:len(first)] == first
    if not first:
        assert not got and "closest" not in msg
    else:
        assert "closest job ids: " + first[0] in msg and first[0] in res.text
        assert all(set(s) == {"job_id", "cluster", "state"} for s in res.error.suggestions)
    if scope == ML:
        blob = json.dumps(res.model_dump()).replace(asked, "<asked>")
        assert not any(j in blob for j in FOREIGN_TO_ML), blob
        assert "physics" not in blob and "bio" not in blob
        assert "(or not in your projects)" in msg


def test_an_existing_job_is_still_found(filled, taxonomy):
    ctx = build_tool_context(load_settings(), filled, taxonomy, NOW, None)
    assert run_action({"action": "diagnose", "job_id": "1010_9"}, ctx).status == "ok"


@pytest.mark.parametrize("asked,cands,want", [
    ("1234_7", ["1234_1", "1234_6", "1234", "1235", "99"], ["1234_6", "1234_1", "1234"]),
    ("4243", ["4242", "4244", "5243", "4000", "42430"], ["4242", "4244", "42430", "5243"]),
    ("5000", ["4990", "5100", "12"], ["4990", "5100"]),  # nearest numbers, however many edits
    ("train-7-abcde", ["train-7-abcdf", "train-8-zzzzz", "eval-1"], ["train-7-abcdf"]),
    ("j1255", ["j1249", "j1245", "j1300"], ["j1249", "j1300", "j1245"]),
    ("x", ["j0", "y"], ["y"]),
    ("abc", [], []),
])
def test_rank(asked, cands, want):
    assert rank(asked, cands) == want


def test_family_and_levenshtein():
    assert [family(j) for j in ("1234_7", "1234.batch", "1234+1", "1234", "pod-a")] == \
        ["1234", "1234", "1234", "1234", "pod-a"]
    assert levenshtein("kitten", "sitting", 5) == 3
    assert levenshtein("a", "abcdef", 2) == 3  # capped


def test_cli_says_so_and_suggests(filled, tmp_path, taxonomy):
    from jobmedic.main import app

    db = tmp_path / "nf.db"
    with Store(db) as s:
        _fill(s, taxonomy)
    r = CliRunner().invoke(app, ["--db", str(db), "diagnose", "--job-id", "1010_8"])
    assert r.exit_code == 2, r.output
    assert "no job '1010_8'" in r.output and "closest job ids: 1010_7, 1010_9" in r.output
    r = CliRunner().invoke(app, ["--db", str(db), "act", json.dumps(
        {"action": "diagnose", "job_id": "1013"})])
    env = json.loads(r.output)
    assert r.exit_code == 2 and [s["job_id"] for s in env["error"]["suggestions"]][:2] == \
        ["1012", "1014"]


@pytest.mark.parametrize("scope,question,want,never", [
    (None, "why did job 1013 fail?", ["1012", "1014"], []),
    (ML, "what happened to job 1008?", ["1006"], sorted(FOREIGN_TO_ML - {"1008"})),
    (ML, "why did job 1010_8 fail?", ["1010_7", "1010_9"], sorted(FOREIGN_TO_ML)),
])
def test_the_assistant_answer_says_so_and_suggests(filled, taxonomy, scope, question, want,
                                                  never):
    ans = Assistant(build_tool_context(load_settings(), filled, taxonomy, NOW, scope)).ask(question)
    assert ans.calls and ans.calls[0]["action"] == "diagnose", ans.calls
    assert "no job" in ans.answer and all(w in ans.answer for w in want), ans.answer
    assert not any(f" {j}" in ans.answer or f"'{j}" in ans.answer for j in never), ans.answer
