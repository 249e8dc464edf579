"""The evaluation set: >= 150 questions, action and argument accuracy both >= 95 %."""
from __future__ import annotations

import json

from jobmedic.agent import Assistant
from tests.agent.evaluation import QUESTIONS, evaluate, load_items

#: The first run's figure on the running-jobs held-out set (docs/assistant.md): a regression
#: guard, not a target tuned to.
HELDOUT_RUNNING_BAR = 0.78


def test_evaluation_set_is_large_and_varied():
    items = load_items()
    assert len(items) >= 150
    actions = {e["action"] for it in items if isinstance(it["expect"], list) for e in it["expect"]}
    assert actions == {"analyze", "stats", "remediate", "diagnose", "predict", "record_failure",
                       "record_outcome"}
    assert sum(1 for it in items if it.get("before")) >= 15  # follow-ups
    assert sum(1 for it in items if it["expect"] == "clarify") >= 8
    assert sum(1 for it in items if "\n" in it["q"]) >= 3  # pasted logs


def test_action_and_argument_accuracy(agent_ctx):
    report = evaluate(lambda: Assistant(agent_ctx))
    print(json.dumps({k: v for k, v in report.items() if k != "failures"}))
    for f in report["failures"]:
        print("MISS", json.dumps(f, ensure_ascii=False))
    assert report["action_accuracy"] >= 0.95, report["failures"]
    assert report["argument_accuracy"] >= 0.95, report["failures"]


def test_heldout_questions(agent_ctx):
    """Questions written after tuning; reported, with a lower bar than the tuned set."""
    items = load_items(QUESTIONS.with_name("questions_heldout.yaml"))
    assert len(items) >= 40
    report = evaluate(lambda: Assistant(agent_ctx), items)
    print(json.dumps({k: v for k, v in report.items() if k != "failures"}))
    for f in report["failures"]:
        print("MISS", json.dumps(f, ensure_ascii=False))
    assert report["action_accuracy"] >= 0.85, report["failures"]
    assert report["argument_accuracy"] >= 0.80, report["failures"]


def test_second_heldout_set(agent_ctx):
    """Issue 13's held-out set (job + why, pasted errors, unknown names, off-topic questions,
    ordinary ones): written before the router was changed for them, never tuned on."""
    items = load_items(QUESTIONS.with_name("questions_heldout2.yaml"))
    assert len(items) >= 60
    assert sum(1 for it in items if it["expect"] == "refuse") >= 5
    assert sum(1 for it in items if it["expect"] == "clarify") >= 5
    report = evaluate(lambda: Assistant(agent_ctx), items)
    print(json.dumps({k: v for k, v in report.items() if k != "failures"}))
    for f in report["failures"]:
        print("MISS", json.dumps(f, ensure_ascii=False))
    assert report["action_accuracy"] >= 0.95, report["failures"]
    assert report["argument_accuracy"] >= 0.95, report["failures"]


def test_running_jobs_at_risk_heldout(agent_ctx):
    """Issue 15's held-out phrasings of "which running jobs are at risk?" (and near misses
    that must not list them): written before the rule ran on them, never tuned on."""
    items = load_items(QUESTIONS.with_name("questions_heldout_running.yaml"))
    assert len(items) >= 12
    report = evaluate(lambda: Assistant(agent_ctx), items)
    print(json.dumps({k: v for k, v in report.items() if k != "failures"}))
    for f in report["failures"]:
        print("MISS", json.dumps(f, ensure_ascii=False))
    assert report["action_accuracy"] >= HELDOUT_RUNNING_BAR, report["failures"]
