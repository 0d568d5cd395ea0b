"""Base classes of every multi-response model (their results are in
:mod:`mtltransfer.models.results`).

A model holds validated data (see :mod:`mtltransfer.design`) and never changes after
``__init__``; it reads them through its data access (:mod:`mtltransfer.access`: rows in
memory, or statistics), and ``fit`` returns a new results object.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from functools import cached_property

import numpy as np
import pandas as pd

from .. import design
from .._validation import (SCALE_RATIO_WARN, Param, Parts, check_params,  # noqa: F401
                           declared_params, front_end, new_data_argument)
from ..exceptions import SingularMatrixWarning, ValueWarning, user_stacklevel
from ..access import RowAccess, StatsAccess, column_sd, needs_rows_message
# the results family lives in .results; imported here for the fit wrapper and for the
# modules that import it from here
from .results import MultiResponseResults, PenalizedResults, Results  # noqa: F401

FIT_BACKENDS = ("fast", "cvxpy")


def check_backend(backend):
    if backend not in FIT_BACKENDS:
        raise ValueError(f"backend must be 'fast' or 'cvxpy'; got {backend!r}")


def check_positive(name, value, allow_zero=True, allow_none=False):
    """Validate a scalar hyperparameter and return it as float."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not np.isscalar(value):
        raise TypeError(f"{name} must be a number; got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number; got {value!r}") from None
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}; got {value}")
    return value


def _rank_bound(model):
    return min(model.k_exog, model.k_endog)


def _rank_why(model):
    return (f"a rank is at most min(p, q): {model.k_exog} predictor(s), "
            f"{model.k_endog} response(s)")


#: a rank r of a p x q coefficient matrix, 1 <= r <= min(p, q) (None: selected)
RANK_PARAM = Param("int", 1, _rank_bound, none=True, why=_rank_why, tuned=True)
#: the dimensions (d_u, d_v) of the source directions a source-aware fit keeps,
#: 0 <= d_u <= p, 0 <= d_v <= q (a scalar ties them; each fit checks its finer bounds)
SUBSPACE_PAIR_PARAM = Parts(
    {"d_u": Param("int", 0, lambda m: m.k_exog,
                  why=lambda m: f"d_u <= p = {m.k_exog} predictor(s)"),
     "d_v": Param("int", 0, lambda m: m.k_endog,
                  why=lambda m: f"d_v <= q = {m.k_endog} response(s)")},
    none=True, what="a pair (d_u, d_v)", tuned=True)


def check_int(name, value, low, high):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}]; got {value}")
    return int(value)


def warn_penalty_scale(model):
    """Warn when a penalised model's predictors have wildly different scales."""
    sd = model.exog_sd()
    live = sd > 0
    if live.sum() < 2:
        return
    hi, lo = int(np.argmax(np.where(live, sd, -np.inf))), \
        int(np.argmin(np.where(live, sd, np.inf)))
    if sd[hi] > SCALE_RATIO_WARN * sd[lo]:
        names = model.exog_names
        warnings.warn(f"{type(model).__name__}: the predictors' scales differ by a factor "
                      f"{sd[hi] / sd[lo]:.2g} ({names[hi]} vs {names[lo]}); the penalty is "
                      "not invariant to units, so it shrinks small-scale columns far more. "
                      "Standardise the predictors (e.g. standardize() in the formula) for a "
                      "penalty on a common scale", ValueWarning,
                      stacklevel=user_stacklevel())


#: ``fit`` keywords not kept in ``results.fit_kwargs``: a start, reporting and
#: parallelism options, and the covariance options of OLS (they may hold per-row arrays,
#: and they do not change the coefficients a refit on resampled rows computes)
_NOT_REPLAYED = ("init", "verbose", "n_jobs", "cov_type", "cov_kwds", "use_t")


