"""Held-out error against the target's sample size: SMART and Transfer against the
target-only fits (OLS, ReducedRank), on the SMART paper's design (reduced) and on
statsmodels' macrodata. Drawn by the docs build (a few replications, ~30 s CPU)."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm

import mtltransfer as mt
from mtltransfer.models.transfer_family import TRANSFER_CANDIDATES

# Transfer's cross-validation over the family, less its SMART candidate (SMART's own
# tuning inside every fold costs ~10 s a fit; SMART is drawn on its own)
FAMILY = [c for c in TRANSFER_CANDIDATES if c != "SMART"]
METHODS = {"SMART": "C3", "Transfer": "C2", "ReducedRank": "C0", "OLS": "C7"}


def fits(make, source):
    """The four fits from ``make(cls, **kw)`` (a model constructor on the target)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # array sources are taken as exact, etc.
        return {"SMART": make(mt.SMART, source=source).fit(),
                "Transfer": make(mt.Transfer, source=source).fit(candidates=FAMILY),
                "ReducedRank": make(mt.ReducedRank).fit(),
                "OLS": make(mt.OLS).fit()}


def simulation(sizes=(40, 80, 160), reps=4, p=30, q=20):
    """The paper's design (rank-3 target inside a rank-6 source's subspaces, AR(1)
    predictors, noise 0.5) at p = 30, q = 20; error = RMSE of the fitted mean on new
    rows, sqrt(tr((C_hat - C)' Sigma (C_hat - C)) / q), computed exactly."""
    Sigma = 0.5 ** np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
    rows = []
    for n in sizes:
        for seed in range(reps):
            X, Y, C, C0 = mt.datasets.simulate_smart(n, p, q, rank=3, source_rank=6,
                                                     random_state=seed)
            for name, res in fits(lambda cls, **kw: cls(Y, X, **kw), C0).items():
                D = res.params.to_numpy() - C
                rows.append((n, name, np.sqrt(np.trace(D.T @ Sigma @ D) / q)))
    return pd.DataFrame(rows, columns=["n", "method", "error"])


def macrodata(sizes=(16, 24, 32), starts=range(0, 24, 4), horizon=20):
    """statsmodels' macrodata as in benchmarks/real_transfer.py: six standardised
    quarterly growth series on two lags of all six (p = 12, q = 6); source: OLS on
    1959-1989; target: n quarters from 1990Q1 + s; test: the 20 quarters after."""
    m = sm.datasets.macrodata.load_pandas().data
    d = pd.DataFrame({f"g_{c}": 100 * np.log(m[c]).diff()
                      for c in ("realgdp", "realcons", "realinv", "realgovt", "realdpi")})
    d["infl"] = m["infl"]
    ys = list(d.columns)
    early = m["year"] <= 1989
    d = (d - d[early].mean()) / d[early].std()
    for c in ys:
        d[f"{c}_l1"], d[f"{c}_l2"] = d[c].shift(1), d[c].shift(2)
    d["year"] = m["year"]
    d = d.dropna().reset_index(drop=True)
    formula = " + ".join(ys) + " ~ " + " + ".join(f"{c}_l{k}" for c in ys for k in (1, 2))
    source = mt.OLS.from_formula(formula, d[d.year <= 1989]).fit()
    post = d[d.year >= 1990].reset_index(drop=True)
    rows = []
    for n in sizes:
        for s in starts:
            target, test = post.iloc[s:s + n], post.iloc[s + n:s + n + horizon]
            make = lambda cls, **kw: cls.from_formula(formula, target, **kw)  # noqa: E731
            for name, res in fits(make, source).items():
                err = test[ys].to_numpy() - res.predict(test).to_numpy()
                rows.append((n, name, np.sqrt(np.mean(err ** 2))))
    return pd.DataFrame(rows, columns=["n", "method", "error"])


def panel(ax, table, title, ylabel, yscale="linear"):
    stats = table.groupby(["method", "n"])["error"].agg(["mean", "sem"])
    for name, colour in METHODS.items():
        s = stats.loc[name]
        ax.errorbar(s.index, s["mean"], yerr=s["sem"], color=colour, marker="o",
                    capsize=3, label=name)
    ax.set(title=title, xlabel="target sample size n", ylabel=ylabel, yscale=yscale,
           xticks=list(stats.index.levels[1]))
    ax.xaxis.set_major_formatter("{x:.0f}")
    ax.title.set_fontsize("medium")


fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
panel(axes[0], simulation(), "Paper's design (p = 30, q = 20), 4 draws",
      "RMSE of the fitted mean", yscale="log")
panel(axes[1], macrodata(), "macrodata (p = 12, q = 6), 6 splits",
      "held-out RMSE (standardised)")
axes[0].legend(frameon=False)
