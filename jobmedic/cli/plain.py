"""The typer-free half of the command line, shared by the Typer commands and the fast path
(jobmedic.cli.fast): the invocation's state (CliState), fault reporting (one `error:` line and
a `hint:` line), the CLI type of a request field, the payload of an action command, printing an
envelope and its exit code, and `act`.

Nothing here imports typer; the printing functions take the `echo` to use (typer.echo under
typer, jobmedic.cli.fast.echo on the fast path), so both paths run the same code.
"""
from __future__ import annotations

import sqlite3
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobmedic.core import jsonsafe
from jobmedic.knowledge.errors import JobmedicError

if TYPE_CHECKING:
    from jobmedic.tools.base import ToolResult

#: typer.echo's (message, err=False) subset: print a line to stdout or stderr.
Echo = Callable[..., None]
#: Envelope error types of a malformed request (exit 2, like the user-fault error classes).
REQUEST_ERRORS = frozenset({"invalid_json", "invalid_request", "invalid_field", "unknown_action",
                            "too_deep"})


@dataclass
class CliState:
    """The global options of one invocation and the App built from them on first use."""

    db: str | None = None
    config: str | None = None
    as_of: str | None = None
    scope: str | None = None
    cluster: str | None = None
    debug: bool = False
    _app: Any = field(default=None, repr=False)

    @property
    def app(self):  # -> jobmedic.app.App
        if self._app is None:
            from jobmedic.app import App

            self._app = App.open(self.config, db=self.db, as_of=self.as_of, scope=self.scope,
                                 cluster=self.cluster)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


def print_error(msg: str, hint: str) -> None:
    """The `error:` line (and `hint:` line) of a fault, on stderr."""
    from rich.console import Console
    from rich.text import Text

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(Text.assemble(("error: ", "bold red"), msg.replace("\n", " ")))
    if hint:
        err.print(Text("hint: " + hint, style="dim"))


PIPE_CLOSED = 141  # the shell's code for a process ended by SIGPIPE (128 + 13)


def pipe_closed(exc: BaseException) -> bool:
    """True when `exc` is the reader of our output going away (`jobmedic ... | head`): not an
    error to report. Only a broken STDOUT counts (a broken pipe elsewhere stays an error); stdout
    is then pointed at /dev/null so the interpreter's last flush stays quiet."""
    if not isinstance(exc, BrokenPipeError):
        return False
    import os
    import sys

    if not _stdout_gone(sys.stdout):
        return False  # stdout still has its reader: the broken pipe was something else
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(fd, sys.stdout.fileno())
        finally:
            os.close(fd)
    except (OSError, ValueError):
        pass
    return True


def _stdout_gone(stream) -> bool:
    """Whether `stream`'s reader has closed its end (poll reports an error on the pipe); True
    when that cannot be told (no poll, no file descriptor)."""
    import select

    try:
        p = select.poll()
        p.register(stream.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in p.poll(0))
    except (OSError, ValueError, AttributeError):
        return True


def describe(exc: BaseException) -> tuple[str, str, int]:
    """(message, hint, exit code) for a fault a command did not handle itself."""
    if isinstance(exc, JobmedicError):
        return exc.message, exc.hint, 2 if exc.user_fault else 1
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return ("the store is locked by another process",
                "wait for the other jobmedic (an ingest?) to finish, then retry", 1)
    if isinstance(exc, sqlite3.DatabaseError):
        return (f"the store cannot be used: {exc}",
                "check that --db names a jobmedic store (an SQLite file)", 1)
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return (f"cannot use{where}: {exc.strerror or exc}",
                "check the path and its permissions", 2)
    return (f"internal error: {type(exc).__name__}: {exc}",
            "this is a bug in jobmedic; rerun with --debug to see the traceback", 1)


# -- action commands ---------------------------------------------------------------------------
def command_name(action: str) -> str:
    """The CLI command of an action (record_outcome -> record-outcome)."""
    return action.replace("_", "-")


def unwrap(annotation: Any) -> Any:
    """The inner type of an annotation like `str | None`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def cli_kind(annotation: Any) -> str:
    """How a request field is given on the command line: "list" (a repeatable option), "bool"
    (--x/--no-x), "int" or "float" (converted by typer), or "str" (the text as given; the
    request model validates it)."""
    inner = unwrap(annotation)
    if typing.get_origin(inner) is list:
        return "list"
    if inner is bool:
        return "bool"
    return {int: "int", float: "float"}.get(inner, "str")


def action_payload(action: str, options: dict[str, Any]) -> dict[str, Any]:
    """The request an action command sends: its options, less those not given."""
    payload: dict[str, Any] = {"action": action}
    for k, v in options.items():
        if v is None or (isinstance(v, list) and not v):
            continue
        payload[k] = v
    return payload


def run_payload(cli: CliState, payload: dict[str, Any] | str) -> ToolResult:
    from jobmedic.tools import run_action

    return run_action(payload, cli.app.tool_context())


# -- printing an envelope --------------------------------------------------------------------
def user_errors() -> frozenset[str]:
    """Error types that are the user's fault: malformed requests and every error class that
    declares user_fault (not_found, unknown_failure_type, input_error, model_error, ...)."""
    kinds: set[str] = set(REQUEST_ERRORS)
    todo: list[type[JobmedicError]] = [JobmedicError]
    while todo:
        cls = todo.pop()
        if cls.user_fault:
            kinds.add(cls.kind)
        todo.extend(cls.__subclasses__())
    return frozenset(kinds)


def exit_code(result: ToolResult) -> int:
    if result.status != "error":
        return 0
    return 2 if result.error and result.error.type in user_errors() else 1


def emit(result: ToolResult, as_json: bool, echo: Echo) -> None:
    """Print an envelope: JSON, or its markdown report (rendered on a terminal); a failed
    action exits non-zero (SystemExit)."""
    if as_json:
        echo(result.model_dump_json(indent=2))
    else:
        text = result.text or result.status
        if result.status == "error":
            echo(text, err=True)
        elif sys.stdout.isatty():
            from rich.console import Console
            from rich.markdown import Markdown

            Console().print(Markdown(text))
        else:
            echo(text)
    code = exit_code(result)
    if code:
        raise SystemExit(code)


def act(cli: CliState, request: str, echo: Echo) -> None:
    """`jobmedic act JSON|-`: run one action from a flat JSON object, print the envelope."""
    raw = sys.stdin.read() if request == "-" else request
    try:
        payload = jsonsafe.loads(raw)
    except jsonsafe.BadJson as exc:
        from jobmedic.tools.base import error_result

        emit(error_result("?", exc.kind, exc.message,
                          'give one flat JSON object, e.g. {"action": "stats"}'), True, echo)
        return
    emit(run_payload(cli, payload), True, echo)
