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
d x d moments are never stored), per-task sums through one sparse indicator matrix.

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

__all__ = ["fit_marginal", "select_k_marginal", "marginal_loglik", "posterior_w",
           "posterior_new_task", "bic_n_params"]

_LOG2PI = np.log(2 * np.pi)
_CHUNK = 1 << 16


# ---------------------------------------------------------------------------------------
# data access: stacked rows, or per-task statistics in a reduced basis
# ---------------------------------------------------------------------------------------

class _Rows:
    """Stacked rows with per-task sums by a sparse indicator (no copy of X)."""

    def __init__(self, X, y, task, center):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        if X.ndim != 2:
            raise ValueError(f"X must be 2-dimensional; got shape {X.shape}")
        t = np.asarray(task)
        if t.dtype.kind not in "iu":
            raise TypeError(f"task must hold integer labels 0..T-1; got dtype {t.dtype}")
        n, d = X.shape
        if y.shape[0] != n or t.shape != (n,):
            raise ValueError(f"X, y and task must have the same number of rows; got "
                             f"{n}, {y.shape[0]} and {t.shape[0]}")
        if n == 0 or t.min() < 0:
            raise ValueError("task labels must be 0..T-1 and X must have rows")
        T = int(t.max()) + 1
        N = np.bincount(t, minlength=T).astype(float)
        if np.any(N == 0):
            raise ValueError("task labels must be 0..T-1 with every task present")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError("X and y must be finite")
        self.X, self.y, self.task, self.T, self.d, self.n = X, y, t.astype(np.int64), T, d, n
        self.N = N
        self.H = sparse.csr_matrix((np.ones(n), (self.task, np.arange(n))), shape=(T, n))
        self.center = bool(center)
        self.n_eff = N - 1.0 if center else N.copy()
        ys = self.H @ y
        self.c = self.H @ (y * y)
        if center:
            self.xbar = (self.H @ X) / N[:, None]                     # T x d
            self.ybar = ys / N
            self.c = self.c - N * self.ybar ** 2
        # G = sum_t S_t (centred), for the preconditioner and the spectral start
        G = np.zeros((d, d))
        for s in range(0, n, _CHUNK):
            Xc = X[s:s + _CHUNK]
            G += Xc.T @ Xc
        if center:
            G -= self.xbar.T @ (N[:, None] * self.xbar)
        self.G = (G + G.T) / 2

    def _chunks(self):
        """Row chunks with their per-chunk task indicator (bounded working memory)."""
        if not hasattr(self, "_ind"):
            self._ind = [(s, min(s + _CHUNK, self.n), sparse.csr_matrix(
                (np.ones(min(_CHUNK, self.n - s)), (self.task[s:s + _CHUNK],
                                                    np.arange(min(_CHUNK, self.n - s)))),
                shape=(self.T, min(_CHUNK, self.n - s)))) for s in range(0, self.n, _CHUNK)]
        return self._ind

    def proj(self, B):
        """M_t = B^T S_t B (T x k x k), m_t = B^T b_t (T x k); the cache is B."""
        k = B.shape[1]
        M = np.zeros((self.T, k, k))
        m = np.zeros((self.T, k))
        for s, e, Hc in self._chunks():
            Z = self.X[s:e] @ B
            for a in range(k):                        # upper triangle, column by column
                M[:, a, a:] += Hc @ (Z[:, a:] * Z[:, a:a + 1])
            m += Hc @ (Z * self.y[s:e, None])
        iu = np.triu_indices(k, 1)
        M[:, iu[1], iu[0]] = M[:, iu[0], iu[1]]
        if self.center:
            zb = self.xbar @ B
            M -= self.N[:, None, None] * zb[:, :, None] * zb[:, None, :]
            m -= (self.N * self.ybar)[:, None] * zb
        return M, m, B

    def _xt(self, B, P, Wbar=None):
        """X^T [y * wbar_task, (X B)_i P_task] over row chunks."""
        k = B.shape[1]
        out = np.zeros((self.d, 2 * k if Wbar is not None else k))
        for s, e, _ in self._chunks():
            Z = self.X[s:e] @ B
            tc = self.task[s:e]
            ZP = np.zeros_like(Z)
            for a in range(k):
                ZP += Z[:, a:a + 1] * P[tc, a, :]
            if Wbar is not None:
                ZP = np.hstack([self.y[s:e, None] * Wbar[tc], ZP])
            out += self.X[s:e].T @ ZP
        return out

    def resid_ops(self, B, Wbar, P):
        """R = sum_t b_t wbar_t^T and A(B) = sum_t S_t B P_t (uncentred), one pass."""
        k = B.shape[1]
        out = self._xt(B, P, Wbar)
        R, AB = out[:, :k], out[:, k:]            # AB is centred by _center_AB
        if self.center:
            R -= self.xbar.T @ ((self.N * self.ybar)[:, None] * Wbar)
        return R, AB

    def apply(self, D, P):
        """A(D) = sum_t S_t D P_t."""
        out = self._xt(D, P)
        if self.center:
            zb = self.xbar @ D
            out -= self.xbar.T @ (self.N[:, None] * np.einsum("tk,tkl->tl", zb, P))
        return out


