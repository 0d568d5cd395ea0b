"""Marginal-likelihood EM of SharedRepresentation: its gradient stopping rule, the full
log-likelihood with intercepts, and the forward check of the k selection."""

import numpy as np
import pytest
from scipy import stats

import mtltransfer as mt
from mtltransfer.datasets import simulate_shared
from mtltransfer.exceptions import ConvergenceWarning
from mtltransfer.solvers import shared_marginal as smg


def _criterion_by_finite_differences(X, y, task, ex, h=1e-6):
    """lambda^2 / n of the documented stopping rule, from central differences of the
    marginal log-likelihood (not from the solver's own gradient formulas), in the
    solver's equilibrated coordinates (columns at unit root mean square, where the
    rule does not depend on the predictors' units: x_s = x / D, B_s R = D B, w_s = R w)."""
    D = np.sqrt((X * X).mean(axis=0))
    X = X / D
    B, R = np.linalg.qr(ex["B"] * D[:, None])
    mu, Sig, s2 = R @ ex["mu_w"], R @ ex["Sigma_w"] @ R.T, ex["sigma2"]
    d, k = B.shape
    T = int(task.max()) + 1
    n = len(y)

    def ll(B_=B, mu_=mu, Sig_=Sig, s2_=s2):
        return smg.marginal_loglik(X, y, task, B_, mu_, Sig_, s2_)

    def diff(f, shape):
        g = np.zeros(shape)
        for idx in np.ndindex(*shape):
            E = np.zeros(shape)
            E[idx] = h
            g[idx] = (f(E) - f(-E)) / (2 * h)
        return g

    gB = diff(lambda E: ll(B_=B + E), (d, k))
    gmu = diff(lambda E: ll(mu_=mu + E), (k,))
    # matrix gradient G (dl = tr(G dSigma)) from symmetric perturbations
    GS = diff(lambda E: ll(Sig_=Sig + (E + E.T) / 2), (k, k))
    GS = (GS + GS.T) / 2
    gs2 = (ll(s2_=s2 + h) - ll(s2_=s2 - h)) / (2 * h)
    # the metric: complete-data information (Kronecker form for B)
    Gbar = X.T @ X / n
    Wbar, V = smg.posterior_w(X, y, task, B, mu, Sig, s2)
    N = np.bincount(task, minlength=T)
    Pw = np.einsum("t,tkl->kl", N, V + Wbar[:, :, None] * Wbar[:, None, :])
    gp = gB - B @ (B.T @ gB)                         # Grassmann (horizontal) gradient
    lam_B = s2 * np.trace(gp.T @ np.linalg.solve(Gbar, gp) @ np.linalg.inv(Pw))
    lam_mu = gmu @ Sig @ gmu / T
    lam_S = 2 / T * np.trace(GS @ Sig @ GS @ Sig)
    lam_s2 = 2 * s2 ** 2 * gs2 ** 2 / n
    return (lam_B + lam_mu + lam_S + lam_s2) / n


def test_em_stops_on_the_gradient_and_reports_it():
    X, y, task, _, _ = simulate_shared(60, 8, 6, 2, sigma=0.8, condition_number=3,
                                       random_state=22)
    # an early iterate: the reported criterion is the documented gradient norm
    with pytest.warns(ConvergenceWarning, match="did not converge in 2 iterations"):
        early = smg.fit_marginal(X, y, task, 2, tol=1e-9, max_iter=2)
    assert not early.converged and early.n_iter == 2
    crit_fd = _criterion_by_finite_differences(X, y, task, early.extra)
    assert crit_fd > 1e-6
    assert early.history["criterion"][-1] == pytest.approx(crit_fd, rel=1e-4)
    # the converged fit satisfies the rule
    sol = smg.fit_marginal(X, y, task, 2, tol=1e-9)
    assert sol.converged
    assert sol.history["criterion"][-1] <= 1e-9
    assert _criterion_by_finite_differences(X, y, task, sol.extra) <= 1.001e-9


def test_model_fit_stopped_by_max_iter_warns():
    X, y, task, _, _ = simulate_shared(80, 6, 8, 2, random_state=23)
    mod = mt.SharedRepresentation(y, X, groups=task)
    with pytest.warns(ConvergenceWarning, match="fit_marginal did not converge"):
        res = mod.fit(k=2, max_iter=3)
    assert np.isfinite(res.llf)


