"""The marginal-likelihood solver's data: stacked rows, per-task sums, or per-task
statistics in a reduced basis (the three problem objects of
:mod:`mtltransfer.solvers.shared_marginal`).

Each gives the solver ``proj(B)`` (``M_t = B^T S_t B``, ``m_t = B^T b_t``),
``resid_ops`` and ``apply`` (the B-step's ``sum_t S_t D P_t``), ``G = sum_t S_t`` and
the per-task ``c_t``, ``N_t``: :class:`RowsData` from the rows (touched through ``X B``
and ``X^T (n x k)`` products), :class:`SumsData` from raw per-task sums
(:class:`~mtltransfer.solvers.shared_sums.TaskSums`, e.g. reduced over the partitions
of a Dask DataFrame), :class:`ReducedStats` from ``U^T S_t U`` in a K-dimensional basis
(the k screening of :func:`~mtltransfer.solvers.shared_marginal.select_k_marginal`).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg, sparse

__all__ = ["RowsData", "SumsData", "ReducedStats", "rows_data", "sums_data", "center_AB",
           "CHUNK"]

#: rows per chunk of a pass over the rows (bounded working memory)
CHUNK = 1 << 16


class RowsData:
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
        for s in range(0, n, CHUNK):
            Xc = X[s:s + CHUNK]
            G += Xc.T @ Xc
        #: columns constant within every task (with a per-task intercept their
        #: coefficients are not identified): their centred moments are rounding noise,
        #: set to zero so that equilibration cannot blow them up to unit scale
        self.const_within = np.zeros(0, dtype=np.int64)
        if center:
            between = np.einsum("td,td,t->d", self.xbar, self.xbar, N)
            G -= self.xbar.T @ (N[:, None] * self.xbar)
            within = np.diag(G).copy()
            self.const_within = np.flatnonzero(within <= 1e-12 * (within + between))
            G[self.const_within, :] = 0.0
            G[:, self.const_within] = 0.0
        self.G = (G + G.T) / 2
        self.D = np.ones(d)

    def equilibrate(self):
        """Work in equilibrated coordinates ``x_s = x / D`` from now on (D the columns'
        root mean squares, centred within tasks with an intercept; once): G and xbar are
        rescaled here, and ``proj``, ``_xt`` read the rows through ``B / D``, so no
        scaled copy of X is made. The model is invariant to the scale of the columns
        (``theta = D^{-1} theta_s``; the rank-k Gaussian family of theta is closed under
        the map), so the fit is the same, while the preconditioner and the spectral start
        no longer see columns whose scales differ by orders of magnitude.
        :func:`_result` maps the solution back. Returns self."""
        if getattr(self, "_equilibrated", False):
            return self
        g = np.clip(np.diag(self.G), 0.0, None) / max(float(np.sum(self.n_eff)), 1.0)
        D = np.sqrt(g)
        D = np.where(D > 0, D, 1.0)
        self.D = D
        self.G = self.G / np.outer(D, D)
        if self.center:
            self.xbar = self.xbar / D
        self.__dict__.pop("_Gi", None)
        self.__dict__.pop("_last_proj", None)
        self._equilibrated = True
        return self

    @property
    def Gi(self):
        """(sum_t S_t / n)^+ (cached), the preconditioner of the B-step."""
        if not hasattr(self, "_Gi"):
            self._Gi = linalg.pinvh(self.G / float(np.sum(self.n_eff)))
        return self._Gi

    def _chunks(self):
        """Row chunks (bounded working memory)."""
        return [(s, min(s + CHUNK, self.n)) for s in range(0, self.n, CHUNK)]

    def proj(self, B):
        """M_t = B^T S_t B (T x k x k), m_t = B^T b_t (T x k); the cache is B (the last
        result is kept for a repeated call with the same array)."""
        last = getattr(self, "_last_proj", None)
        if last is not None and last[0] is B:
            return last[1]
        out = self._proj(B)
        self._last_proj = (B, out)
        return out

    def _blocks(self):
        """Blocks of whole tasks with equal N_t (at most about CHUNK rows each): (rows,
        tasks, N) with rows a slice when the block's rows are contiguous in task order,
        else their indices; per-task products are then batched matrix products."""
        if hasattr(self, "_blk"):
            return self._blk
        t, Ni = self.task, self.N.astype(np.int64)
        in_order = bool(np.all(t[1:] >= t[:-1]))
        order = None if in_order else np.argsort(t, kind="stable")
        starts = np.concatenate([[0], np.cumsum(Ni)[:-1]])
        blocks = []
        for Nv in np.unique(Ni):
            tasks = np.flatnonzero(Ni == Nv)
            per = max(1, CHUNK // int(Nv))
            for j in range(0, len(tasks), per):
                tb = tasks[j:j + per]
                if in_order and tb[-1] - tb[0] == len(tb) - 1:
                    rows = slice(int(starts[tb[0]]), int(starts[tb[0]] + len(tb) * Nv))
                    tb = slice(int(tb[0]), int(tb[-1]) + 1)
                else:
                    rows = (starts[tb][:, None] + np.arange(Nv)).ravel()
                    rows = rows if order is None else order[rows]
                blocks.append((rows, tb, int(Nv)))
        self._blk = blocks
        return blocks

    def _proj(self, B):
        k = B.shape[1]
        M = np.empty((self.T, k, k))
        m = np.empty((self.T, k))
        Bs = B / self.D[:, None]                        # X_s B = X (B / D)
        for rows, tb, Nv in self._blocks():
            Z = (self.X[rows] @ Bs).reshape(-1, Nv, k)
            Zt = Z.transpose(0, 2, 1)
            M[tb] = Zt @ Z
            m[tb] = (Zt @ self.y[rows].reshape(-1, Nv, 1))[:, :, 0]
        return self._centred(M, m, B)

    def _centred(self, M, m, B):
        """With an intercept, the raw M_t, m_t less their task-mean terms:
        M_t - N_t (xbar_t B)^T (xbar_t B), m_t - N_t ybar_t (xbar_t B)^T."""
        if self.center:
            zb = self.xbar @ B
            M -= self.N[:, None, None] * zb[:, :, None] * zb[:, None, :]
            m -= (self.N * self.ybar)[:, None] * zb
        return M, m, B

    def _xt(self, B, P, Wbar=None):
        """X^T [y * wbar_task, (X B)_i P_task] over row chunks."""
        k = B.shape[1]
        Bs = B / self.D[:, None]                        # X_s B = X (B / D)
        out = np.zeros((self.d, 2 * k if Wbar is not None else k))
        for s, e in self._chunks():
            Xc, tc = self.X[s:e], self.task[s:e]
            ZP = np.einsum("ik,ikl->il", Xc @ Bs, np.take(P, tc, axis=0))
            if Wbar is not None:
                out[:, :k] += Xc.T @ (self.y[s:e, None] * np.take(Wbar, tc, axis=0))
            out[:, -k:] += Xc.T @ ZP
        return out / self.D[:, None]                    # X_s^T v = (X^T v) / D

    def resid_ops(self, B, Wbar, P):
        """R = sum_t b_t wbar_t^T and A(B) = sum_t S_t B P_t (uncentred), one pass."""
        k = B.shape[1]
        out = self._xt(B, P, Wbar)
        R, AB = out[:, :k], out[:, k:]            # AB is centred by center_AB
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


class SumsData(RowsData):
    """The solver's data from per-task sums (:class:`~.shared_sums.TaskSums`) instead of
    rows.

    The same quantities as from the rows: ``M_t = B^T S_t B``, ``m_t = B^T b_t``
    (raw ``S_t = X_t^T X_t``, ``b_t = X_t^T y_t``, less ``N_t xbar_t xbar_t^T`` terms
    with an intercept), ``G = sum_t S_t``; the spectral start's fourth moment
    ``sum_i w_t y_i^2 x_i x_i^T`` (``w_t = 1 / (N_t (N_t - 1))``) from ``spectral(w)``,
    one more pass over wherever the rows are.
    """

    def __init__(self, sums, center, spectral):
        self.S, self.bt = sums.XtX, sums.Xty
        self.T, self.d = self.bt.shape
        self.N = sums.n.astype(float)
        self.n = int(round(float(self.N.sum())))
        self.center = bool(center)
        self.n_eff = self.N - 1.0 if center else self.N.copy()
        self.c = sums.yty.copy()
        if center:
            self.xbar = sums.sx / self.N[:, None]
            self.ybar = sums.sy / self.N
            self.c = self.c - self.N * self.ybar ** 2
        G = self.S.sum(axis=0)
        if center:
            G -= self.xbar.T @ (self.N[:, None] * self.xbar)
        self.G = (G + G.T) / 2
        self.D = np.ones(self.d)
        self._spectral = spectral

    # the solver may equilibrate (RowsData.equilibrate: G and xbar rescaled, D set); the
    # raw sums S_t, b_t are read through B / D, as the rows are
    def proj(self, B):
        Bs = B / self.D[:, None]
        SB = self.S @ Bs                                 # T x d x k
        M = np.matmul(Bs.T, SB)
        M = 0.5 * (M + np.swapaxes(M, 1, 2))
        return self._centred(M, self.bt @ Bs, B)

    def _xt(self, B, P, Wbar=None):
        Bs = B / self.D[:, None]
        AB = np.einsum("tdk,tkl->dl", self.S @ Bs, P)    # sum_t S_t B P_t
        out = AB if Wbar is None else np.hstack([self.bt.T @ Wbar, AB])
        return out / self.D[:, None]

    def spectral_moment(self):
        N, D = self.N, self.D
        wt = np.where(N > 1, 1.0 / (N * np.maximum(N - 1, 1)), 0.0)
        bt = self.bt / D
        if self.center:
            bt = bt - (N * self.ybar)[:, None] * self.xbar
        return bt.T @ (wt[:, None] * bt) - self._spectral(wt) / np.outer(D, D)


def rows_data(X, y, task, center):
    """The solver's data from stacked rows (``fit_marginal(rows_data(...), k=k)``)."""
    return RowsData(X, y, task, center)


