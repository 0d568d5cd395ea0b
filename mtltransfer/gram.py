"""Sufficient statistics of a multi-response linear regression.

Every estimator of the package fits from the number of rows, the column means and the
centred cross products

    n,  xbar,  ybar,  Cxx = sum_i (x_i - xbar)(x_i - xbar)^T,  Cxy = sum_i (x_i - xbar)(y_i - ybar)^T,
    Cyy = sum_i (y_i - ybar)(y_i - ybar)^T,

gathered in one pass over the rows (or chunk by chunk, for data larger than memory). They
are kept centred, not as raw sums X^T X, because ``X^T X / n - xbar xbar^T`` cancels
catastrophically when a predictor's mean is large against its spread (a year, a
price level). Two sets of rows merge exactly (Chan, Golub and LeVeque, 1979):

    n = n_a + n_b,   delta = xbar_b - xbar_a,
    Cxx = Cxx_a + Cxx_b + (n_a n_b / n) delta delta^T      (likewise Cxy, Cyy),

and the same identity, solved for one part, gives the statistics of "all rows but a fold".
The moments used by the solvers are

    Sxx = Cxx / n,   Sxy = Cxy / n,   Syy = Cyy / n            (model with an intercept)
    Sxx = Cxx / n + xbar xbar^T, ...                             (model without one)

so that (1/2n) ||Y_c - X_c C||_F^2 = tr(Syy)/2 - <Sxy, C> + <Sxx C, C>/2 for every C.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SufficientStats:
    """Means and centred cross products of (X, Y); exactly mergeable over row sets.

    Attributes
    ----------
    n : int or float
        Number of rows (for weighted statistics, the total weight).
    x_mean : ndarray, shape (p,)
    y_mean : ndarray, shape (q,)
    Cxx : ndarray, shape (p, p)
        sum_i (x_i - xbar)(x_i - xbar)^T.
    Cxy : ndarray, shape (p, q)
    Cyy : ndarray, shape (q, q)

    Examples
    --------
    >>> import numpy as np
    >>> import mtltransfer as mt
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((100, 3)), rng.standard_normal((100, 2))
    >>> s = mt.SufficientStats.from_arrays(X, Y)
    >>> (s.p, s.q)
    (3, 2)
    """

    n: int
    x_mean: np.ndarray
    y_mean: np.ndarray
    Cxx: np.ndarray
    Cxy: np.ndarray
    Cyy: np.ndarray

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_arrays(cls, X, Y, weights=None):
        """Statistics of the rows of ``X`` (n x p) and ``Y`` (n x q), in one pass.

        ``weights`` (n,), positive: observation weights (as WLS). ``n`` is then their
        sum, the means are weighted and the cross products ``sum_i w_i (x_i - xbar)
        (x_i - xbar)^T``: every identity above holds with ``n`` the total weight, so
        the moments are those of the weighted loss ``(1/2 sum w) sum_i w_i ||r_i||^2``.
        """
        if weights is not None:
            return cls._weighted(X, Y, weights)
        X = np.asarray(X, dtype=float)
        Y = np.asarray(Y, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        if X.ndim != 2 or X.shape[0] != Y.shape[0]:
            raise ValueError(f"X and Y must have the same number of rows; got X {X.shape}, "
                             f"Y {Y.shape}")
        n = X.shape[0]
        if n == 0:
            return cls(0, np.zeros(X.shape[1]), np.zeros(Y.shape[1]),
                       np.zeros((X.shape[1],) * 2), np.zeros((X.shape[1], Y.shape[1])),
                       np.zeros((Y.shape[1],) * 2))
        xm, ym = X.mean(0), Y.mean(0)
        Xc, Yc = X - xm, Y - ym
        return cls(n, xm, ym, Xc.T @ Xc, Xc.T @ Yc, Yc.T @ Yc)

    @classmethod
    def _weighted(cls, X, Y, weights):
        X = np.asarray(X, dtype=float)
        Y = np.asarray(Y, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        w = np.asarray(weights, dtype=float).ravel()
        if X.ndim != 2 or not X.shape[0] == Y.shape[0] == len(w):
            raise ValueError(f"X, Y and weights must have the same number of rows; got X "
                             f"{X.shape}, Y {Y.shape}, weights {w.shape}")
        total = float(w.sum())
        if X.shape[0] == 0 or total == 0:
            return cls.from_arrays(X[:0], Y[:0])
        xm, ym = w @ X / total, w @ Y / total
        Xc, Yc = X - xm, Y - ym
        Xw = Xc * w[:, None]
        return cls(total, xm, ym, Xw.T @ Xc, Xw.T @ Yc, (Yc * w[:, None]).T @ Yc)

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
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        dx, dy = other.x_mean - self.x_mean, other.y_mean - self.y_mean
        w = self.n * other.n / n
        return SufficientStats(n, self.x_mean + dx * (other.n / n),
                               self.y_mean + dy * (other.n / n),
                               self.Cxx + other.Cxx + w * np.outer(dx, dx),
                               self.Cxy + other.Cxy + w * np.outer(dx, dy),
                               self.Cyy + other.Cyy + w * np.outer(dy, dy))

    def __sub__(self, other):
        """Statistics of the rows of ``self`` that are not in ``other`` (a subset)."""
        m = self.n - other.n
        if m < 0:
            raise ValueError("cannot remove more rows than the statistics hold")
        if other.n == 0:
            return self
        if m == 0:
            return SufficientStats.from_arrays(np.zeros((0, self.p)), np.zeros((0, self.q)))
        # the remaining rows' means, then Chan's identity solved for their cross products
        xm = (self.n * self.x_mean - other.n * other.x_mean) / m
        ym = (self.n * self.y_mean - other.n * other.y_mean) / m
        dx, dy = other.x_mean - xm, other.y_mean - ym
        w = m * other.n / self.n
        return SufficientStats(m, xm, ym, self.Cxx - other.Cxx - w * np.outer(dx, dx),
                               self.Cxy - other.Cxy - w * np.outer(dx, dy),
                               self.Cyy - other.Cyy - w * np.outer(dy, dy))

    # -- derived quantities -----------------------------------------------------------
    @property
    def p(self):
        return self.Cxx.shape[0]

    @property
    def q(self):
        return self.Cyy.shape[0]

    @property
    def x_sum(self):
        return self.n * self.x_mean

    @property
    def y_sum(self):
        return self.n * self.y_mean

    @property
    def XtX(self):
        """Raw X^T X (derived; prefer the centred ``Cxx``)."""
        return self.Cxx + self.n * np.outer(self.x_mean, self.x_mean)

    @property
    def XtY(self):
        return self.Cxy + self.n * np.outer(self.x_mean, self.y_mean)

    @property
    def YtY(self):
        return self.Cyy + self.n * np.outer(self.y_mean, self.y_mean)

    def moments(self, center=True):
        """Return ``(Sxx, Sxy, Syy)``: cross products divided by n, centred if asked.

        With ``center=True`` these are the moments of the column-centred data (the model
        has an intercept); otherwise the raw second moments.
        """
        n = self.n
        Sxx, Sxy, Syy = self.Cxx / n, self.Cxy / n, self.Cyy / n
        if not center:
            xm, ym = self.x_mean, self.y_mean
            Sxx = Sxx + np.outer(xm, xm)
            Sxy = Sxy + np.outer(xm, ym)
            Syy = Syy + np.outer(ym, ym)
        # symmetrise away rounding so eigen-solvers see exactly symmetric matrices
        return (Sxx + Sxx.T) / 2, Sxy, (Syy + Syy.T) / 2


def offset_moments(Sxx, Sxy, Syy, C0=None):
    """Moments of the residual response ``Y - X C0``: a fit of ``D = C - C0`` on them is
    a fit of C on the original data, since ``Y - X C = (Y - X C0) - X D``.

        Sxy' = Sxy - Sxx C0,   Syy' = Syy - C0^T Sxy - Sxy^T C0 + C0^T Sxx C0.

    ``C0=None`` returns the moments unchanged.
    """
    if C0 is None:
        return Sxx, Sxy, Syy
    SxxC0 = Sxx @ C0
    Syy_off = Syy - C0.T @ Sxy - Sxy.T @ C0 + C0.T @ SxxC0
    return Sxx, Sxy - SxxC0, 0.5 * (Syy_off + Syy_off.T)


def quadratic_loss(Sxx, Sxy, Syy, C):
    """(1/2n)||Y - X C||_F^2 from the moments: tr(Syy)/2 - <Sxy, C> + <Sxx C, C>/2."""
    return 0.5 * np.trace(Syy) - np.sum(Sxy * C) + 0.5 * np.sum((Sxx @ C) * C)



def kfold_stats(X, Y, n_folds=5, seed=0, weights=None):
    """Per-fold sufficient statistics of a fixed-seed random K-fold partition of the rows.

    The partition is ``numpy.random.default_rng(seed).permutation(n)`` cut into
    ``n_folds`` near-equal contiguous blocks: deterministic, and not fooled by sorted rows.
    Training statistics of fold k are ``total - folds[k]`` (additivity), so
    cross-validation never touches the rows again.

    ``weights``: observation weights of the rows (weighted statistics per fold).

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
    return [SufficientStats.from_arrays(X[idx], Y[idx],
                                        None if weights is None else weights[idx])
            for idx in np.array_split(perm, n_folds)]


