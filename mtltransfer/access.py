"""How a model reads its data: one interface, implemented for rows and for statistics.

Every fit of a multi-response model reads its data through its ``access`` object, never
through the rows directly. The interface (:class:`DataAccess`) gives

* the sufficient statistics (``stats``, ``moments()``) and those of K folds
  (``fold_stats(K)``);
* the spectral form of the moments, ``Sxx = V diag(w) V^T`` with ``V^T Sxy`` and
  ``tr Syy`` (``spectral(C0)``: what ridge and its GCV curve read);
* rows where a method needs them: ``centred_rows()`` (the centred rows, or p + q
  pseudo-rows ``Z`` with ``Z^T Z`` the rows' centred cross products), ``design_svd()`` and
  ``rank_rows()`` (the rows for the rank criterion, None without rows: it then runs on
  the moments with the true n);
* the per-response sums of squares of a fit (``residual_ss``, ``residual_sscp``,
  ``total_ss``), the predictors' scales (``exog_sd``) and constant columns
  (``constant_columns``).

A shared-representation model reads per-task data the same way:
:class:`TaskRowAccess` (stacked rows) or :class:`TaskSumsAccess` (raw per-task sums,
:class:`~mtltransfer.solvers.shared_sums.TaskSums`), each giving the solvers one problem
object (``marginal_data()``, ``task_data()``).

:class:`RowAccess` computes them from rows in memory (a
:class:`~mtltransfer.design.ModelData`); :class:`StatsAccess` from sufficient statistics
alone (what the Dask front end computes where the data live; any other source of merged
statistics can supply one). A model that cannot be fitted from statistics says so in one
class attribute, ``_needs_rows`` (the reason), and front ends without rows refuse it
with that reason.

Only least squares on pseudo-rows and quantities that depend on n are subtle: the
pseudo-rows have p + q rows, so whatever counts rows (GCV, the rank criterion) reads
``n`` from the statistics, never from the pseudo-rows' shape.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from . import design
from .gram import SufficientStats, kfold_stats, offset_moments
from .solvers.linear import design_svd
from .solvers.shared_data import TaskData
from .solvers.shared_marginal import rows_data, sums_data
from .solvers.shared_select import select_k, select_k_statistics

__all__ = ["DataAccess", "RowAccess", "StatsAccess", "TaskRowAccess", "TaskSumsAccess",
           "column_sd", "needs_rows_message"]


def column_sd(X, chunk=65536):
    """Standard deviation of each column of X (ddof 0), by two passes over row chunks
    (no temporary copy of X)."""
    mean = X.mean(axis=0)
    ss = np.zeros(X.shape[1])
    for start in range(0, X.shape[0], chunk):
        dev = X[start:start + chunk] - mean
        ss += np.einsum("ij,ij->j", dev, dev)
    return np.sqrt(ss / max(X.shape[0], 1))


def needs_rows_message(cls, where):
    """The refusal of a model class that needs its rows (its ``_needs_rows`` reason) by
    a front end without rows (``where``, e.g. "a Dask DataFrame"); None if it does not."""
    reason = getattr(cls, "_needs_rows", None)
    if not reason:
        return None
    return f"{cls.__name__} cannot be fitted from {where}: {reason}"


class DataAccess:
    """What every fit reads (see the module docstring); subclasses implement it for rows
    (:class:`RowAccess`) and for statistics (:class:`StatsAccess`).

    Attributes
    ----------
    has_rows : bool
        Whether the rows themselves are at hand (bootstrap refits, robust covariances
        and residuals need them).
    center : bool
        Whether the model fits an intercept (moments and rows are then centred).
    """

    has_rows = False
    center = True

    @property
    def stats(self):
        raise NotImplementedError

    def moments(self):
        """(Sxx, Sxy, Syy), centred when the model has an intercept."""
        return self.stats.moments(center=self.center)

    def fold_stats(self, n_folds):
        raise NotImplementedError

    def centred_rows(self):
        raise NotImplementedError

    def design_svd(self):
        """:class:`~mtltransfer.solvers.linear.DesignSVD` of the centred rows (or
        pseudo-rows) in their equilibrated basis; computed once."""
        if "design_svd" not in self._cache:
            self._cache["design_svd"] = design_svd(self.centred_rows()[0])
        return self._cache["design_svd"]

    def rank_rows(self):
        """(DesignSVD, centred Y) for the rank selection criterion; None where there are
        statistics only (the criterion then runs on the moments)."""
        return None

    def spectral(self, C0=None):
        """The moments of the residual ``Y - X C0`` in spectral form.

        Returns
        -------
        w : ndarray
            Eigenvalues of ``Sxx`` (non-negative; a row path gives ``min(n, p)`` of them).
        V : ndarray, shape (p, len(w))
            Their eigenvectors.
        VtSxy : ndarray, shape (len(w), q)
            ``V^T (Sxy - Sxx C0)``.
        trSyy : float
            ``tr`` of the residual's ``Syy``.
        """
        Sxx, Sxy, Syy = offset_moments(*self.moments(), C0)
        w, V = linalg.eigh(0.5 * (Sxx + Sxx.T))
        return np.clip(w, 0.0, None), V, V.T @ Sxy, float(np.trace(Syy))

    def exog_sd(self):
        raise NotImplementedError

    def residual_ss(self, coef, intercept):
        """Residual sum of squares of each response of the fit (coef, intercept)."""
        raise NotImplementedError

    def residual_sscp(self, coef, intercept):
        """Residual sums of squares and cross products ``E^T W E`` (q x q)."""
        raise NotImplementedError

    def total_ss(self, k_constant):
        raise NotImplementedError

    def constant_columns(self):
        """Boolean mask of the predictors that are constant over the rows."""
        raise NotImplementedError


class RowAccess(DataAccess):
    """:class:`DataAccess` of rows in memory.

    Parameters
    ----------
    data : ModelData
        The model's validated rows (weights and the rows' content hashes included).
    stats : SufficientStats, optional
        Statistics already computed (a loaded model without its rows keeps them).
    """

    has_rows = True

    def __init__(self, data, stats=None):
        self.data = data
        self.center = bool(data.intercept)
        self._cache = {} if stats is None else {"stats": stats}

    @property
    def unit_weights(self):
        """The weights scaled to mean one (``w n / sum w``; None unweighted): the
        solvers' loss ``(1/2n) sum w~_i ||r_i||^2`` is the weighted loss."""
        w = self.data.weights
        return None if w is None else w * (len(w) / w.sum())

    @property
    def stats(self):
        """:class:`~mtltransfer.gram.SufficientStats` of the rows (one pass, cached),
        weighted by the unit-mean weights (``n`` is the number of rows still)."""
        if "stats" not in self._cache:
            self._cache["stats"] = SufficientStats.from_arrays(
                self.data.exog, self.data.endog, self.unit_weights)
        return self._cache["stats"]

    def fold_stats(self, n_folds):
        """The seeded permutation folds of :func:`~mtltransfer.gram.kfold_stats`, or the
        hashed folds of :func:`~mtltransfer.design.hash_folds` for rows built with
        ``folds="hash"``."""
        X, Y, w = self.data.exog, self.data.endog, self.unit_weights
        row_hash = self.data.extra.get("row_hash")
        if row_hash is None:
            return kfold_stats(X, Y, n_folds, weights=w)
        fold = design.hash_folds(row_hash, n_folds)
        return [SufficientStats.from_arrays(X[fold == k], Y[fold == k],
                                            None if w is None else w[fold == k])
                for k in range(n_folds)]

    def centred_rows(self):
        """(X, Y) centred by their column means when the model has an intercept; with
        weights, centred by the weighted means and each row scaled by the square root of
        its unit-mean weight, so that ``||Yc - Xc C||^2`` is the weighted loss."""
        if "rows" not in self._cache:
            X, Y, w = self.data.exog, self.data.endog, self.unit_weights
            if w is None:
                rows = (X - X.mean(0), Y - Y.mean(0)) if self.center else (X, Y)
            else:
                root = np.sqrt(w)[:, None]
                s = self.stats
                rows = ((X - s.x_mean) * root, (Y - s.y_mean) * root) if self.center \
                    else (X * root, Y * root)
            self._cache["rows"] = rows
        return self._cache["rows"]

    def rank_rows(self):
        return self.design_svd(), self.centred_rows()[1]

    def spectral(self, C0=None):
        """From the SVD of the centred rows ``Xc = U diag(s) V^T`` (never the normal
        equations): ``w = s^2 / n``, ``V^T Sxr = diag(s) U^T R / n`` and ``tr Srr =
        ||R||^2 / n`` for the residual rows ``R = Yc - Xc C0``."""
        Xc, Yc = self.centred_rows()
        R = Yc if C0 is None else Yc - Xc @ C0
        n = Xc.shape[0]
        U, s, Vt = linalg.svd(Xc, full_matrices=False, lapack_driver="gesdd")
        return s * s / n, Vt.T, s[:, None] * (U.T @ R) / n, float(np.sum(R * R)) / n

    def exog_sd(self):
        if "sd" not in self._cache:
            self._cache["sd"] = column_sd(self.data.exog)
        return self._cache["sd"]

    def residual_ss(self, coef, intercept):
        """``sum_i w_i r_i^2`` per response (statsmodels' WLS ``ssr`` with weights)."""
        r = self.data.endog - (self.data.exog @ coef + intercept)
        w = self.data.weights
        return (r ** 2).sum(0) if w is None else w @ (r ** 2)

    def residual_sscp(self, coef, intercept):
        E = self.data.endog - (self.data.exog @ coef + intercept)
        w = self.data.weights
        return E.T @ E if w is None else (E * w[:, None]).T @ E

    def total_ss(self, k_constant):
        """Centred when the model has a constant (about the weighted mean, weighted,
        with weights: statsmodels' WLS)."""
        Y, w = self.data.endog, self.data.weights
        if w is None:
            centre = Y.mean(0) if k_constant else 0.0
            return ((Y - centre) ** 2).sum(0)
        centre = w @ Y / w.sum() if k_constant else 0.0
        return w @ ((Y - centre) ** 2)

    def constant_columns(self):
        X = self.data.exog
        return np.ptp(X, axis=0) == 0 if X.shape[0] else np.zeros(X.shape[1], bool)

    def __getstate__(self):
        return {"data": self.data, "center": self.center, "_cache": {}}


