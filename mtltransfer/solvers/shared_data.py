"""The shared-representation datafit: tasks' rows, per-task statistics and the W-step.

Model: T tasks, task t has rows ``X_t`` (N_t x d) and responses ``y_t`` (N_t), and

    y_t = X_t B w_t + eps_t,      B (d x k) with orthonormal columns,  w_t in R^k.

Every shared-representation estimator minimises (exactly or approximately) the
task-averaged loss

    L(B, W) = sum_t (1 / (2 N_t)) ||y_t - X_t B w_t||^2,        W = [w_1 ... w_T]  (k x T),

(plus, by default, the empirical-Bayes W-step penalty ``sum_t (c / (2 N_t)) ||w_t||^2``,
:func:`w_ridge_penalty`) from stacked rows ``X`` (N x d), ``y`` (N) and an integer
``task`` label per row. Nothing in an iteration loops over tasks in Python: per-task
quantities are segment sums over the rows (``np.add.reduceat`` on rows sorted once by
task), or batched k x k / d x d linear algebra. When the tasks are long (mean N_t > d)
the per-task moments ``S_t = X_t^T X_t / N_t``, ``s_t = X_t^T y_t / N_t`` and
``q_t = y_t^T y_t / N_t`` are formed once and the iterations no longer touch the rows;
otherwise the rows are used directly.

Contents
--------
task_statistics              the per-task sums of rows (:class:`~.shared_sums.TaskSums`,
                             the one statistics form: X_t^T X_t, X_t^T y_t, y_t^T y_t, N_t
                             are all any Gaussian likelihood of the model needs)
TaskData                     the problem object, from rows (validated, sorted by task) or
                             from sums; L, its gradients, the W-step normal equations
solve_w                      the batched (ridge) W-step
w_ridge_penalty              the W-step penalty lambda_t = c / N_t
per_task_ridge               per-task ridge estimates (baseline and spectral start)

The estimator is in :mod:`.shared_fit`, the choice of k in :mod:`.shared_select`, the
baselines (per task, nuclear norm) and the new-task fit in :mod:`.shared_baselines`.
"""

from __future__ import annotations

import numbers

import numpy as np

from .shared_sums import (TaskSums, as_float_matrix, padded_blocks, sort_rows_by_task,
                          task_moments)

__all__ = ["task_statistics", "TaskData", "solve_w", "w_ridge_penalty",
           "per_task_ridge", "moment_noise_signal", "bayes_ridge_alpha",
           "as_float_matrix", "check_k", "problem_data"]

# per-task d x d moments are formed only when they are smaller than the rows and fit here
_STATS_MAX_BYTES = 2 * 2**30


# ---------------------------------------------------------------------------------------
# input handling and the two ways of evaluating the loss (rows / per-task moments)
# ---------------------------------------------------------------------------------------

def problem_data(X, y, task, kinds, build):
    """A solver's data argument: a problem object (an instance of ``kinds``, built from
    rows or from statistics) as it is, with ``y`` and ``task`` left out; or stacked rows
    ``X``, ``y``, ``task`` turned into one by ``build()``."""
    if isinstance(X, kinds):
        if y is not None or task is not None:
            raise TypeError(f"X is a {type(X).__name__} (the data, responses and tasks "
                            "together): y and task are given with rows only")
        return X
    if y is None or task is None:
        raise TypeError("rows X need y and task (or pass the data as one object)")
    return build()


def check_k(k, d, T, name="k"):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {k!r}")
    if not 1 <= k <= min(d, T):
        raise ValueError(f"{name} must be in [1, min(d, T)] = [1, {min(d, T)}]; got {k}")
    return int(k)


def task_statistics(X, y, task, *, center=False):
    """Per-task sums (:class:`~.shared_sums.TaskSums`: ``XtX``, ``Xty``, ``yty``, ``n``
    and the rest) of rows with integer task labels 0..T-1, tasks in label order.

    Parameters
    ----------
    X : ndarray, shape (N, d)
    y : ndarray, shape (N,)
    task : ndarray of int, shape (N,)
        Task label of each row, 0..T-1, every task present; need not be sorted.
    center : bool
        Centre X and y within each task first (a per-task intercept).

    Returns
    -------
    TaskSums
    """
    return TaskData.from_rows(X, y, task, center=center, route="rows").sums()


