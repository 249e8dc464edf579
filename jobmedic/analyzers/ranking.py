"""Ranking: the step after the analyzers. Each finding's impact (failed jobs, GPU-hours and
core-hours lost, users affected) orders the report so it leads with what matters, and its
severity level comes from the share of the window's failures it accounts for.

Not an analyzer: it adds no findings, it orders the analyzers' findings. Its weights are the
`analyzers.severity` section of the configuration (the section's name predates this module).
"""
from __future__ import annotations

from typing import Any

from jobmedic.analyzers.base import SEVERITIES, Finding

#: Kinds that say what to do about a problem (the others explain or describe).
ACTIONABLE = {"hotspot", "spike", "change_point", "pattern", "repeat", "new_type", "event_pattern"}
#: Kinds backed by a significance test; only these can be critical or high.
TESTED = {"hotspot", "spike", "change_point"}


class Ranking:
    name = "severity"  # its configuration section
    description = "Ranks findings by failed jobs, GPU-hours and core-hours lost, users affected."

    def __init__(self, gpu_hour_weight: float = 1.0, core_hour_weight: float = 1 / 32,
                 user_weight: float = 2.0, critical_share: float = 0.25, high_share: float = 0.10,
                 medium_share: float = 0.02, strong_q: float = 1e-6, strong_ratio: float = 3.0
                 ) -> None:
        self.strong_q, self.strong_ratio = strong_q, strong_ratio
        self.gpu_hour_weight, self.core_hour_weight = gpu_hour_weight, core_hour_weight
        self.user_weight = user_weight
        self.critical_share, self.high_share, self.medium_share = critical_share, high_share, medium_share

    def impact(self, ev: dict[str, Any]) -> float:
        failed = float(ev.get("failed_jobs", ev.get("failures", 0)) or 0)
        return round(failed + self.gpu_hour_weight * float(ev.get("gpu_h", 0) or 0)
                     + self.core_hour_weight * float(ev.get("core_h", 0) or 0)
                     + self.user_weight * float(ev.get("users", 0) or 0), 2)

    def level(self, f: Finding, total_failures: float) -> str:
        if f.kind not in ACTIONABLE or f.evidence.get("direction") == "fall":
            return f.severity if f.severity in ("low", "info") else "info"
        if f.kind == "hotspot" and f.evidence.get("attributed_to", f.subject) != f.subject:
            return "low"
        share = float(f.evidence.get("failures", 0) or 0) / max(total_failures, 1.0)
        if f.kind not in TESTED:  # descriptive findings never outrank tested ones
            return "medium" if share >= self.medium_share else "low"
        if share >= self.critical_share:
            return "critical"
        strong = (float(f.evidence.get("q", f.evidence.get("p", 1.0)) or 1.0) <= self.strong_q
                  and float(f.evidence.get("rate_ratio", 0) or 0) >= self.strong_ratio)
        if share >= self.high_share or strong:  # a small but overwhelming excess is high too
            return "high"
        return "medium" if share >= self.medium_share else "low"

    def rank(self, findings: list[Finding], total_failures: float) -> list[Finding]:
        """The findings ordered by severity, then impact; each gets its impact, its share of
        the window's `total_failures` and its severity level."""
        total = float(total_failures)
        for f in findings:
            f.impact = self.impact(f.evidence)
            f.evidence["share_of_failures"] = round(
                float(f.evidence.get("failures", 0) or 0) / max(total, 1.0), 4)
            f.severity = self.level(f, total)
        order = {s: i for i, s in enumerate(SEVERITIES)}
        return sorted(findings, key=lambda f: (order.get(f.severity, 9), -f.impact, f.subject))


def rank(findings: list[Finding], total_failures: float, **weights: Any) -> list[Finding]:
    """`Ranking(**weights).rank(findings, total_failures)`."""
    return Ranking(**weights).rank(findings, total_failures)
