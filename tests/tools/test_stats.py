"""The stats action: totals, whitelisted group_by tables, the daily trend, filters and bad input,
in process and through the CLI."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from jobmedic.cli import app
from jobmedic.tools import run_action
from tests.tools.analyze_data import AS_OF, context, file_db, fill


def _group(res, by):
    return next(g for g in res.data["groups"] if g["by"] == by)


def test_counts_and_rates_by_failure_type(ctx):
    res = run_action({"action": "stats"}, ctx)
    assert res.status == "ok", res.error
    t = res.data["totals"]
    assert t["jobs"] == 1627 and t["failures"] == 152
    rows = {r["key"]: r for r in _group(res, "failure_type")["rows"]}
    assert rows["crash_loop"]["failures"] == 54 and rows["oom"]["failures"] == 30
    assert rows["gpu_error"]["failures"] == 24
    assert sum(r["failures"] for r in rows.values()) == 152
    assert rows["oom"]["share"] == pytest.approx(30 / 152, abs=1e-4)
    assert rows["oom"]["rate"] == pytest.approx(30 / 1627, abs=1e-4)
    assert "| crash_loop | 54 |" in res.text


def test_group_by_node_project_and_day(ctx):
    res = run_action({"action": "stats", "group_by": ["node", "project", "day"], "top": 3}, ctx)
    nodes = _group(res, "node")
    assert len(nodes["rows"]) == 3 and nodes["more"] == 5
    assert sum(1 for r in nodes["rows"] if r["key"] == "gpu-03") == 1
    projects = {r["key"]: r for r in _group(res, "project")["rows"]}
    assert projects["research"]["jobs"] == 250 and projects["research"]["failures"] == 36
    assert projects["research"]["rate"] == pytest.approx(36 / 250, abs=1e-4)
    days = _group(res, "day")["rows"]
    assert len(days) == 7 and days[0]["key"] == "2023-11-15"
    assert sum(d["jobs"] for d in days) == 1627
    assert [d["day"] for d in res.data["trend"]] == [d["key"] for d in days]


def test_filters_and_failure_type(ctx):
    res = run_action({"action": "stats", "project": "research", "group_by": ["user"]}, ctx)
    users = {r["key"]: r for r in _group(res, "user")["rows"]}
    assert set(users) == {"erin", "frank", "mallory"} and users["mallory"]["failures"] == 30
    res = run_action({"action": "stats", "failure_type": "oom", "group_by": ["project"]}, ctx)
    assert res.data["totals"]["failures"] == 30
    res = run_action({"action": "stats", "failure_type": "oomm"}, ctx)
    assert res.status == "error" and "oom" in res.error.message


def test_state_breakdown_counts_cancelled(store):
    from jobmedic.knowledge.migrations import JOB_COLUMNS
    from tests.analyzers.planted import T0

    fill(store)
    row = dict.fromkeys(JOB_COLUMNS)
    row.update(cluster="c1", job_id="cx", user="alice", project="ml-team", state="cancelled",
               submit_time=T0 + 10, end_time=T0 + 100, source="test")
    store.upsert_jobs([tuple(row[c] for c in JOB_COLUMNS)])
    res = run_action({"action": "stats", "group_by": ["state"]}, context(store))
    states = {r["key"]: r["jobs"] for r in _group(res, "state")["rows"]}
    assert states["cancelled"] == 1 and res.data["totals"]["cancelled"] == 1
    assert res.data["totals"]["jobs"] == 1627  # cancelled is not in the denominator


@pytest.mark.parametrize("payload,field", [
    ({"action": "stats", "group_by": ["zone"]}, "group_by.0"),
    ({"action": "stats", "group_by": "project"}, "group_by"),
    ({"action": "stats", "group_by": []}, "group_by"),
    ({"action": "stats", "top": "many"}, "top"),
    ({"action": "stats", "lookback_days": 0}, "lookback_days"),
    ({"action": "stats", "as_of": "yesterday-ish"}, "as_of"),
])
def test_bad_fields_are_named(ctx, payload, field):
    res = run_action(payload, ctx)
    assert res.status == "error" and res.error.field == field, res.error


def test_empty_window_no_data(ctx):
    res = run_action({"action": "stats", "lookback_days": 1, "as_of": "2030-01-01"}, ctx)
    assert res.status == "no_data" and "2023-11-" in res.text and "--as-of" in res.text


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return str(file_db(tmp_path_factory.mktemp("st")))


def _cli(db, *args, **kw):
    return CliRunner().invoke(app, ["--db", db, "--as-of", AS_OF, *args], **kw)


def test_cli_stats(db):
    res = _cli(db, "stats", "--group-by", "project", "--group-by", "node")
    assert res.exit_code == 0, res.output
    assert "### By project" in res.output and "### By node" in res.output
    res = _cli(db, "stats", "--json", "--group-by", "queue")
    env = json.loads(res.output)
    assert {r["key"] for r in env["data"]["groups"][0]["rows"]} == {"batch", "cpu", "ops"}
    res = _cli(db, "--scope", "research", "stats", "--json", "--group-by", "project")
    assert [r["key"] for r in json.loads(res.output)["data"]["groups"][0]["rows"]] == ["research"]


@pytest.mark.parametrize("args,needle", [
    (["stats", "--group-by", "zone"], "group_by"),
    (["stats", "--lookback-days", "0"], "lookback_days"),
    (["stats", "--top", "x"], "top"),
    (["stats", "--project", "reserch"], "research"),
    (["act", '{"action": "stats", "group_by": ["zone"]}'], "group_by"),
    (["act", "{not json"], "not valid JSON"),
])
def test_cli_bad_input_exits_2(db, args, needle):
    res = _cli(db, *args)
    assert res.exit_code == 2, res.output
    assert needle in res.output
