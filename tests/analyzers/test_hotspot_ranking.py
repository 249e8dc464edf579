"""Hotspot ranking (issue 12, item 5): the significance test decides whether to flag, an
empirical-Bayes shrunken rate decides the order; the shrinkage helpers on known cases."""
from __future__ import annotations

import numpy as np
import pytest

from jobmedic.analyzers.hotspots import Hotspots, order
from jobmedic.analyzers.shrink import (
    beta_prior,
    beta_prior_exposure,
    beta_prior_ml,
    beta_scores,
    gamma_prior,
    gamma_prior_exposure,
    gamma_prior_ml,
    gamma_scores,
    poisson_vs_rest,
)


def rows(extra: dict[str, tuple[int, int]]) -> list[dict]:
    """50 ordinary nodes (100 jobs, 10 failures each) plus the given (failures, jobs)."""
    out = [{"key": f"n{i:02d}", "jobs": 100, "failures": 10, "wfailures": 10.0, "users": 3,
            "gpu_h": 0.0, "core_h": 0.0} for i in range(50)]
    out += [{"key": k, "jobs": n, "failures": f, "wfailures": float(f), "users": 3, "gpu_h": 0.0,
             "core_h": 0.0} for k, (f, n) in extra.items()]
    return out


# busy: many failures at a modest rate; sharp: fewer failures at a high, well-supported rate;
# lucky: a high rate on little evidence
PLANTED = {"busy": (75, 400), "sharp": (30, 50), "lucky": (5, 6)}


@pytest.mark.parametrize("rank_by,expected", [
    ("shrunk_low", ["sharp", "busy", "lucky"]),
    # the mean shrinks 5 of 6 but still ranks it above the busy node: the lower bound (the
    # default) is the one that asks for evidence
    ("shrunk_mean", ["sharp", "lucky", "busy"]),
    ("q", ["sharp", "busy", "lucky"]),  # the old order: the smallest q value first
])
def test_flagged_subjects_are_ordered_by_shrunken_rate(rank_by, expected):
    df = Hotspots(min_exposure=5, prior="moments").test(rows(PLANTED), "node")
    flagged = df[df["flag"]]
    assert set(flagged["key"]) == set(PLANTED)  # the test flags all three
    assert list(order(flagged, rank_by)["key"]) == expected
    # a count ranking would lead with the busy node: 75 failures against 30
    assert flagged.sort_values("k", ascending=False)["key"].iloc[0] == "busy"


def test_the_lucky_node_is_shrunk_towards_the_cluster():
    df = Hotspots(min_exposure=5, prior="moments").test(rows(PLANTED), "node").set_index("key")
    assert df.loc["lucky", "rate"] > df.loc["sharp", "rate"]  # 83 % raw against 60 %
    assert df.loc["lucky", "shrunk_mean"] < df.loc["sharp", "shrunk_mean"]
    assert df.loc["lucky", "shrunk_low"] < df.loc["busy", "shrunk_low"]


def test_findings_carry_the_shrunken_rate_and_rank_by_is_checked(store):
    assert (Hotspots().rank_by, Hotspots().prior) == ("shrunk_mean", "split")  # chosen on dev
    hs = Hotspots(min_exposure=5, rank_by="shrunk_low", prior="moments")
    with pytest.raises(ValueError, match="rank_by"):
        Hotspots(rank_by="loudest")
    from jobmedic.core.timeutil import Window

    fs = hs.dimension(store, "node", rows(PLANTED), Window(0, 1), None, {})
    assert [f.evidence["entity"] for f in fs] == ["sharp", "busy", "lucky"]
    assert [f.evidence["rank_in_dimension"] for f in fs] == [1, 2, 3]
    ev = fs[0].evidence
    assert 0 < ev["shrunk_low"] < ev["shrunk_rate"] < ev["rate"]


def test_beta_prior_recovers_a_known_spread():
    rng = np.random.default_rng(0)
    p = rng.beta(2.0, 18.0, 4000)  # mean 0.1, strength 20
    n = rng.integers(20, 400, 4000)
    k = rng.binomial(n, p)
    a, b = beta_prior(k, n)
    assert a / (a + b) == pytest.approx(0.1, abs=0.005)
    assert a + b == pytest.approx(20, rel=0.2)
    # no spread beyond binomial noise: a very strong prior, every subject pulled to the mean
    k2 = rng.binomial(n, 0.1)
    a2, b2 = beta_prior(k2, n)
    assert a2 + b2 > 1000
    mean, low = beta_scores(np.array([9.0]), np.array([10.0]), (a2, b2))
    assert mean[0] == pytest.approx(0.1, abs=0.01) and low[0] < mean[0]


