"""The comparators on the SMART paper's Model-I (p = 100, q = 50, rank-5 target inside a
rank-10 source's subspaces), drawn by the docs build from 2 seeds (~40 s CPU); the
tables of the Comparators page hold 5 seeds. Markers: the paper's published means
(v1, 100 repetitions)."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import mtltransfer as mt

SEEDS = (0, 1)
SIZES = (200, 600, 1000)
SIGMA0 = (0.0, 0.02, 0.1, 0.5)

# the paper's Model-I means (v1, 100 repetitions), the same numbers as the tables' rows
# "(published v1)": sample size at sigma0 = 0.01, and source noise at n = 200
PUBLISHED_N = pd.DataFrame(
    {"RRR": [0.022081, 0.010164, 0.007578], "SRRR": [0.022261, 0.010175, 0.007588],
     "SOFAR": [0.026965, 0.012190, 0.008692], "RSSVD": [0.033955, 0.015794, 0.011159],
     "SMART": [0.00715496, 0.00616572, 0.00574139]}, index=SIZES)
PUBLISHED_SIGMA0 = pd.DataFrame(
    {"RRR": [0.022081] * 4, "SMART": [0.00447865, 0.01084216, 0.02214134, 0.02168905]},
    index=SIGMA0)

TARGET_ONLY = {"SMART": lambda Y, X, C0: mt.SMART(Y, X, source=C0).fit(),
               "RRR": lambda Y, X, C0: mt.ReducedRank(Y, X).fit(rank=5),
               "SRRR": lambda Y, X, C0: mt.SparseReducedRank(Y, X).fit(rank=5),
               "SOFAR": lambda Y, X, C0: mt.SOFAR(Y, X).fit(rank=5),
               "RSSVD": lambda Y, X, C0: mt.RSSVD(Y, X).fit(rank=5),
               "NuclearNorm": lambda Y, X, C0: mt.NuclearNorm(Y, X).fit()}
SOURCE_AWARE = {
    "SourceSubspaceRRR": lambda Y, X, C0: mt.SourceSubspaceRRR(Y, X, source=C0).fit(),
    "RidgeToSource": lambda Y, X, C0: mt.RidgeToSource(Y, X, source=C0).fit(),
    "NuclearContrast": lambda Y, X, C0: mt.NuclearContrast(Y, X, source=C0).fit(),
    "SourceMixture": lambda Y, X, C0: mt.SourceMixture(Y, X, source=C0).fit()}
COLOURS = {"SMART": "C3", "RRR": "C0", "SRRR": "C1", "SOFAR": "C4", "RSSVD": "C5",
           "NuclearNorm": "C7", "SourceSubspaceRRR": "C2", "RidgeToSource": "C8",
           "NuclearContrast": "C9", "SourceMixture": "C6"}


def errors(methods, n, sigma0, seed):
    X, Y, C, C0 = mt.datasets.simulate_smart(n, 100, 50, rank=5, source_rank=10,
                                             sigma0=sigma0, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # array sources are taken as exact
        return {name: np.linalg.norm(fit(Y, X, C0).params.to_numpy() - C) / np.sqrt(C.size)
                for name, fit in methods.items()}


def table(methods, xs, key):
    rows = [{"x": x, **errors(methods, **{"n": 200, "sigma0": 0.01, key: x}, seed=s)}
            for x in xs for s in SEEDS]
    long = pd.DataFrame(rows).melt(id_vars="x", var_name="method", value_name="error")
    return long.groupby(["method", "x"])["error"].agg(["mean", "sem"])


def panel(ax, stats, published, title, xlabel):
    for name in stats.index.get_level_values(0).unique():
        s = stats.loc[name]
        ax.errorbar(s.index, s["mean"], yerr=s["sem"], color=COLOURS[name], marker="o",
                    ms=4, capsize=2, label=name)
        if name in published:
            ax.plot(published.index, published[name], ls="none", marker="x", ms=7,
                    color=COLOURS[name])
    ax.plot([], [], ls="none", marker="x", color="k", label="published mean")
    ax.set(title=title, xlabel=xlabel, yscale="log")
    ax.title.set_fontsize("medium")
    ax.legend(frameon=False, fontsize="small")


by_n = table({**TARGET_ONLY, **SOURCE_AWARE}, SIZES, "n")
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained", sharey=True)
panel(axes[0], by_n.loc[list(TARGET_ONLY)], PUBLISHED_N, "target-only (rank 5 given)",
      "target sample size n")
panel(axes[1], by_n.loc[["SMART", *SOURCE_AWARE]], PUBLISHED_N,
      "source-aware baselines", "target sample size n")
by_sigma0 = table({k: TARGET_ONLY[k] for k in ("SMART", "RRR")}
                  | {"SourceSubspaceRRR": SOURCE_AWARE["SourceSubspaceRRR"]},
                  SIGMA0, "sigma0")
panel(axes[2], by_sigma0, PUBLISHED_SIGMA0, "source noise (n = 200)", "sigma0")
axes[2].set_xscale("symlog", linthresh=0.01)
axes[0].set_ylabel("||C_hat - C*||_F / sqrt(pq)")
