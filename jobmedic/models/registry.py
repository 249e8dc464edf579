"""`MODELS`: the explicit registry of model kinds (name -> class implementing
models/base.ModelKind), and `load`, which reads the current artifact of a kind, verified, and
caches it in-process (keyed by its folder, its manifest hash and the mtime of its
metadata) so predictions do not re-read or re-hash files. Adding a kind is one module with
one class, and one entry here."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jobmedic.knowledge.errors import ModelError
from jobmedic.models import artifacts
from jobmedic.models.base import ModelKind
from jobmedic.models.early import EarlyModel
from jobmedic.models.failure import FailureModel
from jobmedic.models.gnn import GnnModel
from jobmedic.models.memory import MemoryModel
from jobmedic.models.runtime import RuntimeModel

MODELS: dict[str, type[ModelKind]] = {
    m.name: m for m in (FailureModel, RuntimeModel, MemoryModel, GnnModel, EarlyModel)}

_CACHE: dict[tuple[str, str, str, float], tuple[ModelKind, dict[str, Any]]] = {}
#: Artifacts this process refused, by the same key, for a few seconds (predicts against a
#: stale model would otherwise re-read and re-hash its files on every call; a repaired file
#: is read again after the TTL).
_REFUSED: dict[tuple[str, str, str, float], tuple[float, ModelError]] = {}
REFUSAL_TTL_S = 5.0


def kind(name: str) -> type[ModelKind]:
    """The class of the model kind `name`; ModelError listing the kinds for an unknown one."""
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"no model kind {name!r}",
                         f"the kinds are {', '.join(MODELS)}") from None


def of_role(role: str) -> list[type[ModelKind]]:
    """The kinds with that role, in registry order (e.g. "request": runtime, memory)."""
    return [m for m in MODELS.values() if m.role == role]


def load(models_dir: str | Path, name: str) -> tuple[Any, dict[str, Any]]:
    """(model, meta) of the current version of `name`; ModelError when missing or untrusted."""
    cls = kind(name)
    d, digest = artifacts.current(models_dir, name)
    key = (str(d), name, digest or "",
           (d / "meta.json").stat().st_mtime if (d / "meta.json").exists() else 0.0)
    if key in _CACHE:
        return _CACHE[key]
    refused = _REFUSED.get(key)
    if refused is not None and time.monotonic() - refused[0] < REFUSAL_TTL_S:
        raise refused[1]  # refused a moment ago: not re-read and re-hashed on every call
    try:
        meta = artifacts.load_meta(d, name, cls.FILES, digest=digest)
        model = cls.load(d, meta).for_serving()
    except ModelError as exc:
        _REFUSED[key] = (time.monotonic(), exc)
        raise
    _CACHE[key] = (model, meta)
    return model, meta


def trained(models_dir: str | Path, name: str) -> bool:
    """Whether a model of `name` was ever trained here (its CURRENT pointer exists), whatever
    state it is in now."""
    return (Path(models_dir).expanduser() / name / "CURRENT").exists()


def optional(models_dir: str | Path, name: str) -> tuple[Any, dict[str, Any], dict[str, str] | None]:
    """(model, meta, None), or (None, {}, the `missing_models` entry: kind, message and hint)
    when `name` was never trained: for answers that other models can still give. A model that
    exists but is refused (tampered, malformed) stays a ModelError."""
    try:
        model, meta = load(models_dir, name)
    except ModelError as exc:
        if trained(models_dir, name):
            raise
        return None, {}, {"kind": name, "message": exc.message, "hint": exc.hint}
    return model, meta, None
