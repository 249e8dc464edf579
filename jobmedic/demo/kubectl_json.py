"""A simulated Kubernetes GPU cluster written as `kubectl get pods -A -o json` prints it.

Planted mechanisms: a bad image tag (`trainer:v2.4.0-rc1`, pushed in the last five days, never
pullable: ErrImagePull / ImagePullBackOff), OOMKilled training pods in one namespace whose
memory limit is too small, and a CrashLoopBackOff from a missing environment variable. The
rest succeed or are still running. Run:AI projects appear as the `project` label.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

DAY = 86400
REGISTRY = "registry.example.com/ml"
GOOD_IMAGES = [f"{REGISTRY}/trainer:v2.3.1", f"{REGISTRY}/serve:1.8.0", f"{REGISTRY}/eval:0.9.2"]
BAD_IMAGE = f"{REGISTRY}/trainer:v2.4.0-rc1"
NAMESPACES = {"ml-serving": ["serve", "eval"], "research": ["trainer", "eval"],
              "vision": ["trainer"]}
NODES = [f"k8s-gpu-{i:02d}" for i in range(1, 9)]


def _ts(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def simulate_pods(anchor: int, days: int = 21, seed: int = 7, pods_per_day: int = 80
                  ) -> list[dict[str, Any]]:
    """Pod objects created over `days` days ending at `anchor`."""
    rng = np.random.default_rng(seed + 1)
    start = anchor - days * DAY
    bad_from = anchor - 5 * DAY
    pods = []
    for i in range(int(days * pods_per_day)):
        created = int(start + rng.integers(0, days * DAY))
        ns = list(NAMESPACES)[rng.integers(len(NAMESPACES))]
        kind = NAMESPACES[ns][rng.integers(len(NAMESPACES[ns]))]
        image = next(g for g in GOOD_IMAGES if f"/{kind}:" in g)
        if kind == "trainer" and created >= bad_from and rng.random() < 0.6:
            image = BAD_IMAGE
        pods.append(_pod(rng, i, ns, kind, image, created, anchor))
    pods.sort(key=lambda p: p["metadata"]["creationTimestamp"])
    return pods


def _pod(rng: np.random.Generator, i: int, ns: str, kind: str, image: str, created: int,
         anchor: int) -> dict[str, Any]:
    gpus = int(rng.choice([1, 2, 4])) if kind == "trainer" else int(rng.choice([0, 1]))
    mem_gi = int(rng.choice([8, 16, 32]))
    name = f"{kind}-{ns}-{i:05d}-{''.join(rng.choice(list('abcdefghjkmnpqrstvwxz0123456789'), 5))}"
    node = NODES[rng.integers(len(NODES))]
    started = created + int(rng.integers(5, 120))
    phase, state, last, restarts = "Succeeded", None, None, 0
    runtime = int(rng.lognormal(np.log(2 * 3600), 0.7))
    u = rng.random()
    if image.endswith("-rc1"):
        phase = "Pending"
        reason = "ImagePullBackOff" if rng.random() < 0.7 else "ErrImagePull"
        state = {"waiting": {"reason": reason, "message": f'Back-off pulling image "{image}"'
                             if reason == "ImagePullBackOff" else
                             f'rpc error: code = NotFound desc = failed to pull and unpack image '
                             f'"{image}": not found'}}
    elif ns == "research" and kind == "trainer" and u < 0.3:
        phase, restarts = "Failed", int(rng.integers(0, 3))
        mem_gi = 16
        state = {"terminated": {"reason": "OOMKilled", "exitCode": 137, "startedAt": _ts(started),
                                "finishedAt": _ts(started + runtime // 4)}}
    elif ns == "ml-serving" and u < 0.06:
        phase, restarts = "Running", int(rng.integers(5, 40))
        state = {"waiting": {"reason": "CrashLoopBackOff",
                             "message": "back-off 5m0s restarting failed container"}}
        last = {"terminated": {"reason": "Error", "exitCode": 1, "startedAt": _ts(started),
                               "finishedAt": _ts(started + 3),
                               "message": "Error: MODEL_BUCKET is not set"}}
    elif u < 0.1:
        phase = "Failed"
        state = {"terminated": {"reason": "Error", "exitCode": 1, "startedAt": _ts(started),
                                "finishedAt": _ts(started + runtime // 2)}}
    elif started + runtime > anchor:
        phase, state = "Running", {"running": {"startedAt": _ts(started)}}
    else:
        state = {"terminated": {"reason": "Completed", "exitCode": 0, "startedAt": _ts(started),
                                "finishedAt": _ts(started + runtime)}}
    requests = {"cpu": str(int(rng.choice([2, 4, 8]))), "memory": f"{mem_gi}Gi"}
    if gpus:
        requests["nvidia.com/gpu"] = str(gpus)
    container = {"name": kind, "image": image,
                 "resources": {"requests": dict(requests), "limits": dict(requests)}}
    cstatus = {"name": kind, "image": image, "imageID": "", "ready": phase == "Running",
               "restartCount": restarts, "started": phase == "Running", "state": state,
               "lastState": last or {}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{i:08d}",
                     "creationTimestamp": _ts(created),
                     "labels": {"app": kind, "project": ns, "user": f"{ns}-bot"}},
        "spec": {"nodeName": node, "restartPolicy": "Never",
                 "containers": [container]},
        "status": {"phase": phase, "startTime": _ts(started), "hostIP": "10.0.0.1",
                   "containerStatuses": [cstatus]},
    }


def write_pods(pods: list[dict[str, Any]], path: str | Path) -> int:
    """Write the pods as a kubectl List object; returns the number of pods."""
    doc = {"apiVersion": "v1", "kind": "List", "items": pods,
           "metadata": {"resourceVersion": ""}}
    Path(path).write_text(json.dumps(doc, indent=4), encoding="utf-8")
    return len(pods)
