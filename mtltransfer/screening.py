"""Marginal screening of predictors for multi-response regression.

The SMART paper's real-data pipeline screens thousands of genes to a few hundred features
by multitask marginal regression before fitting. :class:`MarginalScreening` does this:
for every predictor j and response k it computes a marginal statistic on the centred data,

* ``kind="regression"``: the marginal slope ``b_jk = x_j^T y_k / x_j^T x_j``;
* ``kind="correlation"``: the marginal correlation
  ``r_jk = x_j^T y_k / (||x_j|| ||y_k||)`` (units-free),

aggregates it over the responses into one score per predictor,

* ``norm="l1"``: ``s_j = sum_k |b_jk|``, ``"l2"``: ``s_j = (sum_k b_jk^2)^(1/2)``,
  ``"linf"``: ``s_j = max_k |b_jk|``,

and keeps the ``m`` predictors with the largest scores (ties: the earlier column). The
default ``m = floor(n / log n)`` is the sure independence screening size of Fan and Lv
(2008); ``m`` may be given as a count instead (it is capped at p). A constant column
(zero variance, judged on the column's own scale) scores 0. Marginal slopes depend on the
predictors' units: with scales differing by more than 1e6 a ``ValueWarning`` says so
(correlations are units-free). pandas inputs must share their row index.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .design import check_aligned
from .exceptions import ValueWarning, user_stacklevel
from ._validation import SCALE_RATIO_WARN

__all__ = ["MarginalScreening", "screen_data"]

_NORMS = ("l1", "l2", "linf")
_KINDS = ("regression", "correlation")


def _varies(ss, A):
    """Which columns of A vary: centred sum of squares ``ss`` above rounding,
    ``(n eps max|a_j|)^2``, each column on its own scale (a column in dollars does not
    make one in percent look constant)."""
    n = A.shape[0]
    tiny = (n * np.finfo(float).eps * np.abs(A).max(axis=0, initial=0.0)) ** 2
    return (ss > tiny) & (ss > 0)


def _warn_unit_dependence(X, names):
    """Marginal slopes depend on the predictors' units: warn when their scales differ
    by more than SCALE_RATIO_WARN (the rule of the penalised models)."""
    if X.shape[1] < 2:
        return
    sd = X.std(axis=0)
    hi, lo = int(np.argmax(sd)), int(np.argmin(sd))
    if sd[hi] > SCALE_RATIO_WARN * sd[lo]:
        warnings.warn(f"MarginalScreening: the predictors' scales differ by a factor "
                      f"{sd[hi] / sd[lo]:.2g} ({names[hi]} vs {names[lo]}); marginal slopes "
                      "(kind='regression') depend on the units, so the kept set does too. "
                      "Use kind='correlation' (units-free) or standardise the predictors",
                      ValueWarning, stacklevel=user_stacklevel())


def _as_frame(data, prefix, name=None):
    """The data as a DataFrame; ``name`` (the argument) is named in a numeric check."""
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        if name is not None:
            bad = [str(c) for c, t in data.dtypes.items()
                   if not (pd.api.types.is_numeric_dtype(t) or
                           pd.api.types.is_bool_dtype(t))]
            if bad:
                raise TypeError(f"{name} has non-numeric column(s): {', '.join(bad)}")
        return data
    try:
        a = np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name or prefix} must be numeric (an array or DataFrame of "
                        f"numbers); got {type(data).__name__}") from None
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{prefix} must be 1-D or 2-D; got {a.ndim} dimensions")
    return pd.DataFrame(a, columns=[f"{prefix}{j + 1}" for j in range(a.shape[1])])


class MarginalScreening:
    """Keep the predictors with the largest aggregated marginal statistics.

    Parameters
    ----------
    m : int or None
        Number of predictors kept; None: ``floor(n / log n)`` (sure independence
        screening), at least 1. Capped at p.
    norm : {"l1", "l2", "linf"}
        Aggregate over the responses (module docstring).
    kind : {"regression", "correlation"}
        Marginal slope or marginal correlation.

    Attributes
    ----------
    scores : Series
        Score of every predictor, indexed by name (this and the following are set by
        :meth:`fit`).
    kept : list of str
        Names of the kept predictors, in their original order.
    support : ndarray of bool
        Which columns are kept.
    m_ : int
        The number kept.

    See Also
    --------
    SMART : takes ``screening=`` to screen before the fit.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> scr = mt.MarginalScreening(m=10)
    >>> ynames = list(demo["C"].columns)
    >>> xnames = list(demo["C"].index)
    >>> scr = scr.fit(target[ynames], target[xnames])
    >>> len(scr.kept)
    10
    """

    def __init__(self, m=None, *, norm="l2", kind="regression"):
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}; got {norm!r}")
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}; got {kind!r}")
        if m is not None and (isinstance(m, bool) or not isinstance(m, (int, np.integer))
                              or m < 1):
            raise ValueError(f"m must be a positive integer or None; got {m!r}")
        self.m, self.norm, self.kind = m, norm, kind
        self._formula = None

    # -- the statistic ------------------------------------------------------------------
    def marginal_statistics(self, endog, exog):
        """The p x q matrix of marginal slopes or correlations (centred data).

        Parameters
        ----------
        endog : array_like or DataFrame (n, q)
        exog : array_like or DataFrame (n, p)

        Returns
        -------
        DataFrame (p, q)
        """
        check_aligned(("endog", endog), ("exog", exog))
        Y, X = _as_frame(endog, "y", "endog"), _as_frame(exog, "x", "exog")
        if len(X) != len(Y):
            raise ValueError(f"endog and exog must have the same rows; got {len(Y)} and "
                             f"{len(X)}")
        Xa, Ya = X.to_numpy(float), Y.to_numpy(float)
        for name, a, cols in (("endog", Ya, Y.columns), ("exog", Xa, X.columns)):
            bad = ~np.isfinite(a).all(axis=0)
            if bad.any():
                raise ValueError(f"{name} has NaN or inf in column(s) "
                                 f"{[str(c) for c in cols[bad]][:5]}; drop those rows "
                                 "first (fit_formula drops them, as statsmodels' "
                                 "formulas do)")
        Xc, Yc = Xa - Xa.mean(axis=0), Ya - Ya.mean(axis=0)
        cross = Xc.T @ Yc                                       # x_j^T y_k
        xx = np.einsum("ij,ij->j", Xc, Xc)
        live_x = _varies(xx, Xa)              # each column judged on its own scale
        if self.kind == "regression":
            _warn_unit_dependence(Xa[:, live_x], X.columns[live_x])
            den = np.broadcast_to(xx[:, None], cross.shape)
            live = np.broadcast_to(live_x[:, None], cross.shape)
        else:
            yy = np.einsum("ij,ij->j", Yc, Yc)
            den = np.sqrt(np.outer(xx, yy))
            live = np.outer(live_x, _varies(yy, Ya))
        B = np.where(live, cross / np.where(live, den, 1.0), 0.0)
        return pd.DataFrame(B, index=X.columns, columns=Y.columns)

    def aggregate(self, B):
        """Scores ``s_j`` from the marginal statistics (the chosen norm over responses)."""
        A = np.abs(np.asarray(B, dtype=float))
        if self.norm == "l1":
            return A.sum(axis=1)
        if self.norm == "l2":
            return np.sqrt((A * A).sum(axis=1))
        return A.max(axis=1)

    # -- fitting ------------------------------------------------------------------------
    def fit(self, endog, exog):
        """Score the predictors and choose the kept set.

        Parameters
        ----------
        endog : array_like or DataFrame (n, q)
        exog : array_like or DataFrame (n, p)
            Without a constant column (a constant scores 0 and is never useful here).

        Returns
        -------
        self
        """
        B = self.marginal_statistics(endog, exog)
        self._formula = self._terms = None        # set again by fit_formula
        n, p = len(_as_frame(exog, "x")), B.shape[0]
        s = self.aggregate(B.to_numpy())
        m = self.m if self.m is not None else max(1, int(np.floor(n / np.log(max(n, 2)))))
        m = int(min(m, p))
        order = np.argsort(-s, kind="stable")
        support = np.zeros(p, dtype=bool)
        support[order[:m]] = True
        self.statistics = B
        self.scores = pd.Series(s, index=B.index, name=f"{self.norm} {self.kind} score")
        self.support = support
        self.kept = [str(c) for c in B.index[support]]
        self.m_ = m
        return self

    def transform(self, exog):
        """The kept columns of ``exog`` (by name for a DataFrame, by position otherwise)."""
        self._check_fitted()
        if isinstance(exog, pd.DataFrame):
            missing = [c for c in self.scores.index[self.support] if c not in exog.columns]
            if missing:
                raise ValueError(f"exog lacks the screened columns {missing[:5]}")
            return exog[list(self.scores.index[self.support])]
        a = np.asarray(exog, dtype=float)
        if a.ndim != 2 or a.shape[1] != self.support.size:
            raise ValueError(f"exog must have {self.support.size} columns; got shape "
                             f"{a.shape}")
        return a[:, self.support]

    def fit_transform(self, endog, exog):
        """:meth:`fit` then :meth:`transform` of the same ``exog``."""
        return self.fit(endog, exog).transform(exog)

    # -- formulas -----------------------------------------------------------------------
    def fit_formula(self, formula, data, missing="drop", eval_env=0):
        """Screen the right-hand-side columns of a patsy formula.

        Both sides are built by one patsy call on the same rows (the intercept is dropped
        for the screening); :meth:`formula` then gives the formula restricted to the
        kept terms.

        Parameters
        ----------
        formula : str
            ``"y1 + y2 ~ x1 + x2 + ..."`` (several responses joined by ``+``) or
            ``"y ~ ..."``.
        data : DataFrame
        missing : {"drop", "raise"}
            Rows with a missing value on either side are dropped (statsmodels' formula
            default) or refused.
        eval_env : int
            Frames above the caller in which patsy evaluates names (as statsmodels).

        Returns
        -------
        self
        """
        import patsy

        if not isinstance(formula, str) or formula.count("~") != 1:
            raise ValueError(f"formula must be a string 'y1 + y2 ~ x1 + x2'; got "
                             f"{formula!r}")
        if missing not in ("drop", "raise"):
            raise ValueError(f"missing must be 'drop' or 'raise'; got {missing!r}")
        lhs, rhs = (part.strip() for part in formula.split("~"))
        env = patsy.EvalEnvironment.capture(eval_env + 1).with_outer_namespace(
            {"np": np, "numpy": np})
        try:
            Y, X = patsy.dmatrices(f"{lhs} ~ {rhs} - 1", data, eval_env=env,
                                   NA_action=patsy.NAAction(
                                       "drop" if missing == "drop" else "raise"),
                                   return_type="dataframe")
        except patsy.PatsyError as err:
            raise ValueError(f"formula {formula!r}: {err}") from None
        self.fit(Y, X)
        self._formula = (lhs, rhs)
        self._terms = [(name, [str(c) for c in X.columns[sl]])
                       for name, sl in X.design_info.term_name_slices.items()]
        return self

    @property
    def kept_terms(self):
        """The formula terms with at least one kept column (after :meth:`fit_formula`)."""
        self._check_fitted()
        if self._formula is None:
            raise ValueError("formula() and kept_terms need a screening fitted by "
                             "fit_formula()")
        kept = set(self.kept)
        return [name for name, cols in self._terms if kept.intersection(cols)]

    def formula(self):
        """The formula of :meth:`fit_formula` with only the kept terms on the right.

        A term is kept whole when any of its columns is kept (the levels of a categorical
        term, the columns of a spline, go together), so the right-hand side may have a
        few more columns than ``kept``; transformations (``np.log(x)``, ``C(g)``) are
        written as in the original formula.
        """
        terms = self.kept_terms                     # checks fit_formula was used
        return f"{self._formula[0]} ~ " + " + ".join(terms)

    def summary_frame(self):
        """Scores, ranks and the kept flag of every predictor, best first."""
        self._check_fitted()
        order = np.argsort(-self.scores.to_numpy(), kind="stable")
        return pd.DataFrame({"score": self.scores.to_numpy()[order],
                             "rank": np.arange(1, order.size + 1),
                             "kept": self.support[order]},
                            index=self.scores.index[order])

    def summary_text(self):
        """One line for a results summary: ``"Screening: 150 of 3000 predictors kept (l2
        of regression marginals)"``."""
        self._check_fitted()
        return (f"Screening: {self.m_} of {self.support.size} predictors kept "
                f"({self.norm} of {self.kind} marginals)")

    def _check_fitted(self):
        if not hasattr(self, "support"):
            raise ValueError("call fit() (or fit_formula()) first")

    def __repr__(self):
        kept = f", kept {self.m_} of {self.support.size}" if hasattr(self, "support") else ""
        return f"MarginalScreening(m={self.m!r}, norm={self.norm!r}, kind={self.kind!r}{kept})"


