"""Patterns: the dominant failure types and log templates per project / user / image, repeated
identical failures (same template or job name, same user: retries that cannot succeed), failure
types new in the window, and counts of failure events that have no jobs row (Kubernetes /
Run:AI events: they feed counts here, never rates)."""
from __future__ import annotations

from typing import Any, Sequence

from jobmedic.analyzers.base import Finding, Window, iso

DIMS = ("project", "user", "image")


class Patterns:
    name = "patterns"
    description = "Dominant failure types and templates, repeated failures, new failure types."

    def __init__(self, min_count: int = 3, repeat_min: int = 3, dominant_share: float = 0.6,
                 min_share_gap: float = 0.15, max_per_kind: int = 5) -> None:
        self.min_share_gap = min_share_gap
        self.min_count, self.repeat_min = min_count, repeat_min
        self.dominant_share, self.max_per_kind = dominant_share, max_per_kind

    def run(self, store: Any, window: Window, scope: Sequence[str] | None,
            filters: dict[str, Any] | None = None, prior: list[Finding] | None = None
            ) -> list[Finding]:
        filters = filters or {}
        out: list[Finding] = []
        for dim in DIMS:
            if filters.get(dim) is None:
                out += self.dominant(store, dim, window, scope, filters)
        out += self.repeats(store, window, scope, filters)
        out += self.new_types(store, window, scope, filters)
        out += self.events(store, window, scope, filters)
        return out

    def dominant(self, store: Any, dim: str, window: Window, scope: Sequence[str] | None,
                 filters: dict[str, Any]) -> list[Finding]:
        rows = store.failure_groups([dim, "failure_type"], window, scope, filters, 1)
        overall: dict[Any, int] = {}
        for r in rows:
            overall[r["failure_type"]] = overall.get(r["failure_type"], 0) + r["failures"]
        all_fail = max(sum(overall.values()), 1)
        totals: dict[Any, int] = {}
        for r in rows:
            totals[r[dim]] = totals.get(r[dim], 0) + r["failures"]
        out = []
        for r in rows:  # ordered by failures, so the first row of an entity is its top type
            key, n = r[dim], totals.get(r[dim], 0)
            if key is None or n < self.min_count or r["failures"] / n < self.dominant_share:
                continue
            totals[key] = -1  # one finding per entity
            share = r["failures"] / n
            base = overall[r["failure_type"]] / all_fail
            # only a mix unlike the selection's own, or an entity that owns most of the type
            if share - base < self.min_share_gap and r["failures"] < 0.5 * overall[r["failure_type"]]:
                continue
            ev = {"dimension": dim, "entity": key, "failure_type": r["failure_type"],
                  "failures": r["failures"], "entity_failures": n, "share": round(share, 3),
                  "users": r["users"], "job_names": r["names"], "baseline_share": round(base, 3)}
            out.append(Finding(
                self.name, f"{dim}:{key}", "medium",
                f"{r['failures']} of {n} failures of {dim} {key} are {r['failure_type']} ({share:.0%}; "
                f"{base:.0%} of all failures).",
                ev, f"Address {r['failure_type']} for {dim} {key} first: it is {r['failures']} of "
                    f"its {n} failures (`jobmedic remediate --failure-type {r['failure_type']}`).",
                kind="pattern"))
            if len(out) >= self.max_per_kind:
                break
        return out

    def repeats(self, store: Any, window: Window, scope: Sequence[str] | None,
                filters: dict[str, Any]) -> list[Finding]:
        out, seen = [], set()
        tpl_rows = store.failure_groups(["user", "template", "failure_type"], window, scope,
                                        filters, self.repeat_min)
        texts = store.template_texts([r["template"] for r in tpl_rows])
        name_rows = store.failure_groups(["user", "name", "failure_type"], window, scope,
                                         filters, self.repeat_min)
        if name_rows:  # a job name counts as repeated only when most of its runs fail
            users = sorted({r["user"] for r in name_rows if r["user"] is not None})
            runs = {(b["entity"], b["key"]): b["jobs"]
                    for b in store.breakdown("user", users, "name", window, scope, filters)}
            name_rows = [r for r in name_rows
                         if r["failures"] >= self.dominant_share * runs.get((r["user"], r["name"]), 1e9)]
        for r in tpl_rows + name_rows:
            what = r.get("template") if "template" in r else r.get("name")
            if what is None or r["user"] is None or (r["user"], r["failure_type"]) in seen:
                continue
            seen.add((r["user"], r["failure_type"]))
            label = (f"template {what}: {texts.get(int(what), '')[:80]!r}" if "template" in r
                     else f"job name {what!r}")
            ev = {"user": r["user"], "failure_type": r["failure_type"], "failures": r["failures"],
                  "same": "template" if "template" in r else "name", "value": what,
                  "text": texts.get(int(what)) if "template" in r else None,
                  "first": iso(r["first"]), "last": iso(r["last"])}
            out.append(Finding(
                self.name, f"user:{r['user']}", "medium",
                f"user {r['user']} hit the same {r['failure_type']} failure {r['failures']} times "
                f"({label}).", ev,
                f"Stop resubmitting unchanged: user {r['user']}'s {r['failures']} identical "
                f"{r['failure_type']} failures between {iso(r['first'])} and {iso(r['last'])} "
                f"need a fix first (`jobmedic remediate --failure-type {r['failure_type']}`).",
                kind="repeat"))
            if len(out) >= self.max_per_kind:
                break
        return out

    def new_types(self, store: Any, window: Window, scope: Sequence[str] | None,
                  filters: dict[str, Any]) -> list[Finding]:
        rows = store.rate_by("failure_type", window, scope, filters, failures_only=True)
        types = {r["key"]: r for r in rows if r["key"] is not None}
        seen = store.types_seen_before(list(types), window.start, scope)
        out = []
        for t, r in types.items():
            if t in seen or r["failures"] < self.min_count:
                continue
            out.append(Finding(
                self.name, f"failure_type:{t}", "medium",
                f"{t} is new: {r['failures']} failures in the window, none before it.",
                {"failure_type": t, "failures": r["failures"], "users": r["users"],
                 "gpu_h": round(r["gpu_h"] or 0, 1), "core_h": round(r["core_h"] or 0, 1)},
                f"Find what changed before {iso(window.start)}: {t} appeared with "
                f"{r['failures']} failures across {r['users']} users and was never seen before.",
                kind="new_type"))
        return out[: self.max_per_kind]

    def events(self, store: Any, window: Window, scope: Sequence[str] | None,
               filters: dict[str, Any]) -> list[Finding]:
        out = []
        for dim in ("node", "image"):
            if filters.get(dim) is not None:
                continue
            for r in store.orphan_event_counts(dim, window, scope, filters, self.max_per_kind):
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
