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

from jobmedic.core import validate as v
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
            except Exception as exc:  # noqa: BLE001 - a record never stops the file
                batch.rejects.append(("kubernetes", ctx.file, line,
                                      f"{_label(kind)} {_label(_name_of(obj))}: {_why(exc)}"[:500],
                                      _raw(obj)))
            if len(batch) >= ctx.batch_size:
                yield batch
                batch = Batch()
        yield batch


def _name_of(obj: Any) -> Any:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta.get("name") if isinstance(meta, dict) else None


def _label(x: Any) -> str:
    return x[:100] if isinstance(x, str) and x else "?" if x is None else f"<{type(x).__name__}>"


def _why(exc: Exception) -> str:
    if isinstance(exc, (ValueError, QuantityError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _raw(obj: Any) -> str:
    try:
        return str(obj)[:2000]
    except (RecursionError, ValueError):
        return f"<{type(obj).__name__} that cannot be shown>"


def _time(value: Any, field: str) -> int | None:
    """An RFC 3339 time as epoch seconds between 1970 and now + 1 year (None when absent)."""
    if value is None or value == "":
        return None
    t = rfc3339(v.text(value, field, 64))
    return None if t is None else v.epoch(t, field)


def _checked(row: dict[str, Any]) -> dict[str, Any]:
    """Every value of a row as the store can hold it (core/validate.py `cell`)."""
    return {k: v.cell(x, k) for k, x in row.items()}


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
        q = req.get("cpu", lim.get("cpu"))
        if q is not None:
            cpu = (cpu or 0) + v.amount(cpus(q), "resources cpu", v.MAX_CPUS)
            cpu_txt = v.name(str(q), "resources cpu") if cpu_txt is None else cpu_txt
        q = req.get("memory", lim.get("memory"))
        if q is not None:
            mem = (mem or 0) + v.amount(mem_mb(q), "resources memory (MB)")
            mem_txt = v.name(str(q), "resources memory") if mem_txt is None else mem_txt
        q = lim.get("nvidia.com/gpu", req.get("nvidia.com/gpu"))
        if q is not None:
            gpu = (gpu or 0) + v.count(q, "nvidia.com/gpu", v.MAX_GPUS)
    if cpu is not None:
        v.amount(cpu, "resources cpu", v.MAX_CPUS)
    if mem is not None:
        v.amount(mem, "resources memory (MB)")
    if gpu is not None:
        v.count(gpu, "nvidia.com/gpu", v.MAX_GPUS)
    return cpu, mem, gpu, cpu_txt, mem_txt


def _pod(pod: dict[str, Any], ctx: IngestContext, batch: Batch) -> None:
    """One pod: every value is checked before the pod touches the template miner or the batch,
    so a rejected pod leaves no trace but its reject."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    ns, name = meta.get("namespace") or "default", meta.get("name")
    if not name:
        raise ValueError("metadata.name is missing")
    ns, name = v.name(ns, "metadata.namespace"), v.name(name, "metadata.name")
    labels, ann = meta.get("labels") or {}, meta.get("annotations") or {}
    owners = meta.get("ownerReferences") or []
    containers = spec.get("containers") or []
    statuses = status.get("containerStatuses") or []
    phase = v.name(status.get("phase") or "Unknown", "status.phase")
    cpu, mem, gpu, cpu_txt, mem_txt = _resources(containers)
    job_id = f"{ns}/{name}"
    node = spec.get("nodeName")
    job: dict[str, Any] = {
        "cluster": ctx.cluster, "job_id": job_id, "name": _first([labels], NAME_KEYS)
        or (owners[0].get("name") if owners else None) or name,
        "user": _first([labels, ann], USER_KEYS), "project": _project(meta),
        "queue": _first([labels], QUEUE_KEYS), "qos": status.get("qosClass"),
        "image": containers[0].get("image") if containers else None,
        "submit_time": _time(meta.get("creationTimestamp"), "metadata.creationTimestamp"),
        "start_time": _time(status.get("startTime"), "status.startTime"),
        "req_cpus": ceil_int(cpu), "req_gpus": gpu, "req_mem_mb": mem,
        "n_nodes": 1 if node else None, "node_list": node, "source": "kubernetes",
    }
    state, reason, exit_code, message, end = _pod_state(phase, status, statuses)
    restarts = sum(v.count(s.get("restartCount") or 0, "restartCount") for s in statuses)
    job.update(state=state, raw_state=phase if not reason else f"{phase}/{reason}",
               reason=reason, exit_code=None if exit_code is None else v.exit_code(exit_code),
               end_time=end)
    if end and job["start_time"]:
        job["elapsed_s"] = max(0, end - job["start_time"])
    failing = state in ("failed", "timeout", "oom", "node_fail", "preempted") or (
        state == "pending" and reason == "Unschedulable")
    if failing:  # when it failed: its end, else when it last changed condition (see _failed_at)
        job["failed_at"] = end or _failed_at(status, job)
    job = _checked(job)
    message = None if message is None else v.text(message, "message")
    common = {"cluster": ctx.cluster, "job_id": job_id, "job_name": job["name"],
              "project": job["project"], "user": job["user"], "pod_name": name,
              "node_name": node, "gpu_count": gpu, "memory_request": mem_txt,
              "cpu_request": cpu_txt, "source": "kubernetes", "resolved": 0}
    events = [_restart_event(s, job, common, ctx) for s in statuses]
    if failing:
        c = ctx.taxonomy.classify(reason, exit_code, None, message)
        job["failure_type"], job["blame"] = c.failure_type, c.blame
        text = message or reason
        tid = ctx.templates.add(template_line(text, c.evidence), c.failure_type, end) if text else None
        job["template_id"] = tid
        ev = dict(common, failure_type=c.failure_type, blame=c.blame, phase=phase,
                  timestamp=job["failed_at"] or 0,
                  container_image=job["image"], error_message=text, evidence=c.evidence,
                  events_snippet=f"restarts: {restarts}" if restarts else None, template_id=tid)
        events.insert(0, event_tuple(ev, f"pod:{ctx.cluster}:{job_id}:{reason}"))
    elif state == "cancelled":
        job["failure_type"], job["blame"] = "cancelled", "job"
    batch.events.extend(e for e in events if e is not None)
    batch.jobs.append(job_tuple(job))
    if node:
        batch.nodes.append((ctx.cluster, job_id, node))


def _restart_event(s: dict[str, Any], job: dict[str, Any], common: dict[str, Any],
                   ctx: IngestContext) -> tuple | None:
    """The failure event of an earlier termination of a restarted container, if any."""
    last = (s.get("lastState") or {}).get("terminated")
    if not last or (last.get("exitCode") == 0 and last.get("reason") != "OOMKilled"):
        return None
    code = last.get("exitCode")
    code = None if code is None else v.exit_code(code, "lastState.terminated.exitCode")
    reason = last.get("reason")
    message = last.get("message")
    c = ctx.taxonomy.classify(None if reason is None else v.name(reason, "reason"), code, None,
                              None if message is None else v.text(message, "message"))
    finished = _time(last.get("finishedAt"), "lastState.terminated.finishedAt")
    text = message or f"{reason} (exit code {code})"
    ev = dict(common, failure_type=c.failure_type, blame=c.blame, phase="Restarted",
              timestamp=finished or job["start_time"] or 0, container_image=s.get("image"),
              error_message=text, evidence=c.evidence,
              events_snippet=f"container {s.get('name')} restartCount {s.get('restartCount')}")
    row = event_tuple(ev, f"pod:{ctx.cluster}:{job['job_id']}:{s.get('name')}:"
                          f"{last.get('finishedAt')}")
    return tuple(v.cell(x, "container status") for x in row)


def _failed_at(status: dict[str, Any], job: dict[str, Any]) -> int | None:
    """The failure time of a pod that failed without terminating (a waiting reason, evicted,
    unschedulable): the latest condition transition (Ready / ContainersReady turning False,
    PodScheduled False), else its start, else its creation. The same time is its failure
    event's timestamp, so the pod counts in a window when its failure happened."""
    times = [_time(c.get("lastTransitionTime"), "status.conditions.lastTransitionTime")
             for c in status.get("conditions") or [] if isinstance(c, dict)]
    times = [t for t in times if t]
    return max(times) if times else (job["start_time"] or job["submit_time"])


def _pod_state(phase: str, status: dict[str, Any], statuses: list[dict[str, Any]]
               ) -> tuple[str, str | None, int | None, str | None, int | None]:
    """(state, reason, exit code, message, end time) of a pod."""
    terminated = [(s.get("state") or {}).get("terminated") for s in statuses]
    terminated = [t for t in terminated if t]
    for t in terminated:  # every exit code is checked, whichever one the state is taken from
        if t.get("exitCode") is not None:
            v.exit_code(t["exitCode"], "state.terminated.exitCode")
    end = max((_time(t.get("finishedAt"), "state.terminated.finishedAt") or 0
               for t in terminated), default=0) or None
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
    reason, etype = v.name(reason, "reason"), v.name(etype, "type")
    meta, obj = ev.get("metadata") or {}, ev.get("involvedObject") or {}
    src = ev.get("source") or {}
    message = v.text(ev.get("message") or "", "message").strip()
    ts = (_time(ev.get("lastTimestamp"), "lastTimestamp")
          or _time(ev.get("eventTime"), "eventTime")
          or _time(ev.get("firstTimestamp"), "firstTimestamp")
          or _time(meta.get("creationTimestamp"), "metadata.creationTimestamp"))
    if ts is None:
        raise ValueError("no timestamp (lastTimestamp, eventTime, firstTimestamp)")
    kind, oname = obj.get("kind"), obj.get("name")
    is_pod = kind == "Pod"
    ns = obj.get("namespace") or meta.get("namespace")
    node = src.get("host") or (oname if kind == "Node" else None)
    for x, field in ((kind, "involvedObject.kind"), (oname, "involvedObject.name"),
                     (ns, "namespace"), (node, "source.host"), (meta.get("uid"), "metadata.uid"),
                     (meta.get("name"), "metadata.name")):
        if x is not None:
            v.name(x, field)
    count = v.count(ev.get("count") or 1, "count")
    c = ctx.taxonomy.classify(reason, None, None, message)
    tid = ctx.templates.add(template_line(message, c.evidence), c.failure_type, ts) if message else None
    row = {"cluster": ctx.cluster, "job_id": f"{ns}/{oname}" if is_pod else None,
           "project": _project({"namespace": ns}) if is_pod else None,
           "failure_type": c.failure_type, "blame": c.blame, "phase": reason, "timestamp": ts,
           "pod_name": oname if is_pod else None, "node_name": node,
           "error_message": message or reason, "evidence": c.evidence,
           "events_snippet": f"{etype} {reason} x{count} on {kind} {oname}: {message}"[:1000],
           "template_id": tid, "source": "kubernetes", "resolved": 0}
    key = meta.get("uid") or f"{ns}/{meta.get('name')}/{ts}"
    batch.events.append(event_tuple(row, f"k8sevent:{ctx.cluster}:{key}"))