def _recording_fit(fit):
    """``fit`` that also stores the keywords it was called with on its results
    (``results.fit_kwargs``: a bootstrap replicate refits with the same options), and
    runs with one BLAS thread when the model's per-iteration products are small
    (``model._product_flops()``, :func:`mtltransfer._threads.iteration_threads`)."""
    signature = inspect.signature(fit)

    @functools.wraps(fit)
    def wrapper(self, *args, tuning="cv", holdout=None, holdout_seed=0, **kwargs):
        from .._threads import iteration_threads

        bound = signature.bind(self, *args, **kwargs).arguments
        call = {}
        for name, value in list(bound.items())[1:]:
            kind = signature.parameters[name].kind
            call.update(value if kind is inspect.Parameter.VAR_KEYWORD else {name: value})
        if tuning != "cv" or holdout is not None or holdout_seed != 0:
            # one validation split, no refit (mtltransfer.holdout), for every tuned model
            from ..holdout import HOLDOUT_SHARE, TUNING_OPTIONS, fit_holdout
            if tuning not in TUNING_OPTIONS:
                raise ValueError(f"tuning must be one of {list(TUNING_OPTIONS)}; got "
                                 f"{tuning!r}")
            if tuning != "holdout":
                raise ValueError("holdout= and holdout_seed= are the split of "
                                 "tuning='holdout'; pass tuning='holdout' with them")
            return fit_holdout(self, wrapper, call,
                               HOLDOUT_SHARE if holdout is None else holdout, holdout_seed)
        check_params(declared_params(type(self)), call, self)
        with iteration_threads(self._product_flops()):
            res = fit(self, *args, **kwargs)
        if isinstance(res, Results):
            res.fit_kwargs = {k: v for k, v in call.items() if k not in _NOT_REPLAYED}
        return res

    wrapper._records_call = True
    return wrapper


class DataViews:
    """Read-only views of a model's validated data (``self.data``, a ModelData), and the
    one construction path of every model: ``from_formula`` builds a
    :class:`~mtltransfer.design.ModelData` and hands it to ``__init__`` as ``endog``."""

    #: the ``fit`` options every model shares, declared once (see
    #: :mod:`mtltransfer._validation`); each estimator adds its own in its class
    _param_table = {
        "tol": Param("real", 0, low_open=True, none=True),
        "max_iter": Param("int", 1, 10 ** 7, none=True),
        "verbose": Param("bool"),
        "backend": Param("option", options=FIT_BACKENDS),
        "n_folds": Param("int", 2),
        "n_lams": Param("int", 2, 10 ** 5),
        "n_alphas": Param("int", 2, 10 ** 5),
        "n_weights": Param("int", 2, 10 ** 5),
    }

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if fit is not None and not getattr(fit, "_records_call", False):
            cls.fit = _recording_fit(fit)

    @staticmethod
    def _validated(endog, exog, intercept, missing):
        """The model's data: arrays are validated; a ModelData (from ``from_formula``)
        is taken as it is."""
        if isinstance(endog, design.ModelData):
            if exog is not None or intercept is not None:
                raise TypeError("a model built from a ModelData takes no exog or "
                                "intercept: they are part of the ModelData")
            return endog
        return design.from_arrays(endog, exog, intercept=intercept, missing=missing)

    @classmethod
    def _formula_data(cls, formula, data, missing, eval_env, folds=None):
        """ModelData of a formula; ``eval_env`` counts frames above from_formula's caller.

        ``folds="hash"`` records each row's content hash, so that cross-validation uses
        the hashed folds of :func:`mtltransfer.design.hash_folds` (as on Dask)."""
        import patsy

        if folds not in (None, "random", "hash"):
            raise ValueError(f"folds must be 'random' or 'hash'; got {folds!r}")
        env = patsy.EvalEnvironment.capture(eval_env + 2).with_outer_namespace(
            {"np": np, "numpy": np})
        return design.from_formula(formula, data, missing=missing,
                                   max_endog=cls._formula_max_endog, eval_env=env,
                                   hash_rows=folds == "hash")

    def _product_flops(self):
        """The size of a fit's large products, for the BLAS thread rule of ``fit``: the
        solvers' iterations (``Sxx @ C``, 2 p^2 q) or the pass over the rows that forms
        the moments (2 n p^2), whichever is larger."""
        return 2.0 * self.k_exog ** 2 * max(self.k_endog, self.nobs)

    def exog_sd(self):
        """Standard deviation of each predictor column (ddof 0); computed once."""
        if "_exog_sd" not in self.__dict__:
            self.__dict__["_exog_sd"] = column_sd(self.exog)
        return self.__dict__["_exog_sd"]

    #: how many response columns the formula may have (None: any)
    _formula_max_endog = None

    @property
    def exog(self):
        return self.data.exog

    @property
    def endog_names(self):
        return list(self.data.ynames)

    @property
    def exog_names(self):
        return list(self.data.xnames)

    @property
    def formula(self):
        return self.data.formula

    @property
    def nobs(self):
        return self.data.nobs

    @property
    def k_exog(self):
        return self.exog.shape[1]

    @property
    def k_constant(self):
        """1 if the model has a constant, fitted or spanned by the predictors (statsmodels)."""
        return self.data.k_constant

    @property
    def center(self):
        """Whether an unpenalised intercept is fitted (by centring X and Y)."""
        return bool(self.data.intercept)


