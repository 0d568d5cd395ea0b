"""The SMART paper's simulation study (Zhao, Kolar and Lv, 2026, Section 5), reduced.

Design (``mtltransfer.datasets.simulate_smart``): a rank-10 source C0* = U0 D0 V0^T with
D0 = diag(linspace(1, 10, 10)), observed as C0 = C0* + sigma0 * N(0, 1) entrywise; a
rank-5 target C* = U0[:, S_u] diag(linspace(3, 5, 5)) V0[:, S_v]^T built from random
subsets of the source's singular vectors; rows of X ~ N(0, Sigma), Sigma_ij = 0.5^|i-j|;
Y = X C* + 0.5 N(0, 1). Three sizes:

    Model-I   p = 100, q = 50     base n = 200
    Model-II  p = 150, q = 100    base n = 300
    Model-III p = 300, q = 200    base n = 500

Experiments (exp2-4 use the base n of each model):

    exp1  sample size n      I: 200 400 600 800 1000   II: 300 500 700 1000 1200
                             III: 500 700 1000 1200 1500
    exp2  rank given to the methods r in {1, 3, 5, 7, 9, 11} (SMART fixed and RRR get r)
    exp3  structural rank r_u = r_v in {0, 3, 5, 7, 10, 15, 20} (SMART fixed gets it)
    exp4  source noise sigma0 in {0, 0.01, 0.02, 0.05, 0.1, 0.5} (negative transfer)

Methods:

    SMART fixed   SMART(Y, X, source=C0).fit(rank=5, structural_rank=10): r = 5,
                  r_u = r_v = 10, lambda by the BIC path (``--smart-lam`` fixes lambda)
    SMART tuned   SMART(...).fit(): rank by RSC, (r_u, r_v) by CV, lambda by BIC
    RRR           ReducedRank(Y, X).fit(rank=5) (the true rank; exp2: the given rank)
    SRRR, SOFAR, RSSVD
                  SparseReducedRank / SOFAR / RSSVD(Y, X).fit(rank=5): rrpack's sparse
                  comparators, given the rank as RRR is, their penalties tuned
    Ridge         Ridge(Y, X).fit() (alpha by GCV)
    NuclearNorm   NuclearNorm(Y, X).fit() (lambda by 5-fold CV)
    source C0     the source matrix itself (no fit)
    RRRidge       ReducedRankRidge(Y, X).fit(rank=5): reduced-rank ridge (rrpack's rrs.fit),
                  given the rank as RRR is, the ridge by 5-fold CV on the revision's grid
    SubspaceRRRidge
                  ReducedRankRidge(Y, X, source=C0).fit(): the same inside the source's
                  subspaces; rank by RSC, (d_u, d_v) and the ridge by 5-fold CV
    TwoStage      TwoStageTransfer(Y, X, source_endog=Ys, source_exog=Xs).fit(): the
                  two-stage nuclear-norm transfer, which needs the source's ROWS. The
                  design has none (only C0 = C0* + sigma0 N(0, 1)); they are simulated
                  here with the information SMART's C0 carries: rows of X_s ~ N(0, Sigma)
                  (the target's design), Y_s = X_s C0* + 0.5 N(0, 1), and
                  n_s = round(0.5^2 (Sigma^-1)_jj / sigma0^2) = round(0.4167 / sigma0^2)
                  rows (least squares on them has entrywise noise sigma0, as C0 has;
                  at least 2, at most N_SOURCE_MAX = 20,000, which sigma0 = 0 gets). The
                  rows come from a separate stream (seed, 7): the other methods' data are
                  unchanged.
    BISMART       BISMART(Y, X, source=C0).fit(): block-invariant SMART; rank by RSC,
                  the block rule and budget by 5-fold CV, the certificate from C0's
                  estimated noise (r_u, r_v report the selected spans' dimensions)
    SparseSMART   SparseSMART(Y, X, source=C0).fit(): group-sparse source directions;
                  rank by RSC, lam on an 80/20 validation split, refitted on all rows

Metric: average Frobenius error ||C_hat - C*||_F / sqrt(pq). Tables show mean +- standard
error over the seeds beside the published mean of the paper's figures and the ratio
ours / published (``--published PATH``, by default ``shared/paper/
smart_v1_published_means.csv`` beside the repository; "n/a" where there is none),
mean wall time per method (model construction, i.e. the one pass over the rows, plus the
fit, with all tuning) and, in parentheses, its CPU time (the
honest measure on a shared machine: BLAS runs single-threaded), the mean number of ADMM
iterations of the final SMART fit ("iter", as ``res.n_iter`` reports it; the fit is
warm-started from the lambda path) and of the whole BIC lambda path on all rows ("path
it"; the cross-validation fits of "SMART tuned" are not counted), and how many fits did not
converge (their ConvergenceWarnings are caught and counted, not printed).

Seeds (common random numbers): the seed of a draw is ``1000 * rep + 10 * model_index``,
the same for every setting of every experiment. Since ``simulate_smart`` draws the source
noise before everything else and scales it by sigma0, all settings of exp2-4 share the
same target data (X, Y, C*), and exp4's settings differ only by the scale of one source
noise draw: differences between settings are paired, not blurred by sampling noise. It also
means exp1 at the base n, exp2 at r = 5, exp3 at r_u = 10 and exp4 at sigma0 = 0.01 are the
same fits; a fit whose configuration and input arrays (checked by a hash) were already seen
in the run is not repeated but reused (its time is reported with each row; the CSV marks it
``cached``). By default the models are fitted without intercept (the design has none;
``--intercept`` adds one).

Published reference numbers (the authors' implementation, single-threaded BLAS, r = 5,
r_u = r_v = 10, lambda by BIC):

    Model-I,  n = 200:   SMART 0.0066 (0.0056-0.0084 over 3 seeds), RRR (true rank) 0.022,
                         ridge 0.053; one ADMM fit 1.4-2.8 s (75-139 iterations), the fit
                         with lambda tuning 12-23 s
    Model-I,  n = 1000:  SMART 0.0053, 0.2-0.4 s a fit
    Model-II, n = 300:   SMART 0.0058, 1.2-3.9 s a fit, 10-24 s tuned
    sigma0 = 0.1 (Model-I): the fixed-rank fit does not converge in 500 iterations and is
                         worse than target-only RRR (0.038 vs 0.023)

BLAS is limited to one thread (``--threads``) unless OMP_NUM_THREADS etc. are already set,
so that times compare with the published single-threaded ones.

Usage::

    python benchmarks/smart_simulation.py [--models I,II,III] [--experiments 1,2,3,4]
        [--reps 5] [--n 200,500] [--methods "SMART fixed,RRR"] [--csv DIR] [--quick]
        [--published PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys


if __name__ == "__main__":
    from _threads import limit_threads

    limit_threads(sys.argv[1:])

import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import mtltransfer as mt  # noqa: E402
from mtltransfer.exceptions import ConvergenceWarning  # noqa: E402

MODELS = {"I": (100, 50, 200), "II": (150, 100, 300), "III": (300, 200, 500)}
MODEL_INDEX = {"I": 1, "II": 2, "III": 3}
SAMPLE_SIZES = {"I": [200, 400, 600, 800, 1000], "II": [300, 500, 700, 1000, 1200],
                "III": [500, 700, 1000, 1200, 1500]}
RANKS = [1, 3, 5, 7, 9, 11]
STRUCTURAL_RANKS = [0, 3, 5, 7, 10, 15, 20]
SIGMA0S = [0.0, 0.01, 0.02, 0.05, 0.1, 0.5]
TRUE_RANK, BASE_STRUCTURAL_RANK, BASE_SIGMA0 = 5, 10, 0.01
METHODS = ["SMART fixed", "SMART tuned", "RRR", "SRRR", "SOFAR", "RSSVD", "Ridge",
           "NuclearNorm", "source C0", "RidgeToSource", "NuclearContrast", "SubspaceRRR",
           "Mixture", "RRRidge", "SubspaceRRRidge", "TwoStage", "BISMART",
           "SparseSMART"]
# rrpack's sparse reduced-rank comparators, given the rank as RRR is (their penalties tuned)
SPARSE = {"SRRR": mt.SparseReducedRank, "SOFAR": mt.SOFAR, "RSSVD": mt.RSSVD}
# the published means (Zhao, Kolar and Lv, v1): method -> column of the CSV
PUBLISHED_COLUMNS = {"RRR": "RRR", "SRRR": "SRRR", "SOFAR": "SOFAR", "RSSVD": "RSSVD",
                     "SMART fixed": "SMART_fixed", "SMART tuned": "SMART"}
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the project's shared folder sits beside the repository (or beside its worktree folder)
DEFAULT_PUBLISHED = next(
    (f for f in (os.path.join(_ROOT, *up, "shared", "paper", "smart_v1_published_means.csv")
                 for up in (("..",), ("..", ".."))) if os.path.exists(f)),
    os.path.join(_ROOT, "..", "shared", "paper", "smart_v1_published_means.csv"))
# the source-aware transfer baselines (same source, no source rows), fully tuned
TRANSFER = {"RidgeToSource": mt.RidgeToSource, "NuclearContrast": mt.NuclearContrast,
            "SubspaceRRR": mt.SourceSubspaceRRR, "Mixture": mt.SourceMixture,
            "SubspaceRRRidge": mt.ReducedRankRidge, "BISMART": mt.BISMART,
            "SparseSMART": mt.SparseSMART}
#: the source rows of TwoStage (see the module docstring)
N_SOURCE_MAX = 20000


def source_rows(sim, sigma0, seed, sigma=0.5, rho=0.5):
    """Source rows carrying the information of C0: X_s ~ N(0, Sigma), Y_s = X_s C0* +
    sigma N(0, 1), n_s rows such that least squares on them has entrywise noise sigma0
    (interior (Sigma^-1)_jj = (1 + rho^2) / (1 - rho^2) for Sigma_ij = rho^|i-j|)."""
    p = sim.X.shape[1]
    kappa = (1 + rho ** 2) / (1 - rho ** 2)
    n_s = N_SOURCE_MAX if sigma0 == 0 else int(np.clip(round(sigma ** 2 * kappa /
                                                              sigma0 ** 2), 2, N_SOURCE_MAX))
    rng = np.random.default_rng([seed, 7])
    idx = np.arange(p)
    L = np.linalg.cholesky(rho ** np.abs(idx[:, None] - idx[None, :]))
    Xs = rng.standard_normal((n_s, p)) @ L.T
    Ys = Xs @ sim.C0_star + sigma * rng.standard_normal((n_s, sim.Y.shape[1]))
    return Xs, Ys
SMART_METHODS = ("SMART fixed", "SMART tuned")
EXPERIMENTS = {1: ("n", "sample size n"), 2: ("rank", "rank given to the methods"),
               3: ("structural_rank", "structural rank r_u = r_v"),
               4: ("sigma0", "source noise sigma0 (negative transfer)")}
QUICK = {1: [200, 1000], 2: [1, 5], 3: [0, 10], 4: [0.01, 0.1]}


def settings(exp, model, args):
    """The values of the varied quantity for one experiment and model."""
    if exp == 1:
        values = SAMPLE_SIZES[model]
        if args.n:
            values = [v for v in values if v in args.n] or \
                [v for v in args.n if v >= 1]  # an n off the grid is allowed too
    else:
        values = {2: RANKS, 3: STRUCTURAL_RANKS, 4: SIGMA0S}[exp]
    if args.quick:
        values = [v for v in values if v in QUICK[exp]] or values[:2]
    return values


def config(exp, model, value):
    """(n, sigma0, rank, structural rank) of one setting."""
    n = MODELS[model][2]
    rank, srank, sigma0 = TRUE_RANK, BASE_STRUCTURAL_RANK, BASE_SIGMA0
    if exp == 1:
        n = value
    elif exp == 2:
        rank = value
    elif exp == 3:
        srank = value
    else:
        sigma0 = value
    return n, sigma0, rank, srank


def seed_of(rep, model):
    return 1000 * rep + 10 * MODEL_INDEX[model]


# -- one fit ---------------------------------------------------------------------------
def fit_method(method, X, Y, C0, rank, srank, args, source=None):
    """Fit one method; return (coef, info dict). Convergence warnings are counted.
    ``source``: the (X_s, Y_s) rows of TwoStage."""
    kw = {"intercept": args.intercept}
    info = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0, c0 = time.perf_counter(), time.process_time()
        if method == "SMART fixed":
            res = mt.SMART(Y, X, source=C0, **kw).fit(rank=rank, structural_rank=srank,
                                                      lam=args.smart_lam)
        elif method == "SMART tuned":
            res = mt.SMART(Y, X, source=C0, **kw).fit()
        elif method == "RRR":
            res = mt.ReducedRank(Y, X, **kw).fit(rank=rank)
        elif method == "Ridge":
            res = mt.Ridge(Y, X, **kw).fit()
        elif method == "NuclearNorm":
            res = mt.NuclearNorm(Y, X, **kw).fit()
        elif method == "source C0":
            res = None
        elif method == "RRRidge":
            res = mt.ReducedRankRidge(Y, X, **kw).fit(rank=rank)
        elif method == "TwoStage":
            res = mt.TwoStageTransfer(Y, X, source_endog=source[1], source_exog=source[0],
                                      **kw).fit()
        elif method in TRANSFER:
            res = TRANSFER[method](Y, X, source=C0, **kw).fit()
        elif method in SPARSE:
            res = SPARSE[method](Y, X, **kw).fit(rank=rank)
        else:  # pragma: no cover - guarded by the argument parser
            raise ValueError(method)
        info["time"] = time.perf_counter() - t0
        info["cpu"] = time.process_time() - c0
    info["conv_warnings"] = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    others = [w for w in caught if not issubclass(w.category, ConvergenceWarning)]
    info["other_warnings"] = len(others)
    if others:
        info["warning"] = f"{others[0].category.__name__}: {others[0].message}"[:200]
    if res is None:
        info.update(converged=True, n_iter=0)
        return np.asarray(C0, dtype=float), info
    info["converged"] = bool(getattr(res, "converged", True))
    info["n_iter"] = int(getattr(res, "n_iter", 0))
    if method in SMART_METHODS:
        info["rank_used"] = int(res.rank)
        info["r_u"], info["r_v"] = (int(v) for v in res.structural_rank)
        info["lam_u"], info["lam_v"] = (float(v) for v in res.lam)
        info["nnz_omega"] = int(sum(res.nnz_alignment))
        # ADMM iterations of the BIC path on all rows (the final fit is warm-started
        # from it; the cross-validation fits of "SMART tuned" are not traced)
        path = (getattr(res, "tuning", None) or {}).get("bic_path")
        info["path_iter"] = int(path["n_iter"].sum()) if path is not None and \
            "n_iter" in getattr(path, "columns", ()) else 0
    elif method == "RRR":
        info["rank_used"] = int(res.rank)
    elif method == "NuclearNorm":
        info["rank_used"] = int(res.rank)
        info["lam_u"] = float(res.lam)
    elif method in ("Ridge", "RidgeToSource"):
        info["lam_u"] = float(res.alpha)
    elif method == "NuclearContrast":
        info["rank_used"] = int(res.rank)
        info["lam_u"] = float(res.lam)
    elif method in ("SubspaceRRR", "Mixture"):
        info["rank_used"] = int(res.rank)
    elif method == "SparseSMART":
        info["rank_used"] = int(res.rank)
        info["lam_u"] = float(res.lam)
        info["r_u"], info["r_v"] = (len(v) for v in res.support)
    elif method == "BISMART":
        info["rank_used"] = int(res.rank)
        info["r_u"], info["r_v"] = (int(v) for v in res.subspace_rank)
    elif method in ("RRRidge", "SubspaceRRRidge"):
        info["rank_used"] = int(res.rank)
        info["lam_u"] = float(res.ridge)
    elif method == "TwoStage":
        info["rank_used"] = int(res.rank)
        info["lam_u"], info["lam_v"] = float(res.lam_pool), float(res.lam_delta)
        info["n_source"] = int(res.model.source_nobs)
    elif method in SPARSE:
        info["rank_used"] = int(res.hyperparameters.get("fitted_rank", res.rank))
    return res.coef, info


def _digest(*arrays):
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def cache_key(method, rank, srank, X, Y, C, C0, source=None):
    """What a method's fit and its error depend on: the method's configuration and a
    fingerprint of the arrays it reads. Equal keys mean the same fit on the same data, so
    reuse is correct whatever the seeding."""
    if method == "SMART fixed":
        return (method, rank, srank, _digest(X, Y, C, C0))
    if method == "SMART tuned" or method in TRANSFER:
        return (method, _digest(X, Y, C, C0))
    if method == "source C0":
        return (method, _digest(C, C0))
    if method == "TwoStage":
        return (method, _digest(X, Y, C, *source))
    if method in ("RRR", "RRRidge") or method in SPARSE:
        return (method, rank, _digest(X, Y, C))
    return (method, _digest(X, Y, C))  # Ridge, NuclearNorm: target data only


# -- one experiment x model -------------------------------------------------------------
def run(exp, model, args, cache, errors_seen):
    p, q, _ = MODELS[model]
    key_name = EXPERIMENTS[exp][0]
    rows = []
    for value in settings(exp, model, args):
        n, sigma0, rank, srank = config(exp, model, value)
        for rep in range(args.reps):
            seed = seed_of(rep, model)
            sim = mt.datasets.simulate_smart(n, p, q, rank=TRUE_RANK, source_rank=10,
                                             sigma0=sigma0, sigma=0.5, random_state=seed)
            X, Y, C, C0 = sim
            source = source_rows(sim, sigma0, seed) if "TwoStage" in args.methods else None
            for method in args.methods:
                key = cache_key(method, rank, srank, X, Y, C, C0, source)
                cached = key in cache
                if not cached:
                    try:
                        coef, info = fit_method(method, X, Y, C0, rank, srank, args,
                                                source)
                        info["error"] = float(np.linalg.norm(coef - C) / np.sqrt(p * q))
                    except Exception as exc:  # keep the study going; report the failure
                        info = {"error": np.nan, "time": np.nan, "cpu": np.nan,
                                "failure": f"{type(exc).__name__}: {exc}"[:300]}
                        if (method, info["failure"]) not in errors_seen:
                            errors_seen.add((method, info["failure"]))
                            print(f"  ! {method} failed (exp{exp}, Model-{model}, "
                                  f"{key_name}={value}, seed {seed}): {info['failure']}",
                                  file=sys.stderr, flush=True)
                    cache[key] = info
                info = cache[key]
                rows.append({"experiment": exp, "model": model, "p": p, "q": q, "n": n,
                             "setting": key_name, "value": value, "rep": rep, "seed": seed,
                             "sigma0": sigma0, "method": method, "cached": cached, **info})
            if args.csv:  # after every seed, so that a long run leaves partial results
                write_csv(rows, exp, model, args.csv)
        done = [r for r in rows if r["value"] == value]
        print(f"  exp{exp} Model-{model} {key_name}={value}: " + ", ".join(
            f"{m} {_mean([r['error'] for r in done if r['method'] == m]):.4g}"
            for m in args.methods), file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def write_csv(rows, exp, model, folder):
    os.makedirs(folder, exist_ok=True)
    pd.DataFrame(rows).to_csv(os.path.join(folder, f"smart_exp{exp}_model{model}.csv"),
                              index=False)


# -- tables ----------------------------------------------------------------------------
def _mean(x):
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else np.nan


def _se(x):
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(np.std(x, ddof=1) / np.sqrt(x.size)) if x.size > 1 else np.nan


def load_published(path):
    """The published means as ``{(model, experiment, value): {method: mean}}``, or None
    when the file is absent. The CSV's columns: ``model`` ("ModelI"), ``experiment``
    ("exp1"), ``x`` (the setting) and one column per method (:data:`PUBLISHED_COLUMNS`)."""
    if not path or not os.path.exists(path):
        return None
    pub = pd.read_csv(path, comment="#")
    out = {}
    for _, row in pub.iterrows():
        key = (str(row["model"]).replace("Model", ""), int(str(row["experiment"])[3:]),
               float(row["x"]))
        out[key] = {m: float(row[c]) for m, c in PUBLISHED_COLUMNS.items()
                    if c in pub.columns and np.isfinite(row[c])}
    return out


def published_cell(published, model, exp, value, method, mean):
    """``published (ours/published)``, or ``n/a`` when there is no published mean."""
    if published is None:
        return "n/a"
    ref = published.get((model, exp, float(value)), {}).get(method)
    if ref is None:
        return "n/a"
    ratio = mean / ref if np.isfinite(mean) else np.nan
    return f"{ref:.4f} ({ratio:.2f})"


def tables(df, methods, published=None):
    """Error table (mean +- s.e. | published mean (ours / published)) and time /
    iterations / non-convergence table.

    One row per setting; a cell averaged over fewer seeds than the most of the table
    shows that count in brackets.
    """
    model, exp = df["model"].iloc[0], int(df["experiment"].iloc[0])
    setting = df["setting"].iloc[0]
    values = pd.Index(list(dict.fromkeys(df["value"])), name=setting)
    full = int(df.groupby(["value", "method"])["rep"].nunique().max())
    err_tab, tim = pd.DataFrame(index=values), pd.DataFrame(index=values)
    for m in methods:
        d = df[df["method"] == m].groupby("value", sort=False)
        e = d["error"].agg([_mean, _se, "count", "size"]).reindex(values).fillna(
            {"count": 0, "size": 0})
        cells = []
        for mu, se, k, size in zip(e["_mean"], e["_se"], e["count"], e["size"]):
            if size == 0:  # not run
                cells.append("-")
                continue
            if k == 0:
                cells.append("failed")
                continue
            cells.append(f"{mu:.4f}" + (f" ± {se:.4f}" if np.isfinite(se) else "") +
                         (f" [{int(k)}]" if k < full else "") +
                         (f" ({int(size - k)} failed)" if size > k else ""))
        err_tab[m] = [c if c in ("-", "failed") else
                      f"{c} | {published_cell(published, model, exp, v, m, mu)}"
                      for c, v, mu in zip(cells, values, e["_mean"])]
        if m != "source C0":
            wall = d["time"].mean().reindex(values)
            cpu = (d["cpu"].mean() if "cpu" in df else wall * np.nan).reindex(values)
            tim[f"{m} s"] = [("-" if not np.isfinite(w) else f"{w:.3g}") +
                             (f" ({c:.3g})" if np.isfinite(c) else "")
                             for w, c in zip(wall, cpu)]
        if m in SMART_METHODS:
            tim[f"{m} iter"] = d["n_iter"].mean().reindex(values)
            if "path_iter" in df:
                tim[f"{m} path it"] = d["path_iter"].mean().reindex(values)
        if m == "SMART tuned" and "r_u" in df:
            cfg = d[["rank_used", "r_u", "r_v"]].mean().reindex(values)
            tim["tuned r/r_u/r_v"] = ["/".join(f"{x:.3g}" for x in row)
                                      if np.all(np.isfinite(row)) else "-"
                                      for row in cfg.to_numpy()]
    nc = df[df["method"] != "source C0"].copy()
    nc["nc"] = ~nc["converged"].fillna(True).astype(bool)
    ncs = nc.groupby(["value", "method"], sort=False)["nc"].sum().unstack().reindex(values)
    tim["non-conv"] = [", ".join(f"{m.replace('SMART ', 'S.')}:{int(ncs.loc[v, m])}"
                                 for m in ncs.columns if ncs.loc[v, m] > 0) or "-"
                       for v in values]
    return err_tab, tim


def print_tables(df, exp, model, methods, reps, elapsed, what="wall", published=None):
    p, q, base_n = MODELS[model]
    err_tab, tim = tables(df, methods, published)
    head = (f"exp{exp} ({EXPERIMENTS[exp][1]}), Model-{model} (p={p}, q={q}"
            + ("" if exp == 1 else f", n={base_n}") + f"), {reps} seed(s), "
            f"{elapsed:.0f} s {what}")
    print("\n" + head + "\n" + "=" * len(head))
    print("average Frobenius error ||C_hat - C*||_F / sqrt(pq): ours, mean ± s.e. | the "
          "published mean over 100 repetitions (ours / published); one row per method")
    with pd.option_context("display.width", 250, "display.max_colwidth", 60):
        print(err_tab.T.to_string())
    print("mean wall time [s] (CPU time [s]); mean ADMM iterations of the final SMART "
          "fit (iter) and of its BIC lambda path (path it); non-converged fits")
    with pd.option_context("display.width", 200):
        print(tim.to_string(float_format=lambda v: f"{v:.3g}", na_rep="-"))
    fails = df[df.get("failure", pd.Series(index=df.index, dtype=object)).notna()]
    if len(fails):
        print("failed fits: " + ", ".join(f"{m}: {k}" for m, k in
                                          fails.groupby("method").size().items()))
    sys.stdout.flush()


def report(folders, published=None):
    """Print the tables of every experiment x model found in the CSV folders."""
    import glob

    files = {}
    for d in folders:
        for f in sorted(glob.glob(os.path.join(d, "smart_exp*_model*.csv"))):
            files.setdefault(os.path.basename(f), []).append(f)
    if not files:
        sys.exit(f"no smart_exp*_model*.csv in {', '.join(folders)}")
    order = {m: i for i, m in enumerate(MODELS)}
    for name in sorted(files, key=lambda f: (order[f.split("model")[1][:-4]], f)):
        d = pd.concat([pd.read_csv(f) for f in files[name]], ignore_index=True)
        model, exp = d["model"].iloc[0], int(d["experiment"].iloc[0])
        methods = [m for m in METHODS if m in set(d["method"])]
        reps = d["rep"].nunique()
        print_tables(d.drop_duplicates(["value", "rep", "method"], keep="last"), exp, model,
                     methods, reps, d.loc[~d["cached"].astype(bool), "time"].sum(),
                     what="of fitting", published=published)


def _parse_list(s, cast=str):
    return [cast(x.strip()) for x in s.split(",") if x.strip()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="I,II,III", help="comma list of I, II, III")
    ap.add_argument("--experiments", default="1,2,3,4", help="comma list of 1..4")
    ap.add_argument("--reps", type=int, default=5, help="seeds per setting (default 5)")
    ap.add_argument("--n", default=None,
                    help="exp1 only: comma list of sample sizes to keep (e.g. 500)")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="comma list of: " + ", ".join(METHODS))
    ap.add_argument("--smart-lam", type=float, default=None,
                    help="fix lambda of 'SMART fixed' (default: BIC path)")
    ap.add_argument("--intercept", action="store_true",
                    help="fit an intercept (the design has none)")
    ap.add_argument("--csv", default=None, metavar="DIR",
                    help="write raw per-seed rows, one CSV per experiment x model")
    ap.add_argument("--quick", action="store_true",
                    help="1 seed, Model-I only, two settings per experiment")
    ap.add_argument("--threads", default="1", help="BLAS threads (default 1)")
    ap.add_argument("--report", default=None, metavar="DIR[,DIR...]",
                    help="fit nothing: print the tables of the CSVs written by --csv "
                         "(rows of several directories are combined, e.g. runs of "
                         "different methods)")
    ap.add_argument("--published", default=DEFAULT_PUBLISHED, metavar="PATH",
                    help="CSV of the published means (default: %(default)s; 'n/a' is "
                         "printed when it does not exist)")
    args = ap.parse_args(argv)
    published = load_published(args.published)
    if args.report:
        return report(_parse_list(args.report), published)
    models = _parse_list(args.models)
    exps = _parse_list(args.experiments, int)
    args.methods = _parse_list(args.methods)
    args.n = _parse_list(args.n, int) if args.n else None
    bad = [m for m in models if m not in MODELS] + \
        [str(e) for e in exps if e not in EXPERIMENTS] + \
        [m for m in args.methods if m not in METHODS]
    if bad:
        ap.error(f"unknown model/experiment/method: {', '.join(bad)}")
    if args.reps < 1:
        ap.error("--reps must be >= 1")
    if args.quick:
        args.reps, models = 1, ["I"]
    print(f"SMART simulation study: models {','.join(models)}, experiments "
          f"{','.join(map(str, exps))}, {args.reps} seed(s), methods "
          f"{', '.join(args.methods)}; BLAS threads {os.environ.get('OMP_NUM_THREADS')}",
          flush=True)
    cache, errors_seen = {}, set()
    t_all = time.perf_counter()
    for model in models:
        for exp in exps:
            t0 = time.perf_counter()
            df = run(exp, model, args, cache, errors_seen)
            print_tables(df, exp, model, args.methods, args.reps, time.perf_counter() - t0,
                         published=published)
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
