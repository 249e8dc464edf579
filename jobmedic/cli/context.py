"""The CLI's state and its one way of reporting faults.

The global options are kept as given and resolved into a `jobmedic.app.App` (settings, store,
taxonomy, rules, tool context) only when a command needs it, so `--help` never opens the store
or reads a configuration file. Every expected fault becomes one `error:` line and a `hint:`
line with a non-zero exit; `--debug` shows the traceback instead.
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from jobmedic.knowledge.errors import JobmedicError


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


def state(ctx: typer.Context):  # -> jobmedic.app.App
    """The App of this invocation (settings, store, taxonomy, rules, tool_context())."""
    return cli_state(ctx).app


def cli_state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = CliState()
    return root.obj


def fail(exc: JobmedicError | str, code: int = 1, hint: str = "") -> NoReturn:
    """Print a one-line error (and hint) to stderr and exit with `code`."""
    if isinstance(exc, JobmedicError):
        msg, hint = exc.message, exc.hint or hint
    else:
        msg = exc
    _print_error(msg, hint)
    raise typer.Exit(code)


def _print_error(msg: str, hint: str) -> None:
    from rich.console import Console
    from rich.text import Text

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(Text.assemble(("error: ", "bold red"), msg.replace("\n", " ")))
    if hint:
        err.print(Text("hint: " + hint, style="dim"))


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


def _is_usage_error(exc: BaseException) -> bool:
    """A click usage error (typer ships its own copy of click, so match by class name)."""
    return any(c.__name__ == "ClickException" for c in type(exc).__mro__)


class JobmedicGroup(TyperGroup):
    """The root command group: turns any fault escaping a command into `error:` / `hint:`
    lines and a non-zero exit, unless `--debug` (or JOBMEDIC_DEBUG=1) asks for the traceback."""

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # the one place faults become messages
            if _is_usage_error(exc):  # bad flags: click prints its usage message
                raise
            obj = ctx.obj if isinstance(ctx.obj, CliState) else None
            if (obj is not None and obj.debug) or os.environ.get("JOBMEDIC_DEBUG") == "1":
                raise
            msg, hint, code = describe(exc)
            _print_error(msg, hint)
            raise typer.Exit(code) from None
