"""The analyzer contract: `Finding`s with their evidence, and the `Analyzer` protocol every
analyzer module implements (one class per module). The time `Window` lives in jobmedic.core."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from jobmedic.core.timeutil import Window

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

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
    impact: float = 0.0  # filled by the ranking step (analyzers/ranking.py); higher leads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: What an analyzer receives as `inputs`: the findings of the analyzers it names in `needs`.
Inputs = Mapping[str, list[Finding]]


class Analyzer(Protocol):
    """One analyzer: thresholds are constructor arguments; `run` is callable on its own.

    `needs` names the analyzers whose findings it takes as input (blame and temporal take
    "hotspots"). `run_all` runs those first and passes their findings in `inputs`; called alone
    without them, the analyzer computes what it needs itself with default thresholds. An
    analyzer may annotate the evidence of the findings it was given (blame records whom a
    hotspot is attributed to, temporal its change points) but never drops or reorders them.
    """

    name: str
    description: str
    needs: tuple[str, ...]

    def run(self, store: Store, window: Window, scope: Sequence[str] | None,
            filters: dict[str, Any] | None = None, inputs: Inputs | None = None
            ) -> list[Finding]:
        """The findings for the window, inside the scope, under the entity filters."""
        ...
