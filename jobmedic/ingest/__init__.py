"""Ingest: one module per source, each a Reader; READERS is the explicit registry."""
from __future__ import annotations

from jobmedic.ingest.base import IngestContext, IngestSummary, Reader, run_ingest
from jobmedic.ingest.slurm import SlurmReader

READERS: dict[str, Reader] = {r.name: r for r in [
    SlurmReader(),
]}

__all__ = ["READERS", "IngestContext", "IngestSummary", "Reader", "run_ingest"]
