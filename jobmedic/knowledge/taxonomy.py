"""The failure taxonomy: stable failure-type codes, their usual blame, and the classifier.

Rules live in jobmedic/configs/taxonomy.yaml (data, not code). Classification uses, in order, the
scheduler's state or Kubernetes reason, error-text patterns, the exit signal, the exit code,
and finally app_error for a non-zero exit or unknown. The result keeps the evidence that
decided it (the exact line for a text rule) so answers can quote it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from jobmedic.core.parsedform import yaml_load
from jobmedic.knowledge.errors import UnknownFailureType

BLAMES = ("job", "cluster", "unclear")
#: Codes that are not failures when computing failure rates.
NOT_FAILURES = frozenset({"cancelled"})
#: Normalised job states that count as failures in rates.
FAILED_STATES = frozenset({"failed", "timeout", "oom", "node_fail", "preempted"})
ENDED_STATES = FAILED_STATES | {"completed", "cancelled"}



@dataclass(frozen=True)
class CodeInfo:
    code: str
    blame: str
    description: str


@dataclass(frozen=True)
class Classification:
    """The outcome of classifying one failure."""

    failure_type: str
    blame: str
    rule: str  # which rule decided: "state:OUT_OF_MEMORY", "text:oom", "signal:11", ...
    evidence: str | None = None  # the line or value that decided it


@dataclass(eq=False)
class Taxonomy:
    """The codes and rules. The text rules are kept as regex sources and compiled on first use
    (`patterns`, `readout`): a process that never classifies text (stats, analyze, remediate)
    does not pay for compiling them at start (issue 16 item 6)."""

    codes: dict[str, CodeInfo]
    states: dict[str, str]
    pattern_sources: list[tuple[str, str]]  # (code, regex), in order
    signals: dict[int, str]
    exit_codes: dict[int, str]
    job_states: dict[str, str]
    #: Rules for reading a pasted text line by line: (code, strength 1-3, regex), in order.
    readout_sources: list[tuple[str, int, str]] = field(default_factory=list, repr=False)

    @cached_property
    def patterns(self) -> list[tuple[str, re.Pattern[str]]]:
        return [(code, re.compile(rx, re.IGNORECASE)) for code, rx in self.pattern_sources]

    @cached_property
    def readout(self) -> list[tuple[str, int, re.Pattern[str]]]:
        return [(code, strength, re.compile(rx, re.IGNORECASE | re.MULTILINE))
                for code, strength, rx in self.readout_sources]

    @cached_property
    def _combined(self) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{rx.pattern})" for _, rx in self.patterns),
                          re.IGNORECASE)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Taxonomy:
        codes = {
            c: CodeInfo(c, v["blame"], v.get("description", ""))
            for c, v in raw["codes"].items()
        }
        for c, info in codes.items():
            if info.blame not in BLAMES:
                raise ValueError(f"taxonomy code {c!r}: blame {info.blame!r} not in {BLAMES}")

        def check(code: str, where: str) -> str:
            if code not in codes:
                raise ValueError(f"taxonomy {where}: unknown code {code!r}")
            return code

        states = {k.upper(): check(v, f"state {k}") for k, v in raw.get("states", {}).items()}
        patterns = [(check(p["code"], "pattern"), str(p["regex"]))
                    for p in raw.get("patterns", [])]
        signals = {int(k): check(v, f"signal {k}") for k, v in raw.get("signals", {}).items()}
        exits = {int(k): check(v, f"exit code {k}") for k, v in raw.get("exit_codes", {}).items()}
        job_states = {k.upper(): v for k, v in raw.get("job_states", {}).items()}
        readout = [(check(r["code"], "readout rule"), int(r.get("strength", 3)), str(r["regex"]))
                   for r in raw.get("readout", [])]
        return cls(codes, states, patterns, signals, exits, job_states, readout)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Taxonomy:
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(yaml_load(fh.read()))

    # -- lookups -----------------------------------------------------------------------------
    def blame_of(self, code: str) -> str:
        return self.codes[code].blame if code in self.codes else "unclear"

    def describe(self, code: str) -> str:
        return self.codes[code].description if code in self.codes else ""

    def check_code(self, code: str) -> str:
        """Return `code` if it is a taxonomy code, else raise naming the closest ones."""
        if code in self.codes:
            return code
        from difflib import get_close_matches

        raise UnknownFailureType(code, sorted(self.codes), get_close_matches(code, self.codes, 3))

    def normalise_state(self, raw_state: str | None) -> str:
        """Map a raw scheduler state (``CANCELLED by 1234``, ``OUT_OF_MEMORY``) to jobs.state."""
        if not raw_state:
            return "unknown"
        head = raw_state.split()[0].upper().rstrip("+")
        return self.job_states.get(head, "unknown")

    # -- classification ----------------------------------------------------------------------
    def classify(
        self,
        state: str | None = None,
        exit_code: int | None = None,
        signal: int | None = None,
        text: str | None = None,
    ) -> Classification:
        """Classify one failure from its state or reason, exit code, signal and error text."""
        if text:
            hit = self._classify_text(text)
        else:
            hit = None
        if state:
            key = state.split()[0].upper().rstrip("+")
            code = self.states.get(key)
            if code is not None:
                # A generic state (CANCELLED) must not hide a specific text (OOM killed it).
                if hit is not None and code in ("cancelled",) and hit.failure_type != "cancelled":
                    return hit
                return Classification(code, self.blame_of(code), f"state:{key}", state)
        if hit is not None:
            return hit
        return _classify_codes(self, exit_code, signal)

    def _classify_text(self, text: str) -> Classification | None:
        text = text[:200_000]
        if not self._combined.search(text):
            return None
        for code, rx in self.patterns:
            m = rx.search(text)
            if m:
                return Classification(code, self.blame_of(code), f"text:{code}", _line_of(text, m))
        return None


def _line_of(text: str, m: re.Match[str]) -> str:
    """The full line that holds a regex match, stripped and capped for display."""
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    line = text[start : end if end != -1 else len(text)].strip()
    return line[:400]


@lru_cache(maxsize=4096)
def _classify_codes(tax: Taxonomy, exit_code: int | None, signal: int | None) -> Classification:
    if signal:
        code = tax.signals.get(int(signal))
        if code:
            return Classification(code, tax.blame_of(code), f"signal:{signal}", f"signal {signal}")
    if exit_code is not None:
        code = tax.exit_codes.get(int(exit_code))
        if code:
            return Classification(code, tax.blame_of(code), f"exit:{exit_code}", f"exit {exit_code}")
        if int(exit_code) != 0:
            return Classification("app_error", tax.blame_of("app_error"), f"exit:{exit_code}",
                                  f"exit {exit_code}")
    return Classification("unknown", tax.blame_of("unknown"), "none", None)
