"""SMART ADMM: special cases, optimality, backends, warm starts, edge cases."""

import warnings

import numpy as np
import pytest

import mtltransfer as mt
from mtltransfer.datasets import simulate_smart
from mtltransfer.exceptions import ConvergenceWarning
from mtltransfer.gram import SufficientStats
from mtltransfer.smart.admm import smart_admm, smart_objective, smart_verify, source_svd
from mtltransfer.solvers.stiefel import mm_quadratic, polar, riemannian_gradient

from conftest import gradient_scale


def _data(n=150, p=30, q=20, rank=3, sigma0=0.01, seed=0, source_rank=8):
    X, Y, C, C0 = simulate_smart(n, p, q, rank=rank, source_rank=source_rank, sigma0=sigma0,
                                 sigma=0.5, random_state=seed)
    Sxx, Sxy, Syy = SufficientStats.from_arrays(X, Y).moments()
    return X, Y, C, C0, Sxx, Sxy, Syy


@pytest.fixture(scope="module")
def small():
    return _data()


def test_no_penalty_reaches_reduced_rank_optimum(small):
    X, Y, C, C0, Sxx, Sxy, Syy = small
    n, p = X.shape
    q = Y.shape[1]
    r = 3
    res = smart_admm(Sxx, Sxy, Syy, C0, r, (p, q), (0.3, 0.3), tol=1e-8)
    # independent reduced-rank optimum from the rows: project P_X Y on its top r
    # right singular vectors
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    C_ols = np.linalg.lstsq(Xc, Yc, rcond=None)[0]
    Vt = np.linalg.svd(Xc @ C_ols, full_matrices=False)[2]
    C_rrr = C_ols @ Vt[:r].T @ Vt[:r]
    f_rrr = np.sum((Yc - Xc @ C_rrr) ** 2) / (2 * n)
    f_admm = np.sum((Yc - Xc @ res.coef) ** 2) / (2 * n)
    assert res.converged
    assert abs(f_admm - f_rrr) <= 1e-6 * f_rrr
    assert abs(res.objective - f_rrr) <= 1e-6 * f_rrr


def test_large_lambda_stays_in_source_subspaces(small):
    *_, C0, Sxx, Sxy, Syy = small
    r_u = r_v = 5
    res = smart_admm(Sxx, Sxy, Syy, C0, 3, (r_u, r_v), (50.0, 50.0), tol=1e-8)
    U0, _, V0 = source_svd(C0)
    U, V = res.extra["U"], res.extra["V"]
    assert res.converged
    assert np.linalg.norm(U0[:, r_u:].T @ U) < 1e-6
    assert np.linalg.norm(V0[:, r_v:].T @ V) < 1e-6
    assert res.extra["nnz"] == 0


@pytest.mark.parametrize("lam", [0.05, 0.2])
def test_kkt_and_cvxpy_verification(small, lam):
    *_, C0, Sxx, Sxy, Syy = small
    tol = 1e-7
    res = smart_admm(Sxx, Sxy, Syy, C0, 3, (6, 6), lam, tol=tol, max_iter=5000)
    assert res.converged
    chk = smart_verify(Sxx, Sxy, Syy, C0, res.extra)
    # convex subproblems re-solved by CVXPY agree with the closed forms
    assert chk["d_step"] < 1e-6
    assert chk["omega_u_step"] < 1e-6 and chk["omega_v_step"] < 1e-6
    # Omega consistent with A, B; manifold constraints; stationarity of the subproblems
    assert chk["primal_residual_u"] < 10 * tol and chk["primal_residual_v"] < 10 * tol
    assert chk["orth_u"] < 1e-10 and chk["orth_v"] < 1e-10
    bound = 10 * tol * gradient_scale(Sxy)
    assert chk["rgrad_u"] < bound and chk["rgrad_v"] < bound
    assert chk["kkt_u"] < bound and chk["kkt_v"] < bound
    # the objective is computed consistently in both coordinate systems
    f = smart_objective(Sxx, Sxy, Syy, C0, res.extra["U"], res.extra["d"], res.extra["V"],
                        (6, 6), lam)
    assert f == pytest.approx(res.objective, rel=1e-10)
    assert res.history["objective"][-1] == pytest.approx(res.objective, rel=1e-10)
    assert np.all(np.diff(res.extra["d"]) <= 0) and np.all(res.extra["d"] >= 0)


