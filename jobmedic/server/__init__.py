"""The HTTP JSON action API (`jobmedic serve`), a package of small parts: `api` (the routes),
`httputil` (bodies, limits, error envelopes, status codes), `auth` (bearer tokens -> scope),
`cache` (read-only answers), `metrics` (Prometheus), `pool` (a store connection per worker
thread) and `ask` (assistant sessions). It is set up through jobmedic.app, like every surface.
"""
from __future__ import annotations

from jobmedic.server.api import bind_warning, create_app, refuse_unauthenticated, serve

__all__ = ["bind_warning", "create_app", "refuse_unauthenticated", "serve"]
