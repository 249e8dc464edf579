"""Small named exceptions raised inside jobmedic; the boundaries turn them into user messages.

Each carries a message naming what was asked and a hint saying what to try next, the HTTP
status a server answers with, and whether the fault is the user's (bad input, unknown name) or
jobmedic's / the environment's (a store that cannot be opened).
"""
from __future__ import annotations


class JobmedicError(Exception):
    """Base class: `message` says what went wrong, `hint` what to try next."""

    kind = "error"
    http_status = 500
    user_fault = False

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class StoreError(JobmedicError):
    kind = "store_error"
    http_status = 503


class SchemaTooNew(StoreError):
    kind = "schema_too_new"
    http_status = 409
    user_fault = True


class NotFound(JobmedicError):
    """A named thing (project, node, job, ...) is not in the store (or not in scope)."""

    kind = "not_found"
    http_status = 404
    user_fault = True

    def __init__(self, what: str, name: str, known: list[str] | None = None,
                 closest: list[str] | None = None) -> None:
        self.what, self.name = what, name
        self.known = list(known or [])
        self.closest = list(closest or [])
        self.suggestions: list[dict] = []  # structured closest matches (job ids: id, cluster, state)
        msg = f"no {what} {name!r}"
        if self.closest:
            msg += f"; closest known: {', '.join(self.closest)}"
        elif self.known:
            shown = self.known[:10]
            msg += f"; known: {', '.join(shown)}" + (" ..." if len(self.known) > 10 else "")
        super().__init__(msg, hint=f"check the {what} name, or list them with `jobmedic stats --group-by {what}`")


class UnknownFailureType(JobmedicError):
    kind = "unknown_failure_type"
    http_status = 422
    user_fault = True

    def __init__(self, code: str, known: list[str], closest: list[str]) -> None:
        self.code, self.known, self.closest = code, known, closest
        msg = f"unknown failure type {code!r}"
        if closest:
            msg += f"; did you mean {', '.join(closest)}?"
        super().__init__(msg, hint="known codes: " + ", ".join(known))


class InputError(JobmedicError):
    """Input that cannot be read at all (unreadable file, unknown format, binary data)."""

    kind = "input_error"
    http_status = 422
    user_fault = True


class ModelError(JobmedicError):
    """A model artifact is missing, stale, corrupt or incompatible."""

    kind = "model_error"
    http_status = 503
    user_fault = True


class ScopeError(JobmedicError):
    """A caller tried to read or write something outside the projects it may see."""

    kind = "forbidden"
    http_status = 403
    user_fault = True


def status_by_kind() -> dict[str, int]:
    """Envelope error type -> HTTP status, from every error class's own declaration."""
    out: dict[str, int] = {}
    todo: list[type[JobmedicError]] = [JobmedicError]
    while todo:
        cls = todo.pop()
        out[cls.kind] = cls.http_status
        todo.extend(cls.__subclasses__())
    return out
