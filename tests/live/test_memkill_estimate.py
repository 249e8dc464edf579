"""The memory-kill estimator on recorded-shape trajectories (1-2 s sampling, as sstat polls):
linear growth alarms with a lead time, plateaus and sawtooth with flat peaks never alarm."""
from __future__ import annotations

import time

import numpy as np
import pytest

from jobmedic.models.memkill import estimate, job_estimate

MIB = 1024 * 1024
LIMIT = 512 * MIB


def series(fn, n=90, dt=1.5, t0=1_000_000.0, seed=0):
    rng = np.random.default_rng(seed)
    t = t0 + np.arange(n) * dt + rng.uniform(0, 0.3, n)
    return [(float(a), float(max(fn(a - t0), 0) + rng.normal(0, 2 * MIB))) for a in t]


def test_linear_growth_alarms_with_a_lead_time():
    s = series(lambda x: 50 * MIB + 2.5 * MIB * x)  # 2.5 MiB/s: 512 MiB at ~185 s
    now = s[-1][0] + 1
    e = estimate(s, LIMIT, now)
    assert e["status"] == "growing" and e["alarm"]
    true_eta = (LIMIT - (50 * MIB + 2.5 * MIB * (s[-1][0] - s[0][0]))) / (2.5 * MIB)
    assert abs(e["eta_s"] - true_eta) < 8
    lo, hi = e["eta_interval_s"]
    assert lo <= e["eta_s"] <= hi


def test_plateau_under_the_limit_does_not_alarm_even_after_a_climb():
    s = series(lambda x: min(100 * MIB + 5 * MIB * x, 420 * MIB), n=150)  # flat after ~64 s
    e = estimate(s, LIMIT, s[-1][0] + 1)
    assert e["status"] == "plateau" and not e["alarm"]


def test_sawtooth_with_flat_peaks_does_not_alarm_but_rising_peaks_do():
    flat = series(lambda x: 150 * MIB + 200 * MIB * ((x % 20) / 20), n=150)
    assert not estimate(flat, LIMIT, flat[-1][0] + 1)["alarm"]
    rising = series(lambda x: 100 * MIB + 2.5 * MIB * x + 80 * MIB * ((x % 15) / 15), n=120)
    e = estimate(rising, LIMIT, rising[-1][0] + 1)
    assert e["status"] == "growing" and e["alarm"]


def test_spikes_that_free_memory_again_do_not_alarm():
    def spiky(x):
        return 200 * MIB + (250 * MIB if int(x) % 40 in (10, 11) else 0)
    s = series(spiky, n=150)
    e = estimate(s, LIMIT, s[-1][0] + 1)
    assert not e["alarm"], e


