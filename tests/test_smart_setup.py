"""The source basis and the least-squares start at large p: the O(p^2 r) complement basis
against LAPACK's pivoted QR, and the Cholesky least-squares fit against the
eigendecomposition where LAPACK's condition estimate is too pessimistic."""

import numpy as np
import pytest

from mtltransfer.solvers.linear import ols
from mtltransfer.smart.directions import _complement_basis_qr
from mtltransfer.smart.problem import _ols_cholesky, complement_basis, source_svd


def _orthonormal(m, r, seed):
    return np.linalg.qr(np.random.default_rng(seed).standard_normal((m, r)))[0]


@pytest.mark.parametrize("m,r", [(500, 1), (600, 3), (800, 40), (1000, 100)])
def test_complement_basis_loop_equals_pivoted_qr(m, r):
    Q = _orthonormal(m, r, m + r)
    A = complement_basis(Q)
    B = _complement_basis_qr(Q)
    assert A.shape == (m, m - r)
    # the same basis vector by vector (same pivots, same signs), orthonormal, orthogonal
    # to span(Q): all to rounding
    assert np.abs(A - B).max() < 1e-12
    assert np.abs(A.T @ A - np.eye(m - r)).max() < 1e-12
    assert np.abs(Q.T @ A).max() < 1e-12


def test_complement_basis_ties_and_coordinate_directions():
    # zero rows of Q tie at residual 1 throughout: LAPACK's swapping order decides them
    m = 640
    Q = np.zeros((m, 3))
    Q[10, 0] = 1.0                               # a coordinate direction
    Q[[20, 30], 1] = 1 / np.sqrt(2)
    rng = np.random.default_rng(3)
    v = np.zeros(m)
    v[100:140] = rng.standard_normal(40)
    Q[:, 2] = v / np.linalg.norm(v)
    A = complement_basis(Q)
    B = _complement_basis_qr(Q)
    assert np.abs(A - B).max() < 1e-12
    assert np.abs(Q.T @ A).max() < 1e-14


def test_source_svd_thin_reconstructs_and_is_orthogonal():
    rng = np.random.default_rng(5)
    p, q, r0 = 700, 60, 12
    C0 = rng.standard_normal((p, r0)) @ rng.standard_normal((r0, q))
    U0, s0, V0 = source_svd(C0)
    assert U0.shape == (p, p) and V0.shape == (q, q)
    assert np.abs(U0.T @ U0 - np.eye(p)).max() < 1e-12
    assert np.abs(V0.T @ V0 - np.eye(q)).max() < 1e-12
    rec = U0[:, :r0] @ np.diag(s0[:r0]) @ V0[:, :r0].T
    assert np.abs(rec - C0).max() < 1e-10 * np.abs(C0).max()


def test_cholesky_least_squares_where_the_condition_estimate_refuses():
    # two nearly collinear predictors: cond(Sxx) ~ 1e10, LAPACK's 1-norm estimate is
    # below 1e4 p eps, the Lanczos check finds every eigenvalue far above the cut-off
    from scipy import linalg

    rng = np.random.default_rng(0)
    n, p = 1200, 600
    X = rng.standard_normal((n, p))
    X[:, -1] = X[:, 0] + 3e-5 * rng.standard_normal(n)
    Sxx, Sxy = X.T @ X / n, X.T @ rng.standard_normal((n, 5)) / n
    D = np.sqrt(np.diag(Sxx))
    S = Sxx / np.outer(D, D)
    rcond = linalg.lapack.dpocon(linalg.cho_factor(S)[0], np.abs(S).sum(0).max())[0]
    w = np.linalg.eigvalsh(S)
    assert rcond < 1e4 * p * np.finfo(float).eps          # the estimate alone refuses
    assert w[0] > 1e2 * p * np.finfo(float).eps * w[-1]   # the eigenvalues allow it
    C = _ols_cholesky(Sxx, Sxy)
    C_ref = ols(Sxx, Sxy)[0]
    # both are accurate to cond(S) eps relative
    tol = 10 * (w[-1] / w[0]) * np.finfo(float).eps
    assert np.abs(C - C_ref).max() <= tol * np.abs(C_ref).max()


def test_cholesky_least_squares_refused_near_singular():
    rng = np.random.default_rng(1)
    n, p = 900, 600
    X = rng.standard_normal((n, p))
    X[:, -1] = X[:, 0] + 1e-9 * rng.standard_normal(n)   # cond ~ 1e18 after squaring
    Sxx, Sxy = X.T @ X / n, X.T @ rng.standard_normal((n, 2)) / n
    assert _ols_cholesky(Sxx, Sxy) is None
