"""The live tests' fixtures: the real single-node Slurm testbed (scripts/slurm-testbed).

`slurm_testbed` starts it (installing the Debian packages when missing) once per session, or
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


@pytest.fixture(scope="session")
def slurm_testbed() -> dict:
    if os.environ.get("SLURM_TESTBED", "1") == "0":
        pytest.skip("SLURM_TESTBED=0: the Slurm testbed is switched off")
    if os.geteuid() != 0:
        pytest.skip("the Slurm testbed needs root (scripts/slurm-testbed start installs and "
                    "starts slurmctld, slurmd, slurmdbd, MariaDB and munge)")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        pytest.skip("no slurmctld and no apt-get to install it")
    proc = subprocess.run([str(SCRIPT), "start"], check=False, capture_output=True,
                          text=True, timeout=900)
    if proc.returncode != 0:
        pytest.skip(f"scripts/slurm-testbed start failed ({proc.returncode}): "
                    f"{proc.stderr.strip()[-400:]}")
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True,
                          check=True).stdout.split()[0]
    return {"cluster": "testbed", "account": "physics", "node": node}
