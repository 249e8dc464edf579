"""Issue 11 (HTTP): every malformed request gets the documented 4xx envelope - never a 500,
never a reset connection; connections that never finish their headers are closed; a server
without tokens does not listen beyond loopback unless told; a scoped token's /metrics shows
only the service's own metrics."""
from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from jobmedic.server import create_app, refuse_unauthenticated
from jobmedic.server.auth import TokenAuth, hash_token
from jobmedic.server.guard import guarded_protocol
from jobmedic.settings import TokenSpec
from jobmedic.tools import TOOLS
from tests.server.conftest import _free_port, make_settings

JSON = {"content-type": "application/json"}
DEEP = b'{"action": "stats", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize("body,status,etype", [
    (DEEP, 400, "too_deep"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "too_deep"),
    (b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, 400, "too_deep"),
    (b'{"action": "stats", "lookback_days": ' + b"9" * 5000 + b"}", 400, "invalid_json"),
    (json.dumps({"action": ["stats"]}).encode(), 400, "unknown_action"),
    (json.dumps({"action": {"name": "stats"}}).encode(), 400, "unknown_action"),
    (json.dumps({"action": "stats", "as_of": "inf"}).encode(), 422, "invalid_field"),
    (json.dumps({"action": "analyze", "as_of": "-inf"}).encode(), 422, "invalid_field"),
    (json.dumps({"action": "stats", "as_of": "1e300"}).encode(), 422, "invalid_field"),
    (json.dumps({"action": "predict", "project": "ml-team", "submit_time": "inf"}).encode(),
     422, "invalid_field"),
    (json.dumps({"action": "predict", "project": "ml-team", "submit_time": "nan"}).encode(),
     422, "invalid_field"),
    (b'{"action": "stats", "lookback_days": NaN}', 422, "invalid_field"),
])
def test_malformed_bodies_get_the_4xx_envelope(client, body, status, etype):
    r = client.post("/v1/actions", content=body, headers=JSON)
    assert r.status_code == status, r.text[:300]
    env = r.json()
    assert env["status"] == "error" and env["error"]["type"] == etype
    assert set(env) >= {"status", "action", "data", "text", "invocation", "error"}
    assert client.get("/healthz").json()["status"] == "ok"


BAD_VALUES = ["inf", "-inf", "nan", "1e300", -1, 0, 2**70, 1e308, "", "\x00", "0001-01-01",
              "9999-12-31T23:59:59", [], {}, ["x"], True, None, "x" * 20_000]


def test_no_field_value_is_an_internal_error(client):
    """Every field of every action's request model, with values that have crashed parsers:
    the answer is an envelope, and never a 500."""
    tried = 0
    for tool in TOOLS:
        for name in tool.request_model.model_fields:
            if name == "action":
                continue
            for value in BAD_VALUES:
                body = {"action": tool.name, name: value}
                r = client.post("/v1/actions", json=body)
                tried += 1
                assert r.status_code != 500, (tool.name, name, value, r.text[:300])
                assert r.json()["status"] in ("ok", "no_data", "error")
    assert tried > 300


def test_bad_requests_keep_the_keep_alive_connection(live_server):
    """Malformed requests on one keep-alive connection each get their answer; the connection
    is not reset and serves a good request afterwards."""
    seen: set = set()
    with httpx.Client(base_url=live_server, timeout=10) as c:
        for body in (DEEP, json.dumps({"action": ["stats"]}).encode(),
                     json.dumps({"action": "stats", "as_of": "inf"}).encode(),
                     json.dumps({"action": "predict", "project": "x", "submit_time": "inf"}).encode()):
            r = c.post("/v1/actions", content=body, headers=JSON)
            assert 400 <= r.status_code < 500, r.text[:200]
            seen.add(r.extensions["network_stream"].get_extra_info("client_addr"))
        r = c.post("/v1/actions", json={"action": "stats", "lookback_days": 30})
        assert r.status_code == 200
        seen.add(r.extensions["network_stream"].get_extra_info("client_addr"))
    assert len(seen) == 1  # one connection throughout


@pytest.fixture
def guarded_server(db_path, taxonomy):
    """A uvicorn server with jobmedic's connection guard and a short header deadline."""
    import uvicorn

    app = create_app(make_settings(db_path), taxonomy=taxonomy)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           http=guarded_protocol(0.5, 4096)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    assert server.started
    yield port
    server.should_exit = True
    thread.join(10)


def _reply(sock: socket.socket, wait: float = 5.0) -> tuple[bytes, float]:
    sock.settimeout(wait)
    t0 = time.perf_counter()
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass
    return data, time.perf_counter() - t0


def test_unfinished_headers_are_timed_out(guarded_server):
    port = guarded_server
    silent = socket.create_connection(("127.0.0.1", port))  # sends nothing at all
    partial = socket.create_connection(("127.0.0.1", port))
    partial.sendall(b"POST /v1/actions HTTP/1.1\r\nHost: x\r\nContent-Ty")
    reply, waited = _reply(partial)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
    assert waited < 3
    reply, waited = _reply(silent)
    assert reply == b"" and waited < 3  # closed, not held open
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
        assert c.get("/healthz").status_code == 200  # keep-alive requests still work
        time.sleep(0.2)
        assert c.get("/healthz").status_code == 200


def test_oversized_headers_are_refused(guarded_server):
    sock = socket.create_connection(("127.0.0.1", guarded_server))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n")
    reply, _ = _reply(sock)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:100]


def test_no_token_beyond_loopback_refuses_to_start():
    none = TokenAuth([])
    assert refuse_unauthenticated("127.0.0.1", none) is None
    assert refuse_unauthenticated("::1", none) is None
    assert "refusing" in refuse_unauthenticated("0.0.0.0", none)
    assert refuse_unauthenticated("0.0.0.0", none, insecure_no_auth=True) is None
    assert refuse_unauthenticated("0.0.0.0", TokenAuth([TokenSpec(sha256=hash_token("a"))])) is None


def test_serve_command_refuses_without_tokens(tmp_path):
    from typer.testing import CliRunner

    from jobmedic.main import app

    r = CliRunner().invoke(app, ["--db", str(tmp_path / "x.db"), "serve", "--host", "0.0.0.0"])
    assert r.exit_code == 2
    assert "refusing to serve on 0.0.0.0" in r.output and "--insecure-no-auth" in r.output
    assert "Traceback" not in r.output


def test_scoped_metrics_show_no_store_counts(token_client):
    admin = token_client.get("/metrics", headers={"authorization": "Bearer secret-admin"}).text
    assert 'jobmedic_store_rows{table="jobs"}' in admin
    scoped = token_client.get("/metrics", headers={"authorization": "Bearer secret-ml"})
    assert scoped.status_code == 200
    assert "jobmedic_http_requests_total" in scoped.text
    assert "jobmedic_store_rows" not in scoped.text
