"""Model artifacts: versioned directories of safe files (XGBoost UBJ, torch state_dict, JSON).

Layout: ``<models_dir>/<kind>/<version>/meta.json`` plus the model files it lists with their
sha256, and ``<models_dir>/<kind>/CURRENT`` naming the version in use. Loading verifies the
format version, the feature set and every hash first: a corrupt, tampered, foreign or stale
artifact is refused with a ModelError saying how to retrain; nothing is ever unpickled.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from jobmedic.knowledge.errors import ModelError
from jobmedic.models.features import FEATURE_SET_VERSION

FORMAT_VERSION = 1
KINDS = ("failure", "runtime", "memory", "gnn")


def jobmedic_version() -> str:
    try:
        return metadata.version("jobmedic")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _train_hint(kind: str) -> str:
    return f"train one with `jobmedic train {kind}` (see `jobmedic train --help`)"


def save(models_dir: str | Path, kind: str, writers: dict[str, Callable[[Path], None]],
         meta: dict[str, Any]) -> Path:
    """Write a new version: each writer writes its file; meta.json records hashes; CURRENT moves."""
    base = Path(models_dir).expanduser() / kind
    version = time.strftime("v%Y%m%dT%H%M%S", time.gmtime())
    d = base / version
    i = 1
    while d.exists():
        d = base / f"{version}-{i}"
        i += 1
    d.mkdir(parents=True)
    files = {}
    for name, write in writers.items():
        write(d / name)
        files[name] = sha256(d / name)
    meta = {"format_version": FORMAT_VERSION, "feature_set_version": FEATURE_SET_VERSION,
            "jobmedic_version": jobmedic_version(), "kind": kind, "version": d.name,
            "created_at": int(time.time()), "files": files} | meta
    (d / "meta.json").write_text(json.dumps(meta, indent=2, default=float))
    (base / "CURRENT").write_text(d.name + "\n")
    return d


def current_dir(models_dir: str | Path, kind: str) -> Path:
    base = Path(models_dir).expanduser() / kind
    cur = base / "CURRENT"
    if not cur.exists():
        raise ModelError(f"no {kind} model has been trained yet (looked in {base})", _train_hint(kind))
    d = base / cur.read_text().strip()
    if not d.is_dir():
        raise ModelError(f"the current {kind} model {d.name!r} is missing from {base}", _train_hint(kind))
    return d


def load_meta(d: Path, kind: str, files: tuple[str, ...] = (), verify: bool = True) -> dict[str, Any]:
    """The verified metadata of the artifact in `d` (refuses anything it cannot trust); `files`:
    those the loader will open, each of which must be listed and match its hash."""
    try:
        meta = json.loads((d / "meta.json").read_text())
    except FileNotFoundError:
        raise ModelError(f"the {kind} model in {d} has no meta.json", _train_hint(kind)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"the {kind} model metadata {d / 'meta.json'} is corrupt: {exc}",
                         _train_hint(kind)) from None
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        raise ModelError(f"{d} does not hold a {kind} model", _train_hint(kind))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"the {kind} model in {d} has artifact format {meta.get('format_version')!r}; "
                         f"this jobmedic reads format {FORMAT_VERSION}", "retrain: " + _train_hint(kind))
    if meta.get("feature_set_version") != FEATURE_SET_VERSION:
        raise ModelError(f"the {kind} model in {d} is stale: built for feature set "
                         f"{meta.get('feature_set_version')!r}, current is {FEATURE_SET_VERSION}",
                         "retrain: " + _train_hint(kind))
    listed = meta.get("files") if isinstance(meta.get("files"), dict) else {}
    unlisted = [f for f in files if f not in listed]
    if unlisted:
        raise ModelError(f"the {kind} model {meta.get('version')!r} does not list its file(s) "
                         f"{', '.join(unlisted)} in its manifest; refusing to load it",
                         "retrain: " + _train_hint(kind))
    if verify:
        for name, digest in listed.items():
            p = d / name
            if not p.is_file():
                raise ModelError(f"the {kind} model file {p} is missing", "retrain: " + _train_hint(kind))
            if sha256(p) != digest:
                raise ModelError(f"the {kind} model file {p} does not match its recorded sha256 "
                                 "(corrupt or modified); refusing to load it",
                                 "retrain: " + _train_hint(kind))
    return meta


def list_all(models_dir: str | Path) -> list[dict[str, Any]]:
    """Every stored artifact's metadata (unverified), newest first, marked current or not."""
    out = []
    base = Path(models_dir).expanduser()
    for kind in KINDS:
        kd = base / kind
        if not kd.is_dir():
            continue
        cur = (kd / "CURRENT").read_text().strip() if (kd / "CURRENT").exists() else None
        for d in sorted((p for p in kd.iterdir() if p.is_dir()), reverse=True):
            try:
                meta = json.loads((d / "meta.json").read_text())
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                meta = {"kind": kind, "version": d.name, "error": "unreadable meta.json"}
            out.append(meta | {"current": d.name == cur, "path": str(d)})
    return out