class StatsAccess(DataAccess):
    """:class:`DataAccess` of sufficient statistics alone (no rows).

    Parameters
    ----------
    stats : SufficientStats
        The statistics of all the rows.
    center : bool
        Whether the model fits an intercept.
    folds : dict of int to list of SufficientStats, optional
        Fold statistics already computed, by number of folds.
    more_folds : callable, optional
        ``more_folds(K)`` computes the statistics of K folds (one more pass over the
        data); not saved.
    where : str
        What the statistics are of, for messages ("the statistics of a Dask DataFrame").

    Notes
    -----
    Where a method takes rows, ``centred_rows`` are p + q pseudo-rows
    ``Z = diag(sqrt(n w)) Q^T`` from the joint moment matrix ``M = Q diag(w) Q^T`` of
    (X, Y), so ``Z^T Z = n M``, the centred cross products of the rows: least squares,
    reduced rank and ``(Xc^T Xc)^{-1}`` from them equal those of the rows. Whatever
    counts rows reads ``stats.n``, never the pseudo-rows' shape.
    """

    def __init__(self, stats, center, folds=None, more_folds=None,
                 where="sufficient statistics"):
        self.where = where
        self._stats = stats
        self.center = bool(center)
        self._folds = dict(folds or {})
        self._more_folds = more_folds
        self._cache = {}

    @property
    def stats(self):
        return self._stats

    def fold_stats(self, n_folds):
        if n_folds not in self._folds:
            if self._more_folds is None:
                raise ValueError(f"the statistics of {n_folds} folds were not computed and "
                                 "the data are not at hand (a loaded model); use "
                                 f"n_folds={sorted(self._folds)[0] if self._folds else 5}")
            self._folds[n_folds] = self._more_folds(n_folds)
        folds = self._folds[n_folds]
        if any(f.n == 0 for f in folds):
            raise ValueError(f"a hashed fold is empty ({n_folds} folds of {self.stats.n} "
                             "rows); use fewer folds")
        return list(folds)

    def centred_rows(self):
        if "rows" not in self._cache:
            Sxx, Sxy, Syy = self.moments()
            p = Sxx.shape[0]
            M = np.block([[Sxx, Sxy], [Sxy.T, Syy]])
            w, Q = linalg.eigh(0.5 * (M + M.T))
            # Z^T Z = n M: the rows' own cross products, so that covariances read from
            # the pseudo-rows' SVD ((Xc^T Xc)^{-1}) are those of the rows
            Z = np.sqrt(self.stats.n * np.clip(w, 0.0, None))[:, None] * Q.T
            self._cache["rows"] = Z[:, :p], Z[:, p:]
        return self._cache["rows"]

    def exog_sd(self):
        return np.sqrt(np.clip(np.diag(self.stats.Cxx), 0.0, None) / self.stats.n)

    def residual_ss(self, coef, intercept):
        """``diag(Cyy - 2 C^T Cxy + C^T Cxx C) + n (ybar - b - C^T xbar)^2`` per
        response."""
        s = self.stats
        C = np.asarray(coef)
        within = np.diag(s.Cyy) - 2 * np.sum(C * s.Cxy, axis=0) + \
            np.sum(C * (s.Cxx @ C), axis=0)
        shift = s.y_mean - intercept - C.T @ s.x_mean
        return np.clip(within, 0.0, None) + s.n * shift ** 2

    def residual_sscp(self, coef, intercept):
        """``Cyy - C^T Cxy - Cxy^T C + C^T Cxx C + n d d^T`` with ``d = ybar - b - C^T
        xbar``."""
        s = self.stats
        C = np.asarray(coef)
        CtCxy = C.T @ s.Cxy
        E = s.Cyy - CtCxy - CtCxy.T + C.T @ s.Cxx @ C
        d = s.y_mean - intercept - C.T @ s.x_mean
        E = 0.5 * (E + E.T) + s.n * np.outer(d, d)
        return E

    def total_ss(self, k_constant):
        s = self.stats
        return np.diag(s.Cyy) if k_constant else np.diag(s.YtY)

    def constant_columns(self):
        # the centred sum of squares of a constant column is zero up to the rounding of
        # the statistics' merges
        d = np.diag(self.stats.Cxx)
        return d <= 1e-13 * np.maximum(self.stats.n * self.stats.x_mean ** 2, 1e-300)

    def __getstate__(self):
        return {"where": self.where, "_stats": self._stats, "center": self.center,
                "_folds": self._folds,
                "_more_folds": None, "_cache": {}}


