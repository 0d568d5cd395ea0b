"""The random-effects SharedRepresentation (marginal likelihood, EM, BIC on k, posteriors)."""

import numpy as np
import pytest
from scipy import stats

import mtltransfer as mt
from mtltransfer.datasets import simulate_shared
from mtltransfer.solvers import shared_marginal as smg


def _dense_loglik(X, y, task, B, mu, Sigma, s2, center):
    """sum_t log N(y_t; X_t B mu, X_t B Sigma B^T X_t^T + s2 I), on the centred
    (N_t - 1)-dimensional space of each task when ``center``."""
    tot = 0.0
    for t in np.unique(task):
        Xt, yt = X[task == t], y[task == t]
        n = len(yt)
        C = Xt @ B @ Sigma @ B.T @ Xt.T + s2 * np.eye(n)
        Q = np.linalg.svd(np.eye(n) - 1.0 / n)[0][:, :n - 1] if center else np.eye(n)
        tot += stats.multivariate_normal(Q.T @ Xt @ B @ mu, Q.T @ C @ Q).logpdf(Q.T @ yt)
    return tot


@pytest.mark.parametrize("center", [False, True])
def test_marginal_loglik_matches_dense_normal(center):
    X, y, task, B, _ = simulate_shared(7, [4, 6, 9, 5, 3, 8, 7], 6, 2, sigma=0.8,
                                       condition_number=3, random_state=2)
    mu = np.array([0.4, -0.7])
    Sigma = np.array([[1.2, 0.3], [0.3, 0.4]])
    ll = smg.marginal_loglik(X, y, task, B, mu, Sigma, 0.55, center=center)
    assert ll == pytest.approx(_dense_loglik(X, y, task, B, mu, Sigma, 0.55, center),
                               rel=1e-10)


