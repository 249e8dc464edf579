"""A candidate alert: what a rule (live/rules.py, live/memkill.py) says should be open now."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Candidate:
    rule: str
    subject: str
    severity: str
    text: str
    job_ids: list[str] = field(default_factory=list)
    failure_type: str | None = None
    evidence: str | None = None
    fix: str | None = None
    project: str | None = None
    cluster: str | None = None

    @property
    def dedup_key(self) -> str:
        return f"{self.rule}:{self.cluster or ''}:{self.subject}"
