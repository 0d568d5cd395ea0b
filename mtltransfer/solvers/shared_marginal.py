# Over 600 lines: one algorithm: EM, its stopping rule and the k selection reusing its fits.
"""The shared representation as a random-effects model, fitted by marginal likelihood.

Model: T tasks, task t has rows ``X_t`` (N_t x d) and responses ``y_t``;

    y_t = X_t B w_t + e_t,    w_t ~ N(mu_w, Sigma_w) i.i.d.,    e_t ~ N(0, sigma^2 I),

B (d x k) with orthonormal columns. Integrating w_t out, ``y_t ~ N(X_t B mu_w, C_t)`` with
``C_t = X_t B Sigma_w B^T X_t^T + sigma^2 I``. With a per-task intercept the rows of each
task are centred and the intercept is integrated out under a flat prior (the restricted
likelihood): task t then contributes ``n_t = N_t - 1`` instead of ``N_t`` dimensions.

Everything is computed from ``M_t = B^T S_t B``, ``m_t = B^T b_t`` and ``c_t = y_t^T y_t``
(``S_t = X_t^T X_t``, ``b_t = X_t^T y_t``): k x k algebra per task, batched over tasks.
The rows are touched through ``Z = X B`` and ``X^T (n x k)`` products (the per-task
d x d moments are never stored); the per-task ``Z_t^T Z_t`` are batched matrix products
over blocks of tasks with equal N_t.

The solver's data (rows, per-task sums, or reduced statistics) are the problem objects
of :mod:`.shared_marginal_data`.

EM stops on the gradient of the log marginal likelihood (:func:`_grad_criterion`), and
with a per-task intercept the reported log-likelihood ``loglik_full`` is that of the full
model at the fitted intercepts (:func:`_intercept_loglik`).

Public functions
----------------
fit_marginal             EM for (B, mu_w, Sigma_w, sigma^2) at a given k
select_k_marginal        k by BIC on the marginal likelihood, then the fit at that k
marginal_loglik          the log marginal likelihood of given parameters
posterior_w              posterior mean and covariance of each w_t
"""

from __future__ import annotations

import numbers
import time

import numpy as np
from scipy import linalg, sparse

from ._base import SolverResult, warn_not_converged
from .shared_data import problem_data
from .shared_marginal_data import (CHUNK, ReducedStats, RowsData, center_AB, rows_data,
                                   sums_data)

__all__ = ["fit_marginal", "select_k_marginal", "marginal_loglik", "posterior_w",
           "posterior_new_task", "bic_n_params", "rows_data", "sums_data"]

_LOG2PI = np.log(2 * np.pi)


# ---------------------------------------------------------------------------------------
# E-step and the marginal likelihood
# ---------------------------------------------------------------------------------------

def _estep(M, m, c, n_eff, mu, Sigma, s2):
    """Posterior of each w_t and the log marginal likelihood.

    Lambda_t = Sigma^{-1} + M_t / sigma^2,  V_t = Lambda_t^{-1},
    wbar_t = V_t (Sigma^{-1} mu + m_t / sigma^2);
    log p(y_t) = -1/2 [n_t log(2 pi sigma^2) + log|Sigma| + log|Lambda_t| + Q_t],
    Q_t = r^T r / sigma^2 - u^T V_t u / sigma^4 with r = y_t - Z_t mu, u = Z_t^T r
    (Woodbury: C_t^{-1} = I / sigma^2 - Z_t V_t Z_t^T / sigma^4).
    """
    Lc = np.linalg.cholesky(Sigma)
    Sinv = np.linalg.inv(Sigma)
    logdet_S = 2 * np.sum(np.log(np.diag(Lc)))
    Lam = Sinv[None] + M / s2
    Mmu = np.einsum("tkl,l->tk", M, mu)
    u = m - Mmu
    h = (Sinv @ mu)[None] + m / s2
    V, logdet_L = _inv_logdet(Lam)
    Wbar = np.einsum("tkl,tl->tk", V, h)
    uVu = np.einsum("tk,tkl,tl->t", u, V, u)
    rr = c - 2 * m @ mu + Mmu @ mu
    Q = rr / s2 - uVu / s2 ** 2
    ll = -0.5 * (n_eff * (_LOG2PI + np.log(s2)) + logdet_S + logdet_L + Q)
    return Wbar, V, float(ll.sum())


