"""Memory-kill early warning in `watch`: the sstat sampler and the `memkill` alert rule.

`SstatSampler(store, cluster).sample(now)` runs one ``sstat`` poll of the running jobs the
store knows (`sstat_command`), parses it (`parse_sstat`) and stores the samples; the watcher
calls it before evaluating the rules. `memkill(store, now, cfg)` estimates, for every running
job with a memory sample in the last `window_s`, the time until its memory reaches its
request (models/memkill.estimate) and raises one alert per job whose estimate is within
`horizon_s`, with the lead time and its interval; the alert resolves once the job stops
growing, ends, or its samples go stale.

Configuration (`alerts: memkill:`), with the defaults:
    memkill: {enabled: true, horizon_s: 900, window_s: 180, stale_s: 120, severity: high}
"""
from __future__ import annotations

import shutil
import subprocess
import time
from typing import Any

from jobmedic.ingest.sstat import parse_sstat, sstat_command
from jobmedic.live.candidate import Candidate
from jobmedic.models.memkill import job_estimate

DEFAULTS = {"enabled": True, "horizon_s": 900, "window_s": 180, "stale_s": 120,
            "severity": "high"}


def _human(s: float | None) -> str:
    if s is None:
        return "?"
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.0f} min"


def memkill(store: Any, now: int, cfg: dict[str, Any]) -> list[Candidate]:
    """One candidate per running job whose memory will reach its limit within `horizon_s`."""
    cfg = {**DEFAULTS, **cfg}
    since = now - int(cfg["window_s"])
    out = []
    for j in store.telemetry.running_jobs(sampled_since=since):
        rows = store.job_samples(j["job_id"], j["cluster"], since=since)
        e = job_estimate(rows, j["req_mem_mb"], now, window_s=float(cfg["window_s"]),
                         stale_s=float(cfg["stale_s"]), horizon_s=float(cfg["horizon_s"]))
        if not e["alarm"]:
            continue
        lo, hi = e.get("eta_interval_s") or [None, None]
        gib = (e["limit"] or 0) / 2**30
        limit = f"{e['limit']:.0f}%" if e["metric"] == "mem_used_pct" else f"{gib:.2f} GiB"
        text = (f"job {j['job_id']} ({j.get('name') or 'no name'}, {j.get('user') or '?'}) "
                f"will reach its memory limit {limit} in ~{_human(e['eta_s'])} "
                f"(between {_human(lo)} and {_human(hi)}); now at "
                f"{100 * (e['fraction'] or 0):.0f}% and growing "
                f"{(e['slope_per_s'] or 0) / 2**20:.1f} MiB/s"
                + (f" (step {e['step']} on {e['node']})" if e.get("step") else ""))
        out.append(Candidate(
            "memkill", f"job:{j['job_id']}", cfg["severity"], text, [j["job_id"]], "oom",
            f"{e['metric']}: {e['samples']} samples in {int(cfg['window_s'])}s, "
            f"slope {e['slope_per_s']:.0f} B/s {e['slope_interval']}",
            "raise --mem (or checkpoint now), or stop the job before the kill",
            j.get("project"), j["cluster"]))
    return out


class SstatSampler:
    """One sstat poll of the store's running jobs per call, stored as telemetry."""

    def __init__(self, store: Any, cluster: str, *, exe: str = "sstat",
                 runner: Any = None, max_jobs: int = 500) -> None:
        self.store, self.cluster, self.exe, self.max_jobs = store, cluster, exe, max_jobs
        self.runner = runner or self._run
        self.last: dict[str, Any] = {}

    def _run(self, cmd: list[str]) -> str:
        exe = shutil.which(cmd[0])
        if exe is None:
            return ""
        proc = subprocess.run([exe, *cmd[1:]], capture_output=True, timeout=60, check=False)
        return proc.stdout.decode("utf-8", "replace")

    def sample(self, now: int | None = None) -> dict[str, Any]:
        """Poll sstat once; returns {jobs, samples, rejects, seconds}."""
        t0 = time.perf_counter()
        now = int(time.time()) if now is None else int(now)
        ids = [j["job_id"] for j in self.store.telemetry.running_jobs(cluster=self.cluster)]
        res = {"jobs": len(ids), "samples": 0, "rejects": 0, "seconds": 0.0}
        if ids:
            text = self.runner(sstat_command(ids[:self.max_jobs], self.exe))
            if text.strip():
                samples, rejects = parse_sstat(text.splitlines(), now, self.cluster)
                res["samples"] = self.store.add_samples(samples) if samples else 0
                res["rejects"] = len(rejects)
        res["seconds"] = round(time.perf_counter() - t0, 3)
        self.last = res
        return res