def test_gamma_prior_and_poisson_test():
    rng = np.random.default_rng(1)
    lam = rng.gamma(4.0, 0.01 / 4.0, 3000)  # mean 0.01 per day, shape 4
    e = rng.uniform(100, 1000, 3000)
    k = rng.poisson(lam * e)
    s, r = gamma_prior(k, e)
    assert s / r == pytest.approx(0.01, rel=0.05)
    assert s == pytest.approx(4.0, rel=0.35)
    mean, low = gamma_scores(np.array([30.0, 3.0]), np.array([1000.0, 100.0]), (s, r))
    assert (low < mean).all() and low[0] > low[1]  # the same rate, ten times the evidence
    p, rest = poisson_vs_rest(np.array([30.0, 5.0, 5.0, 0.0]), np.array([100.0, 500.0, 500.0, 100.0]))
    assert p[0] < 1e-6 and p[1] > 0.5 and p[3] == 1.0
    assert rest[0] == pytest.approx(10 / 1100)


def test_marginal_likelihood_priors_recover_a_known_spread():
    rng = np.random.default_rng(2)
    p = rng.beta(1.0, 9.0, 3000)  # mean 0.1, strength 10
    n = rng.integers(5, 300, 3000)
    k = rng.binomial(n, p)
    a, b = beta_prior_ml(k, n)
    assert a / (a + b) == pytest.approx(0.1, abs=0.005)
    assert a + b == pytest.approx(10, rel=0.15)
    lam = rng.gamma(2.0, 0.02 / 2.0, 3000)
    e = rng.uniform(50, 500, 3000)
    s, r = gamma_prior_ml(rng.poisson(lam * e), e)
    assert s / r == pytest.approx(0.02, rel=0.05) and s == pytest.approx(2.0, rel=0.2)


def test_exposure_prior_follows_a_rate_that_rises_with_exposure():
    """Busy subjects fail more (a failing machine gets more, shorter attempts): the exposure
    prior's mean rises with the jobs; where the rate does not depend on them, it is flat."""
    rng = np.random.default_rng(3)
    n = rng.integers(2, 200, 4000).astype(float)
    mu = 1 / (1 + np.exp(3.0 - 0.35 * np.log(n)))  # 6.0 % at 2 jobs -> 24.1 % at 200
    k = rng.binomial(n.astype(int), rng.beta(mu * 20, (1 - mu) * 20))
    prior = beta_prior_exposure(k, n)
    a, b = prior(np.array([2.0, 20.0, 200.0]))
    m = a / (a + b)
    assert m[0] < m[1] < m[2]
    assert m[0] == pytest.approx(0.060, abs=0.015) and m[2] == pytest.approx(0.241, abs=0.02)
    flat = beta_prior_exposure(rng.binomial(n.astype(int), 0.1), n)
    a, b = flat(np.array([2.0, 200.0]))
    assert abs(a[0] / (a[0] + b[0]) - a[1] / (a[1] + b[1])) < 0.01
    # equal exposure everywhere: nothing to regress on, the plain marginal-likelihood prior
    e = np.full(500, 365.0)
    kk = rng.poisson(rng.gamma(2.0, 0.01, 500) * e)
    sh, rt = gamma_prior_exposure(kk, e)(e[:1])
    assert (sh[0], rt[0]) == pytest.approx(gamma_prior_ml(kk, e), rel=1e-3)


def test_prior_option_is_checked_and_changes_only_the_order():
    hs = {p: Hotspots(min_exposure=5, prior=p).test(rows(PLANTED), "node")
          for p in ("moments", "ml", "exposure", "split")}
    flagged = {p: set(df[df["flag"]]["key"]) for p, df in hs.items()}
    assert flagged["moments"] == flagged["ml"] == flagged["exposure"] == flagged["split"] \
        == set(PLANTED)
    with pytest.raises(ValueError, match="prior"):
        Hotspots(prior="flat")
    assert Hotspots(prior="validated").prior == "validated"