def _inv_logdet(A):
    """Inverses and log-determinants of symmetric positive definite A (T x k x k):
    closed forms (adjugate / determinant) for k <= 3, LAPACK beyond."""
    k = A.shape[1]
    if k == 1:
        a = A[:, 0, 0]
        return (1.0 / a)[:, None, None], np.log(a)
    if k == 2:
        a, b, c = A[:, 0, 0], A[:, 0, 1], A[:, 1, 1]
        det = a * c - b * b
        V = np.empty_like(A)
        V[:, 0, 0], V[:, 0, 1], V[:, 1, 0], V[:, 1, 1] = c / det, -b / det, -b / det, a / det
        return V, np.log(det)
    if k == 3:
        a, b, c = A[:, 0, 0], A[:, 0, 1], A[:, 0, 2]
        e, f, i = A[:, 1, 1], A[:, 1, 2], A[:, 2, 2]
        c00, c01, c02 = e * i - f * f, c * f - b * i, b * f - c * e
        c11, c12, c22 = a * i - c * c, b * c - a * f, a * e - b * b
        det = a * c00 + b * c01 + c * c02
        adj = np.stack([np.stack([c00, c01, c02], 1), np.stack([c01, c11, c12], 1),
                        np.stack([c02, c12, c22], 1)], 1)
        return adj / det[:, None, None], np.log(det)
    L = np.linalg.cholesky(A)
    V = np.linalg.inv(A)
    return ((V + np.swapaxes(V, 1, 2)) / 2,
            2 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1))


def _bounded_sigma(Sigma):
    Sigma = (Sigma + Sigma.T) / 2
    floor = 1e-10 * max(np.trace(Sigma) / Sigma.shape[0], 1e-300)
    return Sigma + floor * np.eye(Sigma.shape[0])


def _grad_criterion(B, r, Gi, Pwi, mu, Sigma, s2, delta, Sbar, erss, T, n_tot):
    """The stopping criterion of EM: lambda^2 / n, the squared norm of the gradient of the
    log marginal likelihood l in the metric of the inverse complete-data information
    (per row; the squared Newton decrement of EM's surrogate), summed over the blocks:

    * B (Grassmann gradient, ``g_B = (I - B B^T) (R - A(B)) / sigma^2``, the horizontal
      part of ``dl/dB = sum_t X_t^T E[(y_t - X_t B w_t) w_t^T] / sigma^2``; information
      approximated by ``(Gbar (x) Pw) / sigma^2`` with ``Gbar = sum_t S_t / n`` and
      ``Pw = sum_t N_t E[w_t w_t^T]``): ``sigma^2 tr(g_B^T Gbar^{-1} g_B Pw^{-1})``;
    * mu_w (``g = Sigma^{-1} sum_t (wbar_t - mu)``, information ``T Sigma^{-1}``):
      ``T delta^T Sigma^{-1} delta``, ``delta = mean_t wbar_t - mu``;
    * Sigma_w (``g = T/2 Sigma^{-1} (Sbar - Sigma) Sigma^{-1}``, ``Sbar = mean_t E[(w_t -
      mu)(w_t - mu)^T]``): ``T/2 ||Sigma^{-1/2} Sbar Sigma^{-1/2} - I||_F^2``;
    * sigma^2 (``g = (E RSS - n sigma^2) / (2 sigma^4)``): ``n/2 (E RSS / (n sigma^2)
      - 1)^2``.

    Each block is the inner product of the gradient with the step an exact M-step
    would take in that block, so lambda^2 / n is about the log-likelihood per row that
    one more EM step could still gain; it is invariant to the units of X and y.
    """
    rp = r - B @ (B.T @ r)
    lam_B = np.sum(rp * (Gi @ rp @ Pwi)) / s2
    Lci = np.linalg.inv(np.linalg.cholesky(Sigma))
    z = Lci @ delta
    A = Lci @ Sbar @ Lci.T
    lam_mu = T * float(z @ z)
    lam_S = T / 2 * float(np.sum((A - np.eye(mu.size)) ** 2))
    lam_s2 = n_tot / 2 * (erss / (n_tot * s2) - 1) ** 2
    return float(max(lam_B, 0.0) + lam_mu + lam_S + lam_s2) / n_tot


