"""Planted-truth scenarios for the analyzers: each builds a small store where the right answer
is known, runs the whole analyzer pipeline, and checks what is (and is not) flagged."""
from __future__ import annotations

import pytest

from jobmedic.analyzers import build, run_all
from tests.analyzers.planted import Planted

NODES = [f"n{i:02d}" for i in range(1, 11)]
USERS = ["a", "b", "c", "d", "e", "f"]


def _run(store, window, **filters):
    findings, errors = run_all(build(), store, window, None, filters or None)
    assert errors == []
    return findings


def _hot(findings, subject):
    return [f for f in findings if f.kind == "hotspot" and f.subject == subject]


def _drain(findings, subject):
    """Hotspot findings that still point at `subject` itself (after blame)."""
    return [f for f in _hot(findings, subject) if f.evidence.get("attributed_to", subject) == subject]


def test_bad_node_among_busy_healthy_nodes(store):
    p = Planted(store, seed=1)
    p.add(1000, nodes="n01", user=USERS, fail=0.05)  # ten times busier, healthy
    for nd in NODES[1:]:
        bad = nd == "n07"
        p.add(100, nodes=nd, user=USERS, fail=0.3 if bad else 0.05,
              ftype="node_failure" if bad else "app_error")
    window = p.write()
    findings = _run(store, window)
    naive = {r["key"] for r in store.node_rates(window, None) if r["failures"] >= 3}
    assert {"n01", "n07"} <= naive  # counting failures blames the busiest node too
    hot = _drain(findings, "node:n07")
    assert hot and hot[0].severity in ("critical", "high")
    ev = hot[0].evidence
    assert ev["failures"] == 30 and ev["jobs"] == 100 and ev["q"] < 0.001
    assert ev["ci_low"] < 0.3 < ev["ci_high"] and ev["baseline"] == pytest.approx(0.05, abs=0.01)
    assert "30 of 100" in hot[0].recommendation and "n07" in hot[0].recommendation
    assert not _hot(findings, "node:n01")  # 50 failures, but the cluster's own rate
    blame = [f for f in findings if f.kind == "blame" and f.subject == "node:n07"]
    assert blame and blame[0].evidence["blame"] == "cluster"
    # the leading finding is the bad node
    assert findings[0].subject == "node:n07"


def test_multi_node_job_crash_flags_no_node(store):
    p = Planted(store, seed=2)
    for nd in NODES + [f"m{i:02d}" for i in range(10)]:
        p.add(40, nodes=nd, user=USERS, fail=0.05)
    p.add(1, nodes=NODES + [f"m{i:02d}" for i in range(8)], n_nodes=18, user="a", fail=1.0,
          ftype="app_error")
    window = p.write()
    findings = _run(store, window)
    assert not [f for f in findings if f.kind in ("hotspot", "explained")
                and f.subject.startswith("node:")]
    rows = store.node_rates(window, None)
    assert sum(r["failures"] >= 3 for r in rows) == 18  # the naive rule flags all 18
    assert max(r["wfailures"] for r in rows) == pytest.approx(2 + 1 / 18)


def test_bad_image_mostly_on_one_node_blames_the_image(store):
    p = Planted(store, seed=3)
    for nd in NODES[:6]:
        p.add(200, nodes=nd, user=USERS, image="img:good", fail=0.03)
    p.add(60, nodes="n03", user=USERS, image="img:bad", fail=0.7, ftype="crash_loop")
    p.add(15, nodes=["n05", "n06"], user=USERS, image="img:bad", fail=0.7, ftype="crash_loop")
    findings = _run(store, p.write())
    assert _drain(findings, "image:img:bad")
    assert not _drain(findings, "node:n03")  # flagged at most as attributed to the image
    for f in _hot(findings, "node:n03"):
        assert f.evidence["attributed_to"] == "image:img:bad"
        assert "img:bad" in f.recommendation and f.severity == "low"


def test_oom_prone_user_on_healthy_node_blames_the_user(store):
    p = Planted(store, seed=4)
    for nd in NODES[:5]:
        p.add(150, nodes=nd, user=USERS[:5], fail=0.04)
    p.add(60, nodes="n02", user="oomer", fail=0.6, ftype="oom")
    findings = _run(store, p.write())
    assert _drain(findings, "user:oomer")
    assert not _drain(findings, "node:n02")
    node = [f for f in findings if f.subject == "node:n02" and f.kind in ("hotspot", "explained")]
    for f in node:  # either explained by the user, or attributed to them by the model
        assert "oomer" in f.recommendation
    blame = [f for f in findings if f.kind == "blame" and f.subject == "user:oomer"]
    assert blame and blame[0].evidence["blame"] == "job"


def test_hour_with_real_excess_is_found(store):
    p = Planted(store, seed=5, days=14)
    p.add(3000, nodes=NODES, user=USERS, fail=0.03, hours=[h for h in range(24) if h != 14])
    p.add(150, nodes=NODES, user=USERS, fail=0.25, hours=[14])
    findings = _run(store, p.write())
    spikes = [f for f in findings if f.kind == "spike"]
    assert [f.subject for f in spikes] == ["hour:14"]
    ev = spikes[0].evidence
    assert ev["q"] < 0.001 and ev["rate"] > 3 * ev["baseline"]


@pytest.mark.parametrize("seed", [6, 7, 8])
def test_flat_cluster_has_no_spike_and_no_hotspot(store, seed):
    p = Planted(store, seed=seed, days=14)
    p.add(4000, nodes=NODES, user=USERS, image="img:1", fail=0.05, exact=False)
    findings = _run(store, p.write())
    assert not [f for f in findings if f.kind in ("spike", "hotspot", "change_point")]


def test_change_point_found_at_the_right_day(store):
    p = Planted(store, seed=9, days=14)
    p.add(1800, nodes=NODES, user=USERS, fail=0.03, day_from=0, day_to=9)
    p.add(1000, nodes=NODES, user=USERS, fail=0.15, day_from=9, day_to=14)
    findings = _run(store, p.write())
    cps = [f for f in findings if f.kind == "change_point" and f.subject.startswith("cluster@")]
    assert len(cps) >= 1
    rise = cps[0]
    assert rise.evidence["day"] == "2023-11-24" and rise.evidence["direction"] == "rise"
    assert rise.evidence["rate_before"] == pytest.approx(0.03, abs=0.01)
    assert rise.evidence["rate_after"] == pytest.approx(0.15, abs=0.02)


def test_change_point_of_a_flagged_node(store):
    p = Planted(store, seed=10, days=14)
    for nd in NODES:
        p.add(300, nodes=nd, user=USERS, fail=0.03)
    p.add(100, nodes="n04", user=USERS, fail=0.5, ftype="gpu_error", day_from=10, day_to=14)
    findings = _run(store, p.write())
    hot = _drain(findings, "node:n04")
    assert hot and hot[0].evidence["change_points"][0]["day"] in ("2023-11-25", "2023-11-24")