def test_fast_and_cvxpy_backends_same_iterates():
    X, Y, C, C0, Sxx, Sxy, Syy = _data(n=60, p=8, q=6, rank=2, seed=3, source_rank=4)
    # make a source that misleads a little so that Omega has nonzeros
    C0 = C0 + 0.3 * np.random.default_rng(1).standard_normal(C0.shape)
    for k in (1, 2, 4, 6):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            a = smart_admm(Sxx, Sxy, Syy, C0, 2, (3, 3), (0.02, 0.03), max_iter=k,
                           tol=1e-12)
            b = smart_admm(Sxx, Sxy, Syy, C0, 2, (3, 3), (0.02, 0.03), max_iter=k,
                           tol=1e-12, backend="cvxpy")
        for key in ("A", "B", "d", "Omega_u", "Omega_v", "Z_u", "Z_v"):
            np.testing.assert_allclose(a.extra[key], b.extra[key], atol=1e-6, err_msg=key)
        np.testing.assert_allclose(a.coef, b.coef, atol=1e-6)
        assert a.extra["rho"] == b.extra["rho"]
        np.testing.assert_allclose(a.history["objective"], b.history["objective"],
                                   atol=1e-6)
    assert a.extra["nnz"] > 0


def test_warm_start_from_converged_state(small):
    *_, C0, Sxx, Sxy, Syy = small
    res = smart_admm(Sxx, Sxy, Syy, C0, 3, (6, 6), 0.1, tol=1e-7, max_iter=5000)
    assert res.converged and res.n_iter > 5
    again = smart_admm(Sxx, Sxy, Syy, C0, 3, (6, 6), 0.1, tol=1e-7, init=res.extra)
    assert again.converged and again.n_iter <= 3
    np.testing.assert_allclose(again.coef, res.coef, atol=1e-5)
    # warm start from U, V only also works
    part = {k: res.extra[k] for k in ("U", "V", "d")}
    again2 = smart_admm(Sxx, Sxy, Syy, C0, 3, (6, 6), 0.1, tol=1e-7, init=part,
                        max_iter=5000)
    assert again2.converged
    assert again2.objective <= res.objective + 1e-5


def test_nonconvergence_warns_and_stays_finite(small):
    *_, C0, Sxx, Sxy, Syy = small
    with pytest.warns(ConvergenceWarning,
                      match=r"SMART ADMM did not converge in 2 iterations: stopping "
                            r"criterion .* > tol=1e-12"):
        res = smart_admm(Sxx, Sxy, Syy, C0, 3, (6, 6), 0.1, tol=1e-12, max_iter=2)
    assert not res.converged and res.n_iter == 2
    assert np.all(np.isfinite(res.coef)) and np.isfinite(res.objective)
    assert all(len(v) == 2 for v in res.history.values())


@pytest.mark.parametrize("sr,lam,rank", [((0, 20), (0.05, 0.0), 3), ((30, 0), (0.0, 0.05), 3),
                                         ((0, 0), (0.02, 0.02), 2), ((6, 6), (0.0, 0.0), 3),
                                         ((6, 6), (0.05, 0.05), 20), ((2, 2), (0.1, 0.1), 3)])
def test_edge_cases_converge_to_stationary_points(small, sr, lam, rank):
    """Empty or full penalised blocks, one side unpenalised, no penalty, full rank and a
    rank above the structural ranks: each converges (a ConvergenceWarning is an error
    here) to a point whose KKT and Riemannian-gradient norms are at the tolerance."""
    *_, C0, Sxx, Sxy, Syy = small
    tol = 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        res = smart_admm(Sxx, Sxy, Syy, C0, rank, sr, lam, tol=tol, max_iter=3000)
    assert res.converged
    U, V = res.extra["U"], res.extra["V"]
    np.testing.assert_allclose(U.T @ U, np.eye(rank), atol=1e-10)
    np.testing.assert_allclose(V.T @ V, np.eye(rank), atol=1e-10)
    assert res.extra["Omega_u"].shape == (30 - sr[0], rank)
    assert res.extra["Omega_v"].shape == (20 - sr[1], rank)
    chk = smart_verify(Sxx, Sxy, Syy, C0, res.extra)
    bound = 10 * tol * gradient_scale(Sxy)
    for key in ("kkt_u", "kkt_v", "rgrad_u", "rgrad_v"):
        assert chk[key] < bound, (key, chk[key], bound)
    assert chk["primal_residual_u"] < 10 * tol and chk["primal_residual_v"] < 10 * tol
    assert chk["d_step"] < 1e-6
    assert np.all(np.isfinite(res.history["objective"]))


def test_lambda_zero_equals_rrr_objective(small):
    X, Y, C, C0, Sxx, Sxy, Syy = small
    a = smart_admm(Sxx, Sxy, Syy, C0, 3, (6, 6), 0.0, tol=1e-8, max_iter=5000)
    b = smart_admm(Sxx, Sxy, Syy, C0, 3, (30, 20), 0.0, tol=1e-8)
    assert a.objective == pytest.approx(b.objective, rel=1e-6)


