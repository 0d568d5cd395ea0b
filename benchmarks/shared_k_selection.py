"""Default k selection of SharedRepresentation (marginal-likelihood BIC) on a grid.

For each setting (T tasks, N rows per task, d predictors, true k, noise sigma, condition
number of Sigma_w) the data come from :func:`mtltransfer.datasets.simulate_shared`; the
table reports the chosen k, sin-theta^2 = ||B_perp^T B*||_F^2 of the default fit and of
the fit at the true k, their ratio, and the CPU time (process_time, one BLAS thread) of
both fits and its ratio. Each time is the smallest of several runs (the two fits
alternate, at least 3 runs each and about 0.5 s of the fixed-k fit), so that the load of
a shared machine does not decide the ratio. ``--rates`` prints time and peak memory
against T at N = 20, d = 50, k = 5 (``shared_rates.py --many-tasks``: the model's own
calls, construction included).

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/shared_k_selection.py [--quick] [--rates]
"""

import argparse
import os
import sys
import time

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np                                                      # noqa: E402

from mtltransfer.datasets import simulate_shared                       # noqa: E402
from mtltransfer.solvers.shared_marginal import fit_marginal, select_k_marginal  # noqa
from mtltransfer.solvers.shared_baselines import subspace_distance     # noqa: E402

# (T, N, d, k, sigma, condition number of Sigma_w)
GRID = [
    (100, 50, 20, 2, 1.0, 1), (100, 100, 50, 3, 0.5, 3), (200, 20, 50, 5, 1.0, 1),
    (300, 30, 10, 1, 2.0, 1), (300, 40, 30, 3, 1.0, 10), (400, 8, 40, 4, 1.0, 1),
    (500, 40, 30, 3, 1.0, 1), (1000, 10, 50, 5, 1.0, 1), (1000, 20, 100, 8, 0.5, 3),
    (1000, 50, 20, 6, 2.0, 10), (2000, 5, 10, 2, 0.5, 1), (2000, 10, 30, 4, 2.0, 3),
    (3000, 6, 20, 2, 1.0, 1), (3000, 5, 50, 3, 1.0, 10), (3000, 20, 100, 7, 1.0, 1),
    (5000, 5, 20, 1, 2.0, 1), (5000, 10, 60, 6, 1.0, 3), (5000, 100, 10, 4, 2.0, 10),
    (10000, 5, 30, 5, 0.5, 3), (10000, 8, 80, 8, 1.0, 1), (10000, 20, 40, 2, 2.0, 10),
    (20000, 5, 100, 4, 1.0, 1), (20000, 10, 50, 8, 2.0, 3), (20000, 5, 10, 3, 1.0, 10),
]
QUICK = [0, 3, 6, 10, 12, 15]


def _timed(f):
    t0 = time.process_time()
    out = f()
    return time.process_time() - t0, out


def one(T, N, d, k, sigma, cond, seed=0, min_runs=3, max_runs=15, budget=0.5):
    X, y, task, B, _ = simulate_shared(T, N, d, k, sigma=sigma, condition_number=cond,
                                       random_state=seed)
    tf, fixed = _timed(lambda: fit_marginal(X, y, task, k))
    ta, (k_hat, _, auto) = _timed(lambda: select_k_marginal(X, y, task))
    runs, spent = 1, tf
    while runs < min_runs or (spent < budget and runs < max_runs):
        t1 = _timed(lambda: fit_marginal(X, y, task, k))[0]
        t2 = _timed(lambda: select_k_marginal(X, y, task))[0]
        tf, ta, spent, runs = min(tf, t1), min(ta, t2), spent + t1, runs + 1
    s_fix = subspace_distance(fixed.extra["B"], B) ** 2
    Bh = auto.extra["B"]
    # sin-theta^2 between spans of different dimension: ||P_hat - P*||_F^2 / 2 (equal to
    # ||B_perp^T B*||_F^2 when the dimensions agree)
    s_auto = float(np.sum((Bh @ Bh.T - B @ B.T) ** 2) / 2)
    return k_hat, s_auto, s_fix, tf, ta


def grid(rows):
    print(f"{'T':>6} {'N':>4} {'d':>4} {'k':>2} {'sigma':>5} {'cond':>4} | {'k_hat':>5} "
          f"{'sin2 auto':>9} {'sin2 k*':>8} {'ratio':>6} | {'t k*':>6} {'t auto':>6} "
          f"{'t ratio':>7}")
    ok = within = fast = 0
    sin_ratios, t_ratios = [], []
    for i in rows:
        T, N, d, k, sigma, cond = GRID[i]
        k_hat, sa, sf, tf, ta = one(T, N, d, k, sigma, cond)
        ratio = sa / max(sf, 1e-300)
        ok += k_hat == k
        within += ratio <= 1.25
        fast += ta <= 2 * tf
        sin_ratios.append(ratio)
        t_ratios.append(ta / tf)
        print(f"{T:>6} {N:>4} {d:>4} {k:>2} {sigma:>5.1f} {cond:>4} | {k_hat:>5} "
              f"{sa:>9.4f} {sf:>8.4f} {ratio:>6.2f} | {tf:>6.3f} {ta:>6.3f} "
              f"{ta / tf:>7.2f}", flush=True)
    n = len(rows)
    print(f"k right in {ok}/{n}; sin2 within 1.25x in {within}/{n} (worst ratio "
          f"{max(sin_ratios):.3f}); default <= 2x time in {fast}/{n} (time ratio median "
          f"{np.median(t_ratios):.2f}, worst {max(t_ratios):.2f})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 6-setting subset")
    ap.add_argument("--rates", action="store_true", help="time and memory against T")
    ap.add_argument("--rows", type=str, default=None, help="comma-separated grid rows")
    a = ap.parse_args()
    if a.rates:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from shared_rates import many_tasks

        many_tasks()
    else:
        rows = [int(r) for r in a.rows.split(",")] if a.rows else (
            QUICK if a.quick else range(len(GRID)))
        grid(list(rows))
