"""Does the shrunken-rate order of flagged hotspots beat counting? Three real sources, each split
in time: subjects are flagged and ranked on one period and judged on the next by the lift (the
pooled failure rate of the top K over the whole population's, in the later period), against
the top K by raw failure count, at equal K.

* Google 2011 task events (bench/google_tasks.py store): machines, failures of task attempts;
  the flag is jobmedic's own Hotspots.test (exact binomial vs the rest, BH, rate ratio, min
  failures); dev: first quarter -> second quarter; final: first half -> second half.
* LANL node failures 1996-2005: nodes of each system, failures over node-days in production
  (install / decommission months of the data); Poisson flag (exact conditional test, BH, ratio,
  3 failures); dev: Sep 2002-Sep 2003 -> Sep 2003-Sep 2004; final: -> Sep 2004-Sep 2005.
* Titan GPU placements 2013-2019: node slots, slots and cages; failures (DBE / off the bus) over
  GPU-days placed there; dev: 2015 -> 2016; final: 2016 -> 2017.

Rankers: `count` (raw failures), `q` (jobmedic's old order of flagged subjects), and the
empirical-Bayes posterior mean / 5 % quantile under four priors (analyzers/shrink.py):
moments (`shrunk_mean`, `shrunk_low`), marginal likelihood (`ml_*`), exposure-dependent
mean (`exp_*`) and the spread that persists between the ranking period's halves (`split_*`,
which reads each subject's first-half counts; on Google through Hotspots.test itself); each jobmedic ranker lists the flagged subjects first, then the others tested,
in its order. Tied subjects form one group and a top K that cuts a group takes its expected
share (see `lifts`). The method is chosen on the dev splits (mean log-lift ratio over count;
`--splits dev` runs those alone), then the final splits are reported. Second round: the
validated prior (`val_mean`: the strength, or the count order, that predicts the second half of
the ranking period best) and, for it and `split_mean`, a paired bootstrap interval of the
difference to count at each K (`diff_90`; see `intervals` and `choose`).
`python -m bench.eval_hotspot_ranking [--part google|lanl|titan] [--splits dev] [--boot N]`.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from jobmedic.analyzers.hotspots import Hotspots
from jobmedic.analyzers.shrink import (
    COUNT,
    MAX_STRENGTH,
    gamma_prior,
    gamma_prior_exposure,
    gamma_prior_ml,
    gamma_prior_split,
    gamma_scores,
    poisson_vs_rest,
    validated_strength,
)
from jobmedic.analyzers.stats_utils import bh

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
OUT = HERE / "out"
#: ranker -> (prior fit, score column); `count` and `q` need neither.
SHRUNK = {"shrunk_mean": ("moments", "shrunk_mean"), "shrunk_low": ("moments", "shrunk_low"),
          "ml_mean": ("ml", "shrunk_mean"), "ml_low": ("ml", "shrunk_low"),
          "exp_mean": ("exposure", "shrunk_mean"), "exp_low": ("exposure", "shrunk_low")}
#: The persistent-spread prior (analyzers/shrink.py beta_prior_split): needs each subject's
#: counts in the two halves of the ranking period.
SPLIT = {"split_mean": "shrunk_mean", "split_low": "shrunk_low"}
#: The validated prior (analyzers/shrink.py validated_strength): the strength, or the count
#: order, whose first-half order best predicts the second half of the ranking period.
VALIDATED = {"val_mean": "shrunk_mean"}
RANKERS = ("count", "q", *SHRUNK, *SPLIT, *VALIDATED)
#: Rankers given a bootstrap interval of their difference to count (the candidates of the
#: second round of choosing, issue 12).
BOOTED = ("split_mean", "val_mean")
#: Bootstrap resamples of the subjects per table (`--boot`).
BOOT = [200]
GAMMA_PRIORS = {"moments": gamma_prior, "ml": gamma_prior_ml, "exposure": gamma_prior_exposure}
#: The splits run (`--splits dev` while choosing: the final split is not looked at).
SPLITS = ["dev", "final"]


# -- rankings --------------------------------------------------------------------------------
#: An order is a list of tie groups, best first: subjects a ranker cannot tell apart (the same
#: count; the same score and count) form one group, and a top K that cuts a group takes the
#: group's expected share (its second-period sums times the fraction of it inside K: the mean
#: over every order of the ties). The lifts then do not depend on the order in which SQLite
#: happens to return equal rows.
Order = list[list[str]]


def tie_groups(df: pd.DataFrame, cols: list[str], ascending: list[bool]) -> Order:
    """The rows' keys grouped by equal values of `cols`, in that sort order."""
    if df.empty:
        return []
    d = df.sort_values(cols, ascending=ascending, kind="stable")
    out: Order = []
    prev = None
    for key, vals in zip(d["key"].astype(str), d[cols].itertuples(index=False, name=None)):
        if vals != prev:
            out.append([])
            prev = vals
        out[-1].append(key)
    return out


