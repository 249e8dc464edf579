"""Hotspots: nodes, images, projects, users and queues whose failure rate is above the rest of
the selected jobs in the same window.

Rate = failures / jobs exposed (jobs with an outcome, from `jobs` and `job_nodes`), so a busy
node is not guilty for being busy. Each entity with at least `min_exposure` jobs is tested
against everything else by a one-sided exact binomial test; q values are Benjamini-Hochberg
within each dimension. A failure of an n-node job weighs 1/n on each node, so one crashed
18-node job flags no node. A flagged entity whose excess disappears once one user's (or one
job name's) jobs are set aside is reported as explained by them, not as a hotspot.

The test decides *whether* to flag; flagged entities are *ordered* (and cut at `max_per_dim`)
by an empirical-Bayes shrunken rate (analyzers/shrink.py): the posterior mean of a
beta-binomial model (`rank_by: shrunk_mean`; `shrunk_low` for its 5 % quantile, `q` for the old
order by q value) whose prior's spread is the part of the entities' spread that persists
between the two halves of the window (`prior: split`, the default: one more read of the
first half); `moments`, `ml` and `exposure` fit it to the whole window instead. Chosen on
development splits of three real sources; see the evaluation in docs/analyzers.md.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from jobmedic.analyzers.base import Finding, Inputs
from jobmedic.analyzers.rows import Table, desc_order, group, ksum, missing
from jobmedic.analyzers.shrink import (
    COUNT,
    MAX_STRENGTH,
    beta_prior,
    beta_prior_exposure,
    beta_prior_ml,
    beta_prior_split,
    beta_scores,
    validated_strength,
)
from jobmedic.analyzers.stats_utils import bh, vs_rest, wilson
from jobmedic.core.timeutil import Window

if TYPE_CHECKING:
    import pandas as pd

    from jobmedic.knowledge.store import Store

DIMS = ("node", "image", "project", "user", "queue")
#: Who could explain an entity's excess on their own.
EXPLAINERS = {"node": ("user", "name"), "image": ("user",), "project": ("user", "name"),
              "user": ("name",), "queue": ("user", "name")}
ACTIONS = {
    "node": "drain {e} and run the node diagnostics",
    "image": "stop scheduling image {e} and rebuild or pin a known-good tag",
    "project": "review project {e}'s recent job changes",
    "user": "contact user {e} about their failing jobs",
    "queue": "check queue {e}'s nodes and limits",
}


def pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x < 0.1 else f"{100 * x:.0f}%"


def evidence_text(ev: dict[str, Any]) -> str:
    """`14 of 19 jobs failed (74%, 95% CI 51-88%), 9 users; rest of the cluster 4.0%`."""
    return (f"{ev['failures']:g} of {ev['jobs']} jobs failed ({pct(ev['rate'])}, 95% CI "
            f"{pct(ev['ci_low'])}-{pct(ev['ci_high'])}), {ev['users']} users; rest of the "
            f"selection {pct(ev['baseline'])}, q={ev['q']:.2g}")


class Hotspots:
    name = "hotspots"
    description = "Entities whose failure rate is significantly above the rest of the window."
    needs: tuple[str, ...] = ()

    def __init__(self, min_exposure: int = 10, fdr: float = 0.05, min_rate_ratio: float = 1.5,
                 dominance: float = 0.6, min_failures: int = 3, max_per_dim: int = 10,
                 dims: Sequence[str] = DIMS, rank_by: str = "shrunk_mean",
                 prior: str = "split") -> None:
        bad = [d for d in dims if d not in DIMS]
        if bad:
            raise ValueError(f"hotspots.dims: unknown {bad}; accepted: {', '.join(DIMS)}")
        if rank_by not in RANK_BY:
            raise ValueError(f"hotspots.rank_by: unknown {rank_by!r}; accepted: {', '.join(RANK_BY)}")
        if prior not in (*PRIORS, *HALVED):
            raise ValueError(f"hotspots.prior: unknown {prior!r}; accepted: "
                             f"{', '.join((*PRIORS, *HALVED))}")
        self.rank_by, self.prior = rank_by, prior
        self.min_exposure, self.fdr, self.min_rate_ratio = min_exposure, fdr, min_rate_ratio
        self.dominance, self.min_failures, self.max_per_dim = dominance, min_failures, max_per_dim
        self.dims = tuple(dims)

    def run(self, store: Store, window: Window, scope: Sequence[str] | None,
            filters: dict[str, Any] | None = None, inputs: Inputs | None = None
            ) -> list[Finding]:
        filters = filters or {}
        out: list[Finding] = []
        dims = [d for d in self.dims if filters.get(d) is None]  # one entity: nothing to compare
        combos = None
        # the split prior needs each entity's counts in the window's first half (the second is
        # the rest): read only for a dimension with two or more flagged, where order matters
        half = Window(window.start, window.start + (window.end - window.start) // 2)
        half_combos: list[list[dict[str, Any]]] = []

        def first_half(dim: str) -> list[dict[str, Any]]:
            if dim == "node":
                return store.node_rates(half, scope, filters, lean=True)
            if not half_combos:
                half_combos.append(store.entity_combos(half, scope, filters))
            # the prior needs failures and jobs only (not users, hours)
            return [{"key": x, "jobs": ksum(r["jobs"] for r in g),
                     "failures": ksum(r["failures"] for r in g)}
                    for x, g in group(half_combos[0], dim, dropna=False).items()]

        for dim in dims:
            if dim == "node":
                rows = store.node_rates(window, scope, filters, lean=True)
            else:
                if combos is None:
                    combos = store.entity_combos(window, scope, filters)
                rows = per_entity(combos, dim)
            out += self.dimension(store, dim, rows, window, scope, filters, first_half)
        return out

    def test(self, rows: list[dict[str, Any]], dim: str,
             first_half: list[dict[str, Any]] | None = None) -> pd.DataFrame:
        """The tested table of one dimension as a pandas DataFrame (for tests and evaluations):
        rate, Wilson interval, baseline, p, q, flagged, and the shrunken rates. `first_half`:
        the same rows for the first half of the window (the split and validated priors';
        without them they fall back to the moment prior)."""
        df, everyone = self.tested(rows, dim)
        return (df if df.empty else self.rescore(df, dim, first_half, everyone)).to_frame()

    def tested(self, rows: list[dict[str, Any]], dim: str
               ) -> tuple[Table, tuple[Any, Any, Any]]:
        """The tested table without the shrunken rates, and every entity's (keys, failures,
        jobs) that the prior is fitted to."""
        import numpy as np
        if not rows:
            return Table(), ((), (), ())
        names = list(dict.fromkeys(c for r in rows for c in r))
        cols: dict[str, Any] = {c: [r.get(c) for r in rows] for c in names}
        kcol = cols.get("wfailures" if dim == "node" else "failures") or [None] * len(rows)
        cols["k"] = [0 if missing(v) else v for v in kcol]
        for c in ("gpu_h", "core_h"):
            if c in cols:
                cols[c] = [0.0 if missing(v) else v for v in cols[c]]
        # the sums as pandas took them: numpy's (pairwise) over the float column
        k_all_rows = np.asarray(cols["k"], dtype=float)
        jobs_rows = np.asarray([np.nan if missing(v) else v for v in cols["jobs"]], dtype=float)
        K = float(np.sum(k_all_rows)) if any(isinstance(v, float) for v in cols["k"]) \
            else float(sum(cols["k"]))
        N = float(np.nansum(jobs_rows)) if any(not isinstance(v, int) for v in cols["jobs"]) \
            else float(sum(cols["jobs"]))
        known = np.array([not missing(v) for v in cols["key"]], dtype=bool)
        everyone = (np.array([v for v in cols["key"] if not missing(v)], dtype=object),
                    k_all_rows[known], jobs_rows[known])
        keep = np.flatnonzero(known & (jobs_rows >= self.min_exposure))
        cols = {c: [v[i] for i in keep] for c, v in cols.items()}
        df = Table(cols)
        if df.empty:
            return df, everyone
        k, n = k_all_rows[keep], jobs_rows[keep]
        df["k"], df["jobs"] = k, n
        df["p"], df["baseline"] = vs_rest(k, n, K, N)
        df["q"] = bh(df["p"])
        df["rate"] = k / n
        df["ci_low"], df["ci_high"] = wilson(k, n)
        df["flag"] = ((df["q"] <= self.fdr) & (df["rate"] >= self.min_rate_ratio * df["baseline"])
                      & (np.rint(k) >= self.min_failures))
        df.attrs["K"], df.attrs["N"] = K, N
        return df, everyone

    def rescore(self, df: Table, dim: str, first_half: list[dict[str, Any]] | None,
                everyone: tuple[Any, Any, Any], low_for: Any = None) -> Table:
        """The shrunken rates (and, for the validated prior, whether the order is by count) of a
        tested table, from the prior fitted to every entity of the dimension; the flags and
        tests are left as they are (they do not depend on the prior). `low_for`: a mask of the
        rows whose lower shrunken rate is wanted (the rest nan), None for all."""
        import numpy as np
        keys, k_all, n_all = everyone
        if self.prior in HALVED and first_half is not None:
            a = {r["key"]: (float((r["wfailures"] if dim == "node" else r["failures"]) or 0),
                            float(r["jobs"] or 0)) for r in first_half if r["key"] is not None}
            k1 = np.array([a.get(x, (0.0, 0.0))[0] for x in keys])
            n1 = np.array([a.get(x, (0.0, 0.0))[1] for x in keys])
            k2, n2 = np.maximum(k_all - k1, 0.0), np.maximum(n_all - n1, 0.0)
            if self.prior == "split":
                fit = beta_prior_split(k1, n1, k2, n2)
            else:
                s = validated_strength(k1, n1, k2, n2, int(df["flag"].sum()))
                p = float(np.clip(k_all.sum() / max(n_all.sum(), 1e-12), 1e-6, 1 - 1e-6))
                fit = (p * MAX_STRENGTH, (1 - p) * MAX_STRENGTH) if s == COUNT else (p * s, (1 - p) * s)
                df["by_count"] = np.full(len(df), s == COUNT)
        else:
            fit = PRIORS.get(self.prior, beta_prior)(k_all, n_all)
        k, n = np.asarray(df["k"], float), np.asarray(df["jobs"], float)
        prior = fit(n) if callable(fit) else fit  # an exposure-dependent prior: per subject
        df["shrunk_mean"], df["shrunk_low"] = beta_scores(k, n, prior, only=low_for)
        return df

    def dimension(self, store: Store, dim: str, rows: list[dict[str, Any]], window: Window,
                  scope: Sequence[str] | None, filters: dict[str, Any],
                  first_half: Callable[[str], list[dict[str, Any]]] | None = None
                  ) -> list[Finding]:
        df, everyone = self.tested(rows, dim)  # the flags do not depend on the prior
        if df.empty or not df["flag"].any():
            return []
        halves = self.prior in HALVED and first_half is not None and int(df["flag"].sum()) > 1
        # order matters where two or more are flagged: the halves' prior
        # the lower shrunken rate (a beta quantile each) only where reported, unless it orders
        low_for = None if self.rank_by == "shrunk_low" else df["flag"]
        df = self.rescore(df, dim, first_half(dim) if halves else None, everyone, low_for)
        hits = order(df.take(df["flag"]), self.rank_by).head(self.max_per_dim)
        expl = self.explanations(store, dim, hits, window, scope, filters, df.attrs["K"], df.attrs["N"])
        if dim == "node":  # the lean node scan left users and hours lost to the flagged few
            imp = store.impact_of(dim, [str(k) for k in hits["key"]], window, scope, filters)
            for col in ("users", "gpu_h", "core_h"):
                hits[col] = [(imp.get(str(k)) or {}).get(col) or 0 for k in hits["key"]]
        out = []
        for i, r in enumerate((SimpleNamespace(**x) for x in hits.records()), 1):
            ev = {"dimension": dim, "entity": str(r.key), "failures": round(float(r.k), 2),
                  "rank_in_dimension": i,
                  "jobs": int(r.jobs), "rate": round(float(r.rate), 4),
                  "ci_low": round(float(r.ci_low), 4), "ci_high": round(float(r.ci_high), 4),
                  "baseline": round(float(r.baseline), 4),
                  "rate_ratio": round(float(r.rate / max(r.baseline, 1e-9)), 2),
                  "p": float(f"{r.p:.3g}"), "q": float(f"{r.q:.3g}"), "users": int(r.users),
                  "shrunk_rate": round(float(r.shrunk_mean), 4),
                  "shrunk_low": round(float(r.shrunk_low), 4),
                  "failed_jobs": int(r.failures), "gpu_h": round(float(r.gpu_h), 1),
                  "core_h": round(float(r.core_h), 1)}
            ex = expl.get(str(r.key))
            subject = f"{dim}:{r.key}"
            if ex:
                ev.update(ex)
                who = f"{ex['explained_by']} {ex['explainer']!r}"
                out.append(Finding(
                    self.name, subject, "low",
                    f"{dim} {r.key}'s excess failures are explained by {who}: "
                    f"{ex['explainer_failures']:g} of {ev['failures']:g} failures.", ev,
                    f"Do not act on {dim} {r.key}; look at {who} instead ({evidence_text(ev)}; "
                    f"without them p={ex['p_without']:.2g}).", kind="explained"))
                continue
            act = ACTIONS[dim].format(e=r.key)
            out.append(Finding(
                self.name, subject, "high" if r.q < 0.001 else "medium",
                f"{dim} {r.key} fails {ev['rate_ratio']:g}x as often as the rest: "
                f"{ev['failures']:g} of {ev['jobs']} jobs.", ev,
                f"{act[0].upper()}{act[1:]}: {evidence_text(ev)}.", kind="hotspot"))
        return out

    def explanations(self, store: Store, dim: str, hits: Table, window: Window,
                     scope: Sequence[str] | None, filters: dict[str, Any], K: float, N: float
                     ) -> dict[str, dict[str, Any]]:
        """Entities whose excess one user / one job name accounts for (dominant share of the
        failures, and no longer significant once that user's or name's jobs are removed)."""
        import numpy as np
        keys = [str(k) for k in hits["key"]]
        by_key = {str(r.key): r for r in (SimpleNamespace(**x) for x in hits.records())}
        out: dict[str, dict[str, Any]] = {}
        for by in EXPLAINERS[dim]:
            if filters.get(by) is not None:
                continue
            parts = store.breakdown(dim, keys, by, window, scope, filters)
            if not parts:
                continue
            wcol = "wfailures" if dim == "node" else "failures"
            for ent, grp in group(parts, "entity").items():
                ent = str(ent)
                if ent in out or ent not in by_key:
                    continue
                r = by_key[ent]
                top = grp[desc_order([g.get(wcol) for g in grp])[0]]
                if top["key"] is None or float(r.k) <= 0 or top[wcol] / float(r.k) < self.dominance:
                    continue
                k2, n2 = float(r.k - top[wcol]), float(r.jobs - top["jobs"])
                # without the explainer everywhere: it leaves both this entity and the total
                p2, _ = vs_rest(np.array([k2]), np.array([max(n2, 1.0)]), K - float(top[wcol]),
                                N - float(top["jobs"]))
                # an explainer that covers (nearly) all the entity's jobs is the entity itself
                if n2 >= self.min_exposure and p2[0] > self.fdr:
                    out[ent] = {"explained_by": by, "explainer": str(top["key"]),
                                "explainer_failures": round(float(top[wcol]), 2),
                                "explainer_jobs": int(top["jobs"]), "p_without": float(p2[0])}
        return out


RANK_BY = ("shrunk_low", "shrunk_mean", "q")
#: How the beta prior is fitted to the dimension's subjects (analyzers/shrink.py).
PRIORS = {"moments": beta_prior, "ml": beta_prior_ml, "exposure": beta_prior_exposure}
#: Priors that read the window's first half: `split` (the spread that persists between the
#: halves) and `validated` (the strength, or the count order, whose first-half order best
#: predicts the second half: analyzers/shrink.py validated_strength).
HALVED = ("split", "validated")


def order(df: Any, rank_by: str = "shrunk_low") -> Any:
    """Tested rows best first: by a shrunken rate (then evidence), or by q then failures; by
    failures alone where the validated prior chose the count order (ties in the rows' order).
    A Table (the analyzer's) or a pandas DataFrame (Hotspots.test's, in tests)."""
    if isinstance(df, Table):
        return _order_table(df, rank_by)
    if rank_by == "q":
        return df.sort_values(["q", "k"], ascending=[True, False], kind="stable")
    if "by_count" in df and df["by_count"].any():
        return df.sort_values("k", ascending=False, kind="stable")
    return df.sort_values([rank_by, "k"], ascending=[False, False], kind="stable")


def _order_table(df: Table, rank_by: str) -> Table:
    """`order` of a Table: the same stable multi-key sorts as pandas' (missing values last)."""
    import numpy as np
    k = np.asarray(df["k"], float)
    if rank_by == "q":
        return df.take(np.lexsort((-k, np.asarray(df["q"], float))))
    if "by_count" in df and np.asarray(df["by_count"]).any():
        return df.take(desc_order(list(k), kind="stable"))
    return df.take(np.lexsort((-k, -np.asarray(df[rank_by], float))))


def per_entity(combos: list[dict[str, Any]], dim: str) -> list[dict[str, Any]]:
    """Sum the (project, user, image, queue) combination rows to one row per `dim` value
    (missing value last), with the users that failed there."""
    out = []
    for key, g in group(combos, dim, dropna=False).items():
        row = {"key": key, **{c: ksum(r.get(c) for r in g)
                              for c in ("jobs", "failures", "gpu_h", "core_h")}}
        failing = [r for r in g if not missing(r.get("failures")) and r["failures"] > 0]
        if dim != "user":
            row["users"] = len({r["user"] for r in failing if not missing(r.get("user"))})
        else:
            row["users"] = int(ksum(r["failures"] for r in failing) > 0) if failing else 0
        out.append(row)
    return out


def hotspots_of(inputs: Inputs | None, store: Store, window: Window, scope: Sequence[str] | None,
                filters: dict[str, Any] | None) -> list[Finding]:
    """The hotspot findings an analyzer that `needs` them was handed (the same objects, so its
    annotations reach the report), or, run alone, computed here with default thresholds."""
    if inputs is not None and Hotspots.name in inputs:
        return list(inputs[Hotspots.name])
    return Hotspots().run(store, window, scope, filters)
