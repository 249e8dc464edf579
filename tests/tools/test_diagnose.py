"""diagnose on real error texts: type, blame, the exact evidence line and the root cause;
a job from the store; bad input (empty, 1 MB, unknown job)."""
from __future__ import annotations

import json

import pytest

from jobmedic.tools import run_action
from tests.conftest import FIXTURES
from tests.knowledge.remedy_history import job

D = FIXTURES / "diagnose"

CASES = [
    # (text or fixture file, type, blame, an exact evidence line, root-cause phrase part)
    ("slurm_oom.txt", "oom", "job",
     ("slurmstepd: error: Detected 1 oom_kill event in StepId=4242.batch. Some of the step tasks "
     "have been OOM Killed."), "MaxRSS 7.90G reached 99% of the 8G requested"),
    (("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB "
     "total capacity; 76.80 GiB already allocated; 1.12 GiB free; 77.20 GiB reserved in total by "
     "PyTorch)"), "oom", "job", None, "tried to allocate 2.00 GiB on GPU 0 (79.15 GiB total)"),
    (("[rank3]:[E ProcessGroupNCCL.cpp:563] [Rank 3] Watchdog caught collective operation timeout: "
     "WorkNCCL(SeqNum=48213, OpType=ALLREDUCE, NumelIn=262144, NumelOut=262144, Timeout(ms)=600000)"
     " ran for 600047 milliseconds before timing out.\n[rank3]:[E ProcessGroupNCCL.cpp:1537] "
     "[PG 0 Rank 3] Timeout at NCCL work: 48213"), "nccl_error", "unclear", None,
     "NCCL ALLREDUCE timed out after 600 s on rank 3"),
    (("[Tue May 14 03:12:44 2024] NVRM: Xid (PCI:0000:3b:00): 79, pid=2211, name=python, GPU has "
     "fallen off the bus.\n[Tue May 14 03:12:44 2024] NVRM: GPU 0000:3b:00.0: GPU has fallen off "
     "the bus."), "gpu_error", "cluster",
     ("[Tue May 14 03:12:44 2024] NVRM: Xid (PCI:0000:3b:00): 79, pid=2211, name=python, GPU has "
     "fallen off the bus."), "Xid 79 on PCI:0000:3b:00: GPU has fallen off the bus"),
    (("Traceback (most recent call last):\n  File \"train.py\", line 3, in <module>\n    import "
     "transformers\nModuleNotFoundError: No module named 'transformers'"), "dependency_error", "job",
     "ModuleNotFoundError: No module named 'transformers'", "missing Python module 'transformers'"),
    ("ImportError: libcudnn.so.8: cannot open shared object file: No such file or directory",
     "dependency_error", "job",
     "ImportError: libcudnn.so.8: cannot open shared object file: No such file or directory",
     "missing shared library libcudnn.so.8"),
    (("Saving checkpoint to /home/ann/ckpt/step_9000.pt\nOSError: [Errno 122] Disk quota exceeded: "
     "'/home/ann/ckpt/step_9000.pt'"), "disk_quota", "job",
     "OSError: [Errno 122] Disk quota exceeded: '/home/ann/ckpt/step_9000.pt'",
     "disk quota exceeded writing /home/ann/ckpt/step_9000.pt"),
    ("k8s_oomkilled.txt", "oom", "job", "Reason:       OOMKilled",
     "container exceeded its memory limit of 2Gi"),
    ("k8s_crashloop_env.txt", "config_error", "job", "Error: DEPLOY_ENV is not set",
     "missing environment variable DEPLOY_ENV"),
    ("k8s_crashloop_command.txt", "config_error", "job",
     ("Message:      failed to create containerd task: failed to create shim task: OCI runtime "
     "create failed: runc create failed: unable to start container process: exec: \"pythn\": "
     "executable file not found in $PATH: unknown"), "missing command 'pythn'"),
    ("k8s_imagepull.txt", "image_pull", "job",
     'Normal   BackOff    22s (x6 over 2m)   kubelet            Back-off pulling image "repo/app:latest"',
     "image repo/app:latest: the image or tag does not exist"),
    ("k8s_pending_selector.txt", "scheduling", "unclear",
     ("Warning  FailedScheduling  3m (x12 over 58m)  default-scheduler  0/6 nodes are available: 6 "
     "node(s) didn't match Pod's node affinity/selector. preemption: 0/6 nodes are available: 6 "
     "Preemption is not helpful for scheduling."),
     "no node matches nodeSelector accelerator=nvidia-a100-80gb"),
    ("k8s_pending_gpus.txt", "scheduling", "unclear",
     ("Warning  FailedScheduling  41s (x9 over 12m)   default-scheduler  0/4 nodes are available: 4 "
     "Insufficient nvidia.com/gpu. preemption: 0/4 nodes are available: 4 No preemption victims "
     "found for incoming pod."), "insufficient nvidia.com/gpu: 4 node(s) lack it (the pod asks for 8)"),
    ("k8s_job_db.txt", "network_error", "unclear",
     "psycopg2.OperationalError: could not connect to server: Connection refused",
     "cannot reach postgres.data.svc.cluster.local:5432"),
]


def _text(src: str) -> str:
    return (D / src).read_text(encoding="utf-8") if src.endswith(".txt") else src