class MultiResponseModel(DataViews):
    """Multi-response linear model ``Y = 1 b^T + X C + E`` (base class).

    Parameters
    ----------
    endog : array_like or DataFrame, shape (n, q)
        Responses.
    exog : array_like or DataFrame, shape (n, p)
        Predictors. A constant column is the intercept (see ``intercept``).
    intercept : bool or None, default None
        As statsmodels: ``None`` fits an intercept when ``exog`` has a constant column
        (that column is the intercept) and none otherwise; ``True`` always fits one,
        ``False`` never. The intercept is unpenalised and handled by centring X and Y
        (the penalised or low-rank part never sees it). Formula models take it from the
        formula (``- 1`` removes it).
    missing : {"raise", "drop"}
        What to do with rows containing NaN/inf.
    weights : array_like or Series, shape (n,), optional
        Observation weights, as statsmodels' ``WLS``: the fit minimises the weighted
        loss ``(1 / 2 sum w) sum_i w_i ||y_i - b - C^T x_i||^2`` (plus the model's
        penalty), so weights scaled by a constant give the same fit. Positive and
        finite, one per row (rows dropped for missing values drop their weight); a
        Series is aligned with the data by index. Least squares then reports
        statsmodels' WLS inference, ``ssr = sum_i w_i r_i^2`` and WLS's ``llf``.

    Notes
    -----
    pandas inputs must carry the same row index (they are never paired by position).

    Every tuned model's ``fit`` also takes ``tuning="holdout"`` (with ``holdout=``, a
    share of the rows, their positions or a boolean mask, and ``holdout_seed=``): the
    hyperparameters are chosen on one validation split and the chosen candidate's fit
    on the training rows is the result, with no refit (:mod:`mtltransfer.holdout`).
    The default, ``tuning="cv"``, keeps each model's own criterion.
    """

    #: a short name of the estimation method, shown in the summary
    _method = ""
    #: why the model cannot be fitted from sufficient statistics alone (None: it can,
    #: and front ends without rows, such as Dask, take it); see mtltransfer.access
    _needs_rows = None
    #: the fitted :class:`~mtltransfer.MarginalScreening` of a model built with
    #: ``screen=`` (None otherwise)
    screening = None

    def __init__(self, endog, exog=None, *, intercept=None, missing="raise", weights=None):
        self.data = self._validated(endog, exog, intercept, missing)
        if weights is not None:
            if isinstance(weights, pd.Series):
                design.check_aligned(*[(n, o) for n, o in (("endog", endog), ("exog", exog))
                                       if isinstance(o, (pd.Series, pd.DataFrame))],
                                     ("weights", weights))
            self.data = design.with_weights(self.data, weights)

    @classmethod
    def from_formula(cls, formula, data, *, subset=None, missing="raise", eval_env=0,
                     folds=None, **kwargs):
        """Build the model from a patsy formula and a DataFrame.

        Parameters
        ----------
        formula : str
            ``"Y1 + Y2 ~ x1 + np.log(x2) + C(group)"``: responses on the left. The
            intercept (dropped with ``- 1``) is handled by centring.
        data : DataFrame or dask.dataframe.DataFrame
            A Dask DataFrame is fitted where it lives, from sufficient statistics
            (:mod:`mtltransfer.dask`; needs ``pip install "mtltransfer[dask]"``).
        subset : array_like, optional
            The rows of ``data`` to use, as statsmodels: a boolean mask (a Series aligned
            by index, or one value per row) or row labels.
        weights : str, Series or array_like, optional
            Observation weights (WLS, see the class): a column of ``data``, a Series
            aligned with it, or one value per row of ``data``.
        missing : {"raise", "drop"}
        eval_env : int
            Frames above the caller whose names the formula may use (as in patsy).
        folds : {"random", "hash"} or None
            The folds of cross-validation: a seeded random permutation of the rows
            (``"random"``, the default in memory) or a hash of each row's content
            (``"hash"``, the only rule on Dask and its default): the same rows then
            give the same folds in memory and on Dask.
        **kwargs
            Passed to the model's constructor (for example ``source=`` for SMART).
        """
        if design.is_dask_frame(data):
            if subset is not None:
                raise TypeError("subset= is for in-memory data; select the rows of a Dask "
                                "DataFrame first (data[mask])")
            if kwargs.get("weights") is not None:
                raise TypeError("weights= is for in-memory data; a Dask DataFrame is "
                                "fitted unweighted")
            return front_end("dask", "model_from_dask")(cls, formula, data, missing=missing,
                                   eval_env=eval_env + 1, folds=folds, **kwargs)
        if kwargs.get("weights") is not None:
            kwargs["weights"] = _formula_weights(data, kwargs["weights"])
        data, kwargs = _subset(data, subset, kwargs)
        return cls(cls._formula_data(formula, data, missing, eval_env, folds), **kwargs)

    # -- data views (shared with SharedRepresentation via DataViews) -------------------
    @property
    def endog(self):
        return self.data.endog

    @property
    def k_endog(self):
        return self.endog.shape[1]

    @property
    def weights(self):
        """Observation weights (ndarray, one per row used) or None (unweighted)."""
        return self.data.weights

    @property
    def _unit_weights(self):
        """The weights scaled to mean one (``w n / sum w``; None unweighted): the
        solvers' loss ``(1/2n) sum w~_i ||r_i||^2`` is the weighted loss of the class."""
        w = self.data.weights
        return None if w is None else w * (len(w) / w.sum())

    # -- data access: every fit reads its data through ``self.access`` ----------------
    @property
    def access(self):
        """The model's :class:`~mtltransfer.access.DataAccess`: a
        :class:`~mtltransfer.access.RowAccess` of its rows, or the statistics-backed
        :class:`~mtltransfer.access.StatsAccess` a front end without rows supplied
        (:meth:`_with_access`). Built on first use."""
        access = self.__dict__.get("_access")
        if access is None:
            if "_fold_cache" in self.__dict__:   # a statistics-backed model saved by 0.1
                access = StatsAccess(self.__dict__["stats"], self.center,
                                     self.__dict__["_fold_cache"])
            else:
                access = RowAccess(self.data, self.__dict__.get("stats"))
            self.__dict__["_access"] = access
        return access

    @classmethod
    def _with_access(cls, data, access, **kwargs):
        """The model of ``data`` (a ModelData) that reads its statistics from ``access``
        (a front end without rows supplies a :class:`~mtltransfer.access.StatsAccess`)."""
        where = getattr(access, "where", "statistics")
        message = None if access.has_rows else needs_rows_message(cls, where)
        if message is not None:
            raise TypeError(message)
        model = cls(data, **kwargs)
        model.__dict__["_access"] = access
        return model

    @cached_property
    def stats(self):
        """:class:`~mtltransfer.gram.SufficientStats` of the rows (one pass, cached),
        weighted by the unit-mean weights when the model has weights (``n`` is then
        the number of rows still)."""
        return self.access.stats

    def moments(self):
        """(Sxx, Sxy, Syy): centred when the model has an intercept."""
        return self.access.moments()

    def cv_folds(self, n_folds, what="cross-validation"):
        """The fold provider of every cross-validated choice: ``(folds, K)``, the
        statistics of the K folds (:meth:`fold_stats`, ``n_folds`` checked against the
        rows), or, inside ``fit(tuning="holdout")``, the one validation fold whose
        training part is this model's rows (K = 1, :mod:`mtltransfer.holdout`)."""
        from ..selection import check_folds

        split = self.__dict__.get("_holdout")
        if split is not None:
            return split.folds(), 1
        n_folds = check_folds(n_folds, self.nobs, type(self).__name__, what)
        return self.fold_stats(n_folds), n_folds

    def fold_stats(self, n_folds):
        """Per-fold statistics of K-fold cross-validation: the seeded permutation of
        :func:`~mtltransfer.gram.kfold_stats`, or the hashed folds of
        :func:`~mtltransfer.design.hash_folds` for a model built with ``folds="hash"``
        (or from a Dask DataFrame). Rows that are copies of one observation (a
        pairs-bootstrap replicate, :meth:`row_multiplicity`) stay in one fold: the
        seeded permutation is of the distinct observations (a copy on each side of a
        split would be scored on a row it was fitted on)."""
        if self.row_multiplicity() is None:
            return self.access.fold_stats(n_folds)
        from ..gram import SufficientStats

        ids, inverse = np.unique(self.data.extra["row_id"], return_inverse=True)
        if not 2 <= n_folds <= ids.size:
            raise ValueError(f"n_folds must be an integer in [2, {ids.size}] (the distinct "
                             f"observations); got {n_folds!r}")
        fold_of = np.empty(ids.size, dtype=int)
        for k, block in enumerate(np.array_split(np.random.default_rng(0).permutation(
                ids.size), n_folds)):
            fold_of[block] = k
        fold = fold_of[inverse.ravel()]
        X, Y, w = self.data.exog, self.data.endog, self.access.unit_weights
        return [SufficientStats.from_arrays(X[fold == k], Y[fold == k],
                                            None if w is None else w[fold == k])
                for k in range(n_folds)]

    def rank_rows(self):
        """(DesignSVD, centred Y) for the rank selection criterion; None where the model
        has statistics only (the criterion then runs on the moments)."""
        return self.access.rank_rows()

    def row_multiplicity(self):
        """How many rows are copies of each row's observation (rows drawn with repeats,
        as in a pairs-bootstrap replicate: :meth:`replace_data`), or None when every
        row is a distinct observation."""
        extra = getattr(self.data, "extra", None)
        row_id = extra.get("row_id") if extra else None
        if row_id is None or not self.access.has_rows:
            return None
        _, inverse, counts = np.unique(row_id, return_inverse=True, return_counts=True)
        return None if counts.max() == 1 else counts[inverse.ravel()]

    def select_rank(self, cap=None):
        """:func:`~mtltransfer.selection.select_rank_rsc` on this model's data (rows
        that are copies of one observation counted once: :meth:`row_multiplicity`)."""
        from ..selection import select_rank_rsc

        rows = self.rank_rows()
        return select_rank_rsc(self.stats if rows is None else None, rows=rows,
                               center=self.center, cap=cap,
                               multiplicity=self.row_multiplicity())

    def exog_sd(self):
        """Standard deviation of each predictor column (ddof 0); computed once."""
        if "_exog_sd" not in self.__dict__:
            self.__dict__["_exog_sd"] = self.access.exog_sd()
        return self.__dict__["_exog_sd"]

    def residual_ss(self, coef, intercept):
        """Residual sum of squares of each response of the fit (coef, intercept),
        ``sum_i w_i r_i^2`` with weights (statsmodels' WLS ``ssr``)."""
        return self.access.residual_ss(coef, intercept)

    def total_ss(self):
        """Total sum of squares of each response, centred when the model has a constant
        (weighted, about the weighted mean, with weights: statsmodels' WLS)."""
        return self.access.total_ss(self.k_constant)

    def replace_data(self, rows=None, endog=None):
        """The same model (same options and source) on rows ``rows`` of the data and/or
        with responses ``endog`` (n x q): the refits of the bootstrap."""
        if not self.access.has_rows:
            raise TypeError(f"{type(self).__name__} holds statistics, not rows: the "
                            "bootstrap needs the rows in memory")
        return type(self)(self.data.take(rows, endog), **self.init_options())

    def init_options(self):
        """Constructor keywords besides the data (a source, for instance)."""
        return {}

    def intercept_for(self, C):
        """The intercept that goes with coefficients C: ``b = ybar - C^T xbar`` when the
        model fits one (centring), else zeros."""
        if not self.center:
            return np.zeros(self.k_endog)
        return self.stats.y_mean - np.asarray(C).T @ self.stats.x_mean

    @property
    def centred_rows(self):
        """(X, Y) centred by their column means when the model has an intercept (see
        :meth:`~mtltransfer.access.RowAccess.centred_rows`), or the statistics'
        pseudo-rows (:class:`~mtltransfer.access.StatsAccess`)."""
        return self.access.centred_rows()

    @property
    def design_svd(self):
        """:class:`~mtltransfer.solvers.linear.DesignSVD` of the centred rows in their
        equilibrated basis (units-free rank and least squares)."""
        return self.access.design_svd()

    def collinear_groups(self):
        """Names of the predictors in each collinear set: the nonzero entries of each
        null-space vector of the equilibrated design (:attr:`design_svd`); empty when the
        design has full column rank."""
        names = self.exog_names
        groups = []
        for v in self.design_svd.null:
            cols = [names[j] for j in np.flatnonzero(np.abs(v) > 1e-8)]
            if cols and cols not in groups:
                groups.append(cols)
        return groups

    def warn_design(self):
        """Warn when least squares on this design is not identified.

        A ``SingularMatrixWarning`` names the columns of each collinear set (the
        null space of the equilibrated design), or says p > n.
        """
        dsvd = self.design_svd
        p = self.k_exog
        if dsvd.rank == p:
            return
        n_eff = self.nobs - int(self.center)
        if p > n_eff:
            msg = (f"more predictors ({p}) than rows{' after centring' if self.center else ''}"
                   f" ({n_eff}): least squares is not identified; the minimum-norm "
                   "solution (in the equilibrated basis) is reported")
        else:
            what = "; ".join(", ".join(g) for g in self.collinear_groups()[:5])
            const = " (with the intercept)" if self.center and \
                self.access.constant_columns().any() else ""
            msg = (f"the design is rank deficient (rank {dsvd.rank} of {p} predictors): "
                   f"collinear columns{const}: {what}. The minimum-norm solution (in the "
                   "equilibrated basis) is reported; its coefficients for these columns "
                   "are not identified")
        warnings.warn(msg, SingularMatrixWarning, stacklevel=user_stacklevel())

    def __getstate__(self):
        # row-sized caches are recomputed from the data when needed
        state = self.__dict__.copy()
        for key in ("centred_rows", "design_svd"):
            state.pop(key, None)
        if getattr(state.get("_access"), "has_rows", False):
            del state["_access"]          # rebuilt from the rows
        return state

    def __repr__(self):
        return (f"{type(self).__name__}(nobs={self.nobs}, k_exog={self.k_exog}, "
                f"k_endog={self.k_endog}, formula={self.formula!r})")


def _formula_weights(data, weights):
    """Weights given to ``from_formula`` as one value per row of ``data``: a column name,
    a Series aligned by index, or an array."""
    if isinstance(data, pd.DataFrame):
        weights = design.column_or_aligned(data, weights, "weights")
    return np.asarray(weights.to_numpy(dtype=float) if isinstance(weights, pd.Series)
                      else weights)


def _subset(data, subset, kwargs):
    """The rows of the formula's data that ``subset=`` selects, and the constructor's
    keywords with the weights of those rows (a dict of columns becomes a DataFrame;
    other types are left to the formula front end to refuse)."""
    if subset is None:
        return data, kwargs
    frame = pd.DataFrame(data) if isinstance(data, dict) else data
    if not isinstance(frame, pd.DataFrame):
        return data, kwargs
    pos = design.subset_positions(frame, subset)
    w = kwargs.get("weights")
    if w is not None and np.ndim(w) == 1 and len(w) == len(frame):
        kwargs = dict(kwargs, weights=w[pos])
    return frame.iloc[pos], kwargs
