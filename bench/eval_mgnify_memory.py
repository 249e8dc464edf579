"""Peak memory on MGnify metaSPAdes production jobs (../shared/data/mgnify_metaspades).

The data has no scheduler fields: no submit time, no user, no per-job request. This
evaluation-only loader fills a store through `Store.upsert_jobs` with what the data allows:
job name = the biome lineage, user = its first three levels (the biome group), project = the
run accession's block (a proxy for the study's submission; `STUDY_BLOCK`), request = the MGnify
production heuristic for the biome, peak = peak_mem_in_gbs; jobs are ordered by their
ERZ accession number (assigned in submission order) and spaced one hour apart, and their real
wall-clock time gives the end, so history only holds jobs that would have finished. Input
size exists for only 296 runs and is not used. Split: first 70 % by accession to train (its
last 20 % for the conformal shift), last 30 % to test.

`--validate` scores the candidate requests at a 2 % retry budget on a VALIDATION slice carved
from the training period (fit on its first 64 %, calibrate on the next 16 %, score its last
20 %), each calibrated by split conformal prediction on the calibration jobs: the model's q0.95
(what `train memory` serves), its q5/6 and q0.5, the production heuristic, their log blend and
minimum, per biome group (Mondrian) conformal, and a sliding calibration window replayed daily;
and, as a bound no method can claim, each base with the shift fitted on the scored slice itself
(2 % under in hindsight). It never reads the test slice.

    .venv/bin/python -m bench.eval_mgnify_memory [--validate] [--block K|none]
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd

from bench.eval_common import DATA, OUT
from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.store import Store
from jobmedic.models import memory, training

T0 = 1_600_000_000
# project = the run accession's prefix and number // STUDY_BLOCK, a proxy for the study's
# submission (chosen on validation in issue 18's seventh pass: bench/eval_mgnify_study.py);
# `--block none` gives the loader before it (project "mgnify" for every job)
STUDY_BLOCK = 50_000


def study_block(run: pd.Series, k: int | None) -> pd.Series:
    """The study proxy of each run accession: its prefix (ERR/SRR/DRR) and number // k
    (consecutive run accessions usually come from one study's submission); "mgnify" for all
    when k is None (the loader before issue 18's seventh pass)."""
    if k is None:
        return pd.Series("mgnify", index=run.index)
    num = run.str.extract(r"(\d+)$")[0].astype(np.int64)
    return run.str.extract(r"^([A-Z]+)")[0].fillna("") + ":" + (num // k).astype(str)


def load_store(block: int | None = STUDY_BLOCK, name: str = "mgnify.db", image_block: int | None = None) -> Store:
    """The store; `block` = K of the study proxy in `project` and `image_block` a second,
    coarser one in `image` (`study_block`; None: no image)."""
    folder = DATA / "mgnify_metaspades"
    df = pd.read_csv(folder / "mgnify_metaspades_3.15.3_jobs_with_heuristic.csv")
    df = df[df["peak_mem_in_gbs"] > 0].copy()
    df["acc"] = df["primary_accession"].str.extract(r"(\d+)").astype(np.int64)
    df = df.sort_values("acc", kind="stable").reset_index(drop=True)
    submit = T0 + np.arange(len(df)) * 3600
    lineage = df["lineage"].astype(str)
    rows = pd.DataFrame({
        "cluster": "mgnify", "job_id": df["primary_accession"], "name": lineage,
        "user": lineage.str.split(":").str[:3].str.join(":"),
        "project": study_block(df["srr_id"].astype(str), block),
        "image": None if image_block is None else study_block(df["srr_id"].astype(str), image_block),
        "queue": df["assembler"], "state": "completed", "raw_state": "COMPLETED",
        "submit_time": submit, "start_time": submit,
        "end_time": submit + df["wall_clock_seconds"].fillna(0).astype(np.int64),
        "elapsed_s": df["wall_clock_seconds"], "req_mem_mb": df["heuristic_mem_gb"] * 1024.0,
        "max_rss_mb": df["peak_mem_in_gbs"] * 1024.0, "req_cpus": 1, "n_nodes": 1, "source": "mgnify"})
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / name
    db.unlink(missing_ok=True)
    s = Store(db)
    tuples = [tuple(None if (isinstance(v, float) and np.isnan(v)) else (v.item() if hasattr(v, "item") else v)
                    for v in (r.get(c) for c in JOB_COLUMNS))
              for r in rows.to_dict("records")]
    s.upsert_jobs(tuples)
    return s


def _validate(s: Store, budget: float = 0.02) -> dict:
    from jobmedic.models import conformal
    from jobmedic.models import runtime_rolling as rr
    from jobmedic.models.features import FEATURES

    frame = training._positional(training.load(s))
    df, X = frame[0], frame[1][FEATURES].to_numpy()
    mask, y = memory.labels(df)
    sub, end = df["submit_time"].to_numpy(float), df["end_time"].to_numpy(float)
    heur, grp = np.log1p(df["req_mem_mb"].to_numpy(float)), df["user"].astype(str).to_numpy()
    until = np.sort(sub)[int(len(df) * 0.7)]
    tr = np.flatnonzero(mask & (sub < until) & (end < until))
    tr = tr[np.argsort(sub[tr], kind="stable")]
    cut = sub[tr[int(len(tr) * 0.8)]]
    ev = np.flatnonzero(mask & (sub >= cut) & (sub < until))
    lab = np.flatnonzero(mask & (sub < cut) & (end < cut))
    lab = lab[np.argsort(sub[lab], kind="stable")]
    fit, cal = lab[:int(len(lab) * 0.8)], lab[int(len(lab) * 0.8):]
    # the booster `train memory` fits (QuantileModel.fit: early stopping per quantile)
    model = memory.MemoryModel({"nthread": 1}).fit(X[fit], y[fit])
    b = model.booster_

    def raw(rows):
        return np.asarray(b.inplace_predict(X[rows].astype("float32")), float).reshape(len(rows), 3)

    rc, rv = raw(cal), raw(ev)
    lc, lv = np.log1p(y[cal]), np.log1p(y[ev])

    def scored(log_req):
        return memory.allocation(y[ev], np.ceil(np.expm1(log_req) / 256) * 256)

    def split(bc, bv):
        return scored(bv + conformal.shift_for(conformal.fit_table(lc - bc), budget))

    bases = {"model q0.95 (served)": (rc[:, 2], rv[:, 2]), "model q5/6": (rc[:, 1], rv[:, 1]),
             "model q0.5": (rc[:, 0], rv[:, 0]), "production heuristic": (heur[cal], heur[ev]),
             "blend q0.95 / heuristic": (0.5 * rc[:, 2] + 0.5 * heur[cal], 0.5 * rv[:, 2] + 0.5 * heur[ev]),
             "min(q0.95, heuristic)": (np.minimum(rc[:, 2], heur[cal]), np.minimum(rv[:, 2], heur[ev]))}
    out: dict = {"n": {"fit": len(fit), "calibration": len(cal), "validation": len(ev)},
                 "booster_rounds": model.rounds_,
                 "production_rule": scored(heur[ev]), "split_conformal": {}, "hindsight_bound": {}}
    for name, (bc, bv) in bases.items():
        out["split_conformal"][name] = split(bc, bv)
        out["hindsight_bound"][name] = scored(bv + np.quantile(lv - bv, 1 - budget, method="higher"))
    res = lc - rc[:, 2]
    glob = conformal.shift_for(conformal.fit_table(res), budget)
    for mn in (100, 200):
        sh = np.full(len(ev), glob)
        for g in np.unique(grp[ev]):
            m = grp[cal] == g
            if m.sum() >= mn:
                sh[grp[ev] == g] = conformal.shift_for(conformal.fit_table(res[m]), budget)
        out["split_conformal"][f"per biome group (>= {mn} calibration jobs)"] = scored(rv[:, 2] + sh)
    rows = np.concatenate([cal, ev])
    o = np.argsort(end[rows], kind="stable")
    rows, rr_raw = rows[o], np.vstack([rc, rv])[o]
    resid = np.log1p(y[rows])[:, None] - rr_raw[:, [0, 2]]
    for w in (250, 500, len(cal)):
        _, bs = rr.online_shifts(resid, end[rows], sub[ev], [0.5, 0.95], [0.0, 0.0], [budget], window=w)
        v = np.where(np.isfinite(bs[budget]), bs[budget], glob)
        out["split_conformal"][f"sliding window {w}, daily"] = scored(rv[:, 2] + v)
    return out


def _block(argv: list[str]) -> int | None:
    if "--block" not in argv:
        return STUDY_BLOCK
    i = argv.index("--block") + 1
    v = argv[i] if i < len(argv) else ""
    if v == "none":
        return None
    if not v.isdigit() or int(v) < 1:
        raise SystemExit(f"--block takes a positive run-accession block size or 'none', not {v!r}")
    return int(v)


def main(argv: list[str]) -> dict:
    s = load_store(_block(argv))
    if "--validate" in argv:
        out = _validate(s)
        print(json.dumps({k: v if k in ("n", "booster_rounds") else {n: {"under_%": round(100 * r["under_allocated_share"], 2),
                                                       "cost_gb": round(r["asymmetric_cost_gb_per_job"], 1)}
                                                   for n, r in v.items()} if "under_allocated_share" not in v
                          else {"under_%": round(100 * v["under_allocated_share"], 2),
                                "cost_gb": round(v["asymmetric_cost_gb_per_job"], 1)}
                          for k, v in out.items()}, indent=1))
        with open(OUT / "mgnify_validate.json", "w") as f:
            json.dump(out, f, indent=1)
        return out
    frame = training.load(s)
    df = frame[0]
    until = int(np.sort(df["submit_time"].to_numpy())[int(len(df) * 0.7)])
    mdir = str(OUT / "models-mgnify")
    card = training.train(s, "memory", mdir, until, frame=frame)
    res = training.evaluate(s, "memory", mdir, until, None, frame=frame)
    # RMSE / R2 of the median beside the published figures (other split and subset: context only)
    model, _ = __import__("jobmedic.models.registry", fromlist=["load"]).load(mdir, "memory")
    test = df["submit_time"].to_numpy() >= until
    from jobmedic.models.features import FEATURES

    q = model.predict(frame[1].loc[test, FEATURES].to_numpy())
    y = df.loc[test, "max_rss_mb"].to_numpy() / 1024
    med = q[:, memory.ALPHAS.index(0.5)] / 1024
    rmse = float(np.sqrt(np.mean((med - y) ** 2)))
    r2 = float(1 - np.sum((med - y) ** 2) / np.sum((y - y.mean()) ** 2))
    heur = df.loc[test, "req_mem_mb"].to_numpy() / 1024
    pub = pd.read_csv(DATA / "mgnify_metaspades" / "published_model_performance.csv")
    out = {"n_jobs": len(df), "test": res, "median_rmse_gb": rmse, "median_r2": r2,
           "heuristic_rmse_gb": float(np.sqrt(np.mean((heur - y) ** 2))),
           "published": pub[["raw_name", "R²", "RMSE"]].to_dict("records"), "train_card": card}
    print(json.dumps({k: v for k, v in out.items() if k not in ("train_card", "published")},
                     indent=1, default=str))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