def _em(data, B, mu, Sigma, s2, tol, max_iter, n_cg=1, monitor=None):
    """Generalised EM; returns (B, mu, Sigma, s2, Wbar, V, ll, n_iter, converged, hist).

    Stops when :func:`_grad_criterion` <= ``tol`` at the current parameters (checked
    after the E-step and the M-step's one pass over the rows, before the update), when
    ``monitor(hist)`` returns True (called after each E-step, with the log-likelihoods so
    far), or after ``max_iter`` M-steps; ``tol=None`` leaves the stop to the monitor and
    ``max_iter``. The returned parameters, posteriors and log-likelihood belong together.
    """
    n_tot = float(np.sum(data.n_eff))
    C = float(np.sum(data.c))
    Gi = data.Gi
    T = data.T
    # objective: minus the log marginal likelihood; criterion: lambda^2 / n (see above)
    hist = {"objective": [], "criterion": [], "loglik": [], "sigma2": []}
    converged = False
    it = 0
    while True:
        M, m, cache = data.proj(B)
        Wbar, V, ll = _estep(M, m, data.c, data.n_eff, mu, Sigma, s2)
        if monitor is not None:
            hist["loglik"].append(ll)
            stop = monitor(hist)
            hist["loglik"].pop()
            if stop:
                hist["objective"].append(-ll)
                hist["criterion"].append(np.nan)
                hist["loglik"].append(ll)
                hist["sigma2"].append(s2)
                break
        # the M-step's sufficient statistics, which also give the gradient
        wmean = Wbar.mean(0)
        D = Wbar - mu
        Vmean = V.mean(0)
        P = V + Wbar[:, :, None] * Wbar[:, None, :]
        R, AB = data.resid_ops(cache, Wbar, P)
        AB = center_AB(data, B, P, AB)
        Pw = np.einsum("t,tkl->kl", data.N, P)
        Pwi = np.linalg.inv(Pw)
        r = R - AB
        erss = C - 2 * np.sum(B * R) + np.sum(B * AB)
        # (not needed while a monitor is still deciding whether to stop, nor without tol)
        crit = (_grad_criterion(B, r, Gi, Pwi, mu, Sigma, s2, wmean - mu,
                                Vmean + D.T @ D / T, erss, T, n_tot)
                if tol is not None and (monitor is None or monitor.decision is not None)
                else np.inf)
        hist["objective"].append(-ll)
        hist["criterion"].append(crit)
        hist["loglik"].append(ll)
        hist["sigma2"].append(s2)
        if tol is not None and crit <= tol:
            converged = True
            break
        if it == max_iter:
            break
        it += 1
        # M-step: mu, Sigma exactly
        mu = wmean
        Dw = Wbar - mu
        Sigma = _bounded_sigma(Vmean + Dw.T @ Dw / T)
        # B: preconditioned CG on sum_t S_t B P_t = sum_t b_t wbar_t^T from the current B
        z = Gi @ r @ Pwi
        p = z.copy()
        rz = np.sum(r * z)
        for _ in range(n_cg):
            Ap = data.apply(p, P)
            pAp = np.sum(p * Ap)
            if not pAp > 0:
                break
            alpha = rz / pAp
            B = B + alpha * p
            AB = AB + alpha * Ap
            r = r - alpha * Ap
            z = Gi @ r @ Pwi
            rz_new = np.sum(r * z)
            p = z + (rz_new / rz) * p
            rz = rz_new
        # sigma^2 = E sum_t ||y_t - X_t B w_t||^2 / n
        s2 = max((C - 2 * np.sum(B * R) + np.sum(B * AB)) / n_tot, 1e-12 * C / n_tot)
        # back to orthonormal B: B = Q Rq, w -> Rq w
        Qb, Rq = np.linalg.qr(B)
        sg = np.sign(np.diag(Rq))
        sg[sg == 0] = 1
        B, Rq = Qb * sg, Rq * sg[:, None]
        mu = Rq @ mu
        Sigma = _bounded_sigma(Rq @ Sigma @ Rq.T)
    return B, mu, Sigma, s2, Wbar, V, ll, it, converged, hist


def _initial_moments(data, B):
    """mu, Sigma, sigma^2 from per-task ridge fits on Z_t = X_t B (a start for EM)."""
    M, m, _ = data.proj(B)
    k = B.shape[1]
    lam = 1e-6 * np.trace(data.G) / float(np.sum(data.N)) + 1e-300
    Wt = np.linalg.solve(M + lam * np.eye(k)[None], m[:, :, None])[:, :, 0]
    rss = data.c - 2 * np.sum(m * Wt, 1) + np.einsum("tk,tkl,tl->t", Wt, M, Wt)
    dof = np.maximum(data.n_eff - k, 0).sum()
    s2 = float(max(rss.sum(), 0) / dof) if dof > 0 else float(np.sum(data.c) /
                                                                np.sum(data.n_eff)) / 2
    s2 = max(s2, 1e-6 * float(np.sum(data.c) / np.sum(data.n_eff)))
    mu = Wt.mean(0)
    Sigma = _bounded_sigma(np.cov(Wt.T).reshape(k, k) + 1e-3 * np.eye(k)
                           * max(np.trace(np.atleast_2d(np.cov(Wt.T))) / k, 1e-12))
    return mu, Sigma, s2


def _spectral_basis(data, K):
    """Top-K eigenvectors of G^{-1} U G^{-1}, U = sum_t (b_t b_t^T - sum_i y_ti^2 x_ti
    x_ti^T) / (N_t (N_t - 1)), whose expectation (isotropic-noise, uncentred data) is
    proportional to Sigma_x (sum_t theta_t theta_t^T) Sigma_x. Data held as statistics
    give U by their ``spectral_moment()``."""
    if hasattr(data, "spectral_moment"):
        return _top_spectral(data, data.spectral_moment(), K)
    X, y, N, n, D = data.X, data.y, data.N, data.n, data.D
    wt = np.where(N > 1, 1.0 / (N * np.maximum(N - 1, 1)), 0.0)
    bt = (sparse.csr_matrix((y, (data.task, np.arange(n))), shape=(data.T, n)) @ X) / D
    if data.center:
        bt = bt - (N * data.ybar)[:, None] * data.xbar
    U = bt.T @ (wt[:, None] * bt)
    wr = wt[data.task] * y * y
    V4 = np.zeros_like(U)
    for s in range(0, n, CHUNK):
        Xc = X[s:s + CHUNK]
        V4 += Xc.T @ (wr[s:s + CHUNK, None] * Xc)
    return _top_spectral(data, U - V4 / np.outer(D, D), K)


