"""Blame: for each flagged hotspot, is the entity itself bad, or the jobs that ran on it?

Two kinds of evidence. An attribution model: an L2-penalised logistic regression of job failure
on indicators of the flagged entities and of the users / images that fail most on them, fitted
on the window's jobs (grouped by the indicators they touch, so the fit is over a few hundred
rows, never a million), so that a bad image that mostly ran on one node lands on the image.
And the failure mix: how many users and images the failures span, and the share of failure
types whose usual blame is the cluster (node_failure, gpu_error, filesystem_error, ...).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobmedic.analyzers.base import Finding, Inputs
from jobmedic.analyzers.hotspots import hotspots_of
from jobmedic.analyzers.rows import desc_order, group, ksum, missing
from jobmedic.core.timeutil import Window

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

Rows = list[dict[str, Any]]

ENTITY_DIMS = ("node", "image", "user", "project", "queue")


class Blame:
    name = "blame"
    description = "Separates a bad node / image from bad jobs that ran there."
    needs = ("hotspots",)  # attributes each flagged hotspot (and annotates it)

    def __init__(self, l2: float = 1.0, min_failures: int = 3, co_candidates: int = 3,
                 min_log_odds: float = math.log(1.5), cluster_share: float = 0.5,
                 diverse_users: int = 3) -> None:
        self.l2, self.min_failures, self.co_candidates = l2, min_failures, co_candidates
        self.min_log_odds, self.cluster_share = min_log_odds, cluster_share
        self.diverse_users = diverse_users

    def run(self, store: Store, window: Window, scope: Sequence[str] | None,
            filters: dict[str, Any] | None = None, inputs: Inputs | None = None
            ) -> list[Finding]:
        filters = filters or {}
        hot = hotspots_of(inputs, store, window, scope, filters)
        flagged = [f for f in hot if f.kind in ("hotspot", "explained")
                   and f.evidence.get("dimension") in ENTITY_DIMS
                   and f.evidence.get("failures", 0) >= self.min_failures]
        if not flagged:
            return []
        cands: dict[str, list[str]] = {d: [] for d in ENTITY_DIMS}
        for f in flagged:
            cands[f.evidence["dimension"]].append(f.evidence["entity"])
        mixes: dict[str, Rows] = {}
        for dim in ENTITY_DIMS:
            ents = [f.evidence["entity"] for f in flagged if f.evidence["dimension"] == dim]
            mixes[dim] = store.failure_mix(dim, ents, window, scope, filters)
            for by in ("user", "image"):  # co-located candidates: who fails most on it
                if by == dim or filters.get(by) is not None or not ents:
                    continue
                parts = [p for p in store.breakdown(dim, ents, by, window, scope, filters)
                         if not missing(p["key"]) and not missing(p["failures"])
                         and p["failures"] >= self.min_failures]
                taken: dict[Any, int] = {}
                for i in desc_order([p["failures"] for p in parts]):
                    ent = parts[i]["entity"]
                    if missing(ent) or taken.get(ent, 0) >= self.co_candidates:
                        continue
                    taken[ent] = taken.get(ent, 0) + 1
                    cands[by].append(str(parts[i]["key"]))
        cands = {d: sorted(set(v)) for d, v in cands.items() if d not in filters or not filters[d]}
        groups = candidate_groups(store, cands, window, scope, filters)
        coefs = self.fit(groups, cands)
        by_ent = {d: group(m, "entity") for d, m in mixes.items()}
        by_group = {d: group(groups, d) for d in ENTITY_DIMS}
        out = []
        chain = explanations(flagged)
        for f in flagged:
            dim, ent = f.evidence["dimension"], f.evidence["entity"]
            colo = colocated(by_group[dim].get(ent, []), dim)
            v = self.verdict(f, dim, ent, coefs, by_ent[dim].get(ent, []), colo)
            out.append(one_conclusion(f, v, chain))
        return out

    def fit(self, df: Rows, cands: dict[str, list[str]]) -> dict[str, float]:
        """Log-odds coefficient per candidate ("node:gpu-03") from the grouped job counts."""
        import numpy as np
        cols = [f"{d}:{v}" for d, vals in cands.items() for v in vals]
        if not df or not cols or sum(r["failures"] for r in df) == 0:
            return {}
        X = np.zeros((len(df), len(cols)))
        index = {c: i for i, c in enumerate(cols)}
        for d in cands:
            for row, r in enumerate(df):
                v = r.get(d)
                if not missing(v):
                    X[row, index[f"{d}:{v}"]] = 1.0
        fail = np.array([r["failures"] for r in df], dtype=float)
        ok = np.array([r["jobs"] for r in df], dtype=float) - fail
        Xs = np.vstack([X, X])
        y = np.r_[np.ones(len(df)), np.zeros(len(df))]
        w = np.r_[fail, ok]
        keep = w > 0
        if len(set(y[keep])) < 2:
            return {}
        from jobmedic.analyzers.logit import fit_logit  # sklearn's objective, without its import

        # C is the inverse penalty per unit weight: scale by the job count so the prior's pull
        # does not depend on the window's size.
        coef, _ = fit_logit(Xs[keep], y[keep], w[keep], C=float(w.sum()) / max(self.l2, 1e-9) / 100.0)
        return {c: float(b) for c, b in zip(cols, coef)}

    def verdict(self, f: Finding, dim: str, ent: str, coefs: dict[str, float],
                mix: Rows, colo: set[str]) -> Finding:
        """The blame finding for one flagged entity; also annotates the hotspot finding."""
        own = coefs.get(f"{dim}:{ent}", 0.0)
        others = {k: v for k, v in coefs.items() if k != f"{dim}:{ent}"}
        rows = mix
        total = float(ksum(r["failures"] for r in rows)) if rows else 0.0
        cl = float(ksum(r["failures"] for r in rows if r["blame"] == "cluster")) if total else 0.0
        share = cl / total if total else 0.0
        users = int(max(r["users"] for r in rows)) if total else 0
        types = [(t, ksum(r["failures"] for r in g))
                 for t, g in group(rows, "failure_type").items()] if total else []
        top_types = {str(types[i][0]): int(types[i][1])
                     for i in desc_order([v for _, v in types])[:3]}
        # the strongest co-candidate of another dimension that fails on this entity
        rival, rival_coef, reason = None, 0.0, "attribution model"
        for k, v in others.items():
            if k.split(":", 1)[0] != dim and v > rival_coef and k in colo:
                rival, rival_coef = k, v
        if dim == "node" or dim == "queue":
            cluster_like = share >= self.cluster_share or users >= self.diverse_users
            if own >= self.min_log_odds and (rival is None or own >= rival_coef) and cluster_like:
                target, blame = f"{dim}:{ent}", "cluster"
            elif rival is not None and rival_coef >= self.min_log_odds and rival_coef > own:
                target, blame = rival, "job"
            else:
                target, blame = f"{dim}:{ent}", "cluster" if cluster_like else "unclear"
        else:
            nodes = sorted((coefs.get(k, 0.0), k) for k in colo if k.startswith("node:"))
            if share >= self.cluster_share and nodes:
                # cluster-blame failures (gpu_error, node_failure, ...) on a flagged node: the
                # node, whatever the model says about the few users who happened to run there
                rival, rival_coef = nodes[-1][1], max(nodes[-1][0], own + 1e-6)
                reason = "cluster-blame failure types on a flagged node"
            if rival is not None and rival_coef > own and rival_coef >= self.min_log_odds:
                target, blame = rival, "cluster" if rival.startswith("node:") else "job"
            else:
                target, blame = f"{dim}:{ent}", "job" if share < self.cluster_share else "cluster"
        ev = {"dimension": dim, "entity": ent, "attributed_to": target, "blame": blame,
              "log_odds": round(own, 3), "odds_ratio": round(math.exp(own), 2),
              "reason": reason, "rival": rival, "rival_odds_ratio": round(math.exp(rival_coef), 2) if rival else None,
              "cluster_blame_share": round(share, 3), "users": users,
              "images": int(max(r["images"] for r in rows)) if total else 0,
              "failure_types": top_types, "failures": f.evidence.get("failures"),
              "jobs": f.evidence.get("jobs"), "rate": f.evidence.get("rate"),
              "baseline": f.evidence.get("baseline"), "q": f.evidence.get("q")}
        f.evidence["blame"], f.evidence["attributed_to"] = blame, target
        types_txt = ", ".join(f"{k} {v}" for k, v in top_types.items()) or "no typed failures"
        if target != f"{dim}:{ent}":
            tdim, tname = target.split(":", 1)
            summary = (f"{dim} {ent}'s failures are attributed to {tdim} {tname} ({reason}: "
                       f"odds ratio {math.exp(rival_coef):.1f} vs {math.exp(own):.1f} for the "
                       f"{dim}; {share:.0%} cluster-blame types).")
            rec = (f"Fix {tdim} {tname} rather than {dim} {ent}: {f.evidence['failures']:g} of "
                   f"{f.evidence['jobs']} jobs failed there ({types_txt}), {users} users; "
                   f"the {dim} itself adds little once {tname} is accounted for.")
            if f.kind == "hotspot":
                f.recommendation = rec
                f.severity = "low" if f.severity != "critical" else "medium"
        elif blame == "cluster":
            summary = (f"{dim} {ent} itself looks bad: failures span {users} users, "
                       f"{share:.0%} are cluster-blame types ({types_txt}).")
            rec = f.recommendation
        else:
            summary = (f"{dim} {ent}'s failures are the jobs' own ({types_txt}; "
                       f"{share:.0%} cluster-blame types, {users} users).")
            rec = (f"Help the owners of {dim} {ent}'s jobs fix them ({types_txt}): "
                   f"{f.evidence['failures']:g} of {f.evidence['jobs']} failed, "
                   f"rest of the selection {f.evidence['baseline']:.1%}.")
        return Finding(self.name, f.subject, "info", summary, ev, rec, kind="blame")


def colocated(mine: Rows, dim: str, min_share: float = 0.3) -> set[str]:
    """Candidates of other dimensions that carry at least `min_share` of the failures of the
    entity whose attribution-model rows are `mine`."""
    if not mine:
        return set()
    total = float(ksum(r["failures"] for r in mine))
    out: set[str] = set()
    if total <= 0:
        return out
    for d in ENTITY_DIMS:
        if d == dim:
            continue
        for k, g in group(mine, d).items():
            if ksum(r["failures"] for r in g) / total >= min_share:
                out.add(f"{d}:{k}")
    return out


NONE = "\x00none"  # stands for NULL in group keys (sorts before every name)


def candidate_groups(store: Store, cands: dict[str, list[str]], window: Window,
                     scope: Sequence[str] | None, filters: dict[str, Any]) -> Rows:
    """The attribution model's sufficient statistics: jobs and failures by the candidate node /
    image / user / project / queue each job touched (None for none). Built from the window's
    (project, user, image, queue) combinations, already aggregated for hotspots, and the
    candidate nodes' own jobs (read through the node index), so no extra window scan."""
    keys = ("project", "user", "image", "queue")

    def keyed(r: dict[str, Any], node: Any) -> dict[str, Any]:
        out = {k: NONE if missing(r.get(k)) else r[k] for k in keys}
        f = r.get("failures")
        return {**out, "node": node, "jobs": r["jobs"], "failures": 0 if missing(f) else f}

    combos = [keyed(r, NONE) for r in store.entity_combos(window, scope, filters)]
    if not combos:
        return []
    on_nodes = [keyed(r, r.get("node"))
                for r in store.node_combos(cands.get("node") or [], window, scope, filters)]
    if on_nodes:  # the candidate nodes' jobs move from their combination to their node's row
        sub = {k: (ksum(r["jobs"] for r in g), ksum(r["failures"] for r in g))
               for k, g in group(on_nodes, lambda r: tuple(r[c] for c in keys)).items()}
        for r in combos:
            j, f = sub.get(tuple(r[c] for c in keys), (0, 0))
            r["jobs"], r["failures"] = r["jobs"] - j, r["failures"] - f
        combos += on_nodes
    for d in ENTITY_DIMS:
        allowed = set(cands.get(d) or [])
        for r in combos:
            if r[d] not in allowed:
                r[d] = NONE
    out = []
    for k, g in group(combos, lambda r: tuple(r[d] for d in ENTITY_DIMS)).items():
        jobs = ksum(r["jobs"] for r in g)
        if jobs > 0:
            out.append({**{d: None if v == NONE else v for d, v in zip(ENTITY_DIMS, k)},
                        "jobs": jobs, "failures": ksum(r["failures"] for r in g)})
    return out


