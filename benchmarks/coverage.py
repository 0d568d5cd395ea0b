"""Empirical coverage of nominal 95% intervals (``res.bootstrap`` and ``AdaptedTask``).

For each case, ``--reps`` data sets are simulated; on each, the model is fitted (tuned on
the full data as ``fit()`` does), and intervals are formed by every method for

* the regression function ``E[y | x]`` at ``--points`` new points (x drawn from the
  design's distribution, fixed across data sets), every response;
* every coefficient entry.

The table gives, per case, method and interval kind, the share of intervals that contain
the truth, its Monte Carlo standard error over the data sets (``se``), the mean widths,
and the seconds (wall and CPU) per interval computation (one bootstrap).

Cases (the SMART paper's design at a small size: p=20, q=8, n=150, rank 2, source rank 4,
noise sigma=0.5):

* ``smart_good``: SMART with a good source (sigma0 = 0.01);
* ``smart_misleading``: SMART with a misleading source (sigma0 = 0.5);
* ``rrr``: ReducedRank at its true rank (2);
* ``shared_adapt``: SharedRepresentation (T=40 tasks of 20 rows, d=10, k=2, noise 1)
  learned with k tuned, then ``adapt()`` on 5 new tasks of 2k = 4 rows each; intervals
  from ``AdaptedTask.predict_interval`` / ``conf_int`` (Student-t, the learned B fixed).

* ``smart_rrr_source``: SMART whose source is a fitted ``ReducedRank`` (rank 4) on
  N0 = 2000 source rows (``Y0 = X0 C0* + 0.5 N(0, 1)``): the bootstrap refits the source
  on redraws of its rows (the default for a results source);
* ``smart_sm_source``: the same source rows fitted by statsmodels OLS, one per response
  (a dict): the bootstrap draws the source from its Gaussian sampling distribution;

* ``smart_mvls_source``: the same source rows fitted by statsmodels ``MultivariateLS``
  (one multivariate fit): drawn from its ``cov_params()``;
* ``smart_array_cov``, ``smart_array_nobs``: the same fit's coefficients given as a plain
  p x q array, which carries no uncertainty (the bootstrap would warn that it is treated
  as exact), with what the user knows passed to the bootstrap: ``source_cov=`` the pair
  ``((X0c^T X0c)^{-1}, Sigma0_hat)``, or ``source_nobs=N0`` (the target's residual
  covariance and design stand in for the source's);

* ``smart_refit``: the good-source SMART design, residual bootstrap (source redrawn) with
  the tuning fixed and with ``refit_tuning=True`` (every replicate tuned again as
  ``fit()`` does, so that the selection is counted), both with ``--boot-refit`` draws
  (default 10: a tuned replicate costs about 40 times a fixed one) on the same data sets
  and seeds. With so few draws the ``normal`` interval (Student's quantile on B - 1 degrees
  of freedom) is the one to compare; the percentile ones are given too.

Methods (bootstrap, ``refit_tuning=False``): ``residual`` and ``pairs``; for SMART with
an array source (``smart_good``, ``smart_misleading``, ``smart_refit``) the source is
redrawn in every replicate with a standard error estimated from its trailing singular
values (``source_sd="estimate"``), and ``residual (source exact)`` (``source_sd=0``)
shows what happens without; a fitted source is redrawn from its own sampling
distribution.

    python benchmarks/coverage.py [--reps 200] [--boot 200] [--quick] [--csv out.csv]
        [--cases smart_good,rrr] [--methods residual,pairs] [--start 0]
        [--table a.csv,b.csv] [--boot-refit 10]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small dense products: one thread
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy import stats

import mtltransfer as mt
from mtltransfer.bootstrap import KINDS, interval

P, Q, N, RANK, SOURCE_RANK = 20, 8, 150, 2, 4
CASES = {"smart_good": 0.01, "smart_misleading": 0.5, "rrr": None, "shared_adapt": None,
         "smart_refit": 0.01, "smart_rrr_source": None, "smart_sm_source": None,
         "smart_mvls_source": None, "smart_array_cov": None, "smart_array_nobs": None}
# the fitted sources: N0 rows X0 ~ N(0, Sigma), Y0 = X0 C0* + SIGMA_SOURCE N(0, 1)
N0, SIGMA_SOURCE = 2000, 0.5
# method label -> res.bootstrap keywords (an array source: its noise level estimated from
# its trailing singular values, the default of earlier versions)
SMART_METHODS = {"residual": dict(method="residual", source_sd="estimate"),
                 "pairs": dict(method="pairs", source_sd="estimate"),
                 "residual (source exact)": dict(method="residual", source_sd=0.0)}
# a fitted source: redrawn from its own sampling distribution (the default)
FITTED_SOURCE_METHODS = {"residual": dict(method="residual"),
                         "pairs": dict(method="pairs")}
# an array source (the source rows' least-squares fit, as numbers): what the user knows
# of it is passed to the bootstrap (set per data set in bootstrap_case)
ARRAY_CASES = {"smart_array_cov": "source_cov", "smart_array_nobs": "source_nobs"}
RRR_METHODS = {"residual": dict(method="residual"), "pairs": dict(method="pairs")}
REFIT_METHODS = {"residual, tuning fixed": dict(method="residual", source_sd="estimate"),
                 "residual, tuning refit": dict(method="residual", refit_tuning=True,
                                                source_sd="estimate")}
# SharedRepresentation: tasks, rows per task, d, k, new tasks
T_SHARED, N_SHARED, D_SHARED, K_SHARED, NEW_TASKS = 40, 20, 10, 2, 5


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def bootstrap_case(case, seed, x_new, args):
    """Coverage indicators and widths of one simulated data set, per method and kind."""
    sigma0 = CASES[case] if CASES[case] is not None else 0.01
    sim = mt.datasets.simulate_smart(N, P, Q, rank=RANK, source_rank=SOURCE_RANK,
                                     sigma0=sigma0, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case == "rrr":
            res = mt.ReducedRank(sim.Y, sim.X).fit(rank=RANK)
            methods = RRR_METHODS
        elif case in ("smart_rrr_source", "smart_sm_source", "smart_mvls_source"):
            res = mt.SMART(sim.Y, sim.X, source=fitted_source(case, sim, seed)).fit()
            methods = FITTED_SOURCE_METHODS
        elif case in ARRAY_CASES:
            C0_hat, cov = fitted_source(case, sim, seed)
            res = mt.SMART(sim.Y, sim.X, source=C0_hat).fit()
            given = {"source_cov": cov, "source_nobs": N0}[ARRAY_CASES[case]]
            methods = {f"residual ({ARRAY_CASES[case]})": dict(
                method="residual", **{ARRAY_CASES[case]: given})}
        else:
            res = mt.SMART(sim.Y, sim.X, source=sim.C0).fit()
            methods = REFIT_METHODS if case == "smart_refit" else SMART_METHODS
    n_boot = args.boot_refit if case == "smart_refit" else args.boot
    mean_truth = x_new @ sim.C
    point = res.predict(x_new).to_numpy()
    rows = []
    for label, kw in methods.items():
        if args.methods and label not in args.methods:
            continue
        boot, wall, cpu = _timed(lambda: res.bootstrap(n_boot=n_boot, random_state=seed,
                                                       **kw))
        draws = res.predict_draws(x_new, boot.coef, boot.intercept)
        for kind in KINDS:
            lo, hi = interval(draws, point, args.alpha, kind)
            clo, chi = interval(boot.coef, res.coef, args.alpha, kind)
            rows.append({
                "case": case, "dataset": seed, "method": label, "kind": kind,
                "cover_mean": float(np.mean((lo <= mean_truth) & (mean_truth <= hi))),
                "width_mean": float(np.mean(hi - lo)),
                "cover_coef": float(np.mean((clo <= sim.C) & (sim.C <= chi))),
                "width_coef": float(np.mean(chi - clo)),
                "seconds": wall, "cpu_seconds": cpu})
    return rows


def fitted_source(case, sim, seed):
    """The source study's fit on its own N0 rows drawn about the noiseless source C0*:
    ReducedRank at the source's rank, statsmodels OLS per response (a dict), statsmodels
    MultivariateLS, or (array cases) the least-squares coefficients as a p x q array with
    their covariance as the pair ((X0c^T X0c)^{-1}, Sigma0_hat) (X0c: centred rows)."""
    import statsmodels.api as sm

    rng = np.random.default_rng([seed, 7])
    Sigma = 0.5 ** np.abs(np.subtract.outer(np.arange(P), np.arange(P)))
    X0 = rng.standard_normal((N0, P)) @ np.linalg.cholesky(Sigma).T
    Y0 = X0 @ sim.C0_star + SIGMA_SOURCE * rng.standard_normal((N0, Q))
    if case == "smart_rrr_source":
        return mt.ReducedRank(Y0, X0).fit(rank=SOURCE_RANK)
    if case in ARRAY_CASES:
        X0c, Y0c = X0 - X0.mean(0), Y0 - Y0.mean(0)
        G = np.linalg.inv(X0c.T @ X0c)
        C0_hat = G @ X0c.T @ Y0c
        E = Y0c - X0c @ C0_hat
        return C0_hat, (G, E.T @ E / (N0 - P - 1))
    X0f = sm.add_constant(pd.DataFrame(X0, columns=[f"x{i + 1}" for i in range(P)]))
    if case == "smart_mvls_source":
        from statsmodels.multivariate.multivariate_ols import MultivariateLS

        Y0f = pd.DataFrame(Y0, columns=[f"Y{j + 1}" for j in range(Q)])
        return MultivariateLS(Y0f, X0f).fit()
    return {f"Y{j + 1}": sm.OLS(Y0[:, j], X0f).fit() for j in range(Q)}


def shared_case(seed, args):
    """SharedRepresentation learned on T tasks, adapted to new tasks of 2k rows."""
    k = K_SHARED
    sim = mt.datasets.simulate_shared(T_SHARED + NEW_TASKS, N_SHARED, D_SHARED, k,
                                      random_state=seed)
    old = sim.task < T_SHARED
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the joint fit ("gd": adapt() is least squares on X B) and the random-effects fit
        # (the default: adapt() is the posterior mean, get_prediction its interval)
        res = mt.SharedRepresentation(sim.y[old], sim.X[old], sim.task[old]).fit(
            k=k, method="gd")
        post = mt.SharedRepresentation(sim.y[old], sim.X[old], sim.task[old]).fit()
    rng = np.random.default_rng(seed)
    x_new = rng.standard_normal((args.points, D_SHARED))
    hits, widths, chits, cwidths, wall, cpu = [], [], [], [], 0.0, 0.0
    phits, pwidths, pchits, pcwidths, pwall, pcpu = [], [], [], [], 0.0, 0.0
    for t in range(T_SHARED, T_SHARED + NEW_TASKS):
        rows = np.flatnonzero(sim.task == t)[:2 * k]
        theta = sim.B @ sim.W[:, t]
        (pi, ci), w_, c_ = _timed(lambda: (
            (a := res.adapt(sim.X[rows], sim.y[rows])).predict_interval(x_new, args.alpha),
            a.conf_int(args.alpha)))
        wall, cpu = wall + w_, cpu + c_
        f = x_new @ theta
        hits.append(np.mean((pi["lower"] <= f) & (f <= pi["upper"])))
        widths.append(np.mean(pi["upper"] - pi["lower"]))
        chits.append(np.mean((ci[0] <= theta) & (theta <= ci[1])))
        cwidths.append(np.mean(ci[1] - ci[0]))
        (ad, pp), w_, c_ = _timed(lambda: (
            (a := post.adapt(sim.X[rows], sim.y[rows])),
            a.get_prediction(x_new).summary_frame(args.alpha)))
        pwall, pcpu = pwall + w_, pcpu + c_
        lo, hi = pp["mean_ci_lower"], pp["mean_ci_upper"]
        phits.append(np.mean((lo <= f) & (f <= hi)))
        pwidths.append(np.mean(hi - lo))
        # the posterior of the coefficients B w: mean B w_post, covariance B V B^T
        B = post.representation.to_numpy()
        half = stats.norm.ppf(1 - args.alpha / 2) * np.sqrt(
            np.einsum("ik,kl,il->i", B, ad.w_cov, B))
        est = ad.params.to_numpy()
        pchits.append(np.mean((est - half <= theta) & (theta <= est + half)))
        pcwidths.append(np.mean(2 * half))
    return [{"case": "shared_adapt", "dataset": seed, "method": "t, B fixed", "kind": "analytic",
             "cover_mean": float(np.mean(hits)), "width_mean": float(np.mean(widths)),
             "cover_coef": float(np.mean(chits)), "width_coef": float(np.mean(cwidths)),
             "seconds": wall / NEW_TASKS, "cpu_seconds": cpu / NEW_TASKS},
            {"case": "shared_adapt", "dataset": seed, "method": "posterior (random effects)",
             "kind": "analytic", "cover_mean": float(np.mean(phits)),
             "width_mean": float(np.mean(pwidths)), "cover_coef": float(np.mean(pchits)),
             "width_coef": float(np.mean(pcwidths)), "seconds": pwall / NEW_TASKS,
             "cpu_seconds": pcpu / NEW_TASKS}]


def table(df):
    """Mean coverage and width per case, method and kind, with the Monte Carlo s.e."""
    keys = ["case", "method", "kind"]
    out = df.groupby(keys, sort=False).agg(
        reps=("cover_mean", "size"), cover_mean=("cover_mean", "mean"),
        width_mean=("width_mean", "mean"), cover_coef=("cover_coef", "mean"),
        width_coef=("width_coef", "mean"), seconds=("seconds", "mean"),
        cpu_seconds=("cpu_seconds", "mean"))
    # Monte Carlo standard error of a coverage share over the data sets
    out.insert(2, "se", df.groupby(keys, sort=False)["cover_mean"].sem())
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--start", type=int, default=0,
                    help="first data set (to split a run across processes)")
    ap.add_argument("--boot-refit", type=int, default=10,
                    help="draws per bootstrap in the smart_refit case")
    ap.add_argument("--points", type=int, default=10)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--methods", default=None,
                    help="comma-separated bootstrap method labels (default: all)")
    ap.add_argument("--quick", action="store_true", help="20 data sets, 50 draws")
    ap.add_argument("--csv", default=None, help="write the per-data-set rows here")
    ap.add_argument("--table", default=None,
                    help="only print the table of these comma-separated csv files")
    args = ap.parse_args(argv)
    if args.table:
        df = pd.concat([pd.read_csv(f) for f in args.table.split(",")], ignore_index=True)
        tab = table(df)
        print(tab.round(3).to_string())
        return tab
    if args.quick:
        args.reps, args.boot = 20, 50
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if args.methods:
        args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    rng = np.random.default_rng(20261125)
    # new points from the design's distribution: rows N(0, Sigma), Sigma_ij = 0.5^|i-j|
    Sigma = 0.5 ** np.abs(np.subtract.outer(np.arange(P), np.arange(P)))
    x_new = rng.standard_normal((args.points, P)) @ np.linalg.cholesky(Sigma).T
    print(f"coverage of nominal {1 - args.alpha:.0%} intervals; {args.reps} data sets, "
          f"{args.boot} bootstrap draws; SMART/RRR: p={P}, q={Q}, n={N}, rank {RANK}",
          flush=True)
    rows, t0, c0 = [], time.perf_counter(), time.process_time()
    for case in args.cases:
        for rep in range(args.start, args.start + args.reps):
            rows += (shared_case(1000 + rep, args) if case == "shared_adapt"
                     else bootstrap_case(case, 1000 + rep, x_new, args))
            if args.csv and (rep - args.start) % 5 == 4:
                pd.DataFrame(rows).to_csv(args.csv, index=False)
        print(f"  {case}: done, {time.perf_counter() - t0:.0f} s wall, "
              f"{time.process_time() - c0:.0f} s CPU", flush=True)
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    tab = table(df)
    print(tab.round(3).to_string())
    return tab


if __name__ == "__main__":
    main()