def check_screen(screen):
    """A new, unfitted :class:`MarginalScreening` from a model's ``screen=`` argument.

    ``screen`` is None (no screening), a positive int ``m`` (``MarginalScreening(m)``) or
    a :class:`MarginalScreening` whose settings are copied (the model fits its own copy,
    so the caller's object is never changed).
    """
    if screen is None:
        return None
    if isinstance(screen, MarginalScreening):
        return MarginalScreening(screen.m, norm=screen.norm, kind=screen.kind)
    if isinstance(screen, (int, np.integer)) and not isinstance(screen, (bool, np.bool_)):
        if screen < 1:
            raise ValueError(f"screen must be a positive number of predictors; got {screen}")
        return MarginalScreening(int(screen))
    raise TypeError("screen must be a MarginalScreening, a positive int (the number of "
                    f"predictors kept) or None; got {type(screen).__name__}")


def screen_data(screen, data):
    """Screen a model's predictors on its own rows.

    Parameters
    ----------
    screen : MarginalScreening, int or None
        See :func:`check_screen`.
    data : mtltransfer.design.ModelData
        The model's data with every predictor.

    Returns
    -------
    data : ModelData
        ``data`` restricted to the kept predictors
        (:meth:`~mtltransfer.design.ModelData.select_columns`); unchanged without
        screening.
    screening : MarginalScreening or None
        The fitted screening.
    """
    scr = check_screen(screen)
    if scr is None:
        return data, None
    if not isinstance(data.exog, np.ndarray):
        raise ValueError("screen= needs the model's rows in memory (a model built from "
                         "statistics only, as on Dask, cannot be screened): screen the "
                         "columns first (MarginalScreening.fit_formula() on data in "
                         "memory) and give the formula of the kept ones")
    scr.fit(pd.DataFrame(data.endog, columns=data.ynames),
            pd.DataFrame(data.exog, columns=data.xnames))
    return data.select_columns(scr.kept), scr
