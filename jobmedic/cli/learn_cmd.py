"""`jobmedic learn` (outcome inference over the whole history; `jobmedic ingest` runs the same
step through jobmedic.app.after_ingest), and `jobmedic diagnose-file PATH|-` for pasting long error texts."""
from __future__ import annotations

import json
import sys

import typer

from jobmedic.cli.context import fail, state
from jobmedic.knowledge.errors import JobmedicError


def learn(
    ctx: typer.Context,
    window_h: float = typer.Option(None, "--window-h", min=0.01,
                                   help="Resubmission window in hours (default: ingest.resubmit_window_h)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Learn which fixes work from resubmissions in the whole store (idempotent)."""
    from jobmedic.knowledge.outcomes import infer_outcomes  # on use: not on every start

    st = state(ctx)
    try:
        s = infer_outcomes(st.store, st.rules, window_h or st.settings.ingest.resubmit_window_h)
    except JobmedicError as exc:
        fail(exc, 2)
    if as_json:
        typer.echo(json.dumps(s.to_dict(), indent=2))
        return
    typer.echo(f"scanned {s.jobs_scanned:,} jobs: {s.pairs:,} resubmissions after a failure, "
               f"{s.attempts:,} fix attempts ({s.outcomes_written:,} new or changed), "
               f"{s.followups_marked:,} follow-ups marked, in {s.seconds:.1f}s")
    for sid, (ok, n) in sorted(s.by_solution.items(), key=lambda kv: -kv[1][1])[:15]:
        typer.echo(f"  {sid:40s} worked {ok:>6,} of {n:>6,}")


def diagnose_file(
    ctx: typer.Context,
    path: str = typer.Argument(..., metavar="PATH|-", help="A file with the error text, log or "
                               "kubectl describe output, or - for stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print the full JSON envelope."),
) -> None:
    """Diagnose a long pasted text (a log, `kubectl describe` output) read from a file or stdin."""
    from jobmedic.cli.actions_cmd import emit, run_payload

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read(10 * 1024 * 1024 + 1)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", 2, "check the path")
    if len(text) > 10 * 1024 * 1024:
        text = text[-10 * 1024 * 1024:]
    emit(run_payload(ctx, {"action": "diagnose", "text": text}), as_json)


def register(app: typer.Typer) -> None:
    app.command("learn")(learn)
    app.command("diagnose-file")(diagnose_file)
