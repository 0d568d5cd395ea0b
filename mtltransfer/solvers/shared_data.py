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
TaskStats, task_statistics   the per-task sufficient statistics (X_t^T X_t, X_t^T y_t,
                             y_t^T y_t, N_t): all any Gaussian likelihood of the model needs
TaskData                     validated rows sorted by task; L, its gradients, the W-step
                             normal equations
solve_w                      the batched (ridge) W-step
w_ridge_penalty              the W-step penalty lambda_t = c / N_t
per_task_ridge               per-task ridge estimates (baseline and spectral start)

The estimator is in :mod:`.shared_fit`, the choice of k in :mod:`.shared_select`, the
baselines (per task, nuclear norm) and the new-task fit in :mod:`.shared_baselines`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["TaskStats", "task_statistics", "TaskData", "solve_w", "w_ridge_penalty",
           "per_task_ridge", "moment_noise_signal", "bayes_ridge_alpha",
           "as_float_matrix", "check_k", "problem_data"]

# per-task d x d moments are formed only when they are smaller than the rows and fit here
_STATS_MAX_BYTES = 2 * 2**30


# ---------------------------------------------------------------------------------------
# input handling and the two ways of evaluating the loss (rows / per-task moments)
# ---------------------------------------------------------------------------------------

def as_float_matrix(a, name, ndim):
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


@dataclass(frozen=True)
class TaskStats:
    r"""The per-task sufficient statistics of the Gaussian shared-representation model.

    For task t with rows :math:`X_t` (:math:`N_t \times d`) and responses :math:`y_t`:
    ``XtX[t]`` :math:`= X_t^\top X_t`, ``Xty[t]`` :math:`= X_t^\top y_t`, ``yty[t]``
    :math:`= y_t^\top y_t`, ``n[t]`` :math:`= N_t`.

    Any Gaussian likelihood of :math:`y_t = X_t \theta_t + \varepsilon_t` (profiled or
    integrated over :math:`\theta_t = B w_t`) depends on the data through these only, e.g.
    :math:`\|y_t - X_t\theta\|^2 = y_t^\top y_t - 2\theta^\top X_t^\top y_t
    + \theta^\top X_t^\top X_t \theta`.

    Attributes
    ----------
    XtX : ndarray, shape (T, d, d)
    Xty : ndarray, shape (T, d)
    yty : ndarray, shape (T,)
    n : ndarray of float, shape (T,)
        Row counts N_t (every task has at least one row).
    """

    XtX: np.ndarray
    Xty: np.ndarray
    yty: np.ndarray
    n: np.ndarray

    @property
    def T(self):
        """Number of tasks."""
        return self.n.shape[0]

    @property
    def d(self):
        """Number of predictors."""
        return self.Xty.shape[1]


def task_statistics(X, y, task, *, center=False):
    r"""Per-task statistics :math:`X_t^\top X_t, X_t^\top y_t, y_t^\top y_t, N_t`.

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
    TaskStats
    """
    return TaskData(X, y, task, center=center, route="rows").statistics()


class TaskData:
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
        X = as_float_matrix(X, "X", 2)
        y = as_float_matrix(y, "y", 1)
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
            st = self.statistics()
            self.S = st.XtX                      # owned here: divided in place
            self.S /= self.N[:, None, None]
            self.s = st.Xty / self.N[:, None]
            self.q = st.yty / self.N

    @classmethod
    def from_statistics(cls, stats, cross):
        """Per-task statistics in place of rows (route ``"stats"``): what the solvers need
        when the rows are elsewhere (e.g. reduced from the partitions of a Dask
        DataFrame).

        Parameters
        ----------
        stats : TaskStats
            Of the rows as fitted (already centred within each task for a per-task
            intercept).
        cross : ndarray, shape (T,)
            ``sum_i ||x_ti||^2 y_ti^2`` per task, of the same rows (the one fourth-order
            moment used, by :func:`moment_noise_signal`).
        """
        self = cls.__new__(cls)
        self.T, self.d = stats.T, stats.d
        self.N = np.asarray(stats.n, dtype=float).copy()
        if np.any(self.N <= 0):
            raise ValueError("every task must have at least one row")
        self.n = int(round(float(self.N.sum())))
        self.X = self.y = self.task = self.order = self.starts = self.inv_N_row = None
        self._Sigma = None
        self.route = "stats"
        self.S = stats.XtX / self.N[:, None, None]
        self.s = stats.Xty / self.N[:, None]
        self.q = stats.yty / self.N
        self.cross = np.asarray(cross, dtype=float)
        return self

    def statistics(self):
        """The per-task sufficient statistics of these rows (:class:`TaskStats`)."""
        if self.X is None:                        # built from statistics
            return TaskStats(XtX=self.S * self.N[:, None, None],
                             Xty=self.s * self.N[:, None], yty=self.q * self.N,
                             n=self.N.copy())
        XtX = np.empty((self.T, self.d, self.d))
        for idx, Xp, _ in self.blocks():              # loop over size buckets, not tasks
            XtX[idx] = np.matmul(Xp.transpose(0, 2, 1), Xp)
        return TaskStats(XtX=XtX, Xty=self.segsum(self.X * self.y[:, None]),
                         yty=self.segsum(self.y ** 2), n=self.N.copy())

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

