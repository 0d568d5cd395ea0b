"""``fit(tuning="holdout")``: one shared validation split, no refit, for every tuned model.

The default of every tuned model is its own criterion (K-fold cross-validation, GCV,
RSC, BIC). ``tuning="holdout"`` replaces the validation that a hyperparameter needs by
one split of the target's rows into a training part T and a validation part V:

* the model is rebuilt on the rows of T (same source and options);
* every hyperparameter the model tunes by cross-validation reads its folds through the
  model's fold provider (:meth:`~mtltransfer.models.base.MultiResponseModel.cv_folds`),
  which now gives one fold, V, whose training part is T: each candidate is fitted on T
  and scored on V;
* the hyperparameters a model tunes by an in-sample criterion (ridge's GCV, reduced
  rank's RSC, a sparse path's BIC) are listed in its ``_holdout_grid`` declaration
  (name -> the candidate values): each candidate is fitted on T with the value fixed,
  and the one with the smallest mean squared error on V wins (near-ties: the first, the
  simplest, :func:`~mtltransfer.solvers._base.argmin_simplest`);
* a model whose rows belong to tasks splits them itself (``_holdout_split``: V within
  the tasks, SharedRepresentation) and predicts V with its fitted task weights
  (``_holdout_predict``);
* the chosen candidate's fit on T is the result: nothing is refitted on all rows.
  ``results.model`` is the model of T (``results.nobs`` counts T),
  ``results.tuning["holdout"]`` records the split and the validation errors, and
  ``results.chosen_by`` says ``holdout`` for what V chose.

The validation error of a fit ``(C, b)`` on V is
``(1 / (n_V q)) sum_{i in V} w_i ||y_i - b - C^T x_i||^2`` (``w_i = 1`` unweighted; with
weights, scaled to mean one over V), the same number K-fold CV averages over its folds.

Everything here takes a model and plain arrays; the models call it from their ``fit``
wrapper (:mod:`mtltransfer.models.base`).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .gram import SufficientStats

__all__ = ["TUNING_OPTIONS", "HOLDOUT_SHARE", "HOLDOUT_RIDGE_FACTORS", "split_rows",
           "split_within_groups", "Holdout", "fit_holdout"]

#: the values of ``fit(tuning=...)``
TUNING_OPTIONS = ("cv", "holdout")
#: the default share of the rows held out for validation (the revision's 80/20 split)
HOLDOUT_SHARE = 0.2
#: ridge multipliers of the revision's protocol, times ``||Xc||_op^2 / n``
HOLDOUT_RIDGE_FACTORS = np.array([0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0])


def split_rows(n, holdout=HOLDOUT_SHARE, seed=0):
    """The (training, validation) row indices of a holdout split of ``n`` rows.

    Parameters
    ----------
    n : int
        Number of rows.
    holdout : float, array of int or array of bool
        A share in (0, 1): that share of the rows (rounded, at least one), drawn by
        ``numpy.random.default_rng(seed).permutation(n)``; an array of row positions
        (0-based, no repeats); or a boolean mask of length n (True: validation).
    seed : int
        Seed of the random split (a share only).

    Returns
    -------
    train, val : ndarray of int
        Sorted row positions; each part holds at least 2 rows.
    """
    if isinstance(holdout, (bool, np.bool_)) or holdout is None:
        raise TypeError(f"holdout must be a share in (0, 1), row positions or a boolean "
                        f"mask; got {holdout!r}")
    if np.isscalar(holdout):
        try:
            share = float(holdout)
        except (TypeError, ValueError):
            raise TypeError(f"holdout must be a share in (0, 1), row positions or a "
                            f"boolean mask; got {holdout!r}") from None
        if not 0.0 < share < 1.0:
            raise ValueError(f"holdout must be a share in (0, 1); got {holdout!r}")
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"holdout_seed must be an integer; got {seed!r}")
        n_val = max(int(round(share * n)), 1)
        perm = np.random.default_rng(int(seed)).permutation(n)
        val = np.sort(perm[:n_val])
    else:
        arr = np.asarray(holdout)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise ValueError(f"a boolean holdout mask needs one value per row ({n}); "
                                 f"got shape {arr.shape}")
            val = np.flatnonzero(arr)
        elif np.issubdtype(arr.dtype, np.integer) and arr.ndim == 1:
            if arr.size and (arr.min() < 0 or arr.max() >= n):
                raise ValueError(f"holdout row positions must be in [0, {n - 1}]")
            val = np.unique(arr)
            if val.size != arr.size:
                raise ValueError("holdout row positions must not repeat")
        else:
            raise TypeError(f"holdout must be a share in (0, 1), integer row positions or "
                            f"a boolean mask; got an array of {arr.dtype}")
    train = np.setdiff1d(np.arange(n), val)
    if val.size < 1 or train.size < 2:
        raise ValueError(f"holdout must leave at least 2 training rows and 1 validation "
                         f"row; got {train.size} and {val.size} of {n}")
    return train, val


def split_within_groups(codes, names, holdout=HOLDOUT_SHARE, seed=0):
    """The (training, validation) rows of a split within groups (tasks).

    A share takes ``round(share N_t)`` of each group's rows, at most ``N_t - 2`` (each
    group keeps 2 training rows), drawn by ``numpy.random.default_rng(seed)``, group by
    group; given rows (positions or a mask, :func:`split_rows`) must leave each group a
    training row.

    Parameters
    ----------
    codes : ndarray of int
        Group code (0..G-1) of each row.
    names : list
        Group labels (for the messages).
    holdout, seed
        As :func:`split_rows`.
    """
    n, G = len(codes), len(names)
    train, val = split_rows(n, holdout, seed)             # checks the argument
    if np.isscalar(holdout):
        N = np.bincount(codes, minlength=G)
        rng = np.random.default_rng(int(seed))
        val = np.sort(np.concatenate([
            rng.permutation(np.flatnonzero(codes == t))[:max(0, min(
                int(round(float(holdout) * N[t])), N[t] - 2))]
            for t in range(G)]).astype(np.int64))
        if val.size == 0:
            raise ValueError("holdout leaves no validation rows (each group keeps at "
                             "least 2 training rows); give a larger share")
        train = np.setdiff1d(np.arange(n), val)
    lost = np.flatnonzero(np.bincount(codes[train], minlength=G) == 0)
    if lost.size:
        raise ValueError(f"holdout must leave each task training rows; tasks "
                         f"{[names[t] for t in lost[:5]]} have none")
    return train, val


class _SplitTotal(SufficientStats):
    """The statistics of T and V together: removing V gives T's own statistics
    exactly (not by the subtraction identity), so a fit on "total - fold" is the fit
    on T."""

    def __sub__(self, other):
        train = self.__dict__.get("_train")
        if train is not None and other is self.__dict__.get("_held"):
            return train
        return SufficientStats.__sub__(self, other)


class _HoldoutFolds(list):
    """The one validation fold, as the list of folds cross-validation reads
    (:func:`mtltransfer.gram.total_stats` gives its ``total``)."""


@dataclass
class Holdout:
    """The split a model of the training rows validates on (its fold provider).

    Attributes
    ----------
    train, held : SufficientStats
        Statistics of the training rows T (as the model of T computes them) and of the
        validation rows V (weights on the model's scale).
    train_rows, held_rows : ndarray
        Positions of T and V among the rows of the model the split was made from.
    held_X, held_Y, held_w : ndarray
        The validation rows (``held_w`` None unweighted).
    used : bool
        Whether a fit has read the fold (set by the provider).
    predict : callable or None
        ``predict(results)``: the fit's predictions of V (n_V x q), for models whose
        coefficients are not one (C, b) (the model's ``_holdout_predict``); None: from
        ``results.coefficient_arrays()``.
    """

    train: SufficientStats
    held: SufficientStats
    train_rows: np.ndarray
    held_rows: np.ndarray
    held_X: np.ndarray
    held_Y: np.ndarray
    held_w: np.ndarray | None = None
    used: bool = field(default=False)
    predict: object = None

    def folds(self):
        """[V] as a list of folds whose total is T + V (training part: T exactly)."""
        t = self.train + self.held
        total = _SplitTotal(t.n, t.x_mean, t.y_mean, t.Cxx, t.Cxy, t.Cyy)
        object.__setattr__(total, "_train", self.train)
        object.__setattr__(total, "_held", self.held)
        out = _HoldoutFolds([self.held])
        out.total = total
        self.used = True
        return out

    def mse(self, coef, intercept):
        """Mean squared validation error per response of the fit (coef, intercept)."""
        return self._error(self.held_X @ coef + intercept)

    def _error(self, pred):
        R = self.held_Y - pred
        sq = np.sum(R * R, axis=1)
        w = self.held_w
        err = sq.mean() if w is None else float(w @ sq / w.sum())
        return float(err) / self.held_Y.shape[1]

    def error(self, res):
        """Mean squared validation error per response of the fitted results ``res``."""
        if self.predict is None:
            return self.mse(*res.coefficient_arrays())
        return self._error(self.predict(res))


def _holdout_of(model, train_model, train_rows, held_rows):
    X, Y = model.data.exog, model.data.endog
    w = model.data.weights
    held_w = None
    if w is not None:
        # the validation rows' weights on the training model's scale (mean one over T)
        held_w = w[held_rows] * (len(train_rows) / w[train_rows].sum())
    held = SufficientStats.from_arrays(X[held_rows], Y[held_rows], held_w)
    return Holdout(getattr(train_model, "stats", None), held, train_rows, held_rows,
                   X[held_rows], Y[held_rows], held_w)


#: how a model reports a choice made on held-out rows (K-fold CV, its own split)
_FOLD_CV = re.compile(r"\d+-fold CV|validation \(\d+% held out\)")


def _relabel(res, note, on_validation):
    """Say in the results that V chose what K-fold CV would have (``chosen_by``,
    ``config``)."""
    chosen = getattr(res, "chosen_by", None)
    if isinstance(chosen, dict):
        for name, how in list(chosen.items()):
            if name in on_validation:
                chosen[name] = note
            elif isinstance(how, str):
                chosen[name] = _FOLD_CV.sub(note, how)
    for name in on_validation:           # results whose chosen_by reads "<name>_chosen_by"
        if hasattr(res, f"{name}_chosen_by"):
            setattr(res, f"{name}_chosen_by", note)
    config = getattr(res, "config", None)
    if isinstance(config, dict):
        hyper = getattr(res, "hyperparameters", {})
        for name, value in list(config.items()):
            if name in on_validation and name in hyper:
                from .summary import fmt
                config[name] = f"{fmt(hyper[name])} ({note})"
            elif isinstance(value, str):
                config[name] = _FOLD_CV.sub(note, value)


def _by_row_labels(holdout, labels):
    """A pandas Series mask read by its index, as every pandas input of the package
    (never by position): reindexed to the rows the model uses (rows it dropped for
    missing values are ignored); any other ``holdout`` is returned as given."""
    if not isinstance(holdout, pd.Series) or labels is None:
        return holdout
    if holdout.index.equals(labels):
        return holdout.to_numpy()
    if holdout.index.has_duplicates or not labels.isin(holdout.index).all():
        raise ValueError("holdout: a Series mask is read by its index, which must hold "
                         "every row label of the data (pass positions or a NumPy mask "
                         "to split by position)")
    return holdout.reindex(labels).to_numpy()


def fit_holdout(model, fit, call, holdout=HOLDOUT_SHARE, seed=0):
    """``fit(model, **call)`` tuned on one validation split, with no refit.

    Parameters
    ----------
    model : MultiResponseModel
        A model with its rows in memory.
    fit : callable
        The model's (wrapped) ``fit``.
    call : dict
        The keywords of the call (``None`` for what is tuned).
    holdout, seed
        The split (:func:`split_rows`).

    Returns
    -------
    Results
        The fit on the training rows of the candidate with the smallest validation
        error; ``tuning["holdout"]`` holds the split and, for the declared grids, the
        table of candidates and their validation errors.
    """
    name = type(model).__name__
    grids = getattr(type(model), "_holdout_grid", {})
    if not hasattr(model, "cv_folds") and not grids:
        raise TypeError(f"tuning='holdout' is for the multi-response models; {name} "
                        "chooses its hyperparameters by its own criterion")
    holdout = _by_row_labels(holdout, getattr(model.data, "row_labels", None))
    if hasattr(model, "_holdout_split"):     # the model's own split (rows within tasks)
        train_rows, held_rows = model._holdout_split(holdout, seed)
    else:
        if not model.access.has_rows:
            raise TypeError(f"tuning='holdout' needs the model's rows in memory; this "
                            f"{name} holds statistics only (use the default tuning)")
        train_rows, held_rows = split_rows(model.nobs, holdout, seed)
    train = model.replace_data(rows=train_rows)
    split = _holdout_of(model, train, train_rows, held_rows)
    if hasattr(model, "_holdout_predict"):
        split.predict = lambda res: model._holdout_predict(res, held_rows)
    train.__dict__["_holdout"] = split
    free = {k: g for k, g in grids.items() if call.get(k) is None}
    n_val = len(held_rows)
    note = f"holdout, {n_val} rows"
    record = {"n_train": len(train_rows), "n_validation": n_val,
              "holdout": holdout if np.isscalar(holdout) else "given rows",
              "seed": int(seed) if np.isscalar(holdout) else None, "refit": False,
              "validation_rows": held_rows}
    try:
        if free:
            names = list(free)
            values = [list(free[k](train, call)) for k in names]
            rows, fits = [], []
            for combo in itertools.product(*values):
                res_c = fit(train, **dict(call, **dict(zip(names, combo))))
                rows.append(dict(zip(names, combo), val_mse=split.error(res_c)))
                fits.append(res_c)
            from .solvers._base import argmin_simplest

            table = pd.DataFrame(rows)
            best = argmin_simplest(table["val_mse"].to_numpy())
            res = fits[best]
            record["table"] = table
        else:
            res = fit(train, **call)
            if not split.used:
                raise ValueError(f"{name}: tuning='holdout' has nothing to choose here: "
                                 "this fit tunes no hyperparameter on held-out rows (what "
                                 "is given is fixed; what is left, an in-sample criterion "
                                 "chooses); use the default tuning")
    finally:
        train.__dict__.pop("_holdout", None)
    record["val_mse"] = split.error(res)
    _relabel(res, note, set(free))
    if isinstance(getattr(res, "tuning", None), dict):
        res.tuning["holdout"] = record
    return res