# ---- the shared representation: per-task data ------------------------------------------
class TaskRowAccess:
    """Per-task data of a shared-representation model from its stacked rows.

    Parameters
    ----------
    X : ndarray, shape (n, d)
    y : ndarray, shape (n,)
    task : ndarray of int, shape (n,)
        Task code 0..T-1 of each row.
    center : bool
        Per-task intercept (centring within tasks).
    """

    has_rows = True

    def __init__(self, X, y, task, center):
        self.X, self.y, self.task, self.center = X, y, task, bool(center)

    def check_fit(self, method, backend, criterion, init):
        """Every option of ``SharedRepresentation.fit`` works from rows."""

    def marginal_data(self):
        """The marginal-likelihood solver's data (:func:`.shared_marginal.rows_data`)."""
        return rows_data(self.X, self.y, self.task, self.center)

    def task_data(self):
        """:class:`~.solvers.shared_data.TaskData` of the rows (centred within tasks
        with an intercept)."""
        return TaskData.from_rows(self.X, self.y, self.task, center=self.center)

    def select_k(self, criterion, **fit_kw):
        """k of ``method="gd"``/``"altmin"`` by ``criterion`` ("bic" or row-wise "cv")."""
        return select_k(self.X, self.y, self.task, criterion=criterion,
                        center=self.center, **fit_kw)

    def _resid(self, theta, b):
        return self.y - (np.einsum("id,di->i", self.X, theta[:, self.task]) + b[self.task])

    def ssr(self, theta, b):
        """``sum_i (y_i - b_t - x_i^T theta_t)^2`` over all rows (``theta`` d x T)."""
        return float(np.sum(self._resid(theta, b) ** 2))

    def rsquared(self, theta, b, T):
        """Per-task R^2 (NaN for a task whose responses do not vary)."""
        r, y, task = self._resid(theta, b), self.y, self.task
        cnt = np.bincount(task, minlength=T)
        ym = np.bincount(task, y, T) / np.maximum(cnt, 1)
        centre = ym[task] if self.center else 0.0
        tss = np.bincount(task, (y - centre) ** 2, T)
        rss = np.bincount(task, r ** 2, T)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(tss > 0, 1 - rss / tss, np.nan)


