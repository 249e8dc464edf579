"""Ingest: one module per source, each a Reader; READERS is the explicit registry.

The registry is lazy: its names are listed here and a reader's module (pandas, numpy for the
vectorised ones) is imported the first time that reader is looked up, so a command that never
ingests (`jobmedic --help`, `db info`, the actions) does not pay for them.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobmedic.ingest.base import IngestContext, IngestSummary, Reader, run_ingest

#: Names re-exported from jobmedic.ingest.base, imported on first use (module __getattr__), so
#: listing the sources (`jobmedic --help`) does not import the loader and the store.
_FROM_BASE = ("IngestContext", "IngestSummary", "Reader", "run_ingest")


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        from jobmedic.ingest import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: source name -> (module, class) of its Reader, in the order they are listed to users.
_SOURCES: dict[str, tuple[str, str]] = {
    "slurm": ("jobmedic.ingest.slurm", "SlurmReader"),
    "google2011": ("jobmedic.ingest.google2011", "Google2011Reader"),
    "swf": ("jobmedic.ingest.swf", "SwfReader"),
    "kubernetes": ("jobmedic.ingest.kubernetes", "KubernetesReader"),
    "runai": ("jobmedic.ingest.runai", "RunaiReader"),
    "eagle": ("jobmedic.ingest.eagle", "EagleReader"),
    "lanl": ("jobmedic.ingest.lanl", "LanlReader"),
    "fresco": ("jobmedic.ingest.fresco", "FrescoReader"),
    "philly": ("jobmedic.ingest.philly", "PhillyReader"),
    "prometheus": ("jobmedic.ingest.prometheus", "PrometheusReader"),
    "sstat": ("jobmedic.ingest.sstat", "SstatReader"),
}


class _Readers(Mapping[str, "Reader"]):
    """name -> Reader, each made (and its module imported) on first lookup."""

    def __init__(self) -> None:
        self._made: dict[str, Reader] = {}

    def __getitem__(self, name: str) -> Reader:
        r = self._made.get(name)
        if r is None:
            mod, cls = _SOURCES[name]
            r = self._made[name] = getattr(importlib.import_module(mod), cls)()
        return r

    def __iter__(self) -> Iterator[str]:
        return iter(_SOURCES)

    def __len__(self) -> int:
        return len(_SOURCES)


READERS: Mapping[str, Reader] = _Readers()

__all__ = ["READERS", "IngestContext", "IngestSummary", "Reader", "run_ingest"]