def _top_spectral(data, U, K):
    """Top-K eigenvectors (and all eigenvalues, decreasing) of G^{-1} U G^{-1}.

    Columns constant within every task (``data.const_within``, centred data) carry no
    information: the eigenvectors are those of the other coordinates, and the unit
    vectors of the constant columns come last (used only when K exceeds the others)."""
    A = data.Gi @ U @ data.Gi
    const = getattr(data, "const_within", ())
    if len(const) == 0:
        w, Vv = linalg.eigh((A + A.T) / 2)
        return Vv[:, ::-1][:, :K], w[::-1]
    d = A.shape[0]
    keep = np.setdiff1d(np.arange(d), const)
    Ak = A[np.ix_(keep, keep)]
    w, Vv = linalg.eigh((Ak + Ak.T) / 2)
    V = np.zeros((d, d))
    V[keep, :len(keep)] = Vv[:, ::-1]
    V[const, len(keep) + np.arange(len(const))] = 1.0
    return V[:, :K], np.concatenate([w[::-1], np.zeros(len(const))])


# ---------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------

def _check_k(k, d, T):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= min(d, T):
        raise ValueError(f"k must be an integer in [1, min(d, T)] = [1, {min(d, T)}]; "
                         f"got {k!r}")
    return int(k)


def _intercept_loglik(data, B, V, s2):
    """Full minus restricted log-likelihood of a model with a per-task intercept a_t.

    The full model is ``y_t ~ N(a_t 1 + X_t B mu_w, C_t)``; its Gaussian log-likelihood
    at the GLS intercept (the fitted one, ``a_t = ybar_t - xbar_t^T B wbar_t``) and the
    restricted one (the density of the within-task contrasts) differ by

        l_full - l_R = -1/2 sum_t [log 2 pi + log N_t - log(1^T C_t^{-1} 1)]
                     = -1/2 sum_t [log 2 pi + log(sigma^2 + N_t zbar_t^T V_t zbar_t)],

    using ``1^T C_t^{-1} 1 = N_t / (sigma^2 + N_t zbar_t^T V_t zbar_t)`` (Woodbury and
    Sherman-Morrison; ``zbar_t = B^T xbar_t``, V_t the posterior covariance of w_t given
    the centred rows).
    """
    zb = data.xbar @ B
    q = np.einsum("tk,tkl,tl->t", zb, V, zb)
    return float(-0.5 * np.sum(_LOG2PI + np.log(s2 + data.N * q)))


def _result(data, B, mu, Sigma, s2, Wbar, V, ll, n_iter, converged, hist, t0, tol, extra=None):
    full = ll + _intercept_loglik(data, B, V, s2) if (
        data.center and isinstance(data, RowsData)) else None
    D = getattr(data, "D", None)
    if D is not None and np.any(D != 1.0):
        # from equilibrated coordinates: theta = B_s w_s / D = (Q R) w_s, so B = Q,
        # w = R w_s (and mu_w, Sigma_w, the posterior covariances with it)
        Q, R = np.linalg.qr(B / D[:, None])
        sg = np.where(np.diag(R) < 0, -1.0, 1.0)
        B, R = Q * sg, R * sg[:, None]
        mu, Sigma = R @ mu, R @ Sigma @ R.T
        Wbar, V = Wbar @ R.T, np.einsum("ab,tbc,dc->tad", R, V, R)
    W = Wbar.T                                                # k x T, posterior means
    ex = {"B": B, "W": W, "W_cov": V, "mu_w": mu, "Sigma_w": Sigma, "sigma2": s2,
          "loglik": ll, "time": time.perf_counter() - t0, "w_ridge": 0.0,
          "const_within": getattr(data, "const_within", np.zeros(0, dtype=np.int64))}
    if extra:
        ex.update(extra)
    if full is not None:
        ex["loglik_full"] = full
    if not converged:
        warn_not_converged("fit_marginal", n_iter, hist["criterion"][-1], tol)
    return SolverResult(coef=B @ W, converged=converged, n_iter=n_iter, history=hist,
                        objective=-ll, extra=ex)


