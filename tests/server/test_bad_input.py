"""Bad requests get the right status and a JSON error in the envelope's shape, and the
server keeps serving afterwards."""
from __future__ import annotations

import socket
import time

import httpx
import pytest

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("body,headers,status,etype,field", [
    (b'{"action": "stats", ', JSON, 400, "invalid_json", None),
    (b"\xff\xfe garbage", JSON, 400, "invalid_json", None),
    (b"[1, 2]", JSON, 400, "invalid_request", None),
    (b'{"action": "stat"}', JSON, 400, "unknown_action", "action"),
    (b'{"lookback_days": 3}', JSON, 400, "unknown_action", "action"),
    (b'{"action": "stats", "lookback_days": 0}', JSON, 422, "invalid_field", "lookback_days"),
    (b'{"action": "stats", "lookback_days": "soon"}', JSON, 422, "invalid_field", "lookback_days"),
    (b'{"action": "stats", "group_by": ["bogus"]}', JSON, 422, "invalid_field", "group_by.0"),
    (b'{"action": "stats", "colour": "red"}', JSON, 422, "invalid_field", "colour"),
    (b'{"action": "stats"}', {"content-type": "text/plain"}, 415, "unsupported_media_type", None),
    (b'{"action": "stats"}', {}, 415, "unsupported_media_type", None),
    (b'action=stats', {"content-type": "application/x-www-form-urlencoded"}, 415,
     "unsupported_media_type", None),
])
def test_bad_action_requests(client, body, headers, status, etype, field):
    r = client.post("/v1/actions", content=body, headers=headers)
    assert r.status_code == status, r.text
    env = r.json()
    assert env["status"] == "error"
    assert env["error"]["type"] == etype
    if field:
        assert env["error"]["field"] == field
        assert field.split(".")[0] in env["error"]["message"]
    if etype == "unknown_action":
        assert "stats" in env["error"]["hint"] and "record_outcome" in env["error"]["hint"]
    assert client.get("/healthz").json()["status"] == "ok"  # still serving


def test_unknown_action_suggests_the_closest(client):
    r = client.post("/v1/actions", json={"action": "analyse"})
    assert "did you mean analyze" in r.json()["error"]["message"]


def test_huge_body_with_content_length_is_413(client):
    r = client.post("/v1/actions", content=b"x" * 1_100_000, headers=JSON)
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "payload_too_large"


def test_huge_body_without_content_length_is_413(client):
    def chunks():
        for _ in range(200):
            yield b"y" * 10_000

    r = client.post("/v1/actions", content=chunks(), headers=JSON)
    assert "content-length" not in r.request.headers  # chunked transfer encoding
    assert r.status_code == 413
    assert client.get("/healthz").status_code == 200


def test_ask_validates_its_body(client):
    r = client.post("/v1/ask", json={"question": "hi", "sesion": "x"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "sesion"
    r = client.post("/v1/ask", json={"session": "x"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "question"
    r = client.post("/v1/ask", content=b"{nope", headers=JSON)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_json"
    r = client.post("/v1/ask", json={"question": "x" * 100_001})
    assert r.status_code == 422 and r.json()["error"]["field"] == "question"


def test_unknown_path_and_method_are_json(client):
    assert client.get("/v1/nothing").status_code == 404
    r = client.get("/v1/actions")
    assert r.status_code == 405 and "detail" in r.json()


def test_slow_client_does_not_stall_others(live_server):
    """A client that sends half a body and stalls: others are served meanwhile, and the
    stalled one gets 408 once the body timeout passes."""
    host, port = live_server.removeprefix("http://").split(":")
    slow = socket.create_connection((host, int(port)))
    slow.sendall(b"POST /v1/actions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"action\": ")
    t0 = time.perf_counter()
    with httpx.Client(base_url=live_server, timeout=5) as c:
        for _ in range(5):
            assert c.get("/healthz").status_code == 200
            r = c.post("/v1/actions", json={"action": "nosuch"})
            assert r.status_code == 400
    assert time.perf_counter() - t0 < 1.0  # not held up by the stalled client
    slow.settimeout(5)
    reply = slow.recv(65536)
    slow.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
    with httpx.Client(base_url=live_server, timeout=5) as c:
        assert c.get("/healthz").status_code == 200
