"""Coverage of nominal 95% bootstrap intervals for the coefficients, on the SMART
paper's design at a small size (p = 20, q = 8, n = 150, rank 2, source rank 4, a good
source: sigma0 = 0.01). Drawn by the docs build from 12 data sets and 40 draws each
(~30 s CPU); benchmarks/coverage.py measures 200 data sets."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import mtltransfer as mt

DATA_SETS, DRAWS = range(12), 40
CASES = {  # label: (fit, bootstrap keywords)
    "SMART, source redrawn\n(residual)": ("SMART", dict(method="residual",
                                                         source_sd="estimate")),
    "SMART, source redrawn\n(pairs)": ("SMART", dict(method="pairs", source_sd="estimate")),
    "SMART, source exact\n(residual)": ("SMART", dict(method="residual", source_sd=0.0)),
    "ReducedRank\n(residual)": ("RRR", dict(method="residual")),
    "ReducedRank\n(pairs)": ("RRR", dict(method="pairs")),
}

rows = []
for seed in DATA_SETS:
    X, Y, C, C0 = mt.datasets.simulate_smart(150, 20, 8, rank=2, source_rank=4,
                                             sigma0=0.01, random_state=1000 + seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = {"SMART": mt.SMART(Y, X, source=C0).fit(),
                "RRR": mt.ReducedRank(Y, X).fit(rank=2)}
        for label, (name, kw) in CASES.items():
            res = fits[name]
            ci = res.bootstrap(n_boot=DRAWS, random_state=seed, **kw).conf_int(0.05)
            # the slopes (rows: predictors, columns: responses), as C is laid out
            lo, hi = (ci.iloc[:, j].unstack("response").loc[res.params.index,
                                                            res.params.columns].to_numpy()
                      for j in (0, 1))
            rows.append((label, np.mean((lo <= C) & (C <= hi))))

cover = pd.DataFrame(rows, columns=["case", "coverage"]).groupby("case", sort=False)
stats = cover["coverage"].agg(["mean", "sem"])
fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
y = np.arange(len(stats))[::-1]
ax.errorbar(stats["mean"], y, xerr=2 * stats["sem"], ls="none", marker="o", color="C0",
            capsize=3)
ax.axvline(0.95, color="C3", ls="--", label="nominal 0.95")
ax.set(yticks=y, yticklabels=stats.index, xlim=(0.6, 1.0),
       xlabel="share of coefficient intervals covering the truth")
ax.legend(frameon=False, loc="lower left")
