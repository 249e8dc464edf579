"""Model artifacts: versioned directories of safe files (XGBoost UBJ, torch state_dict, JSON).

Layout: ``<models_dir>/<kind>/<version>/meta.json`` (the manifest: format, feature set,
parameters, calibration, card, and the sha256 of every model file) plus those files, and
``<models_dir>/<kind>/CURRENT``: the version in use on its first line and the sha256 of that
version's meta.json on its second, so the manifest is bound to its content: an edited
calibration, a dropped file entry or a swapped file is refused.

Loading checks, in order: CURRENT names a plain version folder inside the kind's folder (no
`..`, no absolute path, no link out); meta.json parses and is of this kind, artifact format
and feature set; its sha256 is the one CURRENT records; every file the loader will open is
listed and matches its sha256. A refusal is a ModelError naming the kind and version (never a
server path) and saying how to retrain. Nothing is ever unpickled.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from jobmedic.knowledge.errors import ModelError
from jobmedic.models.features import FEATURE_SET_VERSION, FEATURES

#: 2: CURRENT carries the manifest's sha256 (format 1 artifacts are refused: retrain).
FORMAT_VERSION = 2
KINDS = ("failure", "runtime", "memory", "gnn", "early")
VERSION_NAME = re.compile(r"v[0-9]{8}T[0-9]{6}(-[0-9]{1,6})?")
DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


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


def _refuse(kind: str, version: str, why: str) -> ModelError:
    return ModelError(f"the {kind} model {version!r} {why}; refusing to load it",
                      "retrain: " + _train_hint(kind))


def write_current(base: Path, version: str, meta_digest: str) -> None:
    """Point `base/CURRENT` at `version`, recording its manifest's sha256 (atomic replace)."""
    tmp = base / "CURRENT.tmp"
    tmp.write_text(f"{version}\nsha256:{meta_digest}\n")
    tmp.replace(base / "CURRENT")


def save(models_dir: str | Path, kind: str, writers: dict[str, Callable[[Path], None]],
         meta: dict[str, Any]) -> Path:
    """Write a new version: each writer writes its file; meta.json records their hashes;
    CURRENT moves to it with meta.json's own hash."""
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
    write_current(base, d.name, sha256(d / "meta.json"))
    return d


def current(models_dir: str | Path, kind: str) -> tuple[Path, str | None]:
    """(folder of the current version of `kind`, its manifest's recorded sha256 or None for
    a format-1 pointer); ModelError when there is none or CURRENT points outside."""
    base = Path(models_dir).expanduser() / kind
    cur = base / "CURRENT"
    try:
        lines = cur.read_text(encoding="utf-8", errors="strict").splitlines()
    except FileNotFoundError:
        raise ModelError(f"no {kind} model has been trained yet for this store",
                         _train_hint(kind)) from None
    except (OSError, UnicodeDecodeError):
        raise ModelError(f"the {kind} model pointer (CURRENT) is unreadable", _train_hint(kind)) from None
    version = lines[0].strip() if lines else ""
    if not VERSION_NAME.fullmatch(version):
        raise ModelError(f"the {kind} model pointer (CURRENT) does not name a version folder "
                         "of this model", "retrain: " + _train_hint(kind))
    d = base / version  # one plain name (no separator, no dots): a folder of `base` unless a link
    if d.is_symlink() or not d.is_dir():
        raise ModelError(f"the current {kind} model {version!r} is missing", _train_hint(kind))
    m = DIGEST.fullmatch(lines[1].strip()) if len(lines) > 1 else None
    return d, m.group(1) if m else None


def current_dir(models_dir: str | Path, kind: str) -> Path:
    return current(models_dir, kind)[0]


def load_meta(d: Path, kind: str, files: tuple[str, ...] = (), verify: bool = True,
              digest: str | None = None) -> dict[str, Any]:
    """The verified metadata of the artifact in `d` (refuses anything it cannot trust).

    `files`: those the loader will open, each of which must be listed and match its hash;
    `digest`: the manifest's sha256 recorded in CURRENT (checked when `verify`)."""
    version = d.name
    try:
        raw = (d / "meta.json").read_bytes()
        meta = json.loads(raw)
    except FileNotFoundError:
        raise _refuse(kind, version, "has no meta.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _refuse(kind, version, f"has corrupt metadata ({str(exc)[:80]})") from None
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        raise _refuse(kind, version, "does not hold a model of that kind")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"the {kind} model {version!r} has artifact format "
                         f"{meta.get('format_version')!r}; this jobmedic reads format "
                         f"{FORMAT_VERSION}", "retrain: " + _train_hint(kind))
    if meta.get("feature_set_version") != FEATURE_SET_VERSION:
        raise ModelError(f"the {kind} model {version!r} is stale: built for feature set "
                         f"{meta.get('feature_set_version')!r}, current is {FEATURE_SET_VERSION}",
                         "retrain: " + _train_hint(kind))
    if meta.get("features") != FEATURES:
        raise _refuse(kind, version, "lists features other than those of this feature set")
    if meta.get("version") != version:
        raise _refuse(kind, version, "has metadata of another version")
    listed = meta.get("files") if isinstance(meta.get("files"), dict) else {}
    unlisted = [f for f in files if f not in listed]
    if unlisted:
        raise _refuse(kind, version, f"does not list {', '.join(unlisted)} in its manifest")
    if verify:
        if digest is None:
            raise _refuse(kind, version, "has no manifest hash in CURRENT")
        if hashlib.sha256(raw).hexdigest() != digest:
            raise _refuse(kind, version, "has a manifest (meta.json) that does not match the "
                          "sha256 recorded in CURRENT (modified)")
        for name, want in listed.items():
            p = d / name
            if "/" in name or "\\" in name or name.startswith(".") or not p.is_file():
                raise _refuse(kind, version, f"lists a missing or misplaced file {name[:40]!r}")
            if sha256(p) != want:
                raise _refuse(kind, version, f"has a file {name} that does not match its recorded "
                              "sha256 (corrupt or modified)")
    return meta


def list_all(models_dir: str | Path) -> list[dict[str, Any]]:
    """Every stored artifact's metadata (unverified), newest first, marked current or not."""
    out = []
    base = Path(models_dir).expanduser()
    for kind in KINDS:
        kd = base / kind
        if not kd.is_dir():
            continue
        cur = ((kd / "CURRENT").read_text().splitlines() or [""])[0].strip() \
            if (kd / "CURRENT").exists() else None
        for d in sorted((p for p in kd.iterdir() if p.is_dir()), reverse=True):
            try:
                meta = json.loads((d / "meta.json").read_text())
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                meta = {"kind": kind, "version": d.name, "error": "unreadable meta.json"}
            out.append(meta | {"current": d.name == cur, "path": str(d)})
    return out
