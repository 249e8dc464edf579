"""The set-up layer under every surface (CLI, HTTP server, chat UI, demo).

`App` turns Settings into the plain objects the lower floors take: the store (opened lazily, so
`jobmedic --help` never touches it), the taxonomy, the remediation rule base, the caller's
scope, "now", the store's own model folder and the ToolContext. The surfaces call this module
and never each other. `after_ingest` is the explicit step that runs after a load.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from jobmedic.core import parsedform
from jobmedic.core.timeutil import parse_time_arg
from jobmedic.knowledge.errors import JobmedicError, StoreError
from jobmedic.knowledge.rules import RuleBase, RuleError
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.settings import ConfigError, Settings, load_settings, parsed_config
from jobmedic.tools.base import ToolContext

_CACHE: dict[str, Any] = {}


class StorePathError(StoreError):
    """An explicitly named store path that cannot be a store (missing directory, a folder)."""

    kind = "store_path"
    http_status = 500
    user_fault = True


def load_taxonomy() -> Taxonomy:
    """The packaged failure taxonomy, parsed once per process."""
    if "taxonomy" not in _CACHE:  # from its parsed form: no YAML parser at start (issue 16)
        _CACHE["taxonomy"] = Taxonomy.from_dict(parsed_config("taxonomy.yaml"))
    return _CACHE["taxonomy"]


def load_remediations() -> dict[str, Any]:
    """The packaged remediation rule base (remediations.yaml) as a dict, parsed once."""
    if "remediations" not in _CACHE:
        try:
            _CACHE["remediations"] = parsed_config("remediations.yaml")
        except Exception as exc:
            if not isinstance(exc, OSError) and not parsedform.is_yaml_error(exc):
                raise
            raise ConfigError(f"cannot load the rule base remediations.yaml: {exc}",
                              hint="reinstall jobmedic") from None
    return _CACHE["remediations"]


def load_rules(taxonomy: Taxonomy) -> RuleBase:
    """The remediation rule base, parsed and validated once per taxonomy."""
    cached = _CACHE.get("rules")
    if cached is None or cached[0] is not taxonomy:
        try:
            cached = (taxonomy, RuleBase.from_dict(load_remediations(), taxonomy.codes))
        except RuleError as exc:
            raise ConfigError(f"the rule base remediations.yaml is invalid: {exc}",
                              hint="fix the rule base file") from None
        _CACHE["rules"] = cached
    return cached[1]


def parse_scope(scope: str | list[str] | None) -> list[str] | None:
    """`--scope a,b` -> ["a", "b"]; None (or empty) means every project."""
    if scope is None:
        return None
    items = scope.split(",") if isinstance(scope, str) else list(scope)
    return [p.strip() for p in items if p and p.strip()] or None


def check_store_path(settings: Settings) -> None:
    """An explicitly named store (--db, JOBMEDIC_DB, `db:`) must live in an existing directory:
    a mistyped path is an error, never a new empty store. The default store in the user data
    directory may create its folder."""
    if not settings.db or settings.in_memory:
        return
    path = settings.db_path
    parent = path.parent
    if path.is_dir():
        raise StorePathError(f"{path} is a directory, not a store file",
                         hint=f"name a file, e.g. --db {path / 'jobmedic.db'}")
    if not parent.exists():
        raise StorePathError(f"directory {parent} does not exist; create it or choose another --db",
                         hint=f"mkdir -p {parent}")
    if not parent.is_dir():
        raise StorePathError(f"{parent} is not a directory; choose another --db")


class App:
    """Settings resolved into the objects every surface needs; the store opens on first use.
    A surface that already holds a store or a taxonomy (the demo, tests) may hand them in."""

    def __init__(self, settings: Settings, store: Store | None = None,
                 taxonomy: Taxonomy | None = None) -> None:
        self.settings = settings
        self._store = store
        self._owns_store = store is None
        if taxonomy is not None:
            self.__dict__["taxonomy"] = taxonomy  # fills the cached_property below

    @classmethod
    def open(cls, config: str | None = None, *, db: str | None = None, as_of: str | None = None,
             scope: str | list[str] | None = None, cluster: str | None = None,
             **overrides: Any) -> App:
        """Load the settings (packaged defaults < user file < --config < env < these flags)."""
        return cls(load_settings(config, db=db, as_of=as_of, allowed_projects=parse_scope(scope),
                                 cluster=cluster, **overrides))

    # -- what the lower floors take -----------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    @cached_property
    def taxonomy(self) -> Taxonomy:
        return load_taxonomy()

    @cached_property
    def rules(self) -> RuleBase:
        return load_rules(self.taxonomy)

    @property
    def scope(self) -> list[str] | None:
        return self.settings.allowed_projects

    @cached_property
    def now(self) -> int | None:
        """Epoch seconds of --as-of, or None for the real clock."""
        s = self.settings
        return parse_time_arg(s.as_of, "as_of") if s.as_of else None

    @property
    def models_dir(self) -> Path | None:
        return self.settings.models_dir

    def tool_context(self, store: Store | None = None, scope: Any = "settings",
                     now: int | None = None) -> ToolContext:
        """The ToolContext for `store` (default: this app's), `scope` (default: the
        settings' allowed projects) and `now` (default: --as-of or the clock)."""
        return build_tool_context(self.settings, store if store is not None else self.store,
                                  self.taxonomy, self.now if now is None else now, scope)

    def close(self) -> None:
        """Close the store this App opened (a store handed in stays its owner's)."""
        if self._store is not None and self._owns_store:
            self._store.close()
        self._store = None


def open_store(settings: Settings) -> Store:
    """The store the settings name, after checking its directory (see check_store_path)."""
    check_store_path(settings)
    try:
        return Store(":memory:" if settings.in_memory else settings.db_path)
    except JobmedicError as exc:
        if "locked" in exc.message:
            raise StoreError(exc.message, hint="another process (an ingest?) holds the store "
                                               "locked; wait for it to finish and retry") from None
        raise
    except Exception as exc:  # noqa: BLE001 - sqlite3 errors: not a database, read-only, ...
        raise StoreError(f"cannot open the store {settings.db_path}: {exc}",
                         hint="check the --db path, its permissions, and that no other "
                              "process holds it locked") from None


def build_tool_context(s: Settings, store: Store, taxonomy: Taxonomy, now: int | None,
                       scope: list[str] | None | str = "settings") -> ToolContext:
    """A ToolContext from settings (shared by the CLI, the HTTP server, the chat UI and the
    demo). `scope="settings"` means the settings' allowed projects; None means every project."""
    models_dir = None if getattr(store, "path", None) == ":memory:" and not s.models.dir \
        else s.models_dir
    return ToolContext(store=store, taxonomy=taxonomy,
                       scope=s.allowed_projects if scope == "settings" else scope,  # type: ignore[arg-type]
                       now=now, options={k: dict(v or {}) for k, v in s.analyzers.items()},
                       rules=load_rules(taxonomy), models_dir=models_dir,
                       risk_levels=s.risk_levels.model_dump(),
                       resubmit_window_h=s.ingest.resubmit_window_h, default_cluster=s.cluster,
                       retry_budgets=dict(s.retry_budget))


@dataclass
class AfterIngest:
    """What the after-load steps did (outcome inference; the knowledge graph updates itself
    incrementally on its next use, so it needs no step here)."""

    outcomes_written: int = 0
    pairs: int = 0
    seconds: float = 0.0
    gnn: dict | None = None  # the gnn serving state's refresh (models/gnn_refresh.py), if any
    beside_s: float = 0.0  # the reading and pairing done beside the load's end (InferenceAhead)

    def message(self) -> str | None:
        parts = []
        if self.outcomes_written:
            beside = (f"; read and paired in {self.beside_s:.1f}s beside the end of the load"
                      if self.beside_s else "")
            parts.append(f"learned {self.outcomes_written:,} fix attempts from {self.pairs:,} "
                         f"resubmissions ({self.seconds:.1f}s{beside})")
        if self.gnn and self.gnn.get("mode") in ("stale", "dropped"):
            parts.append(f"the gnn serving state was not refreshed ({self.gnn.get('reason')}): "
                         "predict uses XGBoost alone until `jobmedic train gnn`")
        return "; ".join(parts) or None


def after_ingest(app: App, store: Store | None = None, ahead: Any = None) -> AfterIngest:
    """The explicit steps after loading data: infer fix attempts from resubmissions of the
    jobs this load touched (incremental: outcomes.infer_new_outcomes; `jobmedic learn`
    re-runs it over the whole store), bring the gnn serving state forward to the new jobs
    (models/gnn_refresh.py, when one exists), then the per-entity summary. `ahead` is the
    inference's read half started beside the end of the load (`after_ingest_ahead`)."""
    from jobmedic.knowledge.outcomes import infer_new_outcomes
    from jobmedic.models.gnn_refresh import after_load

    st = store if store is not None else app.store
    s = infer_new_outcomes(st, app.rules, app.settings.ingest.resubmit_window_h, ahead=ahead)
    gnn = after_load(st)  # the gnn serving state, then the per-entity summary (issue 16)
    beside = ahead.result().seconds if ahead is not None and ahead.used else 0.0
    return AfterIngest(s.outcomes_written, s.pairs, s.seconds, gnn, beside)


def after_ingest_ahead(app: App, store: Store | None = None) -> Any:
    """The read half of after_ingest's inference (outcomes.InferenceAhead), for run_ingest's
    `on_loaded`: it reads and pairs the loaded jobs on a thread and connection of its own
    while the load ends (index rebuild), so a 1M-line load's first inference mostly overlaps
    it. Pass it to `after_ingest`; `cancel()` it when the load fails."""
    from jobmedic.knowledge.outcomes import InferenceAhead

    st = store if store is not None else app.store
    return InferenceAhead(st.path, app.rules, app.settings.ingest.resubmit_window_h)
