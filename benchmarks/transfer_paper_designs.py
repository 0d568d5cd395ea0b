"""Transfer on the SMART paper's designs: does the cross-validated choice keep SMART?

Model-I (p=100, q=50, n=200), Model-II (150, 100, 300), Model-III (300, 200, 500) of
``mtltransfer.datasets.simulate_smart`` (sigma0 = 0.01, the designs of
benchmarks/smart_simulation.py, no intercept). Per seed: SMART tuned (``SMART.fit()``),
SMART with the magnitude pull tuned (``fit(gamma="cv")``) and ``Transfer.fit()``; metric
the average Frobenius error ||C_hat - C*||_F / sqrt(pq) and Transfer's ratio to SMART
tuned. CPU seconds (time.process_time, one BLAS thread).

    python benchmarks/transfer_paper_designs.py [--models I II III] [--seeds 0 1 2]
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


def run(model, seed):
    p, q, n = MODELS[model]
    sim = mt.datasets.simulate_smart(n, p, q, rank=5, source_rank=10, sigma0=0.01,
                                     sigma=0.5, random_state=1000 * seed + 10 * list(
                                         MODELS).index(model))
    out = {"model": model, "seed": seed}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fit in (("SMART", lambda: mt.SMART(sim.Y, sim.X, source=sim.C0).fit()),
                          ("SMART gamma", lambda: mt.SMART(sim.Y, sim.X, source=sim.C0)
                           .fit(gamma="cv")),
                          ("Transfer", lambda: mt.Transfer(sim.Y, sim.X, source=sim.C0)
                           .fit())):
            t = time.process_time()
            res = fit()
            out[f"{name} cpu"] = time.process_time() - t
            out[name] = float(np.linalg.norm(res.coef - sim.C) / np.sqrt(p * q))
            if name == "Transfer":
                out["chosen"] = res.method
            if name == "SMART gamma":
                out["gamma"] = res.gamma
    out["ratio"] = out["Transfer"] / out["SMART"]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["I"], choices=list(MODELS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    args = ap.parse_args(argv)
    rows = []
    for model in args.models:
        for seed in args.seeds:
            rows.append(run(model, seed))
            print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
    df = pd.DataFrame(rows)
    print(df.to_string(index=False))
    print(df.groupby("model")[["SMART", "SMART gamma", "Transfer", "ratio"]].mean())


if __name__ == "__main__":
    main()
