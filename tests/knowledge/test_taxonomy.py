"""The classifier on messages users really see, scheduler states, exit codes, and real logs."""
from __future__ import annotations

import csv

import pytest

CASES = [
    # (state, exit_code, signal, text, expected code, expected blame, evidence substring)
    ("OUT_OF_MEMORY", 0, 0, None, "oom", "job", None),
    ("FAILED", 1, 0, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "oom", "job", "CUDA out of memory"),
    ("OOMKilled", 137, None, None, "oom", "job", None),
    (None, None, None, "slurmstepd: error: Detected 1 oom_kill event in StepId=123.batch. Some of the step tasks have been OOM Killed.", "oom", "job", "oom_kill"),
    ("FAILED", 1, 0, "[Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1, OpType=ALLREDUCE) ran for 600000 milliseconds before timing out.", "nccl_error", "unclear", "Watchdog"),
    (None, None, None, "NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1269, unhandled system error", "nccl_error", "unclear", "NCCL error"),
    (None, None, None, "NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, GPU has fallen off the bus.", "gpu_error", "cluster", "Xid"),
    (None, None, None, "kernel: NVRM: Xid (PCI:0000:86:00): 48, An uncorrectable double bit error (DBE) has been detected", "gpu_error", "cluster", "Xid"),
    ("FAILED", 1, 0, "ModuleNotFoundError: No module named 'transformers'", "dependency_error", "job", "ModuleNotFoundError"),
    (None, None, None, "ImportError: libcudnn.so.8: cannot open shared object file: No such file or directory", "dependency_error", "job", "libcudnn"),
    (None, None, None, "OSError: [Errno 122] Disk quota exceeded: '/home/u/out.ckpt'", "disk_quota", "job", "Disk quota"),
    (None, None, None, "cp: cannot create regular file '/scratch/x': No space left on device", "disk_quota", "job", "No space left"),
    (None, None, None, "ls: cannot access '/lustre/proj/data': Stale file handle", "filesystem_error", "cluster", "Stale file handle"),
    ("FAILED", 0, 11, "/var/spool/slurmd/job123/slurm_script: line 9: 4242 Segmentation fault (core dumped) ./a.out", "segfault", "job", "Segmentation fault"),
    ("FAILED", 139, None, None, "segfault", "job", None),
    ("ImagePullBackOff", None, None, 'Back-off pulling image "registry.example.com/team/app:v2.1"', "image_pull", "job", None),
    (None, None, None, 'Failed to pull image "repo/app:latest": rpc error: code = NotFound desc = manifest unknown', "image_pull", "job", "Failed to pull image"),
    ("CrashLoopBackOff", None, None, "Back-off restarting failed container", "crash_loop", "job", None),
    ("CreateContainerConfigError", None, None, 'Error: secret "db-credentials" not found', "config_error", "job", None),
    (None, None, None, '0/8 nodes are available: 8 Insufficient nvidia.com/gpu. preemption: 0/8 nodes are available', "scheduling", "unclear", "Insufficient nvidia.com/gpu"),
    ("FailedScheduling", None, None, "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector.", "scheduling", "unclear", None),
    ("TIMEOUT", 0, 0, None, "timeout", "job", None),
    (None, None, None, "slurmstepd: error: *** JOB 4242 ON cn12 CANCELLED AT 2024-05-01T10:00:00 DUE TO TIME LIMIT ***", "timeout", "job", "TIME LIMIT"),
    ("NODE_FAIL", 0, 0, None, "node_failure", "cluster", None),
    ("BOOT_FAIL", 0, 0, None, "node_failure", "cluster", None),
    ("PREEMPTED", 0, 0, None, "preempted", "cluster", None),
    ("Evicted", None, None, "The node was low on resource: memory.", "preempted", "cluster", None),
    ("CANCELLED by 1234", 0, 15, None, "cancelled", "job", None),
    ("DeadlineExceeded", None, None, "Job was active longer than specified deadline", "timeout", "job", None),
    (None, None, None, "psycopg2.OperationalError: could not connect to server: Connection refused\n\tIs the server running on host \"db\" (10.0.0.5) and accepting TCP/IP connections on port 5432?", "network_error", "unclear", "Connection refused"),
    (None, None, None, "PermissionError: [Errno 13] Permission denied: '/data/shared/model.pt'", "permission_denied", "job", "Permission denied"),
    ("FAILED", 1, 0, None, "app_error", "job", None),
    ("FAILED", 2, 0, "some unexplained message", "app_error", "job", None),
    (None, None, None, "nothing to see", "unknown", "unclear", None),
    (None, 127, None, None, "dependency_error", "job", None),
]


