"""Sufficient statistics of a multi-response linear regression.

Every estimator of the package fits from

    n,  x_sum = X^T 1,  y_sum = Y^T 1,  XtX = X^T X,  XtY = X^T Y,  YtY = Y^T Y,

gathered in one pass over the rows (or chunk by chunk, for data larger than memory). From
them, the centred and scaled moments used by the solvers are

    Sxx = (X - 1 xbar^T)^T (X - 1 xbar^T) / n = XtX / n - xbar xbar^T
    Sxy = XtY / n - xbar ybar^T,          Syy = YtY / n - ybar ybar^T,

so that (1/2n) ||Y_c - X_c C||_F^2 = tr(Syy)/2 - <Sxy, C> + <Sxx C, C>/2 for every C.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SufficientStats:
    """Cross products of (X, Y), additive over disjoint sets of rows.

    Attributes
    ----------
    n : int
        Number of rows.
    x_sum : ndarray, shape (p,)
    y_sum : ndarray, shape (q,)
    XtX : ndarray, shape (p, p)
    XtY : ndarray, shape (p, q)
    YtY : ndarray, shape (q, q)
    """

    n: int
    x_sum: np.ndarray
    y_sum: np.ndarray
    XtX: np.ndarray
    XtY: np.ndarray
    YtY: np.ndarray

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_arrays(cls, X, Y):
        """Statistics of the rows of ``X`` (n x p) and ``Y`` (n x q), in one pass."""
        X = np.asarray(X, dtype=float)
        Y = np.asarray(Y, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        if X.ndim != 2 or X.shape[0] != Y.shape[0]:
            raise ValueError(f"X and Y must have the same number of rows; got X {X.shape}, "
                             f"Y {Y.shape}")
        return cls(X.shape[0], X.sum(0), Y.sum(0), X.T @ X, X.T @ Y, Y.T @ Y)

    @classmethod
    def from_chunks(cls, chunks):
        """Accumulate statistics over an iterable of ``(X_chunk, Y_chunk)`` pairs.

        Each chunk may be a pair of arrays or of DataFrames; only one chunk is held in
        memory at a time.
        """
        total = None
        for i, chunk in enumerate(chunks):
            try:
                Xc, Yc = chunk
            except (TypeError, ValueError):
                raise TypeError(f"chunks must yield (X, Y) pairs; chunk {i} is "
                                f"{type(chunk).__name__}") from None
            part = cls.from_arrays(Xc, Yc)
            total = part if total is None else total + part
        if total is None:
            raise ValueError("chunks is empty: no rows to compute statistics from")
        return total

    def __add__(self, other):
        return SufficientStats(self.n + other.n, self.x_sum + other.x_sum,
                               self.y_sum + other.y_sum, self.XtX + other.XtX,
                               self.XtY + other.XtY, self.YtY + other.YtY)

    def __sub__(self, other):
        return SufficientStats(self.n - other.n, self.x_sum - other.x_sum,
                               self.y_sum - other.y_sum, self.XtX - other.XtX,
                               self.XtY - other.XtY, self.YtY - other.YtY)

    # -- derived moments --------------------------------------------------------------
    @property
    def p(self):
        return self.XtX.shape[0]

    @property
    def q(self):
        return self.YtY.shape[0]

    @property
    def x_mean(self):
        return self.x_sum / self.n

    @property
    def y_mean(self):
        return self.y_sum / self.n

    def moments(self, center=True):
        """Return ``(Sxx, Sxy, Syy)``: cross products divided by n, centred if asked.

        With ``center=True`` these are the moments of the column-centred data (the model
        has an intercept); otherwise the raw second moments.
        """
        n = self.n
        Sxx, Sxy, Syy = self.XtX / n, self.XtY / n, self.YtY / n
        if center:
            xm, ym = self.x_mean, self.y_mean
            Sxx = Sxx - np.outer(xm, xm)
            Sxy = Sxy - np.outer(xm, ym)
            Syy = Syy - np.outer(ym, ym)
        # symmetrise away rounding so eigen-solvers see exactly symmetric matrices
        return (Sxx + Sxx.T) / 2, Sxy, (Syy + Syy.T) / 2


def quadratic_loss(Sxx, Sxy, Syy, C):
    """(1/2n)||Y - X C||_F^2 from the moments: tr(Syy)/2 - <Sxy, C> + <Sxx C, C>/2."""
    return 0.5 * np.trace(Syy) - np.sum(Sxy * C) + 0.5 * np.sum((Sxx @ C) * C)



def kfold_stats(X, Y, n_folds=5, seed=0):
    """Per-fold sufficient statistics of a fixed-seed random K-fold partition of the rows.

    The partition is ``numpy.random.default_rng(seed).permutation(n)`` cut into
    ``n_folds`` near-equal contiguous blocks: deterministic, and not fooled by sorted rows.
    Training statistics of fold k are ``total - folds[k]`` (additivity), so
    cross-validation never touches the rows again.

    Returns
    -------
    list of SufficientStats
        One per fold (the held-out rows).
    """
    X = np.asarray(X, float)
    Y = np.asarray(Y, float)
    if Y.ndim == 1:
        Y = Y[:, None]
    n = X.shape[0]
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or \
            not 2 <= n_folds <= n:
        raise ValueError(f"n_folds must be an integer in [2, n={n}]; got {n_folds!r}")
    perm = np.random.default_rng(seed).permutation(n)
    return [SufficientStats.from_arrays(X[idx], Y[idx])
            for idx in np.array_split(perm, n_folds)]


def total_stats(folds):
    """The sum of a list of statistics (all rows of all folds)."""
    total = folds[0]
    for f in folds[1:]:
        total = total + f
    return total


def validation_loss(fold, train, C, center=True):
    """Mean squared prediction error per row on ``fold`` of a fit ``C`` on ``train``.

    Predictions are ``ybar_train + (x - xbar_train)^T C`` (``center=True``) or ``x^T C``;
    with ``a = ybar_train`` and ``b = xbar_train`` the error
    ``sum_i ||y_i - yhat_i||^2 / n_fold`` is, from the fold's statistics,
    ``[tr(YtY) - 2 a.y_sum + n a.a - 2 <XtY - x_sum a^T - b y_sum^T + n b a^T, C>
    + <(XtX - x_sum b^T - b x_sum^T + n b b^T) C, C>] / n``.
    """
    nf = fold.n
    if center:
        a, b = train.y_mean, train.x_mean
    else:
        a, b = np.zeros(fold.q), np.zeros(fold.p)
    tyy = np.trace(fold.YtY) - 2 * a @ fold.y_sum + nf * a @ a
    Sxy = fold.XtY - np.outer(fold.x_sum, a) - np.outer(b, fold.y_sum) + nf * np.outer(b, a)
    Sxx = fold.XtX - np.outer(fold.x_sum, b) - np.outer(b, fold.x_sum) + nf * np.outer(b, b)
    return float((tyy - 2 * np.sum(Sxy * C) + np.sum((Sxx @ C) * C)) / nf)
