"""The fast path of the `jobmedic` program (issue 16 items 5 and 6): the action commands
(`jobmedic remediate --job-id N`, `jobmedic stats --project p`, ...) and `jobmedic act JSON|-`
run without importing typer, whose import and click tree (every command of the program, each
option a pydantic TypeAdapter) cost more than the action itself on a warm store.

It takes only command lines it reads exactly as typer does and leaves everything else to typer
(run_fast returns None): global options among --db, --config, --as-of, --scope and
--cluster-name (each at most once, `--opt value` or `--opt=value`), then `act` with one JSON
argument or `-`, or an action command with options that are text fields of its request model
(plain.cli_kind "str") and --json. Help, --debug (and JOBMEDIC_DEBUG=1), numbers, flags, lists,
repeated or unknown options, a value starting with `-`, shell completion, and streams click
would wrap (not UTF-8 text files) all go to typer, which prints the same usage messages as
before. The command then runs through the same functions as under typer (jobmedic.cli.plain):
the same request, envelope, output, `error:`/`hint:` lines and exit codes;
tests/cli/test_fast_path.py compares the two paths byte for byte.
"""
from __future__ import annotations

import codecs
import io
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobmedic.cli.plain import CliState

#: The global options that take a text value (jobmedic.cli.commands._global) -> CliState field.
GLOBAL_OPTIONS = {"--db": "db", "--config": "config", "--as-of": "as_of", "--scope": "scope",
                  "--cluster-name": "cluster"}
#: click's strip_ansi pattern (ANSI styles are removed from output that is not a terminal).
_ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")

#: A planned command: runs it for the invocation's CliState. jobmedic.cli.plain (and what it
#: imports) is imported once a line is taken, so `--help` and `db info` do not pay for it.
Run = Callable[["CliState"], None]


def echo(message: str, err: bool = False) -> None:
    """typer.echo(message, err=err) for a str on a stream _plain_stream accepts (click returns
    such a stream as it is): the line and a newline, ANSI styles stripped unless the stream is
    a terminal, flushed."""
    file = sys.stderr if err else sys.stdout
    out = message + "\n"
    try:
        tty = file.isatty()
    except Exception:  # noqa: BLE001 - click's isatty answers False as well
        tty = False
    if not tty:
        out = _ANSI.sub("", out)
    file.write(out)
    file.flush()


def _plain_stream(stream: Any) -> bool:
    """A UTF-8 text file or pipe: what click writes to without wrapping it."""
    if type(stream) is not io.TextIOWrapper:
        return False
    try:
        return codecs.lookup(stream.encoding).name == "utf-8"
    except LookupError:
        return False


def _text(token: str) -> bool:
    """A command-line token typer reads as the same str (no undecodable bytes)."""
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _option(args: list[str], i: int) -> tuple[str, str, int] | None:
    """(option name, its value, index after it) of an option that takes a value at args[i],
    or None when typer must read it (no value, or a value that looks like an option)."""
    name, eq, value = args[i].partition("=")
    if eq:
        return name, value, i + 1
    if i + 1 >= len(args) or args[i + 1].startswith("-"):
        return None
    return name, args[i + 1], i + 2


def parse_globals(argv: list[str]) -> tuple[dict[str, str], int] | None:
    """(the global options as CliState fields, index of the command), or None."""
    opts: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        got = _option(argv, i)
        if got is None:
            return None
        name, value, i = got
        key = GLOBAL_OPTIONS.get(name)
        if key is None or key in opts:
            return None
        opts[key] = value
    return (opts, i) if i < len(argv) else None


def _act(args: list[str]) -> Run | None:
    if len(args) != 1 or (args[0].startswith("-") and args[0] != "-"):
        return None
    from jobmedic.cli import plain

    request = args[0]
    return lambda cli: plain.act(cli, request, echo)


def action_commands() -> dict[str, Any]:
    """Command name -> registry entry of the action commands at the top level."""
    from jobmedic.tools import TOOLS

    return {t.name.replace("_", "-"): t for t in TOOLS}  # plain.command_name


def _action(command: str, args: list[str]) -> Run | None:
    tool = action_commands().get(command)
    if tool is None:
        return None
    from jobmedic.cli import plain

    fields = tool.request_model.model_fields
    options: dict[str, str] = {}
    as_json = False
    i = 0
    while i < len(args):
        if args[i] == "--json" and not as_json:
            as_json, i = True, i + 1
            continue
        if not args[i].startswith("--"):
            return None
        got = _option(args, i)
        if got is None:
            return None
        name, value, i = got
        field = name[2:].replace("-", "_")
        finfo = fields.get(field)
        if (field == "action" or finfo is None or name != "--" + field.replace("_", "-")
                or field in options or plain.cli_kind(finfo.annotation) != "str"):
            return None
        options[field] = value
    # typer passes the options in the order of the request model's fields, whatever their
    # order on the command line (a request error quotes the payload in that order)
    options = {f: options[f] for f in fields if f in options}
    action = tool.name
    return lambda cli: plain.emit(plain.run_payload(cli, plain.action_payload(action, options)),
                                  as_json, echo)


def plan(argv: list[str]) -> tuple[dict[str, str], Run] | None:
    """(global options, the command to run) when the fast path reads `argv` as typer would."""
    if (os.name != "posix" or os.environ.get("_JOBMEDIC_COMPLETE")
            or os.environ.get("JOBMEDIC_DEBUG") == "1"
            or not (_plain_stream(sys.stdout) and _plain_stream(sys.stderr))
            or not all(_text(a) for a in argv)):
        return None
    parsed = parse_globals(argv)
    if parsed is None:
        return None
    opts, i = parsed
    command, args = argv[i], argv[i + 1:]
    run = _act(args) if command == "act" else _action(command, args)
    return None if run is None else (opts, run)


def run_fast(argv: list[str]) -> int | None:
    """Run the command line on the fast path and return its exit code (an action that failed
    raises SystemExit, as under typer), or None when typer must run it."""
    planned = plan(argv)
    if planned is None:
        return None
    from jobmedic.cli import plain

    opts, run = planned
    cli = plain.CliState(**opts)
    try:
        run(cli)
    except KeyboardInterrupt:
        return 130  # typer: Exit(130)
    except Exception as exc:  # noqa: BLE001 - as JobmedicGroup.invoke: the error line, the code
        if plain.pipe_closed(exc):
            return plain.PIPE_CLOSED
        msg, hint, code = plain.describe(exc)
        plain.print_error(msg, hint)
        return code
    finally:
        cli.close()
    return 0
