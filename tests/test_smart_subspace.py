"""SMART at many predictors: the subspace U-step and the BIC bound of the lambda path."""

import numpy as np
import pytest

from mtltransfer.datasets import simulate_smart
from mtltransfer.gram import SufficientStats
from mtltransfer.smart.tuning import _bic, lambda_path
from mtltransfer.smart.admm import smart_admm, smart_solve, smart_verify
from mtltransfer.solvers.linear import reduced_rank
from mtltransfer.smart.problem import SmartProblem, source_svd
from mtltransfer.solvers.stiefel import (mm_quadratic, polar, riemannian_gradient,
                                         subspace_quadratic)

from conftest import gradient_scale


def _quadratic(m=60, r=4, k=7, seed=3):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((m, m))
    Q = M @ M.T / m
    w = np.array([4.0, 2.5, 1.5, 1.0])[:r]
    Cl = rng.standard_normal((m, r))
    W = 0.2 * rng.standard_normal((m - k, r))
    X0 = polar(rng.standard_normal((m, r)))
    L_Q = float(np.linalg.eigvalsh(Q)[-1] * w.max())
    rho = 1.5

    def F(X):
        return (0.5 * np.sum((Q @ X) * X * w) - np.sum(Cl * X)
                + 0.5 * rho * np.sum((X[k:] - W) ** 2))

    def egrad(X):
        g = (Q @ X) * w - Cl
        g[k:] += rho * (X[k:] - W)
        return g

    return dict(Q=Q, w=w, Cl=Cl, W=W, X0=X0, L_Q=L_Q, rho=rho, k=k, F=F, egrad=egrad)


