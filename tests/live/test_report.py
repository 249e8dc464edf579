"""`jobmedic report`: HTML with inline SVG charts and Markdown, made of the actions' envelopes
(every number in the report is the envelope's number), and the page in headless Chromium: it
loads from a local server that is also Chromium's proxy for every URL (loopback included), so
any request the page made (an image, a stylesheet, a font, a script, anywhere) would reach the
server and be logged; there must be none but the page's own. That test is skipped, with the
reason, where no Chromium is installed (`apt-get install chromium`)."""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

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

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)


def test_page_names_no_url_at_all(env):
    pytest.importorskip("matplotlib")
    page = render_html(env)
    for needle in ("http://", "https://", "@import", "<script", "<iframe", "<object"):
        assert needle not in page, needle
    assert not re.search(r"url\((?!#)", page)  # only the SVGs' own clip paths
    # every src / href is inline data or a fragment of the page itself
    assert not re.search(r"""(?:src|href)=['"](?!data:|#)""", page)


def test_a_missing_key_is_shown_as_not_set(env):
    import copy

    e = copy.deepcopy(env)
    group = next(g for g in e["stats_more"]["data"]["groups"] if g["by"] == "image")
    group["rows"][0]["key"] = None
    rows = {s[0]: s[2] for s in sections(e)}["Top failing images"]
    assert rows[0][0] == "(not set)" and "| None |" not in render_markdown(e)


class _Logged(BaseHTTPRequestHandler):
    page = b""
    seen: ClassVar[list] = []

    def _log(self):
        type(self).seen.append((self.command, self.path, self.headers.get("Referer")))

    def do_GET(self):
        self._log()
        if self.path.endswith("/report.html"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(self.page)))
            self.end_headers()
            self.wfile.write(self.page)
        else:
            self.send_error(404)

    def do_CONNECT(self):
        self._log()
        self.send_error(403)

    do_POST = do_HEAD = do_GET

    def log_message(self, *args):
        pass


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (apt-get install chromium)")
def test_report_loads_in_headless_chromium_without_network_requests(env, tmp_path):
    pytest.importorskip("matplotlib")
    _Logged.page, _Logged.seen = render_html(env).encode(), []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Logged)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    url = f"http://127.0.0.1:{port}/report.html"
    shot = tmp_path / "report.png"
    common = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              f"--proxy-server=http://127.0.0.1:{port}", "--proxy-bypass-list=<-loopback>",
              f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000"]
    try:
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True,
                             timeout=120, check=False)
        subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True,
                       timeout=120, check=False)
    finally:
        srv.shutdown()
        srv.server_close()
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h1>jobmedic report" in dom.stdout and dom.stdout.count("<svg") >= 3
    assert f"{env['stats']['data']['totals']['failures']:,}" in dom.stdout
    page_requests = [r for r in _Logged.seen if r[1] != url and r[1] != "/report.html"
                     and (r[2] or "").startswith(url)]
    assert page_requests == []  # nothing fetched on the page's behalf
    assert [r for r in _Logged.seen if r[1] in (url, "/report.html")]  # it came via the server
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