def _center_AB(data, B, P, AB):
    if data.center and isinstance(data, _Rows):
        zb = data.xbar @ B
        AB = AB - data.xbar.T @ (data.N[:, None] * np.einsum("tk,tkl->tl", zb, P))
    return AB


class _Stats:
    """Per-task statistics S_t (T x K x K), b_t, c_t in a K-dimensional basis."""

    def __init__(self, S, b, c, n_eff):
        self.S, self.b, self.c, self.n_eff = S, b, c, n_eff
        self.T, self.d = b.shape
        self.center = False
        self.G = S.sum(0)
        self.N = n_eff

    def proj(self, B):
        SB = self.S @ B
        return B.T @ SB, self.b @ B, SB

    def resid_ops(self, SB, Wbar, P):
        return self.b.T @ Wbar, (SB @ P).sum(0)

    def apply(self, D, P):
        return ((self.S @ D) @ P).sum(0)


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
    k = mu.size
    Lc = linalg.cholesky(Sigma, lower=True)
    Sinv = linalg.cho_solve((Lc, True), np.eye(k))
    logdet_S = 2 * np.sum(np.log(np.diag(Lc)))
    Lam = Sinv[None] + M / s2
    L = np.linalg.cholesky(Lam)
    logdet_L = 2 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
    Li = np.linalg.inv(L)
    V = np.swapaxes(Li, 1, 2) @ Li
    Wbar = (V @ ((Sinv @ mu)[None] + m / s2)[:, :, None])[:, :, 0]
    Mmu = M @ mu
    rr = c - 2 * m @ mu + Mmu @ mu
    u = m - Mmu
    Q = rr / s2 - np.sum(u * (V @ u[:, :, None])[:, :, 0], 1) / s2 ** 2
    ll = -0.5 * (n_eff * (_LOG2PI + np.log(s2)) + logdet_S + logdet_L + Q)
    return Wbar, V, float(ll.sum())


def _bounded_sigma(Sigma):
    Sigma = (Sigma + Sigma.T) / 2
    floor = 1e-10 * max(np.trace(Sigma) / Sigma.shape[0], 1e-300)
    return Sigma + floor * np.eye(Sigma.shape[0])


def _em(data, B, mu, Sigma, s2, tol, max_iter, n_cg=1):
    """Generalised EM; returns (B, mu, Sigma, s2, Wbar, V, ll, n_iter, converged, hist)."""
    n_tot = float(np.sum(data.n_eff))
    C = float(np.sum(data.c))
    G = data.G / n_tot
    Gi = linalg.pinvh(G)
    # objective: minus the log marginal likelihood; criterion: its relative change
    hist = {"objective": [], "criterion": [], "loglik": [], "sigma2": []}
    ll_old = -np.inf
    converged = False
    it = 0
    for it in range(max_iter + 1):
        M, m, cache = data.proj(B)
        Wbar, V, ll = _estep(M, m, data.c, data.n_eff, mu, Sigma, s2)
        hist["objective"].append(-ll)
        hist["criterion"].append(abs(ll - ll_old) / abs(ll) if it else np.nan)
        hist["loglik"].append(ll)
        hist["sigma2"].append(s2)
        if abs(ll - ll_old) <= tol * abs(ll):
            converged = True
            break
        if it == max_iter:
            break
        ll_old = ll
        # M-step: mu, Sigma exactly
        mu = Wbar.mean(0)
        Dw = Wbar - mu
        Sigma = _bounded_sigma(V.mean(0) + Dw.T @ Dw / data.T)
        P = V + Wbar[:, :, None] * Wbar[:, None, :]
        # B: preconditioned CG on sum_t S_t B P_t = sum_t b_t wbar_t^T from the current B
        R, AB = data.resid_ops(cache, Wbar, P)
        AB = _center_AB(data, B, P, AB)
        Pw = np.einsum("t,tkl->kl", data.N, P)
        Pwi = linalg.pinvh(Pw)
        r = R - AB
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
    X, y, N, n = data.X, data.y, data.N, data.n
    wt = np.where(N > 1, 1.0 / (N * np.maximum(N - 1, 1)), 0.0)
    bt = sparse.csr_matrix((y, (data.task, np.arange(n))), shape=(data.T, n)) @ X
    if data.center:
        bt = bt - (N * data.ybar)[:, None] * data.xbar
    U = bt.T @ (wt[:, None] * bt)
    wr = wt[data.task] * y * y
    for s in range(0, n, _CHUNK):
        Xc = X[s:s + _CHUNK]
        U -= Xc.T @ (wr[s:s + _CHUNK, None] * Xc)
    return _top_spectral(data, U, K)