@pytest.mark.parametrize("src,ftype,blame,line,cause", CASES, ids=[c[0][:30] for c in CASES])
def test_diagnose_real_texts(tctx, src, ftype, blame, line, cause):
    r = run_action({"action": "diagnose", "text": _text(src)}, tctx)
    assert r.status == "ok", r.error
    d = r.data
    assert (d["failure_type"], d["blame"]) == (ftype, blame), d["evidence"]
    if line:
        assert line in d["evidence"], d["evidence"]
    assert d["root_cause"] and cause in d["root_cause"]["phrase"], d["root_cause"]
    assert d["fixes"] and all(f["id"].startswith(ftype + ".") for f in d["fixes"])
    assert cause in r.text


def test_crash_loop_is_reported_as_symptom(tctx):
    d = run_action({"action": "diagnose", "text": _text("k8s_crashloop_env.txt")}, tctx).data
    assert d["symptom"] == "crash_loop"
    assert d["evidence"][0] == "Error: DEPLOY_ENV is not set"
    assert d["platform"] == "kubernetes"
    assert d["fixes"][0]["id"] == "config_error.set_env"


def test_empty_text_is_a_clear_error(tctx):
    r = run_action({"action": "diagnose", "text": "   "}, tctx)
    assert r.status == "error" and r.error.field == "text" and "empty" in r.error.message


def test_megabyte_text_is_truncated_and_says_so(tctx):
    noise = ("INFO step 123 loss 0.4321 lr 0.0001\n" * 30_000)
    text = noise + "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB\n"
    assert len(text) > 1_000_000
    r = run_action({"action": "diagnose", "text": text}, tctx)
    assert r.status == "ok" and r.data["failure_type"] == "oom"
    assert any("only the first and the last" in n for n in r.data["notes"])
    assert "only the first and the last" in r.text
    assert all(len(e) <= 400 for e in r.data["evidence"])


def test_text_without_known_pattern(tctx):
    r = run_action({"action": "diagnose", "text": "everything is fine, nothing to see"}, tctx)
    assert r.status == "ok" and r.data["failure_type"] == "unknown"
    assert r.data["blame"] == "unclear" and r.data["notes"]


def test_unknown_job_names_it(tctx):
    r = run_action({"action": "diagnose", "job_id": "nope-42"}, tctx)
    assert r.status == "error" and r.error.type == "not_found" and "nope-42" in r.error.message


def test_job_from_store_with_fitted_fix_and_similar(tctx, store):
    store.upsert_jobs([
        job(job_id="4242", user="ann", name="train", project="ml", state="oom",
            raw_state="OUT_OF_MEMORY", exit_code=0, submit_time=100, end_time=200,
            req_mem_mb=8192, max_rss_mb=8090),
        job(job_id="4100", user="bob", name="prep", project="ml", state="oom",
            raw_state="OUT_OF_MEMORY", submit_time=50, end_time=90, req_mem_mb=4096),
        job(job_id="9", user="eve", name="x", project="secret", state="oom",
            raw_state="OUT_OF_MEMORY", submit_time=50, end_time=90, req_mem_mb=4096),
    ])
    store.add_job_nodes([("c1", "4242", "cn01"), ("c1", "4100", "cn01")])
    from jobmedic.ingest.base import event_tuple
    store.add_failure_events([
        event_tuple({"cluster": "c1", "job_id": j, "project": p, "failure_type": "oom",
                     "blame": "job", "timestamp": 90, "node_name": "cn01", "source": "slurm",
                     "resolved": 0}, f"job:c1:{j}") for j, p in (("4100", "ml"), ("9", "secret"))])
    r = run_action({"action": "diagnose", "job_id": "4242", "allowed_projects": ["ml"]}, tctx)
    assert r.status == "ok", r.error
    d = r.data
    assert d["failure_type"] == "oom" and d["evidence"][0].startswith("state OUT_OF_MEMORY")
    assert "MaxRSS 7.9G reached 99% of the 8G requested" in d["root_cause"]["phrase"]
    fitted = d["fixes"][0]["fitted"]
    assert fitted["summary"] == "raise --mem from 8G to 16G: its MaxRSS reached 7.9G of 8G"
    assert [s["job_id"] for s in d["similar"]] == ["4100"]  # never the other project's job
    assert "secret" not in json.dumps(r.model_dump())
    # the other project's job is invisible to this caller
    r = run_action({"action": "diagnose", "job_id": "9", "allowed_projects": ["ml"]}, tctx)
    assert r.status == "error" and r.error.type == "not_found"


def test_cli_diagnose_text_file_and_stdin(tmp_path):
    from typer.testing import CliRunner

    from jobmedic.cli import app

    db = str(tmp_path / "jm.db")
    run = CliRunner().invoke
    res = run(app, ["--db", db, "diagnose", "--text", ("NVRM: Xid (PCI:0000:3b:00): 79, GPU has "
                    "fallen off the bus."), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)["data"]
    assert (d["failure_type"], d["blame"]) == ("gpu_error", "cluster")
    res = run(app, ["--db", db, "diagnose-file", str(D / "k8s_imagepull.txt")])
    assert res.exit_code == 0 and "image repo/app:latest" in res.stdout
    res = run(app, ["--db", db, "diagnose-file", "-"], input=_text("k8s_crashloop_env.txt"))
    assert res.exit_code == 0 and "DEPLOY_ENV" in res.stdout
    res = run(app, ["--db", db, "diagnose-file", str(tmp_path / "missing.txt")])
    assert res.exit_code == 2 and "cannot read" in res.output
    res = run(app, ["--db", db, "act", '{"action": "diagnose", "text": ""}'])
    assert res.exit_code == 2 and '"field": "text"' in res.stdout
