"""SMART's active-set phase (mtltransfer.smart.active_set): Newton on the ADMM's support.

At a structural rank below the target's (r_u = r_v = 7 against a rank-5 target inside a
rank-10 source) the BIC path picks a small lambda with a large alignment support, where
the ADMM's tail is slow (1155 iterations for the cold-start fit below). Newton's method on
the settled support ends it; the fit is still certified by the ADMM's own rule.
"""

import warnings

import numpy as np
import pytest

import mtltransfer as mt
from mtltransfer.smart import active_set
from mtltransfer.smart.admm import smart_solve
from mtltransfer.smart.certify import stationarity, verify_state
from mtltransfer.smart.problem import SmartProblem
from mtltransfer.solvers.stiefel import riemannian_gradient

# the lambda the BIC path chooses at Model-I, rank 5, structural ranks (7, 7)
LAM = 0.041488773299838924
#: the iteration bound stated for this fit (the ADMM alone takes over 1000)
BOUND = 150


@pytest.fixture(scope="module")
def model_i():
    X, Y, C, C0 = mt.datasets.simulate_smart(200, 100, 50, rank=5, source_rank=10,
                                             sigma0=0.01, random_state=0)
    mod = mt.SMART(Y, X, source=C0, intercept=False)
    return SmartProblem.from_moments(*mod.moments(), svd0=mod.source_svd)


@pytest.fixture(scope="module")
def fits(model_i):
    with warnings.catch_warnings():
        warnings.simplefilter("error", mt.ConvergenceWarning)
        new = smart_solve(model_i, 5, (7, 7), LAM)
    # the ADMM alone: no attempt before the iteration cap
    mp = pytest.MonkeyPatch()
    mp.setattr(active_set, "ACTIVE_SET_AFTER", 10 ** 6)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mt.ConvergenceWarning)
            old = smart_solve(model_i, 5, (7, 7), LAM, max_iter=BOUND)
    finally:
        mp.undo()
    return new, old


def test_misspecified_fit_converges_within_bound(fits):
    new, old = fits
    assert new.converged and new.n_iter <= BOUND
    # without the phase the same fit is still running at the bound
    assert not old.converged and old.n_iter == BOUND


def test_misspecified_fit_is_certified_stationary(model_i, fits):
    new, old = fits
    e = new.extra
    cert = stationarity(model_i, e, 7, 7, tol=1e-6)
    assert cert["passed"]
    # the CVXPY d- and Omega-steps at the returned state, and the KKT gradients
    ver = verify_state(model_i, e)
    assert max(ver["d_step"], ver["omega_u_step"], ver["omega_v_step"]) < 1e-6
    assert max(ver["kkt_u"], ver["kkt_v"], ver["orth_u"], ver["orth_v"]) < 1e-6
    # no worse than where the ADMM alone had got to at the bound
    assert new.objective <= old.objective + 1e-9


def test_support_newton_is_a_kkt_point(model_i, fits):
    # from the ADMM's iterate after 90 plain iterations (support settled)
    mp = pytest.MonkeyPatch()
    mp.setattr(active_set, "ACTIVE_SET_AFTER", 10 ** 6)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mt.ConvergenceWarning)
            mid = smart_solve(model_i, 5, (7, 7), LAM, max_iter=90).extra
    finally:
        mp.undo()
    out = active_set.support_newton(model_i, mid["A"], mid["B"], mid["d"], mid["Omega_u"],
                                    mid["Omega_v"], 7, 7, LAM, LAM)
    assert out is not None
    A, B, d, gz_u, gz_v = out
    np.testing.assert_allclose(A.T @ A, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(B.T @ B, np.eye(5), atol=1e-12)
    # the l1 subgradient: lam * sign on the support, within [-lam, lam] off it
    on_u, on_v = A[7:] != 0, B[7:] != 0
    np.testing.assert_allclose(gz_u[on_u], LAM * np.sign(A[7:][on_u]), rtol=1e-9)
    np.testing.assert_allclose(gz_v[on_v], LAM * np.sign(B[7:][on_v]), rtol=1e-9)
    assert np.abs(gz_u).max() <= LAM * (1 + 1e-8) and np.abs(gz_v).max() <= LAM * (1 + 1e-8)
    # stationarity measured independently: the Riemannian gradient of the Lagrangian
    # f + <rho Z, X_low> from the problem's own data gradient, and the d-gradient
    g_A, g_B = model_i.data_gradient(A, d, B)
    g_A[7:] += gz_u
    g_B[7:] += gz_v
    assert np.linalg.norm(riemannian_gradient(A, g_A)) < 1e-10
    assert np.linalg.norm(riemannian_gradient(B, g_B)) < 1e-10
    GA = model_i.gram(A)
    g_d = d * np.einsum("ij,ij->j", A, GA) - np.einsum("ij,ij->j", A, model_i.H @ B)
    assert np.abs(g_d).max() < 1e-10
    # and it is the point the certified fit reaches (same support, same objective)
    new = fits[0]
    obj = (model_i.data_term(A, d, B) + LAM * np.abs(A[7:]).sum()
           + LAM * np.abs(B[7:]).sum())
    assert obj == pytest.approx(new.objective, rel=1e-8)
