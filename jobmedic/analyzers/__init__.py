"""Analyzers: one module per analyzer, `ANALYZERS` the explicit registry (run in this order:
hotspots first, blame and temporal read its findings, severity ranks everything last).

`build(options)` makes the instances from the `analyzers:` section of configs/jobmedic.yaml
(one mapping of constructor arguments per analyzer); `run_all` runs them so that one
analyzer's error is reported beside the others' findings instead of sinking the report.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

from jobmedic.analyzers.base import Analyzer, Finding
from jobmedic.core.timeutil import Window
from jobmedic.analyzers.blame import Blame
from jobmedic.analyzers.hotspots import Hotspots
from jobmedic.analyzers.patterns import Patterns
from jobmedic.analyzers.severity import Severity
from jobmedic.analyzers.temporal import Temporal

log = logging.getLogger("jobmedic.analyzers")
ANALYZERS: list[type] = [Hotspots, Blame, Patterns, Temporal, Severity]


class AnalyzerConfigError(ValueError):
    """An `analyzers:` option that no analyzer accepts."""


def build(options: dict[str, dict[str, Any]] | None = None) -> list[Analyzer]:
    """Instances of every registered analyzer with their configured thresholds."""
    options = options or {}
    out = []
    for cls in ANALYZERS:
        opts = dict(options.get(cls.name) or {})
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(opts) - accepted)
        if unknown:
            raise AnalyzerConfigError(
                f"analyzers.{cls.name}: unknown option(s) {', '.join(unknown)}; accepted: "
                f"{', '.join(sorted(accepted))}")
        out.append(cls(**opts))
    return out


def run_all(analyzers: Sequence[Analyzer], store: Any, window: Window,
            scope: Sequence[str] | None, filters: dict[str, Any] | None = None
            ) -> tuple[list[Finding], list[dict[str, str]]]:
    """Run the analyzers in order; returns the ranked findings and any analyzer errors."""
    findings: list[Finding] = []
    errors: list[dict[str, str]] = []
    for a in analyzers:
        try:
            out = a.run(store, window, scope, filters, prior=findings)
        except Exception as exc:
            log.exception("analyzer %s failed", a.name)
            errors.append({"analyzer": a.name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        findings = list(out) if getattr(a, "ranks", False) else findings + list(out)
    return findings, errors


__all__ = ["ANALYZERS", "AnalyzerConfigError", "Finding", "Window", "build", "run_all"]
