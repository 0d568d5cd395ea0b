"""Baselines: fast path vs CVXPY, and ReducedRank against a brute-force computation."""

import numpy as np
import pytest

import mtltransfer as mt
from mtltransfer.gram import quadratic_loss
from mtltransfer.solvers.prox import nuclear_norm_objective

from conftest import make_problem

OBJ_RTOL, COEF_RTOL = 1e-6, 1e-4


def _objective(res, extra=0.0):
    Sxx, Sxy, Syy = res.model.moments()
    return quadratic_loss(Sxx, Sxy, Syy, res.coef) + extra


def _rel(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12)


PROBLEMS = [(60, 8, 5, 0), (40, 12, 6, 1), (15, 25, 4, 2)]  # the last one has n < p


@pytest.mark.parametrize("n,p,q,seed", PROBLEMS)
def test_ridge_backends_agree(n, p, q, seed):
    X, Y, _ = make_problem(n, p, q, seed=seed)
    alpha = 0.3
    fast = mt.Ridge(Y, X, intercept=True).fit(alpha=alpha)
    ref = mt.Ridge(Y, X, intercept=True).fit(alpha=alpha, backend="cvxpy")
    pen = lambda r: 0.5 * alpha * np.sum(r.coef ** 2)
    assert _objective(fast, pen(fast)) == pytest.approx(_objective(ref, pen(ref)),
                                                        rel=OBJ_RTOL)
    assert _rel(fast.coef, ref.coef) < COEF_RTOL


@pytest.mark.parametrize("n,p,q,seed", PROBLEMS)
def test_nuclear_norm_backends_agree(n, p, q, seed):
    X, Y, _ = make_problem(n, p, q, seed=seed)
    Sxx, Sxy, Syy = mt.NuclearNorm(Y, X, intercept=True).moments()
    lam = 0.2 * np.linalg.norm(Sxy, 2)
    fast = mt.NuclearNorm(Y, X, intercept=True).fit(lam=lam, tol=1e-11, max_iter=50000)
    ref = mt.NuclearNorm(Y, X, intercept=True).fit(lam=lam, backend="cvxpy")
    f = nuclear_norm_objective(Sxx, Sxy, Syy, fast.coef, lam)
    g = nuclear_norm_objective(Sxx, Sxy, Syy, ref.coef, lam)
    assert f == pytest.approx(g, rel=OBJ_RTOL)
    assert f <= g * (1 + 1e-8)  # the proximal solver is at least as good as the SOCP one
    assert _rel(fast.coef, ref.coef) < COEF_RTOL
    assert fast.converged


@pytest.mark.parametrize("n,p,q,seed", PROBLEMS[:2])
def test_ols_backends_agree_and_match_per_response_lstsq(n, p, q, seed):
    X, Y, _ = make_problem(n, p, q, seed=seed)
    fast = mt.OLS(Y, X, intercept=True).fit()
    ref = mt.OLS(Y, X, intercept=True).fit(backend="cvxpy")
    assert _objective(fast) == pytest.approx(_objective(ref), rel=OBJ_RTOL)
    assert _rel(fast.coef, ref.coef) < COEF_RTOL
    # independent: numpy lstsq with an explicit constant column, one response at a time
    Xc = np.column_stack([np.ones(n), X])
    for j in range(q):
        beta = np.linalg.lstsq(Xc, Y[:, j], rcond=None)[0]
        np.testing.assert_allclose(fast.coef[:, j], beta[1:], rtol=1e-8, atol=1e-10)
        assert fast.intercept.iloc[j] == pytest.approx(beta[0], abs=1e-9)


@pytest.mark.parametrize("n,p,q,seed", PROBLEMS[:2])
def test_reduced_rank_is_the_best_rank_r_fit(n, p, q, seed):
    X, Y, _ = make_problem(n, p, q, rank=2, seed=seed)
    r = 2
    fast = mt.ReducedRank(Y, X, intercept=True).fit(rank=r)
    ref = mt.ReducedRank(Y, X, intercept=True).fit(rank=r, backend="cvxpy")
    assert np.linalg.matrix_rank(fast.coef, tol=1e-8) == r
    assert _objective(fast) == pytest.approx(_objective(ref), rel=OBJ_RTOL)
    assert _rel(fast.coef, ref.coef) < COEF_RTOL
    # brute force: the fitted values of the best rank-r fit are the rank-r truncated SVD
    # of the OLS fitted values P_X Y (Eckart-Young on the column space of X)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Q, _ = np.linalg.qr(Xc)
    fitted = Q @ (Q.T @ Yc)
    U, s, Vt = np.linalg.svd(fitted, full_matrices=False)
    best = (U[:, :r] * s[:r]) @ Vt[:r]
    np.testing.assert_allclose(Xc @ fast.coef, best, atol=1e-9)
    # and no other rank-r matrix does better: compare with random rank-r candidates
    rng = np.random.default_rng(seed)
    for _ in range(5):
        C = rng.standard_normal((p, r)) @ rng.standard_normal((r, q))
        assert np.sum((Yc - Xc @ C) ** 2) > np.sum((Yc - Xc @ fast.coef) ** 2)


def test_ridge_gcv_chooses_interior_alpha_and_shrinks():
    X, Y, C = make_problem(40, 30, 5, noise=1.0, seed=4)
    res = mt.Ridge(Y, X, intercept=True).fit()
    t = res.tuning["gcv"]
    i = int(t["gcv"].idxmin())
    assert 0 < i < len(t) - 1
    assert res.alpha == pytest.approx(t.loc[i, "alpha"]) and res.chosen_by["alpha"] == "GCV"
    assert np.linalg.norm(res.coef) < np.linalg.norm(mt.OLS(Y, X, intercept=True).fit().coef)


def test_nuclear_norm_cv_beats_ols_on_low_rank_truth():
    X, Y, C = make_problem(60, 20, 15, rank=2, noise=1.0, seed=5)
    nn = mt.NuclearNorm(Y, X, intercept=True).fit()
    ols = mt.OLS(Y, X, intercept=True).fit()
    assert np.linalg.norm(nn.coef - C) < np.linalg.norm(ols.coef - C)
    t = nn.tuning["lam_cv"]
    assert nn.lam == pytest.approx(t.loc[t["cv_mse"].idxmin(), "lam"])
    # the path stops three lams after the CV minimum (or at the end of the grid)
    assert len(t) == 30 or len(t) - 1 - int(t["cv_mse"].idxmin()) == 3


def test_nuclear_norm_zero_above_lam_max():
    X, Y, _ = make_problem(30, 6, 4, seed=6)
    Sxx, Sxy, Syy = mt.NuclearNorm(Y, X, intercept=True).moments()
    res = mt.NuclearNorm(Y, X, intercept=True).fit(lam=1.01 * np.linalg.norm(Sxy, 2))
    assert np.abs(res.coef).max() == 0.0
    res = mt.NuclearNorm(Y, X, intercept=True).fit(lam=0.99 * np.linalg.norm(Sxy, 2))
    assert np.abs(res.coef).max() > 0.0


def test_convergence_warning_and_no_nan():
    X, Y, _ = make_problem(30, 6, 4, seed=7)
    with pytest.warns(mt.ConvergenceWarning, match="max_iter"):
        res = mt.NuclearNorm(Y, X, intercept=True).fit(lam=0.01, max_iter=2, tol=1e-14)
    assert res.converged is False
    assert np.all(np.isfinite(res.coef))
