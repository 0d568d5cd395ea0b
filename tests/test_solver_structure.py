"""The SMART solver's pieces on their own: problem object, pure ADMM step, Stiefel line
search, CVXPY twins, tuning result, and the defects fixed when they were split apart."""

import warnings

import cvxpy as cp
import numpy as np
import pytest

from mtltransfer.datasets import simulate_smart
from mtltransfer.gram import SufficientStats
from mtltransfer.smart import tuning
from mtltransfer.solvers import cvx
from mtltransfer.smart.admm import (AdmmParams, _initial_state, admm_step, smart_admm,
                                    smart_solve)
from mtltransfer.smart.problem import SmartProblem, source_svd
from mtltransfer.solvers.stiefel import armijo_search, polar, tangent_projection


@pytest.fixture(scope="module")
def problem():
    X, Y, C, C0 = simulate_smart(120, 20, 12, rank=3, source_rank=6, sigma0=0.01, sigma=0.5,
                                 random_state=3)
    st = SufficientStats.from_arrays(X, Y)
    Sxx, Sxy, Syy = st.moments()
    return st, C0, SmartProblem.from_moments(Sxx, Sxy, Syy, C0)


def _stiefel(rng, m, r):
    return np.linalg.qr(rng.standard_normal((m, r)))[0]


def test_data_term_equals_direct_loss_and_gradient_is_its_derivative(problem):
    st, C0, prob = problem
    rng = np.random.default_rng(0)
    A, B, d = _stiefel(rng, prob.p, 3), _stiefel(rng, prob.q, 3), np.array([2.0, 1.0, 0.5])
    Sxx, Sxy, Syy = st.moments()
    C = prob.U0 @ A @ np.diag(d) @ B.T @ prob.V0.T
    direct = 0.5 * np.trace(Syy) - np.trace(C.T @ Sxy) + 0.5 * np.trace(C.T @ Sxx @ C)
    assert prob.data_term(A, d, B) == pytest.approx(direct, rel=1e-12)
    gA, gB = prob.data_gradient(A, d, B)
    # directional derivatives by central differences (the Euclidean gradient is exact for
    # the formula f(A, d, B), which uses B^T B = I only through the quadratic term in A)
    E = rng.standard_normal(A.shape)
    h = 1e-6
    fd = (prob.data_term(A + h * E, d, B) - prob.data_term(A - h * E, d, B)) / (2 * h)
    assert np.sum(gA * E) == pytest.approx(fd, rel=1e-7)
    F = rng.standard_normal(B.shape)
    fd = (prob.data_term(A, d, B + h * F) - prob.data_term(A, d, B - h * F)) / (2 * h)
    assert np.sum(gB * F) == pytest.approx(fd, rel=1e-7)


def test_optimal_d_minimises_the_data_term(problem):
    _, _, prob = problem
    rng = np.random.default_rng(1)
    A, B = _stiefel(rng, prob.p, 3), _stiefel(rng, prob.q, 3)
    d = prob.optimal_d(A, B)
    f0 = prob.data_term(A, d, B)
    for j in range(3):
        for eps in (1e-3, -1e-3):
            dd = d.copy()
            dd[j] += eps
            assert prob.data_term(A, dd, B) > f0


def test_admm_step_is_pure(problem):
    _, _, prob = problem
    params = AdmmParams(r_u=6, r_v=6, lam_u=0.05, lam_v=0.05)
    state = _initial_state(prob, 3, 6, 6, 0.05, 0.05, 1.0)
    # force a sign flip of the d-step: negate a column of B (the d-step then flips it back)
    state = type(state)(**{**state.__dict__, "B": state.B * np.array([1.0, -1.0, 1.0]),
                           "Omega_v": state.Omega_v * np.array([1.0, -1.0, 1.0])})
    before = {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
              for k, v in state.__dict__.items()}
    new, res = admm_step(prob, state, params)
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(getattr(state, k), v, err_msg=k)
            assert getattr(new, k) is not getattr(state, k) or k in ("GA",)
    assert res.flipped
    new2, res2 = admm_step(prob, state, params)       # same input, same output
    for k in ("A", "B", "d", "Omega_u", "Omega_v", "Z_u", "Z_v"):
        np.testing.assert_array_equal(getattr(new, k), getattr(new2, k))
    assert np.all(new.d >= 0)
    np.testing.assert_allclose(new.A.T @ new.A, np.eye(3), atol=1e-12)


