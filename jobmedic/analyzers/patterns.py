"""Patterns: the dominant failure types per project / user / image (when their mix differs from
the selection's own), repeated identical failures (same log template or same job name, same
user: retries that cannot succeed), failure types new in the window, and counts of failure
events that have no jobs row (Kubernetes / Run:AI events: they feed counts here, never rates).

All of it comes from one grouped query over the window's failures."""
from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from jobmedic.analyzers.base import Finding, Inputs
from jobmedic.analyzers.rows import desc_order, group, ksum, missing, nunique
from jobmedic.analyzers.stats_utils import binom_excess_p
from jobmedic.core.timeutil import Window, iso

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

Rows = list[dict[str, Any]]

DIMS = ("project", "user", "image")


class Patterns:
    name = "patterns"
    description = "Dominant failure types and templates, repeated failures, new failure types."
    needs: tuple[str, ...] = ()

    def __init__(self, min_count: int = 3, repeat_min: int = 3, dominant_share: float = 0.6,
                 min_share_gap: float = 0.15, alpha: float = 0.01, max_per_kind: int = 5,
                 new_history_days: float = 14.0, new_history_records: int = 200) -> None:
        self.alpha = alpha
        # "new" needs earlier history to be new against: data at least this many days before
        # the window and this many finished jobs or failure events before it
        self.new_history_days, self.new_history_records = new_history_days, new_history_records
        self.min_count, self.repeat_min, self.min_share_gap = min_count, repeat_min, min_share_gap
        self.dominant_share, self.max_per_kind = dominant_share, max_per_kind

    def run(self, store: Store, window: Window, scope: Sequence[str] | None,
            filters: dict[str, Any] | None = None, inputs: Inputs | None = None
            ) -> list[Finding]:
        filters = filters or {}
        df = store.failure_detail(window, scope, filters)
        out: list[Finding] = []
        if df:
            for r in df:
                if missing(r["failure_type"]):
                    r["failure_type"] = "unknown"
            for dim in DIMS:
                if filters.get(dim) is None:
                    out += self.dominant(df, dim)
            out += self.repeats(store, df, window, scope, filters)
            out += self.new_types(store, df, window, scope)
        out += self.events(store, window, scope, filters)
        return out

    def dominant(self, df: Rows, dim: str) -> list[Finding]:
        import numpy as np
        overall = {t: ksum(r["failures"] for r in g) for t, g in group(df, "failure_type").items()}
        all_fail = max(float(ksum(overall.values())), 1.0)
        d = [r for r in df if not missing(r[dim])]
        g = [(key, {"failures": ksum(r["failures"] for r in rows),
                    "users": nunique(r["user"] for r in rows),
                    "names": nunique(r["name"] for r in rows)})
             for key, rows in group(d, lambda r: (r[dim], r["failure_type"])).items()]
        tot = {k: ksum(r["failures"] for r in rows) for k, rows in group(d, dim).items()}
        out = []
        for i in desc_order([r["failures"] for _, r in g]):
            (key, ftype), r = g[i]
            n = float(tot[key])
            # numpy scalars, as pandas' rows held them (np.round rounds them below)
            share = np.float64(r["failures"]) / n
            base = np.float64(overall[ftype]) / all_fail
            if n < self.min_count or share < self.dominant_share:
                continue
            # only a mix unlike the selection's own, or an entity that owns most of the type
            if share - base < self.min_share_gap and r["failures"] < 0.5 * overall[ftype]:
                continue
            # and more of that type than the selection's own mix explains (exact test)
            p = float(binom_excess_p(np.array([r["failures"]]), np.array([n]), np.array([base]))[0])
            if p > self.alpha:
                continue
            ev = {"dimension": dim, "entity": key, "failure_type": ftype,
                  "failures": int(r["failures"]), "entity_failures": int(n),
                  "share": round(share, 3), "baseline_share": round(base, 3),
                  "users": int(r["users"]), "job_names": int(r["names"]), "p": float(f"{p:.3g}")}
            out.append(Finding(
                self.name, f"{dim}:{key}", "medium",
                f"{int(r['failures'])} of {int(n)} failures of {dim} {key} are {ftype} "
                f"({share:.0%}; {base:.0%} of all failures).", ev,
                f"Address {ftype} for {dim} {key} first: it is {int(r['failures'])} of its "
                f"{int(n)} failures (`jobmedic remediate --failure-type {ftype}`).", kind="pattern"))
            if len(out) >= self.max_per_kind:
                break
        return out

    def repeats(self, store: Store, df: Rows, window: Window, scope: Sequence[str] | None,
                filters: dict[str, Any]) -> list[Finding]:
        def repeated(col: str) -> list[SimpleNamespace]:
            """Failures, first and last per (user, col, type), repeat_min or more, most first."""
            g = [SimpleNamespace(**{"user": u, col: v, "failure_type": t,
                                    "failures": ksum(r["failures"] for r in rows),
                                    "first": min(r["first"] for r in rows),
                                    "last": max(r["last"] for r in rows)})
                 for (u, v, t), rows in group(df, lambda r: (r["user"], r[col], r["failure_type"])).items()]
            g = [r for r in g if r.failures >= self.repeat_min]
            return [g[i] for i in desc_order([r.failures for r in g])]

        tpl, names = repeated("template"), repeated("name")
        if names:  # a job name counts as repeated only when most of its runs fail
            names = names[:50]  # runs of these names (all users: conservative)
            runs = store.name_runs(sorted({r.name for r in names}), window, scope, filters)
            names = [r for r in names if r.failures >= self.dominant_share * runs.get(r.name, 1e18)]
        texts = store.template_texts([int(r.template) for r in tpl[:50]])
        out, seen = [], set()
        rows = [("template", r) for r in tpl[:50]] + [("name", r) for r in names[:50]]
        for same, r in rows:
            if (r.user, r.failure_type) in seen:
                continue
            seen.add((r.user, r.failure_type))
            what = int(r.template) if same == "template" else r.name
            text = texts.get(what) if same == "template" else None
            label = f"template {what}: {(text or '')[:80]!r}" if same == "template" else f"job name {what!r}"
            n = int(r.failures)
            ev = {"user": r.user, "failure_type": r.failure_type, "failures": n, "same": same,
                  "value": what, "text": text, "first": iso(r.first), "last": iso(r.last)}
            out.append(Finding(
                self.name, f"user:{r.user}", "medium",
                f"user {r.user} hit the same {r.failure_type} failure {n} times ({label}).", ev,
                f"Stop resubmitting unchanged: user {r.user}'s {n} identical {r.failure_type} "
                f"failures between {iso(r.first)} and {iso(r.last)} need a fix first "
                f"(`jobmedic remediate --failure-type {r.failure_type}`).", kind="repeat"))
            if len(out) >= self.max_per_kind:
                break
        return out

    def new_types(self, store: Store, df: Rows, window: Window,
                  scope: Sequence[str] | None) -> list[Finding]:
        g = [(t, {"failures": ksum(r["failures"] for r in rows),
                  "users": nunique(r["user"] for r in rows),
                  "gpu_h": ksum(r["gpu_h"] for r in rows), "core_h": ksum(r["core_h"] for r in rows)})
             for t, rows in group(df, "failure_type").items()]
        g = [x for x in g if x[1]["failures"] >= self.min_count]
        g = [g[i] for i in desc_order([r["failures"] for _, r in g])]
        if not g:
            return []
        hist = store.history_before(window.start, scope, cap=self.new_history_records)
        days = (window.start - hist["first"]) / 86400 if hist["first"] is not None else 0.0
        if (days < self.new_history_days
                or hist["jobs"] + hist["events"] < self.new_history_records):
            return []  # too little earlier data to call anything new (the window starts early)
        seen = store.types_seen_before([t for t, _ in g], window.start, scope)
        need = (f"{self.new_history_days:g} days and {self.new_history_records} finished jobs "
                "or failure events")
        out = []
        for t, r in g:
            if t in seen:
                continue
            n, u = int(r["failures"]), int(r["users"])
            out.append(Finding(
                self.name, f"failure_type:{t}", "medium",
                f"{t} is new: {n} failures in the window, none in the {days:.0f} days of "
                f"history before it (at least {need} required to say so).",
                {"failure_type": t, "failures": n, "users": u, "history_days": round(days, 1),
                 "history_required": need,
                 "gpu_h": round(float(r["gpu_h"] or 0), 1), "core_h": round(float(r["core_h"] or 0), 1)},
                f"Find what changed before {iso(window.start)}: {t} appeared with {n} failures "
                f"across {u} users and was never seen before.", kind="new_type"))
        return out[: self.max_per_kind]

    def events(self, store: Store, window: Window, scope: Sequence[str] | None,
               filters: dict[str, Any]) -> list[Finding]:
        out = []
        dims = [d for d in ("node", "image") if filters.get(d) is None]
        counts = store.orphan_event_counts_by(dims, window, scope, filters, self.max_per_kind)
        for dim in dims:  # the window's orphan events found once for both (not once per dim)
            for r in counts[dim]:
                if r["key"] is None or r["failures"] < self.min_count:
                    continue
                out.append(Finding(
                    self.name, f"{dim}:{r['key']}", "medium",
                    f"{r['failures']} {r['failure_type']} failure events on {dim} {r['key']} "
                    f"(events without job records: counts, not rates).",
                    {"dimension": dim, "entity": r["key"], "failure_type": r["failure_type"],
                     "failures": r["failures"], "users": r["users"], "source": "failure_events"},
                    f"Check {dim} {r['key']}: {r['failures']} {r['failure_type']} events from "
                    f"{r['users']} users in the window.", kind="event_pattern"))
        return out
