"""Settings: configs/jobmedic.yaml, then a user config file, then JOBMEDIC_* environment
variables, then CLI flags (highest). Only the composition roots (cli, server, tui) read them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from platformdirs import user_data_dir
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def config_path(name: str) -> Path:
    """Path of a data file in configs/ (taxonomy.yaml, remediations.yaml, jobmedic.yaml)."""
    return CONFIG_DIR / name


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
    models: ModelSettings = ModelSettings()
    agent: AgentSettings = AgentSettings()
    server: ServerSettings = ServerSettings()

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
    def models_dir(self) -> Path:
        return Path(self.models.dir).expanduser() if self.models.dir else self.data_dir / "models"

    def analyzer_options(self, name: str) -> dict[str, Any]:
        return dict(self.analyzers.get(name) or {})


class _YamlSource(PydanticBaseSettingsSource):
    """configs/jobmedic.yaml deep-merged with the file named by JOBMEDIC_CONFIG, if any."""

    def get_field_value(self, field, field_name):  # pragma: no cover - unused by __call__
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data = _read_yaml(config_path("jobmedic.yaml"))
        user = os.environ.get("JOBMEDIC_CONFIG")
        if user:
            data = _merge(data, _read_yaml(Path(user).expanduser()))
        return data


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_settings(config: str | None = None, **overrides: Any) -> Settings:
    """Settings from all sources; `config` names an extra YAML file, overrides are CLI flags."""
    if config:
        os.environ["JOBMEDIC_CONFIG"] = config
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