def total_stats(folds):
    """The sum of a list of statistics (all rows of all folds); the list of a holdout
    split (:mod:`mtltransfer.holdout`) carries its own total (training and validation
    rows)."""
    if getattr(folds, "total", None) is not None:
        return folds.total
    total = folds[0]
    for f in folds[1:]:
        total = total + f
    return total


def validation_loss(fold, train, C, center=True):
    """Mean squared prediction error per row on ``fold`` of a fit ``C`` on ``train``.

    Predictions are ``a + (x - b)^T C`` with ``a = ybar_train``, ``b = xbar_train``
    (``center=True``) or ``a = b = 0``. From the fold's centred statistics,

        sum_i ||y_i - a - C^T (x_i - b)||^2
            = tr(Cyy) - 2 <Cxy, C> + <Cxx C, C> + n_f ||(ybar_f - a) - C^T (xbar_f - b)||^2,

    divided by the fold's n_f.
    """
    nf = fold.n
    if center:
        a, b = train.y_mean, train.x_mean
    else:
        a, b = np.zeros(fold.q), np.zeros(fold.p)
    shift = (fold.y_mean - a) - C.T @ (fold.x_mean - b)
    within = np.trace(fold.Cyy) - 2 * np.sum(fold.Cxy * C) + np.sum((fold.Cxx @ C) * C)
    return float((within + nf * shift @ shift) / nf)