def _top_spectral(data, U, K):
    """Top-K eigenvectors (and all eigenvalues, decreasing) of G^{-1} U G^{-1}."""
    Gs = data.G / float(np.sum(data.N))
    Gi = linalg.pinvh(Gs)
    A = Gi @ U @ Gi
    w, Vv = linalg.eigh((A + A.T) / 2)
    return Vv[:, ::-1][:, :K], w[::-1]


# ---------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------

def _check_k(k, d, T):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= min(d, T):
        raise ValueError(f"k must be an integer in [1, min(d, T)] = [1, {min(d, T)}]; "
                         f"got {k!r}")
    return int(k)


def _result(data, B, mu, Sigma, s2, Wbar, V, ll, n_iter, converged, hist, t0, tol, extra=None):
    W = Wbar.T                                                # k x T, posterior means
    ex = {"B": B, "W": W, "W_cov": V, "mu_w": mu, "Sigma_w": Sigma, "sigma2": s2,
          "loglik": ll, "time": time.perf_counter() - t0, "w_ridge": 0.0}
    if extra:
        ex.update(extra)
    if not converged:
        h = hist["loglik"]
        crit = abs(h[-1] - h[-2]) / abs(h[-1]) if len(h) > 1 else float("inf")
        warn_not_converged("fit_marginal", n_iter, crit, tol, stacklevel=4)
    return SolverResult(coef=B @ W, converged=converged, n_iter=n_iter, history=hist,
                        objective=-ll, extra=ex)


def fit_marginal(X, y, task, k, *, center=False, init=None, tol=1e-8, max_iter=500,
                 n_cg=1):
    """Maximum marginal likelihood fit of the random-effects shared representation.

    Generalised EM: the E-step is the Gaussian posterior of each w_t (k x k algebra through
    M_t and m_t); the M-step sets mu_w and Sigma_w to the posterior moments, takes ``n_cg``
    preconditioned conjugate-gradient steps from the current B on
    ``sum_t S_t B P_t = sum_t b_t wbar_t^T`` (P_t = E[w_t w_t^T]; preconditioner
    ``(sum_t S_t)^{-1} . (sum_t N_t P_t)^{-1}``), sets sigma^2 in closed form and
    re-orthonormalises B (absorbing the factor into mu_w, Sigma_w). Each step increases the
    marginal likelihood.

    Parameters
    ----------
    X : ndarray, shape (n, d)
    y : ndarray, shape (n,)
    task : ndarray of int, shape (n,)
        Task label 0..T-1 of each row.
    k : int
    center : bool
        Per-task intercept (centring within tasks, restricted likelihood).
    init : ndarray (d, k), optional
        Start for B; default the spectral start.
    tol : float
        Stop when the relative change of the log-likelihood is below ``tol``.
    max_iter : int
    n_cg : int
        Conjugate-gradient steps per M-step.

    Returns
    -------
    SolverResult
        ``coef`` = B W (d x T) with W the posterior means; ``objective`` = minus the log
        marginal likelihood; ``extra`` with ``B``, ``W`` (k x T), ``W_cov`` (T x k x k,
        posterior covariances), ``mu_w``, ``Sigma_w``, ``sigma2``, ``loglik``, ``time``.
    """
    t0 = time.perf_counter()
    data = X if isinstance(X, (_Rows, _Stats)) else _Rows(X, y, task, center)
    k = _check_k(k, data.d, data.T)
    if init is None:
        B = _spectral_basis(data, k)[0]
    else:
        B = np.linalg.qr(np.asarray(init, dtype=float))[0]
        if B.shape != (data.d, k):
            raise ValueError(f"init must have shape ({data.d}, {k}); got {B.shape}")
    mu, Sigma, s2 = _initial_moments(data, B)
    out = _em(data, B, mu, Sigma, s2, tol, max_iter, n_cg)
    return _result(data, *out, t0, tol)