@pytest.mark.filterwarnings("ignore::mtltransfer.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("center", [False, True])
def test_em_increases_the_marginal_likelihood(center):
    X, y, task, B, _ = simulate_shared(300, 6, 12, 3, sigma=1.0, condition_number=5,
                                       random_state=3)
    y = y + 2.0 * (task % 3)          # per-task offsets, absorbed by the intercept
    sol = smg.fit_marginal(X, y, task, 3, center=center, tol=1e-10, max_iter=60)
    ll = np.array(sol.history["loglik"])
    assert len(ll) > 3
    assert np.all(np.diff(ll) >= -1e-9 * abs(ll[-1]))
    ex = sol.extra
    # the reported log-likelihood is that of the returned parameters
    ll_direct = smg.marginal_loglik(X, y, task, ex["B"], ex["mu_w"], ex["Sigma_w"],
                                    ex["sigma2"], center=center)
    assert ll_direct == pytest.approx(ex["loglik"], abs=1e-6 * abs(ll_direct))
    assert ll[-1] >= ll[0]
    np.testing.assert_allclose(ex["B"].T @ ex["B"], np.eye(3), atol=1e-10)


def test_marginal_and_joint_fits_agree_at_large_N():
    X, y, task, B, _ = simulate_shared(40, 150, 10, 2, sigma=1.0, random_state=4)
    mod = mt.SharedRepresentation(y, X, groups=task)
    em = mod.fit(k=2, method="marginal")
    gd = mod.fit(k=2, method="gd", w_ridge=None)
    # both near the truth, and closer to each other than to it
    d_em, d_gd = em.subspace_distance(B), gd.subspace_distance(B)
    assert d_em < 0.1 and d_gd < 0.1
    assert em.subspace_distance(gd.representation.to_numpy()) < 0.02
    # posterior means close to the joint fit's per-task weights (shrinkage O(1/N))
    np.testing.assert_allclose(em.params.to_numpy(), gd.params.to_numpy(), atol=0.05)


@pytest.mark.parametrize("T,N,d,k,sigma,cond", [
    (300, 20, 15, 2, 1.0, 1), (1500, 5, 10, 3, 0.5, 3), (200, 30, 20, 1, 2.0, 1),
    (800, 8, 20, 4, 1.0, 1)])
def test_default_k_is_right(T, N, d, k, sigma, cond):
    X, y, task, B, _ = simulate_shared(T, N, d, k, sigma=sigma, condition_number=cond,
                                       random_state=5)
    res = mt.SharedRepresentation(y, X, groups=task).fit()
    assert res.k == k and res.k_chosen_by == "BIC"
    fixed = mt.SharedRepresentation(y, X, groups=task).fit(k=k)
    assert res.subspace_distance(B) ** 2 <= 1.25 * fixed.subspace_distance(B) ** 2 + 1e-8
    # the scores are BIC of the marginal likelihood: the chosen k has the smallest
    assert min(res.k_scores, key=res.k_scores.get) == k


def test_bic_parameter_count():
    assert smg.bic_n_params(10, 3) == 10 * 3 - 9 + 3 + 6 + 1
    X, y, task, _, _ = simulate_shared(50, 10, 8, 2, random_state=6)
    res = mt.SharedRepresentation(y, X, groups=task).fit(k=2)
    assert res.k_params == smg.bic_n_params(8, 2)
    assert res.bic == pytest.approx(-2 * res.llf + np.log(res.nobs) * res.k_params)


def test_posterior_covariance_closed_form_for_known_B():
    X, y, task, B, _ = simulate_shared(5, 7, 6, 2, random_state=7)
    mu, Sigma, s2 = np.array([0.2, 0.1]), np.array([[0.9, -0.2], [-0.2, 0.5]]), 0.7
    Wbar, V = smg.posterior_w(X, y, task, B, mu, Sigma, s2)
    Si = np.linalg.inv(Sigma)
    for t in range(5):
        Z = X[task == t] @ B
        Vt = np.linalg.inv(Si + Z.T @ Z / s2)
        np.testing.assert_allclose(V[t], Vt, rtol=1e-10)
        np.testing.assert_allclose(Wbar[t], Vt @ (Si @ mu + Z.T @ y[task == t] / s2),
                                   rtol=1e-10)


def test_results_posterior_and_adapt_default():
    X, y, task, B, _ = simulate_shared(120, 8, 8, 2, sigma=0.7, random_state=8)
    y = y + 1.5
    mod = mt.SharedRepresentation(y, X, groups=task, intercept=True)
    res = mod.fit(k=2)
    Bh = res.representation.to_numpy()
    mu, Sigma = res.w_mean.to_numpy(), res.w_cov.to_numpy()
    s2 = res._solver.extra["sigma2"]
    Si = np.linalg.inv(Sigma)
    V = res.task_params_cov
    assert V.shape == (120, 2, 2)
    t = 17
    Xt = X[task == t] - X[task == t].mean(0)
    yt = y[task == t] - y[task == t].mean()
    Z = Xt @ Bh
    Vt = np.linalg.inv(Si + Z.T @ Z / s2)
    np.testing.assert_allclose(V[t], Vt, rtol=1e-8)
    np.testing.assert_allclose(res.task_params.iloc[:, t], Vt @ (Si @ mu + Z.T @ yt / s2),
                               rtol=1e-8)
    # adapt(): the Gaussian posterior mean under the fitted mu_w, Sigma_w, sigma^2
    rng = np.random.default_rng(9)
    Xn = rng.standard_normal((4, 8))
    yn = 2.0 + Xn @ B @ np.array([1.0, -0.5]) + 0.7 * rng.standard_normal(4)
    new = res.adapt(Xn, endog=yn)
    Zn = (Xn - Xn.mean(0)) @ Bh
    Vn = np.linalg.inv(Si + Zn.T @ Zn / s2)
    wn = Vn @ (Si @ mu + Zn.T @ (yn - yn.mean()) / s2)
    np.testing.assert_allclose(new.w, wn, rtol=1e-8)
    np.testing.assert_allclose(new.w_cov, Vn, rtol=1e-8)
    assert new.intercept == pytest.approx(yn.mean() - Xn.mean(0) @ Bh @ wn)
    # intervals: var of the mean = z^T V z + sigma^2 / n, observation + sigma^2
    Xq = rng.standard_normal((3, 8))
    pr = new.get_prediction(Xq).summary_frame(alpha=0.1)
    zq = (Xq - Xn.mean(0)) @ Bh
    se = np.sqrt(np.einsum("ik,kl,il->i", zq, Vn, zq) + s2 / 4)
    np.testing.assert_allclose(pr["mean_se"], se, rtol=1e-8)
    np.testing.assert_allclose(pr["mean"], new.predict(Xq), rtol=1e-12)
    q = stats.norm.ppf(0.95)
    np.testing.assert_allclose(pr["obs_ci_upper"] - pr["mean"], q * np.sqrt(se ** 2 + s2),
                               rtol=1e-8)
    with pytest.raises(ValueError, match="alpha"):
        new.get_prediction(Xq).summary_frame(alpha=1.5)


def test_integer_group_labels_keep_their_type():
    X, y, task, _, _ = simulate_shared(30, 6, 5, 1, random_state=10)
    res = mt.SharedRepresentation(y, X, groups=task).fit(k=1)
    assert list(res.params.columns) == list(range(30))
    np.testing.assert_allclose(res.params[0], res.params.iloc[:, 0])
    pred = res.predict(X[:3], groups=task[:3])
    np.testing.assert_allclose(pred, res.fittedvalues.iloc[:3])
    with pytest.raises(ValueError, match="not seen"):
        res.predict(X[:1], groups=[99])


def test_summary_shows_the_k_selection_and_marginal_llf():
    X, y, task, B, _ = simulate_shared(200, 10, 8, 2, random_state=11)
    res = mt.SharedRepresentation(y, X, groups=task).fit()
    text = res.summary().as_text()
    for words in ("marginal likelihood (EM)", "k selection", "2 (BIC)"):
        assert words in text, words
    ex = res._solver.extra
    assert res.llf == pytest.approx(smg.marginal_loglik(
        X, y, task, ex["B"], ex["mu_w"], ex["Sigma_w"], ex["sigma2"]), rel=1e-10)
    assert res.k_scores[2] == pytest.approx(min(res.k_scores.values()))
