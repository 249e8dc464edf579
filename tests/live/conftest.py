"""The live tests' fixtures: the real single-node Slurm testbed (scripts/slurm-testbed).

`slurm_testbed` starts it (installing the Debian packages when missing) for a module, or
skips every `slurm`-marked test with the reason: not root, the packages cannot be installed,
or SLURM_TESTBED=0 in the environment.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm-testbed"


LOCK = Path("/run/slurm-testbed.tests.lock")
LOCK_WAIT_S = 900  # another session's slurm tests take about 3 minutes


def _exclusive(lock_file) -> bool:
    """Hold the testbed alone: another test session on this machine (its NODE_FAIL step takes
    the only node down) waits instead of killing our jobs."""
    import fcntl
    import time

    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(1)


@pytest.fixture(scope="module")
def slurm_testbed():
    """The testbed, held alone for one test module (the lock is released when the module's
    tests are done, not at the end of the whole session)."""
    if os.environ.get("SLURM_TESTBED", "1") == "0":
        pytest.skip("SLURM_TESTBED=0: the Slurm testbed is switched off")
    if os.geteuid() != 0:
        pytest.skip("the Slurm testbed needs root (scripts/slurm-testbed start installs and "
                    "starts slurmctld, slurmd, slurmdbd, MariaDB and munge)")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        pytest.skip("no slurmctld and no apt-get to install it")
    with open(LOCK, "w") as lock:
        if not _exclusive(lock):
            pytest.skip(f"the Slurm testbed stayed busy (another test session) for {LOCK_WAIT_S}s")
        proc = subprocess.run([str(SCRIPT), "start"], check=False, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode == 4:  # installed, but a daemon or the start lock failed: a defect
            pytest.fail(f"scripts/slurm-testbed start failed: {proc.stderr.strip()[-400:]}")
        if proc.returncode != 0:
            pytest.skip(f"scripts/slurm-testbed start failed ({proc.returncode}): "
                        f"{proc.stderr.strip()[-400:]}")
        node = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True,
                              text=True, check=True).stdout.split()[0]
        yield {"cluster": "testbed", "account": "physics", "node": node}
