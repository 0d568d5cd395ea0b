"""Choice of the representation dimension k (BIC or row-wise cross-validation)."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from ..exceptions import ConvergenceWarning, user_stacklevel
from ._base import argmin_simplest
from .shared_data import TaskData, check_k
from .shared_fit import fit_shared_representation

__all__ = ["select_k", "select_k_statistics"]


def _n_params(d, k, T):
    """Free parameters of (B, W): a k-dim subspace of R^d (dk - k(k+1)/2) plus kT."""
    return d * k - k * (k + 1) // 2 + k * T


def select_k(X, y, task, ks=None, *, criterion="bic", n_folds=5, random_state=0,
             center=False, patience=2, **fit_kw):
    r"""Choose the representation dimension k.

    ``criterion="bic"``: fit each k and minimise the Gaussian BIC with :math:`\sigma^2`
    profiled out,

    .. math::

       \mathrm{BIC}(k) = N \log(\mathrm{RSS}_k / N) + (d k - k(k+1)/2 + k T) \log N,

    with :math:`\mathrm{RSS}_k = \sum_t \|y_t - X_t B_k w_t\|^2` and
    :math:`N = \sum_t N_t`. ``criterion="cv"``: split each task's rows into ``n_folds``
    folds at random, fit on the other folds and minimise the held-out loss
    :math:`\sum_t \frac{1}{2 N_t} \|y_t - X_t B w_t\|^2` summed over folds.

    Parameters
    ----------
    X, y, task : ndarray
        Stacked rows, responses and task labels (see
        :func:`~mtltransfer.solvers.shared_fit.fit_shared_representation`).
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
        Passed to :func:`~mtltransfer.solvers.shared_fit.fit_shared_representation`
        (method, tol, max_iter, ...).

    Returns
    -------
    k : int
        The chosen dimension.
    scores : dict of int to float
        The criterion for each candidate (smaller is better).
    """
    if criterion not in ("bic", "cv"):
        raise ValueError(f"criterion must be 'bic' or 'cv'; got {criterion!r}")
    # BIC fits the centred rows; CV centres each fit with its training rows only
    data = TaskData.from_rows(X, y, task, center=center and criterion == "bic")
    d, T = data.d, data.T
    if ks is None:
        ks = range(1, min(d, T, 10) + 1)
    ks = [check_k(k, d, T, name="ks") for k in ks]
    if not ks:
        raise ValueError("ks must hold at least one candidate")
    ks = sorted(set(ks))
    scan = _Scan(data, patience, fit_kw)
    if criterion == "bic":
        _bic_scores(scan, ks)
    else:
        if isinstance(n_folds, bool) or not isinstance(n_folds, numbers.Integral) \
                or n_folds < 2:
            raise ValueError(f"n_folds must be an integer >= 2; got {n_folds!r}")
        _cv_scores(scan, ks, n_folds, random_state, center)
    return _chosen_k(scan)


def select_k_statistics(data, ks=None, *, patience=2, **fit_kw):
    """:func:`select_k` by BIC from per-task statistics alone.

    Parameters
    ----------
    data : TaskData
        Built from sums (``TaskData.from_sums``, centred within tasks for a
        per-task intercept): every candidate is fitted from it.
    ks, patience, **fit_kw
        As :func:`select_k`.

    Returns
    -------
    k : int
    scores : dict of int to float
    """
    d, T = data.d, data.T
    ks = sorted(set(check_k(k, d, T, name="ks") for k in
                    (range(1, min(d, T, 10) + 1) if ks is None else ks)))
    scan = _StatsScan(data, patience, fit_kw)
    _bic_scores(scan, ks)
    return _chosen_k(scan)


class _Scan:
    """Scores of the candidates fitted so far, the fits' convergence, the early stop."""

    def __init__(self, data, patience, fit_kw):
        self.data, self.patience, self.fit_kw = data, patience, fit_kw
        self.scores, self.not_converged = {}, set()

    def done(self):
        """True once ``patience`` candidates above the best k have been scored."""
        if self.patience is None:
            return False
        best = _best_k(self.scores)
        return sum(1 for k in self.scores if k > best) >= self.patience

    def fit(self, k, rows=slice(None), center=False):
        """The fit with k on ``rows``; a ConvergenceWarning is noted, not re-raised."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            res = self._fit(k, rows, center)
        for w in caught:
            if issubclass(w.category, ConvergenceWarning):
                self.not_converged.add(k)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return res

    def _fit(self, k, rows, center):
        data = self.data
        return fit_shared_representation(data.X[rows], data.y[rows], data.task[rows], k,
                                         center=center, **self.fit_kw)


class _StatsScan(_Scan):
    """A scan whose candidates are fitted from the statistics (all rows, no folds)."""

    def _fit(self, k, rows, center):
        return fit_shared_representation(self.data, k=k, **self.fit_kw)


def _bic_scores(scan, ks):
    """BIC(k) = N log(RSS_k / N) + (d k - k(k+1)/2 + k T) log N for each candidate."""
    d, T, n = scan.data.d, scan.data.T, scan.data.n
    for k in ks:
        res = scan.fit(k)
        rss = max(res.extra["rss"], 1e-300)
        scan.scores[k] = float(n * np.log(rss / n) + _n_params(d, k, T) * np.log(n))
        if scan.done():
            break


def _cv_scores(scan, ks, n_folds, random_state, center):
    """Held-out ``sum_t (1/(2 N_t)) ||y_t - X_t B w_t||^2`` summed over row-wise folds.

    With ``center``, each fit centres its training rows per task and the held-out rows
    are centred with those training means: no held-out row enters a fit.
    """
    data, n = scan.data, scan.data.n
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
            res = scan.fit(k, tr, center)
            Xte, yte, tte = data.X[te], data.y[te], data.task[te]
            if center:
                n_tr = data.segsum(tr.astype(float))
                x_bar = data.segsum(data.X * tr[:, None]) / n_tr[:, None]
                y_bar = data.segsum(data.y * tr) / n_tr
                Xte, yte = Xte - x_bar[tte], yte - y_bar[tte]
            r = yte - np.einsum("id,di->i", Xte, res.coef[:, tte])
            total += 0.5 * np.dot(r * r, data.inv_N_row[te])
        scan.scores[k] = float(total)
        if scan.done():
            break


def _chosen_k(scan):
    """The chosen k and the score table of a finished scan; a ConvergenceWarning names the
    candidates whose fits did not converge (their scores are the last iterate's)."""
    if scan.not_converged:
        warnings.warn(f"select_k: the fits for k in {sorted(scan.not_converged)} did not "
                      "converge (often a sign that k is too large for the data); their "
                      "scores are those of the last iterate", ConvergenceWarning,
                      stacklevel=user_stacklevel())
    return _best_k(scan.scores), scan.scores


def _best_k(scores):
    """The k with the best score; near-ties go to the smaller k (``argmin_simplest``)."""
    ks = sorted(scores)
    return ks[argmin_simplest([scores[k] for k in ks])]

