"""Settings, merged from (lowest to highest): the defaults shipped inside the package
(jobmedic/configs/jobmedic.yaml), the user's file `$XDG_CONFIG_HOME/jobmedic/jobmedic.yaml`
(default ~/.config), the file named by `--config FILE` (or JOBMEDIC_CONFIG), JOBMEDIC_*
environment variables, then command-line flags. Only the set-up layer (jobmedic.app) and the
surfaces read them; nothing here writes into os.environ.

A configuration file that was asked for and does not exist, or that is not a YAML mapping, or
whose values do not validate, is a `ConfigError` (fail closed: a mistyped `--config` must never
start a server with no tokens).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from platformdirs import user_data_dir
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from jobmedic.knowledge.errors import JobmedicError

#: The default configuration files shipped as package data.
CONFIG_PACKAGE = "jobmedic"
CONFIG_FOLDER = "configs"


class ConfigError(JobmedicError):
    """A configuration file that cannot be used (missing, not YAML, invalid values)."""

    kind = "config_error"
    http_status = 500
    user_fault = True


def config_resource(name: str) -> Any:
    """The packaged default file `name` (taxonomy.yaml, remediations.yaml, jobmedic.yaml) as an
    importlib.resources Traversable (read it with `.read_text()` or `.open()`)."""
    return resources.files(CONFIG_PACKAGE).joinpath(CONFIG_FOLDER, name)


def config_text(name: str) -> str:
    """The text of the packaged default file `name`."""
    return config_resource(name).read_text(encoding="utf-8")


def config_path(name: str) -> Path:
    """A filesystem path of the packaged default file `name` (the package is installed as
    plain files, as pip does; readers that can take text should prefer `config_text`)."""
    return Path(str(config_resource(name)))


def user_config_file() -> Path:
    """`$XDG_CONFIG_HOME/jobmedic/jobmedic.yaml` (XDG_CONFIG_HOME defaults to ~/.config)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "jobmedic" / "jobmedic.yaml"


class IngestSettings(BaseModel):
    batch_size: int = Field(20_000, ge=100, le=1_000_000)
    resubmit_window_h: float = Field(72, gt=0, le=24 * 365)


class RiskLevels(BaseModel):
    moderate: float = 0.3
    high: float = 0.6
    critical: float = 0.8


class ModelSettings(BaseModel):
    dir: str = ""
    holdout_fraction: float = Field(0.2, gt=0, lt=1)


class AgentSettings(BaseModel):
    model: str = "router"
    base_url: str | None = None
    timeout_s: float = 30


class TokenSpec(BaseModel):
    sha256: str
    projects: list[str] | None = None
    name: str | None = None


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8765
    max_body_bytes: int = 1_048_576
    tokens: list[TokenSpec] = []


class LiveSettings(BaseModel):
    """`jobmedic watch`: polling, job output, sinks and alert rules (docs/live.md)."""

    interval_s: float = Field(60, gt=0)
    overlap_s: int = Field(300, ge=0)
    read_output: bool = True
    kube_logs_command: str | None = None  # e.g. "kubectl logs --previous -n {namespace} {pod}"
    sacct: bool = True  # poll sacct (off on a Kubernetes-only site)
    kubectl_command: str | None = None  # e.g. "kubectl get pods -A -o json": poll it too
    runai_url: str | None = None  # a Run:AI-style endpoint answering failure records (JSON)
    runai_token: str | None = None  # sent as a bearer token to runai_url
    sinks: list[str] = []
    alerts: dict[str, Any] = {}  # rule settings over jobmedic.live.rules.DEFAULTS
    # telemetry retention run by watch: enabled, every_s, raw_keep_s, step_s, keep_s
    # (jobmedic.live.watch.RETENTION_DEFAULTS)
    retention: dict[str, Any] = {}
    smtp: dict[str, Any] = {}  # host, port, user, password, starttls, sender