def sums_data(sums, center, spectral):
    """The solver's data from per-task sums (:class:`~.shared_sums.TaskSums`);
    ``spectral(w)`` returns ``sum_i w[task_i] y_i^2 x_i x_i^T`` (the spectral start's
    one fourth-order moment, a pass over wherever the rows are)."""
    return SumsData(sums, center, spectral)


def center_AB(data, B, P, AB):
    """``A(B)`` of the rows centred within tasks (rows data with an intercept)."""
    if data.center and isinstance(data, RowsData):
        zb = data.xbar @ B
        AB = AB - data.xbar.T @ (data.N[:, None] * np.einsum("tk,tkl->tl", zb, P))
    return AB


class ReducedStats:
    """Per-task statistics S_t (T x K x K), b_t, c_t in a K-dimensional basis."""

    def __init__(self, S, b, c, n_eff):
        self.S, self.b, self.c, self.n_eff = S, b, c, n_eff
        self.T, self.d = b.shape
        self.center = False
        self.G = S.sum(0)
        self.N = n_eff
        Gn = self.G / float(np.sum(n_eff))
        try:                                 # positive definite in a spectral basis
            self.Gi = np.linalg.inv(Gn)
        except np.linalg.LinAlgError:
            self.Gi = linalg.pinvh(Gn)

    # batched products as single matrix products over the stacked tasks
    def _SD(self, D):
        T, K = self.T, self.d
        return (self.S.reshape(T * K, K) @ D).reshape(T, K, D.shape[1])

    @staticmethod
    def _sum_SDP(SD, P):
        """sum_t SD_t P_t."""
        T, K, k = SD.shape
        return SD.transpose(1, 0, 2).reshape(K, T * k) @ P.reshape(T * k, k)

    def proj(self, B):
        SB = self._SD(B)
        T, K, k = SB.shape
        M = (SB.transpose(0, 2, 1).reshape(T * k, K) @ B).reshape(T, k, k)
        return M, self.b @ B, SB

    def resid_ops(self, SB, Wbar, P):
        return self.b.T @ Wbar, self._sum_SDP(SB, P)

    def apply(self, D, P):
        return self._sum_SDP(self._SD(D), P)
