"""The source's own uncertainty in the bootstrap of the source-aware models.

A fitted source (this package's results, statsmodels OLS / a dict of OLS /
MultivariateLS) is redrawn from its sampling distribution in every replicate; an array
source is treated as exact, with one warning, unless the user gives source_cov=,
source_nobs= or source_sd=.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.multivariate.multivariate_ols import MultivariateLS

import mtltransfer as mt
from mtltransfer.bootstrap import interval
from mtltransfer.exceptions import MtlWarning

P, Q = 6, 4


def _design(seed, n=80, n0=200):
    """A rank-3 source C0* with a rank-2 target inside its leading 3-dim subspaces; the
    source's rows (n0, noise 1) and the target's (n, noise 0.5)."""
    rng = np.random.default_rng(seed)
    U0 = np.linalg.qr(rng.standard_normal((P, 3)))[0]
    V0 = np.linalg.qr(rng.standard_normal((Q, 3)))[0]
    C0_star = (U0 * [1.0, 2.0, 3.0]) @ V0.T
    C = (U0[:, :2] * [1.5, 2.0]) @ V0[:, :2].T
    X0 = rng.standard_normal((n0, P))
    Y0 = X0 @ C0_star + rng.standard_normal((n0, Q))
    X = rng.standard_normal((n, P))
    Y = X @ C + 0.5 * rng.standard_normal((n, Q))
    return X0, Y0, X, Y, C, C0_star, rng


def _frames(X0, Y0):
    X0f = sm.add_constant(pd.DataFrame(X0, columns=[f"x{i + 1}" for i in range(P)]))
    Y0f = pd.DataFrame(Y0, columns=[f"Y{j + 1}" for j in range(Q)])
    return X0f, Y0f


def test_a_fitted_low_rank_source_is_redrawn_with_its_estimators_spread():
    """source_sd of a ReducedRank source is the spread of the ReducedRank estimator over
    new source data sets (an independent Monte Carlo), not ~1e-17."""
    X0, Y0, X, Y, C, C0_star, rng = _design(0)
    src = mt.ReducedRank(Y0, X0).fit(rank=3)
    res = mt.SMART(Y, X, source=src).fit(rank=2, structural_rank=3, lam=0.5)
    boot = res.bootstrap(n_boot=150, random_state=1)
    # the truth: the estimator's sd over 300 source data sets on the same design
    fits = np.stack([mt.ReducedRank(X0 @ C0_star + rng.standard_normal(Y0.shape), X0)
                     .fit(rank=3).coef for _ in range(300)])
    truth = fits.std(axis=0, ddof=1)
    assert boot.source_sd.shape == (P, Q)
    assert np.mean(boot.source_sd) == pytest.approx(np.mean(truth), rel=0.2)
    assert boot.extra["source"].shape == (150, P, Q)
    # the drawn sources are low-rank fits too: rank 3 every time
    assert all(np.linalg.matrix_rank(c, tol=1e-8) == 3 for c in boot.extra["source"][:10])


def test_statsmodels_sources_are_drawn_from_their_covariance():
    """A dict of OLS fits on one design, and a MultivariateLS fit: the draws have the
    covariance Sigma0 (x) (X0^T X0)^{-1}, i.e. statsmodels' bse entrywise."""
    X0, Y0, X, Y, _, _, _ = _design(1)
    X0f, Y0f = _frames(X0, Y0)
    fits = {y: sm.OLS(Y0f[y], X0f).fit() for y in Y0f.columns}
    bse = pd.DataFrame({y: f.bse for y, f in fits.items()}).drop(index="const").to_numpy()
    mv = MultivariateLS(Y0f, X0f).fit()
    for source in (fits, mv):
        model = mt.SMART(Y, X, source=source)
        draws = np.stack([model.source_draws.draw(np.random.default_rng(s))
                          for s in range(4000)])
        np.testing.assert_allclose(draws.std(axis=0, ddof=1), bse, rtol=0.06)
        np.testing.assert_allclose(draws.mean(axis=0), model.source,
                                   atol=4 * bse.max() / np.sqrt(4000) * 1.5)
    # the residual correlation between responses is kept (shared design: one draw of E0)
    E = np.column_stack([f.resid for f in fits.values()])
    corr = np.corrcoef(E.T)[0, 1]
    model = mt.SMART(Y, X, source=fits)
    draws = np.stack([model.source_draws.draw(np.random.default_rng(s))
                      for s in range(4000)])
    assert np.corrcoef(draws[:, 0, 0], draws[:, 0, 1])[0, 1] == pytest.approx(corr,
                                                                               abs=0.05)


