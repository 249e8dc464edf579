"""Temporal: hours of the day and days of the week whose failure rate is above the cluster's
own rate in the rest of the window (exact binomial test, Benjamini-Hochberg), and change
points in the daily failure rate (binary segmentation with a binomial likelihood ratio), for the
whole selection and for each flagged hotspot. Hours and days are UTC, by job end time."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobmedic.analyzers.base import Finding, Inputs
from jobmedic.analyzers.hotspots import hotspots_of
from jobmedic.analyzers.stats_utils import bh, change_points, vs_rest, wilson
from jobmedic.core.timeutil import Window, iso

if TYPE_CHECKING:

    from jobmedic.knowledge.store import Store

DAY = 86400
DOW = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class Temporal:
    name = "temporal"
    description = "Hour-of-day / day-of-week spikes against the baseline, and change points."
    needs = ("hotspots",)  # flagged hotspots are scanned for change points too

    def __init__(self, min_jobs_per_bin: int = 20, fdr: float = 0.05, min_days: int = 5,
                 min_rate_ratio: float = 1.5, cp_alpha: float = 0.01, min_cp_ratio: float = 1.3,
                 max_entities: int = 5) -> None:
        self.min_jobs_per_bin, self.fdr, self.min_days = min_jobs_per_bin, fdr, min_days
        self.min_rate_ratio, self.cp_alpha, self.min_cp_ratio = min_rate_ratio, cp_alpha, min_cp_ratio
        self.max_entities = max_entities

    def run(self, store: Store, window: Window, scope: Sequence[str] | None,
            filters: dict[str, Any] | None = None, inputs: Inputs | None = None
            ) -> list[Finding]:
        filters = filters or {}
        hourly = store.hourly(window, scope, filters)  # one scan: every series sums from it
        out = self.spikes(bins(hourly, "hour"), "hour")
        if window.days >= 14:
            out += self.spikes(bins(hourly, "dow"), "dow")
        out += self.shifts(bins(hourly, "day"), window, None)
        hot = [f for f in hotspots_of(inputs, store, window, scope, filters)
               if f.kind == "hotspot"][: self.max_entities]
        for f in hot:
            dim, ent = f.evidence["dimension"], f.evidence["entity"]
            found = self.shifts(store.rate_by("day", window, scope, {**filters, dim: ent}),
                                window, f"{dim}:{ent}")
            for cp in found:
                f.evidence.setdefault("change_points", []).append(
                    {k: cp.evidence[k] for k in ("day", "rate_before", "rate_after")})
            out += found
        return out

    def spikes(self, rows: list[dict[str, Any]], dim: str) -> list[Finding]:
        import numpy as np
        if len(rows) < 2:
            return []
        k = np.array([r["failures"] or 0 for r in rows], float)
        n = np.array([r["jobs"] for r in rows], float)
        p, base = vs_rest(k, n, k.sum(), n.sum())
        ok = n >= self.min_jobs_per_bin
        q = np.ones_like(p)
        if ok.any():
            q[ok] = bh(p[ok])
        lo, hi = wilson(k, n)
        out = []
        for i, r in enumerate(rows):
            rate = k[i] / n[i] if n[i] else 0.0
            if not ok[i] or q[i] > self.fdr or rate < self.min_rate_ratio * base[i]:
                continue
            label = f"{int(r['key']):02d}:00-{int(r['key']):02d}:59 UTC" if dim == "hour" else DOW[int(r["key"])]
            ev = {"dimension": dim, "bin": int(r["key"]), "label": label, "failures": int(k[i]),
                  "jobs": int(n[i]), "rate": round(rate, 4), "ci_low": round(float(lo[i]), 4),
                  "ci_high": round(float(hi[i]), 4), "baseline": round(float(base[i]), 4),
                  "p": float(f"{p[i]:.3g}"), "q": float(f"{q[i]:.3g}"),
                  "gpu_h": round(r["gpu_h"] or 0, 1), "core_h": round(r["core_h"] or 0, 1)}
            out.append(Finding(
                self.name, f"{dim}:{int(r['key'])}", "medium",
                f"Failures spike at {label}: {int(k[i])} of {int(n[i])} jobs ({rate:.1%}) vs "
                f"{base[i]:.1%} at other times.", ev,
                f"Look for what runs at {label} (cron jobs, maintenance, backups): {int(k[i])} of "
                f"{int(n[i])} jobs failed then ({rate:.1%}, 95% CI {lo[i]:.1%}-{hi[i]:.1%}) vs "
                f"{base[i]:.1%} otherwise, q={q[i]:.2g}.", kind="spike"))
        return out

    def shifts(self, rows: list[dict[str, Any]], window: Window, entity: str | None
               ) -> list[Finding]:
        import numpy as np
        if not rows:
            return []
        first = (window.start // DAY) * DAY
        ndays = int((window.end - 1) // DAY - window.start // DAY) + 1
        if ndays < self.min_days:
            return []
        k, n = np.zeros(ndays), np.zeros(ndays)
        for r in rows:
            i = int((r["key"] - first) // DAY)
            if 0 <= i < ndays:
                k[i], n[i] = r["failures"] or 0, r["jobs"]
        out = []
        who = entity or "the selection"
        min_jobs = max(self.min_jobs_per_bin, 1) if entity is None else 5
        for cp in change_points(k, n, self.cp_alpha, 2, min_jobs):
            up = cp.rate_after > cp.rate_before
            lo, hi = sorted((cp.rate_before, cp.rate_after))
            if hi < self.min_cp_ratio * max(lo, 1e-9):
                continue
            day = iso(first + cp.index * DAY)[:10]
            ev = {"entity": entity or "cluster", "day": day, "rate_before": round(cp.rate_before, 4),
                  "rate_after": round(cp.rate_after, 4), "failures_before": cp.failures_before,
                  "jobs_before": cp.jobs_before, "failures_after": cp.failures_after,
                  "jobs_after": cp.jobs_after, "failures": cp.failures_after,
                  "jobs": cp.jobs_after, "rate": round(cp.rate_after, 4),
                  "baseline": round(cp.rate_before, 4), "llr": round(cp.llr, 2),
                  "p": float(f"{cp.p_value:.3g}"), "direction": "rise" if up else "fall"}
            verb = "rose" if up else "fell"
            rec = (f"Find what changed on {day} for {who} (deploys, image or config updates, node "
                   f"maintenance): the failure rate {verb} from {cp.rate_before:.1%} "
                   f"({cp.failures_before}/{cp.jobs_before}) to {cp.rate_after:.1%} "
                   f"({cp.failures_after}/{cp.jobs_after}), p={cp.p_value:.2g}.") if up else (
                   f"Keep what changed on {day} for {who}: failures fell from {cp.rate_before:.1%} "
                   f"to {cp.rate_after:.1%}.")
            out.append(Finding(
                self.name, f"{entity or 'cluster'}@{day}", "medium" if up else "info",
                f"The failure rate of {who} {verb} on {day}: {cp.rate_before:.1%} -> "
                f"{cp.rate_after:.1%}.", ev, rec, kind="change_point"))
        return out


def bins(hourly: list[dict[str, Any]], dim: str) -> list[dict[str, Any]]:
    """Sum clock-hour rows into hour-of-day (0-23), day-of-week (0 = Monday) or day rows."""
    out: dict[int, dict[str, Any]] = {}
    for r in hourly:
        t = int(r["key"])
        key = {"hour": (t // 3600) % 24, "dow": (t // DAY + 3) % 7, "day": (t // DAY) * DAY}[dim]
        acc = out.setdefault(key, {"key": key, "jobs": 0, "failures": 0, "gpu_h": 0.0, "core_h": 0.0})
        for c in ("jobs", "failures", "gpu_h", "core_h"):
            acc[c] += r[c] or 0
    return [out[k] for k in sorted(out)]
