"""Shared plumbing of the real-data evaluations: a store filled once by the project's own
ingest readers (cached under bench/out/data), the models dir beside it, and the RICC validation
split and booster fit that the runtime sweeps (eval_ricc_alloc, _point, _choices) share."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.knowledge.templates import Templates
from jobmedic.models import runtime, training
from jobmedic.settings import config_path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out" / "data"


def store_for(name: str, reader: str, path: Path, cluster: str | None = None) -> Store:
    """Open bench/out/data/<name>.db, ingesting `path` with `reader` the first time."""
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / f"{name}.db"
    fresh = not db.exists()
    s = Store(db)
    if fresh or s.table_counts()["jobs"] == 0:
        t = time.perf_counter()
        ctx = IngestContext(Taxonomy.from_yaml(config_path("taxonomy.yaml")),
                            Templates(s.load_templates()), cluster=cluster or "default")
        run_ingest(s, READERS[reader], str(path), ctx)
        print(f"ingested {path.name} in {time.perf_counter() - t:.1f}s")
    return s


def models_dir(name: str) -> str:
    return str(OUT / f"models-{name}")


@dataclass(frozen=True)
class RiccSplit:
    """The RICC validation split: the training frame, its runtime labels and the row indices of
    the fit, calibration and validation slices."""
    frame: Any
    mask: np.ndarray
    y: np.ndarray
    sub: np.ndarray
    end: np.ndarray
    fit: np.ndarray
    cal: np.ndarray
    ev: np.ndarray

    @property
    def df(self):
        return self.frame[0]


def ricc_validation_split() -> RiccSplit:
    """The validation split of `bench.eval_ricc_runtime --validate`, carved from the training
    70 % (by submit time) of the completed RICC jobs: the completed jobs submitted and ended
    before its last 20 % by submit (2010-08-26T13:12Z) in submit order, the first 80 % of them to
    fit, the rest the calibration slice; validation = the completed jobs submitted from there to
    the test cut. The test slice is never in any of them."""
    s = store_for("ricc", "swf", DATA / "pwa_ricc" / "RICC-2010-2.swf.gz", cluster="ricc")
    frame = training._positional(training.load(s))
    df = frame[0]
    mask, y = runtime.labels(df)
    sub, end = df["submit_time"].to_numpy(float), df["end_time"].to_numpy(float)
    return RiccSplit(frame, mask, y, sub, end, *validation_rows(mask, sub, end))


def validation_rows(mask: np.ndarray, sub: np.ndarray, end: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fit, calibration, validation) row indices of the split above, from the labelled mask
    and the submit and end times: the test cut at 70 % of the labelled submits, the validation
    cut at 80 % of those submitted and ended before it."""
    subs = np.sort(sub[mask])
    until = subs[int(len(subs) * 0.7)]
    tr = np.sort(sub[mask & (sub < until) & (end < until)])
    cut = tr[int(len(tr) * 0.8)]
    lab = np.flatnonzero(mask & (sub < cut) & (end < cut))
    lab = lab[np.argsort(sub[lab], kind="stable")]
    fit, cal = lab[:int(len(lab) * 0.8)], lab[int(len(lab) * 0.8):]
    return fit, cal, np.flatnonzero(mask & (sub >= cut) & (sub < until))


def ricc_validation_fit(calibrate: bool = True) -> tuple[RiccSplit, runtime.RuntimeModel, float]:
    """The split above and one runtime booster fitted on its fit rows (one XGBoost thread),
    calibrated on its calibration rows unless `calibrate` is False; with the CPU seconds of
    the fit (and calibration). What the real-data sweeps cache as .npy (no pickle)."""
    sp = ricc_validation_split()
    m = runtime.RuntimeModel({"nthread": 1})
    c0 = time.process_time()
    m.fit(m.inputs(sp.frame, sp.fit), sp.y[sp.fit])
    if calibrate:
        m.calibrate(m.inputs(sp.frame, sp.cal), sp.y[sp.cal])
    return sp, m, time.process_time() - c0


def save_arrays(cache: Path, arrays: dict[str, Any]) -> None:
    """Each array as `cache/<name>.npy` (no pickle)."""
    cache.mkdir(parents=True, exist_ok=True)
    for k, v in arrays.items():
        np.save(cache / f"{k}.npy", v)


def report(out: dict, dest: Path | str) -> dict:
    """Print `out` as JSON and write it to the file `dest`."""
    print(json.dumps(out, indent=1))
    with open(dest, "w") as f:
        json.dump(out, f, indent=1)
    return out
