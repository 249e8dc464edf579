"""The analyzer contract: a `Window` of time, `Finding`s with their evidence, and the
`Analyzer` protocol every analyzer module implements (one class per module)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from jobmedic.core.timeutil import Window

SEVERITIES = ("critical", "high", "medium", "low", "info")


@dataclass
class Finding:
    """One thing an analyzer found, with the numbers behind it and one concrete action."""

    analyzer: str
    subject: str  # "node:gpu-03", "image:repo/app:v2", "cluster", "hour:14"
    severity: str
    summary: str  # one sentence
    evidence: dict[str, Any] = field(default_factory=dict)
    recommendation: str = ""
    kind: str = ""  # e.g. "hotspot", "pattern", "spike", "change_point", "blame"
    impact: float = 0.0  # filled by the severity analyzer; higher leads the report

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Analyzer(Protocol):
    name: str
    description: str

    def run(self, store: Any, window: Window, scope: Sequence[str] | None,
            filters: dict[str, Any] | None = None, prior: list[Finding] | None = None
            ) -> list[Finding]:
        """Findings for the window; `prior` holds the earlier analyzers' findings (blame and
        temporal refine hotspots; an analyzer with `ranks = True` returns them re-ranked)."""
        ...