class TaskSumsAccess:
    """Per-task data of a shared-representation model from raw per-task sums
    (:class:`~mtltransfer.solvers.shared_sums.TaskSums`), without rows.

    The marginal likelihood (k given or by BIC), ``"gd"``/``"altmin"`` (k given or by
    BIC) and the baselines ``"per_task"`` and ``"nuclear"`` fit from them; the spectral
    start of the marginal fit reads one fourth-order moment through ``spectral(w)`` (a
    pass over wherever the rows are). Cross-validated k, ``"mom"`` and
    ``backend="cvxpy"`` need the rows and are refused.

    Parameters
    ----------
    sums : TaskSums
        In the model's task order.
    center : bool
    spectral : callable or None
        ``spectral(w)``: ``sum_i w[task_i] y_i^2 x_i x_i^T``.
    where : str
        What the sums are of, for messages.
    """

    has_rows = False
    _METHODS = ("marginal", "gd", "altmin", "per_task", "nuclear")

    def __init__(self, sums, center, spectral=None, where="per-task statistics"):
        self.sums, self.center, self.spectral, self.where = sums, bool(center), spectral, \
            where

    def check_fit(self, method, backend, criterion, init):
        """Refuse, naming the option, what needs the rows."""
        if method not in self._METHODS:
            raise ValueError(f"from {self.where} method must be 'marginal', 'gd', "
                             f"'altmin', 'per_task' or 'nuclear' (they fit from per-task "
                             f"statistics); got {method!r}")
        if backend != "fast" or criterion != "bic":
            raise ValueError(f"from {self.where} the fit supports backend='fast' and "
                             "criterion='bic' (cross-validation folds within tasks "
                             "would need the rows)")
        if isinstance(init, str) and init != "ridge":
            raise ValueError(f"from {self.where} init must be 'ridge' or a d x k "
                             f"array; got {init!r}")

    def _spectral_moment(self, w):
        if self.spectral is None:
            raise ValueError("the spectral start needs one more pass over the data and the "
                             "data are not at hand (a loaded model); pass init= a d x k "
                             "array")
        return self.spectral(w)

    def marginal_data(self):
        """The marginal-likelihood solver's data (:func:`.shared_marginal.sums_data`)."""
        return sums_data(self.sums, self.center, self._spectral_moment)

    def task_data(self):
        """:class:`~.solvers.shared_data.TaskData` from the sums (centred within tasks
        with an intercept)."""
        return TaskData.from_sums(self.sums, center=self.center)

    def select_k(self, criterion, **fit_kw):
        """k by BIC, every candidate fitted from the statistics."""
        return select_k_statistics(self.task_data(), **fit_kw)

    def ssr(self, theta, b):
        """The residual sum of squares from the raw sums (``theta`` d x T)."""
        return float(np.sum(np.clip(self.sums.task_ssr(theta.T, b), 0.0, None)))

    def rsquared(self, theta, b, T):
        """Per-task R^2 from the raw sums."""
        tss = self.sums.task_tss(self.center)
        rss = np.clip(self.sums.task_ssr(theta.T, b), 0.0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(tss > 0, 1 - rss / tss, np.nan)

    def __getstate__(self):
        return {"sums": self.sums, "center": self.center, "spectral": None,
                "where": self.where}
