"""Multi-task regression with a shared linear representation (DESIGN §1.2).

Model: T tasks, task t has rows ``X_t`` (N_t x d) and responses ``y_t`` (N_t), and

    y_t = X_t B w_t + eps_t,      B (d x k) with orthonormal columns,  w_t in R^k.

Every estimator here minimises (exactly or approximately) the task-averaged loss

    L(B, W) = sum_t (1 / (2 N_t)) ||y_t - X_t B w_t||^2,        W = [w_1 ... w_T]  (k x T),

(plus, by default, the empirical-Bayes W-step penalty ``sum_t (c / (2 N_t)) ||w_t||^2``;
see ``w_ridge`` in :func:`fit_shared_representation`)
from stacked rows ``X`` (N x d), ``y`` (N) and an integer ``task`` label per row. Nothing in
an iteration loops over tasks in Python: per-task quantities are segment sums over the rows
(``np.add.reduceat`` on rows sorted once by task), or batched k x k / d x d linear algebra.
When the tasks are long (mean N_t > d) the per-task moments ``S_t = X_t^T X_t / N_t``,
``s_t = X_t^T y_t / N_t`` and ``q_t = y_t^T y_t / N_t`` are formed once and the iterations
no longer touch the rows; otherwise the rows are used directly.

Public functions
----------------
fit_shared_representation   the likelihood estimator (and, via ``method``, its baselines)
fit_per_task                per-task least squares / ridge
fit_nuclear_norm            convex relaxation, accelerated proximal gradient
spectral_init               method-of-moments or ridge-SVD start
select_k                    BIC or row-wise cross-validation over k
adapt                       a new task's w on a fixed B
subspace_distance           sin-theta distance between two column spaces
"""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
from scipy import linalg

from ..exceptions import ConvergenceWarning
from ._base import SolverResult, argmin_simplest, warn_not_converged
from .prox import svt

__all__ = ["fit_shared_representation", "fit_per_task", "fit_nuclear_norm",
           "spectral_init", "select_k", "adapt", "subspace_distance"]

_EPS = np.finfo(float).eps
# per-task d x d moments are formed only when they are smaller than the rows and fit here
_STATS_MAX_BYTES = 2 * 2**30


# ---------------------------------------------------------------------------------------
# input handling and the two ways of evaluating the loss (rows / per-task moments)
# ---------------------------------------------------------------------------------------

