"""Ingest: one module per source, each a Reader; READERS is the explicit registry."""
from __future__ import annotations

from jobmedic.ingest.base import IngestContext, IngestSummary, Reader, run_ingest
from jobmedic.ingest.eagle import EagleReader
from jobmedic.ingest.fresco import FrescoReader
from jobmedic.ingest.google2011 import Google2011Reader
from jobmedic.ingest.kubernetes import KubernetesReader
from jobmedic.ingest.lanl import LanlReader
from jobmedic.ingest.philly import PhillyReader
from jobmedic.ingest.prometheus import PrometheusReader
from jobmedic.ingest.runai import RunaiReader
from jobmedic.ingest.slurm import SlurmReader
from jobmedic.ingest.sstat import SstatReader
from jobmedic.ingest.swf import SwfReader

READERS: dict[str, Reader] = {r.name: r for r in [
    SlurmReader(),
    Google2011Reader(),
    SwfReader(),
    KubernetesReader(),
    RunaiReader(),
    EagleReader(),
    LanlReader(),
    FrescoReader(),
    PhillyReader(),
    PrometheusReader(),
    SstatReader(),
]}

__all__ = ["READERS", "IngestContext", "IngestSummary", "Reader", "run_ingest"]