class TaskData:
    """The shared-representation solvers' problem object: per-task data, and the loss,
    its gradients and the W-step normal equations on it.

    Built from rows (:meth:`from_rows`) or from per-task sums (:meth:`from_sums`), never
    directly.

    Attributes
    ----------
    X, y : ndarray or None
        Rows sorted by task (a stable argsort done once; ``order`` maps back); None when
        built from sums.
    task : ndarray of int or None
        Sorted task labels; ``starts`` are the first row of each task, ``N`` the counts.
    inv_N_row : ndarray or None
        ``1 / N_t`` for each row's task (the loss weight of that row).
    route : {"rows", "stats"}
        ``"stats"``: per-task moments S (T x d x d), s (T x d), q (T) are stored and used.
    """

    def __init__(self, *args, **kwargs):
        raise TypeError("build a TaskData with TaskData.from_rows(X, y, task, ...) or "
                        "TaskData.from_sums(sums, center=...)")

    @classmethod
    def from_rows(cls, X, y, task, *, center=False, route="auto"):
        """The problem on stacked rows.

        Parameters
        ----------
        X : ndarray, shape (N, d)
        y : ndarray, shape (N,)
        task : ndarray of int, shape (N,)
            Task label of each row, 0..T-1, every task present; need not be sorted.
        center : bool
            Centre X and y within each task first (a per-task intercept).
        route : {"auto", "rows", "stats"}
            ``"stats"``: form the per-task moments once and iterate on them; ``"auto"``
            does so when the tasks are long (mean N_t > d) and the moments fit in 2 GiB.
        """
        self = cls.__new__(cls)
        order, X, y, t, N = sort_rows_by_task(X, y, task)
        n, d = X.shape
        T = N.shape[0]
        self.order = order
        self.X, self.y, self.task = X, y, t
        self.T, self.d, self.n = T, d, n
        self.N = N.astype(float)
        self.starts = np.concatenate(([0], np.cumsum(N)[:-1]))
        self.inv_N_row = 1.0 / self.N[self.task]
        self._Sigma = None
        self._sums = None
        self.center = bool(center)
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
            XtX, Xty, yty = task_moments(self.X, self.y, self.task, self.N, self.starts)
            self.S = XtX                         # owned here: divided in place
            self.S /= self.N[:, None, None]
            self.s = Xty / self.N[:, None]
            self.q = yty / self.N
        return self

    @classmethod
    def from_sums(cls, sums, *, center=False):
        """The problem on per-task sums in place of rows (route ``"stats"``): what the
        solvers need when the rows are elsewhere (e.g. reduced from the partitions of a
        Dask DataFrame).

        Parameters
        ----------
        sums : TaskSums
            Of the raw rows, tasks in the model's order.
        center : bool
            Fit the rows centred within each task (:meth:`TaskSums.centred`).
        """
        sums = sums.centred() if center else sums
        self = cls.__new__(cls)
        self.T, self.d = sums.T, sums.d
        self.N = np.asarray(sums.n, dtype=float).copy()
        if np.any(self.N <= 0):
            raise ValueError("every task must have at least one row")
        self.n = int(round(float(self.N.sum())))
        self.X = self.y = self.task = self.order = self.starts = self.inv_N_row = None
        self._Sigma = None
        self._sums = sums
        self.center = sums.centered
        self.route = "stats"
        self.S = sums.XtX / self.N[:, None, None]
        self.s = sums.Xty / self.N[:, None]
        self.q = sums.yty / self.N
        # sum_i ||x_ti||^2 y_ti^2, the one fourth-order moment (moment_noise_signal)
        self.cross = sums.xx_yy
        return self

    def sums(self):
        """The per-task sums (:class:`~.shared_sums.TaskSums`) of the rows as fitted
        (centred within tasks when built so); labels are the task codes 0..T-1."""
        if self._sums is None:
            self._sums = TaskSums.from_sorted_rows(self.X, self.y, self.task, self.N,
                                                   np.arange(self.T))
            self._sums.centered = self.center
        return self._sums

    # -- helpers ------------------------------------------------------------------------
    def segsum(self, A):
        """Per-task sums of the rows of ``A`` (rows sorted by task): shape (T, ...)."""
        return np.add.reduceat(A, self.starts, axis=0)

    def blocks(self):
        """Tasks grouped by N_t rounded up to a power of two, rows zero-padded
        (:func:`~mtltransfer.solvers.shared_sums.padded_blocks`): ``(tasks, Xp, yp)``, Xp (T_b, n_b, d)."""
        return padded_blocks(self.X, self.y, self.task, self.N, self.starts)

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


