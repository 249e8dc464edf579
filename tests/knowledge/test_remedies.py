"""Remedy queries: Wilson bounds, one outcome per (failed job, solution), a person's record
overriding an inference, counts per context, and scope."""
from __future__ import annotations

import pytest

from jobmedic.knowledge.advice import ranked_fixes
from jobmedic.knowledge.remedies import wilson
from jobmedic.knowledge.rules import RuleBase


def test_wilson_known_values_and_order():
    lo, hi = wilson(5, 6)
    assert lo == pytest.approx(0.4365, abs=1e-3) and hi == pytest.approx(0.9699, abs=1e-3)
    assert wilson(1, 1)[0] == pytest.approx(0.2065, abs=1e-3)
    assert wilson(5, 6)[0] > wilson(1, 1)[0]  # 5 of 6 beats 1 of 1
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0


def outcome(sid, job, success, *, project="ml", inferred=1, cluster="c", queue="gpu", gpu=1, note=None):
    return (sid, cluster, job, job + "r", project, success, "t", 100, note, inferred, None,
            f"job:{cluster}:{job}:x{sid}", queue, gpu, None)


@pytest.fixture
def sids(store):
    store.seed_solutions([("oom", "oom.raise_memory", "memory_raised"),
                          ("oom", "oom.reduce_batch_size", None)])
    ids = store.solution_rowids("oom")
    return ids[("oom", "oom.raise_memory")], ids[("oom", "oom.reduce_batch_size")]


def test_counts_dedup_and_person_overrides_inference(store, sids):
    mem, _ = sids
    assert store.add_outcomes([outcome(mem, "1", 0)]) == 1
    assert store.add_outcomes([outcome(mem, "1", 0)]) == 0  # the same inference again
    assert store.add_outcomes([outcome(mem, "1", 1, inferred=0, note="it worked")]) == 1
    assert store.add_outcomes([outcome(mem, "1", 0, inferred=1)]) == 0  # never over a person
    st = {s["solution"]: s for s in store.solution_stats("oom")}["oom.raise_memory"]
    assert (st["successes"], st["attempts"], st["inferred"]) == (1, 1, 0)
    row = next(r for r in store.list_solutions("oom") if r["solution"] == "oom.raise_memory")
    assert (row["success_count"], row["failure_count"]) == (1, 0)


def test_ranking_by_lower_bound_not_fraction(store, sids, taxonomy, remediations_raw):
    mem, batch = sids
    rows = [outcome(mem, str(i), int(i < 5)) for i in range(6)]
    rows += [outcome(batch, "b1", 1)]
    store.add_outcomes(rows)
    rules = RuleBase.from_dict(remediations_raw, taxonomy.codes)
    fixes = ranked_fixes(store, rules, "oom", None, gpu=True)
    assert [f["id"] for f in fixes[:2]] == ["oom.raise_memory", "oom.reduce_batch_size"]
    top = fixes[0]
    assert (top["successes"], top["attempts"]) == (5, 6)
    assert top["interval"][0] == pytest.approx(0.4365, abs=1e-3)
    assert fixes[1]["success_rate"] == 1.0  # 1 of 1 has the higher fraction, yet ranks second
    assert all(f["attempts"] == 0 for f in fixes[2:])


def test_context_and_scope(store, sids):
    mem, _ = sids
    store.add_outcomes([outcome(mem, "1", 1, queue="gpu", gpu=1),
                        outcome(mem, "2", 0, queue="cpu", gpu=0, cluster="d"),
                        outcome(mem, "3", 1, project="secret", note="ask eve")])
    by_q = {(r["value"]): (r["successes"], r["attempts"])
            for r in store.solution_context_stats("oom", "queue")}
    assert by_q == {"gpu": (2, 2), "cpu": (0, 1)}
    by_gpu = {r["value"]: r["attempts"] for r in store.solution_context_stats("oom", "gpu", ["ml"])}
    assert by_gpu == {"gpu": 1, "cpu": 1}
    st = store.solution_stats("oom", ["ml"])[0]
    assert (st["attempts"], st["attempts_in_scope"], st["successes_in_scope"]) == (3, 2, 1)
    recent = store.recent_outcomes("oom", ["ml"])
    assert {r["failed_job"] for r in recent} == {"1", "2"}
    assert all(r["project"] == "ml" for r in recent)
    with pytest.raises(ValueError):
        store.solution_context_stats("oom", "colour")


@pytest.fixture(scope="module")
def remediations_raw():
    import yaml

    from jobmedic.settings import config_path

    with open(config_path("remediations.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)
