"""Settings, merged from (lowest to highest): the defaults shipped inside the package
(jobmedic/configs/jobmedic.yaml), the user's file `$XDG_CONFIG_HOME/jobmedic/jobmedic.yaml`
(default ~/.config), the file named by `--config FILE` (or JOBMEDIC_CONFIG), JOBMEDIC_*
environment variables, then command-line flags. Only the set-up layer (jobmedic.app) and the
surfaces read them; nothing here writes into os.environ.

The JOBMEDIC_* source is jobmedic's own (`env_values`) with pydantic-settings' semantics
for these fields (case-insensitive names, nested keys joined with `__`, JSON for lists,
mappings and models), so starting a command does not import pydantic-settings (issue 16).

A configuration file that was asked for and does not exist, or that is not a YAML mapping, or
whose values do not validate, is a `ConfigError` (fail closed: a mistyped `--config` must never
start a server with no tokens).
"""
from __future__ import annotations

import json
import os
import types
import typing
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobmedic.core import parsedform
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


def parsed_config(name: str, text: str | None = None) -> Any:
    """The packaged YAML file `name`'s data, from configs/<name>.json when current (parsedform)."""
    text = config_text(name) if text is None else text
    stored = config_resource(name + ".json")
    return parsedform.load(stored.read_text(encoding="utf-8") if stored.is_file() else None, text)