def _as_float_matrix(a, name, ndim):
    arr = np.asarray(a)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                   or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array; got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional; got shape {arr.shape}")
    arr = np.asarray(arr, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _check_k(k, d, T, name="k"):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {k!r}")
    if not 1 <= k <= min(d, T):
        raise ValueError(f"{name} must be in [1, min(d, T)] = [1, {min(d, T)}]; got {k}")
    return int(k)


class _TaskData:
    """Validated rows sorted by task, with the per-task bookkeeping every solver needs.

    Attributes
    ----------
    X, y : ndarray
        Rows sorted by task (a stable argsort done once; ``order`` maps back).
    task : ndarray of int
        Sorted task labels; ``starts`` are the first row of each task, ``N`` the counts.
    inv_N_row : ndarray
        ``1 / N_t`` for each row's task (the loss weight of that row).
    route : {"rows", "stats"}
        ``"stats"``: per-task moments S (T x d x d), s (T x d), q (T) are stored and used.
    """

    def __init__(self, X, y, task, center=False, route="auto"):
        X = _as_float_matrix(X, "X", 2)
        y = _as_float_matrix(y, "y", 1)
        t = np.asarray(task)
        if t.ndim != 1:
            raise ValueError(f"task must be 1-dimensional; got shape {t.shape}")
        if t.dtype.kind not in "iub":
            if t.dtype.kind == "f" and np.all(np.isfinite(t)) and np.all(t == np.round(t)):
                t = t.astype(np.int64)
            else:
                raise TypeError("task must hold integer labels 0..T-1; "
                                f"got dtype {t.dtype}")
        n, d = X.shape
        if y.shape[0] != n or t.shape[0] != n:
            raise ValueError(f"X, y and task must have the same number of rows; got "
                             f"{n}, {y.shape[0]} and {t.shape[0]}")
        if n == 0:
            raise ValueError("X has no rows")
        t = t.astype(np.int64)
        if t.min() < 0:
            raise ValueError("task labels must be 0..T-1; found a negative label")
        T = int(t.max()) + 1
        N = np.bincount(t, minlength=T)
        if np.any(N == 0):
            missing = np.flatnonzero(N == 0)[:5].tolist()
            raise ValueError(f"task labels must be 0..T-1 with every task present; "
                             f"tasks {missing} have no rows")
        order = np.argsort(t, kind="stable")
        self.order = order
        self.X = X[order]          # a copy: the caller's arrays are never modified
        self.y = y[order]
        self.task = t[order]
        self.T, self.d, self.n = T, d, n
        self.N = N.astype(float)
        self.starts = np.concatenate(([0], np.cumsum(N)[:-1]))
        self.inv_N_row = 1.0 / self.N[self.task]
        self._Sigma = None
        if center:
            self.X -= (self.segsum(self.X) / self.N[:, None])[self.task]
            self.y -= (self.segsum(self.y) / self.N)[self.task]
        if route == "auto":
            small = n <= T * d or T * d * d * 8 > _STATS_MAX_BYTES
            route = "rows" if small else "stats"
        if route not in ("rows", "stats"):
            raise ValueError(f"route must be 'auto', 'rows' or 'stats'; got {route!r}")
        self.route = route
        if route == "stats":
            self.S = np.empty((T, d, d))
            for idx, Xp, _ in self.blocks():          # loop over size buckets, not tasks
                self.S[idx] = np.matmul(Xp.transpose(0, 2, 1), Xp)
            self.S /= self.N[:, None, None]
            self.s = self.segsum(self.X * self.y[:, None]) / self.N[:, None]
            self.q = self.segsum(self.y ** 2) / self.N

    # -- helpers ------------------------------------------------------------------------
    def segsum(self, A):
        """Per-task sums of the rows of ``A`` (rows sorted by task): shape (T, ...)."""
        return np.add.reduceat(A, self.starts, axis=0)

    def blocks(self):
        """Tasks grouped by N_t rounded up to a power of two, rows zero-padded.

        Yields ``(tasks, Xp, yp)`` with Xp of shape (T_b, n_b, d). Zero rows change no
        cross-product, so batched per-task linear algebra can run on the padded blocks.
        The loop is over at most log2(max N_t) + 1 buckets.
        """
        N = self.N.astype(np.int64)
        bucket = np.ceil(np.log2(N)).astype(np.int64)
        pos = np.arange(self.n) - self.starts[self.task]
        for b in np.unique(bucket):
            tasks = np.flatnonzero(bucket == b)
            n_b = int(N[tasks].max())
            slot = np.full(self.T, -1)
            slot[tasks] = np.arange(tasks.size)
            rows = np.flatnonzero(slot[self.task] >= 0)
            Xp = np.zeros((tasks.size, n_b, self.d))
            yp = np.zeros((tasks.size, n_b))
            Xp[slot[self.task[rows]], pos[rows]] = self.X[rows]
            yp[slot[self.task[rows]], pos[rows]] = self.y[rows]
            yield tasks, Xp, yp

    def pooled_cov(self):
        """Sigma_hat = (1/T) sum_t X_t^T X_t / N_t, the task-averaged second moment."""
        if self._Sigma is None:
            if self.route == "stats":
                self._Sigma = self.S.mean(axis=0)
            else:
                self._Sigma = self.X.T @ (self.X * (self.inv_N_row / self.T)[:, None])
        return self._Sigma

    # -- the factorised loss --------------------------------------------------------------
    def w_system(self, B):
        """Normal equations of the W-step: G_t = B^T S_t B (T x k x k), b_t = B^T s_t."""
        if self.route == "stats":
            SB = np.matmul(self.S, B)                       # T x d x k
            G = np.matmul(B.T, SB)                          # T x k x k
            b = self.s @ B                                  # T x k
            return G, b, SB
        Z = self.X @ B                                      # N x k, one BLAS product
        G = self.segsum(Z[:, :, None] * (Z * self.inv_N_row[:, None])[:, None, :])
        b = self.segsum(Z * (self.y * self.inv_N_row)[:, None])
        return G, b, Z

    def loss_grad(self, B, W, cache, grad=True):
        """L(B, W) and its gradient in B, from the ``cache`` returned by :meth:`w_system`.

        grad_B L = - sum_t (1/N_t) X_t^T (y_t - X_t B w_t) w_t^T      (d x k).
        """
        if self.route == "stats":
            SB = cache                                      # S_t B, T x d x k
            SBw = np.einsum("tdk,kt->td", SB, W)            # S_t B w_t
            # L = sum_t (q_t - 2 w_t^T B^T s_t + w_t^T B^T S_t B w_t) / 2
            loss = 0.5 * (self.q.sum() - 2 * np.einsum("td,dk,kt->", self.s, B, W)
                          + np.einsum("td,dk,kt->", SBw, B, W))
            g = (SBw - self.s).T @ W.T if grad else None
            return loss, g
        Z = cache
        r = self.y - np.einsum("ik,ki->i", Z, W[:, self.task])   # residual per row
        loss = 0.5 * np.dot(r * r, self.inv_N_row)
        if not grad:
            return loss, None
        M = W[:, self.task].T * (r * self.inv_N_row)[:, None]    # N x k
        return loss, -(self.X.T @ M)

    def rss(self, coef):
        """Unweighted residual sum of squares sum_t ||y_t - X_t theta_t||^2."""
        if self.route == "stats":
            St = np.einsum("tde,et->td", self.S, coef)
            per = self.q - 2 * np.einsum("td,dt->t", self.s, coef) + \
                np.einsum("td,dt->t", St, coef)
            return float(np.dot(per, self.N))
        r = self.y - np.einsum("id,di->i", self.X, coef[:, self.task])
        return float(r @ r)

    # -- the unfactorised loss, for the convex relaxation ---------------------------------
    def theta_loss_grad(self, Theta, grad=True):
        """L(Theta) = sum_t (1/2N_t)||y_t - X_t theta_t||^2 and its gradient (d x T)."""
        if self.route == "stats":
            St = np.einsum("tde,et->td", self.S, Theta)
            loss = 0.5 * (self.q.sum() - 2 * np.einsum("td,dt->", self.s, Theta)
                          + np.einsum("td,dt->", St, Theta))
            return loss, ((St - self.s).T if grad else None)
        r = self.y - np.einsum("id,di->i", self.X, Theta[:, self.task])
        loss = 0.5 * np.dot(r * r, self.inv_N_row)
        if not grad:
            return loss, None
        return loss, -self.segsum(self.X * (r * self.inv_N_row)[:, None]).T

    def max_task_eig(self):
        """max_t lambda_max(X_t^T X_t / N_t): the Lipschitz constant of grad L(Theta)."""
        if self.route == "stats":
            return float(np.linalg.eigvalsh(self.S)[:, -1].max())
        top = 0.0
        for tasks, Xp, _ in self.blocks():
            sv = np.linalg.svd(Xp, compute_uv=False)[:, 0]
            top = max(top, float(np.max(sv ** 2 / self.N[tasks])))
        return top


def _solve_w(G, b, ridge=None):
    """Batched (ridge) least squares ``w_t = (G_t + ridge_t I)^{-1} b_t``, T k x k systems.

    ``ridge`` (shape (T,), or None for 0) is the W-step penalty of
    :func:`fit_shared_representation`. A relative jitter of 1e-12 * tr(G_t) keeps tasks
    with N_t < k (or a degenerate X_t B) solvable; it gives the minimum-norm solution in
    the limit.
    """
    k = G.shape[-1]
    jit = 1e-12 * np.trace(G, axis1=1, axis2=2) / k + 1e-300
    if ridge is not None:
        jit = jit + ridge
    A = G + jit[:, None, None] * np.eye(k)
    return np.linalg.solve(A, b[:, :, None])[:, :, 0].T


def _qr_pos(A):
    """Thin QR with diag(R) >= 0, so that the orthonormal factor is unique."""
    Q, R = np.linalg.qr(A)
    s = np.where(np.diag(R) < 0, -1.0, 1.0)
    return Q * s, R * s[:, None]


# ---------------------------------------------------------------------------------------
# per-task least squares / ridge (baseline, and the ridge start)
# ---------------------------------------------------------------------------------------

def _moment_noise_signal(data):
    """Pooled moment estimates ``(sigma2_hat, tau2_hat)`` of the noise variance and of
    ``E ||theta_t||^2``, for x of covariance s I (tasks with N_t >= 2 for the U-statistic):
    ``v = mean_t ||y_t||^2 / N_t = s tau^2 + sigma^2`` and
    ``u = mean_t (||X_t^T y_t||^2 - sum_i ||x_i||^2 y_i^2) / (N_t (N_t - 1)) = s^2 tau^2``,
    with ``s = tr(Sigma_hat) / d``. Both are floored at 1e-3 of their scale.
    """
    s = np.trace(data.pooled_cov()) / data.d
    v = np.mean(data.segsum(data.y ** 2) / data.N)
    two = data.N >= 2
    Xty = data.segsum(data.X * data.y[:, None])
    cross = data.segsum(np.sum(data.X ** 2, axis=1) * data.y ** 2)
    u_t = (np.sum(Xty ** 2, axis=1) - cross)[two] / (data.N[two] * (data.N[two] - 1))
    u = max(float(np.mean(u_t)) if u_t.size else 0.0, 1e-3 * v * s)
    tau2 = u / s ** 2
    sigma2 = max(v - s * tau2, 1e-3 * v)
    return sigma2, tau2


def _bayes_ridge_alpha(data):
    """Data-driven ridge penalty alpha_t = sigma2_hat d / (N_t tau2_hat), one per task.

    It is the posterior-mean ridge for theta_t ~ N(0, tau^2 I_d / d) and noise sigma^2,
    with x of covariance s I; sigma2_hat and tau2_hat from :func:`_moment_noise_signal`.
    """
    sigma2, tau2 = _moment_noise_signal(data)
    return sigma2 * data.d / (data.N * tau2)


def _w_ridge_penalty(data, k, w_ridge):
    """Per-task W-step penalties ``lambda_t = c / N_t`` (None when there is no ridge).

    ``c = w_ridge`` for a number; for ``"auto"`` the empirical-Bayes value
    ``c = sigma2_hat k / tau2_hat`` (prior w_t ~ N(0, (tau2_hat / k) I_k), i.e.
    E||B w_t||^2 = tau2_hat, noise sigma2_hat; see :func:`_moment_noise_signal`).
    Returns ``(lambda, c)``.
    """
    if w_ridge is None:
        return None, 0.0
    if isinstance(w_ridge, str):
        if w_ridge != "auto":
            raise ValueError(f"w_ridge must be None, 'auto' or a number >= 0; got "
                             f"{w_ridge!r}")
        sigma2, tau2 = _moment_noise_signal(data)
        c = sigma2 * k / tau2
    elif isinstance(w_ridge, numbers.Real) and not isinstance(w_ridge, bool) \
            and np.isfinite(w_ridge) and w_ridge >= 0:
        c = float(w_ridge)
    else:
        raise ValueError(f"w_ridge must be None, 'auto' or a number >= 0; got {w_ridge!r}")
    if c == 0:
        return None, 0.0
    return c / data.N, float(c)


def _per_task_ridge(data, alpha):
    """theta_t = argmin (1/2N_t)||y_t - X_t theta||^2 + (alpha_t/2)||theta||^2, batched.

    Uses the primal form (S_t + alpha_t I)^{-1} s_t, or for a padded block with fewer
    rows than d the dual form X_t^T (X_t X_t^T + N_t alpha_t I)^{-1} y_t.
    """
    d, T = data.d, data.T
    alpha = np.broadcast_to(np.asarray(alpha, dtype=float), (T,))
    Theta = np.empty((d, T))
    if data.route == "stats":
        tr = np.trace(data.S, axis1=1, axis2=2) / d
        reg = np.maximum(alpha, 1e-12 * tr)
        A = data.S + reg[:, None, None] * np.eye(d)
        Theta[:] = np.linalg.solve(A, data.s[:, :, None])[:, :, 0].T
        return Theta
    for tasks, Xp, yp in data.blocks():
        Nt = data.N[tasks]
        n_b = Xp.shape[1]
        if n_b < d:
            K = np.matmul(Xp, Xp.transpose(0, 2, 1))               # T_b x n_b x n_b
            tr = np.trace(K, axis1=1, axis2=2) / np.maximum(Nt, 1)
            reg = np.maximum(Nt * alpha[tasks], 1e-12 * tr + 1e-300)
            # padded zero rows: reg * a_i = 0, so they drop out of the solution
            a = np.linalg.solve(K + reg[:, None, None] * np.eye(n_b), yp[:, :, None])
            Theta[:, tasks] = np.matmul(Xp.transpose(0, 2, 1), a)[:, :, 0].T
        else:
            S = np.matmul(Xp.transpose(0, 2, 1), Xp) / Nt[:, None, None]
            s = np.einsum("tnd,tn->td", Xp, yp) / Nt[:, None]
            tr = np.trace(S, axis1=1, axis2=2) / d
            reg = np.maximum(alpha[tasks], 1e-12 * tr + 1e-300)
            Theta[:, tasks] = np.linalg.solve(S + reg[:, None, None] * np.eye(d),
                                              s[:, :, None])[:, :, 0].T
    return Theta


def fit_per_task(X, y, task, *, alpha=None, center=False):
    """Per-task least squares, with ridge for the tasks that have fewer rows than d.

    For each task,
    ``theta_t = argmin (1/2N_t)||y_t - X_t theta||^2 + (alpha_t/2)||theta||^2``.

    Parameters
    ----------
    X : ndarray, shape (N, d)
    y : ndarray, shape (N,)
    task : ndarray of int, shape (N,)
        Task label of each row, 0..T-1, every task present.
    alpha : None, float or ndarray of shape (T,)
        Ridge penalty per task. ``None``: 0 (least squares) for tasks with N_t >= d, and
        for N_t < d the data-driven posterior-mean penalty
        ``alpha_t = sigma2_hat d / (N_t tau2_hat)`` from pooled moment estimates of the
        noise variance and of E||theta_t||^2.
    center : bool
        Centre X and y within each task first.

    Returns
    -------
    SolverResult
        ``coef`` = Theta (d x T); ``extra["alpha"]`` the penalties used.
    """
    data = _TaskData(X, y, task, center=center)
    if alpha is None:
        alpha = np.where(data.N < data.d, _bayes_ridge_alpha(data), 0.0)
    else:
        alpha = np.broadcast_to(np.asarray(alpha, dtype=float), (data.T,)).copy()
        if np.any(alpha < 0) or not np.all(np.isfinite(alpha)):
            raise ValueError("alpha must be finite and >= 0")
    Theta = _per_task_ridge(data, alpha)
    obj = data.theta_loss_grad(Theta, grad=False)[0]
    return SolverResult(coef=Theta, objective=float(obj), extra={"alpha": alpha})


# ---------------------------------------------------------------------------------------
# spectral starts
# ---------------------------------------------------------------------------------------

def _top_eigvecs(M, k):
    w, V = linalg.eigh((M + M.T) / 2, subset_by_index=[M.shape[0] - k, M.shape[0] - 1])
    return V[:, ::-1]


def _spectral_init(data, k, init):
    if init == "mom":
        # M = (1/T) sum_t (1/N_t) sum_i y_ti^2 x_ti x_ti^T ; E M = c I + (2/T) Theta Theta^T
        M = data.X.T @ (data.X * (data.y ** 2 * data.inv_N_row / data.T)[:, None])
        return _top_eigvecs(M, k)
    if init == "ridge":
        Theta = _per_task_ridge(data, _bayes_ridge_alpha(data))
        return _top_eigvecs(Theta @ Theta.T, k)         # left singular vectors of Theta
    raise ValueError(f"init must be 'ridge', 'mom' or a d x k array; got {init!r}")


def spectral_init(X, y, task, k, *, init="ridge", center=False):
    """Spectral estimate of the representation B (d x k, orthonormal columns).

    Parameters
    ----------
    X, y, task : ndarray
        Stacked rows, responses and task labels (see :func:`fit_shared_representation`).
    k : int
    init : {"ridge", "mom"}
        ``"mom"``: top-k eigenvectors of ``(1/T) sum_t (1/N_t) sum_i y_ti^2 x_ti x_ti^T``,
        whose expectation is ``c I + (2/T) Theta Theta^T`` for Gaussian x.
        ``"ridge"``: leading k left singular vectors of the d x T matrix of per-task ridge
        estimates (penalty as in :func:`fit_per_task` with ``alpha=None``, for all tasks).
    center : bool

    Returns
    -------
    B : ndarray, shape (d, k)
    """
    data = _TaskData(X, y, task, center=center)
    k = _check_k(k, data.d, data.T)
    return _spectral_init(data, k, init)


# ---------------------------------------------------------------------------------------
# the factorised estimator and its iterative baseline
# ---------------------------------------------------------------------------------------

def fit_shared_representation(X, y, task, k, *, method="gd", init=None, tol=1e-8,
                              max_iter=500, backend="fast", center=False, verbose=False,
                              w_ridge="auto"):
    """Fit ``y_t = X_t B w_t + eps_t`` with a shared orthonormal representation B.

    Objective minimised (``objective`` of the result)::

        F(B, W) = L(B, W) + sum_t (lambda_t / 2) ||w_t||^2,
        L(B, W) = sum_t (1 / (2 N_t)) ||y_t - X_t B w_t||^2,     lambda_t = c / N_t,

    over B with orthonormal columns and W. ``c = 0`` (``w_ridge=None``) is the pure
    likelihood. ``c > 0`` is the random-effects (empirical-Bayes) form of the model,
    ``w_t ~ N(0, (sigma^2 / c) I_k)``: F is sigma^2 / N_t times the negative log posterior
    of each task, and its W-step is the posterior mean. Why: when N_t is close to k the
    likelihood is degenerate -- a fit can make ``X_t B`` nearly singular and that task's
    w_t blows up (at N_t = 2k, d = 50, k = 5 the mean coefficient error of the pure
    likelihood was 61x that of per-task least squares, from a few tasks); the penalty
    bounds every w_t, while ``lambda_t = c / N_t`` makes it negligible once N_t >> k.
    The prior is isotropic on purpose: ``||w_t|| = ||B w_t||`` for orthonormal B, so F
    depends on (span B, B W) only and the QR re-orthonormalisation below leaves it
    unchanged (an anisotropic Sigma_w in the coordinates of B would not be invariant to
    the rotation within span B that QR applies).

    ``method="gd"`` (default) -- scaled (preconditioned) gradient descent on the factors.
    Each iteration, from B with orthonormal columns:

    1. W-step, preconditioned by the per-task Gram ``H_t = B^T S_t B + lambda_t I``
       (``S_t = X_t^T X_t / N_t``):
       ``w_t <- w_t - H_t^{-1} grad_{w_t} F = H_t^{-1} B^T s_t``.
       The W-problem is quadratic, so this unit step is its exact minimiser (batched
       k x k solves); F then equals the profile ``f(B) = min_W F(B, W)``, which depends
       on span(B) only.
    2. B-step, preconditioned on both sides::

           grad_B = - P_perp sum_t (1/N_t) X_t^T (y_t - X_t B w_t) w_t^T
           D_B    = Sigma_hat^{-1} grad_B (W W^T)^{-1},    Sigma_hat = (1/T) sum_t S_t,
           B     <- B - eta D_B.

       ``P_perp = I - B B^T``: the gradient of f on the Grassmannian (moves within
       span B do not change f). With ``lambda = 0`` the exact W-step already makes
       ``B^T grad = 0`` and the projection is skipped; with a ridge
       ``B^T grad = -sum_t lambda_t w_t w_t^T`` and the projection is what makes
       ``<grad_B, D_B>`` the slope of f along the QR retraction.

       ``(W W^T) kron Sigma_hat`` approximates the Hessian of L in B (exactly, for the
       population loss), so the step is invariant to the scale and conditioning of W and
       of x; in the population a unit step lands on span(B*) exactly.
    3. Step size ``eta`` by Armijo backtracking on the profile objective, starting at 1:
       accept the first ``eta = 2^-j`` with
       ``f(B - eta D_B) <= f(B) - 1e-4 eta <grad_B, D_B>``.
    4. Re-orthonormalise: ``B - eta D_B = Q R`` (thin QR), ``B <- Q``, ``W <- R W``
       (so B W is unchanged; the next exact W-step returns exactly this R W).

    ``method="altmin"`` -- the alternating-minimisation baseline: the same exact W-step,
    then one plain gradient step ``B <- B - eta grad_B`` with ``eta = 1 / L_B``,
    ``L_B = lambda_max(W W^T) lambda_max(Sigma_hat)`` (the population Lipschitz constant
    of grad_B), halved while the objective increases, then QR.

    ``method="mom"`` -- no iterations: the spectral start ``init`` (method of moments by
    default for this method) followed by the exact W-step.

    All three methods share the same W-step (and so the same ``w_ridge``), so gd and
    altmin minimise the same F and are compared like for like.

    Stopping (all iterative methods, same rule): the relative scaled gradient
    ``<grad_B, D_B> / (2 F) <= tol`` -- the second-order prediction of the relative
    decrease still available (the gradient in W is zero after the exact W-step) -- or a
    relative decrease ``(F_prev - F) / F_prev <= tol`` in the last iteration (this
    catches degenerate fits, e.g. k too large, where W W^T is nearly singular and the
    scaled gradient is ill-defined).

    Parameters
    ----------
    X : ndarray, shape (N, d)
        Stacked rows of all tasks (centred per task by the caller, or ``center=True``).
    y : ndarray, shape (N,)
    task : ndarray of int, shape (N,)
        Task label of each row, 0..T-1, every task present; need not be sorted.
    k : int
        Dimension of the representation, 1 <= k <= min(d, T).
    method : {"gd", "altmin", "mom"}
    init : None, {"ridge", "mom"} or ndarray of shape (d, k)
        Spectral start (see :func:`spectral_init`). ``None``: ``"mom"`` for
        ``method="mom"``, otherwise ``"ridge"``, which starts measurably closer to B* than
        the method of moments (``benchmarks/shared_rates.py``).
    tol : float
        Tolerance of the stopping criterion above.
    max_iter : int
    backend : {"fast", "cvxpy"}
        How each W-step (T independent least-squares problems) is solved: batched normal
        equations, or one CVXPY problem (reference; small problems only).
    center : bool
        Centre X and y within each task before fitting (a per-task intercept).
    verbose : bool
        Print one line per iteration.
    w_ridge : None, "auto" or float >= 0
        The constant c of the W-step penalty ``lambda_t = c / N_t``. ``None`` or 0: the
        pure likelihood L. ``"auto"`` (default): ``c = sigma2_hat k / tau2_hat``, the
        empirical-Bayes value for ``w_t ~ N(0, (tau2_hat / k) I_k)``, with the noise
        variance sigma2_hat and ``tau2_hat = E||theta_t||^2`` from pooled moments of the
        data (the estimates behind the ridge start, computed once before the iterations
        so that F is a fixed function and the line search and stopping rule apply to it
        unchanged). The default was chosen by measurement (``benchmarks/shared_rates.py``,
        d = 50, k = 5, T = 200): at N = 2k it removes the blow-up of w_t (mean coefficient
        error below per-task least squares, where the pure likelihood was 61x above) and
        lowers the iteration count, while at N >= 8k its effect on sin-theta and on the
        coefficients is below the Monte-Carlo noise.

    Returns
    -------
    SolverResult
        ``coef`` = B W (d x T); ``objective`` = F(B, W); ``history`` with per-iteration
        ``objective``, ``criterion``, ``step`` and ``n_backtracks``; ``extra`` with ``B``
        (d x k, orthonormal), ``W`` (k x T), ``B_init``, ``sigma2`` (RSS / N),
        ``rss``, ``likelihood_loss`` (L at the fit), ``w_ridge`` (c) and ``ridge``
        (lambda_t per task, or None), ``time`` (seconds) and ``route`` ("rows" or
        "stats").
    """
    t0 = time.perf_counter()
    data = _TaskData(X, y, task, center=center)
    d, T = data.d, data.T
    k = _check_k(k, d, T)
    if method not in ("gd", "altmin", "mom"):
        raise ValueError(f"method must be 'gd', 'altmin' or 'mom'; got {method!r}")
    if backend not in ("fast", "cvxpy"):
        raise ValueError(f"backend must be 'fast' or 'cvxpy'; got {backend!r}")
    if not (isinstance(tol, numbers.Real) and tol > 0):
        raise ValueError(f"tol must be a positive number; got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) \
            or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative integer; got {max_iter!r}")

    if init is None:
        init = "mom" if method == "mom" else "ridge"
    if isinstance(init, str):
        B = _spectral_init(data, k, init)
    else:
        B0 = _as_float_matrix(init, "init", 2)
        if B0.shape != (d, k):
            raise ValueError(f"init must have shape (d, k) = ({d}, {k}); got {B0.shape}")
        B = _qr_pos(B0)[0]
    B_init = B.copy()
    lam, c_ridge = _w_ridge_penalty(data, k, w_ridge)

    def exact_w(B):
        G, b, cache = data.w_system(B)
        if backend == "cvxpy":
            from .cvx import shared_rep_w_step
            W = shared_rep_w_step(data.X @ B, data.y, data.task, T, ridge=lam)
        else:
            W = _solve_w(G, b, lam)
        return W, cache

    def objective_grad(B, W, cache, grad=True):
        """F(B, W) and the Grassmann gradient of the profile in B."""
        loss, g = data.loss_grad(B, W, cache, grad=grad)
        if lam is not None:
            loss = loss + 0.5 * float(np.dot(lam, np.einsum("kt,kt->t", W, W)))
            if grad:
                g = g - B @ (B.T @ g)
        return loss, g

    Sigma = data.pooled_cov()
    Sigma_cho = linalg.cho_factor(Sigma + (1e-10 * np.trace(Sigma) / d + 1e-300)
                                  * np.eye(d))
    sigma_max = float(linalg.eigvalsh(Sigma, subset_by_index=[d - 1, d - 1])[0])

    W, cache = exact_w(B)
    loss, g = objective_grad(B, W, cache)
    hist = {"objective": [], "criterion": [], "step": [], "n_backtracks": []}
    converged, n_iter, crit = method == "mom", 0, float("nan")
    eta, nb = 0.0, 0                   # step and backtracks that produced the iterate
    rel_change = np.inf                # relative decrease of L in the last iteration
    for it in range(max_iter + 1 if method != "mom" else 0):
        WWt = W @ W.T
        WWt_inv = np.linalg.inv(WWt + 1e-12 * np.trace(WWt) / k * np.eye(k))
        D = linalg.cho_solve(Sigma_cho, g) @ WWt_inv           # scaled gradient D_B
        decr = float(np.sum(g * D))                            # <grad_B, D_B> >= 0
        crit = decr / (2 * max(loss, 1e-300))
        _record(hist, loss, crit, eta, nb, verbose)
        if crit <= tol or rel_change <= tol:
            converged = True
            break
        if it == max_iter:
            break
        if method == "gd":
            direction, eta, slope = D, 1.0, 1e-4 * decr
        else:
            direction, slope = g, 0.0
            eta = 1.0 / (float(np.linalg.eigvalsh(WWt)[-1]) * sigma_max)
        nb = 0
        while True:
            B_new, _ = _qr_pos(B - eta * direction)
            W_new, cache_new = exact_w(B_new)
            loss_new = objective_grad(B_new, W_new, cache_new, grad=False)[0]
            if loss_new <= loss - eta * slope or nb >= 40:
                break
            eta *= 0.5
            nb += 1
        if loss_new > loss:            # no decrease even for a tiny step: stop here
            break
        rel_change = (loss - loss_new) / max(loss, 1e-300)
        B, W, cache = B_new, W_new, cache_new
        loss, g = objective_grad(B, W, cache)
        n_iter = it + 1
    if method == "mom":
        _record(hist, loss, crit, eta, nb, verbose)
    elif not converged:
        warn_not_converged(f"fit_shared_representation(method={method!r})",
                           n_iter, crit, tol)

    coef = B @ W
    rss = data.rss(coef)
    extra = {"B": B, "W": W, "B_init": B_init, "rss": rss, "sigma2": rss / data.n,
             "likelihood_loss": float(data.loss_grad(B, W, cache, grad=False)[0]),
             "w_ridge": c_ridge, "ridge": lam,
             "time": time.perf_counter() - t0, "route": data.route,
             "final_criterion": float(crit)}
    return SolverResult(coef=coef, converged=converged, n_iter=n_iter, history=hist,
                        objective=float(loss), extra=extra)


def _record(hist, loss, crit, eta, nb, verbose):
    hist["objective"].append(float(loss))
    hist["criterion"].append(float(crit))
    hist["step"].append(float(eta))
    hist["n_backtracks"].append(int(nb))
    if verbose:
        print(f"iter {len(hist['objective']) - 1:4d}  L={loss:.10g}  crit={crit:.3e}  "
              f"step={eta:.3g}  backtracks={nb}")


# ---------------------------------------------------------------------------------------
# convex relaxation
# ---------------------------------------------------------------------------------------

def fit_nuclear_norm(X, y, task, lam, *, tol=1e-10, max_iter=5000, backend="fast",
                     center=False, Theta0=None, verbose=False):
    """Convex relaxation: minimise ``L(Theta) + lam ||Theta||_*`` over Theta (d x T).

    ``L(Theta) = sum_t (1/(2N_t)) ||y_t - X_t theta_t||^2`` and ``||.||_*`` is the nuclear
    norm (sum of singular values). ``backend="fast"``: accelerated proximal gradient
    (FISTA) with singular value thresholding,

        Theta_{j+1} = SVT_{lam/Lip}(V_j - grad L(V_j) / Lip),
        V_{j+1} = Theta_{j+1} + ((a_j - 1)/a_{j+1}) (Theta_{j+1} - Theta_j),
        a_{j+1} = (1 + sqrt(1 + 4 a_j^2)) / 2,

    with ``Lip = max_t lambda_max(X_t^T X_t / N_t)`` (the Lipschitz constant of grad L; the
    task blocks of the Hessian are separate), restarting the momentum whenever the
    objective increases. Stops when
    ``||Theta_{j+1} - Theta_j||_F <= tol max(1, ||Theta_{j+1}||_F)``.
    ``backend="cvxpy"``: the same problem in CVXPY (:func:`..cvx.shared_rep_nuclear_norm`).

    Parameters
    ----------
    X, y, task : ndarray
        Stacked rows, responses and task labels (see :func:`fit_shared_representation`).
    lam : float
        Penalty, >= 0.
    tol : float
    max_iter : int
    backend : {"fast", "cvxpy"}
    center : bool
    Theta0 : ndarray of shape (d, T), optional
        Warm start.
    verbose : bool

    Returns
    -------
    SolverResult
        ``coef`` = Theta; ``objective`` = L + lam ||Theta||_*; ``history`` with
        ``objective`` and ``rel_change`` per iteration; ``extra["rank"]``,
        ``extra["singular_values"]``.
    """
    data = _TaskData(X, y, task, center=center)
    if not (isinstance(lam, numbers.Real) and np.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0; got {lam!r}")
    if backend not in ("fast", "cvxpy"):
        raise ValueError(f"backend must be 'fast' or 'cvxpy'; got {backend!r}")
    d, T = data.d, data.T

    def objective(Theta):
        return data.theta_loss_grad(Theta, grad=False)[0] + \
            lam * linalg.svdvals(Theta).sum()

    if backend == "cvxpy":
        from .cvx import shared_rep_nuclear_norm
        Theta = shared_rep_nuclear_norm(data.X, data.y, data.task, T, lam)
        sv = linalg.svdvals(Theta)
        return SolverResult(coef=Theta, objective=float(objective(Theta)),
                            extra={"rank": int(np.sum(sv > 1e-8 * max(sv.max(), 1e-300))),
                                   "singular_values": sv})
    Lip = 1.0001 * data.max_task_eig() + 1e-300
    Theta = np.zeros((d, T)) if Theta0 is None else \
        _as_float_matrix(Theta0, "Theta0", 2).copy()
    if Theta.shape != (d, T):
        raise ValueError(f"Theta0 must have shape (d, T) = ({d}, {T})")
    V, a = Theta.copy(), 1.0
    obj = objective(Theta)
    hist = {"objective": [float(obj)], "rel_change": [np.nan]}
    converged, n_iter, change = False, 0, np.inf
    for it in range(1, max_iter + 1):
        g = data.theta_loss_grad(V)[1]
        Theta_new, sv = svt(V - g / Lip, lam / Lip)
        obj_new = data.theta_loss_grad(Theta_new, grad=False)[0] + lam * sv.sum()
        if obj_new > obj and a > 1.0:          # adaptive restart of the momentum
            V, a = Theta.copy(), 1.0
            continue
        a_new = (1 + np.sqrt(1 + 4 * a * a)) / 2
        diff = Theta_new - Theta
        V = Theta_new + ((a - 1) / a_new) * diff
        change = np.linalg.norm(diff) / max(1.0, np.linalg.norm(Theta_new))
        Theta, obj, a, n_iter = Theta_new, obj_new, a_new, it
        hist["objective"].append(float(obj))
        hist["rel_change"].append(float(change))
        if verbose:
            print(f"iter {it:5d}  objective={obj:.12g}  rel_change={change:.3e}")
        if change <= tol:
            converged = True
            break
    if not converged:
        warn_not_converged("fit_nuclear_norm", n_iter, change, tol)
    sv = linalg.svdvals(Theta)
    return SolverResult(coef=Theta, converged=converged, n_iter=n_iter, history=hist,
                        objective=float(objective(Theta)),
                        extra={"rank": int(np.sum(sv > 1e-8 * max(sv.max(), 1e-300))),
                               "singular_values": sv})


# ---------------------------------------------------------------------------------------
# choosing k, transfer to a new task, subspace distance
# ---------------------------------------------------------------------------------------

def _n_params(d, k, T):
    """Free parameters of (B, W): a k-dim subspace of R^d (dk - k(k+1)/2) plus kT."""
    return d * k - k * (k + 1) // 2 + k * T


def select_k(X, y, task, ks=None, *, criterion="bic", n_folds=5, random_state=0,
             center=False, patience=2, **fit_kw):
    """Choose the representation dimension k.

    ``criterion="bic"``: fit each k and minimise the Gaussian BIC with sigma^2 profiled
    out,

        BIC(k) = N log(RSS_k / N) + (d k - k(k+1)/2 + k T) log N,

    ``RSS_k = sum_t ||y_t - X_t B_k w_t||^2`` and N = sum_t N_t. ``criterion="cv"``: split
    each task's rows into ``n_folds`` folds at random, fit on the other folds and minimise
    the held-out loss ``sum_t (1/(2 N_t)) ||y_t - X_t B w_t||^2`` summed over folds.

    Parameters
    ----------
    X, y, task : ndarray
        Stacked rows, responses and task labels (see :func:`fit_shared_representation`).
    ks : iterable of int, optional
        Candidates; default ``1 .. min(d, T, 10)``.
    criterion : {"bic", "cv"}
    n_folds : int
        Folds for ``"cv"`` (>= 2).
    random_state : int, Generator or None
        Fold assignment for ``"cv"``.
    center : bool
    patience : int or None
        Candidates are scanned in increasing order and the scan stops once ``patience``
        consecutive candidates score worse than the best so far (the criterion is
        unimodal in k in regular cases, and fits with k above the truth are the slow,
        ill-conditioned ones). None scans every candidate.
    **fit_kw
        Passed to :func:`fit_shared_representation` (method, tol, max_iter, ...).

    Returns
    -------
    k : int
        The chosen dimension.
    scores : dict of int to float
        The criterion for each candidate (smaller is better).
    """
    if criterion not in ("bic", "cv"):
        raise ValueError(f"criterion must be 'bic' or 'cv'; got {criterion!r}")
    data = _TaskData(X, y, task, center=center)
    d, T, n = data.d, data.T, data.n
    if ks is None:
        ks = range(1, min(d, T, 10) + 1)
    ks = [_check_k(k, d, T, name="ks") for k in ks]
    if not ks:
        raise ValueError("ks must hold at least one candidate")
    ks = sorted(set(ks))
    scores, not_converged = {}, set()

    def scan_done():
        if patience is None:
            return False
        best = _best_k(scores)
        return sum(1 for k in scores if k > best) >= patience

    def fit(k, rows=slice(None)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            res = fit_shared_representation(data.X[rows], data.y[rows], data.task[rows],
                                            k, **fit_kw)
        for w in caught:
            if issubclass(w.category, ConvergenceWarning):
                not_converged.add(k)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return res

    if criterion == "bic":
        for k in ks:
            res = fit(k)
            rss = max(res.extra["rss"], 1e-300)
            scores[k] = float(n * np.log(rss / n) + _n_params(d, k, T) * np.log(n))
            if scan_done():
                break
    else:
        if isinstance(n_folds, bool) or not isinstance(n_folds, numbers.Integral) \
                or n_folds < 2:
            raise ValueError(f"n_folds must be an integer >= 2; got {n_folds!r}")
        rng = np.random.default_rng(random_state)
        # random order within each task, then folds dealt round-robin; a task with a
        # single row is never held out, so every task keeps training rows
        order = np.lexsort((rng.random(n), data.task))
        fold = np.empty(n, dtype=np.int64)
        fold[order] = (np.arange(n) - data.starts[data.task]) % n_folds
        fold[data.N[data.task] < 2] = -1
        for k in ks:
            total = 0.0
            for f in range(n_folds):             # loop over folds, not tasks
                tr, te = fold != f, fold == f
                res = fit(k, tr)
                r = data.y[te] - np.einsum("id,di->i", data.X[te],
                                           res.coef[:, data.task[te]])
                total += 0.5 * np.dot(r * r, data.inv_N_row[te])
            scores[k] = float(total)
            if scan_done():
                break
    if not_converged:
        warnings.warn(f"select_k: the fits for k in {sorted(not_converged)} did not "
                      "converge (often a sign that k is too large for the data); their "
                      "scores are those of the last iterate", ConvergenceWarning,
                      stacklevel=2)
    return _best_k(scores), scores


def _best_k(scores):
    """The k with the best score; near-ties go to the smaller k (:func:`argmin_simplest`)."""
    ks = sorted(scores)
    return ks[argmin_simplest([scores[k] for k in ks])]


def adapt(B, X_new, y_new, shrink=None, w_mean=None, w_cov=None):
    """Fit a new task's coefficients w on a fixed representation B.

    Solves ``min_w (1/(2n)) ||y - X B w||^2 + (shrink/2) (w - w_mean)^T w_cov^{-1}
    (w - w_mean)``, i.e. ``w = (Z^T Z / n + shrink P)^{-1} (Z^T y / n + shrink P w_mean)``
    with ``Z = X B`` and ``P = w_cov^{-1}``. ``shrink=None`` (or 0) is least squares on
    the k columns of Z. With ``w_mean``, ``w_cov`` the mean and covariance of the learned
    w's and ``shrink = sigma2 / n``, this is the Gaussian posterior mean of w.

    Parameters
    ----------
    B : ndarray, shape (d, k)
    X_new : ndarray, shape (n, d)
    y_new : ndarray, shape (n,)
    shrink : None or float >= 0
    w_mean : ndarray, shape (k,), optional
        Shrinkage target; default 0.
    w_cov : ndarray, shape (k, k), optional
        Positive definite; default I_k.

    Returns
    -------
    w : ndarray, shape (k,)
        The new task's coefficients are ``B @ w``.
    """
    B = _as_float_matrix(B, "B", 2)
    X_new = _as_float_matrix(X_new, "X_new", 2)
    y_new = _as_float_matrix(y_new, "y_new", 1)
    d, k = B.shape
    n = X_new.shape[0]
    if X_new.shape[1] != d:
        raise ValueError(f"X_new must have d = {d} columns (rows of B); got "
                         f"{X_new.shape[1]}")
    if y_new.shape[0] != n or n == 0:
        raise ValueError(f"y_new must have as many entries as X_new has rows (>= 1); got "
                         f"{y_new.shape[0]} and {n}")
    shrink = 0.0 if shrink is None else shrink
    if not (isinstance(shrink, numbers.Real) and np.isfinite(shrink) and shrink >= 0):
        raise ValueError(f"shrink must be None or a finite number >= 0; got {shrink!r}")
    m = np.zeros(k) if w_mean is None else _as_float_matrix(w_mean, "w_mean", 1)
    if m.shape != (k,):
        raise ValueError(f"w_mean must have shape ({k},); got {m.shape}")
    if w_cov is None:
        P = np.eye(k)
    else:
        C = _as_float_matrix(w_cov, "w_cov", 2)
        if C.shape != (k, k):
            raise ValueError(f"w_cov must have shape ({k}, {k}); got {C.shape}")
        try:
            P = linalg.cho_solve(linalg.cho_factor((C + C.T) / 2), np.eye(k))
        except linalg.LinAlgError:
            raise ValueError("w_cov must be positive definite") from None
    Z = X_new @ B
    if shrink == 0:
        return linalg.lstsq(Z, y_new)[0]
    A = Z.T @ Z / n + shrink * P
    return linalg.solve(A, Z.T @ y_new / n + shrink * (P @ m), assume_a="pos")


def subspace_distance(B1, B2):
    """sin-theta distance between the column spaces of two orthonormal d x k matrices.

    ``||B1_perp^T B2||_F = sqrt(k - ||B1^T B2||_F^2)``: the Frobenius norm of the sines
    of the principal angles. Symmetric, 0 iff the spans agree, at most sqrt(k).

    Parameters
    ----------
    B1, B2 : ndarray, shape (d, k)
        Orthonormal columns (checked to 1e-6).

    Returns
    -------
    float
    """
    B1 = _as_float_matrix(B1, "B1", 2)
    B2 = _as_float_matrix(B2, "B2", 2)
    if B1.shape != B2.shape:
        raise ValueError(f"B1 and B2 must have the same shape; got {B1.shape} and "
                         f"{B2.shape}")
    k = B1.shape[1]
    for name, Bm in (("B1", B1), ("B2", B2)):
        if not np.allclose(Bm.T @ Bm, np.eye(k), atol=1e-6):
            raise ValueError(f"{name} must have orthonormal columns")
    return float(np.sqrt(max(k - np.linalg.norm(B1.T @ B2) ** 2, 0.0)))
