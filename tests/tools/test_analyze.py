"""The analyze action: envelope, findings with evidence, filters, windows and bad input, in
process and through the CLI (`jobmedic analyze`, `jobmedic act`)."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from jobmedic.cli import app
from jobmedic.tools import run_action
from tests.tools.analyze_data import AS_OF, file_db


def test_analyze_leads_with_the_bad_node(ctx):
    res = run_action({"action": "analyze", "lookback_days": 7}, ctx)
    assert res.status == "ok", res.error
    s = res.data["summary"]
    assert s["jobs"] == 960 + 40 + 200 + 50 + 300 + 77
    assert s["failures"] == 8 * 4 + 24 + 6 + 30 + 6 + 54  # planted exactly
    assert 0 < s["failure_rate"] < 1 and s["projects_affected"] == 3
    top = res.data["findings"][0]
    assert top["subject"] in ("node:gpu-03", "image:secret:bad")
    subjects = [f["subject"] for f in res.data["findings"] if f["kind"] == "hotspot"
                and f["evidence"].get("attributed_to", f["subject"]) == f["subject"]]
    assert "node:gpu-03" in subjects and "user:mallory" in subjects
    node = next(f for f in res.data["findings"] if f["subject"] == "node:gpu-03" and f["kind"] == "hotspot")
    for key in ("failures", "jobs", "rate", "ci_low", "ci_high", "p", "q", "baseline"):
        assert key in node["evidence"]
    assert f"{node['evidence']['failures']:g} of {node['evidence']['jobs']}" in node["recommendation"]
    # the markdown has the summary line and the same numbers as data
    assert res.text.startswith("## Failure analysis")
    assert f"{s['failures']:,} failures in {s['jobs']:,} finished jobs" in res.text
    assert "gpu-03" in res.text and "| entity |" in res.text
    assert res.invocation.window["days"] == 7


def test_analyze_filters_narrow_the_jobs(ctx):
    res = run_action({"action": "analyze", "project": "research"}, ctx)
    assert res.status == "ok"
    assert res.data["summary"]["jobs"] == 250
    assert res.invocation.filters["project"] == "research"
    assert not any("ml-team" in json.dumps(f) for f in res.data["findings"])
    res = run_action({"action": "analyze", "node": "GPU-03"}, ctx)  # case-insensitive
    assert res.status == "ok" and res.data["filters"]["node"] == "gpu-03"
    assert res.data["summary"]["jobs"] == 120 + 40 + 50  # ml-team + its research share


def test_unknown_names_list_the_closest(ctx):
    res = run_action({"action": "analyze", "project": "ml-teem"}, ctx)
    assert res.status == "error" and res.error.field == "project"
    assert "ml-team" in res.error.message
    res = run_action({"action": "analyze", "image": "ml:v2"}, ctx)
    assert res.status == "error" and "ml:v1" in res.error.message


def test_empty_window_says_what_the_store_holds(ctx):
    res = run_action({"action": "analyze", "as_of": "2021-01-01"}, ctx)
    assert res.status == "no_data"
    assert res.data["store_range"]["first"].startswith("2023-11-1")
    assert "--as-of 2023-11-2" in res.text


@pytest.mark.parametrize("payload,field", [
    ({"action": "analyze", "lookback_days": 0}, "lookback_days"),
    ({"action": "analyze", "lookback_days": -3}, "lookback_days"),
    ({"action": "analyze", "lookback_days": 100000}, "lookback_days"),
    ({"action": "analyze", "lookback_days": "a week"}, "lookback_days"),
    ({"action": "analyze", "max_findings": 0}, "max_findings"),
    ({"action": "analyze", "nodes": "x"}, "nodes"),
])
def test_bad_fields_are_named(ctx, payload, field):
    res = run_action(payload, ctx)
    assert res.status == "error" and res.error.type == "invalid_field" and res.error.field == field


def test_one_analyzer_failing_does_not_sink_the_report(ctx, monkeypatch):
    ctx.options = {"blame": {"l2": 0.0}}  # allowed value; break another way below
    res = run_action({"action": "analyze"}, ctx)
    assert res.status == "ok"
    monkeypatch.setattr(ctx.store, "failure_mix", None)  # broken: blame raises, others report
    res = run_action({"action": "analyze"}, ctx)
    assert res.status == "ok" and res.data["errors"][0]["analyzer"] == "blame"
    assert any(f["kind"] == "hotspot" for f in res.data["findings"])


def test_thresholds_come_from_options(ctx):
    ctx.options = {"hotspots": {"min_exposure": 100000}}
    res = run_action({"action": "analyze"}, ctx)
    assert not [f for f in res.data["findings"] if f["kind"] == "hotspot"]
    ctx.options = {"hotspots": {"min_exposur": 3}}
    res = run_action({"action": "analyze"}, ctx)
    assert res.status == "error" and "min_exposure" in res.error.message


# -- through the CLI ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return str(file_db(tmp_path_factory.mktemp("an")))


def _cli(db, *args, **kw):
    return CliRunner().invoke(app, ["--db", db, "--as-of", AS_OF, *args], **kw)


def test_cli_analyze_and_act(db):
    res = _cli(db, "analyze", "--lookback-days", "7")
    assert res.exit_code == 0, res.output
    assert "Failure analysis" in res.output and "gpu-03" in res.output
    res = _cli(db, "analyze", "--json", "--project", "ml-team")
    env = json.loads(res.output)
    assert env["status"] == "ok" and env["data"]["summary"]["jobs"] == 1000
    res = _cli(db, "act", '{"action": "analyze", "user": "mallory"}')
    assert res.exit_code == 0 and json.loads(res.output)["data"]["filters"]["user"] == "mallory"
    res = _cli(db, "act", "-", input='{"action": "analyze", "queue": "cpu"}')
    assert res.exit_code == 0 and json.loads(res.output)["data"]["summary"]["jobs"] == 250


@pytest.mark.parametrize("args,needle", [
    (["analyze", "--lookback-days", "0"], "lookback_days"),
    (["analyze", "--lookback-days", "-1"], "lookback_days"),
    (["analyze", "--lookback-days", "99999"], "lookback_days"),
    (["analyze", "--project", "ml-teem"], "ml-team"),
    (["act", '{"action": "analyze", "lookback_days": 7'], "not valid JSON"),
    (["act", '{"action": "analyze", "lookback_days": "seven"}'], "lookback_days"),
])
def test_cli_bad_input_exits_2(db, args, needle):
    res = _cli(db, *args)
    assert res.exit_code == 2, res.output
    assert needle in res.output
