"""The remediation rule base: curated solutions per failure type, parsed and validated from the
dict of jobmedic/configs/remediations.yaml (jobmedic.app reads the file; this module never does).

A `Solution` has a stable id (``oom.raise_memory``), a title, the concrete change (kind +
parameters), its Slurm and Kubernetes forms, whether it is GPU-only, a why, the resubmission
changes it is learned from, and keywords for matching free text. `RuleBase.match` turns a
person's words ("doubled the memory") into a solution id; see docs/remediation.md.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PLATFORMS = ("slurm", "kubernetes")
CHANGES = ("memory_raised", "time_raised", "node_excluded", "image_changed", "gpus_lowered",
           "nodes_lowered", "cpus_raised", "queue_changed", "retried")
_ID = re.compile(r"^[a-z_]+\.[a-z0-9_]+$")
_STOP = frozenset(["a", "an", "the", "to", "of", "and", "or", "for", "with", "by", "it", "its", "in", "on", "at", "from", "was", "were", "is", "be", "job", "jobs", "we", "i", "my", "our", "this", "that", "just"])


class RuleError(ValueError):
    """The rule base YAML is malformed; the message names the solution and the field."""


@dataclass(frozen=True)
class Solution:
    id: str
    failure_type: str
    title: str
    change: dict[str, Any]
    variants: dict[str, str]  # platform -> concrete change text with {placeholders}
    why: str
    gpu_only: bool = False
    learn_from: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    memory: str | None = None  # "gpu" / "host": which memory an OOM fix acts on (fixrank)

    @property
    def kind(self) -> str:
        return str(self.change.get("kind", ""))

    @property
    def applies_to(self) -> str:
        return "both" if len(self.variants) == 2 else next(iter(self.variants), "both")

    def applies(self, platform: str | None = None, gpu: bool | None = None) -> bool:
        if platform and platform not in self.variants:
            return False
        return not (self.gpu_only and gpu is False)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "failure_type": self.failure_type, "title": self.title,
                "change": dict(self.change), "slurm": self.variants.get("slurm"),
                "kubernetes": self.variants.get("kubernetes"), "applies_to": self.applies_to,
                "gpu_only": self.gpu_only, "why": self.why, "learn_from": list(self.learn_from),
                "memory": self.memory}


@dataclass
class RuleBase:
    solutions: dict[str, Solution]
    by_type: dict[str, list[Solution]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], codes: Iterable[str] | None = None) -> RuleBase:
        """Validate the YAML dict; with `codes`, every taxonomy code must have solutions and
        no unknown code may appear."""
        if not isinstance(raw, dict) or not isinstance(raw.get("solutions"), dict):
            raise RuleError("remediations: expected a mapping with a 'solutions' mapping")
        sols: dict[str, Solution] = {}
        by_type: dict[str, list[Solution]] = {}
        for code, items in raw["solutions"].items():
            if not isinstance(items, list) or not items:
                raise RuleError(f"remediations: {code}: expected a non-empty list of solutions")
            for item in items:
                s = _solution(code, item)
                if s.id in sols:
                    raise RuleError(f"remediations: duplicate solution id {s.id!r}")
                sols[s.id] = s
                by_type.setdefault(code, []).append(s)
        if codes is not None:
            codes = set(codes)
            missing = sorted(codes - set(by_type))
            extra = sorted(set(by_type) - codes)
            if missing:
                raise RuleError(f"remediations: no solutions for taxonomy codes {missing}")
            if extra:
                raise RuleError(f"remediations: codes not in the taxonomy: {extra}")
        return cls(sols, by_type)

    def for_type(self, code: str, platform: str | None = None,
                 gpu: bool | None = None) -> list[Solution]:
        return [s for s in self.by_type.get(code, []) if s.applies(platform, gpu)]

    def learned_from(self, code: str, change: str) -> Solution | None:
        """The rule solution a resubmission change counts for (None: not a curated fix)."""
        for s in self.by_type.get(code, []):
            if change in s.learn_from:
                return s
        return None

    def get(self, solution_id: str) -> Solution | None:
        return self.solutions.get(solution_id)

    def match(self, text: str, code: str) -> tuple[Solution | None, str]:
        """Match a free-text fix to a solution of `code`: (solution or None, how it matched).

        In order: the id itself or its short name (``raise_memory``); the title; a keyword
        whose (stemmed, stop-word-free) tokens all occur in the text, the longest winning;
        then token overlap with title and keywords (at least 2 shared tokens covering >= 60 %
        of the text's tokens). No match returns (None, "none").
        """
        t = text.strip()
        cands = self.by_type.get(code, [])
        for s in cands:
            if t.lower() in (s.id, s.id.split(".", 1)[1]):
                return s, "id"
        norm = normalise(t)
        for s in cands:
            if normalise(s.title) == norm:
                return s, "title"
        best: tuple[int, Solution | None] = (0, None)
        toks = set(tokens(t))
        for s in cands:
            for kw in s.keywords:
                k = set(tokens(kw))
                if k and k <= toks and len(k) > best[0]:
                    best = (len(k), s)
        if best[1] is not None:
            return best[1], "keyword"
        scored = []
        for s in cands:
            ref = set(tokens(s.title + " " + " ".join(s.keywords)))
            inter = len(toks & ref)
            if inter >= 2:
                scored.append((inter / len(toks), s))
        scored.sort(key=lambda x: -x[0])
        if scored and scored[0][0] >= 0.6:
            return scored[0][1], "tokens"
        return None, "none"


def normalise(text: str) -> str:
    """Lower-case, punctuation to spaces (keeping -- flags), collapsed whitespace."""
    t = re.sub(r"[^a-z0-9\-\.=/ ]+", " ", text.lower())
    return " ".join(t.split())


def _stem(w: str) -> str:
    for suf in ("ing", "ed", "es", "s"):
        if len(w) > len(suf) + 2 and w.endswith(suf):
            w = w[: -len(suf)]
            break
    return w[:-1] if len(w) > 3 and w.endswith("e") else w  # raise/raised, image/images


def tokens(text: str) -> list[str]:
    return [_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP]


def _solution(code: str, item: Any) -> Solution:
    if not isinstance(item, dict):
        raise RuleError(f"remediations: {code}: each solution must be a mapping")
    sid = item.get("id")
    where = f"remediations: {code}: solution {sid!r}"
    if not isinstance(sid, str) or not _ID.match(sid) or not sid.startswith(code + "."):
        raise RuleError(f"{where}: id must look like '{code}.some_name'")
    for key in ("title", "why"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise RuleError(f"{where}: '{key}' is required")
    change = item.get("change")
    if not isinstance(change, dict) or not change.get("kind"):
        raise RuleError(f"{where}: 'change' must be a mapping with a 'kind'")
    variants = {p: str(item[p]) for p in PLATFORMS if item.get(p)}
    if not variants:
        raise RuleError(f"{where}: give the change for 'slurm' and/or 'kubernetes'")
    learn = tuple(item.get("learn_from") or ())
    bad = [c for c in learn if c not in CHANGES]
    if bad:
        raise RuleError(f"{where}: learn_from {bad} not in {list(CHANGES)}")
    unknown = set(item) - {"id", "title", "change", "why", "gpu_only", "learn_from",
                           "keywords", "memory", *PLATFORMS}
    if unknown:
        raise RuleError(f"{where}: unknown fields {sorted(unknown)}")
    if item.get("memory") not in (None, "gpu", "host"):
        raise RuleError(f"{where}: memory must be 'gpu' or 'host', not {item['memory']!r}")
    return Solution(sid, code, item["title"].strip(), dict(change), variants,
                    item["why"].strip(), bool(item.get("gpu_only", False)), learn,
                    tuple(str(k) for k in item.get("keywords") or ()), item.get("memory"))
