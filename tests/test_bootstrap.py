"""Bootstrap uncertainty: reproducibility, n_jobs invariance, agreement with closed-form
OLS standard errors, and a small coverage check."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import mtltransfer as mt
from mtltransfer.bootstrap import interval, source_noise_sd
from scipy import stats

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
    assert list(ci.columns) == [0, 1] and len(ci) == 6 * 3       # statsmodels' layout
    assert (ci[0] <= ci[1]).all()
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
    np.testing.assert_allclose(b[0] + ci[1], 2 * est)
    with pytest.raises(ValueError, match="kind"):
        boot.conf_int(kind="studentised")


def test_normal_interval_is_student_t_on_the_draws_standard_deviation():
    """kind="normal": estimate -+ t_{B-1}(1 - alpha/2) sd(draws). For an estimate
    N(theta, 1) and B draws N(estimate, 1) about it, (estimate - theta) / sd is exactly
    t_{B-1}: the interval covers 95% even with B = 10, where the percentile one does not."""
    rng = np.random.default_rng(5)
    B, M = 10, 4000
    est = rng.standard_normal(M)                       # theta = 0
    draws = est + rng.standard_normal((B, M))
    lo, hi = interval(draws, est, 0.05, "normal")
    half = stats.t.ppf(0.975, B - 1) * draws.std(axis=0, ddof=1)
    np.testing.assert_allclose(hi - lo, 2 * half)
    np.testing.assert_allclose(lo + hi, 2 * est)
    cover = np.mean((lo <= 0) & (0 <= hi))
    assert abs(cover - 0.95) < 4 * np.sqrt(0.95 * 0.05 / M), cover
    plo, phi = interval(draws, est, 0.05, "percentile")
    assert np.mean((plo <= 0) & (0 <= phi)) < cover - 0.03


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


def _span(M, r):
    """Orthonormal basis of the leading r-dimensional column space of M."""
    return np.linalg.svd(M, full_matrices=False)[0][:, :r]


def test_smart_and_shared_draw_their_subspaces():
    """Each draw's subspace summaries are those of the draw's own coefficients, recomputed
    independently (scipy's principal angles; the projector distance)."""
    from scipy.linalg import subspace_angles

    sim = mt.datasets.simulate_smart(120, 12, 6, rank=2, source_rank=4, random_state=4)
    res = mt.SMART(sim.Y, sim.X, source=sim.C0).fit(rank=2, structural_rank=4, lam=0.05)
    boot = res.bootstrap(n_boot=8, random_state=0, source_sd=0)
    assert boot.extra["angles_u"].shape == (8, 2) and boot.coef.shape == (8, 12, 6)
    U0, _, V0t = np.linalg.svd(sim.C0)
    for b in range(8):
        for key, basis, M in (("angles_u", U0[:, :4], boot.coef[b]),
                              ("angles_v", V0t[:4].T, boot.coef[b].T)):
            ref = np.sort(np.degrees(subspace_angles(_span(M, 2), basis)))
            np.testing.assert_allclose(np.sort(boot.extra[key][b]), ref, atol=1e-6)
    assert len({tuple(np.round(a, 8)) for a in boot.extra["angles_u"]}) == 8
    s = mt.datasets.simulate_shared(20, 12, 6, 2, random_state=5)
    sres = mt.SharedRepresentation(s.y, s.X, s.task).fit(k=2)
    sboot = sres.bootstrap(n_boot=6, method="pairs", random_state=0)
    assert sboot.coef.shape == (6, 6, 20)
    P = sres.representation.to_numpy() @ sres.representation.to_numpy().T
    for b in range(6):
        Bb = _span(sboot.coef[b], 2)          # the draw's B W spans its representation
        ref = np.linalg.norm(Bb @ Bb.T - P) / np.sqrt(2)
        assert sboot.extra["subspace_distance"][b, 0] == pytest.approx(ref, abs=1e-8)
    # a prediction for a known task: the fit's prediction, and the 2.5% / 97.5%
    # percentiles of the draws' x'(B W)[:, t] + intercept_t
    pred = sboot.predict(s.X[:3], groups=s.task[:3])
    np.testing.assert_allclose(pred.iloc[:, 0], sres.predict(s.X[:3], groups=s.task[:3]),
                               atol=1e-12)
    draws = np.stack([np.einsum("ij,ji->i", s.X[:3], sboot.coef[b][:, s.task[:3]])
                      + sboot.intercept[b, s.task[:3]] for b in range(6)])
    np.testing.assert_allclose(pred.iloc[:, 1], np.percentile(draws, 2.5, axis=0),
                               atol=1e-10)
    np.testing.assert_allclose(pred.iloc[:, 2], np.percentile(draws, 97.5, axis=0),
                               atol=1e-10)


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


def test_residual_bootstrap_se_of_ols_equals_closed_form():
    """Two responses with an intercept: the residual bootstrap's draws of OLS have
    covariance s_j^2 (X'X)^{-1} (X with its constant column, s_j^2 = SSR_j / (n - p - 1));
    their standard deviations agree within Monte Carlo error (relative s.e. 1/sqrt(2B))."""
    X, Y, _ = make_problem(30, 3, 2, noise=0.5, seed=12)
    res = mt.OLS(Y, X, intercept=True).fit()
    Xc = np.column_stack([np.ones(len(X)), X])
    G = np.linalg.lstsq(Xc, Y, rcond=None)[0]
    s2 = ((Y - Xc @ G) ** 2).sum(0) / (len(X) - Xc.shape[1])
    se = np.sqrt(np.outer(np.diag(np.linalg.inv(Xc.T @ Xc)), s2))   # (p + 1) x q
    B = 2000
    boot = res.bootstrap(n_boot=B, random_state=3)
    assert res.bootstrap_results is boot
    ratio = np.vstack([boot.bse_intercept.to_numpy()[None], boot.bse.to_numpy()]) / se
    assert np.all(np.abs(ratio - 1) < 4 / np.sqrt(2 * B)), ratio


def test_bootstrap_results_is_none_until_a_bootstrap(small):
    X, Y = small
    res = mt.ReducedRank(Y, X, intercept=True).fit(rank=2)
    assert res.bootstrap_results is None
    first = res.bootstrap(n_boot=5, random_state=0)
    assert res.bootstrap_results is first
    second = res.bootstrap(n_boot=6, method="pairs", random_state=0)
    assert res.bootstrap_results is second and second.n_boot == 6
    assert second.source_sd is None          # no source


def test_source_noise_sd_recovers_the_entrywise_noise():
    sd = [source_noise_sd(mt.datasets.simulate_smart(50, 20, 8, rank=2, source_rank=4,
                                                     sigma0=s0, random_state=i).C0) / s0
          for s0 in (0.01, 0.5) for i in range(10)]
    # the trailing singular values carry (p - k)(q - k) = 64 squared noise entries:
    # relative s.e. of the estimate ~ 1/sqrt(2 * 64) = 0.09
    assert np.all(np.abs(np.array(sd) - 1) < 0.35) and abs(np.mean(sd) - 1) < 0.1
    rng = np.random.default_rng(0)
    low_rank = rng.standard_normal((12, 3)) @ rng.standard_normal((3, 7))
    assert source_noise_sd(low_rank) == pytest.approx(0, abs=1e-12)


def test_smart_replicates_redraw_the_source():
    """Redrawing the source widens the draws; same seed, same draws whatever n_jobs;
    source_sd is checked."""
    sim = mt.datasets.simulate_smart(120, 12, 6, rank=2, source_rank=3, sigma0=0.1,
                                     random_state=4)
    res = mt.SMART(sim.Y, sim.X, source=sim.C0).fit(rank=2, structural_rank=2, lam=0.5)
    exact = res.bootstrap(n_boot=40, random_state=1, source_sd=0)
    redrawn = res.bootstrap(n_boot=40, random_state=1, source_sd="estimate")
    assert exact.source_sd == 0
    assert np.mean(redrawn.source_sd) == pytest.approx(0.1, rel=0.3)
    assert redrawn.bse.to_numpy().mean() > 1.5 * exact.bse.to_numpy().mean()
    again = res.bootstrap(n_boot=40, random_state=1, n_jobs=2, source_sd="estimate")
    np.testing.assert_array_equal(again.coef, redrawn.coef)
    with pytest.raises(ValueError, match="source_sd"):
        res.bootstrap(n_boot=4, source_sd=np.ones((3, 3)))
    with pytest.raises(ValueError, match="source_sd"):
        res.bootstrap(n_boot=4, source_sd=-1.0)
    X, Y, _ = make_problem(40, 4, 3, seed=2)
    with pytest.raises(ValueError, match="source_sd"):
        mt.OLS(Y, X).fit().bootstrap(n_boot=4, source_sd=0.1)


@pytest.mark.parametrize("intercept", [True, False])
def test_adapted_task_intervals_are_ols_on_the_representation(intercept):
    """With B fixed, a new task is OLS of y on X B: the intervals equal statsmodels'."""
    s = mt.datasets.simulate_shared(30, 15, 8, 2, random_state=9)
    res = mt.SharedRepresentation(s.y, s.X, s.task, intercept=intercept).fit(k=2, method="gd")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((7, 8))
    y = 0.7 * intercept + X @ s.B @ np.array([1.0, -0.5]) + rng.standard_normal(7)
    task = res.adapt(X, y)
    B = res._B
    Z = X @ B
    x_new = rng.standard_normal((4, 8))
    Zn = x_new @ B
    if intercept:
        Z, Zn = sm.add_constant(Z), sm.add_constant(Zn, has_constant="add")
    ref = sm.OLS(y, Z).fit()
    frame = ref.get_prediction(Zn).summary_frame(alpha=0.1)
    got = task.predict_interval(x_new, alpha=0.1)
    np.testing.assert_allclose(got["mean"], frame["mean"], rtol=1e-8)
    np.testing.assert_allclose(got["lower"], frame["mean_ci_lower"], rtol=1e-8)
    np.testing.assert_allclose(got["upper"], frame["mean_ci_upper"], rtol=1e-8)
    assert task.df_resid == ref.df_resid
    # coefficients B w: standard errors sqrt(diag(B Var(w) B^T))
    cov_w = ref.cov_params()[int(intercept):, int(intercept):]
    se = np.sqrt(np.diag(B @ cov_w @ B.T))
    ci = task.conf_int(alpha=0.1)
    np.testing.assert_allclose((ci[1] - ci[0]) / 2,
                               se * stats.t.ppf(0.95, ref.df_resid), rtol=1e-8)


def test_adapted_task_interval_coverage_is_near_nominal():
    """New tasks of 2k = 4 rows on a representation learned from 40 tasks: nominal 90%
    Student-t intervals for E[y | x] cover near nominal (wide band: 150 tasks x 5 points,
    correlated within a task)."""
    s = mt.datasets.simulate_shared(40, 20, 10, 2, random_state=5)
    res = mt.SharedRepresentation(s.y, s.X, s.task).fit(k=2, method="gd")
    rng = np.random.default_rng(0)
    x_new = rng.standard_normal((5, 10))
    hits = []
    for _ in range(150):
        w = rng.standard_normal(2)
        X = rng.standard_normal((4, 10))
        task = res.adapt(X, X @ s.B @ w + rng.standard_normal(4))
        pi = task.predict_interval(x_new, alpha=0.1)
        truth = x_new @ s.B @ w
        hits += list((pi["lower"] <= truth) & (truth <= pi["upper"]))
    assert 0.82 <= np.mean(hits) <= 0.97


def test_draws_of_different_lengths_are_padded_with_nan():
    """Re-tuned replicates may select different ranks: their principal angles have
    different lengths and are stacked with NaN padding (equal shapes: a plain stack)."""
    from mtltransfer.bootstrap import stack_padded

    out = stack_padded([np.array([1.0, 2.0]), np.array([3.0]), np.array([4.0, 5.0, 6.0])])
    expected = np.array([[1, 2, np.nan], [3, np.nan, np.nan], [4, 5, 6]])
    np.testing.assert_array_equal(out, expected)
    same = stack_padded([np.ones((2, 3)), np.zeros((2, 3))])
    np.testing.assert_array_equal(same, np.stack([np.ones((2, 3)), np.zeros((2, 3))]))
    np.testing.assert_array_equal(stack_padded([np.array(1.5), np.array(2.5)]), [1.5, 2.5])
