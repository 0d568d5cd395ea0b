"""Held-out error against the target's sample size: SMART and Transfer against the
target-only fits (OLS, Ridge, ReducedRank), on the SMART paper's design (reduced) and on
the Fama-French portfolios (linearmodels' ``french``). Drawn by the docs build (a few
replications or splits, ~40 s CPU)."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import mtltransfer as mt
from mtltransfer.models.transfer_family import TRANSFER_CANDIDATES

# Transfer's cross-validation over the family, less its SMART candidate (SMART's own
# tuning inside every fold costs ~10 s a fit; SMART is drawn on its own)
FAMILY = [c for c in TRANSFER_CANDIDATES if c != "SMART"]
METHODS = {"SMART": "C3", "Transfer": "C2", "Ridge": "C1", "ReducedRank": "C0",
           "OLS": "C7"}


def fits(make, source):
    """The five fits from ``make(cls, **kw)`` (a model constructor on the target)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # array sources are taken as exact, etc.
        return {"SMART": make(mt.SMART, source=source).fit(),
                "Transfer": make(mt.Transfer, source=source).fit(candidates=FAMILY),
                "Ridge": make(mt.Ridge).fit(),
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


def fama_french(sizes=(24, 36, 48), starts=range(0, 36, 6), horizon=60):
    """linearmodels' Fama-French data as in benchmarks/real_transfer.py: 30 portfolio
    excess returns (percent) on MktRF, SMB, HML and Mom (p = 4, q = 30); source: OLS on
    1963-1999; target: the first n months from 2000-01 + s; test: the 60 months from
    2000-01 + s + 48, the same for every n (so the sizes are compared on the same
    months)."""
    from linearmodels.datasets import french

    d = french.load()
    ys = list(d.columns[6:])
    for c in ys:
        d[c] = (d[c] - d["RF"]) * 100
    for c in ("MktRF", "SMB", "HML", "Mom"):
        d[c] = d[c] * 100
    year = pd.to_datetime(d["dates"]).dt.year
    formula = " + ".join(ys) + " ~ MktRF + SMB + HML + Mom"
    source = mt.OLS.from_formula(formula, d[(year >= 1963) & (year <= 1999)]).fit()
    post = d[year >= 2000].reset_index(drop=True)
    last = max(sizes)
    rows = []
    for n in sizes:
        for s in starts:
            target, test = post.iloc[s:s + n], post.iloc[s + last:s + last + horizon]
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
panel(axes[1], fama_french(), "Fama-French (p = 4, q = 30), 6 splits",
      "held-out RMSE (% a month)")
axes[0].legend(frameon=False)
