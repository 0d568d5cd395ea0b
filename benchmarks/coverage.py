"""Empirical coverage of bootstrap intervals (``res.bootstrap``).

For each case, ``--reps`` data sets are simulated; on each, the model is fitted (tuned on
the full data), bootstrapped with each resampling method, and intervals of every kind are
formed for

* the regression function ``E[y | x] = x^T C*`` at ``--points`` new points (x drawn from
  the design's distribution, fixed across data sets), every response;
* every coefficient entry of ``C*``.

The table gives, per case, method and kind, the share of intervals that contain the
truth (nominal ``1 - alpha``), their mean width, and the seconds per bootstrap.

Cases (the SMART paper's design at a small size: p=20, q=8, n=150, rank 2, source rank 4):

* ``smart_good``: SMART with a good source (sigma0 = 0.01);
* ``smart_misleading``: SMART with a misleading source (sigma0 = 0.5);
* ``rrr``: ReducedRank at its true rank.

    python benchmarks/coverage.py [--reps 200] [--boot 200] [--quick] [--csv out.csv]
        [--cases smart_good,rrr] [--methods residual,pairs] [--refit-tuning]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small dense products: one thread

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import mtltransfer as mt
from mtltransfer.bootstrap import KINDS, interval

P, Q, N, RANK, SOURCE_RANK = 20, 8, 150, 2, 4
CASES = {"smart_good": 0.01, "smart_misleading": 0.5, "rrr": None}


def one_replication(case, seed, x_new, args):
    """Coverage indicators and widths of one simulated data set, per method and kind."""
    sigma0 = CASES[case] if CASES[case] is not None else 0.01
    sim = mt.datasets.simulate_smart(N, P, Q, rank=RANK, source_rank=SOURCE_RANK,
                                     sigma0=sigma0, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case == "rrr":
            res = mt.ReducedRank(sim.Y, sim.X).fit(rank=RANK)
        else:
            res = mt.SMART(sim.Y, sim.X, source=sim.C0).fit()
    mean_truth = x_new @ sim.C
    rows = []
    for method in args.methods:
        t0 = time.perf_counter()
        boot = res.bootstrap(n_boot=args.boot, method=method, random_state=seed,
                             refit_tuning=args.refit_tuning)
        seconds = time.perf_counter() - t0
        draws = res.predict_draws(x_new, boot.coef, boot.intercept)
        point = res.predict(x_new).to_numpy()
        for kind in KINDS:
            lo, hi = interval(draws, point, args.alpha, kind)
            clo, chi = interval(boot.coef, res.coef, args.alpha, kind)
            rows.append({
                "case": case, "method": method, "kind": kind,
                "cover_mean": float(np.mean((lo <= mean_truth) & (mean_truth <= hi))),
                "width_mean": float(np.mean(hi - lo)),
                "cover_coef": float(np.mean((clo <= sim.C) & (sim.C <= chi))),
                "width_coef": float(np.mean(chi - clo)),
                "seconds": seconds})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--points", type=int, default=10)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--methods", default="residual,pairs")
    ap.add_argument("--refit-tuning", action="store_true",
                    help="re-tune every replicate (slow)")
    ap.add_argument("--quick", action="store_true", help="20 data sets, 50 draws")
    ap.add_argument("--csv", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.boot = 20, 50
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    rng = np.random.default_rng(20261125)
    # new points from the design's distribution: rows N(0, Sigma), Sigma_ij = 0.5^|i-j|
    Sigma = 0.5 ** np.abs(np.subtract.outer(np.arange(P), np.arange(P)))
    x_new = rng.standard_normal((args.points, P)) @ np.linalg.cholesky(Sigma).T
    print(f"coverage of nominal {1 - args.alpha:.0%} bootstrap intervals; {args.reps} data "
          f"sets, {args.boot} draws; p={P}, q={Q}, n={N}, rank {RANK}; "
          f"refit_tuning={args.refit_tuning}", flush=True)
    rows, t0 = [], time.perf_counter()
    for case in args.cases:
        for rep in range(args.reps):
            rows += one_replication(case, 1000 + rep, x_new, args)
        print(f"  {case}: done, {time.perf_counter() - t0:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    table = df.groupby(["case", "method", "kind"], sort=False).agg(
        cover_mean=("cover_mean", "mean"), width_mean=("width_mean", "mean"),
        cover_coef=("cover_coef", "mean"), width_coef=("width_coef", "mean"),
        seconds=("seconds", "mean"))
    # Monte Carlo standard error of a coverage share over the data sets
    se = df.groupby(["case", "method", "kind"], sort=False)["cover_mean"].sem()
    table.insert(1, "se", se)
    print(table.round(4).to_string())
    if args.csv:
        df.to_csv(args.csv, index=False)
    return table


if __name__ == "__main__":
    main()
