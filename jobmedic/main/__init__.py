"""The `jobmedic` program (`jobmedic`, `python -m jobmedic`): the command line plus the commands
that start the other surfaces (serve, chat, demo), assembled in jobmedic.main.program.

`main` first offers the command line to the fast path (jobmedic.cli.fast), which runs the
common action commands (`jobmedic remediate --job-id N`, `jobmedic act JSON`, ...) exactly as
typer would but without importing typer; anything else - help, errors of the command line,
every other command - goes to the Typer app (issue 16 items 5 and 6). `app` and `build` are
the program's Typer app and click command tree, built when first asked for.
"""
from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    from jobmedic.cli.fast import run_fast

    code = run_fast(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from jobmedic.main.program import run

    run()


def build():
    """The click command tree of the whole program (for tests and doc generation)."""
    from jobmedic.main.program import build as build_tree

    return build_tree()


def __getattr__(name: str) -> Any:
    if name in ("app", "serve", "chat", "demo"):
        from jobmedic.main import program

        return getattr(program, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
