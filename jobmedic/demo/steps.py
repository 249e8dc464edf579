"""The demo's steps after ingest: outcome inference, model training, the conversation.

Each step uses the same entry points as the CLI (`jobmedic learn`'s hook, `jobmedic train`'s
training function, `jobmedic ask`'s Assistant). When a component is absent from this build the
step says so and returns what is missing, so the demo never prints an invented answer.
"""
from __future__ import annotations

import importlib
import time
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel

from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.core.timeutil import parse_time_arg

MODEL_KINDS = ("failure", "runtime", "memory", "gnn")
#: Demo-sized training (fewer boosting rounds and epochs than `jobmedic train`'s defaults) so
#: the whole demo stays within two minutes on a small machine; the model cards record them.
DEMO_PARAMS: dict[str, dict[str, Any]] = {
    "failure": {"num_boost_round": 80}, "runtime": {"num_boost_round": 40},
    "memory": {"num_boost_round": 40}, "gnn": {"epochs": 15}}


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def after_ingest(settings: Any, store: Store, taxonomy: Taxonomy, console: Console) -> list[str]:
    """Run the post-ingest hook (outcome inference from resubmissions) when it exists."""
    from jobmedic.cli.context import AppState

    mod = _module("jobmedic.cli.learn_cmd")
    hook = getattr(mod, "after_ingest", None)
    if hook is None:
        console.print("  [yellow]skipped[/] outcome inference: `jobmedic learn` is not in this build")
        return ["outcome inference (`jobmedic learn`, jobmedic/cli/learn_cmd.py) is not in this build"]
    st = AppState(db=str(settings.db_path), as_of=settings.as_of)
    st.__dict__["settings"] = settings  # the demo's settings, not a fresh load
    st.__dict__["taxonomy"] = taxonomy
    st._store = store
    hook(st)  # prints what it learned (to stderr), as after `jobmedic ingest`
    return []


def train_models(settings: Any, store: Store, console: Console) -> list[str]:
    """Train each model kind on the demo store, as `jobmedic train KIND` would."""
    training = _module("jobmedic.models.training")
    if training is None or not hasattr(training, "train"):
        console.print("  [yellow]skipped[/] training: `jobmedic train` is not in this build")
        return ["model training (`jobmedic train`, jobmedic/models/training.py) is not in this build"]
    console.print("Training the models (as `jobmedic train KIND`, demo-sized: 40-80 boosting "
                  "rounds, 15 GNN epochs):")
    missing: list[str] = []
    frame = training.load(store, None) if hasattr(training, "load") else None
    for kind in MODEL_KINDS:
        t0 = time.perf_counter()
        try:
            kw = {"frame": frame} if frame is not None else {}
            card = training.train(store, kind, str(settings.models_dir), None, None,
                                  holdout_fraction=settings.models.holdout_fraction,
                                  params=DEMO_PARAMS.get(kind), **kw)
        except ImportError as exc:
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


def ask_all(settings: Any, store: Store, taxonomy: Taxonomy, questions: list[str],
            console: Console) -> tuple[list[dict[str, Any]], list[str]]:
    """Ask each question through the Assistant and print question and answer."""
    from jobmedic.cli.context import build_tool_context

    agent = _module("jobmedic.agent")
    assistant_cls = getattr(agent, "Assistant", None)
    if assistant_cls is None:
        console.print("[yellow]The assistant (jobmedic.agent.Assistant) is not in this build: "
                      "no conversation.[/]")
        return [], ["the assistant (`jobmedic ask`, jobmedic/agent) is not in this build, so "
                    "the scripted conversation did not run"]
    now = parse_time_arg(settings.as_of, "as_of") if settings.as_of else None
    ctx = build_tool_context(settings, store, taxonomy, now)
    a = settings.agent
    assistant = assistant_cls(ctx, model=a.model, base_url=a.base_url, timeout_s=a.timeout_s)
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