def marginal_loglik(X, y, task, B, mu_w, Sigma_w, sigma2, *, center=False):
    """Log marginal likelihood sum_t log N(y_t; X_t B mu_w, X_t B Sigma_w B^T X_t^T +
    sigma2 I) (restricted likelihood of the centred rows when ``center``)."""
    data = _Rows(X, y, task, center)
    M, m, _ = data.proj(np.asarray(B, dtype=float))
    return _estep(M, m, data.c, data.n_eff, np.asarray(mu_w, float),
                  np.atleast_2d(np.asarray(Sigma_w, float)), float(sigma2))[2]


def posterior_w(X, y, task, B, mu_w, Sigma_w, sigma2, *, center=False):
    """Posterior means (T x k) and covariances (T x k x k) of the w_t:
    ``V_t = (Sigma_w^{-1} + B^T S_t B / sigma2)^{-1}``,
    ``wbar_t = V_t (Sigma_w^{-1} mu_w + B^T b_t / sigma2)``."""
    data = _Rows(X, y, task, center)
    M, m, _ = data.proj(np.asarray(B, dtype=float))
    Wbar, V, _ = _estep(M, m, data.c, data.n_eff, np.asarray(mu_w, float),
                        np.atleast_2d(np.asarray(Sigma_w, float)), float(sigma2))
    return Wbar, V


def posterior_new_task(B, X, y, mu_w, Sigma_w, sigma2):
    """Posterior mean (k,) and covariance (k x k) of a new task's w from its rows
    (already centred when the model has an intercept): the formulas of
    :func:`posterior_w` with ``M = B^T X^T X B`` and ``m = B^T X^T y``."""
    Z = np.asarray(X, float) @ np.asarray(B, float)
    y = np.asarray(y, float).ravel()
    Wbar, V, _ = _estep((Z.T @ Z)[None], (Z.T @ y)[None], np.array([y @ y]),
                        np.array([float(len(y))]), np.asarray(mu_w, float),
                        np.atleast_2d(np.asarray(Sigma_w, float)), float(sigma2))
    return Wbar[0], V[0]


def bic_n_params(d, k):
    """Free parameters of the random-effects model: B on the Grassmannian (d k - k^2),
    mu_w (k), Sigma_w (k (k + 1) / 2) and sigma^2 (1)."""
    return d * k - k * k + k + k * (k + 1) / 2 + 1


