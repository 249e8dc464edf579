"""Scope: the projects a caller may see. None means every project; an empty list, none."""
from __future__ import annotations

from collections.abc import Sequence

Scope = Sequence[str] | None


def narrow(scope: Scope, requested: Sequence[str] | None) -> list[str] | None:
    """The caller's scope narrowed (never widened) by a request's own project list."""
    if requested is None:
        return None if scope is None else list(scope)
    if scope is None:
        return list(requested)
    return [p for p in requested if p in scope]