def fit_marginal(X, y=None, task=None, k=None, *, center=False, init=None, tol=1e-8,
                 max_iter=500, n_cg=1):
    r"""Maximum marginal likelihood fit of the random-effects shared representation.

    Generalised EM: the E-step is the Gaussian posterior of each :math:`w_t` (k x k
    algebra through :math:`M_t` and :math:`m_t`); the M-step sets :math:`\mu_w` and
    :math:`\Sigma_w` to the posterior moments, takes ``n_cg`` preconditioned
    conjugate-gradient steps from the current B on
    :math:`\sum_t S_t B P_t = \sum_t b_t \bar w_t^\top`
    (:math:`P_t = E[w_t w_t^\top]`; preconditioner
    :math:`(\sum_t S_t)^{-1} \cdot (\sum_t N_t P_t)^{-1}`), sets :math:`\sigma^2` in
    closed form and re-orthonormalises B (absorbing the factor into :math:`\mu_w`,
    :math:`\Sigma_w`). Each step increases the
    marginal likelihood.

    Parameters
    ----------
    X : ndarray, shape (n, d), or the data as one object
        Stacked rows; or the problem's data built once from rows (:func:`rows_data`) or
        from per-task sums (:func:`sums_data`), then without ``y`` and ``task``.
    y : ndarray, shape (n,)
    task : ndarray of int, shape (n,)
        Task label 0..T-1 of each row.
    k : int
    center : bool
        Per-task intercept (centring within tasks, restricted likelihood).
    init : ndarray (d, k), optional
        Start for B; default the spectral start.
    tol : float
        Stop when lambda^2 / n <= ``tol``: the squared norm of the gradient of the log
        marginal likelihood (Grassmann gradient in B; mu_w, Sigma_w, sigma^2) in the
        metric of the inverse complete-data information, per row
        (:func:`_grad_criterion`), in the equilibrated coordinates (columns at unit root
        mean square, :meth:`RowsData.equilibrate`), so that neither the rule nor the fit
        depends on the predictors' units. Not met within ``max_iter``:
        ConvergenceWarning.
    max_iter : int
    n_cg : int
        Conjugate-gradient steps per M-step.

    Returns
    -------
    SolverResult
        ``coef`` = B W (d x T) with W the posterior means; ``objective`` = minus the log
        marginal likelihood; ``extra`` with ``B``, ``W`` (k x T), ``W_cov`` (T x k x k,
        posterior covariances), ``mu_w``, ``Sigma_w``, ``sigma2``, ``loglik`` (restricted
        with ``center``), ``loglik_full`` (with ``center``: the full log-likelihood at the
        fitted intercepts), ``time``; ``history["criterion"]`` holds lambda^2 / n.
    """
    t0 = time.perf_counter()
    data = problem_data(X, y, task, (RowsData, ReducedStats),
                        lambda: RowsData(X, y, task, center))
    if isinstance(data, RowsData):
        data.equilibrate()
    k = _check_k(k, data.d, data.T)
    if init is None:
        B = _spectral_basis(data, k)[0]
    else:
        B = np.asarray(init, dtype=float)
        if B.shape != (data.d, k):
            raise ValueError(f"init must have shape ({data.d}, {k}); got {B.shape}")
        # the span of init in the equilibrated coordinates: x^T B = x_s^T (D B)
        B = np.linalg.qr(B * getattr(data, "D", np.ones(data.d))[:, None])[0]
    mu, Sigma, s2 = _initial_moments(data, B)
    out = _em(data, B, mu, Sigma, s2, tol, max_iter, n_cg)
    return _result(data, *out, t0, tol)


def marginal_loglik(X, y, task, B, mu_w, Sigma_w, sigma2, *, center=False):
    r"""Log marginal likelihood :math:`\sum_t \log N(y_t;\, X_t B \mu_w,\,
    X_t B \Sigma_w B^\top X_t^\top + \sigma^2 I)` (restricted likelihood of the centred
    rows when ``center``)."""
    data = RowsData(X, y, task, center)
    M, m, _ = data.proj(np.asarray(B, dtype=float))
    return _estep(M, m, data.c, data.n_eff, np.asarray(mu_w, float),
                  np.atleast_2d(np.asarray(Sigma_w, float)), float(sigma2))[2]


def posterior_w(X, y, task, B, mu_w, Sigma_w, sigma2, *, center=False):
    r"""Posterior means (T x k) and covariances (T x k x k) of the :math:`w_t`:
    :math:`V_t = (\Sigma_w^{-1} + B^\top S_t B / \sigma^2)^{-1}`,
    :math:`\bar w_t = V_t (\Sigma_w^{-1} \mu_w + B^\top b_t / \sigma^2)`."""
    data = RowsData(X, y, task, center)
    M, m, _ = data.proj(np.asarray(B, dtype=float))
    Wbar, V, _ = _estep(M, m, data.c, data.n_eff, np.asarray(mu_w, float),
                        np.atleast_2d(np.asarray(Sigma_w, float)), float(sigma2))
    return Wbar, V


def posterior_new_task(B, X, y, mu_w, Sigma_w, sigma2):
    r"""Posterior mean (k,) and covariance (k x k) of a new task's w from its rows
    (already centred when the model has an intercept): the formulas of
    :func:`posterior_w` with :math:`M = B^\top X^\top X B`, :math:`m = B^\top X^\top y`."""
    Z = np.asarray(X, float) @ np.asarray(B, float)
    y = np.asarray(y, float).ravel()
    Wbar, V, _ = _estep((Z.T @ Z)[None], (Z.T @ y)[None], np.array([y @ y]),
                        np.array([float(len(y))]), np.asarray(mu_w, float),
                        np.atleast_2d(np.asarray(Sigma_w, float)), float(sigma2))
    return Wbar[0], V[0]