def test_subspace_step_same_minimiser_as_polar_steps():
    d = _quadratic()
    args = (d["X0"], d["Cl"], d["rho"], d["k"], d["W"])
    X_mm, _, i_mm = mm_quadratic(*args, Q=d["Q"], w=d["w"], L_Q=d["L_Q"], tol=1e-10,
                                 max_steps=20000)
    X_s, QX_s, i_s = subspace_quadratic(*args, Q=d["Q"], w=d["w"], L_Q=d["L_Q"],
                                        tol=1e-10, max_steps=500)
    # both stationary (Riemannian gradient recomputed here), same value and point
    for X in (X_mm, X_s):
        assert np.linalg.norm(riemannian_gradient(X, d["egrad"](X))) < 1e-9
        np.testing.assert_allclose(X.T @ X, np.eye(X.shape[1]), atol=1e-12)
    assert d["F"](X_s) == pytest.approx(d["F"](X_mm), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(X_s, X_mm, atol=1e-7)
    # Q X carried through the steps equals the product, the value is F there
    np.testing.assert_allclose(QX_s, d["Q"] @ X_s, atol=1e-12)
    assert i_s["value"] == pytest.approx(d["F"](X_s), rel=1e-12)
    # a callable Q (a product through a factor) gives the same steps
    X_c, _, _ = subspace_quadratic(*args, Q=lambda Z: d["Q"] @ Z, w=d["w"], L_Q=d["L_Q"],
                                   tol=1e-10, max_steps=500)
    np.testing.assert_allclose(X_c, X_s, atol=1e-12)


def test_subspace_step_at_a_stationary_point_stays_on_the_manifold():
    # X0 stationary by construction (egrad = X0 S, S symmetric, so g = 0 up to
    # rounding); with no tolerance the steps still run: rounding noise must not enter
    # the subspace (it is not orthogonal to X)
    d = _quadratic(seed=6)
    X0, Q, w, W, k, rho = d["X0"], d["Q"], d["w"], d["W"], d["k"], d["rho"]
    M = np.random.default_rng(0).standard_normal((X0.shape[1],) * 2)
    Cl = (Q @ X0) * w - X0 @ (M + M.T)
    Cl[k:] += rho * (X0[k:] - W)
    X1, _, info = subspace_quadratic(X0, Cl, rho, k, W, Q=Q, w=w, L_Q=d["L_Q"], tol=0.0,
                                     max_steps=3)
    assert info["steps"] == 3
    np.testing.assert_allclose(X1.T @ X1, np.eye(X0.shape[1]), atol=1e-12)
    g = (Q @ X1) * w - Cl
    g[k:] += rho * (X1[k:] - W)
    assert np.linalg.norm(riemannian_gradient(X1, g)) < 1e-10


def test_subspace_step_decreases_at_least_as_much_as_the_mm_step():
    d = _quadratic(seed=5)
    X0 = d["X0"]
    L = d["L_Q"] + d["rho"]
    X_mm = polar(L * X0 - d["egrad"](X0))              # the majorise-minimise step
    assert d["F"](X_mm) < d["F"](X0)
    X1, _, info = subspace_quadratic(X0, d["Cl"], d["rho"], d["k"], d["W"], Q=d["Q"],
                                     w=d["w"], L_Q=d["L_Q"], tol=0.0, max_steps=1)
    assert info["steps"] == 1
    # one product of Q with at most 2r columns per step (r for the start, r for g)
    assert info["products"] <= 2 * X0.shape[1]
    assert d["F"](X1) <= d["F"](X_mm) + 1e-12


@pytest.fixture(scope="module")
def medium():
    X, Y, C, C0 = simulate_smart(120, 60, 30, rank=3, source_rank=8, sigma0=0.01,
                                 sigma=0.5, random_state=7)
    st = SufficientStats.from_arrays(X, Y)
    Sxx, Sxy, Syy = st.moments()
    return X, Y, C, C0, Sxx, Sxy, Syy


@pytest.mark.parametrize("lam", [0.05, 0.3])
def test_subspace_admm_same_stationary_point(medium, lam):
    *_, C0, Sxx, Sxy, Syy = medium
    fits = {u: smart_admm(Sxx, Sxy, Syy, C0, 3, (6, 6), lam, tol=1e-8, max_iter=5000,
                          u_step=u) for u in ("mm", "subspace")}
    bound = 10 * 1e-8 * gradient_scale(Sxy)     # as in test_admm's KKT check
    for res in fits.values():
        assert res.converged
        v = smart_verify(Sxx, Sxy, Syy, C0, res.extra)
        assert v["rgrad_u"] < bound and v["rgrad_v"] < bound
        assert v["kkt_u"] < bound and v["kkt_v"] < bound
        assert v["primal_residual_u"] < 1e-7 and v["d_step"] < 1e-6
        assert v["orth_u"] < 1e-10
    a, b = fits["mm"], fits["subspace"]
    assert b.objective == pytest.approx(a.objective, rel=1e-7)
    np.testing.assert_allclose(b.coef, a.coef, atol=1e-5)


def test_subspace_admm_unpenalised_is_reduced_rank(medium):
    X, Y, C, C0, Sxx, Sxy, Syy = medium
    p, q = Sxy.shape
    res = smart_admm(Sxx, Sxy, Syy, C0, 3, (p, q), 0.0, tol=1e-9, u_step="subspace")
    C_rrr = reduced_rank(Sxx, Sxy, 3)[0]
    assert res.converged
    np.testing.assert_allclose(res.coef, C_rrr, atol=1e-6)


def test_subspace_admm_through_rows_equals_moments(medium):
    X, Y, C, C0, Sxx, Sxy, Syy = medium
    Xc = X - X.mean(0)
    svd0 = source_svd(C0)
    fits = [smart_solve(SmartProblem.from_moments(Sxx, Sxy, Syy, svd0=svd0, rows=rows), 3,
                        (6, 6), 0.1, tol=1e-9, u_step="subspace")
            for rows in (None, Xc)]
    assert fits[0].objective == pytest.approx(fits[1].objective, rel=1e-9)
    np.testing.assert_allclose(fits[0].coef, fits[1].coef, atol=1e-6)


def test_u_step_is_checked(medium):
    *_, C0, Sxx, Sxy, Syy = medium
    with pytest.raises(ValueError, match="u_step"):
        smart_admm(Sxx, Sxy, Syy, C0, 3, (6, 6), 0.1, u_step="newton")


def test_bic_bound_keeps_the_choice_and_is_a_bound(medium):
    X, Y, C, C0, Sxx, Sxy, Syy = medium
    n, q = X.shape[0], Y.shape[1]
    prob = SmartProblem.from_moments(Sxx, Sxy, Syy, C0)
    full = lambda_path(prob, n, 3, (6, 6), dominated_max_iter=None)
    fast = lambda_path(prob, n, 3, (6, 6))
    # the reduced-rank RSS bounds every fit's RSS from below
    rss_r = 2.0 * n * prob.rrr_data_term(3)
    assert rss_r == pytest.approx(np.sum((Y - Y.mean(0) - (X - X.mean(0)) @
                                          reduced_rank(Sxx, Sxy, 3)[0]) ** 2), rel=1e-9)
    assert min(full["trace"]["rss"]) >= rss_r * (1 - 1e-12)
    # the bound certifies the fits after the chosen one here, so they were capped ...
    capped = [i for i, (a, b) in enumerate(zip(full["trace"]["n_iter"],
                                               fast["trace"]["n_iter"])) if b < a]
    assert capped and min(capped) > full["index"]
    i = min(capped) - 1
    assert _bic(rss_r, fast["trace"]["nnz"][i], n, q) > min(fast["trace"]["bic"][:i + 1])
    # ... and the choice and the final fit are those of the full path
    assert fast["index"] == full["index"] and fast["lam"] == full["lam"]
    assert fast["result"].objective == pytest.approx(full["result"].objective, rel=1e-7)
    assert len(fast["trace"]["bic"]) == len(full["trace"]["bic"])


def test_reduced_rank_start_through_rows_equals_moments():
    # n < p: the least-squares fit is the minimum-norm one in the equilibrated basis
    X, Y, C, C0 = simulate_smart(40, 70, 20, rank=3, source_rank=6, sigma0=0.01,
                                 random_state=2)
    X = X * np.linspace(0.5, 3.0, 70)          # unequal units: the equilibration matters
    st = SufficientStats.from_arrays(X, Y)
    Sxx, Sxy, Syy = st.moments()
    svd0 = source_svd(C0)
    a = SmartProblem.from_moments(Sxx, Sxy, Syy, svd0=svd0)
    b = SmartProblem.from_moments(Sxx, Sxy, Syy, svd0=svd0, rows=X - X.mean(0))
    assert b.rrr_data_term(3) == pytest.approx(a.rrr_data_term(3), rel=1e-9)
    (Aa, Ba), (Ab, Bb) = a.rrr_start(3), b.rrr_start(3)
    # the same subspaces (bases may differ by a rotation)
    np.testing.assert_allclose(Aa @ Aa.T, Ab @ Ab.T, atol=1e-8)
    np.testing.assert_allclose(Ba @ Ba.T, Bb @ Bb.T, atol=1e-8)
    np.testing.assert_allclose(2 * st.n * a.rrr_data_term(3), np.sum(
        (Y - Y.mean(0) - (X - X.mean(0)) @ reduced_rank(Sxx, Sxy, 3)[0]) ** 2), rtol=1e-9)


def test_large_p_shortcuts_agree_with_lapack(monkeypatch):
    # lambda_max(G) by Lanczos, the reduced-rank start's least squares by Cholesky (used
    # from p = 1000 and p = 500; thresholds lowered here to keep the test small), both
    # against dense LAPACK
    from scipy import linalg

    from mtltransfer.smart import problem as sp

    monkeypatch.setattr(sp, "_LANCZOS_P", 100)
    rng = np.random.default_rng(4)
    p, q, n = 300, 12, 450
    X = rng.standard_normal((n, p)) * np.linspace(0.5, 2.0, p)
    Y = X[:, :q] + rng.standard_normal((n, q))
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Sxx, Sxy = Xc.T @ Xc / n, Xc.T @ Yc / n
    lam = sp._lambda_max(Sxx)
    exact = linalg.eigvalsh(Sxx, subset_by_index=[p - 1, p - 1])[0]
    assert exact <= lam <= exact * (1 + 1e-8)
    C_chol = sp._ols_cholesky(Sxx, Sxy)
    np.testing.assert_allclose(C_chol, np.linalg.lstsq(Xc, Yc, rcond=None)[0], atol=1e-10)
    # a singular Sxx (fewer rows than predictors) is left to the pseudo-inverse
    assert sp._ols_cholesky(Xc[:50].T @ Xc[:50] / 50, Sxy) is None
