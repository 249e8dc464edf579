"""Actions over HTTP: the same envelope as `jobmedic act`, scope from the token, concurrent
writes all kept, and the assistant's `ask --json` shape."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
from typer.testing import CliRunner

from jobmedic.cli import app as cli_app
from jobmedic.knowledge.store import Store

STATS = {"action": "stats", "lookback_days": 30, "group_by": ["project", "node"]}


def test_same_envelope_as_jobmedic_act(client, db_path):
    r = client.post("/v1/actions", json=STATS)
    assert r.status_code == 200, r.text
    http_env = r.json()
    res = CliRunner().invoke(cli_app, ["--db", str(db_path), "--as-of", "2024-05-03", "act",
                                       json.dumps(STATS)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == http_env
    assert http_env["status"] == "ok" and http_env["data"]["totals"]["failures"] > 0


def _projects_named(env: dict) -> set[str]:
    text = json.dumps(env)
    return {p for p in ("ml-team", "physics", "bio") if f'"{p}"' in text or f" {p} " in text
            or f"| {p} |" in text}


def test_token_scope_is_enforced(token_client):
    ml = token_client.post("/v1/actions", json=STATS, headers={"authorization": "Bearer secret-ml"})
    admin = token_client.post("/v1/actions", json=STATS,
                              headers={"authorization": "Bearer secret-admin"})
    assert ml.status_code == admin.status_code == 200
    assert ml.json()["invocation"]["scope"] == ["ml-team"]
    assert _projects_named(ml.json()) == {"ml-team"}
    assert _projects_named(admin.json()) >= {"ml-team", "physics", "bio"}
    # a project outside the scope looks like one that does not exist
    other = token_client.post("/v1/actions", json={**STATS, "project": "physics"},
                              headers={"authorization": "Bearer secret-ml"})
    assert other.status_code == 404 and other.json()["error"]["field"] == "project"
    assert "physics" not in json.dumps(other.json()["error"].get("hint", ""))
    # allowed_projects in the body narrows, never widens
    wider = token_client.post("/v1/actions", json={**STATS, "allowed_projects": ["bio", "ml-team"]},
                              headers={"authorization": "Bearer secret-ml"})
    assert wider.json()["invocation"]["scope"] == ["ml-team"]


def test_concurrent_record_outcome_writes_are_all_kept(live_server, db_path):
    """32 clients each record 10 distinct outcomes while reading stats: none is lost."""
    def client_run(i: int) -> list[int]:
        codes = []
        with httpx.Client(base_url=live_server, timeout=60) as c:
            for k in range(10):
                body = {"action": "record_outcome", "failure_type": "oom",
                        "solution": f"fix number {i}-{k}", "success": bool(k % 2),
                        "note": f"client {i} attempt {k}", "recorded_by": f"client-{i}"}
                codes.append(c.post("/v1/actions", json=body).status_code)
                codes.append(c.post("/v1/actions", json={"action": "stats"}).status_code)
        return codes

    with ThreadPoolExecutor(32) as pool:
        codes = [c for cs in pool.map(client_run, range(32)) for c in cs]
    assert set(codes) == {200}, sorted(set(codes))
    with Store(db_path) as store:
        n = store.conn.execute("SELECT COUNT(*) FROM solution_outcomes WHERE recorded_by LIKE "
                               "'client-%'").fetchone()[0]
    assert n == 320


def test_ask_returns_the_ask_json_shape(client):
    r = client.post("/v1/ask", json={"question": "what failed in the last 3 days?",
                                     "session": "s1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"answer", "calls"}
    assert body["calls"] and body["calls"][0]["action"] in ("analyze", "stats")
    assert "Actions run" in body["answer"]
    r = client.post("/v1/ask", json={"question": "", "session": "s1"})
    assert r.status_code == 200 and "You can ask" in r.json()["answer"]


def test_ask_is_scoped_by_token(token_client):
    r = token_client.post("/v1/ask", json={"question": "what failed in physics?"},
                          headers={"authorization": "Bearer secret-ml"})
    assert r.status_code == 200
    calls = r.json()["calls"]
    assert not any((c.get("args") or {}).get("project") == "physics" and c["status"] == "ok"
                   for c in calls)


def test_a_write_onto_another_projects_job_is_403_and_writes_nothing(token_client, db_path):
    """Issue 11: a token for ml-team cannot put a failure event or an outcome on bio's job."""
    ml = {"authorization": "Bearer secret-ml"}
    bio = {"authorization": "Bearer secret-bio"}
    with Store(db_path) as s:
        before = s.table_counts()
    # record_failure names the job it writes onto: refused as forbidden; record_outcome looks
    # the job up inside the caller's projects first, so another project's job is not found
    for body, status, kind in (
            ({"action": "record_failure", "job_id": "1009", "job_name": "x", "cluster": "hpc",
              "project": "ml-team", "error_message": "Killed: oom-kill event in step"},
             403, "forbidden"),
            ({"action": "record_outcome", "job_id": "1009", "solution": "SECRET AWS_KEY=x",
              "success": True}, 404, "not_found")):
        r = token_client.post("/v1/actions", json=body, headers=ml)
        assert r.status_code == status, r.json()
        assert r.json()["error"]["type"] == kind
    with Store(db_path) as s:
        assert s.table_counts() == before
    seen = token_client.post("/v1/actions", json={"action": "diagnose", "job_id": "1009"},
                             headers=bio).json()
    fixes = token_client.post("/v1/actions", json={"action": "remediate", "job_id": "1009"},
                              headers=bio).json()
    assert "oom-kill" not in json.dumps(seen) and "SECRET" not in json.dumps(fixes)
