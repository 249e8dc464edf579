"""Prometheus metrics of the HTTP API, written in the text exposition format (version 0.0.4).

Requests and their latency per endpoint and action, errors per type, and the store's row
counts (read at scrape time). Small enough to write by hand rather than add a dependency.
"""
from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _labels(pairs: Mapping[str, str]) -> str:
    def esc(v: str) -> str:
        return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in pairs.items()) + "}" if pairs else ""


class Metrics:
    """Thread-safe counters and latency histograms of the server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)  # (path, action, code)
        self.errors: dict[tuple[str, str], int] = defaultdict(int)  # (path, error type)
        self._hist: dict[str, list[int]] = {}  # action -> bucket counts (+Inf last)
        self._sum: dict[str, float] = defaultdict(float)
        self._count: dict[str, int] = defaultdict(int)

    def observe(self, path: str, action: str, status_code: int, seconds: float,
                error_type: str | None = None) -> None:
        """Count one request and its latency; `error_type` when it ended in an error."""
        with self._lock:
            self.requests[(path, action, str(status_code))] += 1
            if error_type:
                self.errors[(path, error_type)] += 1
            h = self._hist.get(action)
            if h is None:
                h = self._hist[action] = [0] * (len(BUCKETS) + 1)
            h[bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sum[action] += seconds
            self._count[action] += 1

    def render(self, store_rows: Callable[[], Mapping[str, int]] | None = None) -> str:
        """The exposition text; `store_rows` is called for the row-count gauge."""
        out = ["# HELP jobmedic_http_requests_total HTTP requests by path, action and status code.",
               "# TYPE jobmedic_http_requests_total counter"]
        with self._lock:
            requests = dict(self.requests)
            errors = dict(self.errors)
            hist = {k: list(v) for k, v in self._hist.items()}
            sums, counts = dict(self._sum), dict(self._count)
        for (path, action, code), n in sorted(requests.items()):
            out.append(f"jobmedic_http_requests_total"
                       f"{_labels({'path': path, 'action': action, 'code': code})} {n}")
        out += ["# HELP jobmedic_http_errors_total Requests answered with an error, by type.",
                "# TYPE jobmedic_http_errors_total counter"]
        for (path, etype), n in sorted(errors.items()):
            out.append(f"jobmedic_http_errors_total{_labels({'path': path, 'type': etype})} {n}")
        out += ["# HELP jobmedic_request_duration_seconds Time to answer a request, by action.",
                "# TYPE jobmedic_request_duration_seconds histogram"]
        for action in sorted(hist):
            cum = 0
            for bound, n in zip(BUCKETS + (float("inf"),), hist[action]):
                cum += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(f"jobmedic_request_duration_seconds_bucket"
                           f"{_labels({'action': action, 'le': le})} {cum}")
            lab = _labels({"action": action})
            out.append(f"jobmedic_request_duration_seconds_sum{lab} {sums[action]:.6f}")
            out.append(f"jobmedic_request_duration_seconds_count{lab} {counts[action]}")
        if store_rows is not None:
            out += ["# HELP jobmedic_store_rows Rows per table of the knowledge store.",
                    "# TYPE jobmedic_store_rows gauge"]
            for table, n in sorted(store_rows().items()):
                out.append(f"jobmedic_store_rows{_labels({'table': table})} {n}")
        return "\n".join(out) + "\n"


def render_live(snap: Mapping[str, list[tuple]]) -> str:
    """The gauges of `jobmedic watch` (alerts, deliveries, recent failure rates) from a
    LiveQueries.live_metrics snapshot, in the same exposition format."""
    out = ["# HELP jobmedic_alerts Alerts in the store by rule, severity and state.",
           "# TYPE jobmedic_alerts gauge"]
    opened: dict[str, int] = defaultdict(int)
    for rule, severity, st, n in sorted(snap.get("alerts", [])):
        out.append(f"jobmedic_alerts{_labels({'rule': rule, 'severity': severity, 'state': st})}"
                   f" {n}")
        opened[rule] += n
    out += [("# HELP jobmedic_alerts_opened_total Alerts opened since the store was created, "
             "by rule."), "# TYPE jobmedic_alerts_opened_total counter"]
    out += [f"jobmedic_alerts_opened_total{_labels({'rule': r})} {n}"
            for r, n in sorted(opened.items())]
    out += ["# HELP jobmedic_alert_deliveries_total Notices handed to sinks, by sink and status.",
            "# TYPE jobmedic_alert_deliveries_total counter"]
    out += [f"jobmedic_alert_deliveries_total{_labels({'sink': sink, 'status': st})} {n}"
            for sink, st, n in sorted(snap.get("deliveries", []))]
    out += [("# HELP jobmedic_failure_rate Failed / ended jobs that ended in the last window "
             "seconds, per cluster."), "# TYPE jobmedic_failure_rate gauge"]
    ended = ["# HELP jobmedic_jobs_ended Jobs that ended in the last window seconds, per cluster.",
             "# TYPE jobmedic_jobs_ended gauge"]
    for cluster, window, failed, total in sorted(snap.get("rates", [])):
        lab = _labels({"cluster": cluster, "window": str(window)})
        out.append(f"jobmedic_failure_rate{lab} {failed / total if total else 0:.6f}")
        ended.append(f"jobmedic_jobs_ended{lab} {total}")
    return "\n".join(out + ended) + "\n"
