"""BI-SMART's bars: no worse than SMART by more than 2% on Model-I/II/III, better on ties.

Model-I/II/III at their base settings (``smart_simulation.py``: n = 200 / 300 / 500,
sigma0 = 0.01, the same seeds ``1000 rep + 10 model``) and the tied design of
``bismart_ties.py`` (p = 100, q = 50, n = 200). Methods: SMART tuned, BISMART (5-fold CV,
refitted on all rows) and BISMART with ``protocol="three-fold"`` (a third of the rows
screens, a third fits, a third validates; no refit). Metric ``||C_hat - C*||_F /
sqrt(pq)``: mean +- se over the seeds, the paired difference from SMART tuned (mean +-
se, and in how many seeds BISMART is better) and the ratio of means; mean CPU seconds per
fit (one BLAS thread).

Measured (5 seeds; paired difference from SMART tuned, mean +- se, seeds better; CPU s
per fit on a loaded machine):

    design  SMART tuned        BISMART                          BISMART 3-fold
    I       0.00609 +- 0.00035 -0.00082 +- 0.00013 5/5 (0.865)  +0.00022 +- 0.00024 2/5
    II      0.00369 +- 0.00017 -0.00028 +- 0.00004 5/5 (0.923)  +0.00018 +- 0.00007 0/5
    III     0.00264 +- 0.00037 -0.00007 +- 0.00002 5/5 (0.973)  -0.00014 +- 0.00010 3/5
    ties    0.00361 +- 0.00010 -0.00102 +- 0.00013 5/5 (0.717)  -0.00001 +- 0.00009 3/5

(ratio of means in parentheses). CPU s per fit, SMART / BISMART / 3-fold: I 1.2 / 0.05 /
5.2, II 0.9 / 0.1 / 10.1, III 1.6 / 0.7 / 54, ties 0.6 / 0.04 / 2.1. The three-fold
protocol fits on a third of the rows, so it gives up what the CV default's refit on all
rows gains.

Usage::

    python benchmarks/bismart_bars.py [--reps 5] [--designs I,II,III,ties]
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
from bismart_ties import simulate_ties  # noqa: E402
from smart_simulation import MODELS, seed_of  # noqa: E402

METHODS = {
    "SMART tuned": lambda X, Y, C0: mt.SMART(Y, X, source=C0).fit(),
    "BISMART": lambda X, Y, C0: mt.BISMART(Y, X, source=C0).fit(),
    "BISMART 3-fold": lambda X, Y, C0: mt.BISMART(Y, X, source=C0).fit(
        protocol="three-fold"),
}


def data(design, rep):
    if design == "ties":
        return simulate_ties(n=200, sigma0=0.01, seed=rep)
    p, q, n = MODELS[design]
    sim = mt.datasets.simulate_smart(n, p, q, rank=5, source_rank=10, sigma0=0.01,
                                     sigma=0.5, random_state=seed_of(rep, design))
    return sim.X, sim.Y, sim.C, sim.C0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--designs", default="I,II,III,ties")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args(argv)
    methods = args.methods.split(",")
    for design in args.designs.split(","):
        err = {m: [] for m in methods}
        cpu = {m: [] for m in methods}
        for rep in range(args.reps):
            X, Y, C, C0 = data(design, rep)
            for m in methods:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    c0 = time.process_time()
                    res = METHODS[m](X, Y, C0)
                    cpu[m].append(time.process_time() - c0)
                err[m].append(np.linalg.norm(res.coef - C) / np.sqrt(C.size))
            print(f"{design} rep {rep}: " + ", ".join(f"{m} {err[m][-1]:.5f}"
                                                     for m in methods),
                  file=sys.stderr, flush=True)
        print(f"\n{design}: {args.reps} seeds; error mean +- se, CPU s per fit")
        ref = np.array(err["SMART tuned"]) if "SMART tuned" in methods else None
        for m in methods:
            e = np.array(err[m])
            line = (f"  {m:<15} {e.mean():.5f} +- {e.std(ddof=1) / np.sqrt(len(e)):.5f}"
                    f"  [{np.mean(cpu[m]):6.2f} s]")
            if ref is not None and m != "SMART tuned":
                d = e - ref
                line += (f"  paired - SMART {d.mean():+.5f} +- "
                         f"{d.std(ddof=1) / np.sqrt(len(d)):.5f}, better in "
                         f"{int(np.sum(d < 0))}/{len(d)}, ratio {e.mean() / ref.mean():.3f}")
            print(line, flush=True)


if __name__ == "__main__":
    main()
