"""BI-SMART against SMART where the source spectrum has ties.

Design (Model-I's sizes, p = 100, q = 50, n = 200, X rows N(0, Sigma) with
Sigma_ij = 0.5^|i-j|, noise 0.5): a rank-12 source whose singular values come in four
exactly tied clusters of three, ``D0 = (10, 10, 10, 7, 7, 7, 4, 4, 4, 1, 1, 1)``, observed
as ``C0 = U0 D0 V0^T + sigma0 N(0, 1)``; a rank-2 target whose left span is a random
2-dimensional subspace of the second cluster's left span and whose right span one of the
third cluster's right span, singular values 5 and 3. Within a tied cluster the source's
singular vectors are not determined, so the target lies along none of them.

Methods: SMART tuned (``SMART(Y, X, source=C0).fit()``), SourceSubspaceRRR (fully tuned),
BISMART (``BISMART(Y, X, source=C0).fit()``), ReducedRank given the true rank. Metric
``||C_hat - C*||_F / sqrt(pq)``, mean +- s.e. over the seeds (the same data for every
method), and the mean CPU seconds of a fit (one BLAS thread).

Usage::

    python benchmarks/bismart_ties.py [--reps 10] [--sigma0 0.01]
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import mtltransfer as mt  # noqa: E402

D0 = np.repeat([10.0, 7.0, 4.0, 1.0], 3)


def simulate_ties(n=200, p=100, q=50, sigma0=0.01, sigma=0.5, seed=0):
    """(X, Y, C*, C0) of the tied design (module docstring)."""
    rng = np.random.default_rng(seed)
    k = len(D0)
    U0 = np.linalg.qr(rng.standard_normal((p, k)))[0]
    V0 = np.linalg.qr(rng.standard_normal((q, k)))[0]
    C0 = (U0 * D0) @ V0.T + sigma0 * rng.standard_normal((p, q))
    A = np.linalg.qr(rng.standard_normal((3, 2)))[0]
    B = np.linalg.qr(rng.standard_normal((3, 2)))[0]
    C = U0[:, 3:6] @ A @ np.diag([5.0, 3.0]) @ (V0[:, 6:9] @ B).T
    idx = np.arange(p)
    L = np.linalg.cholesky(0.5 ** np.abs(idx[:, None] - idx[None, :]))
    X = rng.standard_normal((n, p)) @ L.T
    Y = X @ C + sigma * rng.standard_normal((n, q))
    return X, Y, C, C0


METHODS = {
    "SMART tuned": lambda X, Y, C0: mt.SMART(Y, X, source=C0).fit(),
    "SubspaceRRR": lambda X, Y, C0: mt.SourceSubspaceRRR(Y, X, source=C0).fit(),
    "BISMART": lambda X, Y, C0: mt.BISMART(Y, X, source=C0).fit(),
    "RRR (rank 2)": lambda X, Y, C0: mt.ReducedRank(Y, X).fit(rank=2),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--sigma0", type=float, default=0.01)
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args(argv)
    err = {m: [] for m in METHODS}
    cpu = {m: [] for m in METHODS}
    for rep in range(args.reps):
        X, Y, C, C0 = simulate_ties(n=args.n, sigma0=args.sigma0, seed=rep)
        for name, fit in METHODS.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c0 = time.process_time()
                res = fit(X, Y, C0)
                cpu[name].append(time.process_time() - c0)
            err[name].append(np.linalg.norm(res.coef - C) / np.sqrt(C.size))
        print(f"seed {rep}: " + ", ".join(f"{m} {err[m][-1]:.5f}" for m in METHODS),
              file=sys.stderr, flush=True)
    print(f"Tied source spectrum, p=100, q=50, n={args.n}, sigma0={args.sigma0}, "
          f"{args.reps} seeds (CPU s, one BLAS thread)")
    print(f"{'method':<14}{'error mean +- se':>22}{'CPU s':>9}")
    for m in METHODS:
        e = np.array(err[m])
        print(f"{m:<14}{e.mean():>12.5f} +- {e.std(ddof=1) / np.sqrt(len(e)):.5f}"
              f"{np.mean(cpu[m]):>9.2f}")
    d = np.array(err["BISMART"]) - np.array(err["SMART tuned"])
    print(f"paired BISMART - SMART tuned: {d.mean():+.5f} +- "
          f"{d.std(ddof=1) / np.sqrt(len(d)):.5f}; BISMART better in "
          f"{int(np.sum(d < 0))}/{len(d)}")


if __name__ == "__main__":
    main()
