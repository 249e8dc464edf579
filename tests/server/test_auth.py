"""Bearer tokens (stored as SHA-256 digests) and the scope they carry."""
from __future__ import annotations

import pytest

from jobmedic.server import bind_warning
from jobmedic.server.auth import AuthError, TokenAuth, hash_token, is_loopback, narrow
from jobmedic.settings import TokenSpec


def test_missing_or_wrong_token_is_401(token_client):
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "Basic abc"},
                    {"authorization": "Bearer "}):
        r = token_client.post("/v1/actions", json={"action": "stats"}, headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"]["type"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
    assert token_client.get("/metrics").status_code == 401
    assert token_client.post("/v1/ask", json={"question": "hi"}).status_code == 401


def test_right_token_is_let_in(token_client):
    r = token_client.post("/v1/actions", json={"action": "nosuch"},
                          headers={"authorization": "Bearer secret-ml"})
    assert r.status_code == 400  # past auth, into the action's own validation
    assert token_client.get("/metrics", headers={"authorization": "Bearer secret-admin"}
                            ).status_code == 200
    assert token_client.get("/healthz").json()["auth"] == "token"


def test_token_digest_must_be_hex():
    with pytest.raises(ValueError, match="sha256"):
        TokenAuth([TokenSpec(sha256="not-a-digest")])


def test_token_scope_is_narrowed_by_the_server_scope():
    auth = TokenAuth([TokenSpec(sha256=hash_token("a"), projects=["x", "y"]),
                      TokenSpec(sha256=hash_token("b"), projects=None)], server_scope=["y", "z"])
    assert auth.caller("Bearer a").scope == ["y"]
    assert auth.caller("Bearer b").scope == ["y", "z"]
    with pytest.raises(AuthError):
        auth.caller("Bearer c")
    assert TokenAuth([]).caller(None).scope is None  # local single-user mode
    assert narrow(None, None) is None and narrow(["a"], None) == ["a"]


def test_warning_when_open_beyond_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    assert bind_warning("127.0.0.1", TokenAuth([])) is None
    assert "no API token" in bind_warning("0.0.0.0", TokenAuth([]))
    assert bind_warning("0.0.0.0", TokenAuth([TokenSpec(sha256=hash_token("a"))])) is None
