"""Time the fast and CVXPY backends of the four baselines.

Settings: (p, q, n) = (100, 50, 500) and (300, 200, 1500), data from the SMART design
(``mt.datasets.simulate_smart``, true rank 5). Fixed hyperparameters (ridge alpha = 0.1,
rank 5, nuclear-norm lam = 0.1 lam_max) so that both backends solve the same problem.

    python benchmarks/baselines.py [--settings small|large|all] [--csv out.csv]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small dense products: one thread is faster

import argparse
import time

import numpy as np
import pandas as pd

import mtltransfer as mt
from mtltransfer.gram import quadratic_loss
from mtltransfer.solvers.prox import nuclear_norm_lam_max

from mtltransfer.solvers.cvx import nuclear_norm_cvx, reduced_rank_cvx

SDP_MODELS = {"NuclearNorm": nuclear_norm_cvx, "ReducedRank": reduced_rank_cvx}
SETTINGS = {"small": (100, 50, 500), "large": (300, 200, 1500)}


def run(p, q, n, seed=0, scs_above=200):
    X, Y, C, C0 = mt.datasets.simulate_smart(n, p, q, random_state=seed)
    Sxy = mt.OLS(Y, X).moments()[1]
    lam = 0.1 * nuclear_norm_lam_max(Sxy)
    cases = [("OLS", mt.OLS, {}, lambda C: 0.0),
             ("Ridge", mt.Ridge, {"alpha": 0.1}, lambda C: 0.05 * np.sum(C ** 2)),
             ("ReducedRank", mt.ReducedRank, {"rank": 5}, lambda C: 0.0),
             ("NuclearNorm", mt.NuclearNorm, {"lam": lam},
              lambda C: lam * np.linalg.norm(C, "nuc"))]
    rows = []
    for name, model, kw, pen in cases:
        out = {}
        for backend in ("fast", "cvxpy"):
            mod = model(Y, X)
            mod.stats  # the one pass over the rows is not part of the solver time
            t0 = time.perf_counter()
            if backend == "cvxpy" and name in SDP_MODELS and p + q > scs_above:
                # the semidefinite programs (nuclear norm: (p+q)^2 entries; Fantope: q^2)
                # are out of reach of Clarabel's interior point at this size, so the
                # first-order conic solver SCS (tight eps) stands in
                import cvxpy as cp
                Cv, _ = SDP_MODELS[name](*mod.moments(), *kw.values(), solver=cp.SCS,
                                         eps=1e-7, max_iters=100000)
                res = type("R", (), {"coef": Cv})()
            else:
                res = mod.fit(backend=backend, **kw)
            out[backend] = (time.perf_counter() - t0, res)
        Sxx, Sxy, Syy = out["fast"][1].model.moments()
        obj = {b: quadratic_loss(Sxx, Sxy, Syy, r.coef) + pen(r.coef) for b, (_, r) in
               out.items()}
        if name in SDP_MODELS and p + q > scs_above:
            name = f"{name} (cvxpy: SCS)"
        rows.append({"p": p, "q": q, "n": n, "model": name,
                     "fast s": out["fast"][0], "cvxpy s": out["cvxpy"][0],
                     "speed-up": out["cvxpy"][0] / out["fast"][0],
                     "objective fast": obj["fast"], "objective cvxpy": obj["cvxpy"],
                     "rel. obj. gap": (obj["cvxpy"] - obj["fast"]) / abs(obj["fast"]),
                     "coef err vs truth": np.linalg.norm(out["fast"][1].coef - C) /
                     np.sqrt(C.size)})
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1,
                                                float_format=lambda v: f"{v:.4g}"),
              flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default="all", choices=["small", "large", "all"])
    ap.add_argument("--csv", default=None)
    args = ap.parse_args()
    names = list(SETTINGS) if args.settings == "all" else [args.settings]
    rows = []
    for name in names:
        rows += run(*SETTINGS[name])
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
