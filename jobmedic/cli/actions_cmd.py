"""Action commands: `jobmedic act JSON|-` and one command per tool (analyze, stats, ...),
generated from each action's request model so the CLI flags are exactly the JSON fields."""
from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import typer
from typer.core import TyperCommand

from jobmedic.cli import plain
from jobmedic.cli.context import cli_state
from jobmedic.cli.plain import REQUEST_ERRORS, exit_code, user_errors
from jobmedic.tools import TOOLS, tool_named

if TYPE_CHECKING:  # the registry is lazy: listing commands imports no tool (issue 16)
    from jobmedic.tools.base import Tool, ToolResult

#: Tool name -> CLI command name where they differ (record_outcome lives under `outcome record`).
COMMAND_NAMES = {t.name: plain.command_name(t.name) for t in TOOLS if "_" in t.name}
__all__ = ["COMMAND_NAMES", "REQUEST_ERRORS", "act_command", "command_for", "emit", "exit_code",
           "lazy_command", "register", "run_payload", "user_errors"]


def emit(result: ToolResult, as_json: bool) -> None:
    """Print an envelope: JSON, or its markdown report (rendered on a terminal)."""
    plain.emit(result, as_json, typer.echo)


def run_payload(ctx: typer.Context, payload: dict[str, Any] | str) -> ToolResult:
    return plain.run_payload(cli_state(ctx), payload)


def act_command(
    ctx: typer.Context,
    request: str = typer.Argument(..., metavar="JSON|-", help="One JSON object with an 'action' field, or - for stdin."),
) -> None:
    """Run one action from a flat JSON object and print the envelope as JSON.

    Example: jobmedic act '{"action": "stats", "lookback_days": 7}'
    """
    plain.act(cli_state(ctx), request, typer.echo)


def _parameter(name: str, finfo: Any) -> inspect.Parameter:
    """A Typer option for one request field; values are validated by the request model. The
    kind of option is plain.cli_kind's (the fast path reads the command line by it too)."""
    inner = plain.unwrap(finfo.annotation)
    kind = plain.cli_kind(finfo.annotation)
    flag = "--" + name.replace("_", "-")
    help_text = finfo.description or name.replace("_", " ")
    origin = typing.get_origin(inner)
    if origin is Literal:
        help_text += f" [one of: {', '.join(map(str, typing.get_args(inner)))}]"
    if kind == "list":
        (item,) = typing.get_args(inner)
        if typing.get_origin(item) is Literal:
            help_text += f" [each one of: {', '.join(map(str, typing.get_args(item)))}]"
        annotation: Any = list[str] | None
        opt = typer.Option(None, flag, help=help_text + " (repeatable)")
    elif kind == "bool":
        annotation = bool | None
        opt = typer.Option(None, f"{flag}/--no-{name.replace('_', '-')}", help=help_text)
    else:
        annotation = {"int": int, "float": float}.get(kind, str) | None
        default = None if finfo.is_required() else finfo.default
        if finfo.is_required():
            help_text += " [required]"
        opt = typer.Option(None, flag, help=help_text + (f" [default: {default}]" if default is not None else ""))
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=annotation)



