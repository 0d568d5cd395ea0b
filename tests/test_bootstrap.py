"""Bootstrap uncertainty: reproducibility, n_jobs invariance, agreement with closed-form
OLS standard errors, and a small coverage check."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import mtltransfer as mt
from mtltransfer.bootstrap import interval

from conftest import make_problem


@pytest.fixture(scope="module")
def small():
    X, Y, _ = make_problem(60, 5, 3, seed=31)
    return X, Y


def test_same_seed_same_draws_whatever_n_jobs(small):
    X, Y = small
    res = mt.ReducedRank(Y, X, intercept=True).fit(rank=2)
    a = res.bootstrap(n_boot=24, random_state=7)
    b = res.bootstrap(n_boot=24, random_state=7, n_jobs=2)
    np.testing.assert_array_equal(a.coef, b.coef)
    np.testing.assert_array_equal(a.intercept, b.intercept)
    c = res.bootstrap(n_boot=24, random_state=8)
    assert not np.array_equal(a.coef, c.coef)
    assert a.coef.shape == (24, 5, 3) and a.n_failed == 0


def test_residual_bootstrap_se_equals_ols_standard_errors():
    """With residuals inflated by sqrt(n/df) the residual bootstrap's covariance of OLS
    is exactly s^2 (X'X)^{-1}: the draws' standard deviations match statsmodels' bse
    within Monte Carlo error (relative s.e. of a standard deviation: 1/sqrt(2 B))."""
    longley = sm.datasets.longley.load_pandas().data
    formula = "TOTEMP ~ UNEMP + ARMED + POP"
    res = mt.OLS.from_formula(formula, longley).fit()
    ref = sm.OLS.from_formula(formula, longley).fit()
    B = 3000
    boot = res.bootstrap(n_boot=B, random_state=0)
    ratio = boot.bse["TOTEMP"] / ref.bse[["UNEMP", "ARMED", "POP"]]
    assert np.all(np.abs(ratio - 1) < 4 / np.sqrt(2 * B)), ratio
    assert boot.bse_intercept["TOTEMP"] / ref.bse["Intercept"] == pytest.approx(1, abs=0.08)


def test_intervals_and_predictions(small):
    X, Y = small
    res = mt.Ridge(Y, X, intercept=True).fit(alpha=0.1)
    boot = res.bootstrap(n_boot=50, random_state=1)
    ci = boot.conf_int(alpha=0.1)
    assert list(ci.columns) == ["lower", "upper"] and len(ci) == 6 * 3
    assert (ci["lower"] <= ci["upper"]).all()
    assert ci.loc[("Intercept", "Y1")].shape == (2,)
    pred = boot.predict(X[:4], alpha=0.1)
    assert list(pred.columns.get_level_values(1)[:3]) == ["mean", "lower", "upper"]
    np.testing.assert_allclose(pred.xs("mean", axis=1, level=1), res.predict(X[:4]))
    draws = res.predict_draws(X[:4], boot.coef, boot.intercept)
    lo = np.quantile(draws, 0.05, axis=0)
    np.testing.assert_allclose(pred.xs("lower", axis=1, level=1), lo)
    # "basic" reflects the percentile interval about the estimate
    b = boot.conf_int(alpha=0.1, kind="basic")
    est = np.vstack([res.intercept.to_numpy()[None], res.coef]).ravel()
    np.testing.assert_allclose(b["lower"] + ci["upper"], 2 * est)
    with pytest.raises(ValueError, match="kind"):
        boot.conf_int(kind="studentised")


def test_bias_corrected_interval_is_percentile_for_a_median_unbiased_draw():
    rng = np.random.default_rng(3)
    draws = rng.standard_normal((4001, 2))
    est = np.median(draws, axis=0)
    lo_p, hi_p = interval(draws, est, 0.1, "percentile")
    lo_b, hi_b = interval(draws, est, 0.1, "bc")
    np.testing.assert_allclose(lo_b, lo_p, atol=0.02)
    np.testing.assert_allclose(hi_b, hi_p, atol=0.02)
    lo_s, _ = interval(draws + 0.0, est - 0.5, 0.1, "bc")   # estimate below the draws
    assert np.all(lo_s < lo_p)


def test_smart_and_shared_draw_their_subspaces():
    sim = mt.datasets.simulate_smart(120, 12, 6, rank=2, source_rank=4, random_state=4)
    res = mt.SMART(sim.Y, sim.X, source=sim.C0).fit(rank=2, structural_rank=4, lam=0.05)
    boot = res.bootstrap(n_boot=8, random_state=0)
    assert boot.extra["angles_u"].shape == (8, 2) and boot.coef.shape == (8, 12, 6)
    assert np.all((boot.extra["angles_u"] >= 0) & (boot.extra["angles_u"] <= 90))
    s = mt.datasets.simulate_shared(20, 12, 6, 2, random_state=5)
    sres = mt.SharedRepresentation(s.y, s.X, s.task).fit(k=2)
    sboot = sres.bootstrap(n_boot=6, method="pairs", random_state=0)
    assert sboot.coef.shape == (6, 6, 20)
    dist = sboot.extra["subspace_distance"][:, 0]
    assert np.all(dist >= 0) and np.all(dist < 1)
    pred = sboot.predict(s.X[:3], groups=s.task[:3])
    assert pred.shape == (3, 3)


def test_percentile_coverage_of_ols_mean_is_near_nominal():
    """A small, fast coverage check with a wide band: 60 data sets, 5 new points each,
    residual bootstrap with 100 draws; nominal 90%."""
    rng = np.random.default_rng(11)
    beta = np.array([1.0, -0.5, 0.25])
    x_new = rng.standard_normal((5, 3))
    hits = []
    for _ in range(60):
        X = rng.standard_normal((40, 3))
        y = 2.0 + X @ beta + rng.standard_normal(40)
        res = mt.OLS(pd.Series(y, name="y"), X, intercept=True).fit()
        pred = res.bootstrap(n_boot=100, random_state=rng.integers(2 ** 32)).predict(
            x_new, alpha=0.1)
        truth = 2.0 + x_new @ beta
        hits += list((pred[("y", "lower")] <= truth) & (truth <= pred[("y", "upper")]))
    assert 0.8 <= np.mean(hits) <= 0.97
