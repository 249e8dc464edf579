"""Kubernetes: `kubectl get pods -A -o json` and `kubectl get events -A -o json`.

Both print one List object; its items are streamed one at a time (`jsonstream`). Each **Pod**
becomes one `jobs` row:

* ``job_id`` = ``<namespace>/<pod name>`` (what kubectl and events show; a pod re-created
  under the same name replaces the older row); cluster = ``--cluster``;
* ``project`` = the ``project`` label (Run:AI) else the namespace without Run:AI's
  ``runai-`` prefix; ``user`` from the ``user`` / ``runai/user`` / ``owner`` labels or
  annotations; ``name`` = the ``job-name`` / ``app.kubernetes.io/name`` / ``app`` label, else
  the owner's name, else the pod name; ``queue`` = the Kueue queue or Run:AI node-pool
  label; ``qos`` = ``status.qosClass``; ``image`` = the first container's image; node =
  ``spec.nodeName`` (into job_nodes);
* requests (else limits) summed over containers: cpu (``500m`` = 0.5, rounded up into
  ``req_cpus``), memory (``512Mi`` -> MB = MiB), ``nvidia.com/gpu``;
* state from the phase and the container statuses: a terminated reason (OOMKilled, Error
  with its exit code, Completed), the pod's ``status.reason`` (Evicted, DeadlineExceeded),
  a waiting reason (ImagePullBackOff, ErrImagePull, CrashLoopBackOff,
  CreateContainerConfigError: the pod is failing, state ``failed``), or an ``Unschedulable``
  PodScheduled condition (state ``pending``, failure ``scheduling``). A failure also
  becomes a `failure_events` row (key ``pod:<cluster>:<job_id>:<reason>``), and so does each
  earlier container termination that is still visible as ``lastState`` (restarts after
  OOMKilled or errors; key with its finish time).

Each **Event** of type Warning (and Evicted / Preempted / OOMKilling ones) becomes a
`failure_events` row (key ``k8sevent:<cluster>:<uid>``), classified from its reason and
message, linked to its pod's job when it is about a Pod.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TextIO

from jobmedic.ingest.base import Batch, IngestContext, event_tuple, job_tuple
from jobmedic.ingest.jsonstream import BadRecord, first_char, records
from jobmedic.ingest.k8s_fields import QuantityError, ceil_int, cpus, mem_mb, rfc3339
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.templates import template_line

FAILING_WAIT = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull",
                "CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError",
                "RunContainerError"}
EVENT_REASONS = {"Evicted", "Preempted", "Preempting", "OOMKilling", "NodeNotReady"}
USER_KEYS = ("user", "runai/user", "runai.io/user", "owner")
NAME_KEYS = ("job-name", "batch.kubernetes.io/job-name", "app.kubernetes.io/name", "app",
             "workloadName")
QUEUE_KEYS = ("kueue.x-k8s.io/queue-name", "runai/node-pool", "run.ai/node-pool")


class KubernetesReader:
    name = "kubernetes"
    description = "kubectl get pods -A -o json and kubectl get events -A -o json"

    def batches(self, stream: TextIO, ctx: IngestContext) -> Iterator[Batch]:
        head = first_char(stream)
        if head not in ("{", "["):
            raise InputError(f"{ctx.file}: not kubectl JSON output (it starts with {head!r})",
                             hint="save `kubectl get pods -A -o json` or `kubectl get events -A -o json`")
        batch, seen = Batch(), 0
        for rec in records(stream, head):
            batch.read += 1
            if isinstance(rec, BadRecord):
                batch.rejects.append(("kubernetes", ctx.file, rec.line, rec.reason, rec.raw))
                continue
            line, obj = rec
            kind = obj.get("kind") if isinstance(obj, dict) else None
            if seen == 0 and kind not in ("Pod", "Event"):
                raise InputError(f"{ctx.file}: expected Pod or Event objects (kubectl get pods / "
                                 f"events -o json), found {kind or type(obj).__name__!r}",
                                 hint="save `kubectl get pods -A -o json`")
            seen += 1
            try:
                if kind == "Pod":
                    _pod(obj, ctx, batch)
                elif kind == "Event":
                    _event(obj, ctx, batch)
                else:
                    raise ValueError(f"kind {kind!r} is neither Pod nor Event")
            except (ValueError, QuantityError, TypeError, AttributeError) as exc:
                name = (obj.get("metadata") or {}).get("name") if isinstance(obj, dict) else None
                batch.rejects.append(("kubernetes", ctx.file, line,
                                      f"{kind or 'item'} {name or '?'}: {exc}", str(obj)[:2000]))
            if len(batch) >= ctx.batch_size:
                yield batch
                batch = Batch()
        yield batch


def _project(meta: dict[str, Any]) -> str | None:
    labels = meta.get("labels") or {}
    ns = meta.get("namespace")
    if labels.get("project"):
        return labels["project"]
    return ns[len("runai-"):] if ns and ns.startswith("runai-") else ns


def _first(maps: list[dict[str, Any]], keys: tuple[str, ...]) -> str | None:
    for k in keys:
        for m in maps:
            if m.get(k):
                return str(m[k])
    return None


def _resources(containers: list[dict[str, Any]]) -> tuple[float | None, float | None, int | None,
                                                         str | None, str | None]:
    cpu = mem = None
    gpu = None
    cpu_txt = mem_txt = None
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        v = req.get("cpu", lim.get("cpu"))
        if v is not None:
            cpu = (cpu or 0) + cpus(v)
            cpu_txt = str(v) if cpu_txt is None else cpu_txt
        v = req.get("memory", lim.get("memory"))
        if v is not None:
            mem = (mem or 0) + mem_mb(v)
            mem_txt = str(v) if mem_txt is None else mem_txt
        v = lim.get("nvidia.com/gpu", req.get("nvidia.com/gpu"))
        if v is not None:
            gpu = (gpu or 0) + int(float(v))
    return cpu, mem, gpu, cpu_txt, mem_txt


def _pod(pod: dict[str, Any], ctx: IngestContext, batch: Batch) -> None:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    ns, name = meta.get("namespace") or "default", meta.get("name")
    if not name:
        raise ValueError("metadata.name is missing")
    labels, ann = meta.get("labels") or {}, meta.get("annotations") or {}
    owners = meta.get("ownerReferences") or []
    containers = spec.get("containers") or []
    statuses = status.get("containerStatuses") or []
    phase = status.get("phase") or "Unknown"
    cpu, mem, gpu, cpu_txt, mem_txt = _resources(containers)
    job_id = f"{ns}/{name}"
    node = spec.get("nodeName")
    job: dict[str, Any] = {
        "cluster": ctx.cluster, "job_id": job_id, "name": _first([labels], NAME_KEYS)
        or (owners[0].get("name") if owners else None) or name,
        "user": _first([labels, ann], USER_KEYS), "project": _project(meta),
        "queue": _first([labels], QUEUE_KEYS), "qos": status.get("qosClass"),
        "image": containers[0].get("image") if containers else None,
        "submit_time": rfc3339(meta.get("creationTimestamp")),
        "start_time": rfc3339(status.get("startTime")), "req_cpus": ceil_int(cpu),
        "req_gpus": gpu, "req_mem_mb": mem, "n_nodes": 1 if node else None, "node_list": node,
        "source": "kubernetes",
    }
    state, reason, exit_code, message, end = _pod_state(phase, status, statuses)
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    job.update(state=state, raw_state=phase if not reason else f"{phase}/{reason}",
               reason=reason, exit_code=exit_code, end_time=end)
    if end and job["start_time"]:
        job["elapsed_s"] = max(0, end - job["start_time"])
    failing = state in ("failed", "timeout", "oom", "node_fail", "preempted") or (
        state == "pending" and reason == "Unschedulable")
    common = {"cluster": ctx.cluster, "job_id": job_id, "job_name": job["name"],
              "project": job["project"], "user": job["user"], "pod_name": name,
              "node_name": node, "gpu_count": gpu, "memory_request": mem_txt,
              "cpu_request": cpu_txt, "source": "kubernetes", "resolved": 0}
    if failing:
        c = ctx.taxonomy.classify(reason, exit_code, None, message)
        job["failure_type"], job["blame"] = c.failure_type, c.blame
        text = message or reason
        tid = ctx.templates.add(template_line(text, c.evidence), c.failure_type, end) if text else None
        job["template_id"] = tid
        ev = dict(common, failure_type=c.failure_type, blame=c.blame, phase=phase,
                  timestamp=end or job["start_time"] or job["submit_time"] or 0,
                  container_image=job["image"], error_message=text, evidence=c.evidence,
                  events_snippet=f"restarts: {restarts}" if restarts else None, template_id=tid)
        batch.events.append(event_tuple(ev, f"pod:{ctx.cluster}:{job_id}:{reason}"))
    elif state == "cancelled":
        job["failure_type"], job["blame"] = "cancelled", "job"
    for s in statuses:  # earlier terminations of restarted containers
        last = (s.get("lastState") or {}).get("terminated")
        if not last or (last.get("exitCode") == 0 and last.get("reason") != "OOMKilled"):
            continue
        c = ctx.taxonomy.classify(last.get("reason"), last.get("exitCode"), None, last.get("message"))
        finished = rfc3339(last.get("finishedAt"))
        text = last.get("message") or f"{last.get('reason')} (exit code {last.get('exitCode')})"
        ev = dict(common, failure_type=c.failure_type, blame=c.blame, phase="Restarted",
                  timestamp=finished or job["start_time"] or 0, container_image=s.get("image"),
                  error_message=text, evidence=c.evidence,
                  events_snippet=f"container {s.get('name')} restartCount {s.get('restartCount')}")
        batch.events.append(event_tuple(ev, f"pod:{ctx.cluster}:{job_id}:{s.get('name')}:"
                                            f"{last.get('finishedAt')}"))
    batch.jobs.append(job_tuple(job))
    if node:
        batch.nodes.append((ctx.cluster, job_id, node))


def _pod_state(phase: str, status: dict[str, Any], statuses: list[dict[str, Any]]
               ) -> tuple[str, str | None, int | None, str | None, int | None]:
    """(state, reason, exit code, message, end time) of a pod."""
    terminated = [(s.get("state") or {}).get("terminated") for s in statuses]
    terminated = [t for t in terminated if t]
    end = max((rfc3339(t.get("finishedAt")) or 0 for t in terminated), default=0) or None
    bad = next((t for t in terminated if t.get("exitCode") not in (0, None)
                or t.get("reason") == "OOMKilled"), None)
    waiting = next(((s.get("state") or {}).get("waiting") for s in statuses
                    if ((s.get("state") or {}).get("waiting") or {}).get("reason") in FAILING_WAIT),
                   None)
    if status.get("reason") in ("Evicted", "DeadlineExceeded", "NodeLost", "Shutdown",
                                "Terminated", "Preempting", "UnexpectedAdmissionError"):
        st = {"Evicted": "preempted", "Preempting": "preempted", "DeadlineExceeded": "timeout",
              "NodeLost": "node_fail", "Shutdown": "node_fail"}.get(status["reason"], "failed")
        return st, status["reason"], None, status.get("message"), end
    if phase == "Succeeded":
        return "completed", None, 0, None, end
    if phase == "Failed":
        if bad is not None:
            reason = bad.get("reason") or "Error"
            return ("oom" if reason == "OOMKilled" else "failed"), reason, bad.get("exitCode"), \
                bad.get("message"), end
        return "failed", status.get("reason") or "Failed", None, status.get("message"), end
    if waiting is not None:
        return "failed", waiting.get("reason"), None, waiting.get("message"), None
    if phase == "Pending":
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                return "pending", cond.get("reason") or "Unschedulable", None, cond.get("message"), None
        return "pending", None, None, None, None
    if phase == "Running":
        return "running", None, None, None, None
    return "unknown", status.get("reason"), None, status.get("message"), None


def _event(ev: dict[str, Any], ctx: IngestContext, batch: Batch) -> None:
    reason, etype = ev.get("reason") or "", ev.get("type") or "Normal"
    if etype != "Warning" and reason not in EVENT_REASONS:
        return
    meta, obj = ev.get("metadata") or {}, ev.get("involvedObject") or {}
    src = ev.get("source") or {}
    message = (ev.get("message") or "").strip()
    ts = (rfc3339(ev.get("lastTimestamp")) or rfc3339(ev.get("eventTime"))
          or rfc3339(ev.get("firstTimestamp")) or rfc3339(meta.get("creationTimestamp")))
    if ts is None:
        raise ValueError("no timestamp (lastTimestamp, eventTime, firstTimestamp)")
    c = ctx.taxonomy.classify(reason, None, None, message)
    is_pod = obj.get("kind") == "Pod"
    ns = obj.get("namespace") or meta.get("namespace")
    node = src.get("host") or (obj.get("name") if obj.get("kind") == "Node" else None)
    tid = ctx.templates.add(template_line(message, c.evidence), c.failure_type, ts) if message else None
    row = {"cluster": ctx.cluster, "job_id": f"{ns}/{obj.get('name')}" if is_pod else None,
           "project": _project({"namespace": ns}) if is_pod else None,
           "failure_type": c.failure_type, "blame": c.blame, "phase": reason, "timestamp": ts,
           "pod_name": obj.get("name") if is_pod else None, "node_name": node,
           "error_message": message or reason, "evidence": c.evidence,
           "events_snippet": f"{etype} {reason} x{ev.get('count') or 1} on {obj.get('kind')} "
                             f"{obj.get('name')}: {message}"[:1000],
           "template_id": tid, "source": "kubernetes", "resolved": 0}
    key = meta.get("uid") or f"{ns}/{meta.get('name')}/{ts}"
    batch.events.append(event_tuple(row, f"k8sevent:{ctx.cluster}:{key}"))
