"""The scripted demo conversation: questions a cluster user or admin would ask, each aimed at
one of the simulated mechanisms (the ids come from the simulation, so they exist)."""
from __future__ import annotations

from typing import Any


def questions(truth: dict[str, Any]) -> list[str]:
    """The questions, in order (follow-ups rely on the ones before)."""
    qs = [
        "What has been failing in the last 7 days?",
        f"Anything wrong with node {truth['failing_node']} in the last 7 days?",
        f"How do I fix OOM in {truth['oom_project']}?",
    ]
    if truth.get("oom_job"):
        qs.append(f"Why did job {truth['oom_job']} fail?")
    qs += [
        "what is failing in research in the last 7 days?",
        'Back-off pulling image "registry.example.com/ml/trainer:v2.4.0-rc1"',
        "Will a 4-GPU job with 64G for 6 hours on the gpu partition fail for alice in ml-team?",
    ]
    if truth.get("oom_job"):
        qs.append(f"Doubling the memory fixed job {truth['oom_job']}")
    return qs