def _halves(ordinary, planted):
    """Whole-window and first-half rows: ordinary nodes of 100 jobs (50 a half) with the given
    failures per half, planted nodes as (failures, jobs) of each half."""
    def row(k, f, n):
        return {"key": k, "jobs": n, "failures": f, "wfailures": float(f), "users": 3,
                "gpu_h": 0.0, "core_h": 0.0}
    full = [row(f"n{i:02d}", a + b, 100) for i, (a, b) in enumerate(ordinary)]
    half = [row(f"n{i:02d}", a, 50) for i, (a, _) in enumerate(ordinary)]
    full += [row(k, f1 + f2, n1 + n2) for k, (f1, n1, f2, n2) in planted.items()]
    half += [row(k, f1, n1) for k, (f1, n1, _, _) in planted.items()]
    return full, half


SPLIT_PLANTED = {"busy": (37, 200, 38, 200), "sharp": (15, 25, 15, 25), "lucky": (3, 3, 2, 3)}


@pytest.mark.parametrize("ordinary,expected", [
    # the ordinary nodes' spread does not persist (high in one half, low in the other): little
    # of any rate's excess is expected to last, so the order leans to the evidence (excess
    # failures): the busy node first
    ([(8, 2)] * 25 + [(2, 8)] * 25, ["busy", "sharp", "lucky"]),
    # it persists (the same nodes high in both halves): rates are believed, the sharp node first
    ([(8, 8)] * 25 + [(2, 2)] * 25, ["sharp", "lucky", "busy"]),
])
def test_split_prior_shrinks_by_the_spread_that_persists(ordinary, expected):
    full, half = _halves(ordinary, SPLIT_PLANTED)
    df = Hotspots(min_exposure=5).test(full, "node", half)
    flagged = df[df["flag"]]
    assert set(flagged["key"]) == set(SPLIT_PLANTED)
    assert list(order(flagged, "shrunk_mean")["key"]) == expected


def test_split_prior_strength_follows_the_covariance_of_the_halves():
    from jobmedic.analyzers.shrink import beta_prior_split

    a, b = beta_prior_split([8, 2, 5], [50, 50, 50], [2, 8, 5], [50, 50, 50])
    assert a + b > 1e5  # no persistent spread at all: the strongest prior
    a, b = beta_prior_split([8, 2, 5], [50, 50, 50], [8, 2, 5], [50, 50, 50])
    assert 1 < a + b < 100