#: The explicit configuration file of the load in progress (set by load_settings only while it
#: constructs Settings; a context variable, so concurrent loads never see each other's file).
_EXPLICIT: ContextVar[Path | None] = ContextVar("jobmedic_config_file", default=None)


class Settings(BaseSettings):
    """All jobmedic settings, with their sources merged in priority order."""

    model_config = SettingsConfigDict(env_prefix="JOBMEDIC_", env_nested_delimiter="__",
                                      extra="ignore")

    db: str = ""
    cluster: str = "default"
    allowed_projects: list[str] | None = None
    as_of: str | None = None
    ingest: IngestSettings = IngestSettings()
    analyzers: dict[str, dict[str, Any]] = {}
    risk_levels: RiskLevels = RiskLevels()
    retry_budget: dict[str, float] = {"*": 0.02}  # share of killed runs per cluster ("*": default)
    models: ModelSettings = ModelSettings()
    agent: AgentSettings = AgentSettings()
    server: ServerSettings = ServerSettings()
    live: LiveSettings = LiveSettings()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        return (init_settings, env_settings, _YamlSource(settings_cls))

    # -- derived paths -----------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return Path(user_data_dir("jobmedic", appauthor=False))

    @property
    def db_path(self) -> Path:
        return Path(self.db).expanduser() if self.db else self.data_dir / "jobmedic.db"

    @property
    def in_memory(self) -> bool:
        return self.db == ":memory:"

    @property
    def models_dir(self) -> Path | None:
        """The store's own model folder: `models.dir` when set, else `<store>.models/` beside
        the store file (never a per-user folder that other stores would share); None for an
        in-memory store, which has nowhere to keep models."""
        if self.models.dir:
            return Path(self.models.dir).expanduser()
        if self.in_memory:
            return None
        db = self.db_path
        return db.with_name(db.name + ".models")


class _YamlSource(PydanticBaseSettingsSource):
    """The packaged defaults, deep-merged with the user's XDG file and the explicit file."""

    def get_field_value(self, field, field_name):  # pragma: no cover - unused by __call__
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data = _parse(config_text("jobmedic.yaml"), "the packaged jobmedic.yaml")
        user = user_config_file()
        if user.is_file():
            data = _merge(data, read_config_file(user))
        explicit = _EXPLICIT.get()
        if explicit is None and os.environ.get("JOBMEDIC_CONFIG"):
            explicit = Path(os.environ["JOBMEDIC_CONFIG"]).expanduser()
        if explicit is not None:
            data = _merge(data, read_config_file(explicit))
        return data


def read_config_file(path: Path) -> dict[str, Any]:
    """A YAML configuration file as a mapping; ConfigError when it is missing or unusable."""
    if not path.exists():
        raise ConfigError(f"configuration file {path} does not exist",
                          hint="check the --config path (or JOBMEDIC_CONFIG)")
    if not path.is_file():
        raise ConfigError(f"configuration file {path} is not a file",
                          hint="--config names a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc}",
                          hint="check its permissions and that it is UTF-8 text") from None
    return _parse(text, str(path))


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"configuration file {where} is not valid YAML{at}",
                          hint="fix the YAML syntax; docs/configuration.md shows the keys") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {where} is not a mapping of settings "
                          f"(it holds a {type(data).__name__})",
                          hint="write `key: value` lines; docs/configuration.md shows the keys")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@contextmanager
def _explicit_file(config: str | Path | None) -> Iterator[None]:
    token = _EXPLICIT.set(Path(config).expanduser() if config else None)
    try:
        yield
    finally:
        _EXPLICIT.reset(token)


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from all sources; `config` names an extra YAML file, overrides are CLI flags.
    Raises ConfigError (one line, with a hint) for any file or value that cannot be used."""
    with _explicit_file(config):
        try:
            return Settings(**{k: v for k, v in overrides.items() if v is not None})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "?"
            raise ConfigError(f"invalid setting {where}: {first.get('msg', 'invalid value')}",
                              hint="check the configuration file, JOBMEDIC_* variables and "
                                   "flags; docs/configuration.md lists the keys") from None
