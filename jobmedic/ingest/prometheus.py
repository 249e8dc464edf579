"""Prometheus exposition text (a scrape saved to a file) -> telemetry samples.

Exporters: node_exporter, NVIDIA's DCGM exporter, cgroup / Slurm job exporters and cAdvisor
(``container_*``); any other series is kept under its own (unit-normalised) name.

* **Format**: ``name{label="value",...} value [timestamp_ms]`` with ``# HELP`` / ``# TYPE`` /
  ``# UNIT`` comments (the OpenMetrics ``# EOF`` too). Input whose first meaningful lines are
  not of that shape (JSON from the HTTP API, an HTML page, a CSV) is refused: "not Prometheus
  text". A line that does not parse is a reject with its number.
* **Time**: a sample's own timestamp; else the time of the scrape it belongs to: a comment
  ``# scrape <ISO time or epoch>`` before it (so ``while :; do echo "# scrape $(date -u
  +%FT%TZ) node17"; curl -s node17:9100/metrics; sleep 15; done >> scrapes.prom`` keeps many
  scrapes in one file; the optional node names the host of series that carry none, as a
  direct scrape of node_exporter does), else the file's modification time (stdin: now).
  Samples more than 5 minutes in the future are rejects.
* **Jobs**: a series belongs to a job through a Slurm job label (``slurm_job_id``,
  ``slurmjobid``, ``slurm_job``, ``jobid``, ``job_id``, DCGM's ``hpc_job``), a cgroup path
  label holding ``job_<id>`` (``cgroup``, cAdvisor's ``id``), or Kubernetes ``namespace`` +
  ``pod`` (``exported_namespace`` / ``exported_pod`` first) -> job ``<namespace>/<pod>`` as
  the kubernetes reader names pods. Prometheus' own ``job`` label is the scrape job, never a
  batch job. Other series are node-level (no job). Node: ``Hostname``, ``hostname``,
  ``node``, ``nodename``, ``kubernetes_node``, else ``instance`` without its port. Device:
  ``gpu`` (-> gpu0), ``cpu`` (-> cpu3), ``device``, ``mountpoint``.
* **Units**: memory in bytes (DCGM framebuffer MiB x 2^20, ``*_kilobytes`` / ``*_kib`` x
  1024, ``*_megabytes`` / ``*_mib`` x 2^20), ratios as percent (``*_ratio`` x 100, DCGM
  ``PROF_*_ACTIVE`` x 100), ``*_percent`` -> ``*_pct``; the names of `KNOWN` metrics become
  jobmedic's (``mem_used_bytes``, ``gpu_util_pct``, ``cpu_time_s``, ...). Labels ``mode``,
  ``state``, ``type``, ``direction`` are part of the metric (``node_cpu_seconds_total:idle``).
* **Counters** (``# TYPE x counter`` or a ``_total`` name) are stored reset-adjusted:
  samples are ordered by time per series (out-of-order input is fine, a repeated time keeps
  its last value) and a drop adds the value before it, as Prometheus' ``increase()`` does.
  Resets are seen within one file.
* Dropped as noise: ``go_*``, ``process_*``, ``promhttp_*``, scrape bookkeeping, ``*_info``,
  histogram buckets and summary quantiles; NaN (stale markers) is no sample; ±Inf and negative
  bytes or percentages are rejects.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import Any, TextIO

import numpy as np
import pandas as pd

from jobmedic.core.timeutil import parse_time_arg
from jobmedic.ingest.base import Batch, IngestContext
from jobmedic.knowledge.errors import InputError

MIB = float(2**20)
FUTURE_SLACK_S = 300
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+(-?\d+(?:\.\d+)?))?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_SCRAPE = re.compile(r"^#\s*scrape\s+(\S+)(?:\s+(\S+))?\s*$", re.IGNORECASE)
_JOB_IN_PATH = re.compile(r"job_(\d+(?:_\d+)?)")
JOB_LABELS = ("slurm_job_id", "slurmjobid", "slurm_job", "jobid", "job_id", "hpc_job")
PATH_LABELS = ("cgroup", "id")
NODE_LABELS = ("Hostname", "hostname", "node", "nodename", "kubernetes_node")
PART_LABELS = ("mode", "state", "type", "direction")
NOISE = re.compile(r"^(go_|process_|promhttp_|scrape_|up$|node_scrape_|node_exporter_|"
                   r"node_textfile_scrape|.*_info$|.*_created$)")

#: exporter metric -> (jobmedic metric, factor to its unit)
KNOWN: dict[str, tuple[str, float]] = {
    "DCGM_FI_DEV_GPU_UTIL": ("gpu_util_pct", 1.0),
    "DCGM_FI_DEV_MEM_COPY_UTIL": ("gpu_mem_copy_util_pct", 1.0),
    "DCGM_FI_DEV_FB_USED": ("gpu_mem_used_bytes", MIB),
    "DCGM_FI_DEV_FB_FREE": ("gpu_mem_free_bytes", MIB),
    "DCGM_FI_DEV_FB_TOTAL": ("gpu_mem_total_bytes", MIB),
    "DCGM_FI_DEV_GPU_TEMP": ("gpu_temp_celsius", 1.0),
    "DCGM_FI_DEV_POWER_USAGE": ("gpu_power_watts", 1.0),
    "DCGM_FI_DEV_XID_ERRORS": ("gpu_xid_last", 1.0),
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": ("gpu_engine_active_pct", 100.0),
    "DCGM_FI_PROF_DRAM_ACTIVE": ("gpu_dram_active_pct", 100.0),
    "DCGM_FI_PROF_SM_ACTIVE": ("gpu_sm_active_pct", 100.0),
    "container_memory_working_set_bytes": ("mem_used_bytes", 1.0),
    "container_memory_rss": ("rss_bytes", 1.0),
    "container_spec_memory_limit_bytes": ("mem_limit_bytes", 1.0),
    "container_cpu_usage_seconds_total": ("cpu_time_s_total", 1.0),
    "cgroup_memory_used_bytes": ("mem_used_bytes", 1.0),
    "cgroup_memory_rss_bytes": ("rss_bytes", 1.0),
    "cgroup_memory_total_bytes": ("mem_limit_bytes", 1.0),
    "cgroup_cpu_user_seconds": ("cpu_user_time_s_total", 1.0),
    "cgroup_cpu_system_seconds": ("cpu_system_time_s_total", 1.0),
    "slurm_job_memory_usage": ("mem_used_bytes", 1.0),
    "slurm_job_memory_max": ("mem_max_bytes", 1.0),
    "slurm_job_memory_limit": ("mem_limit_bytes", 1.0),
    "slurm_job_memory_rss": ("rss_bytes", 1.0),
    "node_memory_MemTotal_bytes": ("node_mem_total_bytes", 1.0),
    "node_memory_MemAvailable_bytes": ("node_mem_available_bytes", 1.0),
    "node_memory_MemFree_bytes": ("node_mem_free_bytes", 1.0),
    "node_cpu_seconds_total": ("node_cpu_time_s_total", 1.0),
}
_SUFFIXES = (("_kilobytes", "_bytes", 1024.0), ("_kib", "_bytes", 1024.0),
             ("_megabytes", "_bytes", MIB), ("_mib", "_bytes", MIB),
             ("_ratio", "_pct", 100.0), ("_percentage", "_pct", 1.0), ("_percent", "_pct", 1.0))


def normalise(name: str) -> tuple[str, float]:
    """(jobmedic metric name, factor) of an exporter metric."""
    if name in KNOWN:
        return KNOWN[name]
    low = name.lower()
    for suffix, unit, factor in _SUFFIXES:
        if low.endswith(suffix):
            return low[: -len(suffix)] + unit, factor
        if low.endswith(suffix + "_total"):
            return low[: -len(suffix) - 6] + unit + "_total", factor
    return low, 1.0


def parse_labels(text: str) -> dict[str, str]:
    """``{a="x",b="y\\"z"}`` -> {"a": "x", "b": 'y"z'}; ValueError when malformed."""
    inner = text.strip()[1:-1]
    out: dict[str, str] = {}
    pos = 0
    while pos < len(inner):
        m = _LABEL.match(inner, pos)
        if m is None:
            if inner[pos:].strip() in ("", ","):
                break
            raise ValueError(f"bad label set near {inner[pos:pos + 30]!r}")
        out[m.group(1)] = (m.group(2).replace("\\\\", "\x00").replace('\\"', '"')
                           .replace("\\n", "\n").replace("\x00", "\\"))
        pos = m.end()
    return out


def series_of(labels: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """(job id, node, device) of a series from its labels."""
    job = next((labels[k] for k in JOB_LABELS if labels.get(k)), None)
    if job is None:
        for k in PATH_LABELS:
            m = _JOB_IN_PATH.search(labels.get(k, ""))
            if m:
                job = m.group(1)
                break
    if job is None:
        ns = labels.get("exported_namespace") or labels.get("namespace")
        pod = labels.get("exported_pod") or labels.get("pod")
        if ns and pod:
            job = f"{ns}/{pod}"
    node = next((labels[k] for k in NODE_LABELS if labels.get(k)), None)
    if node is None and labels.get("instance"):
        node = re.sub(r":\d+$", "", labels["instance"])
    if labels.get("gpu"):
        device = f"gpu{labels['gpu']}"
    elif labels.get("cpu"):
        device = f"cpu{labels['cpu']}"
    else:
        device = labels.get("device") or labels.get("mountpoint")
    return job, node, device


def default_time(path: str) -> int:
    """The scrape time of samples without one: the file's modification time (stdin: now)."""
    try:
        return int(os.stat(path).st_mtime) if path != "-" else int(time.time())
    except OSError:
        return int(time.time())


def scrape_marker(line: str) -> tuple[int, str | None] | None:
    """(time, node or None) of a ``# scrape <time> [node]`` comment (None for other lines);
    ValueError when the time is not one."""
    m = _SCRAPE.match(line.strip())
    return None if m is None else (parse_time_arg(m.group(1), "scrape time"), m.group(2))


class PrometheusReader:
    name = "prometheus"
    description = "Prometheus exposition text saved from an exporter (node, DCGM, cgroup)"

    def batches(self, stream: TextIO, ctx: IngestContext) -> Iterator[Batch]:
        now = time.time()
        scrape_t = default_time(ctx.file)
        scrape_node: str | None = None
        types: dict[str, str] = {}
        rows: list[tuple] = []  # (cluster, job, node, device, metric, t, value, counter, line)
        rejects: list[tuple] = []
        seen_valid = False
        read = 0
        for lineno, raw in enumerate(stream, 1):
            read += 1
            line = raw.strip()
            if not line:
                continue
            if line.startswith("#"):
                try:
                    mark = scrape_marker(line)
                except ValueError as exc:
                    rejects.append((self.name, ctx.file, lineno, str(exc), line[:2000]))
                    continue
                if mark is not None:
                    scrape_t, scrape_node = mark
                parts = line.split()
                if len(parts) >= 4 and parts[1] == "TYPE":
                    types[parts[2]] = parts[3]
                seen_valid = seen_valid or (len(parts) >= 3 and parts[1] in ("HELP", "TYPE",
                                                                            "UNIT", "EOF"))
                continue
            m = _SAMPLE.match(line)
            if m is None:
                if not seen_valid and read <= 50:
                    raise InputError(f"{ctx.file}: not Prometheus text (line {lineno}: "
                                     f"{line[:60]!r})", hint="save the exporter's /metrics "
                                     "page, e.g. curl -s http://node:9100/metrics > scrape.prom")
                rejects.append((self.name, ctx.file, lineno, "not a Prometheus sample line",
                                line[:2000]))
                continue
            seen_valid = True
            row = self._sample(m, lineno, line, ctx, types, (scrape_t, scrape_node), now,
                               rejects)
            if row is not None:
                rows.append(row)
        if not seen_valid:
            raise InputError(f"{ctx.file}: not Prometheus text (no sample or # TYPE line)",
                             hint="save the exporter's /metrics page to a file")
        samples = counters_adjusted(rows)
        size = max(ctx.batch_size, 1)
        for i in range(0, max(len(samples), 1), size):
            batch = Batch(samples=samples[i:i + size], read=0)
            if i == 0:
                batch.rejects, batch.read = rejects, read
            yield batch

    def _sample(self, m: re.Match, lineno: int, line: str, ctx: IngestContext,
                types: dict[str, str], scrape: tuple[int, str | None], now: float,
                rejects: list) -> tuple | None:
        name, label_text, value_text, ts = m.groups()
        base = re.sub(r"_(sum|count|bucket|created)$", "", name)
        try:
            labels = parse_labels(label_text) if label_text else {}
        except ValueError as exc:
            rejects.append((self.name, ctx.file, lineno, str(exc), line[:2000]))
            return None
        if NOISE.match(name) or "le" in labels or "quantile" in labels:
            return None
        try:
            value = float(value_text)
        except ValueError:
            rejects.append((self.name, ctx.file, lineno, f"value {value_text!r} is not a number",
                            line[:2000]))
            return None
        if np.isnan(value):
            return None  # a stale marker: no sample
        t = int(float(ts) / 1000) if ts is not None else scrape[0]
        metric, factor = normalise(name)
        why = None
        if not np.isfinite(value):
            why = f"value {value_text} is not finite"
        elif value < 0 and metric.endswith(("_bytes", "_pct")):
            why = f"negative {metric.rsplit('_', 1)[1]}: {value:g}"
        elif t > now + FUTURE_SLACK_S:
            why = f"timestamp {t} is in the future"
        elif t < 0:
            why = f"timestamp {t} is before 1970"
        if why:
            rejects.append((self.name, ctx.file, lineno, why, line[:2000]))
            return None
        parts = [labels[k] for k in PART_LABELS if labels.get(k)]
        if parts:
            metric = metric + ":" + ":".join(parts)
        job, node, device = series_of(labels)
        node = node or scrape[1]
        cluster = ctx.cluster
        if cluster in (None, "", "default") and labels.get("cluster"):
            cluster = labels["cluster"]
        counter = (types.get(base, types.get(name)) == "counter" or name.endswith("_total")
                   or metric.split(":")[0].endswith("_total"))
        return (cluster or "default", job, node, device, metric, t, value * factor, counter,
                lineno)


def counters_adjusted(rows: list[tuple]) -> list[tuple]:
    """Telemetry tuples from parsed rows: per series in time order (the last of a repeated
    time wins), counters made monotone across resets."""
    if not rows:
        return []
    df = pd.DataFrame(rows, columns=["cluster", "job", "node", "device", "metric", "t", "value",
                                     "counter", "line"])
    key = ["cluster", "job", "node", "device", "metric"]
    df[key[1:4]] = df[key[1:4]].fillna("")
    df = df.sort_values(key + ["t", "line"], kind="stable")
    df = df.drop_duplicates(key + ["t"], keep="last")
    c = df["counter"].to_numpy()
    if c.any():
        sub = df[c]
        prev = sub.groupby(key, sort=False)["value"].shift()
        drop = (sub["value"] < prev).to_numpy()
        offset = pd.Series(np.where(drop, prev.to_numpy(), 0.0), index=sub.index)
        adj = sub["value"] + offset.groupby([sub[k] for k in key], sort=False).cumsum()
        df.loc[sub.index, "value"] = adj
    out: list[Any] = list(zip(df["cluster"], df["job"], df["node"], df["device"], df["metric"],
                              df["t"].astype(int), df["value"].astype(float),
                              ["prometheus"] * len(df)))
    return out