def test_step_growth_alarms_while_it_climbs():
    s = series(lambda x: 64 * MIB + 64 * MIB * (x // 15), n=70)  # +64 MiB every 15 s
    e = estimate(s, LIMIT, s[-1][0] + 1)
    assert e["status"] == "growing" and e["alarm"]


def test_bad_input_out_of_order_future_gaps_and_no_samples():
    s = series(lambda x: 50 * MIB + 4 * MIB * x)
    now = s[-1][0] + 1
    shuffled = list(np.random.default_rng(1).permutation(np.array(s)))
    bad = [*map(tuple, shuffled), (now + 3600, 1e12), (now - 5, float("nan")), (now - 4, -1.0)]
    e = estimate(bad, LIMIT, now)
    assert e["dropped"] == {"not_finite": 1, "negative": 1, "future": 1}
    assert e["alarm"] and abs(e["eta_s"] - estimate(s, LIMIT, now)["eta_s"]) < 1e-6
    gap = [p for p in s if not (1_000_030 < p[0] < 1_000_080)]  # a 50 s hole in sampling
    assert estimate(gap, LIMIT, now)["alarm"]
    assert estimate([], LIMIT, now)["status"] == "no_samples"
    assert estimate(s, LIMIT, now + 3600)["status"] == "stale"
    assert estimate(s, None, now)["status"] == "no_limit"
    assert estimate(s[:3], LIMIT, s[2][0] + 1)["status"] == "too_few"


def test_job_estimate_takes_the_most_urgent_step_and_percent_units():
    grow = series(lambda x: 50 * MIB + 4 * MIB * x)
    flat = series(lambda x: 10 * MIB)
    rows = [{"metric": "mem_max_rss_bytes", "node": "n1", "device": "batch", "t": t, "value": v}
            for t, v in flat]
    rows += [{"metric": "mem_max_rss_bytes", "node": "n1", "device": "0", "t": t, "value": v}
             for t, v in grow]
    e = job_estimate(rows, 512, grow[-1][0] + 1)
    assert e["alarm"] and e["step"] == "0" and e["series"] == 2
    pct = [{"metric": "mem_used_pct", "node": "n1", "device": "", "t": t, "value": v / LIMIT * 100}
           for t, v in grow]
    ep = job_estimate(pct, None, grow[-1][0] + 1)
    assert ep["limit"] == 100.0 and ep["alarm"]
    assert job_estimate([], 512, 0)["status"] == "no_samples"


@pytest.mark.parametrize("n", [300])
def test_scoring_one_job_is_fast(n):
    s = series(lambda x: 50 * MIB + 1 * MIB * x, n=n)
    best = float("inf")  # the best of 20: the code's cost, not the shared CPU's load
    for _ in range(20):
        t0 = time.perf_counter()
        estimate(s, LIMIT, s[-1][0] + 1)
        best = min(best, time.perf_counter() - t0)
    assert best < 0.010


def _sstat_poll(t, jid, rss_kib):
    return [f"# scrape {t}", "JobID|MaxRSS|AveRSS|MaxRSSNode|AveCPU|MinCPU|NTasks",
            f"{jid}.batch|{rss_kib}K|{rss_kib}K|n1|00:00:01|00:00:01|1"]


def test_the_memkill_rule_alerts_a_growing_job_and_resolves_a_plateau(store):
    """sstat polls -> telemetry -> the rule: an alert with its lead time for the growing job
    only; the job at a plateau under its limit never alerts; the alert resolves when the
    growing job's samples stop (stale)."""
    from jobmedic.ingest.sstat import parse_sstat
    from jobmedic.live.alerting import AlertEngine
    from jobmedic.live.rules import RuleSet

    now = 1_800_000_000
    store.upsert_jobs([("c1", "11", "grow", "alice", "ml", "running", 512, now - 200, "slurm"),
                       ("c1", "12", "flat", "bob", "ml", "running", 512, now - 200, "slurm"),
                       ("c1", "13", "done", "bob", "ml", "completed", 512, now - 200, "slurm")],
                      columns=("cluster", "job_id", "name", "user", "project", "state",
                               "req_mem_mb", "start_time", "source"))
    lines = []
    for i in range(90):
        t = now - 180 + 2 * i
        lines += _sstat_poll(t, "11", 100 * 1024 + 2 * 1024 * 2 * i)  # 2 MiB/s, ~460 MiB
        lines += _sstat_poll(t, "12", min(100 * 1024 + 8 * 1024 * 2 * i, 400 * 1024))
        lines += _sstat_poll(t, "13", 100 * 1024 + 4 * 1024 * 2 * i)
    samples, rejects = parse_sstat(lines, now, "c1")
    assert not rejects
    store.add_samples(samples)
    rules = RuleSet({"hotspot": {"enabled": False}, "known_fix": {"enabled": False},
                     "repeat_failures": {"enabled": False}, "node_users": {"enabled": False}})
    cands, ran = rules.evaluate(store, now)
    assert "memkill" in ran
    assert [c.subject for c in cands] == ["job:11"]
    assert "will reach its memory limit 0.50 GiB in ~" in cands[0].text
    engine = AlertEngine(store, cooldown_s=1800)
    assert engine.apply(cands, ran, now).opened == 1
    later = now + 600  # no new samples: stale, the alert resolves
    cands2, ran2 = rules.evaluate(store, later)
    assert cands2 == [] and engine.apply(cands2, ran2, later).resolved == 1


@pytest.mark.parametrize("seed", range(12))
def test_theil_sen_and_envelope_give_the_reference_figures(seed):
    """The broadcast Theil-Sen equals scipy.stats.theilslopes (slope and Sen's interval, ties
    included) and the sorted envelope equals a per-bin loop: the speed-up changed no figure."""
    from scipy.stats import theilslopes

    from jobmedic.models.memkill import envelope, theil_sen

    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    t = np.sort(rng.uniform(0, 180, n))
    if seed % 3 == 0:
        t = np.round(t / 10) * 10  # repeated times
    v = rng.normal(0, 1, n).cumsum()
    if seed % 4 == 0:
        v = np.round(v)  # repeated values
    if float(np.ptp(t)) > 0:
        ref = theilslopes(v, t, alpha=0.90)
        got = theil_sen(t, v)
        np.testing.assert_allclose(got, (ref.slope, ref.low_slope, ref.high_slope), rtol=1e-12)
    tu, first = np.unique(t, return_index=True)  # estimate() hands envelope unique times
    vu = v[first]
    bins = 24
    edges = np.linspace(tu[0], tu[-1] + 1e-9, bins + 1)
    idx = np.clip(np.searchsorted(edges, tu, side="right") - 1, 0, bins - 1)
    ref_t, ref_v = [], []
    for b in np.unique(idx):
        m = idx == b
        k = int(np.argmax(vu[m]))
        ref_t.append(tu[m][k])
        ref_v.append(vu[m][k])
    bt, bv = envelope(tu, vu, tu[0], tu[-1] + 1e-9, bins)
    np.testing.assert_array_equal(bt, ref_t)
    np.testing.assert_array_equal(bv, ref_v)