def bic_n_params(d, k):
    r"""Free parameters of the random-effects model: B on the Grassmannian
    (:math:`dk - k^2`), :math:`\mu_w` (k), :math:`\Sigma_w` (:math:`k(k+1)/2`) and
    :math:`\sigma^2` (1)."""
    return d * k - k * k + k + k * (k + 1) / 2 + 1


class _Check:
    """Decision on a larger candidate k1 during its EM on the rows (see
    :func:`select_k_marginal`): k1 beats the current k by BIC once its log-likelihood
    exceeds ``thresh``."""

    def __init__(self, thresh, min_iter, max_iter, safety, enough=None):
        self.thresh, self.min_iter, self.max_iter = thresh, min_iter, max_iter
        self.safety, self.enough, self.decision = safety, enough, None

    def remaining(self, ll, safety=None):
        """The log-likelihood still to gain if the increments decay geometrically at
        their last rate rho (at most 0.9), times the safety factor."""
        if len(ll) < 2:
            return 0.0
        safety = self.safety if safety is None else safety
        d1 = ll[-1] - ll[-2]
        d0 = ll[-2] - ll[-3] if len(ll) > 2 else 0.0
        if d1 <= 0:
            return 0.0
        rho = min(d1 / d0, 0.9) if d0 > 0 else 0.9
        return safety * d1 * rho / (1 - rho)

    def __call__(self, hist):
        ll = hist["loglik"]
        m = len(ll) - 1
        if self.decision == "accept" or ll[-1] > self.thresh:
            # a lower bound of the maximum beats BIC: run on to convergence (the fit at
            # k1), or, when screening, until the gain still expected is below `enough`
            self.decision = "accept"
            return (self.enough is not None and m >= self.min_iter
                    and self.remaining(ll) < self.enough)
        if m >= self.max_iter:
            self.decision = "reject"
            return True
        if m >= self.min_iter and ll[-1] + self.remaining(ll) < self.thresh:
            self.decision = "reject"        # stalled, or Aitken's limit below threshold
            return True
        return False


def _grow(B, mu, Sigma, Bs, mus, Sigs, U, j):
    """A start at k + j from the fit (B, mu, Sigma) at k: the j directions of the screened
    fit ``Bs`` (or else of the ordered basis U) farthest from span(B), with the screened
    mean and variance along them (at least the smallest variance of the fit; the caller
    may then set the variance of a single new direction by :func:`_best_variance`)."""
    k = B.shape[1]
    if Bs is not None and Bs.shape[1] >= j:    # the screened directions farthest from B
        Un = np.linalg.svd(Bs - B @ (B.T @ Bs), full_matrices=False)[0][:, :j]
    else:                                      # the leading columns of U not in span(B)
        Un, Bc = [], B
        for u in U.T:
            v = u - Bc @ (Bc.T @ u)
            nv = np.linalg.norm(v)
            if nv > 0.5:
                Un.append(v / nv)
                Bc = np.hstack([Bc, (v / nv)[:, None]])
            if len(Un) == j:
                break
        Un, Bs = np.column_stack(Un), None
    Bn = Un - B @ (B.T @ Un)
    Bn = Bn / np.linalg.norm(Bn, axis=0) if j == 1 else np.linalg.qr(Bn)[0]
    Sigma1 = np.zeros((k + j, k + j))
    Sigma1[:k, :k] = Sigma
    mu1 = np.concatenate([mu, np.zeros(j)])
    vmin = float(np.linalg.eigvalsh(Sigma)[0])
    if Bs is not None:
        mu1[k:] = Bn.T @ (Bs @ mus)
        BtBs = Bn.T @ Bs
        Sn = BtBs @ Sigs @ BtBs.T
        w, Q = np.linalg.eigh((Sn + Sn.T) / 2)
        Sigma1[k:, k:] = (Q * np.maximum(w, vmin)) @ Q.T
    else:
        Sigma1[k:, k:] = vmin * np.eye(j)
    return np.hstack([B, Bn]), mu1, _bounded_sigma(Sigma1)


