"""Tests of the shared-representation solvers (mtltransfer.solvers.shared_*)."""

import warnings

import numpy as np
import pytest

from mtltransfer.datasets import simulate_shared
from mtltransfer.exceptions import ConvergenceWarning
from mtltransfer.solvers import cvx
from mtltransfer.solvers import shared_baselines as sb
from mtltransfer.solvers import shared_data as sd
from mtltransfer.solvers import shared_fit as sf
from mtltransfer.solvers import shared_select as ss
from mtltransfer.solvers import stiefel


def sin2(B1, B2):
    return B1.shape[1] - np.linalg.norm(B1.T @ B2) ** 2


@pytest.fixture(scope="module")
def small():
    # unequal task sizes, several below d = 8
    N = [8, 15, 30, 6, 10, 12, 20, 9, 11, 14, 7, 25]
    return simulate_shared(12, N, 8, 2, sigma=0.5, random_state=3)


@pytest.fixture(scope="module")
def medium():
    return simulate_shared(300, 20, 30, 3, sigma=1.0, random_state=11)


# ---- loss and gradient ---------------------------------------------------------------

@pytest.mark.parametrize("route", ["rows", "stats"])
def test_loss_and_gradient_match_definition_and_finite_differences(small, route):
    X, y, task, B, W = small
    data = sd.TaskData.from_rows(X, y, task, route=route)
    rng = np.random.default_rng(0)
    B0 = np.linalg.qr(rng.standard_normal((8, 2)))[0]
    W0 = rng.standard_normal((2, 12))
    _, _, cache = data.w_system(B0)
    loss, g = data.loss_grad(B0, W0, cache)
    direct = sum(np.sum((y[task == t] - X[task == t] @ B0 @ W0[:, t]) ** 2)
                 / (2 * np.sum(task == t)) for t in range(12))
    assert loss == pytest.approx(direct, rel=1e-12)
    h = 1e-6
    fd = np.empty_like(B0)
    for i in range(8):
        for j in range(2):
            E = np.zeros_like(B0)
            E[i, j] = h
            lp = data.loss_grad(B0 + E, W0, data.w_system(B0 + E)[2], grad=False)[0]
            lm = data.loss_grad(B0 - E, W0, data.w_system(B0 - E)[2], grad=False)[0]
            fd[i, j] = (lp - lm) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    # the unfactorised loss used by the convex relaxation
    Theta = B0 @ W0
    lt, gt = data.theta_loss_grad(Theta)
    assert lt == pytest.approx(direct, rel=1e-12)
    E = rng.standard_normal(Theta.shape)
    fd_dir = (data.theta_loss_grad(Theta + h * E, False)[0]
              - data.theta_loss_grad(Theta - h * E, False)[0]) / (2 * h)
    assert np.sum(gt * E) == pytest.approx(fd_dir, rel=1e-6)


