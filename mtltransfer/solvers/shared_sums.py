"""Per-task raw sums of the shared-representation model: the one mergeable form.

:class:`TaskSums` holds, for each task label, sums of the rows that are *not* centred,
so that the sums of two row sets (two chunks, two partitions of a Dask DataFrame) add
label by label, a task may span row sets, and nothing needs the rows again:

    n = N_t,  sx = sum x,  sy = sum y,  XtX = sum x x^T,  Xty = sum x y,  yty = sum y^2,

and for the noise moment of the W-step penalty (:func:`.shared_data.moment_noise_signal`)
``xx_yy = sum ||x||^2 y^2``, ``xx_y = sum ||x||^2 y``, ``xx = sum ||x||^2``,
``x_yy = sum x y^2``. Every other per-task form is derived from it: the centred
:class:`~.shared_data.TaskStats` (:meth:`TaskSums.task_stats`), the solvers' problem
objects (:meth:`.shared_data.TaskData.from_statistics` and
:func:`.shared_marginal.sums_data`), and the per-task residual and total sums of squares
of a fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .shared_data import TaskData, TaskStats

__all__ = ["TaskSums"]

#: the sums, each of shape (T, ...)
SUM_NAMES = ("n", "sx", "sy", "XtX", "Xty", "yty", "xx_yy", "xx_y", "xx", "x_yy")


class TaskSums:
    """Raw per-task sums of rows, by task label (see the module docstring).

    Attributes
    ----------
    labels : ndarray of object, shape (T,)
    n, sy, yty, xx_yy, xx_y, xx : ndarray, shape (T,)
    sx, Xty, x_yy : ndarray, shape (T, d)
    XtX : ndarray, shape (T, d, d)
    """

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
        """The sums of some rows: rows sorted by task once, d x d products batched over
        tasks of similar size (:meth:`TaskData.statistics`)."""
        codes, uniques = pd.factorize(labels)
        td = TaskData(X, y, codes, route="rows")
        st = td.statistics()
        xx = np.sum(td.X ** 2, axis=1)
        return cls(np.asarray(uniques, dtype=object), n=td.N, sx=td.segsum(td.X),
                   sy=td.segsum(td.y), XtX=st.XtX, Xty=st.Xty, yty=st.yty,
                   xx_yy=td.segsum(xx * td.y ** 2), xx_y=td.segsum(xx * td.y),
                   xx=td.segsum(xx), x_yy=td.segsum(td.X * (td.y ** 2)[:, None]))

    @property
    def T(self):
        return len(self.labels)

    @property
    def d(self):
        return self.sx.shape[1]

    def __add__(self, other):
        """The sums of two row sets (a task may be in both)."""
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
        return type(self)(self.labels[order],
                          **{name: getattr(self, name)[order] for name in SUM_NAMES})

    def means(self):
        """Per-task means of the predictors (T x d) and of the response (T,)."""
        return self.sx / self.n[:, None], self.sy / self.n

    def exog_sd(self):
        """Standard deviation of each predictor over all rows (ddof 0)."""
        n = float(self.n.sum())
        mean = self.sx.sum(0) / n
        return np.sqrt(np.clip(np.einsum("tdd->d", self.XtX) / n - mean ** 2, 0, None))

    def task_stats(self, center):
        """Per-task statistics of the rows as fitted (centred within each task when
        ``center``): (:class:`TaskStats`, ``sum_i ||x_i||^2 y_i^2`` per task of those
        rows)."""
        N = self.n
        if not center:
            return TaskStats(self.XtX, self.Xty, self.yty, N), self.xx_yy
        xb, yb = self.means()
        XtX = self.XtX - N[:, None, None] * xb[:, :, None] * xb[:, None, :]
        Xty = self.Xty - (N * yb)[:, None] * xb
        yty = self.yty - N * yb ** 2
        # sum_i ||x_i - xb||^2 (y_i - yb)^2, expanded in the raw sums
        xbxb = np.sum(xb ** 2, 1)
        cross = (self.xx_yy - 2 * yb * self.xx_y + yb ** 2 * self.xx
                 - 2 * np.sum(xb * self.x_yy, 1) + 4 * yb * np.sum(xb * self.Xty, 1)
                 - 2 * yb ** 2 * np.sum(xb * self.sx, 1)
                 + xbxb * (self.yty - 2 * yb * self.sy + N * yb ** 2))
        return TaskStats(XtX, Xty, yty, N), cross

    def task_ssr(self, theta, b):
        """``sum_i (y_i - b_t - x_i^T theta_t)^2`` per task, from the raw sums
        (``theta`` T x d, ``b`` T)."""
        return (self.yty - 2 * np.sum(theta * self.Xty, 1) - 2 * b * self.sy
                + np.einsum("td,tde,te->t", theta, self.XtX, theta)
                + 2 * b * np.sum(theta * self.sx, 1) + self.n * b ** 2)

    def task_tss(self, center):
        """Total sum of squares of the response per task (about its task mean when
        ``center``)."""
        return self.yty - (self.sy ** 2 / self.n if center else 0.0)
