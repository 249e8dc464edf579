"""The CLI's composition root: Settings -> Store, Taxonomy, ToolContext. Only the roots
(cli, server, tui) read Settings; everything below receives plain objects."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import typer

from jobmedic.knowledge.errors import JobmedicError
from jobmedic.knowledge.rules import RuleBase
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.settings import Settings, config_path, load_settings
from jobmedic.tools.base import ToolContext
from jobmedic.core.timeutil import parse_time_arg


@dataclass
class AppState:
    """Global options, resolved lazily so `--help` never opens the store."""

    db: str | None = None
    config: str | None = None
    as_of: str | None = None
    scope: str | None = None
    cluster: str | None = None
    _store: Store | None = field(default=None, repr=False)

    @cached_property
    def settings(self) -> Settings:
        allowed = [p.strip() for p in self.scope.split(",") if p.strip()] if self.scope else None
        return load_settings(self.config, db=self.db, as_of=self.as_of,
                             allowed_projects=allowed, cluster=self.cluster)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings.db_path)
        return self._store

    @cached_property
    def taxonomy(self) -> Taxonomy:
        return Taxonomy.from_yaml(config_path("taxonomy.yaml"))

    def tool_context(self) -> ToolContext:
        s = self.settings
        now = parse_time_arg(s.as_of, "as_of") if s.as_of else None
        return build_tool_context(s, self.store, self.taxonomy, now)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def build_tool_context(s: Settings, store: Store, taxonomy: Taxonomy, now: int | None,
                       scope: list[str] | None | str = "settings") -> ToolContext:
    """A ToolContext from settings (shared by the CLI, the HTTP server and the chat UI)."""
    return ToolContext(store=store, taxonomy=taxonomy,
                       scope=s.allowed_projects if scope == "settings" else scope,  # type: ignore[arg-type]
                       now=now, options={k: dict(v or {}) for k, v in s.analyzers.items()},
                       rules=load_rules(taxonomy), models_dir=s.models_dir,
                       risk_levels=s.risk_levels.model_dump(),
                       resubmit_window_h=s.ingest.resubmit_window_h, default_cluster=s.cluster)


def load_rules(taxonomy: Taxonomy) -> RuleBase:
    """The remediation rule base, parsed and validated once per process."""
    global _RULES
    if _RULES is None or _RULES[0] is not taxonomy:
        _RULES = (taxonomy, RuleBase.from_dict(load_remediations(), taxonomy.codes))
    return _RULES[1]


_RULES: tuple[Taxonomy, RuleBase] | None = None


def load_remediations() -> dict[str, Any]:
    """configs/remediations.yaml, parsed once per process (the rule base of remediate & co)."""
    global _REMEDIATIONS
    if _REMEDIATIONS is None:
        import yaml

        with open(config_path("remediations.yaml"), encoding="utf-8") as fh:
            _REMEDIATIONS = yaml.safe_load(fh)
    return _REMEDIATIONS


_REMEDIATIONS: dict[str, Any] | None = None


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = AppState()
    return root.obj


def fail(exc: JobmedicError | str, code: int = 1, hint: str = "") -> None:
    """Print a one-line error (and hint) to stderr and exit with `code`."""
    from rich.console import Console
    from rich.text import Text

    err = Console(stderr=True)
    if isinstance(exc, JobmedicError):
        msg, hint = exc.message, exc.hint or hint
    else:
        msg = exc
    err.print(Text.assemble(("error: ", "bold red"), msg))
    if hint:
        err.print(Text("hint: " + hint, style="dim"))
    raise typer.Exit(code)
