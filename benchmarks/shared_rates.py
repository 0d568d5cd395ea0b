"""Rate study of the shared-representation estimator (docs/shared_representation.rst).

Simulated data (``mtltransfer.datasets.simulate_shared``: B* orthonormal, w_t ~ N(0, I_k),
x ~ N(0, I_d), sigma = 1). For every setting and repetition it fits

    gd       scaled gradient descent on (B, W)  (fit_shared_representation, the estimator)
    altmin   alternating minimisation: exact W, plain gradient step on B, QR
    mom      method-of-moments B, then W by least squares
    ls       per-task least squares (ridge when N_t < d)
    nuc      convex relaxation, lam = sigma_hat (sqrt(d) + sqrt(T)) / sqrt(N)

and reports

    sin2     squared sin-theta error ||B_hat_perp^T B*||_F^2 (ls, nuc: top-k left singular
             vectors of their d x T estimate)
    coef     mean_t ||theta_hat_t - theta*_t||^2
    risk     new-task excess risk ||B_hat w_hat - B* w*||^2 after ``adapt`` on N_NEW = 100
             fresh rows (mean over new tasks), and ``risk - oracle`` (the same with B*
             known), the part due to the representation. N_NEW is fixed across every study
             so that the N study varies only the training tasks' rows: with N_NEW = N the
             new task's own estimation error also shrinks with N and steepens the slope.

with log-log slopes of sin2 and of (risk - oracle) against the prediction dk/(TN), fitted
on the points where the estimator's sin-theta error sqrt(sin2) is below 0.5.

gd, altmin and mom share one W-step; ``--w-ridge`` sets its penalty (the ``w_ridge``
argument of ``fit_shared_representation``): ``auto`` (the default there, the
empirical-Bayes ridge), ``none`` (the pure likelihood) or a number.

``--many-tasks`` prints only the time and memory of the model's own calls against T (up
to 50,000 tasks: the constructor, ``fit(k)`` and the default ``fit()``).

Usage::

    python benchmarks/shared_rates.py [--reps 5] [--csv DIR] [--quick] [--w-ridge auto]
    python benchmarks/shared_rates.py --many-tasks
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
import zlib

# one BLAS thread (before NumPy loads): faster for these small dense products
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mtltransfer.datasets import simulate_shared  # noqa: E402
from mtltransfer.exceptions import ConvergenceWarning  # noqa: E402
from mtltransfer.solvers.shared_baselines import (adapt, fit_nuclear_norm,  # noqa: E402
                                                  fit_per_task)
from mtltransfer.solvers.shared_fit import fit_shared_representation  # noqa: E402


MAX_ITER = 5000          # gd and altmin are both run to their stopping rule
W_RIDGE = "auto"         # W-step penalty of gd, altmin and mom (set by --w-ridge)


def sin2(B_hat, B_star):
    """Squared sin-theta distance k - ||B_hat^T B*||_F^2."""
    return max(B_star.shape[1] - np.linalg.norm(B_hat.T @ B_star) ** 2, 0.0)


def top_k(Theta, k):
    return np.linalg.svd(Theta, full_matrices=False)[0][:, :k]


N_NEW = 100


def new_task_risk(B_hat, B_star, N, rng, n_tasks=200):
    """Mean excess risk on new tasks of B_hat and of the oracle B*, both via adapt."""
    d, k = B_star.shape
    risk = oracle = 0.0
    for _ in range(n_tasks):
        w = rng.standard_normal(k)
        X = rng.standard_normal((N, d))
        y = X @ (B_star @ w) + rng.standard_normal(N)
        risk += np.sum((B_hat @ adapt(B_hat, X, y) - B_star @ w) ** 2)
        oracle += np.sum((B_star @ adapt(B_star, X, y) - B_star @ w) ** 2)
    return risk / n_tasks, oracle / n_tasks


def timed(f, *a, **kw):
    t0 = time.perf_counter()
    out = f(*a, **kw)
    return out, time.perf_counter() - t0


def run_setting(T, N, d, k, seed, nuclear=True, cond=1.0):
    sim = simulate_shared(T, N, d, k, sigma=1.0, condition_number=cond, random_state=seed)
    X, y, task, B, W = sim
    Theta = B @ W
    rng = np.random.default_rng(10_000 + seed)
    rows = []

    def row(method, B_hat, coef, secs, n_iter=np.nan, converged=True, init_sin2=np.nan):
        out = {"T": T, "N": N, "d": d, "k": k, "cond": cond, "seed": seed,
               "method": method, "sin2": sin2(B_hat, B),
               "coef": float(np.mean(np.sum((coef - Theta) ** 2, axis=0))),
               "coef_med": float(np.median(np.sum((coef - Theta) ** 2, axis=0))),
               "time": secs, "n_iter": n_iter, "converged": converged,
               "init_sin2": init_sin2, "pred": d * k / (T * N),
               "pred_Nk": d * k / (T * (N - k))}
        if method in ("gd", "mom"):
            out["risk"], out["oracle"] = new_task_risk(B_hat, B, N_NEW, rng)
        rows.append(out)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for method in ("gd", "altmin", "mom"):
            res, secs = timed(fit_shared_representation, X, y, task, k, method=method,
                              max_iter=MAX_ITER, w_ridge=W_RIDGE)
            row(method, res.extra["B"], res.coef, secs, res.n_iter, res.converged,
                sin2(res.extra["B_init"], B))
            if method == "gd":
                sigma_hat = np.sqrt(res.extra["sigma2"])
        res, secs = timed(fit_per_task, X, y, task)
        row("ls", top_k(res.coef, k), res.coef, secs)
        if nuclear:
            lam = sigma_hat * (np.sqrt(d) + np.sqrt(T)) / np.sqrt(N)
            res, secs = timed(fit_nuclear_norm, X, y, task, lam, tol=1e-6)
            row("nuc", top_k(res.coef, k), res.coef, secs, res.n_iter, res.converged)
    return rows


def slope(x, y):
    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(x, y, 1)[0]) if len(x) >= 2 else float("nan")


def study(name, var, grid, base, reps, nuclear=True):
    rows = []
    for v in grid:
        p = dict(base, **{var: v})
        for r in range(reps):
            seed = zlib.crc32(f"{name}/{v}/{r}".encode())   # reproducible per point
            rows += run_setting(p["T"], p["N"], p["d"], p["k"], seed=seed,
                                nuclear=nuclear, cond=p.get("cond", 1.0))
    df = pd.DataFrame(rows)
    df["study"] = name
    return df


def summarise(df, var):
    g = df.groupby([var, "method"])
    tab = g[["sin2", "coef", "coef_med", "time", "n_iter"]].mean().unstack("method")
    return tab


def slopes_table(df, var):
    gd = df[df.method == "gd"].groupby(var)[["sin2", "risk", "oracle", "pred",
                                              "pred_Nk"]].mean()
    gd["excess"] = gd["risk"] - gd["oracle"]
    ok = np.sqrt(gd["sin2"]) < 0.5
    sel = gd[ok]
    pred_slope = slope(sel.index, sel["pred"])
    return gd, {"var": var, "points": int(ok.sum()),
                "slope_sin2": slope(sel.index, sel["sin2"]),
                "slope_excess_risk": slope(sel.index, sel["excess"].clip(lower=1e-12)),
                "slope_prediction_dk/(TN)": pred_slope,
                "slope_sin2_vs_pred": slope(sel["pred"], sel["sin2"]),
                "slope_excess_vs_pred": slope(sel["pred"],
                                              sel["excess"].clip(lower=1e-12)),
                "slope_sin2_vs_pred_Nk": slope(sel["pred_Nk"], sel["sin2"])}


def many_tasks(Ts=(5000, 10000, 20000, 50000), N=20, d=50, k=5):
    """Time and peak memory against T of what a user runs (N = 20, d = 50, k = 5; CPU
    seconds, one BLAS thread): ``mod = SharedRepresentation(y, X, groups=task)`` (the
    model validates, copies and indexes the rows), ``mod.fit(k)`` and the default
    ``mod.fit()`` (k by the marginal-likelihood BIC). Peak memory (tracemalloc) of
    everything held from the model's construction on, plus the predictors, over the
    predictors' size; "copy" is the default, "view" a read-only X (kept without a copy)."""
    import tracemalloc

    from mtltransfer import SharedRepresentation

    print("\n=== many tasks: the model's own calls (marginal likelihood), N=20, d=50, k=5")
    print(f"{'T':>6} {'X':>4} {'X MB':>7} | {'model s':>7} {'fit(k) s':>8} {'peak/X':>6} | "
          f"{'fit() s':>7} {'peak/X':>6} {'k_hat':>5}")
    rows = []
    for T, mode in ((T, mode) for T in Ts for mode in ("copy", "view")):
        X, y, task, B, _ = simulate_shared(T, N, d, k, random_state=0)
        if mode == "view":
            X.flags.writeable = False
        xb = X.nbytes
        tracemalloc.start()
        t0 = time.process_time()
        mod = SharedRepresentation(y, X, groups=task)
        tm = time.process_time() - t0
        t0 = time.process_time()
        mod.fit(k)
        tf = time.process_time() - t0
        pf = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        t0 = time.process_time()
        auto = mod.fit()
        ta = time.process_time() - t0
        pa = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append({"T": T, "X": mode, "model s": tm, "fit(k) s": tf, "fit() s": ta,
                     "peak/X fit(k)": (xb + pf) / xb, "peak/X fit()": (xb + pa) / xb,
                     "k_hat": auto.k})
        print(f"{T:>6} {mode:>4} {xb / 2**20:>7.0f} | {tm:>7.2f} {tf:>8.2f} "
              f"{(xb + pf) / xb:>6.2f} | {ta:>7.2f} {(xb + pa) / xb:>6.2f} {auto.k:>5}",
              flush=True)
    return pd.DataFrame(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--many-tasks", action="store_true",
                    help="only the time and memory table against T (up to 50,000 tasks)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--csv", default=None, help="directory for CSV output")
    ap.add_argument("--quick", action="store_true",
                    help="fewer repetitions (2) and smaller grids for N, d, k")
    ap.add_argument("--w-ridge", default="auto",
                    help="W-step penalty: 'auto' (default), 'none' or a number")
    args = ap.parse_args(argv)
    if args.many_tasks:
        many_tasks()
        return
    global W_RIDGE
    W_RIDGE = None if args.w_ridge.lower() == "none" else \
        (args.w_ridge if args.w_ridge == "auto" else float(args.w_ridge))
    print(f"W-step penalty w_ridge = {W_RIDGE!r}")
    reps = min(args.reps, 2) if args.quick else args.reps
    pd.set_option("display.width", 200, "display.max_columns", 30,
                  "display.float_format", lambda v: f"{v:.4g}")
    t_start = time.perf_counter()

    base = {"T": 200, "N": 20, "d": 50, "k": 5}
    grids = {
        "T": [50, 100, 200, 400, 800, 1600, 3200],
        "N": [10, 20, 40, 80, 160, 320] if not args.quick else [10, 20, 40, 80, 160],
        "d": [25, 50, 100, 200] if not args.quick else [25, 50, 100],
        "k": [2, 3, 5, 8, 12] if not args.quick else [2, 3, 5, 8],
    }
    bases = {"T": base, "N": base, "d": dict(base, T=400), "k": dict(base, T=400)}
    frames, slope_rows = [], []
    for var, grid in grids.items():
        df = study(f"vs_{var}", var, grid, bases[var], reps, nuclear=True)
        frames.append(df)
        print(f"\n=== error vs {var} (others: {bases[var]}), mean over {reps} reps ===")
        print(summarise(df, var).to_string())
        gd, sl = slopes_table(df, var)
        print(f"\n-- gd: sin2, new-task excess risk and prediction dk/(TN) vs {var}")
        print(gd.assign(sin=np.sqrt(gd["sin2"])).to_string())
        slope_rows.append(sl)
        if var == "T":
            it = df[df.method.isin(["gd", "altmin"])].pivot_table(
                index="T", columns="method", values="n_iter", aggfunc=["mean", "max"])
            print("\n-- iterations to convergence vs T (d=50, k=5, N=20)")
            print(it.to_string())
            ini = df[df.method.isin(["gd", "mom"])].pivot_table(
                index="T", columns="method", values="init_sin2")
            ini.columns = ["init=ridge (gd start)", "init=mom"]
            print("\n-- squared sin-theta of the two spectral starts vs T")
            print(ini.to_string())

    # conditioning of W: what the preconditioner buys
    dfc = study("vs_cond", "cond", [1.0, 10.0, 100.0], dict(base, T=400), reps,
                nuclear=False)
    frames.append(dfc)
    print("\n=== condition number of Cov(w) (T=400, N=20, d=50, k=5) ===")
    print(summarise(dfc[dfc.method.isin(["gd", "altmin", "mom"])], "cond").to_string())

    slopes = pd.DataFrame(slope_rows).set_index("var")
    print("\n=== fitted log-log slopes (points with sin-theta < 0.5) ===")
    print("slope_sin2 / slope_excess_risk: against the variable; *_vs_pred: against "
          "dk/(TN) (prediction: 1);\n*_vs_pred_Nk: against dk/(T(N-k)), the same rate "
          "with the k degrees of freedom each task spends on its own w_t")
    print(slopes.to_string())

    # large problem wall time
    times = []
    for r in range(1 if args.quick else 3):
        sim = simulate_shared(10_000, 25, 100, 5, random_state=77 + r)
        res, secs = timed(fit_shared_representation, sim.X, sim.y, sim.task, 5,
                          w_ridge=W_RIDGE)
        times.append({"rep": r, "time_s": secs, "n_iter": res.n_iter,
                      "converged": res.converged, "sin2": sin2(res.extra["B"], sim.B)})
    big = pd.DataFrame(times)
    print("\n=== wall time, T=10,000, d=100, k=5, N=25 (gd, including the spectral start)")
    print(big.to_string(index=False))

    # acceptance checks
    alldf = pd.concat(frames, ignore_index=True)
    m = alldf.groupby(["study", "T", "N", "d", "k", "cond", "method"])[
        ["sin2", "coef", "coef_med", "time", "n_iter", "converged"]].mean() \
        .unstack("method")
    checks = pd.DataFrame({
        "sin gd": np.sqrt(m["sin2"]["gd"]),
        "gd/altmin sin2": m["sin2"]["gd"] / m["sin2"]["altmin"],
        "gd/mom sin2": m["sin2"]["gd"] / m["sin2"]["mom"],
        "gd/ls sin2": m["sin2"]["gd"] / m["sin2"]["ls"],
        "iter gd": m["n_iter"]["gd"], "iter altmin": m["n_iter"]["altmin"],
        "time gd": m["time"]["gd"], "time altmin": m["time"]["altmin"],
        "conv gd": m["converged"]["gd"], "conv alt": m["converged"]["altmin"],
        "coef gd/ls": m["coef"]["gd"] / m["coef"]["ls"],
        "coef_med gd/ls": m["coef_med"]["gd"] / m["coef_med"]["ls"],
    })
    print("\n=== per-setting comparison of gd with the baselines (means over reps; "
          "conv = fraction converged) ===")
    print(checks.to_string())
    idx = checks.index.to_frame()
    n_lt_2d = (idx["N"] < 2 * idx["d"]).values
    fewer = (checks["iter gd"] <= checks["iter altmin"]) | \
        (checks["time gd"] <= checks["time altmin"])
    for label, sel in (("all settings", np.ones(len(checks), bool)),
                       ("settings with sin-theta(gd) < 0.5",
                        (checks["sin gd"] < 0.5).values)):
        c = checks[sel]
        print(f"\nchecks on {label} ({int(sel.sum())} of {len(checks)}):")
        print(f"  gd within 2% of altmin (sin2): "
              f"{bool((c['gd/altmin sin2'] <= 1.02).all())} "
              f"(max ratio {c['gd/altmin sin2'].max():.4f})")
        print(f"  gd more accurate than mom (sin2): {bool((c['gd/mom sin2'] < 1).all())}")
        print(f"  gd fewer iterations or less time than altmin: {bool(fewer[sel].all())}")
        lt = n_lt_2d & sel
        print(f"  gd more accurate than per-task LS wherever N < 2d: sin2 "
              f"{bool((checks['gd/ls sin2'][lt] < 1).all())}, mean coef error "
              f"{bool((checks['coef gd/ls'][lt] < 1).all())}, median coef error "
              f"{bool((checks['coef_med gd/ls'][lt] < 1).all())}")
    print(f"\n  total time gd {alldf[alldf.method == 'gd'].time.sum():.1f} s vs altmin "
          f"{alldf[alldf.method == 'altmin'].time.sum():.1f} s")
    itT = alldf[(alldf.study == "vs_T") & (alldf.method == "gd")].groupby("T").n_iter.mean()
    print(f"  gd iterations over T={itT.index.min()}..{itT.index.max()}: "
          f"{itT.round(1).tolist()}")
    print(f"  T=10,000 fit: median {big.time_s.median():.2f} s")
    print(f"\ntotal benchmark time {time.perf_counter() - t_start:.0f} s")

    if args.csv:
        os.makedirs(args.csv, exist_ok=True)
        alldf.to_csv(os.path.join(args.csv, "shared_rates_runs.csv"), index=False)
        slopes.to_csv(os.path.join(args.csv, "shared_rates_slopes.csv"))
        checks.to_csv(os.path.join(args.csv, "shared_rates_checks.csv"))
        big.to_csv(os.path.join(args.csv, "shared_rates_walltime.csv"), index=False)
        print(f"CSV written to {args.csv}")


if __name__ == "__main__":
    main()
