"""A small synthetic store with tiny trained models, shared by the model and predict tests."""
from __future__ import annotations

from pathlib import Path

from jobmedic.knowledge.store import Store
from jobmedic.models import artifacts, training
from jobmedic.models.synthetic import fill_store

N_JOBS = 2000
SMALL = {"num_boost_round": 25, "max_depth": 4, "nthread": 1}
START = 1_700_000_000


def build(tmp: Path, kinds=("failure", "runtime", "memory")) -> tuple[Path, Path, dict]:
    """A file store of N_JOBS synthetic jobs and a models dir with `kinds` trained."""
    db, models = tmp / "jm.db", tmp / "models"
    s = Store(db)
    fill_store(s, N_JOBS, seed=1)
    frame = training.load(s)
    cards = {k: training.train(s, k, str(models), frame=frame, params=SMALL) for k in kinds}
    s.close()
    return db, models, cards


def resign(models: Path, kind: str) -> None:
    """Record the current meta.json's hash in CURRENT, as someone who edits both would: the
    checks behind the manifest hash must hold on their own too."""
    d = artifacts.current_dir(models, kind)
    artifacts.write_current(d.parent, d.name, artifacts.sha256(d / "meta.json"))