@pytest.mark.parametrize("state,exit_code,signal,text,code,blame,evidence", CASES)
def test_classify(taxonomy, state, exit_code, signal, text, code, blame, evidence):
    c = taxonomy.classify(state, exit_code, signal, text)
    assert (c.failure_type, c.blame) == (code, blame), c
    if evidence:
        assert evidence in (c.evidence or "")


def test_every_code_has_a_blame_and_description(taxonomy):
    expected = {"oom", "timeout", "node_failure", "gpu_error", "nccl_error", "image_pull",
                "crash_loop", "config_error", "dependency_error", "permission_denied",
                "disk_quota", "filesystem_error", "network_error", "segfault", "preempted",
                "cancelled", "scheduling", "app_error", "unknown"}
    assert set(taxonomy.codes) == expected
    assert all(c.description for c in taxonomy.codes.values())


@pytest.mark.parametrize("raw,state", [
    ("CANCELLED by 1300204", "cancelled"), ("OUT_OF_MEMORY", "oom"), ("NODE_FAIL", "node_fail"),
    ("BOOT_FAIL", "node_fail"), ("DEADLINE", "timeout"), ("PREEMPTED", "preempted"),
    ("COMPLETED", "completed"), ("FAILED", "failed"), ("RUNNING", "running"),
    ("PENDING", "pending"), ("SOMETHING_NEW", "unknown"), ("", "unknown"), ("TIMEOUT", "timeout"),
])
def test_normalise_state(taxonomy, raw, state):
    assert taxonomy.normalise_state(raw) == state


def test_unknown_code_names_closest(taxonomy):
    from jobmedic.knowledge.errors import UnknownFailureType

    with pytest.raises(UnknownFailureType) as ei:
        taxonomy.check_code("oomm")
    assert "oom" in ei.value.closest


@pytest.mark.realdata
def test_loghub_hpc_and_bgl_lines(taxonomy, shared_data):
    """Real HPC (LANL) and BGL lines: hardware and file-system faults land on cluster codes."""
    counts: dict[str, int] = {}
    with open(shared_data / "loghub/HPC/HPC_2k.log_structured.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            c = taxonomy.classify(text=row["Content"])
            counts[c.failure_type] = counts.get(c.failure_type, 0) + 1
            if "Component State Change" in row["Content"] and "unavailable" in row["Content"]:
                assert c.blame == "cluster"
    assert counts.get("filesystem_error", 0) + counts.get("node_failure", 0) > 0
    bgl_fatal = 0
    with open(shared_data / "loghub/BGL/BGL_2k.log_structured.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            c = taxonomy.classify(text=row["Content"])
            if row["Level"] == "FATAL" and c.failure_type != "unknown":
                bgl_fatal += 1
    assert bgl_fatal > 0


@pytest.mark.realdata
def test_drain_templates_on_loghub(shared_data, store):
    """Lines that loghub's own ground truth puts in one template share one template id."""
    from jobmedic.knowledge.templates import Templates

    t = Templates()
    by_truth: dict[str, set[int]] = {}
    with open(shared_data / "loghub/HPC/HPC_2k.log_structured.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            tid = t.add(row["Content"])
            by_truth.setdefault(row["EventId"], set()).add(tid)
    # Most ground-truth templates map to a single mined id.
    pure = sum(1 for ids in by_truth.values() if len(ids) == 1)
    assert pure / len(by_truth) >= 0.7, (pure, len(by_truth))
    n_mined = len({tid for ids in by_truth.values() for tid in ids})
    assert n_mined < 2000 / 10
    # Ids survive a restart: re-seeding from the store reproduces them.
    store.save_templates(t.drain_pending())
    t2 = Templates(store.load_templates())
    line = "Component State Change: Component \\042alt0\\042 is in the unavailable state (HWID=3180)"
    assert t2.template_of(line)[0] == t.template_of(line)[0]
