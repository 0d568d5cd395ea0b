"""Where the two-stage transfer helps: a target that is the source plus a small low-rank
correction, with the source's rows at hand.

Design: p = 30 predictors, q = 12 responses; source C_s = U D V^T of rank 6
(D = linspace(1, 3, 6)); target C = C_s + 0.3 a b^T (a, b unit vectors: a rank-one
correction outside the source's subspaces). Rows X ~ N(0, I); Y = 1 + X C + 0.5 N(0, 1)
for the target (n = 60) and Y_s = 2 + X_s C_s + 0.5 N(0, 1) for the source (n_s = 600).
Methods: TwoStageTransfer (source rows), NuclearNorm and ReducedRank (target only),
SMART and SourceSubspaceRRR given the source's least-squares fit as C0, all tuned by
default. Metric ||C_hat - C||_F / sqrt(pq); mean +- s.e. over seeds, and the paired
difference TwoStage - SMART; CPU time (one BLAS thread).

Usage: python benchmarks/two_stage_contrast.py [--reps 10]
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":
    from _threads import limit_threads

    limit_threads(sys.argv[1:])

import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import mtltransfer as mt  # noqa: E402


def draw(seed, p=30, q=12, n=60, n_s=600):
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((p, 6)))[0]
    V = np.linalg.qr(rng.standard_normal((q, 6)))[0]
    Cs = (U * np.linspace(1, 3, 6)) @ V.T
    a, b = rng.standard_normal(p), rng.standard_normal(q)
    C = Cs + 0.3 * np.outer(a / np.linalg.norm(a), b / np.linalg.norm(b))
    X, Xs = rng.standard_normal((n, p)), rng.standard_normal((n_s, p))
    Y = 1 + X @ C + 0.5 * rng.standard_normal((n, q))
    Ys = 2 + Xs @ Cs + 0.5 * rng.standard_normal((n_s, q))
    return X, Y, Xs, Ys, C


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", default="1")
    args = ap.parse_args(argv)
    errs, cpu = {}, {}
    for seed in range(args.reps):
        X, Y, Xs, Ys, C = draw(seed)
        C0 = mt.OLS(Ys, Xs, intercept=True).fit()
        fits = {
            "TwoStage": lambda: mt.TwoStageTransfer(Y, X, source_endog=Ys, source_exog=Xs,
                                                    intercept=True).fit(),
            "NuclearNorm": lambda: mt.NuclearNorm(Y, X, intercept=True).fit(),
            "ReducedRank": lambda: mt.ReducedRank(Y, X, intercept=True).fit(),
            "SMART": lambda: mt.SMART(Y, X, source=C0, intercept=True).fit(),
            "SourceSubspaceRRR": lambda: mt.SourceSubspaceRRR(Y, X, source=C0,
                                                              intercept=True).fit(),
        }
        for name, fit in fits.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.process_time()
                res = fit()
                cpu.setdefault(name, []).append(time.process_time() - t0)
            errs.setdefault(name, []).append(
                np.linalg.norm(res.coef - C) / np.sqrt(C.size))
    print(f"{args.reps} seeds; error ||C_hat - C||_F / sqrt(pq), mean +- s.e.; CPU s")
    for name, e in errs.items():
        e = np.array(e)
        print(f"  {name:18s} {e.mean():.4f} +- {e.std(ddof=1) / np.sqrt(len(e)):.4f}   "
              f"{np.mean(cpu[name]):.2f} s")
    d = np.array(errs["TwoStage"]) - np.array(errs["SMART"])
    print(f"  paired TwoStage - SMART: {d.mean():+.4f} +- "
          f"{d.std(ddof=1) / np.sqrt(len(d)):.4f} (TwoStage better on "
          f"{int(np.sum(d < 0))} of {len(d)})")


if __name__ == "__main__":
    main()
