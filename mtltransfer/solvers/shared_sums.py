"""Per-task sums of the shared-representation model: its one statistics form.

:class:`TaskSums` holds, for each task label, sums over the task's rows

    n = N_t,  sx = sum x,  sy = sum y,  XtX = sum x x^T,  Xty = sum x y,  yty = sum y^2,

and for the noise moment of the W-step penalty (:func:`.shared_data.moment_noise_signal`)
``xx_yy = sum ||x||^2 y^2``, ``xx_y = sum ||x||^2 y``, ``xx = sum ||x||^2``,
``x_yy = sum x y^2``. Any Gaussian likelihood of ``y_t = X_t theta_t + eps_t`` depends on
the data through ``XtX``, ``Xty``, ``yty`` and ``n`` only, e.g.
``||y_t - X_t theta||^2 = yty[t] - 2 theta^T Xty[t] + theta^T XtX[t] theta``.

Sums of raw rows (not centred) are mergeable: the sums of two row sets (two chunks, two
partitions of a Dask DataFrame) add label by label, and a task may span row sets. The
sums of the rows centred within each task (a per-task intercept) are
:meth:`TaskSums.centred`, the same form, exact from the raw sums. Both the in-memory rows
(:meth:`TaskSums.from_rows`, :meth:`.shared_data.TaskData.sums`) and Dask produce it; the
solvers' problem objects are built from it (:meth:`.shared_data.TaskData.from_sums`,
:func:`.shared_marginal.sums_data`), and a fit's per-task residual and total sums of
squares are read from it.

The module also holds the row handling both forms share: validation, the one sort of
the rows by task, per-task segment sums and the size-bucketed padded blocks that batch
per-task d x d products.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["TaskSums", "as_float_matrix", "sort_rows_by_task", "padded_blocks",
           "task_moments"]

#: the sums, each of shape (T, ...)
SUM_NAMES = ("n", "sx", "sy", "XtX", "Xty", "yty", "xx_yy", "xx_y", "xx", "x_yy")


def as_float_matrix(a, name, ndim):
    """``a`` as a finite float array with ``ndim`` dimensions (TypeError/ValueError naming
    ``name`` otherwise)."""
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


def sort_rows_by_task(X, y, task):
    """Validated rows sorted by task label (a stable argsort, done once).

    Parameters
    ----------
    X : array_like, shape (n, d)
    y : array_like, shape (n,)
    task : array_like of int, shape (n,)
        Task label of each row, 0..T-1, every task present; need not be sorted.

    Returns
    -------
    order : ndarray of int, shape (n,)
        ``X_sorted = X[order]``.
    X, y, task : ndarray
        The rows sorted by task (copies: the caller's arrays are never modified).
    N : ndarray of int, shape (T,)
        Rows per task.
    """
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
    n = X.shape[0]
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
    return order, X[order], y[order], t[order], N


def padded_blocks(X, y, task, N, starts):
    """Tasks grouped by N_t rounded up to a power of two, rows zero-padded.

    ``X``, ``y``, ``task`` are rows sorted by task, ``N`` the counts and ``starts`` the
    first row of each task. Yields ``(tasks, Xp, yp)`` with Xp of shape (T_b, n_b, d).
    Zero rows change no cross-product, so batched per-task linear algebra can run on the
    padded blocks. The loop is over at most log2(max N_t) + 1 buckets.
    """
    N = np.asarray(N).astype(np.int64)
    T, d = N.shape[0], X.shape[1]
    bucket = np.ceil(np.log2(N)).astype(np.int64)
    pos = np.arange(X.shape[0]) - starts[task]
    for b in np.unique(bucket):
        tasks = np.flatnonzero(bucket == b)
        n_b = int(N[tasks].max())
        slot = np.full(T, -1)
        slot[tasks] = np.arange(tasks.size)
        rows = np.flatnonzero(slot[task] >= 0)
        Xp = np.zeros((tasks.size, n_b, d))
        yp = np.zeros((tasks.size, n_b))
        Xp[slot[task[rows]], pos[rows]] = X[rows]
        yp[slot[task[rows]], pos[rows]] = y[rows]
        yield tasks, Xp, yp


def task_moments(X, y, task, N, starts):
    """``X_t^T X_t`` (T x d x d), ``X_t^T y_t`` (T x d) and ``y_t^T y_t`` (T) of rows
    sorted by task: segment sums, the d x d products batched over padded blocks of
    tasks of similar size (no loop over tasks)."""
    XtX = np.empty((len(N), X.shape[1], X.shape[1]))
    for idx, Xp, _ in padded_blocks(X, y, task, N, starts):
        XtX[idx] = np.matmul(Xp.transpose(0, 2, 1), Xp)
    return (XtX, np.add.reduceat(X * y[:, None], starts, axis=0),
            np.add.reduceat(y ** 2, starts, axis=0))


class TaskSums:
    r"""Per-task sums of rows, by task label (see the module docstring).

    For task t with rows :math:`X_t` (:math:`N_t \times d`) and responses :math:`y_t`:
    ``XtX[t]`` :math:`= X_t^\top X_t`, ``Xty[t]`` :math:`= X_t^\top y_t`, ``yty[t]``
    :math:`= y_t^\top y_t`, ``n[t]`` :math:`= N_t`. Any Gaussian likelihood of
    :math:`y_t = X_t \theta_t + \varepsilon_t` (profiled or integrated over
    :math:`\theta_t = B w_t`) depends on the data through these only, e.g.
    :math:`\|y_t - X_t\theta\|^2 = y_t^\top y_t - 2\theta^\top X_t^\top y_t
    + \theta^\top X_t^\top X_t \theta`.

    Parameters
    ----------
    labels : array_like, shape (T,)
        The task of each entry.
    **sums : array_like
        One of each of ``n, sx, sy, XtX, Xty, yty, xx_yy, xx_y, xx, x_yy``.

    Attributes
    ----------
    labels : ndarray of object, shape (T,)
    n, sy, yty, xx_yy, xx_y, xx : ndarray, shape (T,)
        ``n`` are the row counts N_t (also as ``N``).
    sx, Xty, x_yy : ndarray, shape (T, d)
    XtX : ndarray, shape (T, d, d)
    centered : bool
        Sums of rows centred within each task (:meth:`centred`): not mergeable.
    """

    centered = False

    def __init__(self, labels, **sums):
        self.labels = np.asarray(labels, dtype=object)
        for name in SUM_NAMES:
            setattr(self, name, np.asarray(sums[name], dtype=float))

    @classmethod
    def empty(cls, d):
        """No row: every sum over zero tasks."""
        return cls(np.zeros(0, dtype=object), n=np.zeros(0), sx=np.zeros((0, d)),
                   sy=np.zeros(0), XtX=np.zeros((0, d, d)), Xty=np.zeros((0, d)),
                   yty=np.zeros(0), xx_yy=np.zeros(0), xx_y=np.zeros(0), xx=np.zeros(0),
                   x_yy=np.zeros((0, d)))

    @classmethod
    def from_rows(cls, X, y, labels):
        """The sums of some rows, tasks in order of first appearance of their labels
        (any hashable labels)."""
        codes, uniques = pd.factorize(labels)
        _, X, y, task, N = sort_rows_by_task(X, y, codes)
        return cls.from_sorted_rows(X, y, task, N, uniques)

    @classmethod
    def from_sorted_rows(cls, X, y, task, N, labels):
        """The sums of rows sorted by task (codes ``task``, counts ``N``, one label per
        task)."""
        starts = np.concatenate(([0], np.cumsum(N)[:-1])).astype(np.int64)
        XtX, Xty, yty = task_moments(X, y, task, N, starts)
        xx = np.sum(X ** 2, axis=1)
        seg = lambda A: np.add.reduceat(A, starts, axis=0)    # noqa: E731
        return cls(np.asarray(labels, dtype=object), n=N, sx=seg(X), sy=seg(y),
                   XtX=XtX, Xty=Xty, yty=yty, xx_yy=seg(xx * y ** 2), xx_y=seg(xx * y),
                   xx=seg(xx), x_yy=seg(X * (y ** 2)[:, None]))

    @property
    def T(self):
        """Number of tasks."""
        return len(self.labels)

    @property
    def d(self):
        """Number of predictors."""
        return self.sx.shape[1]

    @property
    def N(self):
        """Row counts N_t (the same array as ``n``)."""
        return self.n

    def __add__(self, other):
        """The sums of two row sets (a task may be in both)."""
        if self.centered or other.centered:
            raise ValueError("sums of rows centred within tasks do not add: add the raw "
                             "sums, then centre")
        if other.T == 0:
            return self
        if self.T == 0:
            return other
        union = pd.Index(self.labels).append(pd.Index(other.labels)).unique()
        ia, ib = union.get_indexer(self.labels), union.get_indexer(other.labels)
        out = {}
        for name in SUM_NAMES:
            a, b = getattr(self, name), getattr(other, name)
            arr = np.zeros((len(union),) + a.shape[1:])
            arr[ia] += a
            arr[ib] += b
            out[name] = arr
        return type(self)(np.asarray(union, dtype=object), **out)

    def sorted(self):
        """The same sums with the tasks in sorted label order (labels of mixed types
        sorted as strings, as pandas does)."""
        labels = pd.Index(self.labels)
        try:
            order = np.argsort(np.asarray(labels), kind="stable")
        except TypeError:
            order = np.argsort(np.asarray(labels.astype(str)), kind="stable")
        out = type(self)(self.labels[order],
                         **{name: getattr(self, name)[order] for name in SUM_NAMES})
        out.centered = self.centered
        return out

    def means(self):
        """Per-task means of the predictors (T x d) and of the response (T,)."""
        return self.sx / self.n[:, None], self.sy / self.n

    def exog_sd(self):
        """Standard deviation of each predictor over all rows (ddof 0)."""
        n = float(self.n.sum())
        mean = self.sx.sum(0) / n
        return np.sqrt(np.clip(np.einsum("tdd->d", self.XtX) / n - mean ** 2, 0, None))

    def centred(self):
        """The sums of the rows centred within each task, ``x - xbar_t``, ``y - ybar_t``
        (a per-task intercept), exact from these raw sums."""
        if self.centered:
            return self
        N = self.n
        xb, yb = self.means()
        xbxb = np.sum(xb ** 2, 1)
        out = type(self)(
            self.labels, n=N, sx=np.zeros_like(self.sx), sy=np.zeros_like(self.sy),
            XtX=self.XtX - N[:, None, None] * xb[:, :, None] * xb[:, None, :],
            Xty=self.Xty - (N * yb)[:, None] * xb,
            yty=self.yty - N * yb ** 2,
            # sum_i ||x_i - xb||^2 (y_i - yb)^2, expanded in the raw sums
            xx_yy=(self.xx_yy - 2 * yb * self.xx_y + yb ** 2 * self.xx
                   - 2 * np.sum(xb * self.x_yy, 1) + 4 * yb * np.sum(xb * self.Xty, 1)
                   - 2 * yb ** 2 * np.sum(xb * self.sx, 1)
                   + xbxb * (self.yty - 2 * yb * self.sy + N * yb ** 2)),
            # sum_i ||x_i - xb||^2 (y_i - yb)   (sum_i (y_i - yb) = 0)
            xx_y=(self.xx_y - yb * self.xx - 2 * np.sum(xb * self.Xty, 1)
                  + 2 * yb * np.sum(xb * self.sx, 1)),
            xx=self.xx - N * xbxb,
            # sum_i (x_i - xb) (y_i - yb)^2
            x_yy=(self.x_yy - 2 * yb[:, None] * self.Xty + (yb ** 2)[:, None] * self.sx
                  - xb * (self.yty - 2 * yb * self.sy + N * yb ** 2)[:, None]))
        out.centered = True
        return out

    def task_ssr(self, theta, b):
        """``sum_i (y_i - b_t - x_i^T theta_t)^2`` per task, from the sums
        (``theta`` T x d, ``b`` T)."""
        return (self.yty - 2 * np.sum(theta * self.Xty, 1) - 2 * b * self.sy
                + np.einsum("td,tde,te->t", theta, self.XtX, theta)
                + 2 * b * np.sum(theta * self.sx, 1) + self.n * b ** 2)

    def task_tss(self, center):
        """Total sum of squares of the response per task (about its task mean when
        ``center``)."""
        return self.yty - (self.sy ** 2 / self.n if center else 0.0)
