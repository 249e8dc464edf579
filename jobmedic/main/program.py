"""The whole `jobmedic` program as a Typer app: the command line (jobmedic.cli) plus the
commands that start the other surfaces - `serve` (the HTTP API, jobmedic.server), `chat` (the
terminal UI, jobmedic.tui) and `demo` (jobmedic.demo).

This module is the roof over the surfaces: the surfaces never import each other, each is set
up through jobmedic.app, and only this package knows all of them. Each surface is imported
when its command runs, so `jobmedic --help` stays fast. jobmedic.main.main tries the fast path
(jobmedic.cli.fast) first and imports this module only when typer must parse the command line.
"""
from __future__ import annotations

import sys

import typer

from jobmedic.cli import app
from jobmedic.cli.context import fail, state


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Address to bind (default: server.host, 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (default: server.port, 8765)."),
    body_timeout: float = typer.Option(30.0, "--body-timeout", help="Seconds a client may take to send its request body."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level (debug, info, warning, error)."),
    hash_token: str | None = typer.Option(None, "--hash-token", metavar="TOKEN",
                                             help="Print the sha256 digest of TOKEN for server.tokens and exit."),
    insecure_no_auth: bool = typer.Option(False, "--insecure-no-auth",
                                          help="Serve on a non-loopback address without any API token (every project visible to anyone who can connect)."),
) -> None:
    """Serve the JSON action API over HTTP (POST /v1/actions, POST /v1/ask, GET /healthz,
    GET /metrics). Bearer tokens come from server.tokens in the configuration; without one
    the server only listens on a loopback address unless --insecure-no-auth is given."""
    from jobmedic.server.auth import hash_token as digest

    if hash_token is not None:
        typer.echo(digest(hash_token))
        return
    from jobmedic.server import bind_warning, refuse_unauthenticated
    from jobmedic.server import serve as run_server
    from jobmedic.server.auth import TokenAuth

    st = state(ctx)
    s = st.settings
    host = host or s.server.host
    try:
        auth = TokenAuth(s.server.tokens, s.allowed_projects)
    except ValueError as exc:
        fail(str(exc), 2)
    refusal = refuse_unauthenticated(host, auth, insecure_no_auth)
    if refusal:
        fail(refusal, 2, "configure server.tokens (see docs/http-api.md; `jobmedic serve "
                         "--hash-token TOKEN` prints a digest), bind to 127.0.0.1, or pass "
                         "--insecure-no-auth")
    st.store  # noqa: B018 - open (and check) the store before listening
    warning = bind_warning(host, auth)
    if warning:
        typer.secho(f"warning: {warning}", fg="yellow", err=True)
    mode = f"{len(s.server.tokens)} token(s)" if auth.enabled else "local single-user mode"
    typer.echo(f"jobmedic API on http://{host}:{port or s.server.port} ({mode}); store "
               f"{s.db_path}; docs at /docs", err=True)
    run_server(s, host, port or s.server.port, log_level=log_level, body_timeout_s=body_timeout,
               insecure_no_auth=insecure_no_auth)


def chat(
    ctx: typer.Context,
    session: str = typer.Option("chat", "--session", help="Conversation name (kept while the app runs)."),
    refresh: float = typer.Option(60.0, "--refresh", help="Seconds between side-panel refreshes."),
) -> None:
    """Open the terminal chat: ask questions, see the current picture, mark fixes."""
    from jobmedic.tui.app import ChatApp

    st = state(ctx)
    if not sys.stdout.isatty():
        fail("jobmedic chat needs a terminal", 2, "for scripts use `jobmedic ask` or `jobmedic act`")
    st.store  # noqa: B018 - open (and check) the store before the screen takes over
    ChatApp.from_app(st, session=session, refresh_s=refresh).run()


def demo(
    ctx: typer.Context,
    directory: str | None = typer.Option(None, "--dir", help="Where to build the demo (default: a new temporary directory)."),
    seed: int = typer.Option(7, "--seed", help="Random seed of the simulated cluster."),
    days: int = typer.Option(21, "--days", help="Days of simulated history."),
    anchor: str | None = typer.Option(None, "--anchor", help="End of the simulated history (ISO date; default: today, UTC midnight)."),
    train: bool = typer.Option(True, "--train/--no-train", help="Train the predictive models."),
) -> None:
    """Simulate a cluster, ingest it with the real readers, train the models and run a
    scripted conversation with the assistant."""
    from jobmedic.demo.run import run_demo

    st = state(ctx)
    try:
        run_demo(st.taxonomy, directory=directory, seed=seed, days=days, anchor=anchor,
                 train=train, settings=st.settings)
    except KeyboardInterrupt:
        fail("demo interrupted", 130)


app.command("serve")(serve)
app.command("chat")(chat)
app.command("demo")(demo)


def build():
    """The click command tree of the whole program (for tests and doc generation)."""
    return typer.main.get_command(app)


def run() -> None:
    """Parse the command line with typer and run the command (exits)."""
    app(prog_name="jobmedic")
