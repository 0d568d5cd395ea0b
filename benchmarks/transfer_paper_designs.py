"""Transfer on the SMART paper's designs: does the cross-validated choice keep SMART?

Model-I (p=100, q=50, n=200), Model-II (150, 100, 300), Model-III (300, 200, 500) of
``mtltransfer.datasets.simulate_smart`` (sigma0 = 0.01, the designs of
benchmarks/smart_simulation.py, no intercept). Per seed: SMART tuned (``SMART.fit()``),
SMART with the magnitude pull tuned (``fit(gamma="cv")``) and ``Transfer.fit()``; metric
the average Frobenius error ||C_hat - C*||_F / sqrt(pq) and Transfer's ratio to SMART
tuned. Besides, every candidate of Transfer is refitted on all rows (``fit(method=...)``)
and its error, CV error and CV standard error are written with ``--csv`` (one row per
seed), so that a choice rule can be judged on the same fits without refitting
(``--report FILE``). CPU seconds (time.process_time, one BLAS thread).

    python benchmarks/transfer_paper_designs.py [--models I II III] [--seeds 0 1 2]
        [--csv out.csv] [--report out.csv ...]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import mtltransfer as mt

MODELS = {"I": (100, 50, 200), "II": (150, 100, 300), "III": (300, 200, 500)}


def simulate(model, seed):
    p, q, n = MODELS[model]
    return mt.datasets.simulate_smart(n, p, q, rank=5, source_rank=10, sigma0=0.01,
                                      sigma=0.5, random_state=1000 * seed + 10 * list(
                                          MODELS).index(model))


def run(model, seed, candidates=False):
    p, q, n = MODELS[model]
    sim = simulate(model, seed)
    err = (lambda C: float(np.linalg.norm(C - sim.C) / np.sqrt(p * q)))
    out = {"model": model, "seed": seed}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = mt.Transfer(sim.Y, sim.X, source=sim.C0)
        for name, fit in (("SMART", lambda: mt.SMART(sim.Y, sim.X, source=sim.C0).fit()),
                          ("SMART gamma", lambda: mt.SMART(sim.Y, sim.X, source=sim.C0)
                           .fit(gamma="cv")),
                          ("Transfer", lambda: mod.fit())):
            t = time.process_time()
            res = fit()
            out[f"{name} cpu"] = time.process_time() - t
            out[name] = err(res.coef)
            if name == "Transfer":
                out["chosen"] = res.method
                table = res.tuning["transfer_cv"]
            if name == "SMART gamma":
                out["gamma"] = res.gamma
                smart_gamma = out[name]
        if candidates:
            for label, row in table.iterrows():
                out[f"cv_mse:{label}"] = row["cv_mse"]
                out[f"cv_se:{label}"] = row["cv_se"]
                out[f"err:{label}"] = (smart_gamma if label == "SMART" else
                                       err(mod.fit(method=label).coef))
    out["ratio"] = out["Transfer"] / out["SMART"]
    return out


def paired(df, a, b="SMART"):
    """Mean and standard error over seeds of a / b - 1 (paired)."""
    r = df[a] / df[b] - 1
    k = len(r)
    return r.mean(), (r.std(ddof=1) / np.sqrt(k) if k > 1 else np.nan)


def report(df):
    cols = ["SMART", "SMART gamma", "Transfer"]
    for model, d in df.groupby("model", sort=False):
        k = len(d)
        line = [f"Model-{model} ({k} seeds):"]
        for c in cols:
            se = d[c].std(ddof=1) / np.sqrt(k) if k > 1 else np.nan
            line.append(f"{c} {d[c].mean():.5f} +- {se:.5f}")
        m, s = paired(d, "Transfer")
        line.append(f"Transfer/SMART - 1 = {100 * m:+.2f}% +- {100 * s:.2f}% (paired), "
                    f"max {100 * (d['Transfer'] / d['SMART'] - 1).max():+.2f}%")
        line.append("chose: " + ", ".join(f"{c} {n}" for c, n in
                                          d["chosen"].value_counts().items()))
        line.append(f"CPU s: SMART {d['SMART cpu'].mean():.1f}, Transfer "
                    f"{d['Transfer cpu'].mean():.1f}")
        print("\n  ".join(line))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["I"], choices=list(MODELS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--csv", default=None, help="append one row per seed to this file, "
                    "with every candidate's error and CV error")
    ap.add_argument("--report", nargs="+", default=None)
    args = ap.parse_args(argv)
    pd.set_option("display.width", 200)
    if args.report:
        report(pd.concat([pd.read_csv(f) for f in args.report], ignore_index=True))
        return
    rows = []
    for model in args.models:
        for seed in args.seeds:
            rows.append(run(model, seed, candidates=args.csv is not None))
            if args.csv:
                pd.DataFrame(rows[-1:]).to_csv(args.csv, mode="a", index=False,
                                               header=not os.path.exists(args.csv))
            print(pd.DataFrame(rows[-1:])[["model", "seed", "SMART", "SMART gamma",
                                           "Transfer", "chosen", "ratio",
                                           "Transfer cpu"]].to_string(index=False),
                  flush=True)
    report(pd.DataFrame(rows))


if __name__ == "__main__":
    main()
