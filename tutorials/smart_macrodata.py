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
# # Transfer on real data: US macroeconomic series (statsmodels `macrodata`)
#
# Does a model fitted on one period of US macroeconomic history help to fit a short,
# later period? This tutorial asks the question with SMART and answers it by measuring
# out-of-sample errors, not by assumption.
#
# * **Data**: the quarterly `macrodata` set shipped with statsmodels (1959Q1 to 2009Q3,
#   no download).
# * **Responses** (q = 9): annualised growth rates (400 x log difference) of real GDP,
#   consumption, investment, government spending, disposable income, the CPI and M1, and
#   the quarterly changes of the unemployment rate and the 3-month T-bill rate.
# * **Predictors** (p = 9): the first lag of each of the nine series, i.e. a VAR(1).
# * **Source**: the VAR(1) coefficients fitted by least squares on 1959 to 1984. Only
#   these 9 x 9 coefficients are passed to SMART.
# * **Target**: the period from 1985 (the "Great Moderation" and the 2008 recession).
#   We pretend to know only a short stretch of it, `n_train` quarters, fit on that, and
#   forecast the next 8 quarters; the origin of the stretch rolls through the target
#   period.

# %%
import textwrap
import time
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm

import mtltransfer as mt

pd.set_option("display.width", 88)
pd.set_option("display.max_columns", 20)

raw = sm.datasets.macrodata.load_pandas().data
quarters = pd.PeriodIndex.from_fields(year=raw["year"].astype(int),
                                      quarter=raw["quarter"].astype(int), freq="Q")
raw.index = quarters

series = pd.DataFrame(index=quarters)
for name in ["realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1"]:
    series[name] = 400 * np.log(raw[name]).diff()      # annualised growth, percent
series["unemp"] = raw["unemp"].diff()                   # change, percentage points
series["tbilrate"] = raw["tbilrate"].diff()
responses = list(series.columns)

lags = series.shift(1).add_suffix("_lag1")
data = pd.concat([series, lags], axis=1).dropna()
predictors = list(lags.columns)
formula = " + ".join(responses) + " ~ " + " + ".join(predictors)
print(textwrap.fill(formula, 88, subsequent_indent="    "))

# %% [markdown]
# The two periods. Every column is standardised with the **source period's** mean and
# standard deviation (so the errors below are in source standard deviations, and no
# information from the target leaks into the scaling).

# %%
split = pd.Period("1984Q4", freq="Q")
centre, scale = data.loc[:split].mean(), data.loc[:split].std()
z = (data - centre) / scale
source_rows, target_rows = z.loc[:split], z.loc[split + 1:]
print(f"source: {source_rows.index[0]} to {source_rows.index[-1]}, "
      f"{len(source_rows)} quarters")
print(f"target: {target_rows.index[0]} to {target_rows.index[-1]}, "
      f"{len(target_rows)} quarters")

source_fit = mt.OLS.from_formula(formula, source_rows).fit()
print("source singular values:",
      np.linalg.svd(source_fit.params.to_numpy(), compute_uv=False).round(2))

# %% [markdown]
# Did the dynamics change between the periods? The least-squares VAR(1) of the *whole*
# target period, compared with the source's, says how different the two coefficient
# matrices are, and how much of the target's leading subspaces the source's leading
# subspaces contain (principal angles; 0 degrees = shared direction, 90 = orthogonal).
# This uses all target rows, so it is a diagnostic only, never used for fitting below.

# %%
from scipy.linalg import subspace_angles

whole_target = mt.OLS.from_formula(formula, target_rows).fit()
C0, C_all = source_fit.params.to_numpy(), whole_target.params.to_numpy()
print("relative difference ||C_target - C0|| / ||C0|| = %.2f"
      % (np.linalg.norm(C_all - C0) / np.linalg.norm(C0)))
U0, _, V0t = np.linalg.svd(C0)
U1, _, V1t = np.linalg.svd(C_all)
for k in (1, 2, 3):
    left = np.degrees(subspace_angles(U1[:, :k], U0[:, :3])).max()
    right = np.degrees(subspace_angles(V1t[:k].T, V0t[:3].T)).max()
    print(f"target's leading {k} vs source's leading 3: largest angle "
          f"left {left:.0f}, right {right:.0f} deg")