def ranked(df: pd.DataFrame, rank_by: str) -> Order:
    """Tie groups in jobmedic's order (analyzers/hotspots.py `order`)."""
    if rank_by == "q":
        return tie_groups(df, ["q", "k"], [True, False])
    if "by_count" in df and df["by_count"].any():  # the validated prior chose the count order
        return tie_groups(df, ["k"], [False])
    return tie_groups(df, [rank_by, "k"], [False, False])


def _prior_of(r: str) -> tuple[str, str]:
    """(prior, score column) of a jobmedic ranker."""
    if r in SPLIT:
        return "split", r
    if r in VALIDATED:
        return "validated", "val_mean"
    return SHRUNK.get(r, ("moments", r))


def rank_binomial(rows: list[dict], halves: tuple[list[dict], ...],
                  rankers: tuple[str, ...] = RANKERS) -> tuple[dict[str, Order], int]:
    """Orders of node keys from one period's node_rates rows (and its two halves'); and how
    many are flagged."""
    priors = {_prior_of(r)[0] for r in rankers if r != "count"} or {"moments"}
    tested = {}
    for prior in priors:
        # the split and validated priors through jobmedic's own path: the first half's rows,
        # the rest by difference
        df = Hotspots(max_per_dim=10**9, prior=prior).test(rows, "node", halves[0])
        pre = {"split": "split", "validated": "val"}.get(prior)
        tested[prior] = df.rename(columns={"shrunk_mean": f"{pre}_mean", "shrunk_low": f"{pre}_low"}
                                  ) if pre and not df.empty else df
    allr = pd.DataFrame(rows)
    out = {"count": tie_groups(allr, ["failures"], [False])}
    for r in rankers:  # the flagged first, in the ranker's order, then the rest
        if r == "count":
            continue
        prior, col = _prior_of(r)
        df = tested[prior]
        if df.empty:
            out[r] = []
            continue
        out[r] = ranked(df[df["flag"]], col) + ranked(df[~df["flag"]], col)
    df = next(iter(tested.values()))
    return out, int(df["flag"].sum()) if not df.empty else 0


def rank_poisson(keys: np.ndarray, k: np.ndarray, e: np.ndarray,
                 halves: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                 fdr: float = 0.05, ratio: float = 1.5, min_failures: int = 3,
                 rankers: tuple[str, ...] = RANKERS) -> tuple[dict[str, Order], int]:
    """The same for event counts over exposure (node-days, GPU-days); `halves` are (k, e) of
    the period's first and second half, aligned with `keys`."""
    keep = e > 0
    keys, k, e = keys[keep], k[keep], e[keep]
    halves = tuple(np.asarray(h, float)[keep] for h in halves)
    p, rest = poisson_vs_rest(k, e)
    q = bh(p)
    rate = k / e
    flag = (q <= fdr) & (rate >= ratio * rest) & (k >= min_failures)
    df = pd.DataFrame({"key": keys, "k": k, "q": q})
    for r, (prior, col) in SHRUNK.items():
        if r in rankers:
            fit = GAMMA_PRIORS[prior](k, e)
            mean, low = gamma_scores(k, e, fit(e) if callable(fit) else fit)
            df[r] = mean if col == "shrunk_mean" else low
    if set(SPLIT) & set(rankers):
        df["split_mean"], df["split_low"] = gamma_scores(k, e, gamma_prior_split(*halves))
    out = {"count": tie_groups(df, ["k"], [False])}
    for r in rankers:  # the flagged first, in the ranker's order, then the rest
        if r == "count":
            continue
        if r in VALIDATED:  # as Hotspots.rescore does for the beta prior
            k1, e1, k2, e2 = halves
            s = validated_strength(k1, e1, k2, e2, int(flag.sum()), poisson=True)
            lam = float(k.sum() / e.sum())
            prior = (MAX_STRENGTH, MAX_STRENGTH / lam) if s == COUNT else (lam * s, s)
            v = df.assign(val_mean=gamma_scores(k, e, prior)[0], by_count=s == COUNT)
            out[r] = ranked(v[flag], r) + ranked(v[~flag], r)
            continue
        out[r] = ranked(df[flag], r) + ranked(df[~flag], r)
    return out, int(flag.sum())


