"""The demo's steps after ingest: outcome inference, model training, the conversation.

Each step uses the same entry points as the CLI, through the set-up layer (jobmedic.app):
`jobmedic ingest`'s after-load step, `jobmedic train`'s training function and `jobmedic ask`'s
Assistant. A model that fails to train is reported and the demo goes on; nothing is invented.
"""
from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel

from jobmedic.app import App
from jobmedic.app import after_ingest as run_after_ingest
from jobmedic.knowledge.errors import JobmedicError
from jobmedic.knowledge.store import Store
from jobmedic.settings import Settings

MODEL_KINDS = ("failure", "runtime", "memory", "gnn")
#: Demo-sized training (fewer boosting rounds and epochs than `jobmedic train`'s defaults) so
#: the whole demo stays within two minutes on a small machine; the model cards record them.
DEMO_PARAMS: dict[str, dict[str, Any]] = {
    "failure": {"num_boost_round": 80}, "runtime": {"num_boost_round": 40},
    "memory": {"num_boost_round": 40}, "gnn": {"epochs": 15}}


def after_ingest(app: App, store: Store, console: Console) -> list[str]:
    """The after-load step of `jobmedic ingest`: outcome inference from resubmissions."""
    msg = run_after_ingest(app, store).message()
    if msg:
        console.print(f"  {msg}")
    return []


def train_models(settings: Settings, store: Store, console: Console) -> list[str]:
    """Train each model kind on the demo store, as `jobmedic train KIND` would, into the
    store's own model folder."""
    from jobmedic.models import training

    console.print("Training the models (as `jobmedic train KIND`, demo-sized: 40-80 boosting "
                  "rounds, 15 GNN epochs):")
    missing: list[str] = []
    frame = training.load(store, None)
    for kind in MODEL_KINDS:
        t0 = time.perf_counter()
        try:
            card = training.train(store, kind, str(settings.models_dir), None, None,
                                  holdout_fraction=settings.models.holdout_fraction,
                                  params=DEMO_PARAMS.get(kind), frame=frame)
        except (ImportError, JobmedicError) as exc:
            missing.append(f"the {kind} model: {exc}")
            console.print(f"  [yellow]skipped[/] {kind}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - one model's failure must not end the demo
            missing.append(f"the {kind} model failed to train: {type(exc).__name__}: {exc}")
            console.print(f"  [red]failed[/] {kind}: {type(exc).__name__}: {exc}")
            continue
        console.print(f"  {kind:<8} {card.get('version', '')} in {time.perf_counter() - t0:.1f}s"
                      f"{_headline(card)}")
    return missing


def _headline(card: dict[str, Any]) -> str:
    v = card.get("validation") or {}
    model = v.get("model") if isinstance(v.get("model"), dict) else v
    for key in ("auroc", "mae_h", "mae_s", "under_allocated"):
        val = model.get(key) if isinstance(model, dict) else None
        if isinstance(val, (int, float)):
            return f"  (validation {key} {val:.3g})"
    return ""


def ask_all(app: App, store: Store, questions: list[str],
            console: Console) -> tuple[list[dict[str, Any]], list[str]]:
    """Ask each question through the Assistant and print question and answer."""
    from jobmedic.agent import Assistant

    a = app.settings.agent
    assistant = Assistant(app.tool_context(store), model=a.model, base_url=a.base_url,
                          timeout_s=a.timeout_s)
    answers = []
    for q in questions:
        t0 = time.perf_counter()
        res = assistant.ask(q, session="demo")
        dt = time.perf_counter() - t0
        console.print(Panel(q, title="you asked", title_align="left", border_style="cyan"))
        console.print(Markdown(res.answer))
        console.print(f"[dim]({dt * 1000:.0f} ms)[/]\n")
        answers.append({"question": q, "answer": res.answer, "calls": list(res.calls),
                        "seconds": dt})
    return answers, []
