"""SMART at structural ranks that do not match the target (issue: misspecified ranks).

With ``rank > min(r_u, r_v)`` some columns of the factors must leave the source's
leading subspaces; the deterministic start adds them as single source directions
(:meth:`SmartProblem.complement_start`), where the l1 penalty is smallest.
"""

import warnings

import numpy as np
import pytest

import mtltransfer as mt
from mtltransfer.smart.admm import smart_admm, smart_objective
from mtltransfer.smart.problem import SmartProblem


@pytest.fixture(scope="module")
def model_ii():
    X, Y, C, C0 = mt.datasets.simulate_smart(300, 150, 100, rank=5, source_rank=10,
                                             sigma0=0.01, random_state=0)
    return mt.SMART(Y, X, source=C0, intercept=False)


def test_complement_start_is_orthonormal_and_sparse_outside(model_ii):
    prob = SmartProblem.from_moments(*model_ii.moments(), svd0=model_ii.source_svd)
    A, B = prob.complement_start(11, 10, 10, 0.7, 0.7)
    np.testing.assert_allclose(A.T @ A, np.eye(11), atol=1e-12)
    np.testing.assert_allclose(B.T @ B, np.eye(11), atol=1e-12)
    # one column leaves each leading subspace, along a single source direction
    assert np.count_nonzero(A[10:]) == 1 and np.count_nonzero(B[10:]) == 1
    # the first ten columns are the reduced-rank fit restricted to the leading subspaces
    A10, B10 = prob.restricted_rrr(10, 10, 10)
    np.testing.assert_allclose(A[:, :10] @ A[:, :10].T, A10 @ A10.T, atol=1e-10)


def test_rank_above_structural_rank_converges(model_ii):
    # r = 11 > r_u = r_v = 10 (the target has rank 5 inside a rank-10 source): from the
    # unrestricted reduced-rank start this fit ran 2000 iterations unconverged; it now
    # converges (certified: converged is true only where the KKT measures pass)
    Sxx, Sxy, Syy = model_ii.moments()
    with warnings.catch_warnings():
        warnings.simplefilter("error", mt.ConvergenceWarning)
        sol = smart_admm(Sxx, Sxy, Syy, None, 11, (10, 10), 0.7297,
                         svd0=model_ii.source_svd)
    assert sol.converged and sol.n_iter < 2000
    obj = smart_objective(Sxx, Sxy, Syy, None, sol.extra["U"], sol.extra["d"],
                          sol.extra["V"], (10, 10), 0.7297, svd0=model_ii.source_svd)
    assert obj == pytest.approx(sol.objective, rel=1e-12)