def test_bad_input_messages(small):
    *_, C0, Sxx, Sxy, Syy = small
    with pytest.raises(ValueError, match="rank"):
        smart_admm(Sxx, Sxy, Syy, C0, 0, (6, 6), 0.1)
    with pytest.raises(ValueError, match="lam"):
        smart_admm(Sxx, Sxy, Syy, C0, 2, (6, 6), -1.0)
    with pytest.raises(ValueError, match="structural_rank"):
        smart_admm(Sxx, Sxy, Syy, C0, 2, (31, 6), 0.1)
    with pytest.raises(ValueError, match="C0"):
        smart_admm(Sxx, Sxy, Syy, C0[:5], 2, (6, 6), 0.1)
    with pytest.raises(ValueError, match="backend"):
        smart_admm(Sxx, Sxy, Syy, C0, 2, (6, 6), 0.1, backend="nope")


def test_stiefel_mm_monotone_and_stationary():
    rng = np.random.default_rng(0)
    m, r, k = 12, 3, 5
    M = rng.standard_normal((m, m))
    Q = M @ M.T
    w = np.array([3.0, 2.0, 1.0])
    Cl = rng.standard_normal((m, r))
    W = 0.1 * rng.standard_normal((m - k, r))
    X0 = polar(rng.standard_normal((m, r)))
    L_Q = np.linalg.eigvalsh(Q)[-1] * w.max()

    def F(X):
        return (0.5 * np.sum((Q @ X) * X * w) - np.sum(Cl * X)
                + 0.5 * 2.0 * np.sum((X[k:] - W) ** 2))

    X, _, info = mm_quadratic(X0, Cl, 2.0, k, W, Q=Q, w=w, L_Q=L_Q, tol=1e-9,
                              max_steps=5000)
    assert info["rgrad"] < 1e-9
    assert F(X) < F(X0)
    assert info["value"] == pytest.approx(F(X), rel=1e-12)
    g = (Q @ X) * w - Cl
    g[k:] += 2.0 * (X[k:] - W)
    assert np.linalg.norm(riemannian_gradient(X, g)) < 1e-9
    np.testing.assert_allclose(X.T @ X, np.eye(r), atol=1e-12)


@pytest.mark.parametrize("lam", [0.05, 0.2])
def test_anderson_acceleration_same_objective_fewer_iterations(small, lam):
    *_, C0, Sxx, Sxy, Syy = small
    plain = smart_admm(Sxx, Sxy, Syy, C0, 3, (6, 6), lam, tol=1e-7, max_iter=5000,
                       accelerate=False)
    fast = smart_admm(Sxx, Sxy, Syy, C0, 3, (6, 6), lam, tol=1e-7, max_iter=5000,
                      accelerate=True)
    again = smart_admm(Sxx, Sxy, Syy, C0, 3, (6, 6), lam, tol=1e-7, max_iter=5000,
                       accelerate=True)
    assert plain.converged and fast.converged
    assert fast.objective == pytest.approx(plain.objective, rel=1e-6)
    assert fast.n_iter <= plain.n_iter
    # deterministic
    assert again.n_iter == fast.n_iter and np.array_equal(again.coef, fast.coef)
    # the same stopping rule certifies the accelerated solution
    chk = smart_verify(Sxx, Sxy, Syy, C0, fast.extra)
    assert chk["orth_u"] < 1e-10 and chk["orth_v"] < 1e-10
    assert chk["primal_residual_u"] < 1e-6 and chk["primal_residual_v"] < 1e-6


def test_source_basis_beyond_rank_is_canonical_and_continuous():
    """A rank-deficient source leaves U_perp's basis free; SMART fixes a canonical one,
    so perturbing C0 at rounding level cannot change the fit (it once moved lam_max by
    40% and the chosen lambda)."""
    from mtltransfer.smart.admm import source_rank, source_svd

    rng = np.random.default_rng(11)
    C0 = rng.standard_normal((30, 4)) @ rng.standard_normal((4, 12))
    U0, s0, V0 = source_svd(C0)
    assert source_rank(s0) == 4
    np.testing.assert_allclose(U0.T @ U0, np.eye(30), atol=1e-13)
    np.testing.assert_allclose(V0.T @ V0, np.eye(12), atol=1e-13)
    np.testing.assert_allclose((U0[:, :12] * s0) @ V0.T, C0, atol=1e-12)
    C1 = C0 * (1 + 1e-13 * rng.standard_normal(C0.shape))
    U1, _, V1 = source_svd(C1)
    assert np.abs(U1[:, 4:] - U0[:, 4:]).max() < 1e-10
    assert np.abs(V1[:, 4:] - V0[:, 4:]).max() < 1e-10
    X = rng.standard_normal((80, 30))
    Y = X @ C0 + rng.standard_normal((80, 12))
    a = mt.SMART(Y, X, source=C0).fit(rank=2, structural_rank=3)
    b = mt.SMART(Y, X, source=C1).fit(rank=2, structural_rank=3)
    assert a.lam == pytest.approx(b.lam, rel=1e-8)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-6 * np.abs(a.coef).max())
