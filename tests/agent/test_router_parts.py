"""The router's parts, table-driven: time phrases, sizes, failure-type synonyms, names."""
from __future__ import annotations

import pytest

from jobmedic.agent.router import sizes
from jobmedic.agent.router.extract import failure_type_of, group_by_of, outcome_of
from jobmedic.agent.router.intents import is_garbage, pasted_text
from jobmedic.agent.router.times import parse_time
from jobmedic.agent.router.vocabulary import Vocabulary, norm
from tests.agent.conftest import NOW  # 2024-05-03 12:00 UTC, a Friday


@pytest.mark.parametrize("text,days,as_of", [
    ("last 7 days", 7, None), ("past 3 weeks", 21, None), ("last 6 hours", 0.25, None),
    ("in the last 48h", 2, None), ("last month", 30, None), ("past fortnight", 14, None),
    ("last two days", 2, None), ("the past couple of weeks", 14, None), ("last week", 7, None),
    ("today", 0.5, None), ("yesterday", 1, "2024-05-03"), ("this week", 4.5, None),
    ("this month", 2.5, None), ("since 2024-05-01", 2.5, None), ("since monday", 4.5, None),
    ("since may 1st", 2.5, None), ("on 2024-05-01", 1, "2024-05-02"), ("in april", 30, "2024-05-01"),
    ("between 2024-04-20 and 2024-04-30", 11, "2024-05-01"), ("3 days ago", 3, None),
    ("last quarter", 91, None), ("2wks", 14, None),
])
def test_time_phrases(text, days, as_of):
    spec = parse_time(text, NOW)
    assert spec is not None, text
    assert spec.lookback_days == pytest.approx(days)
    assert spec.as_of == as_of


@pytest.mark.parametrize("text", ["how do I fix OOM", "job 2001", "what is failing", "64G", ""])
def test_no_time_phrase(text):
    assert parse_time(text.lower(), NOW) is None


@pytest.mark.parametrize("text,mem,gpus,cpus,nodes,wall", [
    ("a 4-GPU job with 64G", 65536, 4, None, None, None),
    ("512Mi and 1 cpu", 512, None, 1, None, None),
    ("1.5T on 2 nodes for 8 hours", 1572864, None, None, 2, 28800),
    ("16 cores, 64 gigs of ram, 8x a100", 65536, 8, 16, None, None),
    ("--mem=200G --time=2-00:00:00", 204800, None, None, None, 172800),
    ("--gres=gpu:a100:2 for 90 min", None, 2, None, None, 5400),
    ("4000M", 4000, None, None, None, None),
])
def test_sizes(text, mem, gpus, cpus, nodes, wall):
    assert sizes.memory_mb(text) == mem
    assert sizes.gpus(text.lower()) == gpus
    assert sizes.cpus(text.lower()) == cpus
    assert sizes.nodes(text.lower()) == nodes
    assert sizes.walltime_s(text) == wall


@pytest.mark.parametrize("text,code", [
    ("OOM", "oom"), ("out of memory", "oom"), ("OOMKilled", "oom"), ("CUDA OOM", "oom"),
    ("ran out of RAM", "oom"), ("exit code 137", "oom"), ("hit the time limit", "timeout"),
    ("timed out", "timeout"), ("walltime", "timeout"), ("NODE_FAIL", "node_failure"),
    ("node died", "node_failure"), ("Xid 79", "gpu_error"), ("NCCL timeout", "nccl_error"),
    ("ImagePullBackOff", "image_pull"), ("CrashLoopBackOff", "crash_loop"),
    ("missing secret", "config_error"), ("ModuleNotFoundError", "dependency_error"),
    ("permission denied", "permission_denied"), ("disk quota", "disk_quota"),
    ("stale file handle", "filesystem_error"), ("connection refused", "network_error"),
    ("segfault", "segfault"), ("preempted", "preempted"), ("scancel'd", "cancelled"),
    ("unschedulable", "scheduling"), ("non-zero exit", "app_error"),
])
def test_failure_synonyms(text, code, taxonomy):
    assert code in taxonomy.codes
    assert failure_type_of(text.lower())[0] == code


def test_no_failure_type_in_plain_words():
    for text in ("how much memory does md-sim need", "analyze ml-team", "will it fail"):
        assert failure_type_of(text)[0] is None, text


@pytest.mark.parametrize("text,success", [
    ("doubling the memory fixed it", True), ("that worked", True), ("solved it", True),
    ("didn't help", False), ("did not work", False), ("still failing", False),
    ("no luck", False), ("how do I fix it", None),
])
def test_fix_outcome(text, success):
    assert outcome_of(text) is success


@pytest.mark.parametrize("text,dims", [
    ("by node", ["node"]), ("per user per day", ["user", "day"]), ("top failing nodes", ["node"]),
    ("grouped by queue and user", ["queue", "user"]), ("daily", ["day"]),
    ("most common failure reasons", ["failure_type"]), ("breakdown of failure types", ["failure_type"]),
])
def test_group_by(text, dims):
    assert group_by_of(text) == dims


def test_vocabulary_resolution():
    v = Vocabulary({"project": ["ml-team", "ml-infra", "research"], "node": ["gpu01", "a100-01", "a100-02"],
                    "image": ["nvcr.io/nvidia/pytorch:24.01-py3"], "user": [], "queue": ["gpu"],
                    "cluster": []})
    assert norm("GPU-1") == norm("gpu01") == "gpu1"
    assert v.exact("GPU01")[0].name == "gpu01"
    assert v.exact("gpu1")[0].how == "norm"
    assert v.exact("a100-1")[0].name == "a100-01"
    assert [m.name for m in v.fuzzy("reserch")] == ["research"]
    assert [m.name for m in v.fuzzy("pytorch")] == ["nvcr.io/nvidia/pytorch:24.01-py3"]
    assert {m.name for m in v.fuzzy("ml", min_prefix=2)} == {"ml-team", "ml-infra"}
    assert v.fuzzy("zzz") == []
    assert v.closest("ml-teem", ("project",))[0] == "ml-team"


def test_vocabulary_is_cached_with_a_data_stamp(agent_store):
    v1 = Vocabulary.from_store(agent_store, None)
    stamp = agent_store.data_stamp()
    assert agent_store.cache_get("vocab:*", stamp) is not None
    v2 = Vocabulary.from_store(agent_store, ["bio"])
    assert v2.names["project"] == ["bio"] and len(v1.names["project"]) > 1
    agent_store.upsert_jobs([("default", "9999", "zoe", "newproj", "completed", "slurm")],
                            columns=("cluster", "job_id", "user", "project", "state", "source"))
    assert agent_store.data_stamp() != stamp
    assert "newproj" in Vocabulary.from_store(agent_store, None).names["project"]


@pytest.mark.parametrize("text,reason", [
    ("", "empty"), ("   \n ", "empty"), ("\x00\x01\x02\x03\x04 binary \x05\x06", "binary"),
    ("为什么我的作业失败了", "language"), ("Почему моя задача упала?", "language"),
    ("why did job 1 fail", None),
])
def test_garbage(text, reason):
    assert is_garbage(text) == reason


def test_pasted_text():
    log = "what is this:\nTraceback (most recent call last):\n  File \"a.py\", line 1\nRuntimeError: x"
    assert pasted_text(log).startswith("Traceback")
    assert pasted_text("slurmstepd: error: Detected 1 oom-kill event(s) in StepId=1.batch")
    assert pasted_text("number of OOMKilled pods in research") is None
    assert pasted_text("ModuleNotFoundError fix?") is None
