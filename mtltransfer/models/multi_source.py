"""Several sources for one target: each source's usefulness by cross-validation.

Rule (deterministic; the folds are those of :class:`~mtltransfer.Transfer`). On K folds
of the target's rows, each source k is scored by the held-out mean squared error of
ridge towards it (:class:`~mtltransfer.RidgeToSource`, alpha by GCV on the training
rows), and the target alone by the better of OLS and Ridge. A source's *gain* is the
target-only error minus its own (0 when it does not help); the weights are the gains
normalised to sum to 1 (a harmful source gets weight 0). The pooled source
``sum_k w_k C0_k`` is scored on the same folds, and is used only when its error is at
most the best single source's; otherwise the best single source is used alone. When no
source helps, the best single source is kept (SMART's own cross-validation then falls
back on the target through its ``(p, q)`` candidate).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .. import source_alignment


def is_source_list(source):
    """Several sources (a list/tuple of results, frames or arrays), as opposed to one
    source given as a list of single-response statsmodels fits or as nested lists."""
    if not isinstance(source, (list, tuple)) or not source:
        return False
    if all(source_alignment.is_sm_single(s) for s in source):
        return False
    return all(isinstance(s, (pd.DataFrame, np.ndarray)) or hasattr(s, "params")
               for s in source)


def _folds(n, n_folds):
    perm = np.random.default_rng(0).permutation(n)
    return [np.sort(idx) for idx in np.array_split(perm, n_folds)]


def _cv_mse(data, fit, folds):
    """Pooled held-out mse of ``fit(data_train) -> (C, b)`` over the folds."""
    rows = np.arange(data.endog.shape[0])
    sse, cnt = 0.0, 0
    for held in folds:
        train = np.setdiff1d(rows, held)
        C, b = fit(data.take(train))
        R = data.endog[held] - (data.exog[held] @ C + b)
        sse += float(np.sum(R * R))
        cnt += R.size
    return sse / cnt


def combine_sources(data, sources, names, n_folds=5):
    """The source SMART uses, and a table of each source's weight.

    Parameters
    ----------
    data : ModelData
        The target's validated data.
    sources : list of ndarray (p, q)
        The aligned sources.
    names : list of str
    n_folds : int

    Returns
    -------
    C0 : ndarray (p, q)
    table : DataFrame
        Per source: ``cv_mse`` (ridge towards it), ``gain``, ``weight``; the rows
        ``target only`` and ``pooled`` give the reference and the pooled source's error.
    """
    from ..selection import check_folds
    from .linear import OLS, Ridge

    n = data.endog.shape[0]
    n_folds = check_folds(n_folds, n, "SMART", "cross-validation of the sources")
    folds = _folds(n, n_folds)

    def fitter(cls, source=None):
        """Fit ``cls`` on a fold; with a source, the ridge towards it (RidgeToSource:
        the ridge fit of ``Y - X C0``, plus ``C0``; alpha by the same GCV)."""
        def fit(d):
            if source is None:
                res = cls(d).fit()
                return res.coef, res.intercept.to_numpy()
            res = cls(d.take(endog=d.endog - d.exog @ source)).fit()
            return res.coef + source, res.intercept.to_numpy()
        return fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target = min(_cv_mse(data, fitter(OLS), folds), _cv_mse(data, fitter(Ridge), folds))
        errs = np.array([_cv_mse(data, fitter(Ridge, source=S), folds)
                         for S in sources])
        gains = np.maximum(target - errs, 0.0)
        best = int(np.argmin(errs))
        if gains.sum() > 0:
            w = gains / gains.sum()
            pooled = sum(wi * S for wi, S in zip(w, sources))
            pooled_err = (_cv_mse(data, fitter(Ridge, source=pooled), folds)
                          if np.count_nonzero(w) > 1 else errs[int(np.argmax(w))])
        else:
            w, pooled_err = np.zeros(len(sources)), np.nan
        if not (pooled_err <= errs[best]):
            w = np.zeros(len(sources))
            w[best] = 1.0
    C0 = sum(wi * S for wi, S in zip(w, sources))
    table = pd.DataFrame({"cv_mse": np.r_[errs, target, pooled_err],
                          "gain": np.r_[gains, np.nan, np.nan],
                          "weight": np.r_[w, np.nan, np.nan]},
                         index=pd.Index(list(names) + ["target only", "pooled"],
                                        name="source"))
    return C0, table
