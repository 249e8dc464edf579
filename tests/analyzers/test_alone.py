"""Every analyzer runs on its own (no registry, no order): on the planted store each finds what
it finds inside the whole pipeline, and ranking is a separate step over any list of findings."""
from __future__ import annotations

import pytest

from jobmedic.analyzers import ANALYZERS, AnalyzerConfigError, Ranking, build, collect, run_all
from jobmedic.analyzers.base import SEVERITIES, Finding
from jobmedic.analyzers.hotspots import Hotspots
from tests.analyzers.planted import Planted

NODES = [f"n{i:02d}" for i in range(1, 11)]


@pytest.fixture(scope="module")
def planted():
    """Four weeks: node n03 breaks on day 16 (a hotspot with a change point), image img:bad
    fails at 14:00 (an hour spike), healthy background elsewhere."""
    from jobmedic.knowledge.store import Store

    p = Planted(Store(":memory:"), seed=5, days=28)
    for nd in NODES:
        p.add(150, nodes=nd, user=["a", "b", "c", "d"], fail=0.04, image="img:ok")
    p.add(120, nodes="n03", user=["a", "b", "c", "d"], fail=0.6, ftype="node_failure", day_from=16)
    p.add(120, nodes=NODES[:5], user=["e", "f"], image="img:bad", fail=0.4, ftype="app_error",
          hours=[14])
    window = p.write()
    yield p.store, window
    p.store.close()


def _dicts(findings: list[Finding]) -> list[dict]:
    return [f.to_dict() for f in findings]


def _keys(findings: list[Finding]) -> list[tuple]:
    return [(f.subject, f.kind, f.summary, f.evidence["failures"]) for f in findings]


@pytest.mark.parametrize("cls", ANALYZERS, ids=lambda c: c.name)
def test_each_analyzer_runs_alone(planted, cls):
    store, WINDOW = planted
    a = cls()
    assert isinstance(a.needs, tuple) and set(a.needs) <= {c.name for c in ANALYZERS} - {a.name}
    alone = a.run(store, WINDOW, None)
    assert alone and all(isinstance(f, Finding) and f.analyzer == a.name for f in alone)
    # what it finds alone is what it contributes to the pipeline (before ranking; there the
    # hotspots also carry the annotations blame and temporal add to them)
    together, errors = collect(build(), store, WINDOW, None)
    assert errors == []
    mine = [f for f in together if f.analyzer == a.name]
    if a.name == "hotspots":
        alone, mine = _keys(alone), _keys(mine)
        assert any(f.evidence.get("attributed_to") for f in together if f.kind == "hotspot")
    else:
        alone, mine = _dicts(alone), _dicts(mine)
    assert alone == mine


def test_needs_are_taken_as_explicit_inputs(planted):
    store, WINDOW = planted
    hot = Hotspots().run(store, WINDOW, None)
    assert any(f.kind == "hotspot" for f in hot)
    blame = next(c for c in ANALYZERS if c.name == "blame")()
    assert blame.run(store, WINDOW, None, inputs={"hotspots": []}) == []  # nothing to attribute
    out = blame.run(store, WINDOW, None, inputs={"hotspots": hot})
    assert out and {f.subject for f in out} <= {f.subject for f in hot}
    assert any("attributed_to" in f.evidence for f in hot)  # the given hotspots are annotated
    temporal = next(c for c in ANALYZERS if c.name == "temporal")()
    shifts = temporal.run(store, WINDOW, None, inputs={"hotspots": hot})
    assert any(f.subject.startswith("node:n03@") for f in shifts)  # scanned because flagged
    assert next(f for f in hot if f.subject == "node:n03").evidence["change_points"]
    none = temporal.run(store, WINDOW, None, inputs={"hotspots": []})
    assert not any(f.subject.startswith("node:") for f in none)


def test_order_of_the_list_does_not_matter(planted):
    store, WINDOW = planted
    forward, e1 = run_all(build(), store, WINDOW, None)
    backward, e2 = run_all(list(reversed(build())), store, WINDOW, None)
    assert e1 == e2 == []
    assert _dicts(forward) == _dicts(backward)  # ranked: same findings, same order


def test_a_failing_need_is_reported_once_and_its_dependents_go_on(planted):
    store, WINDOW = planted
    class Broken(Hotspots):
        def run(self, *a, **kw):
            raise RuntimeError("boom")

    findings, errors = collect([Broken(), *build()[1:]], store, WINDOW, None)
    assert errors == [{"analyzer": "hotspots", "error": "RuntimeError: boom"}]
    assert not any(f.analyzer in ("hotspots", "blame") for f in findings)
    assert any(f.analyzer == "patterns" for f in findings)


def test_a_cycle_of_needs_is_refused(planted):
    store, WINDOW = planted
    class A:
        name, description, needs = "a", "", ("b",)

    class B:
        name, description, needs = "b", "", ("a",)

    with pytest.raises(AnalyzerConfigError, match="needs itself"):
        collect([A(), B()], store, WINDOW, None)


def test_ranking_is_a_step_after_the_analyzers():
    fs = [Finding("x", "node:a", "medium", "", {"failures": 1}, kind="pattern"),
          Finding("x", "node:b", "high", "", {"failures": 40, "q": 1e-9, "rate_ratio": 5,
                                               "users": 3}, kind="hotspot"),
          Finding("x", "cluster", "info", "", {"failures": 2}, kind="blame")]
    ranked = Ranking().rank(fs, 100)
    assert [f.subject for f in ranked] == ["node:b", "node:a", "cluster"]
    assert ranked[0].severity == "critical" and ranked[0].impact == 46.0
    assert ranked[0].evidence["share_of_failures"] == 0.4
    assert [f.severity for f in ranked] == sorted((f.severity for f in ranked), key=SEVERITIES.index)
    assert Ranking(critical_share=0.5).rank(fs, 100)[0].severity == "high"