def _best_variance(data, B1, mu1, Sigma1, s2):
    """The variance of w along the last column b of B1 that maximises the likelihood with
    everything else at the fit in the other columns (and mean 0 along b).

    Adding ``v z_t z_t^T`` (``z_t = X_t b``) to C_t changes the log-likelihood by
    ``sum_t [-log(1 + v a_t) + v s_t^2 / (1 + v a_t)] / 2`` with ``a_t = z_t^T C_t^{-1}
    z_t`` and ``s_t = z_t^T C_t^{-1} (y_t - X_t B mu)`` (Sherman-Morrison), a function of
    the k x k statistics only; it is maximised over v by bisection on its derivative.
    Returns (mu1, Sigma1) with that variance (floored at 1e-3 of the mean variance).
    """
    k = B1.shape[1] - 1
    M, m, _ = data.proj(B1)
    Sig, mu = Sigma1[:k, :k], mu1[:k]
    V, _ = _inv_logdet(np.linalg.inv(Sig)[None] + M[:, :k, :k] / s2)
    Mb = M[:, k, :k]                                   # b^T S_t B
    VMb = np.einsum("tkl,tl->tk", V, Mb)
    u = m[:, :k] - np.einsum("tkl,l->tk", M[:, :k, :k], mu)
    a = M[:, k, k] / s2 - np.sum(Mb * VMb, 1) / s2 ** 2
    s = (m[:, k] - Mb @ mu) / s2 - np.sum(VMb * u, 1) / s2 ** 2
    a = np.maximum(a, 0.0)
    s2t = s * s

    def dfdv(v):                                       # 2 x the derivative
        return float(np.sum((s2t - a * (1 + v * a)) / (1 + v * a) ** 2))

    scale = float(np.trace(Sig)) / k
    lo, hi = 1e-3 * scale, 1e3 * scale
    if dfdv(lo) <= 0:
        v = lo
    elif dfdv(hi) >= 0:
        v = hi
    else:                                    # bisection on log v (to a factor of 1.25)
        for _ in range(6):
            mid = np.sqrt(lo * hi)
            lo, hi = (mid, hi) if dfdv(mid) > 0 else (lo, mid)
        v = np.sqrt(lo * hi)
    Sigma1 = Sigma1.copy()
    Sigma1[k, :], Sigma1[:, k] = 0.0, 0.0
    Sigma1[k, k] = v
    mu1 = mu1.copy()
    mu1[k] = 0.0
    return mu1, Sigma1


