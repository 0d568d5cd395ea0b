# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # SMART quickstart: transfer from a source study's coefficients
#
# A small *target* study with many responses and predictors, and the fitted coefficient
# matrix of a larger, related *source* study. SMART estimates a low-rank coefficient
# matrix for the target whose singular subspaces lie in the source's leading subspaces,
# up to a few sparse "leaks". Only the source's coefficients are used, never its rows.
#
# The embedded demo data (`mtltransfer.datasets.load_demo`, the SMART paper's design with
# named columns): a source study of 2,000 rows and a target study of only 120 rows, for
# 30 predictors and 12 responses, plus 400 held-out target rows. The target's rank-3
# matrix uses three of the source's six singular directions, one of them turned a little
# out of the source's subspace: a *leak* that SMART has to find.

# %%
import numpy as np
import pandas as pd

import mtltransfer as mt

pd.set_option("display.width", 88)
pd.set_option("display.max_columns", 8)

demo = mt.datasets.load_demo()
formula = demo["formula"]                       # "Y1 + ... + Y12 ~ x1 + ... + x30"
target, test, truth = demo["target"], demo["test"], demo["C"]
ynames = list(truth.columns)

# the source study: any multi-response fit of its rows; only its coefficients are used
source = mt.ReducedRank.from_formula(formula, demo["source"]).fit()
print(target.shape, test.shape, source.params.shape)

# %% [markdown]
# ## Fit with a formula
#
# The formula lists the responses on the left, as in `"Y1 + Y2 ~ x1 + x2"`. The source
# can be a fitted results object (as here), a DataFrame of coefficients (aligned to the
# target by name; an `Intercept` row would be ignored), or a plain `p x q` array.
#
# `fit()` with no arguments tunes everything: the rank by the rank selection criterion
# of Bunea, She and Wegkamp, the structural ranks `(r_u, r_v)` by 5-fold
# cross-validation, and the penalty `lam` by BIC along a warm-started path. The tuning
# sees only the 120 target rows: the 400 held-out rows are used below, to judge the fit,
# and never for choosing it.

# %%
model = mt.SMART.from_formula(formula, target, source=source)
res = model.fit()
print(res.summary())

# %% [markdown]
# ## Reading the summary
#
# * The top right block says what was chosen and **how**: `rank 3 (RSC)`, the
#   structural ranks by cross-validation and `lam` by BIC.
# * `nnz Omega_u, Omega_v` counts the coordinates of the target's singular vectors
#   outside the source's leading `r_u` (left) and `r_v` (right) directions: zero means the
#   target's subspaces lie entirely inside the source's. Here the left one is not zero:
#   SMART found the demo's leak.
# * "Spectrum and principal angles" puts the target's singular values beside the
#   source's and gives the angles between the fitted subspaces and the source's leading
#   ones (small angles: the source's directions were reused).
# * `Iterations` and `Converged`: the ADMM solver's iteration count for the final fit
#   (the lambda path's own iterations are counted separately), and its primal and dual
#   residuals at the last iteration.
#
# Everything in the summary is also available as attributes:

# %%
print("rank", res.rank, "| structural rank", res.structural_rank,
      "| lam (%.3g, %.3g)" % res.lam, "| converged", res.converged,
      "in", res.n_iter, "iterations")
print(res.singular_values.round(3).to_dict())
print(res.principal_angles().round(3))
res.params.iloc[:5, :5]

# %% [markdown]
# The alignment matrices `Omega_u = U_perp' U` and `Omega_v = V_perp' V` hold those
# leaks; their rows are the source's singular directions beyond the structural ranks.

# %%
for name, om in res.alignment.items():
    print(name, om.shape, "nonzero:", int((om.abs() > 0).to_numpy().sum()))

# %% [markdown]
# The tuning traces are kept as DataFrames in `res.tuning`: the eigenvalues of the rank
# criterion against its threshold, the cross-validation loss per structural rank, and
# the BIC along the lambda path.

# %%
print(res.tuning["cv"][["r_u", "r_v", "cv_mean", "cv_se"]].round(4))
res.tuning["bic_path"][["lam_u", "bic", "nnz"]].round(4)

# %% [markdown]
# ## Predicting and comparing with target-only fits
#
# `predict` takes a DataFrame with the formula's columns and returns a DataFrame of
# predictions, one column per response. We compare SMART with fits that use the target
# alone: least squares, ridge (alpha by GCV) and reduced rank (rank by the same
# criterion), on the 400 held-out rows, and with the true coefficient matrix.

# %%
pred = res.predict(test)
print(pred.iloc[:3, :4].round(3))

fits = {"SMART": res,
        "OLS": mt.OLS.from_formula(formula, target).fit(),
        "Ridge": mt.Ridge.from_formula(formula, target).fit(),
        "ReducedRank": mt.ReducedRank.from_formula(formula, target).fit()}
Y_test = test[ynames].to_numpy()
comparison = pd.DataFrame({
    "test MSE": {k: float(np.mean((Y_test - r.predict(test).to_numpy()) ** 2))
                 for k, r in fits.items()},
    "relative coef error": {k: float(np.linalg.norm(r.params - truth) /
                                     np.linalg.norm(truth))
                            for k, r in fits.items()},
})
print(comparison.round(3))
print("noise variance (the best possible test MSE): 1.0")

# %% [markdown]
# With 120 rows for 360 coefficients, least squares is far from the truth, reduced-rank
# regression helps, and SMART, which only has to find three directions near the
# source's six-dimensional subspaces (and the one leak), is closest to the truth and to
# the noise floor.
#
# ## Plots
#
# With the optional plotting extra (`pip install "mtltransfer[plot]"`), the functions of
# `mtltransfer.plotting` draw the solver's convergence, the spectrum, the alignment
# matrices and the tuning curves; each returns a matplotlib Figure.

# %%
try:
    import matplotlib
except ImportError:  # the plots are optional
    matplotlib = None

if matplotlib is not None:
    from mtltransfer import plotting

    fig_convergence = plotting.plot_convergence(res)
    fig_tuning = plotting.plot_tuning(res)

# %%
if matplotlib is not None:
    fig_spectrum = plotting.plot_spectrum(res)
    fig_alignment = plotting.plot_alignment(res)
