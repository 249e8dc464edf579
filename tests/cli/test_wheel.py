"""A regular install works anywhere: build the wheel from a copy of the source, install it into
a folder of its own, and run jobmedic from there with the source tree out of reach - `db info`,
the actions that read the packaged configuration (remediate, diagnose, stats) and the demo.
(About a minute: it builds a wheel and runs the demo without training.)"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The folder the wheel was installed into (pip install --target)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "jobmedic", src / "jobmedic",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = work / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(src)], check=True, capture_output=True, cwd=work)
    (wheel,) = dist.glob("jobmedic-*.whl")
    target = work / "target"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, cwd=work)
    return target


def _run(installed: Path, cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -S` (no site: the editable install's finder is never loaded) with the installed
    wheel first on the path and the environment's site-packages after it for dependencies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMEDIC_", "PYTHON"))}
    env["PYTHONPATH"] = os.pathsep.join([str(installed), sysconfig.get_paths()["purelib"],
                                         sysconfig.get_paths()["platlib"]])
    env["XDG_CONFIG_HOME"] = str(cwd / "xdg")
    return subprocess.run([sys.executable, "-S", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout, check=False)


def test_the_installed_wheel_runs_outside_the_tree(installed, tmp_path):
    where = _run(installed, tmp_path, "-c", "import jobmedic, jobmedic.app as a; "
                 "from jobmedic.settings import config_text; "
                 "print(jobmedic.__file__); print(len(config_text('taxonomy.yaml')))")
    assert where.returncode == 0, where.stderr
    path, size = where.stdout.split()
    assert Path(path).resolve().is_relative_to(installed.resolve()), path
    assert not Path(path).resolve().is_relative_to(ROOT.resolve())
    assert int(size) > 1000
    assert (installed / "jobmedic" / "configs" / "remediations.yaml").is_file()
    assert (installed / "jobmedic" / "tui" / "chat.tcss").is_file()

    db = str(tmp_path / "w.db")
    jm = ("-m", "jobmedic", "--db", db)
    r = _run(installed, tmp_path, *jm, "db", "info", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["path"] == db
    for request, check in (
        ({"action": "remediate", "failure_type": "oom"}, lambda d: d["fixes"]),
        ({"action": "diagnose", "text": "slurmstepd: error: Detected 1 oom-kill event(s)"},
         lambda d: d),
        ({"action": "stats", "lookback_days": 7}, lambda d: True),
    ):
        r = _run(installed, tmp_path, *jm, "act", json.dumps(request))
        assert "Traceback" not in r.stderr, r.stderr
        env = json.loads(r.stdout)
        assert env["status"] in ("ok", "no_data"), env
        if env["status"] == "ok":
            assert check(env["data"]), env

    r = _run(installed, tmp_path, "-m", "jobmedic", "demo", "--dir", str(tmp_path / "demo"),
             "--days", "3", "--no-train", "--anchor", "2025-11-23")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "Traceback" not in r.stdout + r.stderr
    assert "you asked" in r.stdout and "jobmedic sync slurm" in r.stdout