def select_k_marginal(X, y=None, task=None, ks=None, *, center=False, tol=1e-8,
                      max_iter=500, screen_max_iter=5, check_min_iter=1,
                      check_max_iter=40, check_safety=3.0):
    r"""Choose k by BIC on the marginal likelihood and fit at the chosen k.

    :math:`\mathrm{BIC}(k) = -2 \ell_k + p(k) \log n` (:math:`\ell_k` the log-likelihood),
    p(k) from :func:`bic_n_params`, n the number of rows (minus one per task with an
    intercept). To keep the cost near that of a single
    fit:

    1. **Screening.** In the spectral basis U (:func:`_spectral_basis`, leading
       directions of the moment matrix) every quantity of the model depends on the data
       only through ``U^T S_t U``, ``U^T b_t`` and ``c_t``; candidate k runs EM on these
       T x (k+2) x (k+2) statistics (the subspace of the k+2 leading directions), from
       the fit at k - 1 plus one direction with the variance that maximises the
       likelihood (:func:`_best_variance`).

       It must beat the best BIC so far; its EM
       stops once it is rejected (rule of step 3), or once it is accepted and the gain
       still expected is below 5% of the next penalty step, or after
       ``screen_max_iter`` steps; its score is that of its extrapolated limit
       ``l_m + d_m rho / (1 - rho)``. The scan stops at the first candidate above the
       best; the best is k0. The statistics are computed for the leading columns only
       as the scan needs them.
    2. **The fit at k0** on the rows, from its screened solution, to ``tol``.
    3. **Forward check.** The next candidate k1 starts from the fit at k0 plus the
       screened direction it lacks (with the likelihood-maximising variance) and runs EM
       on the rows. EM increases the likelihood at every step, so its log-likelihood
       after m steps is a lower bound of the maximum at k1: k1 is *accepted* as soon as
       that bound beats BIC(k0), and the EM then runs on to convergence (it is the fit
       at k1, and k1 + 1 is checked the same way).

       k1 is *rejected* when, after at
       least ``check_min_iter`` steps, ``l_m + s d_m rho / (1 - rho)`` stays below the
       BIC threshold (d_m the last increase of the log-likelihood, rho = d_m / d_{m-1}
       capped at 0.9, and 0.9 after a single step; s = ``check_safety``), when the
       likelihood stops rising, or after ``check_max_iter`` steps. Rejection therefore
       rests on an assumption, not a bound: that the remaining increases decay at least
       geometrically at the last observed rate (a direction whose gain is still slowly
       accelerating would be missed).

    Candidates below k0 are judged by the screening only. ``scores`` holds the BIC of
    each candidate examined: for the fit returned, of its converged likelihood; for a
    rejected k1, of the last likelihood of its check (an upper bound of its BIC); for the
    others, of the extrapolated screened fits (maximised within a subspace).

    Parameters
    ----------
    ks : sequence of int, optional
        Candidates; default 1..min(d, T - 1, 12).
    center, tol, max_iter
        As :func:`fit_marginal`.
    screen_max_iter : int
        Iteration cap of the screening fits (which otherwise stop by the rules of
        step 1).
    check_min_iter, check_max_iter, check_safety : int, int, float
        The rejection rule of step 3.

    Returns
    -------
    k : int
    scores : dict
        BIC of each candidate examined.
    sol : SolverResult
        The fit at the chosen k (as :func:`fit_marginal`).
    """
    t0 = time.perf_counter()
    data = problem_data(X, y, task, RowsData,
                        lambda: RowsData(X, y, task, center)).equilibrate()
    d, T = data.d, data.T
    if ks is None:          # constant-within columns add no candidate dimension
        d_eff = d - len(getattr(data, "const_within", ()))
        ks = range(1, max(1, min(d_eff, T - 1, 12)) + 1)
    ks = sorted({_check_k(int(k), d, T) for k in ks})
    K = max(ks)
    U = _spectral_basis(data, K)[0]
    logn = np.log(float(np.sum(data.n_eff)))

    def bic(ll, k):
        return -2 * ll + bic_n_params(d, k) * logn

    # 1. screening in the leading columns of U
    Kp_have, S, b = 0, None, None
    scores, fits, coefs = {}, {}, {}
    prev = None
    for k in ks:
        Kp = min(K, k + 2)
        if Kp > Kp_have:
            Kp_have = min(K, max(Kp + 1, 2 * Kp_have))
            S, b, _ = data.proj(U[:, :Kp_have])
        small = ReducedStats(np.ascontiguousarray(S[:, :Kp, :Kp]),
                       np.ascontiguousarray(b[:, :Kp]), data.c, data.n_eff)
        if prev is not None and prev[0] == k - 1:
            _, C_p, mu_p, Sig_p, s2 = prev
            Cp = np.vstack([C_p, np.zeros((Kp - C_p.shape[0], k - 1))])
            C0, mu0, Sig0 = _grow(Cp, mu_p, Sig_p, None, None, None, np.eye(Kp), 1)
            mu0, Sig0 = _best_variance(small, C0, mu0, Sig0, s2)
        else:
            C0 = np.eye(Kp)[:, :k]
            mu0, Sig0, s2 = _initial_moments(small, C0)
        # k must beat the best screened BIC; its screening stops once rejected, or once
        # accepted and within 5% of the next penalty step of its limit, or after
        # screen_max_iter steps; its score is that of the extrapolated limit
        best = min(scores.values()) if scores else np.inf
        check = _Check((bic_n_params(d, k) * logn - best) / 2, check_min_iter,
                       screen_max_iter, check_safety,
                       enough=0.05 * (bic_n_params(d, k + 1) - bic_n_params(d, k)) * logn)
        out = _em(small, C0, mu0, Sig0, s2, None, screen_max_iter, monitor=check)
        scores[k] = bic(out[6] + check.remaining(out[9]["loglik"], 1.0), k)
        fits[k] = (U[:, :Kp] @ out[0], out[1], out[2], out[3])
        coefs[k] = out[0]
        prev = (k, out[0], out[1], out[2], out[3])
        if k > min(scores, key=scores.get):      # BIC has risen past the best: stop
            break
    k_cur = min(scores, key=scores.get)
    # 2. the fit at k0 on the rows; its first statistics come from those of the
    # screening (B = U C: M_t = C^T (U^T S_t U) C, m_t = C^T U^T b_t), not from the rows
    C, Kp = coefs[k_cur], coefs[k_cur].shape[0]
    B0 = fits[k_cur][0]
    data._last_proj = (B0, (np.einsum("ia,tij,jb->tab", C, S[:, :Kp, :Kp], C),
                            b[:, :Kp] @ C, B0))
    out = _em(data, *fits[k_cur], tol, max_iter)
    scores[k_cur] = bic(out[6], k_cur)
    # 3. forward check of the next candidates
    while True:
        nxt = [k for k in ks if k > k_cur]
        if not nxt:
            break
        k1 = nxt[0]
        Bs, mus, Sigs, _ = fits.get(k1, (None, None, None, None))
        B1, mu1, Sig1 = _grow(out[0], out[1], out[2], Bs, mus, Sigs, U, k1 - k_cur)
        if k1 == k_cur + 1:
            mu1, Sig1 = _best_variance(data, B1, mu1, Sig1, out[3])
        check = _Check(out[6] + (bic_n_params(d, k1) - bic_n_params(d, k_cur)) * logn / 2,
                       check_min_iter, check_max_iter, check_safety)
        out1 = _em(data, B1, mu1, Sig1, out[3], tol, max_iter, monitor=check)
        scores[k1] = bic(out1[6], k1)
        if check.decision is None:           # converged before a decision
            check.decision = "accept" if scores[k1] < scores[k_cur] else "reject"
        if check.decision != "accept":
            break
        k_cur, out = k1, out1
    return k_cur, scores, _result(data, *out, t0, tol, {"k_scores": scores})