def explanations(flagged: Sequence[Finding]) -> dict[str, str]:
    """subject -> the subject its excess failures are explained by (the hotspots' drill-down:
    "project A's excess is explained by user B")."""
    out = {}
    for f in flagged:
        by, who = f.evidence.get("explained_by"), f.evidence.get("explainer")
        if f.kind == "explained" and by and who is not None:
            out[f.subject] = f"{by}:{who}"
    return out


def _end_of(subject: str, chain: dict[str, str]) -> list[str]:
    """The drill-down path from `subject` to its end (A -> B -> C), without cycles."""
    path = [subject]
    while path[-1] in chain and chain[path[-1]] not in path:
        path.append(chain[path[-1]])
    return path


def one_conclusion(f: Finding, v: Finding, chain: dict[str, str]) -> Finding:
    """One conclusion per subject. The drill-down (which subgroup the failures come from, in
    counts) outranks the attribution model (a regression over overlapping groups): for an
    explained subject the conclusion is the end of its drill-down path, and when the model
    points elsewhere, or back up the path (a user "attributed to" the project it is the
    explanation of), the blame finding says so and why, instead of a second recommendation."""
    path = _end_of(f.subject, chain)
    target = v.evidence.get("attributed_to")
    ups = {s for s, t in chain.items() if t == f.subject}  # subjects this one explains
    if len(path) == 1 and target not in ups:
        return v
    end = path[-1]
    dim, ent = f.subject.split(":", 1)
    edim, eent = end.split(":", 1)
    model = (f"the attribution model points at {target.replace(':', ' ', 1)} "
             f"(odds ratio {v.evidence.get('rival_odds_ratio') or v.evidence.get('odds_ratio')})"
             if target and target != f.subject else
             f"the attribution model, over overlapping groups, keeps it on {dim} {ent} itself")
    steps = " -> ".join(p.replace(":", " ", 1) for p in path)
    if end == f.subject:  # explains others, but the model sends it back up: the path wins
        summary = (f"{dim} {ent} is where the failures of "
                   f"{', '.join(sorted(u.replace(':', ' ', 1) for u in ups))} come from; "
                   f"{model}, but the two overlap (the same jobs), and the counts of the "
                   f"drill-down decide: look at {dim} {ent}.")
        rec = f"Look at {dim} {ent}: its failures account for the excess of the groups it belongs to."
        v.evidence.update(attributed_to=f.subject, conflict=target, path=[f.subject])
    else:
        but = "" if target == end else ", but the drill-down's counts decide"
        summary = (f"{dim} {ent}'s failures come from {edim} {eent} ({steps}); {model}{but}: "
                   f"one conclusion, look at {edim} {eent}.")
        rec = f"Do not act on {dim} {ent}; look at {edim} {eent} ({steps})."
        v.evidence.update(attributed_to=end, conflict=None if target == end else target, path=path)
    f.evidence["attributed_to"] = v.evidence["attributed_to"]
    f.recommendation = rec
    return Finding(v.analyzer, v.subject, v.severity, summary, v.evidence, rec, kind=v.kind)