def test_coverage_with_a_fitted_source_reaches_nominal():
    """Seeded simulation: 95% percentile intervals of E[y | x] and of the coefficients
    with the source redrawn cover about 0.9; treating the source as exact, about 0.6."""
    cover = []
    for seed in range(16):
        X0, Y0, X, Y, C, _, rng = _design(100 + seed)
        res = mt.SMART(Y, X, source=mt.ReducedRank(Y0, X0).fit(rank=3)).fit(
            rank=2, structural_rank=3, lam=0.5)
        x_new = rng.standard_normal((5, P))
        row = []
        for kw in ({}, {"source_sd": 0}):
            boot = res.bootstrap(n_boot=40, random_state=seed, **kw)
            draws = res.predict_draws(x_new, boot.coef, boot.intercept)
            lo, hi = interval(draws, res.predict(x_new).to_numpy())
            row.append(np.mean((lo <= x_new @ C) & (x_new @ C <= hi)))
            lo, hi = interval(boot.coef, res.coef)
            row.append(np.mean((lo <= C) & (C <= hi)))
        cover.append(row)
    redrawn_mean, redrawn_coef, exact_mean, exact_coef = np.mean(cover, axis=0)
    assert redrawn_mean > 0.85 and redrawn_coef > 0.85
    assert exact_mean < redrawn_mean - 0.15 and exact_coef < redrawn_coef - 0.15


def test_an_array_source_is_treated_as_exact_with_one_warning():
    X0, Y0, X, Y, _, _, _ = _design(2)
    C0 = mt.ReducedRank(Y0, X0).fit(rank=3).coef
    res = mt.SMART(Y, X, source=C0).fit(rank=2, structural_rank=3, lam=0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        boot = res.bootstrap(n_boot=6, random_state=0)
    texts = [str(w.message) for w in caught if issubclass(w.category, MtlWarning)]
    assert len(texts) == 1
    with pytest.warns(MtlWarning, match="the source is treated as exact in every bootstrap "
                      "replicate: a matrix or frame of coefficients carries no uncertainty"):
        res.bootstrap(n_boot=4, random_state=0)
    assert boot.source_sd == 0 and "source" not in boot.extra
    # what the user knows: the source's number of rows, or its covariance
    with warnings.catch_warnings():
        warnings.simplefilter("error", MtlWarning)
        by_n = res.bootstrap(n_boot=200, random_state=0, source_nobs=200)
        exact = res.bootstrap(n_boot=4, random_state=0, source_sd=0)
        R, S = np.eye(P) * 0.01, np.diag([1.0, 4.0, 9.0, 16.0])
        by_cov = res.bootstrap(n_boot=200, random_state=0, source_cov=(R, S))
    assert exact.source_sd == 0
    # source_nobs: Sigma (x) Sxx^{-1} / n0 with the target's Sigma and Sxx
    resid = res.resid.to_numpy()
    Sigma = np.cov(resid.T, ddof=0) * len(resid) / (len(resid) - P - 1)
    Xc = X - X.mean(0)
    sd = np.sqrt(np.outer(np.diag(np.linalg.inv(Xc.T @ Xc / len(X))), np.diag(Sigma)) / 200)
    np.testing.assert_allclose(by_n.source_sd, sd, rtol=0.2)
    np.testing.assert_allclose(by_cov.source_sd, np.outer(np.full(P, 0.1), [1, 2, 3, 4]),
                               rtol=0.2)
    with pytest.raises(ValueError, match="source_cov must be the 24 x 24 covariance"):
        res.bootstrap(n_boot=4, source_cov=np.eye(5))
    with pytest.raises(ValueError, match="at most one of source_sd, source_cov"):
        res.bootstrap(n_boot=4, source_sd=0.1, source_nobs=10)
    with pytest.raises(ValueError, match="source_nobs must be a positive integer"):
        res.bootstrap(n_boot=4, source_nobs=0)
    with pytest.raises(ValueError, match="positive semidefinite"):
        res.bootstrap(n_boot=4, source_cov=-np.eye(P * Q))


def test_a_results_source_is_redrawn_through_save_and_load(tmp_path):
    """The source's sampling distribution is saved with the model (data only)."""
    X0, Y0, X, Y, _, _, _ = _design(3)
    res = mt.SMART(Y, X, source=mt.ReducedRank(Y0, X0).fit(rank=3)).fit(
        rank=2, structural_rank=3, lam=0.5)
    res.save(tmp_path / "fit.mtl")
    back = mt.load(tmp_path / "fit.mtl")
    a = res.bootstrap(n_boot=5, random_state=3)
    b = back.bootstrap(n_boot=5, random_state=3)
    np.testing.assert_allclose(b.coef, a.coef, rtol=1e-10, atol=1e-12)
    assert np.all(b.source_sd > 0)
