"""Bearer-token authentication for the HTTP API.

Tokens are configured as SHA-256 hex digests (`server.tokens: [{sha256, projects, name}]`), so
the configuration file never holds a usable secret. Each token maps to the projects it may see;
that list becomes the caller's scope, narrowed further by `allowed_projects` when the server
itself is restricted. With no token configured the server runs in local single-user mode: every
request gets the server's own scope.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass


class AuthError(Exception):
    """A missing or wrong token (HTTP 401)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Caller:
    """Who is asking: a token name (or 'local') and the projects they may see (None = all)."""

    name: str
    scope: list[str] | None


def hash_token(token: str) -> str:
    """The SHA-256 hex digest to put in `server.tokens[].sha256` for a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def narrow(token_projects: Sequence[str] | None, server_scope: Sequence[str] | None
           ) -> list[str] | None:
    """The intersection of a token's projects and the server's own scope (None = all)."""
    if token_projects is None:
        return None if server_scope is None else list(server_scope)
    if server_scope is None:
        return list(token_projects)
    return [p for p in token_projects if p in server_scope]


class TokenAuth:
    """Checks `Authorization: Bearer <token>` against the configured digests."""

    def __init__(self, tokens: Sequence[object], server_scope: Sequence[str] | None = None) -> None:
        self.server_scope = None if server_scope is None else list(server_scope)
        self._tokens: list[tuple[bytes, Caller]] = []
        for i, spec in enumerate(tokens):
            digest = str(getattr(spec, "sha256", "") or "").strip().lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"server.tokens[{i}].sha256 must be a 64-digit hex SHA-256 digest "
                                 f"(make one with `jobmedic serve --hash-token TOKEN`)")
            name = getattr(spec, "name", None) or f"token-{i + 1}"
            self._tokens.append((bytes.fromhex(digest),
                                 Caller(name, narrow(getattr(spec, "projects", None),
                                                     self.server_scope))))

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def caller(self, authorization: str | None) -> Caller:
        """The caller for an Authorization header; AuthError when tokens are on and it fails."""
        if not self._tokens:
            return Caller("local", self.server_scope)
        if not authorization:
            raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("malformed Authorization header: expected 'Bearer <token>'")
        digest = hashlib.sha256(token.strip().encode("utf-8")).digest()
        found: Caller | None = None
        for known, who in self._tokens:  # constant time per comparison, all compared
            if hmac.compare_digest(known, digest):
                found = who
        if found is None:
            raise AuthError("invalid bearer token")
        return found


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