def user_config_file() -> Path:
    """`$XDG_CONFIG_HOME/jobmedic/jobmedic.yaml` (XDG_CONFIG_HOME defaults to ~/.config)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "jobmedic" / "jobmedic.yaml"


class IngestSettings(BaseModel):
    batch_size: int = Field(20_000, ge=100, le=1_000_000)
    resubmit_window_h: float = Field(72, gt=0, le=24 * 365)
    # `jobmedic ingest` parses in a second process while it writes (ingest/ahead.py); off:
    # one process (on a machine whose cores are all busy, the second one only costs)
    parse_ahead: bool = True


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
    # the models' after-load upkeep (gnn state, entity summary): at most every this many
    # seconds; 0 = after every poll that brought jobs
    refresh_every_s: float = Field(0, ge=0)
    smtp: dict[str, Any] = {}  # host, port, user, password, starttls, sender


#: The explicit configuration file of the load in progress (set by load_settings only while it
#: constructs Settings; a context variable, so concurrent loads never see each other's file).
_EXPLICIT: ContextVar[Path | None] = ContextVar("jobmedic_config_file", default=None)
#: Environment variables of settings start with this (any case), e.g. JOBMEDIC_SERVER__PORT.
ENV_PREFIX = "JOBMEDIC_"


class Settings(BaseModel):
    """All jobmedic settings, with their sources merged in priority order: the keyword
    arguments (flags) over JOBMEDIC_* variables over the YAML files (packaged defaults, the
    user's file, the explicit file), deep-merged key by key like pydantic-settings does."""

    model_config = ConfigDict(extra="ignore", validate_default=True)

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

    def __init__(self, **values: Any) -> None:
        names = {n.lower(): n for n in type(self).model_fields}
        init = {names.get(k.lower(), k): v for k, v in values.items()}
        env = env_values(type(self), os.environ)
        # the same order as pydantic-settings: flags over the environment, that over the files
        super().__init__(**deep_update(_yaml_values(), deep_update(env, init)))

    # -- derived paths -----------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        from platformdirs import user_data_dir  # only without --db (start-up, issue 16)

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


def _yaml_values() -> dict[str, Any]:
    """The packaged defaults, deep-merged with the user's XDG file and the explicit file."""
    data = _parse(config_text("jobmedic.yaml"), "the packaged jobmedic.yaml", packaged=True)
    user = user_config_file()
    if user.is_file():
        data = _merge(data, read_config_file(user))
    explicit = _EXPLICIT.get()
    if explicit is None and os.environ.get("JOBMEDIC_CONFIG"):
        explicit = Path(os.environ["JOBMEDIC_CONFIG"]).expanduser()
    if explicit is not None:
        data = _merge(data, read_config_file(explicit))
    return data


# -- the JOBMEDIC_* environment source ---------------------------------------------------------
# pydantic-settings' EnvSettingsSource (env_prefix JOBMEDIC_, env_nested_delimiter "__", case
# insensitive, no .env file), written out for the field types Settings uses, so a command's
# start does not import pydantic-settings and its providers (~0.17 s CPU under load).
# tests/cli/test_settings_env.py pins each rule (and compares with pydantic-settings when it is
# installed).
ENV_DELIMITER = "__"


def env_values(model: type[BaseModel], environ: Mapping[str, str],
               prefix: str = ENV_PREFIX) -> dict[str, Any]:
    """The settings that JOBMEDIC_* variables give, as a nested dict of strings and decoded
    JSON (pydantic validates and converts them like any other source). Variable names are
    matched in any case. A list, mapping or model field takes a JSON value
    (JOBMEDIC_SERVER__TOKENS='[...]'), and nested keys join with `__`
    (JOBMEDIC_SERVER__PORT=9000, JOBMEDIC_ANALYZERS__HOTSPOTS__FDR=0.1, keys lower-cased); a
    JSON object and nested variables for the same field are deep-merged. A JSON value that does
    not parse is a ConfigError naming the variable."""
    env = {k.lower(): v for k, v in environ.items()}
    data: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        var = (prefix + name).lower()
        value: Any = env.get(var)
        complex_, lenient = _complexity(field.annotation)
        if complex_:
            if value is None:
                value = _explode(field.annotation, var, env, prefix) or None
            else:
                try:
                    value = json.loads(value)
                except ValueError:
                    if not lenient:
                        raise ConfigError(f"environment variable {var.upper()} is not valid JSON",
                                          hint="give a JSON value, e.g. '[\"a\", \"b\"]' or "
                                               "'{\"key\": 1}'; docs/configuration.md") from None
                if isinstance(value, dict):
                    value = deep_update(value, _explode(field.annotation, var, env, prefix))
        if value is not None:
            data[name] = _field_names(field.annotation, value) if isinstance(value, dict) else value
    return data


def _complexity(annotation: Any) -> tuple[bool, bool]:
    """(JSON-decoded?, keep the string when it is not JSON?): a list, mapping or model is
    decoded and must parse; a union holding one (`list[str] | None`) is decoded when it parses."""
    if _is_complex(annotation):
        return True, False
    if _is_union(annotation) and any(_is_complex(a) for a in typing.get_args(annotation)):
        return True, True
    return False, False


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _is_complex(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_complex(typing.get_args(annotation)[0])
    return any(isinstance(t, type) and not issubclass(t, (str, bytes))
               and issubclass(t, (BaseModel, Mapping, Sequence, AbstractSet, tuple, deque))
               for t in (annotation, origin))


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if _is_union(annotation):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _next(annotation: Any, key: str, prefix: str) -> Any:
    """The type under `key` one level into `annotation`: a mapping's value type, a model's
    field (matched by name in any case, or by prefix + name), searched through type
    arguments (list[TokenSpec] -> TokenSpec's fields); None when there is none."""
    if annotation is None:
        return None
    origin = typing.get_origin(annotation)
    if isinstance(origin, type) and issubclass(origin, dict):
        args = typing.get_args(annotation)
        return args[-1] if args else None
    for arg in typing.get_args(annotation):
        found = _next(arg, key, prefix)
        if found is not None:
            return found
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for fname, f in annotation.model_fields.items():
            if key.lower() in (fname.lower(), (prefix + fname).lower()):
                return _Field(f.annotation)
    return None


@dataclass(frozen=True)
class _Field:
    """A model field found by _next (its complexity rules differ from a bare type's)."""

    annotation: Any


def _explode(annotation: Any, var: str, env: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """Nested variables of one field (JOBMEDIC_SERVER__PORT -> {"port": "9000"})."""
    is_dict = annotation is dict or (isinstance(typing.get_origin(annotation), type)
                                     and issubclass(typing.get_origin(annotation), dict))
    head = var + ENV_DELIMITER.lower()
    result: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(head):
            continue
        *keys, last = name[len(head):].split(ENV_DELIMITER.lower())
        node: Any = result
        target: Any = _Field(annotation)
        for key in keys:
            target = _next(target.annotation if isinstance(target, _Field) else target, key, prefix)
            if isinstance(node, dict):
                node = node.setdefault(key, {})
        target = _next(target.annotation if isinstance(target, _Field) else target, last, prefix)
        if (target is not None or is_dict) and value:
            if isinstance(target, _Field):
                complex_, lenient = _complexity(target.annotation)
            elif target is not None:  # a bare type: a mapping's value type
                complex_, lenient = _is_complex(target), True
                if not complex_ and _complexity(target)[0]:  # `list[str] | str`: JSON arrays
                    value = _decode_container(value)  # and objects only
            else:  # a key inside a free-form mapping
                complex_, lenient = True, True
            if complex_:
                try:
                    value = json.loads(value)
                except ValueError:
                    if not lenient:
                        raise ConfigError(f"environment variable {name.upper()} is not valid "
                                          "JSON", hint="give a JSON value; "
                                                       "docs/configuration.md") from None
        if isinstance(node, dict):
            node[last] = value
    return result


def _decode_container(value: str) -> Any:
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, (list, dict)) else value


def _field_names(annotation: Any, value: dict[str, Any]) -> dict[str, Any]:
    """A model field's keys matched to its field names in any case ({"PORT": 1} -> port)."""
    model = _model_of(annotation)
    if model is None:
        return value
    fields = {n.lower(): (n, f) for n, f in model.model_fields.items()}
    out: dict[str, Any] = {}
    for k, v in value.items():
        name, f = fields.get(k.lower(), (k, None))
        sub = None if f is None else _model_of(f.annotation)
        out[name] = _field_names(f.annotation, v) if sub is not None and isinstance(v, dict) else v
    return out


def deep_update(base: dict[str, Any], *updates: dict[str, Any]) -> dict[str, Any]:
    """`base` updated by each of `updates` in turn, merging mappings found under the same key
    in both (pydantic's deep_update)."""
    out = dict(base)
    for up in updates:
        for k, v in up.items():
            out[k] = deep_update(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) \
                else v
    return out


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


def _parse(text: str, where: str, packaged: bool = False) -> dict[str, Any]:
    try:
        data = parsed_config("jobmedic.yaml", text) if packaged else parsedform.yaml_load(text)
    except Exception as exc:
        if not parsedform.is_yaml_error(exc):
            raise
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