def lifts(orders: dict[str, Order], h2: dict[str, tuple[float, float]], base: float,
          ks: list[int]) -> dict[str, dict[int, float | None]]:
    """Lift of each ranker's top K in the later period, ties taken at their expected share
    (None: fewer than K subjects)."""
    res: dict[str, dict[int, float | None]] = {}
    for name, groups in orders.items():
        res[name] = {}
        sums = [(sum(h2.get(x, (0.0, 0.0))[0] for x in g), sum(h2.get(x, (0.0, 0.0))[1] for x in g),
                 len(g)) for g in groups]
        for K in ks:
            f = n = 0.0
            left = K
            for gf, gn, size in sums:
                share = min(1.0, left / size)
                f, n, left = f + share * gf, n + share * gn, left - min(left, size)
                if left <= 0:
                    break
            res[name][K] = round(f / n / base, 3) if left <= 0 and n and base else None
    return res


def intervals(make, n: int, ks: list[int], seed: int) -> dict[str, dict[int, list[float] | None]]:
    """Paired bootstrap of lift(ranker) - lift(count) at each K, for the rankers in BOOTED: the
    subjects are resampled with replacement (each with its ranking-period data, its halves and
    its outcome), flagged and ranked again, and judged again; the 5 % and 95 % quantiles of the
    differences (None: fewer than K subjects in too many resamples). `make(idx)` gives the
    orders, the outcomes and the population rate of the resample `idx`."""
    rng = np.random.default_rng(seed)
    diffs: dict[str, dict[int, list[float]]] = {r: {K: [] for K in ks} for r in BOOTED}
    for _ in range(BOOT[0]):
        orders, h2, base = make(rng.integers(0, n, n))
        res = lifts(orders, h2, base, ks)
        for r in BOOTED:
            for K in ks:
                if res[r][K] is not None and res["count"][K] is not None:
                    diffs[r][K].append(res[r][K] - res["count"][K])
    return {r: {K: [round(float(np.quantile(v, 0.05)), 3), round(float(np.quantile(v, 0.95)), 3)]
                if len(v) >= BOOT[0] // 2 else None for K, v in per.items()}
            for r, per in diffs.items()}


def poisson_maker(k1: np.ndarray, e1: np.ndarray, halves: tuple[np.ndarray, ...],
                  k2: np.ndarray, e2: np.ndarray):
    """`make(idx)` for `intervals` over Poisson subjects (arrays aligned by subject)."""
    def make(idx: np.ndarray) -> tuple[dict[str, Order], dict[str, tuple[float, float]], float]:
        keys = np.array([str(j) for j in range(len(idx))])
        orders, _ = rank_poisson(keys, k1[idx], e1[idx], tuple(np.asarray(h)[idx] for h in halves),
                                 rankers=("count", *BOOTED))
        h2 = {x: (float(k2[i]), float(e2[i])) for x, i in zip(keys, idx)}
        return orders, h2, float(k2[idx].sum() / e2[idx].sum())
    return make


# -- Google 2011 -----------------------------------------------------------------------------
def google(db: Path) -> dict:
    from bench.bench_google_hotnodes import TRACE_END_S
    from bench.google_tasks import EPOCH_OFFSET
    from jobmedic.core.timeutil import Window
    from jobmedic.knowledge.store import Store

    out = {}
    T = TRACE_END_S
    splits = {"dev": (0, T // 4, T // 2), "final": (0, T // 2, T + 1)}
    with Store(str(db)) as store:
        for name, (a, b, c) in splits.items():
            if name not in SPLITS:
                continue
            w1, w2 = Window(EPOCH_OFFSET + a, EPOCH_OFFSET + b), Window(EPOCH_OFFSET + b, EPOCH_OFFSET + c)
            mid = w1.start + (w1.end - w1.start) // 2  # as Hotspots.run halves a window
            halves = (store.node_rates(Window(w1.start, mid), None, lean=True),)
            r1 = store.node_rates(w1, None, lean=True)
            orders, nflag = rank_binomial(r1, halves)
            r2 = store.node_rates(w2, None, lean=True)
            h2 = {str(r["key"]): (float(r["failures"]), float(r["jobs"])) for r in r2}
            base = sum(v[0] for v in h2.values()) / sum(v[1] for v in h2.values())
            ks = sorted({10, 25, 50, 100, nflag} - {0})
            out[name] = {"flagged": nflag, "machines": sum(map(len, orders["count"])),
                         "cluster_rate": round(base, 4), "lift": lifts(orders, h2, base, ks)}
            by1 = {r["key"]: r for r in r1 if r["key"] is not None}
            byh = {r["key"]: r for r in halves[0] if r["key"] is not None}
            by2 = {r["key"]: r for r in r2 if r["key"] is not None}
            universe = sorted(set(by1) | set(by2), key=str)

            def make(idx, by1=by1, byh=byh, by2=by2, universe=universe):
                a, h, o = [], [], {}
                for j, i in enumerate(idx):
                    x, nk = universe[i], str(j)
                    if x in by1:
                        a.append({**by1[x], "key": nk})
                    if x in byh:
                        h.append({**byh[x], "key": nk})
                    if x in by2:
                        o[nk] = (float(by2[x]["failures"]), float(by2[x]["jobs"]))
                orders, _ = rank_binomial(a, (h,), rankers=("count", *BOOTED))
                return orders, o, sum(v[0] for v in o.values()) / sum(v[1] for v in o.values())
            out[name]["diff_90"] = intervals(make, len(universe), ks, seed=12)
    return out


# -- LANL ------------------------------------------------------------------------------------
def _month(s: object, default: pd.Timestamp) -> pd.Timestamp:
    s = str(s).strip()
    if s in ("", "nan", "before tracking"):
        return pd.Timestamp("1990-01-01") if s == "before tracking" else default
    if s == "current":
        return pd.Timestamp("2005-10-01")
    a, _, b = s.partition("-")
    try:
        if a.isdigit():  # "5-Apr": April 2005 (a spreadsheet's rendering)
            return pd.Timestamp(f"{2000 + int(a)}-{pd.Timestamp('2000-' + b + '-01').month:02d}-01")
        return pd.Timestamp(pd.to_datetime("01-" + s, format="%d-%b-%y"))  # "Nov-96"
    except ValueError:
        return default


def lanl(folder: Path) -> dict:
    d = pd.read_csv(next(folder.glob("*.csv.xz")))
    d["t"] = pd.to_datetime(d["Prob Started"], format="%m/%d/%Y %H:%M", errors="coerce")
    d = d[d["t"].notna() & d["nodenum"].notna()]
    lo, hi = pd.Timestamp("1990-01-01"), pd.Timestamp("2005-10-01")
    nodes = d.groupby(["System", "nodenum"]).agg(prod=("node prod", "first"),
                                                 decom=("node decom", "first"),
                                                 size=("nodes", "first")).reset_index()
    nodes["start"] = [_month(x, lo) for x in nodes["prod"]]
    nodes["stop"] = [_month(x, hi) for x in nodes["decom"]]
    splits = {"dev": ("2002-09-01", "2003-09-01", "2004-09-01"),
              "final": ("2003-09-01", "2004-09-01", "2005-09-01")}
    out: dict = {}
    for name, (a, b, c) in splits.items():
        if name not in SPLITS:
            continue
        a, b, c = map(pd.Timestamp, (a, b, c))
        out[name] = {}
        for sysid, nd in nodes.groupby("System"):
            ev = d[d["System"] == sysid]
            # nodes that never failed are not in the data: add them (the system's size) with the
            # system's typical production period, so the population and its rate are whole
            missing = max(int((nd["size"].max() if nd["size"].notna().any() else 0) - len(nd)), 0)
            st, sp = nd["start"].median(), nd["stop"].median()
            keys = np.array([str(int(x)) for x in nd["nodenum"]] + [f"quiet{i}" for i in range(missing)])
            start = np.array(list(nd["start"]) + [st] * missing, dtype="datetime64[ns]")
            stop = np.array(list(nd["stop"]) + [sp] * missing, dtype="datetime64[ns]")

            def period(p0, p1, ev=ev, keys=keys, start=start, stop=stop):
                lo_ = np.maximum(start, np.datetime64(p0))
                hi_ = np.minimum(stop, np.datetime64(p1))
                e = np.clip((hi_ - lo_) / np.timedelta64(1, "D"), 0, None)
                inside = ev[(ev["t"] >= p0) & (ev["t"] < p1)]
                cnt = inside.groupby(inside["nodenum"].astype(int).astype(str)).size()
                k = np.array([float(cnt.get(x, 0)) for x in keys])
                return k, e.astype(float)

            k1, e1 = period(a, b)
            k2, e2 = period(b, c)
            if len(keys) < 16 or k1.sum() < 30 or k2.sum() < 30:
                continue
            mid = a + (b - a) / 2
            orders, nflag = rank_poisson(keys, k1, e1, (*period(a, mid), *period(mid, b)))
            h2 = {x: (k2[i], e2[i]) for i, x in enumerate(keys)}
            base = k2.sum() / e2.sum()
            ks = sorted({5, 10, 20, nflag} - {0})
            halves = (*period(a, mid), *period(mid, b))
            diff = intervals(poisson_maker(k1, e1, halves, k2, e2), len(keys), ks, seed=12)
            out[name][f"system {sysid}"] = {"nodes": len(keys), "flagged": nflag,
                                            "failures_1": int(k1.sum()), "failures_2": int(k2.sum()),
                                            "exposure_cv": round(float(e1[e1 > 0].std() / e1[e1 > 0].mean()), 3),
                                            "lift": lifts(orders, h2, base, ks), "diff_90": diff}
    return out


# -- Titan -----------------------------------------------------------------------------------
def titan(folder: Path) -> dict:
    d = pd.read_csv(folder / "data_gc_full.csv", dtype={"SN": str})
    d["ins"], d["rem"] = pd.to_datetime(d["insert"]), pd.to_datetime(d["remove"])
    d["failed"] = d["event"].isin(["DBE", "OTB"])
    loc = d["location"].str.extract(r"^(c\d+-\d+)c(\d+)s(\d+)n(\d+)$")
    d["node"] = d["location"]
    d["slot"] = loc[0] + "c" + loc[1] + "s" + loc[2]
    d["cage"] = loc[0] + "c" + loc[1]
    splits = {"dev": ("2015-01-01", "2016-01-01", "2017-01-01"),
              "final": ("2016-01-01", "2017-01-01", "2018-01-01")}
    out: dict = {}
    for name, (a, b, c) in splits.items():
        if name not in SPLITS:
            continue
        a, b, c = map(pd.Timestamp, (a, b, c))
        out[name] = {}
        for level, ks in (("node", [10, 25, 50, 100]), ("slot", [10, 25, 50]), ("cage", [5, 10, 20])):
            def period(p0, p1, level=level):
                e = ((d["rem"].clip(upper=p1) - d["ins"].clip(lower=p0)).dt.total_seconds() / 86400).clip(lower=0)
                k = d["failed"] & (d["rem"] >= p0) & (d["rem"] < p1)
                g = pd.DataFrame({"key": d[level], "k": k.astype(float), "e": e}).groupby("key").sum()
                return g
            g1, g2 = period(a, b), period(b, c)
            mid = a + (b - a) / 2
            ga, gb = period(a, mid).reindex(g1.index).fillna(0), period(mid, b).reindex(g1.index).fillna(0)
            # the bootstrap's population: every location of either period
            u = g1.index.union(g2.index)
            u1, u2 = g1.reindex(u).fillna(0), g2.reindex(u).fillna(0)
            uh = [x.reindex(u).fillna(0) for x in (ga, gb)]
            make = poisson_maker(u1["k"].to_numpy(), u1["e"].to_numpy(),
                                 (uh[0]["k"].to_numpy(), uh[0]["e"].to_numpy(),
                                  uh[1]["k"].to_numpy(), uh[1]["e"].to_numpy()),
                                 u2["k"].to_numpy(), u2["e"].to_numpy())
            keys = g1.index.to_numpy().astype(str)
            orders, nflag = rank_poisson(keys, g1["k"].to_numpy(), g1["e"].to_numpy(),
                                         (ga["k"].to_numpy(), ga["e"].to_numpy(),
                                          gb["k"].to_numpy(), gb["e"].to_numpy()))
            h2 = {str(x): (float(r.k), float(r.e)) for x, r in g2.iterrows()}
            base = g2["k"].sum() / g2["e"].sum()
            e1 = g1["e"].to_numpy()
            out[name][level] = {"subjects": len(keys), "flagged": nflag,
                                "failures_1": int(g1["k"].sum()), "failures_2": int(g2["k"].sum()),
                                "exposure_cv": round(float(e1[e1 > 0].std() / e1[e1 > 0].mean()), 3),
                                "lift": lifts(orders, h2, base, sorted(set(ks) | ({nflag} - {0}))),
                                "diff_90": intervals(make, len(u), sorted(set(ks) | ({nflag} - {0})),
                                                     seed=12)}
    return out


# -- choosing on dev, reporting final ---------------------------------------------------------
def _cells(block: dict) -> list[dict[str, dict[int, float | None]]]:
    """Every lift table of a part's split (one per system / level / the cluster)."""
    if "lift" in block:
        return [block["lift"]]
    return [v["lift"] for v in block.values() if isinstance(v, dict) and "lift" in v]


def _blocks(block: dict) -> list[dict]:
    """Every table of a part's split, with its lifts and intervals."""
    if "lift" in block:
        return [block]
    return [v for v in block.values() if isinstance(v, dict) and "lift" in v]


def choose(results: dict) -> dict:
    """Mean log(lift / count lift) on the dev splits, over every table and K both reach.

    First round (all rankers): the highest mean (it chose split_mean). Second round, fixed
    before the final split was run with it: between the BOOTED rankers, those with no dev cell
    *significantly* below count (the 90 % bootstrap interval of the difference entirely below
    0) qualify, and the highest mean among them wins (among all BOOTED if none qualifies)."""
    score: dict[str, list[float]] = {r: [] for r in RANKERS[1:]}
    below: dict[str, list[str]] = {r: [] for r in BOOTED}
    for pname, part in results.items():
        for i, block in enumerate(_blocks(part.get("dev", {}))):
            table = block["lift"]
            for r, vals in score.items():
                for K, v in table[r].items():
                    c = table["count"].get(K)
                    if v and c:
                        vals.append(math.log(v / c))
                    ci = block.get("diff_90", {}).get(r, {}).get(K)
                    if r in below and ci and ci[1] < 0:
                        below[r].append(f"{pname} {i} K={K}")
    mean = {r: round(float(np.mean(v)), 4) if v else None for r, v in score.items()}
    first = max((r for r in mean if r not in VALIDATED and mean[r] is not None), key=lambda r: mean[r])
    pool = [r for r in BOOTED if mean[r] is not None and not below[r]] or \
        [r for r in BOOTED if mean[r] is not None]
    return {"dev_mean_log_ratio_vs_count": mean, "cells": {r: len(v) for r, v in score.items()},
            "first_round": first, "dev_significantly_below": below,
            "chosen": max(pool, key=lambda r: mean[r]) if pool else first}


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.eval_hotspot_ranking")
    ap.add_argument("--part", action="append", choices=["google", "lanl", "titan"])
    ap.add_argument("--google-db", default=str(OUT / "google_tasks.db"))
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--splits", default="dev,final",
                    help="dev while choosing a method; dev,final to report")
    ap.add_argument("--boot", type=int, default=BOOT[0],
                    help="bootstrap resamples per table for the intervals of the difference")
    args = ap.parse_args(argv)
    SPLITS[:] = args.splits.split(",")
    BOOT[0] = args.boot
    parts = args.part or ["google", "lanl", "titan"]
    data = Path(args.data)
    results: dict = {}
    if "google" in parts:
        results["google"] = google(Path(args.google_db))
    if "lanl" in parts:
        results["lanl"] = lanl(data / "lanl_failures")
    if "titan" in parts:
        results["titan"] = titan(data / "titan_gpu_lifetimes")
    results["choice"] = choose({k: v for k, v in results.items()})
    OUT.mkdir(exist_ok=True)
    name = "hotspot_ranking" + ("" if len(parts) == 3 else "_" + "_".join(parts))
    name += "" if "final" in SPLITS else "_dev"
    (OUT / f"{name}.json").write_text(json.dumps(results, indent=1, default=str))
    print(json.dumps(results, indent=1, default=str))
    return results


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