def command_for(tool: Tool) -> Callable[..., None]:
    """A Typer command function whose options are the fields of the tool's request model."""
    fields = {k: v for k, v in tool.request_model.model_fields.items() if k != "action"}
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                annotation=typer.Context)]
    params += [_parameter(k, v) for k, v in fields.items()]
    if tool.name == "predict":  # `jobmedic predict --batch jobs.csv` scores a file of specs
        params += [
            inspect.Parameter("batch", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
                              default=typer.Option(None, "--batch", help="Score a CSV or JSON Lines file of job specs instead of one spec.")),
            inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
                              default=typer.Option(None, "--out", help="With --batch: write predictions here (default: stdout).")),
            inspect.Parameter("fmt", inspect.Parameter.KEYWORD_ONLY, annotation=str,
                              default=typer.Option("csv", "--format", help="With --batch: csv or jsonl.")),
            inspect.Parameter("engine", inspect.Parameter.KEYWORD_ONLY, annotation=str,
                              default=typer.Option("local", "--engine", help="With --batch: local (this process) or dask (history features on a Dask cluster; docs/scale.md).")),
            inspect.Parameter("workers", inspect.Parameter.KEYWORD_ONLY, annotation=int | None,
                              default=typer.Option(None, "--workers", min=1, help="With --engine dask: a local Dask cluster of N worker processes (default 2).")),
            inspect.Parameter("scheduler", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
                              default=typer.Option(None, "--scheduler", help="With --engine dask: the running Dask scheduler at this address (tcp://HOST:8786).")),
        ]
    params.append(inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY,
                                    default=typer.Option(False, "--json", help="Print the full JSON envelope instead of the report."),
                                    annotation=bool))

    def command(ctx: typer.Context, **kwargs: Any) -> None:
        as_json = kwargs.pop("as_json", False)
        batch, out, fmt = kwargs.pop("batch", None), kwargs.pop("out", None), kwargs.pop("fmt", "csv")
        engine, workers, scheduler = (kwargs.pop("engine", "local"), kwargs.pop("workers", None),
                                      kwargs.pop("scheduler", None))
        if not batch and (engine != "local" or workers or scheduler):
            raise typer.BadParameter("--engine, --workers and --scheduler go with --batch FILE",
                                     param_hint="--engine")
        if batch:
            from pathlib import Path

            from jobmedic.cli.models_cmd import Engine, Fmt, predict_batch

            if fmt not in ("csv", "jsonl"):
                raise typer.BadParameter("--format must be csv or jsonl", param_hint="--format")
            if engine not in ("local", "dask"):
                raise typer.BadParameter("--engine must be local or dask", param_hint="--engine")
            predict_batch(ctx, Path(batch), Path(out) if out else None, Fmt(fmt),
                          engine=Engine(engine), workers=workers, scheduler=scheduler,
                          retry_budget=kwargs.get("retry_budget"))
            return
        emit(run_payload(ctx, plain.action_payload(tool.name, kwargs)), as_json)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    doc = (tool.request_model.__doc__ or "").strip()
    command.__doc__ = (f"{doc}\n\n{tool.description}\n\nSame fields as "
                       f"`jobmedic act '{{\"action\": \"{tool.name}\", ...}}'`.")
    command.__name__ = tool.name
    return command


class LazyActionCommand(TyperCommand):
    """An action's command whose options are generated from its request model only when the
    command is used (its --help, parsing, docs): listing the commands (`jobmedic --help`)
    needs the name and the one-line summary alone, so no tool module is imported until then.
    Each action gets a subclass with `tool` set (see lazy_command)."""

    tool: Tool

    def _real(self) -> TyperCommand:
        real = self.__dict__.get("_generated")
        if real is None:
            one = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
            one.command(self.name)(command_for(self.tool))
            real = self.__dict__["_generated"] = typer.main.get_command(one)
        return real

    # click.Command.__init__ assigns these; the generated command's own values are used instead
    params = property(lambda self: self._real().params, lambda self, value: None)
    callback = property(lambda self: self._real().callback, lambda self, value: None)
    help = property(lambda self: self._real().help, lambda self, value: None)


def lazy_command(app: typer.Typer, name: str, tool: Tool) -> None:
    """Register `tool`'s command under `name`, generated on first use (LazyActionCommand)."""
    cls = type(f"LazyActionCommand_{tool.name}", (LazyActionCommand,), {"tool": tool})

    def placeholder(ctx: typer.Context) -> None:  # replaced by the generated command
        raise AssertionError("the generated command runs instead")

    app.command(name, cls=cls, short_help=getattr(tool, "summary", None) or
                (tool.request_model.__doc__ or "").strip())(placeholder)


def register(app: typer.Typer) -> None:
    """Add `act`, one command per tool, and `outcome record` to the Typer app; each action's
    command is generated when it is used (lazy_command)."""
    app.command("act")(act_command)
    for tool in TOOLS:
        lazy_command(app, COMMAND_NAMES.get(tool.name, tool.name), tool)
    outcome = typer.Typer(help="Record whether a fix worked.", no_args_is_help=True)
    lazy_command(outcome, "record", tool_named("record_outcome"))
    app.add_typer(outcome, name="outcome")