def test_run_ranks_with_the_first_half_of_the_window(store):
    """Hotspots.run reads the first half of the window beside the whole (node rates and the
    entity combinations) and ranks with the split prior: a node failing only in the first half
    and one failing in both, at the same totals, are both flagged; the scores come from the
    window's halves (the same rows with prior=moments give other scores)."""
    from tests.analyzers.planted import Planted

    p = Planted(store)
    for i in range(30):
        p.add(40, nodes=f"n{i:02d}", user=[f"u{j}" for j in range(6)], fail=0.05)
    p.add(40, nodes="burst", user=[f"u{j}" for j in range(6)], fail=0.5, day_to=3.5)
    p.add(40, nodes="steady", user=[f"u{j}" for j in range(6)], fail=0.5)
    window = p.write()
    sent: list[str] = []
    store.conn.set_trace_callback(sent.append)
    try:
        found = Hotspots(dims=("node",)).run(store, window, None)
    finally:
        store.conn.set_trace_callback(None)
    half = str(window.start + (window.end - window.start) // 2)
    assert any(half in q for q in sent), "no read of the window's first half"
    hits = {f.evidence["entity"]: f.evidence for f in found if f.kind == "hotspot"}
    assert {"burst", "steady"} <= set(hits)
    moments = Hotspots(dims=("node",), prior="moments").run(store, window, None)
    other = {f.evidence["entity"]: f.evidence["shrunk_rate"] for f in moments if f.kind == "hotspot"}
    assert other["steady"] != hits["steady"]["shrunk_rate"]


@pytest.mark.parametrize("score,k,n,K,expected", [
    ([3, 2, 1], [1, 1, 0], [1, 1, 1], 2, 1.0),          # no ties: the top two
    ([3, 2, 2, 1], [1, 1, 0, 0], [1, 1, 1, 1], 2, 0.75),  # a tie cut at K: half of it
    ([2, 2, 2, 2], [4, 0, 0, 0], [4, 4, 4, 4], 1, 0.25),  # all tied: the pooled rate
])
def test_top_rate_takes_a_cut_tie_at_its_share(score, k, n, K, expected):
    from jobmedic.analyzers.shrink import top_rate

    assert top_rate(np.array(score, float), np.array(k, float), np.array(n, float), K) \
        == pytest.approx(expected)


def _subjects(planted):
    """50 ordinary subjects (100 jobs a half, 10 failures each half) plus the planted
    (k1, n1, k2, n2): first-half and second-half arrays."""
    rows = [(10, 100, 10, 100)] * 50 + list(planted)
    return [np.array(c, float) for c in zip(*rows)]


@pytest.mark.parametrize("planted,m,counts", [
    # uniform exposure: every strength gives the count's order, so the count is kept
    ([(30, 100, 28, 100), (20, 100, 21, 100)], 2, True),
    # a sharp subject (12 of 20) keeps its rate, the busy one (60 of 400) too: the rate order
    # predicts the second half better than the count, which puts the busy one first
    ([(12, 20, 12, 20), (60, 400, 60, 400)], 1, False),
    # the sharp subject's rate was a burst (1 of 20 in the second half): the count's order
    # (busy first) predicts as well as any strength, and ties go to the count
    ([(12, 20, 1, 20), (60, 400, 60, 400)], 1, True),
])
def test_validated_strength_keeps_the_count_unless_a_rate_order_predicts_better(planted, m, counts):
    from jobmedic.analyzers.shrink import COUNT, validated_strength

    k1, n1, k2, n2 = _subjects(planted)
    s = validated_strength(k1, n1, k2, n2, m)
    assert (s == COUNT) is counts
    if not counts:
        assert s > 0
    # the Poisson form (events over exposure) decides the same on the same numbers
    assert (validated_strength(k1, n1, k2, n2, m, poisson=True) == COUNT) is counts


@pytest.mark.parametrize("sharp,expected", [
    # the sharp node keeps failing in the second half: rates are believed
    ((15, 25, 15, 25), ["sharp", "lucky", "busy"]),
    # it failed only in the first half: the order that validates is count-like, busy first
    ((15, 25, 0, 25), ["busy", "sharp", "lucky"]),
])
def test_validated_prior_orders_by_what_predicted_the_second_half(sharp, expected):
    planted = {"busy": (37, 200, 38, 200), "sharp": sharp, "lucky": (3, 3, 2, 3)}
    full, half = _halves([(8, 2)] * 25 + [(2, 8)] * 25, planted)
    df = Hotspots(min_exposure=5, prior="validated").test(full, "node", half)
    flagged = df[df["flag"]]
    assert set(flagged["key"]) == set(planted)
    assert list(order(flagged, "shrunk_mean")["key"]) == expected


def test_validated_prior_that_chose_the_count_orders_by_failures():
    """Every order of the first half is the same (b, a, c), so none beats the count and it is
    kept: `order` then sorts by failures alone (c's 43 before a's 41, though a's rate, 41 of
    96, is above c's 43 of 104)."""
    ordinary = [(5, 5)] * 50
    planted = {"a": (23, 48, 18, 48), "b": (25, 50, 24, 50), "c": (22, 52, 21, 52)}
    full, half = _halves(ordinary, planted)
    df = Hotspots(min_exposure=5, prior="validated").test(full, "node", half)
    flagged = df[df["flag"]]
    assert set(flagged["key"]) == set(planted) and flagged["by_count"].all()
    assert list(order(flagged, "shrunk_mean")["key"]) == ["b", "c", "a"]
    rate = Hotspots(min_exposure=5, prior="moments").test(full, "node")
    assert list(order(rate[rate["flag"]], "shrunk_mean")["key"]) == ["b", "a", "c"]


def test_rescoring_changes_only_the_shrunken_rates():
    """The halves' prior is applied to the tested table (Hotspots.dimension rescoring it) and
    gives the same table as testing with the halves from the start; flags and tests untouched."""
    full, half = _halves([(8, 8)] * 25 + [(2, 2)] * 25, SPLIT_PLANTED)
    hs = Hotspots(min_exposure=5)
    once = hs.test(full, "node", half)
    first = hs.test(full, "node")
    table, everyone = hs.tested(full, "node")
    again = hs.rescore(table, "node", half, everyone).to_frame()
    cols = ["key", "p", "q", "flag", "shrunk_mean", "shrunk_low"]
    assert again[cols].equals(once[cols])
    assert first[["p", "q", "flag"]].equals(again[["p", "q", "flag"]])
    assert not first["shrunk_mean"].equals(again["shrunk_mean"])
