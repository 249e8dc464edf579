"""`sstat` output of running job steps -> telemetry samples.

`parse_sstat(lines, t, cluster)` is the parser the live poller calls on one poll's output
(run `sstat_command(job_ids)`); `jobmedic ingest sstat FILE` reads saved polls with the same
function. Input is ``sstat --parsable2`` (``|``-separated) with its header line; without one
(``--noheader``) the columns are ``--fields`` or `SSTAT_FIELDS`. A saved file may hold many
polls, each starting with ``# scrape <ISO time or epoch>`` (e.g. ``{ echo "# scrape $(date -u
+%FT%TZ)"; sstat --parsable2 -a -j 4211 --format=...; } >> sstat.log``) and repeating the
header; samples before any marker take the file's modification time (stdin: now).

Rows: ``JobID`` ``4211.batch`` -> job ``4211``, device ``batch`` (the step; ``4211_7.0`` ->
job ``4211_7``, device ``0``); node = ``MaxRSSNode`` (else ``MaxVMSizeNode``). Metrics, in
bytes and seconds (sizes as Slurm writes them, ``K`` = KiB; a bare number is bytes, as
``--noconvert`` prints): MaxRSS -> ``mem_max_rss_bytes``, AveRSS -> ``mem_ave_rss_bytes``,
MaxVMSize / AveVMSize -> ``vmem_max_bytes`` / ``vmem_ave_bytes``, MaxDiskRead / MaxDiskWrite
/ AveDiskRead / AveDiskWrite -> ``disk_{read,write}_{max,ave}_bytes``, AveCPU / MinCPU ->
``cpu_time_ave_s`` / ``cpu_time_min_s`` (per task, cumulative), NTasks -> ``ntasks``. Other
columns are ignored. A row whose value cannot be read is a reject with its line number.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TextIO

from jobmedic.ingest.base import Batch, IngestContext
from jobmedic.ingest.prometheus import MIB, default_time, scrape_marker
from jobmedic.ingest.slurm_fields import FieldError, parse_duration, parse_mem_mb
from jobmedic.knowledge.errors import InputError

SSTAT_FIELDS = ("JobID", "MaxRSS", "AveRSS", "MaxRSSNode", "AveCPU", "MinCPU", "NTasks",
                "MaxVMSize", "AveVMSize", "MaxDiskRead", "MaxDiskWrite", "AveDiskRead",
                "AveDiskWrite")
SIZES = {"MaxRSS": "mem_max_rss_bytes", "AveRSS": "mem_ave_rss_bytes",
         "MaxVMSize": "vmem_max_bytes", "AveVMSize": "vmem_ave_bytes",
         "MaxDiskRead": "disk_read_max_bytes", "MaxDiskWrite": "disk_write_max_bytes",
         "AveDiskRead": "disk_read_ave_bytes", "AveDiskWrite": "disk_write_ave_bytes"}
TIMES = {"AveCPU": "cpu_time_ave_s", "MinCPU": "cpu_time_min_s"}
COUNTS = {"NTasks": "ntasks"}
NODE_FIELDS = ("MaxRSSNode", "MaxVMSizeNode")


def sstat_command(job_ids: Sequence[str], sstat: str = "sstat") -> list[str]:
    """The argv of one poll of running steps whose output `parse_sstat` reads."""
    return [sstat, "--parsable2", "-a", "-j", ",".join(job_ids),
            "--format=" + ",".join(SSTAT_FIELDS)]


def split_job_step(value: str) -> tuple[str, str]:
    """``4211.batch`` -> (``4211``, ``batch``); ``4211`` -> (``4211``, '')."""
    job, _, step = value.strip().partition(".")
    return job, step


def parse_sstat(lines: Iterable[str], t: int, cluster: str, *,
                fields: Sequence[str] | None = None, first_lineno: int = 1,
                source: str = "sstat") -> tuple[list[tuple], list[tuple[int, str, str]]]:
    """Telemetry tuples (`SAMPLE_COLUMNS` order) from sstat ``--parsable2`` lines, and the
    rejects as (line number, reason, raw). `t` is the poll time unless a ``# scrape`` line
    says otherwise. InputError when the text is not sstat output."""
    header = list(fields) if fields else None
    samples: list[tuple] = []
    rejects: list[tuple[int, str, str]] = []
    for n, raw in enumerate(lines, first_lineno):
        line = raw.strip("\r\n")
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            try:
                mark = scrape_marker(line)
            except ValueError as exc:
                rejects.append((n, str(exc), line[:2000]))
                continue
            if mark is not None:
                t = mark[0]
            continue
        cells = line.split("|")
        if cells[0].strip() == "JobID":
            header = [c.strip() for c in cells]
            continue
        if header is None:
            if len(cells) == len(SSTAT_FIELDS):
                header = list(SSTAT_FIELDS)
            else:
                raise InputError(f"not sstat --parsable2 output (line {n}: {line[:60]!r})",
                                 hint="run " + " ".join(sstat_command(["JOBID"])))
        if len(cells) != len(header):
            why = f"expected {len(header)} '|'-separated fields, found {len(cells)}"
            rejects.append((n, why, line[:2000]))
            continue
        try:
            samples.extend(_row(dict(zip(header, cells)), t, cluster, source))
        except (FieldError, ValueError) as exc:
            rejects.append((n, str(exc), line[:2000]))
    if header is None and not samples:
        raise InputError("not sstat --parsable2 output (no JobID header and no rows)",
                         hint="run " + " ".join(sstat_command(["JOBID"])))
    return samples, rejects


def _row(row: dict[str, str], t: int, cluster: str, source: str) -> list[tuple]:
    job, step = split_job_step(row.get("JobID", ""))
    if not job:
        raise ValueError("JobID: missing")
    node = next((row[k].strip() for k in NODE_FIELDS if row.get(k, "").strip()), "")
    out = []
    for col, metric in SIZES.items():
        v = row.get(col, "").strip()
        if v:
            mb = parse_mem_mb(v, col, default_unit="B")
            if mb is not None:
                out.append((cluster, job, node, step, metric, t, mb * MIB, source))
    for col, metric in TIMES.items():
        v = row.get(col, "").strip()
        if v:
            s = parse_duration(v, col)
            if s is not None:
                out.append((cluster, job, node, step, metric, t, float(s), source))
    for col, metric in COUNTS.items():
        v = row.get(col, "").strip()
        if v:
            k = int(v)
            if k < 0:
                raise ValueError(f"{col}: {v!r} is negative")
            out.append((cluster, job, node, step, metric, t, float(k), source))
    return out


class SstatReader:
    name = "sstat"
    description = "sstat --parsable2 output of running job steps (saved polls)"

    def batches(self, stream: TextIO, ctx: IngestContext) -> Iterator[Batch]:
        t0 = default_time(ctx.file)
        cluster = ctx.cluster or "default"
        fields = ctx.fields
        lineno = 1
        while True:
            block = stream.readlines(1 << 20)
            if not block:
                return
            samples, bad = parse_sstat(block, t0, cluster, fields=fields, first_lineno=lineno)
            # the next block continues with the header and time this one ended with
            fields, t0 = _state_after(block, fields, t0)
            lineno += len(block)
            yield Batch(samples=samples, read=len(block),
                        rejects=[(self.name, ctx.file, n, why, raw) for n, why, raw in bad])


def _state_after(block: list[str], fields: Sequence[str] | None, t: int
                 ) -> tuple[Sequence[str] | None, int]:
    """The header and poll time in force at the end of a block of lines."""
    for line in block:
        s = line.strip()
        if s.startswith("#"):
            try:
                mark = scrape_marker(s)
            except ValueError:
                mark = None
            if mark is not None:
                t = mark[0]
        elif s.split("|")[0].strip() == "JobID":
            fields = [c.strip() for c in s.split("|")]
    return fields, t