# %% [markdown]
# ## One short target stretch in detail
#
# Six years (24 quarters) from 1985Q1, then SMART with everything tuned automatically.

# %%
train = target_rows.iloc[:24]
res = mt.SMART.from_formula(formula, train, source=source_fit).fit()
print(res.summary().tables[0])
print(res.summary().tables[1])

# %% [markdown]
# In the recorded run the rank criterion keeps a single component, cross-validation
# picks structural ranks (4, 4) and BIC a penalty that lets two coordinates on each side
# leak out of the source's leading subspaces; the fitted directions are about 25 (left)
# and 60 (right) degrees away from them. The target borrows the source's geometry only
# loosely.

# %% [markdown]
# ## Comparison with target-only fits
#
# A forecaster standing at the end of 1996 fits each method on the most recent
# `n_train` quarters (all after 1984, so inside the target period) and forecasts every
# quarter from 1997Q1 to 2009Q3 one step ahead (the lags are observed). The test period
# is the same for every training length, so the lengths can be compared. Methods:
#
# * **SMART** (source: the 1959 to 1984 VAR(1)), all tuning automatic;
# * target-only **OLS**, **Ridge** (alpha by GCV), **ReducedRank** (rank by the rank
#   selection criterion), **NuclearNorm** (lambda by 5-fold CV);
# * **source only**: the source's coefficients with the training stretch's own
#   intercept;
# * **mean only**: the training stretch's mean of each series (no dynamics).
#
# The score is the mean squared forecast error over the test quarters and the nine
# series, divided by that of the mean-only forecast: below 1 means the fitted dynamics
# help.


# %%
def source_only(train, test):
    """Forecasts with the source's coefficients and the target's own intercept."""
    C = source_fit.params.loc[predictors, responses].to_numpy()
    b = train[responses].mean().to_numpy() - train[predictors].mean().to_numpy() @ C
    return test[predictors].to_numpy() @ C + b


methods = {
    "SMART": lambda tr: mt.SMART.from_formula(formula, tr, source=source_fit).fit(),
    "OLS": lambda tr: mt.OLS.from_formula(formula, tr).fit(),
    "Ridge": lambda tr: mt.Ridge.from_formula(formula, tr).fit(),
    "ReducedRank": lambda tr: mt.ReducedRank.from_formula(formula, tr).fit(),
    "NuclearNorm": lambda tr: mt.NuclearNorm.from_formula(formula, tr).fit(n_lams=15),
}
order = list(methods) + ["source only", "mean only"]


def compare(origin, train_lengths):
    """Squared forecast errors of every method, per test quarter and series."""
    origin = pd.Period(origin, freq="Q")
    test = target_rows.loc[origin:]
    Y = test[responses].to_numpy()
    out = []
    for n_train in train_lengths:
        train = target_rows.loc[:origin - 1].iloc[-n_train:]
        assert len(train) == n_train and train.index[0] > split
        preds = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # small-sample tuning warnings
            for name, fit in methods.items():
                preds[name] = fit(train).predict(test).to_numpy()
        preds["source only"] = source_only(train, test)
        preds["mean only"] = np.broadcast_to(train[responses].mean().to_numpy(),
                                             Y.shape)
        for name, P in preds.items():
            out.append(pd.DataFrame((Y - P) ** 2, index=test.index, columns=responses)
                       .assign(n_train=n_train, method=name))
    return pd.concat(out)


def relative_error(sq, periods=None):
    """Pooled MSE per (n_train, method), relative to the mean-only forecast."""
    if periods is not None:
        sq = sq[(sq.index >= pd.Period(periods[0], freq="Q"))
                & (sq.index <= pd.Period(periods[1], freq="Q"))]
    mse = sq.groupby(["n_train", "method"])[responses].mean().mean(axis=1)
    mse = mse.unstack("method")[order]
    return mse.div(mse["mean only"], axis=0)


t0 = time.perf_counter()
train_lengths = (12, 16, 24, 32, 48)
sq_errors = compare("1997Q1", train_lengths)
relative = relative_error(sq_errors)
print(f"test: 1997Q1 to 2009Q3, {time.perf_counter() - t0:.1f} s")
print(relative.round(3))

# %% [markdown]
# The same forecasts, split into the calm years and the 2008 to 2009 recession:

# %%
print("1997Q1 to 2007Q4")
print(relative_error(sq_errors, ("1997Q1", "2007Q4")).round(3))
print("2008Q1 to 2009Q3")
print(relative_error(sq_errors, ("2008Q1", "2009Q3")).round(3))

# %% [markdown]
# Which series benefit? Relative error per response at 16 training quarters.

# %%
short = sq_errors[sq_errors["n_train"] == 16].groupby("method")[responses].mean()
print(short.div(short.loc["mean only"], axis=1).loc[order].round(2).to_string())

# %% [markdown]
# Is the ranking an accident of the forecast origin? The same comparison from another
# origin, 1993Q1 (test 1993Q1 to 2009Q3), with two training lengths:

# %%
relative_1993 = relative_error(compare("1993Q1", (16, 32)))
print(relative_1993.round(3))

# %% [markdown]
# ## What the numbers say
#
# The statements below are computed from the tables above, so they stay true if the
# data, the package or the settings change.

# %%
both = pd.concat({"1997Q1": relative, "1993Q1": relative_1993}, names=["origin"])
target_only = ["OLS", "Ridge", "ReducedRank", "NuclearNorm"]
for (origin, n_train), row in both.iterrows():
    better = [m for m in order[1:] if row["SMART"] < row[m]]
    best = row[target_only].idxmin()
    print(f"origin {origin}, n_train {n_train:2d}: SMART {row['SMART']:.3f}, best "
          f"target-only {best} {row[best]:.3f};\n    SMART better than: "
          f"{', '.join(better) or 'none'}")

smart_beats_rrr = float((both["SMART"] < both["ReducedRank"]).mean())
smart_beats_ols = float((both["SMART"] < both["OLS"]).mean())
smart_beats_best = float((both["SMART"] < both[target_only].min(axis=1)).mean())
smart_beats_mean = float((both["SMART"] < 1).mean())
source_beats_mean = float((both["source only"] < 1).mean())
print("share of settings where SMART beats:")
print(f"  reduced rank {smart_beats_rrr:.2f}, OLS {smart_beats_ols:.2f},")
print(f"  the best target-only fit {smart_beats_best:.2f}, "
      f"the mean-only forecast {smart_beats_mean:.2f}")
print("share of settings where the source alone beats the mean:",
      f"{source_beats_mean:.2f}")

# %% [markdown]
# ### Conclusion
#
# Numbers quoted here are from the run recorded in the documentation (mtltransfer 0.1.0,
# statsmodels' copy of the data); the printed lines above are the ones to trust if
# you change anything.
#
# * **Transfer does not win on this data.** Ridge, fitted on the target alone, is the
#   best method in every setting (relative error 0.73 to 1.01), the nuclear-norm fit is
#   a close second, and SMART is worse than both everywhere (0.97 to 2.37). Quarterly
#   macro growth rates are barely predictable from their own lags: the best forecast
#   improves on the mean-only forecast by at most 27 percent, and not at all with 12 or
#   16 training quarters from 1997; only methods that shrink all coefficients towards
#   zero manage it consistently.
# * **Where the source helps, it helps low-rank fitting with very short stretches.**
#   The fair comparison for SMART is the same rank-constrained model fitted on the
#   target alone (ReducedRank). With 12 or 16 training quarters SMART beats it from
#   both origins (1997: 2.37 vs 4.43 and 1.65 vs 1.83; 1993: 1.11 vs 1.26), and it
#   beats least squares by far; with 24 quarters or more it is no better than
#   reduced rank. SMART does not shrink its singular values, so borrowing directions
#   cannot make it competitive with shrinkage when the signal is this weak.
# * **The source's coefficients alone are worse than the mean forecast in every
#   setting** (1.18 to 1.26). The 1959 to 1984 dynamics do not carry over as they
#   are: the target's leading direction is within 26 (left) and 51 (right) degrees of
#   the source's leading subspaces, but its second and third are 65 to 88 degrees
#   away; the T-bill rate, whose source period includes the 1979 to 1982 monetary
#   experiment, is forecast almost six times worse than by its mean.
# * **When would transfer help?** When the target is short *and* its signal is strong
#   and low rank inside the source's subspaces, as in the simulated quickstart, where
#   SMART is close to the noise floor and well ahead of every target-only fit. On your
#   own data, run a comparison like the one above before trusting the source.