def test_rows_and_stats_routes_agree():
    sim = simulate_shared(20, [60] * 15 + [5] * 5, 10, 2, random_state=5)
    X, y, task = sim.X, sim.y, sim.task
    assert sd.TaskData.from_rows(X, y, task).route == "stats"        # mean N_t > d
    rows = sd.TaskData.from_rows(X, y, task, route="rows")
    stats = sd.TaskData.from_rows(X, y, task, route="stats")
    rng = np.random.default_rng(7)
    B0 = np.linalg.qr(rng.standard_normal((10, 2)))[0]
    W0 = rng.standard_normal((2, 20))
    Gr, br, cr = rows.w_system(B0)
    Gs, bs, cs = stats.w_system(B0)
    np.testing.assert_allclose(Gr, Gs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(br, bs, rtol=1e-10, atol=1e-12)
    for a, b in zip(rows.loss_grad(B0, W0, cr), stats.loss_grad(B0, W0, cs)):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    for a, b in zip(rows.theta_loss_grad(B0 @ W0), stats.theta_loss_grad(B0 @ W0)):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    assert rows.max_task_eig() == pytest.approx(stats.max_task_eig(), rel=1e-10)
    alpha = np.full(20, 0.1)
    np.testing.assert_allclose(sd.per_task_ridge(rows, alpha),
                               sd.per_task_ridge(stats, alpha), rtol=1e-9, atol=1e-12)
    assert rows.rss(B0 @ W0) == pytest.approx(stats.rss(B0 @ W0), rel=1e-10)


# ---- the W-step ----------------------------------------------------------------------

def test_w_step_equals_per_task_lstsq_and_cvxpy(small):
    X, y, task, _, _ = small
    rng = np.random.default_rng(1)
    B0 = np.linalg.qr(rng.standard_normal((8, 2)))[0]
    data = sd.TaskData.from_rows(X, y, task)
    G, b, _ = data.w_system(B0)
    W_fast = sd.solve_w(G, b)
    W_ls = np.column_stack([np.linalg.lstsq(X[task == t] @ B0, y[task == t], rcond=None)[0]
                            for t in range(12)])
    np.testing.assert_allclose(W_fast, W_ls, rtol=1e-9, atol=1e-10)
    W_cvx = cvx.shared_rep_w_step(X @ B0, y, task, 12)
    np.testing.assert_allclose(W_cvx, W_ls, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("w_ridge", [None, "auto"])
def test_cvxpy_backend_gives_the_same_fit(small, w_ridge):
    X, y, task, _, _ = small
    a = sf.fit_shared_representation(X, y, task, 2, tol=1e-10, w_ridge=w_ridge)
    b = sf.fit_shared_representation(X, y, task, 2, tol=1e-10, backend="cvxpy",
                                     w_ridge=w_ridge)
    assert a.converged and b.converged
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-6, atol=1e-6)


def test_ridge_w_step_is_the_posterior_mean_and_matches_cvxpy(small):
    X, y, task, _, _ = small
    rng = np.random.default_rng(2)
    B0 = np.linalg.qr(rng.standard_normal((8, 2)))[0]
    data = sd.TaskData.from_rows(X, y, task)
    lam = 0.7 / data.N                                     # lambda_t = c / N_t
    G, b, _ = data.w_system(B0)
    W_fast = sd.solve_w(G, b, lam)
    W_ref = np.column_stack([
        np.linalg.solve((X[task == t] @ B0).T @ (X[task == t] @ B0) / data.N[t]
                        + lam[t] * np.eye(2),
                        (X[task == t] @ B0).T @ y[task == t] / data.N[t])
        for t in range(12)])
    np.testing.assert_allclose(W_fast, W_ref, rtol=1e-10, atol=1e-12)
    W_cvx = cvx.shared_rep_w_step(X @ B0, y, task, 12, ridge=lam)
    np.testing.assert_allclose(W_cvx, W_ref, rtol=1e-6, atol=1e-6)
    # the ridge pulls every w_t towards 0 relative to least squares
    W_ls = sd.solve_w(G, b)
    assert np.all(np.linalg.norm(W_fast, axis=0) < np.linalg.norm(W_ls, axis=0))


def _profile(X, y, task, B):
    """f(B) = sum_t (1 / 2N_t) min_w ||y_t - X_t B w||^2 by a dense per-task lstsq."""
    total = 0.0
    for t in np.unique(task):
        Z, yt = X[task == t] @ B, y[task == t]
        r = yt - Z @ np.linalg.lstsq(Z, yt, rcond=None)[0]
        total += r @ r / (2 * len(yt))
    return total


def _check_pure_likelihood_minimum(X, y, task, fit, B_true, seed=0):
    """The fit's objective is the profile at its B (dense reference), lies below the
    profile at the simulating B, and B is stationary: central finite differences of the
    profile along random tangent directions (QR retraction) vanish to O(h^2)."""
    B = fit.extra["B"]
    f = _profile(X, y, task, B)
    assert fit.objective == pytest.approx(f, rel=1e-12)
    assert fit.objective <= _profile(X, y, task, B_true)
    rng = np.random.default_rng(seed)
    h = 1e-4
    for _ in range(3):
        D = rng.standard_normal(B.shape)
        D -= B @ (B.T @ D)                        # tangent to the Grassmannian at B
        D /= np.linalg.norm(D)
        up = _profile(X, y, task, np.linalg.qr(B + h * D)[0])
        down = _profile(X, y, task, np.linalg.qr(B - h * D)[0])
        # the slope is zero at a stationary point; the O(h^2) curvature term stays
        assert abs(up - down) / (2 * h) < 1e-4 * f
        assert min(up, down) >= f - 1e-12 * f       # and it is a local minimum


def test_w_ridge_off_is_the_unchanged_pure_likelihood(small, medium):
    X, y, task, B_true, _ = small
    a = sf.fit_shared_representation(X, y, task, 2, tol=1e-10, w_ridge=None)
    _check_pure_likelihood_minimum(X, y, task, a, B_true)
    assert a.n_iter < 500 and a.extra["ridge"] is None and a.extra["w_ridge"] == 0
    assert a.stop_reason == "converged" and a.extra["final_criterion"] <= 1e-10
    assert a.extra["likelihood_loss"] == pytest.approx(a.objective, rel=1e-14)
    z = sf.fit_shared_representation(X, y, task, 2, tol=1e-10, w_ridge=0.0)
    np.testing.assert_array_equal(a.coef, z.coef)
    # two algorithms (preconditioned gradient descent, alternating minimisation), one
    # minimum, each certified against the dense profile
    Xm, ym, tm, Bm, _ = medium
    fits = {method: sf.fit_shared_representation(Xm, ym, tm, 3, method=method,
                                                 w_ridge=None)
            for method in ("gd", "altmin")}
    for r in fits.values():
        _check_pure_likelihood_minimum(Xm, ym, tm, r, Bm)
    assert fits["gd"].objective == pytest.approx(fits["altmin"].objective, rel=1e-8)
    # the ridge fit: objective = likelihood + penalty, lambda_t = c / N_t with the
    # empirical-Bayes c = sigma2_hat k / tau2_hat
    b = sf.fit_shared_representation(X, y, task, 2, tol=1e-10)
    data = sd.TaskData.from_rows(X, y, task)
    s2, tau2 = sd.moment_noise_signal(data)
    assert b.extra["w_ridge"] == pytest.approx(s2 * 2 / tau2, rel=1e-12)
    np.testing.assert_allclose(b.extra["ridge"], b.extra["w_ridge"] / data.N, rtol=1e-12)
    W = b.extra["W"]
    pen = 0.5 * np.sum(b.extra["ridge"] * np.sum(W ** 2, axis=0))
    assert b.objective == pytest.approx(b.extra["likelihood_loss"] + pen, rel=1e-12)
    assert b.extra["likelihood_loss"] >= a.objective           # a minimises L alone


@pytest.mark.parametrize("route", ["rows", "stats"])
def test_ridge_gradient_is_the_slope_of_the_profile_along_the_retraction(route):
    sim = simulate_shared(20, [60] * 15 + [5] * 5, 10, 2, random_state=5)
    B0 = sf.spectral_init(sim.X, sim.y, sim.task, 2)
    data = sd.TaskData.from_rows(sim.X, sim.y, sim.task, route=route)
    lam = 3.0 / data.N

    def profile(B):
        G, b, cache = data.w_system(B)
        W = sd.solve_w(G, b, lam)
        loss, g = data.loss_grad(B, W, cache)
        return loss + 0.5 * np.dot(lam, np.sum(W ** 2, axis=0)), g, W

    f0, g, W = profile(B0)
    assert np.linalg.norm(B0.T @ g) > 1e-3 * np.linalg.norm(g)  # not zero with a ridge
    g_perp = g - B0 @ (B0.T @ g)
    D = np.linalg.solve(data.pooled_cov(), g_perp) @ np.linalg.inv(W @ W.T)
    h = 1e-6
    fp = profile(stiefel.qr_pos(B0 - h * D)[0])[0]
    fm = profile(stiefel.qr_pos(B0 + h * D)[0])[0]
    assert (fp - fm) / (2 * h) == pytest.approx(-np.sum(g_perp * D), rel=1e-5)


def test_ridge_removes_the_blow_up_at_N_equal_2k():
    # d = 50, k = 5, N = 10 = 2k: the pure likelihood lets X_t B approach singular for
    # some tasks; the empirical-Bayes W-step keeps every w_t bounded
    sim = simulate_shared(200, 10, 50, 5, random_state=4)
    Theta = sim.B @ sim.W
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gd = sf.fit_shared_representation(sim.X, sim.y, sim.task, 5, max_iter=3000)
        alt = sf.fit_shared_representation(sim.X, sim.y, sim.task, 5, method="altmin",
                                           max_iter=3000)
        raw = sf.fit_shared_representation(sim.X, sim.y, sim.task, 5, w_ridge=None,
                                           max_iter=3000)
    ls = sb.fit_per_task(sim.X, sim.y, sim.task)

    def err(coef):
        return np.mean(np.sum((coef - Theta) ** 2, axis=0))

    assert gd.converged and alt.converged
    assert err(gd.coef) < 0.5 * err(ls.coef)
    assert err(gd.coef) < err(raw.coef)
    e_gd, e_alt, e_raw = (sin2(r.extra["B"], sim.B) for r in (gd, alt, raw))
    assert e_gd <= 1.02 * e_alt and e_gd < e_raw
    assert gd.n_iter < alt.n_iter


# ---- the iterative estimators --------------------------------------------------------

@pytest.mark.parametrize("w_ridge", [None, "auto"])
@pytest.mark.parametrize("method", ["gd", "altmin"])
def test_objective_decreases_monotonically_and_history_is_complete(medium, method,
                                                                    w_ridge):
    X, y, task, _, _ = medium
    res = sf.fit_shared_representation(X, y, task, 3, method=method, init="mom",
                                       w_ridge=w_ridge)
    obj = np.array(res.history["objective"])
    assert res.converged and res.n_iter >= 2
    assert len(obj) == res.n_iter + 1
    assert all(len(v) == len(obj) for v in res.history.values())
    assert np.all(np.diff(obj) <= 1e-12 * obj[0])
    assert obj[-1] == pytest.approx(res.objective)
    B, W = res.extra["B"], res.extra["W"]
    np.testing.assert_allclose(B.T @ B, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(B @ W, res.coef)
    assert np.all(np.isfinite(res.coef))


def test_recovery_beats_method_of_moments_and_matches_altmin(medium):
    X, y, task, B, _ = medium
    gd = sf.fit_shared_representation(X, y, task, 3)
    alt = sf.fit_shared_representation(X, y, task, 3, method="altmin")
    mom = sf.fit_shared_representation(X, y, task, 3, method="mom")
    pred = 30 * 3 / (300 * 20)                      # dk / (TN) = 0.015
    e_gd, e_alt, e_mom = (sin2(r.extra["B"], B) for r in (gd, alt, mom))
    assert e_gd < 3 * pred
    assert e_gd < 0.5 * e_mom
    assert e_gd <= 1.02 * e_alt
    assert gd.objective <= alt.objective * (1 + 1e-7)
    assert mom.n_iter == 0 and mom.converged


def test_iterations_do_not_grow_with_T():
    its = []
    for T in (200, 800):
        sim = simulate_shared(T, 20, 30, 3, random_state=T)
        its.append(sf.fit_shared_representation(sim.X, sim.y, sim.task, 3).n_iter)
    assert its[1] <= its[0] + 2, its


def test_preconditioning_is_insensitive_to_the_conditioning_of_W():
    sim = simulate_shared(200, 20, 20, 3, condition_number=10.0, random_state=2)
    gd = sf.fit_shared_representation(sim.X, sim.y, sim.task, 3, max_iter=1000)
    alt = sf.fit_shared_representation(sim.X, sim.y, sim.task, 3, method="altmin",
                                       max_iter=1000)
    assert gd.converged and alt.converged
    assert 3 * gd.n_iter < alt.n_iter


def test_unsorted_rows_and_centring(medium):
    X, y, task, _, _ = medium
    perm = np.random.default_rng(4).permutation(len(y))
    Xp, yp, tp = X[perm], y[perm], task[perm]
    Xc, yc = Xp.copy(), yp.copy()
    a = sf.fit_shared_representation(X, y, task, 3)
    b = sf.fit_shared_representation(Xp, yp, tp, 3)
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(Xp, Xc)                     # input not modified
    np.testing.assert_array_equal(yp, yc)
    # per-task intercepts removed by center=True
    shift_x = np.random.default_rng(5).standard_normal((300, 30))
    shift_y = np.random.default_rng(6).standard_normal(300)
    c = sf.fit_shared_representation(X + shift_x[task], y + shift_y[task], task, 3,
                                     center=True)
    Xm = X - (np.add.reduceat(X, np.arange(0, 6000, 20)) / 20)[task]
    ym = y - (np.add.reduceat(y, np.arange(0, 6000, 20)) / 20)[task]
    d = sf.fit_shared_representation(Xm, ym, task, 3)
    np.testing.assert_allclose(c.coef, d.coef, rtol=1e-7, atol=1e-9)


def test_non_convergence_warns_and_returns_finite(medium):
    X, y, task, _, _ = medium
    with pytest.warns(ConvergenceWarning,
                      match=r"fit_shared_representation\(method='gd'\) did not converge "
                            r"in 1 iterations"):
        res = sf.fit_shared_representation(X, y, task, 3, max_iter=1, init="mom")
    assert not res.converged and res.n_iter == 1
    assert np.all(np.isfinite(res.coef)) and np.isfinite(res.objective)


def test_spectral_starts(medium):
    X, y, task, B, _ = medium
    for init in ("mom", "ridge"):
        B0 = sf.spectral_init(X, y, task, 3, init=init)
        np.testing.assert_allclose(B0.T @ B0, np.eye(3), atol=1e-10)
        assert sin2(B0, B) < 1.0
    assert sin2(sf.spectral_init(X, y, task, 3, init="ridge"), B) < \
        sin2(sf.spectral_init(X, y, task, 3, init="mom"), B)


# ---- baselines -----------------------------------------------------------------------

def test_per_task_least_squares_and_ridge(small):
    X, y, task, _, _ = small
    res = sb.fit_per_task(X, y, task)
    alpha = res.extra["alpha"]
    for t in range(12):
        Xt, yt = X[task == t], y[task == t]
        n = len(yt)
        if n >= 8:
            assert alpha[t] == 0
            ref = np.linalg.lstsq(Xt, yt, rcond=None)[0]
        else:
            assert alpha[t] > 0
            ref = np.linalg.solve(Xt.T @ Xt / n + alpha[t] * np.eye(8), Xt.T @ yt / n)
        np.testing.assert_allclose(res.coef[:, t], ref, rtol=1e-8, atol=1e-10)
    fixed = sb.fit_per_task(X, y, task, alpha=0.3)
    t = 3
    Xt, yt = X[task == t], y[task == t]
    ref = np.linalg.solve(Xt.T @ Xt / 6 + 0.3 * np.eye(8), Xt.T @ yt / 6)
    np.testing.assert_allclose(fixed.coef[:, t], ref, rtol=1e-8)


@pytest.mark.parametrize("lam", [0.02, 0.3])
def test_nuclear_norm_prox_matches_cvxpy(small, lam):
    X, y, task, _, _ = small
    fast = sb.fit_nuclear_norm(X, y, task, lam, tol=1e-12, max_iter=20000)
    ref = sb.fit_nuclear_norm(X, y, task, lam, backend="cvxpy")
    assert fast.converged
    assert abs(fast.objective - ref.objective) <= 1e-6 * abs(ref.objective)
    assert np.linalg.norm(fast.coef - ref.coef) <= 1e-4 * np.linalg.norm(ref.coef)
    # optimality: the objective is not improved by a small perturbation
    E = np.random.default_rng(0).standard_normal(fast.coef.shape) * 1e-3
    data = sd.TaskData.from_rows(X, y, task)
    pert = data.theta_loss_grad(fast.coef + E, False)[0] + \
        lam * np.linalg.svd(fast.coef + E, compute_uv=False).sum()
    assert pert >= fast.objective


def test_nuclear_norm_large_penalty_gives_zero(small):
    X, y, task, _, _ = small
    res = sb.fit_nuclear_norm(X, y, task, 1e3)
    assert np.all(res.coef == 0) and res.extra["rank"] == 0


# ---- selection, transfer, distance ---------------------------------------------------

def test_select_k_picks_true_k():
    sim = simulate_shared(150, 25, 15, 3, sigma=0.5, random_state=8)
    k_bic, scores = ss.select_k(sim.X, sim.y, sim.task, ks=range(1, 7), patience=None)
    assert k_bic == 3 and set(scores) == set(range(1, 7))
    # the early-stopped scan (default patience=2) ends after k = 5 with the same choice
    k_fast, fast = ss.select_k(sim.X, sim.y, sim.task, ks=range(1, 7))
    assert k_fast == 3 and set(fast) == {1, 2, 3, 4, 5}
    assert all(fast[k] == pytest.approx(scores[k], rel=1e-9) for k in fast)
    k_cv, _ = ss.select_k(sim.X, sim.y, sim.task, ks=range(1, 7), criterion="cv",
                          n_folds=3)
    assert k_cv == 3


def test_adapt_is_least_squares_on_fixed_B_and_shrinks(medium):
    rng = np.random.default_rng(3)
    B = medium.B
    Xn = rng.standard_normal((12, 30))
    yn = Xn @ B @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.standard_normal(12)
    w = sb.adapt(B, Xn, yn)
    np.testing.assert_allclose(w, np.linalg.lstsq(Xn @ B, yn, rcond=None)[0], rtol=1e-10)
    m = np.array([3.0, 3.0, 3.0])
    np.testing.assert_allclose(sb.adapt(B, Xn, yn, shrink=1e9, w_mean=m), m, atol=1e-6)
    C = np.diag([1.0, 2.0, 4.0])
    Z = Xn @ B
    ref = np.linalg.solve(Z.T @ Z / 12 + 0.5 * np.linalg.inv(C),
                          Z.T @ yn / 12 + 0.5 * np.linalg.inv(C) @ m)
    np.testing.assert_allclose(sb.adapt(B, Xn, yn, shrink=0.5, w_mean=m, w_cov=C), ref,
                               rtol=1e-10)
    # shrinkage moves the fit between least squares and the target
    ws = sb.adapt(B, Xn, yn, shrink=0.5, w_mean=m)
    assert np.linalg.norm(ws - m) < np.linalg.norm(w - m)


def test_subspace_distance_identities():
    rng = np.random.default_rng(9)
    d, k = 12, 3
    B1 = np.linalg.qr(rng.standard_normal((d, k)))[0]
    B2 = np.linalg.qr(rng.standard_normal((d, k)))[0]
    Q_full = np.linalg.qr(np.column_stack([B1, rng.standard_normal((d, d - k))]))[0]
    B1_perp = Q_full[:, k:]
    dist = sb.subspace_distance(B1, B2)
    assert dist == pytest.approx(np.linalg.norm(B1_perp.T @ B2), rel=1e-10)
    assert dist == pytest.approx(sb.subspace_distance(B2, B1), rel=1e-10)
    R = np.linalg.qr(rng.standard_normal((k, k)))[0]
    assert sb.subspace_distance(B1, B1 @ R) == pytest.approx(0.0, abs=1e-7)
    assert sb.subspace_distance(B1, B2 @ R) == pytest.approx(dist, rel=1e-10)
    assert sb.subspace_distance(B1, B1_perp[:, :k]) == pytest.approx(np.sqrt(k))
    with pytest.raises(ValueError, match="B2 must have orthonormal"):
        sb.subspace_distance(B1, 2 * B2)


def test_simulate_shared():
    sim = simulate_shared(5, [3, 4, 5, 6, 7], 6, 2, sigma=0.0, condition_number=10,
                          random_state=0)
    X, y, task, B, W = sim
    assert X.shape == (25, 6) and y.shape == (25,) and W.shape == (2, 5)
    np.testing.assert_array_equal(np.bincount(task), [3, 4, 5, 6, 7])
    np.testing.assert_allclose(B.T @ B, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(y, np.einsum("id,di->i", X, (B @ W)[:, task]))
    with pytest.raises(ValueError, match="condition_number"):
        simulate_shared(5, 3, 6, 2, condition_number=0.5)


# ---- bad input -----------------------------------------------------------------------

@pytest.mark.parametrize("change, exc, match", [
    (lambda a: dict(a, X=np.where(np.arange(a["X"].size).reshape(a["X"].shape) == 0,
                                  np.nan, a["X"])), ValueError, "X contains NaN"),
    (lambda a: dict(a, y=a["y"][:-1]), ValueError, "same number of rows"),
    (lambda a: dict(a, task=np.where(a["task"] == 2, 5, a["task"])), ValueError,
     "task labels"),
    (lambda a: dict(a, task=a["task"].astype(str)), TypeError, "task"),
    (lambda a: dict(a, k=0), ValueError, "k must be in"),
    (lambda a: dict(a, k=2.0), TypeError, "k must be an integer"),
    (lambda a: dict(a, method="newton"), ValueError, "method"),
    (lambda a: dict(a, init=np.ones((3, 2))), ValueError, "init must have shape"),
    (lambda a: dict(a, backend="torch"), ValueError, "backend"),
    (lambda a: dict(a, tol=-1.0), ValueError, "tol"),
    (lambda a: dict(a, w_ridge="big"), ValueError, "w_ridge"),
    (lambda a: dict(a, w_ridge=-1.0), ValueError, "w_ridge"),
])
def test_bad_input_names_the_argument(small, change, exc, match):
    args = change({"X": small.X, "y": small.y, "task": small.task, "k": 2})
    kw = {key: v for key, v in args.items() if key not in ("X", "y", "task", "k")}
    with pytest.raises(exc, match=match):
        sf.fit_shared_representation(args["X"], args["y"], args["task"], args["k"], **kw)


def test_bad_input_other_functions(small):
    X, y, task, B, _ = small
    with pytest.raises(ValueError, match="lam"):
        sb.fit_nuclear_norm(X, y, task, -1.0)
    with pytest.raises(ValueError, match="alpha"):
        sb.fit_per_task(X, y, task, alpha=-1.0)
    with pytest.raises(ValueError, match="X_new"):
        sb.adapt(B, X[:, :5], y)
    with pytest.raises(ValueError, match="shrink"):
        sb.adapt(B, X, y, shrink=-1.0)
    with pytest.raises(ValueError, match="criterion"):
        ss.select_k(X, y, task, criterion="aic")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb.adapt(B, X, y)                              # a valid call does not warn
