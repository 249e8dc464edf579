"""Analyzers: one module per analyzer, `ANALYZERS` the explicit registry, then one ranking step.

Each analyzer runs on its own: `cls().run(store, window, scope, filters)`. An analyzer that
builds on another's findings declares it (`needs = ("hotspots",)`: blame and temporal refine
the hotspots); `run_all` runs what is needed first and hands those findings over as `inputs`,
and an analyzer run alone computes them itself. Ranking (analyzers/ranking.py) is not an
analyzer: it orders everything found, after the analyzers, by impact and share of failures.

`build(options)` makes the instances from the `analyzers:` section of the settings
(one mapping of constructor arguments per analyzer, plus `severity:` for the ranking weights);
`run_all` runs them so that one analyzer's error is reported beside the others' findings
instead of sinking the report.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jobmedic.analyzers.base import Analyzer, Finding
from jobmedic.analyzers.blame import Blame
from jobmedic.analyzers.hotspots import Hotspots
from jobmedic.analyzers.patterns import Patterns
from jobmedic.analyzers.ranking import Ranking
from jobmedic.analyzers.temporal import Temporal
from jobmedic.core.timeutil import Window

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

log = logging.getLogger("jobmedic.analyzers")
#: The analyzers, in the order their findings are listed (before ranking).
ANALYZERS: list[type] = [Hotspots, Blame, Patterns, Temporal]


class AnalyzerConfigError(ValueError):
    """An `analyzers:` option that no analyzer accepts, or an unresolvable `needs`."""


def _make(cls: type, opts: Mapping[str, Any] | None) -> Any:
    opts = dict(opts or {})
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(opts) - accepted)
    if unknown:
        raise AnalyzerConfigError(
            f"analyzers.{cls.name}: unknown option(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(sorted(accepted))}")
    return cls(**opts)


def build(options: dict[str, dict[str, Any]] | None = None) -> list[Analyzer]:
    """Instances of every registered analyzer with their configured thresholds (the ranking
    section is checked too, so a typo there is refused as early)."""
    options = options or {}
    out = [_make(cls, options.get(cls.name)) for cls in ANALYZERS]
    ranking(options)
    return out


def ranking(options: dict[str, dict[str, Any]] | None = None) -> Ranking:
    """The ranking step with its configured weights (`analyzers.severity`)."""
    return _make(Ranking, (options or {}).get(Ranking.name))


def _ordered(analyzers: Sequence[Analyzer]) -> list[Analyzer]:
    """The analyzers with each one after those it needs (stable otherwise)."""
    by_name = {a.name: a for a in analyzers}
    out: list[Analyzer] = []
    state: dict[str, str] = {}

    def visit(a: Analyzer) -> None:
        if state.get(a.name) == "done":
            return
        if state.get(a.name) == "visiting":
            raise AnalyzerConfigError(f"analyzer {a.name!r} needs itself through {a.needs}")
        state[a.name] = "visiting"
        for n in getattr(a, "needs", ()):
            if n in by_name:
                visit(by_name[n])
        state[a.name] = "done"
        out.append(a)

    for a in analyzers:
        visit(a)
    return out


def collect(analyzers: Sequence[Analyzer], store: Store, window: Window,
            scope: Sequence[str] | None, filters: dict[str, Any] | None = None
            ) -> tuple[list[Finding], list[dict[str, str]]]:
    """Every analyzer's findings (in the order of `analyzers`, unranked) and the errors.

    An analyzer's needs are run first and their findings passed as its `inputs`; a need that
    failed is passed as no findings (the error is reported once, not recomputed)."""
    results: dict[str, list[Finding]] = {}
    errors: list[dict[str, str]] = []
    for a in _ordered(analyzers):
        inputs = {n: results[n] for n in getattr(a, "needs", ()) if n in results}
        try:
            results[a.name] = list(a.run(store, window, scope, filters, inputs=inputs))
        except Exception as exc:
            log.exception("analyzer %s failed", a.name)
            errors.append({"analyzer": a.name, "error": f"{type(exc).__name__}: {exc}"})
            results[a.name] = []
    return [f for a in analyzers for f in results[a.name]], errors


def run_all(analyzers: Sequence[Analyzer], store: Store, window: Window,
            scope: Sequence[str] | None, filters: dict[str, Any] | None = None,
            rank_with: Ranking | None = None) -> tuple[list[Finding], list[dict[str, str]]]:
    """Run the analyzers (`collect`), then rank what they found; returns the ranked findings
    and any analyzer errors (a failed ranking leaves the findings in analyzer order)."""
    findings, errors = collect(analyzers, store, window, scope, filters)
    ranker = rank_with or Ranking()
    try:
        findings = ranker.rank(findings, float(store.window_failures(window, scope, filters)))
    except Exception as exc:
        log.exception("ranking failed")
        errors.append({"analyzer": ranker.name, "error": f"{type(exc).__name__}: {exc}"})
    return findings, errors


__all__ = ["ANALYZERS", "AnalyzerConfigError", "Finding", "Ranking", "Window", "build",
           "collect", "ranking", "run_all"]
