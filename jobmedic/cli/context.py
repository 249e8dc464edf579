"""The CLI's state and its one way of reporting faults.

The global options are kept as given (CliState, jobmedic.cli.plain) and resolved into a
`jobmedic.app.App` (settings, store, taxonomy, rules, tool context) only when a command needs
it, so `--help` never opens the store or reads a configuration file. Every expected fault
becomes one `error:` line and a `hint:` line with a non-zero exit; `--debug` shows the
traceback instead.
"""
from __future__ import annotations

import os
from typing import NoReturn

import typer
from typer.core import TyperGroup

from jobmedic.cli.plain import PIPE_CLOSED, CliState, describe, pipe_closed
from jobmedic.cli.plain import print_error as _print_error
from jobmedic.knowledge.errors import JobmedicError

__all__ = ["CliState", "JobmedicGroup", "cli_state", "describe", "fail", "state"]


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
            if pipe_closed(exc):  # `jobmedic ... | head`: the reader left, nothing to report
                raise typer.Exit(PIPE_CLOSED) from None
            obj = ctx.obj if isinstance(ctx.obj, CliState) else None
            if (obj is not None and obj.debug) or os.environ.get("JOBMEDIC_DEBUG") == "1":
                raise
            msg, hint, code = describe(exc)
            _print_error(msg, hint)
            raise typer.Exit(code) from None