def select_k_marginal(X, y, task, ks=None, *, center=False, tol=1e-8, max_iter=500,
                      screen_tol=1e-6, screen_max_iter=10, refine_iter=0,
                      check_next=True, check_iter=6):
    """Choose k by BIC on the marginal likelihood and fit at the chosen k.

    BIC(k) = -2 loglik_k + p(k) log n, p(k) from :func:`bic_n_params`, n the number of
    rows (minus one per task with an intercept). To keep the cost near that of a single
    fit:

    1. the candidates are screened in a K-dimensional spectral basis U (K the largest
       candidate): with B = U C every quantity of the model depends on the data only
       through U^T S_t U, U^T b_t and c_t, so each candidate's EM runs on T x K' x K'
       statistics (K' = k + 2 leading columns of U); the scan stops once BIC rises;
    2. the screened choice k0 is checked by a short full-data EM at k0 + 1 (``check_iter``
       iterations from the screened solution) and the candidates k <= k0 + 1 are
       rescored inside its representation: weak directions that the spectral basis
       misses at few rows per task are found by the likelihood itself;
    3. the chosen k is fitted on the rows to ``tol`` from its screened solution.

    The scores of the candidates are lower bounds of their maximised BIC terms (maximised
    within a subspace), exact for the chosen k.

    Parameters
    ----------
    ks : sequence of int, optional
        Candidates; default 1..min(d, T - 1, 12).
    center, tol, max_iter
        As :func:`fit_marginal`.
    screen_tol, screen_max_iter : float, int
        Tolerance and iteration cap of the screening fits.
    refine_iter : int
        EM iterations at K on the rows before screening (0: the spectral basis as is).
    check_next : bool
        Whether to run step 2.
    check_iter : int
        Iterations of the check fit at k0 + 1.

    Returns
    -------
    k : int
    scores : dict
        BIC of each candidate (screened).
    sol : SolverResult
        The fit at the chosen k (as :func:`fit_marginal`).
    """
    t0 = time.perf_counter()
    data = X if isinstance(X, _Rows) else _Rows(X, y, task, center)
    d, T = data.d, data.T
    if ks is None:
        ks = range(1, max(1, min(d, T - 1, 12)) + 1)
    ks = sorted({_check_k(int(k), d, T) for k in ks})
    K = max(ks)
    # the basis: the spectral start refined by a few EM iterations at k = K, its columns
    # ordered by the fitted variance of w along them (weak true directions that the
    # spectral start misses at small N_t are pulled in by the likelihood)
    U = _spectral_basis(data, K)[0]
    if refine_iter > 0:
        U, _, Sig_K = _em(data, U, *_initial_moments(data, U), 0.0, refine_iter)[:3]
        ev, Qs = np.linalg.eigh(Sig_K)
        U = U @ Qs[:, ::-1]
    S, b, _ = data.proj(U)
    small = _Stats(S, b, data.c, data.n_eff)
    n = float(np.sum(data.n_eff))
    scores, fits = {}, {}
    C_prev = None
    for k in ks:
        # candidate k is screened in the leading K' = k + 2 spectral directions (a
        # sub-block of the statistics), from the (k - 1) solution plus the next direction
        Kp = min(K, k + 2)
        small = _Stats(np.ascontiguousarray(S[:, :Kp, :Kp]),
                       np.ascontiguousarray(b[:, :Kp]), data.c, data.n_eff)
        C0 = np.eye(Kp)[:, :k]
        if C_prev is not None and C_prev.shape[1] == k - 1:
            C0[:C_prev.shape[0], :k - 1] = C_prev
            C0[:C_prev.shape[0], k - 1] = 0.0
            C0 = np.linalg.qr(C0)[0]
        mu, Sigma, s2 = _initial_moments(small, C0)
        out = _em(small, C0, mu, Sigma, s2, screen_tol, screen_max_iter, n_cg=2)
        scores[k] = -2 * out[6] + bic_n_params(d, k) * np.log(n)
        fits[k] = (np.vstack([out[0], np.zeros((K - Kp, k))]),) + out[1:]
        C_prev = out[0]
        best = min(scores, key=scores.get)
        if k - best >= 1:                # BIC has risen past the best: stop
            break
    k0 = min(scores, key=scores.get)
    if not check_next or k0 == max(ks):
        B0 = U @ fits[k0][0]
        _, mu, Sigma, s2 = fits[k0][:4]
        out = _em(data, B0, mu, Sigma, s2, tol, max_iter, n_cg=1)
        return k0, scores, _result(data, *out, t0, tol, {"k_scores": scores})
    # stage 2: a full fit at k0 + 1 from the screened k0 + 1 solution; the candidates
    # k <= k0 + 1 are rescored inside its representation (where the likelihood's own
    # directions, including weak ones the spectral basis misses, are available)
    k1 = k0 + 1
    if k1 not in fits:
        k1 = k0
    _, mu, Sigma, s2 = fits[k1][:4]
    out1 = _em(data, U @ fits[k1][0], mu, Sigma, s2, screen_tol, check_iter, n_cg=1)
    B1, Sig1 = out1[0], out1[2]
    ev, Qs = np.linalg.eigh(Sig1)
    U1 = B1 @ Qs[:, ::-1]
    S1, b1, _ = data.proj(U1)
    small1 = _Stats(S1, b1, data.c, data.n_eff)
    scores2, fits2 = {k1: -2 * out1[6] + bic_n_params(d, k1) * np.log(n)}, {}
    for k in [k for k in ks if k < k1]:
        C0 = np.eye(k1)[:, :k]
        mu, Sigma, s2 = _initial_moments(small1, C0)
        fits2[k] = _em(small1, C0, mu, Sigma, s2, screen_tol, 2 * screen_max_iter, n_cg=2)
        scores2[k] = -2 * fits2[k][6] + bic_n_params(d, k) * np.log(n)
    scores.update(scores2)
    k_best = min(scores2, key=scores2.get)
    if k_best == k1:
        B1, mu, Sigma, s2 = out1[:4]
        out = _em(data, B1, mu, Sigma, s2, tol, max_iter, n_cg=1)
        scores[k_best] = -2 * out[6] + bic_n_params(d, k_best) * np.log(n)
    else:
        _, mu, Sigma, s2 = fits2[k_best][:4]
        out = _em(data, U1 @ fits2[k_best][0], mu, Sigma, s2, tol, max_iter, n_cg=1)
        scores[k_best] = -2 * out[6] + bic_n_params(d, k_best) * np.log(n)
    return k_best, scores, _result(data, *out, t0, tol, {"k_scores": scores})
