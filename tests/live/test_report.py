"""`jobmedic report`: HTML with inline SVG charts and Markdown, made of the actions' envelopes
(every number in the report is the envelope's number)."""
from __future__ import annotations

import re

import pytest

from jobmedic.cli.report_cmd import gather
from jobmedic.reports.html import render_html, render_markdown, sections

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def report_app(tmp_path_factory):
    from jobmedic.app import App
    from jobmedic.knowledge.migrations import FAILURE_EVENT_COLUMNS

    app = App.open(None, db=str(tmp_path_factory.mktemp("report") / "r.db"), as_of=str(NOW))
    cols = ("cluster", "job_id", "name", "user", "project", "image", "state", "failure_type",
            "blame", "submit_time", "start_time", "end_time", "req_cpus", "elapsed_s", "source")
    rows, nodes, events = [], [], []
    for i in range(120):
        failed = i % 4 == 0
        ftype = ("oom", "timeout", "gpu_error")[i % 3] if failed else None
        end = NOW - 3600 * (i % 140)
        rows.append(("c1", str(i), f"job{i % 5}", f"u{i % 6}", ("ml", "bio")[i % 2],
                     f"img{i % 3}", ("failed" if failed else "completed"), ftype,
                     ("job" if failed else None), end - 100, end - 90, end, 2, 90, "slurm"))
        nodes.append(("c1", str(i), f"n{i % 4}"))
        if failed:
            ev = dict.fromkeys(FAILURE_EVENT_COLUMNS)
            ev.update(cluster="c1", job_id=str(i), project=rows[-1][4], user=rows[-1][3],
                      failure_type=ftype, blame="job", timestamp=end, source="slurm",
                      resolved=0, node_name=f"n{i % 4}")
            events.append((*(ev[c] for c in FAILURE_EVENT_COLUMNS), f"job:c1:{i}"))
    app.store.upsert_jobs(rows, columns=cols)
    app.store.add_job_nodes(nodes)
    app.store.add_failure_events(events)
    yield app
    app.close()


@pytest.fixture(scope="module")
def env(report_app):
    return gather(report_app, 7, None)


def test_every_number_comes_from_the_envelopes(env):
    t = env["stats"]["data"]["totals"]
    md = render_markdown(env)
    assert f"| {t['jobs']:,} | {t['failures']:,} | {100 * t['failure_rate']:.1f}% |" in md
    for d in env["stats"]["data"]["trend"]:
        assert f"| {d['day']} | {d['jobs']:,} | {d['failures']:,} |" in md
    by_type = {r["key"]: r for g in env["stats"]["data"]["groups"] if g["by"] == "failure_type"
               for r in g["rows"]}
    assert set(by_type) == {"oom", "timeout", "gpu_error"}
    for k, r in by_type.items():
        assert f"| {k} | {r['failures']:,} | {r['jobs']:,} |" in md
    titles = [s[0] for s in sections(env)]
    assert titles[:3] == ["Summary", "Failure rate by day", "Failures by type"]
    assert {"Top failing users", "Top failing projects", "Top failing images",
            "Hotspots", "Fixes that worked", "Open alerts"} <= set(titles)


def test_html_is_self_contained_with_svg_charts(env):
    pytest.importorskip("matplotlib")
    page = render_html(env)
    assert page.count("<svg") >= 3  # rate over time, by type, users, projects
    assert not re.search(r"(src|href)=['\"]https?://", page)  # nothing to fetch at view time
    assert "<script" not in page
    assert f"{env['stats']['data']['totals']['failures']:,}" in page


def test_scope_narrows_the_report(report_app):
    report_app_scope = report_app.tool_context(scope=["bio"]).scope
    assert report_app_scope == ["bio"]
    env = gather(report_app, 7, "bio")
    projects = [r["key"] for g in env["stats"]["data"]["groups"] if g["by"] == "project"
                for r in g["rows"]]
    assert projects == ["bio"]
    assert "| ml |" not in render_markdown(env)
