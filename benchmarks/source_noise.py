"""The revision's source-noise experiment: Model-I with a worse and worse source.

Design: ``mtltransfer.datasets.simulate_smart`` (Model-I, p = 100, q = 50, rank 5, a
rank-10 source observed with entrywise noise sigma0), sigma0 in {0.01, 0.1, 0.5}, n = 300
target rows: the SparseSMART pilot setting (200 rows to fit, 100 to tune) is SparseSMART
with ``validation=1/3``, whose chosen lam is then refitted on all 300 rows (the package's
rule; the pilot did not refit). Every method sees the same rows; the seeds are those of
``smart_simulation.py`` (``1000 * rep``).

Methods: SMART tuned, BISMART, SparseSMART (validation 1/3), SparseSMART holdout and SMART
holdout (``fit(tuning="holdout", holdout=1/3)``: the pilot's protocol exactly, 200 rows
fitted, 100 validating, no refit), SourceSubspaceRRR (tuned),
ReducedRank (true rank 5), and TwoStage (``TwoStageTransfer``, given source rows that
carry the information of C0, as in ``smart_simulation.py``).

Output: error ``||C_hat - C*||_F / sqrt(pq)`` mean +- s.e. over the seeds, mean CPU
seconds per fit (one BLAS thread), and BISMART's and SparseSMART's paired differences
from SMART tuned.

Usage::

    python benchmarks/source_noise.py [--reps 5] [--sigma0 0.01,0.1,0.5] [--methods ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_HERE))
sys.path.insert(0, _HERE)
import mtltransfer as mt  # noqa: E402
from smart_simulation import source_rows  # noqa: E402

METHODS = {
    "SMART tuned": lambda X, Y, C0, src: mt.SMART(Y, X, source=C0).fit(),
    "BISMART": lambda X, Y, C0, src: mt.BISMART(Y, X, source=C0).fit(),
    "SparseSMART": lambda X, Y, C0, src: mt.SparseSMART(Y, X, source=C0).fit(
        validation=1 / 3),
    # the revision's pilot protocol: 200 rows fit, 100 rows validate, no refit
    "SparseSMART holdout": lambda X, Y, C0, src: mt.SparseSMART(Y, X, source=C0).fit(
        tuning="holdout", holdout=1 / 3),
    "SMART holdout": lambda X, Y, C0, src: mt.SMART(Y, X, source=C0).fit(
        tuning="holdout", holdout=1 / 3),
    "SubspaceRRR": lambda X, Y, C0, src: mt.SourceSubspaceRRR(Y, X, source=C0).fit(),
    "RRR (rank 5)": lambda X, Y, C0, src: mt.ReducedRank(Y, X).fit(rank=5),
    "TwoStage": lambda X, Y, C0, src: mt.TwoStageTransfer(
        Y, X, source_endog=src[1], source_exog=src[0]).fit(),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sigma0", default="0.01,0.1,0.5")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",")]
    sigmas = [float(s) for s in args.sigma0.split(",")]
    err = {(s, m): [] for s in sigmas for m in methods}
    cpu = {(s, m): [] for s in sigmas for m in methods}
    for s0 in sigmas:
        for rep in range(args.reps):
            seed = 1000 * rep
            sim = mt.datasets.simulate_smart(args.n, 100, 50, rank=5, source_rank=10,
                                             sigma0=s0, sigma=0.5, random_state=seed)
            src = source_rows(sim, s0, seed) if "TwoStage" in methods else None
            for m in methods:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    c0 = time.process_time()
                    res = METHODS[m](sim.X, sim.Y, sim.C0, src)
                    cpu[s0, m].append(time.process_time() - c0)
                err[s0, m].append(np.linalg.norm(res.coef - sim.C) / np.sqrt(sim.C.size))
            print(f"sigma0={s0} seed {seed}: " + ", ".join(
                f"{m} {err[s0, m][-1]:.5f}" for m in methods), file=sys.stderr, flush=True)
    print(f"Model-I (p=100, q=50, n={args.n}), source noise sigma0, {args.reps} seeds; "
          "error mean +- se [CPU s per fit, one BLAS thread]")
    print(f"{'method':<20}" + "".join(f"{'sigma0 = ' + str(s):>30}" for s in sigmas))
    for m in methods:
        cells = []
        for s in sigmas:
            e = np.array(err[s, m])
            se = e.std(ddof=1) / np.sqrt(len(e)) if len(e) > 1 else float("nan")
            cells.append(f"{e.mean():.4f} +- {se:.4f} [{np.mean(cpu[s, m]):6.2f}]")
        print(f"{m:<20}" + "".join(f"{c:>30}" for c in cells))
    for m in ("BISMART", "SparseSMART", "SparseSMART holdout", "SMART holdout"):
        if m in methods and "SMART tuned" in methods:
            cells = []
            for s in sigmas:
                d = np.array(err[s, m]) - np.array(err[s, "SMART tuned"])
                se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
                cells.append(f"{d.mean():+.4f} +- {se:.4f}")
            print(f"{m + ' - SMART':<20}" + "".join(f"{c:>30}" for c in cells))
    if "SparseSMART holdout" in methods and "SMART holdout" in methods:
        cells = []            # both under the pilot's protocol, on the same split
        for s in sigmas:
            d = np.array(err[s, "SparseSMART holdout"]) - np.array(err[s, "SMART holdout"])
            se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
            cells.append(f"{d.mean():+.4f} +- {se:.4f} ({int(np.sum(d < 0))}/{len(d)})")
        print(f"{'SparseSMART - SMART, both holdout':<20}" + "".join(f"{c:>30}"
                                                                   for c in cells))


if __name__ == "__main__":
    main()
