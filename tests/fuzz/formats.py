"""Each reader's format for the fuzz tests: records cut from a real fixture, the fields the
reader checks, and values each of those fields must reject (core/validate.py's bounds)."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.conftest import FIXTURES
from tests.fuzz.harness import Format, Raw, jsonl_format, k8s_format, lines_format

BAD_NUMBER = ["inf", "-inf", "nan", "1e400", "-5", "99999999999999999999999", "abc"]
BAD_COUNT = ["inf", "nan", "-4", "1e400", "99999999999999999999999"]


@dataclass
class Target:
    """A checked field: where it is in a record and the values it must reject."""

    field: str
    bad: list[Any]
    put: Callable[[Any, Any], Any]  # (record, bad value) -> the damaged record
    applies: Callable[[Any], bool] = lambda rec: True


def sep_put(index: int, sep: str) -> Callable[[str, Any], str]:
    def put(line: str, value: Any) -> str:
        parts = line.split(sep) if sep != " " else line.split()
        parts[index] = str(value)
        return sep.join(parts)
    return put


def csv_put(index: int) -> Callable[[str, Any], str]:
    def put(line: str, value: Any) -> str:
        parts = next(csv.reader([line]))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(parts)
        quoted = next(csv.reader([buf.getvalue()]))  # same fields, re-quoted where needed
        out = []
        for i, f in enumerate(quoted):
            if i == index:
                out.append(str(value))  # raw: an open quote stays open
            else:
                b = io.StringIO()
                csv.writer(b, lineterminator="").writerow([f])
                out.append(b.getvalue())
        return ",".join(out)
    return put


def path_put(*path: str | int) -> Callable[[dict, Any], dict]:
    def put(rec: dict, value: Any) -> dict:
        rec = json.loads(json.dumps(rec))
        cur: Any = rec
        for key in path[:-1]:
            if isinstance(key, int):
                while len(cur) <= key:
                    cur.append({})
                cur = cur[key]
            else:
                cur = cur.setdefault(key, [] if isinstance(path[path.index(key) + 1], int) else {})
        cur[path[-1]] = value
        return rec
    return put


# -- line formats -------------------------------------------------------------------------------
SACCT = FIXTURES / "sacct_states.txt"
_SACCT_HEADER = SACCT.read_text(encoding="utf-8").splitlines()[0].split("|")
BAD_TIMES_ISO = ["0001-01-01T00:00:00", "9999-12-31T23:59:59", "1969-12-31T23:59:59",
                 "2024-13-45T99:99:99", "inf"]


def _sacct(field: str, bad: list[Any]) -> Target:
    return Target(field, bad, sep_put(_SACCT_HEADER.index(field), "|"),
                  applies=lambda line: "." not in line.split("|", 1)[0]  # allocation lines
                  and line.count("|") == len(_SACCT_HEADER) - 1)


SLURM_TARGETS = [
    _sacct("ReqCPUS", BAD_COUNT + ["99999999999"]),
    _sacct("NNodes", BAD_COUNT),
    _sacct("Submit", BAD_TIMES_ISO),
    _sacct("Start", BAD_TIMES_ISO),
    _sacct("End", BAD_TIMES_ISO),
    _sacct("Elapsed", ["99999999-00:00:00", "-5", "x:y:z"]),
    _sacct("Timelimit", ["99999999-00:00:00", "1:2:3:4"]),
    _sacct("ExitCode", ["99999999999999999999:0", "1:300", "x:y", "-99999999999:0"]),
    _sacct("NodeList", ["n[0-1]" * 22, "n[5-1]", "n[1-", "n[0-99999999]"]),
    _sacct("ReqTRES", ["gres/gpu=99999999999999"]),
    _sacct("ReqMem", ["-5G", "1e400M", "99999999999999999999P", "lots"]),
]

GOOGLE_JOBS = FIXTURES / "google2011_jobs_excerpt.csv"
_G_FIELDS = GOOGLE_JOBS.read_text().splitlines()[0].split(",")
GOOGLE_JOB_TARGETS = [Target(f, BAD_NUMBER, sep_put(_G_FIELDS.index(f), ","))
                      for f in ("job_id", "user", "scheduling_class", "logical_job_name",
                                "submit_s", "schedule_s", "end_s", "n_schedule", "n_evict",
                                "n_fail", "n_kill", "n_lost", "missing_info")]
GOOGLE_JOB_TARGETS.append(Target("final_event", ["BOGUS", "fail"], sep_put(8, ",")))
GOOGLE_JOB_TARGETS[4].bad = BAD_NUMBER + ["1e15"]  # submit_s past now + 1 year

_T_FIELDS = ("timestamp_us", "missing_info", "job_id", "task_index", "machine_id",
             "event_type")
TASK_TARGETS = [Target(f, BAD_NUMBER, sep_put(_T_FIELDS.index(f), ","))
                for f in ("timestamp_us", "job_id", "task_index", "machine_id", "event_type")]
TASK_TARGETS[-1].bad = BAD_NUMBER + ["9", "2.5e10"]

SWF = FIXTURES / "RICC-2010-2_excerpt.swf"
_SWF_FIELDS = ("job", "submit", "wait", "run", "alloc_procs", "avg_cpu", "used_mem_kb",
               "req_procs", "req_time", "req_mem_kb", "status", "user", "group", "executable",
               "queue", "partition", "preceding_job", "think_time")
SWF_TARGETS = [Target(f, ["inf", "-inf", "nan", "1e400", "-5", "abc", "1e30"],
                      sep_put(i, " ")) for i, f in enumerate(_SWF_FIELDS)]

EAGLE = FIXTURES / "eagle_excerpt.csv"
_E_FIELDS = EAGLE.read_text().splitlines()[0].split(",")
BAD_TIMES_SQL = ["0001-01-01 00:00:00", "9999-01-01 00:00:00", "1969-12-31 23:59:59", "soon"]
EAGLE_TARGETS = [Target(f, BAD_COUNT + ["abc"], csv_put(_E_FIELDS.index(f)))
                 for f in ("wallclock_req", "nodes_req", "processors_req", "gpus_req", "mem_req",
                           "run_time")]
EAGLE_TARGETS += [Target(f, BAD_TIMES_SQL, csv_put(_E_FIELDS.index(f)))
                  for f in ("submit_time", "start_time", "end_time")]
EAGLE_TARGETS += [Target("name", ['"open quote', "nul\x00byte"], csv_put(_E_FIELDS.index("name"))),
                  Target("job_id", [" "], csv_put(0))]

LANL = FIXTURES / "lanl_excerpt.csv"
_L_FIELDS = LANL.read_text().splitlines()[0].split(",")
LANL_TARGETS = [Target(f, BAD_COUNT + ["abc"], csv_put(_L_FIELDS.index(f)))
                for f in ("System", "nodenum", "Down Time")]
LANL_TARGETS.append(Target("Prob Started", ["1/1/0001 0:00", "1/1/9999 0:00", "12/31/1969 23:59",
                                            "13/45/2005 10:54", "whenever"],
                           csv_put(_L_FIELDS.index("Prob Started"))))

FRESCO = FIXTURES / "fresco_stampede_excerpt.csv"
_F_FIELDS = FRESCO.read_text().splitlines()[0].split(",")
FRESCO_TARGETS = [Target(f, BAD_COUNT + ["abc"], csv_put(_F_FIELDS.index(f)))
                  for f in ("walltime", "nnodes", "ncpus")]
FRESCO_TARGETS += [Target(f, ["01/01/0001 00:00:00", "01/01/9999 00:00:00",
                              "12/31/1969 23:59:59", "someday"], csv_put(_F_FIELDS.index(f)))
                   for f in ("submit", "start", "end")]
FRESCO_TARGETS.append(Target("jobID", [" "], csv_put(0)))

# -- JSON formats -------------------------------------------------------------------------------
BAD_TEXT = ["a\u0000b", "\ud800", {"x": 1}, [1, 2]]
BAD_JSON_COUNT = [Raw("NaN"), Raw("Infinity"), Raw("1e400"), -1, 2**70, "abc", [1], {"a": 1}]
BAD_JSON_TIME = ["0001-01-01T00:00:00Z", "9999-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
                 "yesterday", Raw("NaN"), Raw("1e400"), 1e30, -5, {"t": 1}]
RUNAI_TARGETS = [
    Target("timestamp", BAD_JSON_TIME, path_put("timestamp")),
    Target("gpu_count", BAD_JSON_COUNT, path_put("gpu_count")),
    Target("exit_code", [2**70, Raw("1e400"), "x", 1.5, Raw("NaN")], path_put("exit_code")),
    Target("job_name", BAD_TEXT + ["x" * 2000], path_put("job_name")),
    Target("error_message", BAD_TEXT + ["y" * 70_000], path_put("error_message")),
    Target("node_name", BAD_TEXT, path_put("node_name")),
    Target("cpu_request", ["1e400", "-1", "abc", Raw("Infinity")], path_put("cpu_request")),
    Target("memory_request", ["-1Gi", "1e400", "lots"], path_put("memory_request")),
]
for _t in RUNAI_TARGETS:
    _t.applies = lambda rec: isinstance(rec, dict)


def _is_pod(o: Any) -> bool:
    return isinstance(o, dict) and o.get("kind") == "Pod"


def _has_status(o: Any) -> bool:
    return _is_pod(o) and bool((o.get("status") or {}).get("containerStatuses"))


POD_TARGETS = [
    Target("metadata.name", BAD_TEXT + [5, "n" * 2000], path_put("metadata", "name")),
    Target("metadata.namespace", BAD_TEXT, path_put("metadata", "namespace")),
    Target("metadata.creationTimestamp", BAD_JSON_TIME, path_put("metadata", "creationTimestamp")),
    Target("status.startTime", BAD_JSON_TIME, path_put("status", "startTime")),
    Target("restartCount", BAD_JSON_COUNT,
           path_put("status", "containerStatuses", 0, "restartCount"), _has_status),
    Target("state.terminated.exitCode", [2**70, Raw("1e400"), "x", Raw("NaN")],
           path_put("status", "containerStatuses", 0, "state", "terminated", "exitCode"),
           _has_status),
    Target("resources.requests.cpu", ["1e400", "-1", "abc", Raw("Infinity")],
           path_put("spec", "containers", 0, "resources", "requests", "cpu"), _is_pod),
    Target("resources.requests.memory", ["-1Gi", "1e400", "lots"],
           path_put("spec", "containers", 0, "resources", "requests", "memory"), _is_pod),
    Target("limits.nvidia.com/gpu", BAD_JSON_COUNT,
           path_put("spec", "containers", 0, "resources", "limits", "nvidia.com/gpu"), _is_pod),
    Target("spec.nodeName", BAD_TEXT, path_put("spec", "nodeName"), _is_pod),
]


def _warning(o: Any) -> bool:
    return isinstance(o, dict) and o.get("type") == "Warning"


EVENT_TARGETS = [
    Target("lastTimestamp", [t for t in BAD_JSON_TIME if t != "yesterday"],
           path_put("lastTimestamp"), _warning),
    Target("message", BAD_TEXT, path_put("message"), _warning),
    Target("count", BAD_JSON_COUNT, path_put("count"), _warning),
    Target("involvedObject.name", BAD_TEXT, path_put("involvedObject", "name"), _warning),
]


def formats() -> dict[str, tuple[Format, list[Target]]]:
    """name -> (format, checked fields), for every reader covered."""
    swf_lines = SWF.read_text().splitlines()
    n_head = next(i for i, ln in enumerate(swf_lines) if ln.strip() and not ln.startswith(";"))
    return {
        "slurm": (lines_format("slurm", SACCT, 1, 40, "sacct.txt"), SLURM_TARGETS),
        "google2011-jobs": (lines_format("google2011", GOOGLE_JOBS, 1, 40, "jobs.csv"),
                            GOOGLE_JOB_TARGETS),
        "google2011-tasks": (lines_format("google2011", FIXTURES /
                                          "google2011_task_events_excerpt.csv", 0, 40,
                                          "tasks.csv"), TASK_TARGETS),
        "swf": (lines_format("swf", SWF, n_head, 40, "RICC-x.swf"), SWF_TARGETS),
        "eagle": (lines_format("eagle", EAGLE, 1, 40, "eagle.csv"), EAGLE_TARGETS),
        "lanl": (lines_format("lanl", LANL, 1, 40, "lanl.csv"), LANL_TARGETS),
        "fresco": (lines_format("fresco", FRESCO, 1, 40, "fresco.csv"), FRESCO_TARGETS),
        "runai": (jsonl_format(FIXTURES / "runai_failures.jsonl", 40), RUNAI_TARGETS),
        "kubernetes-pods": (k8s_format(FIXTURES / "kubectl_pods.json", 10), POD_TARGETS),
        "kubernetes-events": (k8s_format(FIXTURES / "kubectl_events.json", 10), EVENT_TARGETS),
    }