def solve_w(G, b, ridge=None):
    """Batched (ridge) least squares ``w_t = (G_t + ridge_t I)^{-1} b_t``, T k x k systems.

    ``ridge`` (shape (T,), or None for 0) is the W-step penalty of
    :func:`~mtltransfer.solvers.shared_fit.fit_shared_representation`. A relative jitter
    of 1e-12 * tr(G_t) keeps tasks with N_t < k (or a degenerate X_t B) solvable; it
    gives the minimum-norm solution in the limit.
    """
    k = G.shape[-1]
    jit = 1e-12 * np.trace(G, axis1=1, axis2=2) / k + 1e-300
    if ridge is not None:
        jit = jit + ridge
    A = G + jit[:, None, None] * np.eye(k)
    return np.linalg.solve(A, b[:, :, None])[:, :, 0].T


def moment_noise_signal(data):
    """Pooled moment estimates ``(sigma2_hat, tau2_hat)`` of the noise variance and of
    ``E ||theta_t||^2``, for x of covariance s I (tasks with N_t >= 2 for the U-statistic):
    ``v = mean_t ||y_t||^2 / N_t = s tau^2 + sigma^2`` and
    ``u = mean_t (||X_t^T y_t||^2 - sum_i ||x_i||^2 y_i^2) / (N_t (N_t - 1)) = s^2 tau^2``,
    with ``s = tr(Sigma_hat) / d``. Both are floored at 1e-3 of their scale.
    """
    s = np.trace(data.pooled_cov()) / data.d
    two = data.N >= 2
    if data.X is None:                            # built from statistics
        v = np.mean(data.q)
        Xty, cross = data.s * data.N[:, None], data.cross
    else:
        v = np.mean(data.segsum(data.y ** 2) / data.N)
        Xty = data.segsum(data.X * data.y[:, None])
        cross = data.segsum(np.sum(data.X ** 2, axis=1) * data.y ** 2)
    u_t = (np.sum(Xty ** 2, axis=1) - cross)[two] / (data.N[two] * (data.N[two] - 1))
    u = max(float(np.mean(u_t)) if u_t.size else 0.0, 1e-3 * v * s)
    tau2 = u / s ** 2
    sigma2 = max(v - s * tau2, 1e-3 * v)
    return sigma2, tau2


def bayes_ridge_alpha(data):
    """Data-driven ridge penalty alpha_t = sigma2_hat d / (N_t tau2_hat), one per task.

    It is the posterior-mean ridge for theta_t ~ N(0, tau^2 I_d / d) and noise sigma^2,
    with x of covariance s I; sigma2_hat and tau2_hat from :func:`moment_noise_signal`.
    """
    sigma2, tau2 = moment_noise_signal(data)
    return sigma2 * data.d / (data.N * tau2)


def w_ridge_penalty(data, k, w_ridge):
    """Per-task W-step penalties ``lambda_t = c / N_t`` (None when there is no ridge).

    ``c = w_ridge`` for a number; for ``"auto"`` the empirical-Bayes value
    ``c = sigma2_hat k / tau2_hat`` (prior w_t ~ N(0, (tau2_hat / k) I_k), i.e.
    E||B w_t||^2 = tau2_hat, noise sigma2_hat; see :func:`moment_noise_signal`).
    Returns ``(lambda, c)``.
    """
    if w_ridge is None:
        return None, 0.0
    if isinstance(w_ridge, str):
        if w_ridge != "auto":
            raise ValueError(f"w_ridge must be None, 'auto' or a number >= 0; got "
                             f"{w_ridge!r}")
        sigma2, tau2 = moment_noise_signal(data)
        c = sigma2 * k / tau2
    elif isinstance(w_ridge, numbers.Real) and not isinstance(w_ridge, bool) \
            and np.isfinite(w_ridge) and w_ridge >= 0:
        c = float(w_ridge)
    else:
        raise ValueError(f"w_ridge must be None, 'auto' or a number >= 0; got {w_ridge!r}")
    if c == 0:
        return None, 0.0
    return c / data.N, float(c)


def per_task_ridge(data, alpha):
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