def test_llf_with_intercept_is_the_full_gaussian_likelihood():
    sizes = [5, 7, 6, 9, 4, 8, 6, 7]
    X, y, task, _, _ = simulate_shared(8, sizes, 5, 2, sigma=0.7, condition_number=2,
                                       random_state=21)
    offsets = np.array([1.0, -2.0, 0.5, 3.0, 0.0, -1.0, 2.0, 1.5])
    y = y + offsets[task]
    res = mt.SharedRepresentation(y, X, groups=task, intercept=True).fit(k=2)
    B = res.representation.to_numpy()
    mu, Sig = res.w_mean.to_numpy(), res.w_cov.to_numpy()
    s2 = res._solver.extra["sigma2"]
    a = res.intercept.to_numpy()
    dense = 0.0
    for t in range(8):
        Xt, yt = X[task == t], y[task == t]
        C = Xt @ B @ Sig @ B.T @ Xt.T + s2 * np.eye(len(yt))
        # the fitted intercept is the GLS one, where the likelihood is maximised
        Ci1 = np.linalg.solve(C, np.ones(len(yt)))
        assert a[t] == pytest.approx(Ci1 @ (yt - Xt @ B @ mu) / Ci1.sum(), rel=1e-8)
        dense += stats.multivariate_normal(a[t] + Xt @ B @ mu, C).logpdf(yt)
    assert res.llf == pytest.approx(dense, rel=1e-10)
    # statsmodels' conventions: the intercepts are parameters, nobs counts the rows
    assert res.k_params == smg.bic_n_params(5, 2) + 8
    assert res.nobs == sum(sizes)
    assert res.bic == pytest.approx(-2 * dense + np.log(sum(sizes)) * res.k_params)
    assert res.aic == pytest.approx(-2 * dense + 2 * res.k_params)
    # the restricted likelihood (what EM maximises) leaves out the intercept dimensions
    assert res._solver.extra["loglik"] > res.llf


def test_forward_check_finds_a_direction_the_spectral_screen_misses():
    # at N = 5 rows per task the weak third direction (condition number 10) is outside
    # the leading spectral directions; the screen picks k = 2 and EM on the rows at k = 3
    # (accepted once its lower bound beats BIC(2)) finds it
    X, y, task, B, _ = simulate_shared(3000, 5, 50, 3, sigma=1.0, condition_number=10,
                                       random_state=0)
    k, scores, sol = smg.select_k_marginal(X, y, task)
    assert k == 3
    assert scores[3] < scores[2] and scores[3] < scores[4]
    assert scores[3] == pytest.approx(-2 * sol.extra["loglik"]
                                      + smg.bic_n_params(50, 3) * np.log(len(y)))
    fixed = smg.fit_marginal(X, y, task, 3)
    Bh, Bf = sol.extra["B"], fixed.extra["B"]
    sin2 = np.sum((Bh @ Bh.T - B @ B.T) ** 2) / 2
    assert sin2 <= 1.25 * np.sum((Bf @ Bf.T - B @ B.T) ** 2) / 2


def test_marginal_fit_does_not_depend_on_the_predictors_units():
    """The random-effects model is invariant to rescaling columns (theta -> D^-1 theta);
    with columns at 1e6 and 1e-4 the default fit picks the same k, the same fitted
    values and the same log-likelihood (it picked k = 4 and lost up to 226 in llf
    before the solver worked in equilibrated coordinates), and warns about nothing."""
    import warnings

    X, y, task, _, _ = simulate_shared(300, 8, 10, 3, random_state=1)
    D = np.ones(10)
    D[0], D[3] = 1e6, 1e-4
    a = mt.SharedRepresentation(y, X, groups=task).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = mt.SharedRepresentation(y, X * D, groups=task).fit()
    assert a.k == b.k == 3
    assert b.llf == pytest.approx(a.llf, rel=1e-9)
    fa, fb = a.fittedvalues.to_numpy(), b.fittedvalues.to_numpy()
    assert np.abs(fa - fb).max() <= 1e-5 * np.abs(fa).max()
    np.testing.assert_allclose(b.params.to_numpy() * D[:, None], a.params.to_numpy(),
                               rtol=1e-4, atol=1e-6 * np.abs(a.params.to_numpy()).max())
    # the representation is orthonormal in the user's coordinates
    Bb = b.representation.to_numpy()
    assert np.abs(Bb.T @ Bb - np.eye(3)).max() < 1e-12


def test_marginal_fit_on_grunfeld_is_unit_free():
    import statsmodels.api as sm

    g = sm.datasets.grunfeld.load_pandas().data
    a = mt.SharedRepresentation.from_formula("invest ~ value + capital", g,
                                             groups="firm").fit()
    g = g.assign(value=g["value"] * 1e6)
    b = mt.SharedRepresentation.from_formula("invest ~ value + capital", g,
                                             groups="firm").fit()
    assert a.k == b.k
    assert b.llf == pytest.approx(a.llf, rel=1e-9)
    np.testing.assert_allclose(b.fittedvalues, a.fittedvalues, rtol=1e-6,
                               atol=1e-6 * np.abs(a.fittedvalues).max())
