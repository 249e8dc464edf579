"""The jobmedic command line: a thin layer over the library (ingest, db, actions, ...), set up
through jobmedic.app. One command per action is generated from the TOOLS registry. The program
entry point (`jobmedic`, `python -m jobmedic`) is jobmedic.main, which adds the commands that
start the other surfaces (serve, chat, demo); this package imports none of them.

The Typer app (`app`, `build`) lives in jobmedic.cli.commands and is imported when first asked
for, so the typer-free modules - jobmedic.cli.plain (state, fault reporting, printing an
envelope) and jobmedic.cli.fast (the fast path of the common action commands) - can be used
without importing typer (issue 16 items 5 and 6).
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "build", "sync"):
        from jobmedic.cli import commands

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