def test_armijo_search_reports_why_it_stopped():
    rng = np.random.default_rng(2)
    X = _stiefel(rng, 8, 2)
    M = rng.standard_normal((8, 2))

    def f(Y):
        return -float(np.sum(M * Y)), None           # maximise <M, Y>: polar(M) is optimal

    g = tangent_projection(X, -M)
    dec = float(np.sum(g * g))
    ok = armijo_search(f, X, -g, 0.1, dec, reference=f(X)[0])
    assert ok.stop_reason == "armijo" and ok.accepted and ok.n_trials >= 1
    assert ok.value <= f(X)[0] - 1e-4 * ok.step * dec
    # an ascent direction can never satisfy the rule: the budget runs out
    bad = armijo_search(f, X, g, 0.1, dec, reference=f(X)[0], max_backtracks=2)
    assert bad.stop_reason == "max_backtracks" and not bad.accepted and bad.n_trials == 3
    # the optimum on the Stiefel manifold is the polar factor: no decrease from there
    P = polar(M)
    assert f(P)[0] <= f(ok.X)[0]


def test_cvxpy_twins_are_built_once_and_follow_dpp():
    rng = np.random.default_rng(4)
    out = []
    for _ in range(3):
        c, g = rng.standard_normal(4), rng.uniform(0.5, 2.0, 4)
        out.append((cvx.smart_d_step(c, g), c / g))
    twin = cvx._cached_twin(("smart_d", 4), lambda: pytest.fail("the twin was rebuilt"))
    assert twin.problem.is_dpp()
    for d, ref in out:
        np.testing.assert_allclose(d, ref, rtol=1e-7, atol=1e-9)
    V = rng.standard_normal((5, 3))
    for lam in (0.1, 0.5):
        om = cvx.smart_omega_step(V, lam, 2.0)
        np.testing.assert_allclose(om, np.sign(V) * np.maximum(np.abs(V) - lam / 2.0, 0),
                                   atol=1e-8)
    cvx._cached_twin(("smart_omega", (5, 3)), lambda: pytest.fail("the twin was rebuilt"))


class _FakeProblem:
    """Stands in for a cp.Problem whose solver ends with a given status."""

    def __init__(self, status):
        self.status, self.value = status, 1.0

    def solve(self, **opts):
        self.opts = opts


def test_inaccurate_cvxpy_status_warns_or_raises():
    with pytest.warns(UserWarning, match="inaccurate"):
        assert cvx.solve_reference(_FakeProblem(cp.OPTIMAL_INACCURATE)) == 1.0
    with pytest.raises(RuntimeError, match="inaccurate"):
        cvx.solve_reference(_FakeProblem(cp.OPTIMAL_INACCURATE), inaccurate="raise")
    with pytest.raises(RuntimeError, match="infeasible"):
        cvx.solve_reference(_FakeProblem(cp.INFEASIBLE))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cvx.solve_reference(_FakeProblem(cp.OPTIMAL)) == 1.0


def test_tune_smart_with_a_lambda_pair_and_no_folds(problem):
    # defect: tune_smart(..., lam=(a, b)) crashed without fold_stats
    st, C0, _ = problem
    out = tuning.tune_smart(st, C0, rank=3, lam=(0.02, 0.03))
    assert isinstance(out, tuning.TuningResult)
    assert out.lam == (0.02, 0.03)
    assert out.how == {"rank": "given", "structural_rank": "bic", "lam": "given"}
    assert out.structural_rank in [tuple(s) for s in tuning.default_structural_grid(3, 20, 12, 6)]
    # the fit is the ADMM solution at that configuration
    Sxx, Sxy, Syy = st.moments()
    ref = smart_admm(Sxx, Sxy, Syy, C0, 3, out.structural_rank, (0.02, 0.03), tol=1e-6)
    np.testing.assert_allclose(out.result.coef, ref.coef, atol=1e-5)


def test_lambda_path_counts_each_iteration_once(problem):
    # defect: the polished fit's iterations were counted twice (n_iter 2, history 1)
    st, C0, _ = problem
    Sxx, Sxy, Syy = st.moments()
    out = tuning.smart_lambda_path(Sxx, Sxy, Syy, st.n, C0, 3, (6, 6), n_lam=5)
    res = out["result"]
    assert res.n_iter == len(res.history["objective"])
    # with path_tol == tol nothing is polished: the chosen fit is the path's own
    out2 = tuning.smart_lambda_path(Sxx, Sxy, Syy, st.n, C0, 3, (6, 6), n_lam=5, path_tol=1e-6)
    assert out2["result"].n_iter == out2["trace"]["n_iter"][out2["index"]]


def test_problem_object_is_shared_not_rebuilt(problem):
    st, C0, prob = problem
    Sxx, Sxy, Syy = st.moments()
    a = smart_solve(prob, 3, (6, 6), (0.05, 0.05))
    b = smart_admm(Sxx, Sxy, Syy, C0, 3, (6, 6), (0.05, 0.05), svd0=source_svd(C0))
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-12)
    with pytest.raises(ValueError, match="problem="):
        tuning.smart_lambda_path(Sxx, Sxy, Syy, st.n, None, 3, (6, 6), problem=prob)
