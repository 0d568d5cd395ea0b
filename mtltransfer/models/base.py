"""Base classes of every multi-response model and its results.

A model holds validated data (see :mod:`mtltransfer.design`) and never changes after
``__init__``; ``fit`` returns a new results object. Results put the names back on the
plain arrays the solvers return.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from functools import cached_property
from types import MappingProxyType

import numpy as np
import pandas as pd

from .. import design
from .._validation import (SCALE_RATIO_WARN, Param, check_params, declared_params,  # noqa: F401
                           front_end, new_data_argument)
from .. import plotting as _plotting
from ..exceptions import SingularMatrixWarning, ValueWarning, user_stacklevel
from ..gram import SufficientStats, kfold_stats
from ..solvers.linear import design_svd

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
RANK_PARAM = Param("int", 1, _rank_bound, none=True, why=_rank_why)


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
    def wrapper(self, *args, **kwargs):
        from .._threads import iteration_threads

        bound = signature.bind(self, *args, **kwargs).arguments
        call = {}
        for name, value in list(bound.items())[1:]:
            kind = signature.parameters[name].kind
            call.update(value if kind is inspect.Parameter.VAR_KEYWORD else {name: value})
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

    def exog_sd(self, chunk=65536):
        """Standard deviation of each predictor column (ddof 0), by two passes over row
        chunks (no temporary copy of the design); computed once."""
        if "_exog_sd" not in self.__dict__:
            X = self.exog
            mean = X.mean(axis=0)
            ss = np.zeros(X.shape[1])
            for start in range(0, X.shape[0], chunk):
                dev = X[start:start + chunk] - mean
                ss += np.einsum("ij,ij->j", dev, dev)
            self.__dict__["_exog_sd"] = np.sqrt(ss / max(X.shape[0], 1))
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
    """

    #: a short name of the estimation method, shown in the summary
    _method = ""
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

    @cached_property
    def stats(self):
        """:class:`~mtltransfer.gram.SufficientStats` of the rows (one pass, cached),
        weighted by the unit-mean weights when the model has weights (``n`` is then
        the number of rows still)."""
        return SufficientStats.from_arrays(self.exog, self.endog, self._unit_weights)

    def moments(self):
        """(Sxx, Sxy, Syy): centred when the model has an intercept."""
        return self.stats.moments(center=self.center)

    def fold_stats(self, n_folds):
        """Per-fold statistics of K-fold cross-validation: the seeded permutation of
        :func:`~mtltransfer.gram.kfold_stats`, or the hashed folds of
        :func:`~mtltransfer.design.hash_folds` for a model built with ``folds="hash"``."""
        row_hash = self.data.extra.get("row_hash")
        w = self._unit_weights
        if row_hash is None:
            return kfold_stats(self.exog, self.endog, n_folds, weights=w)
        fold = design.hash_folds(row_hash, n_folds)
        return [SufficientStats.from_arrays(self.exog[fold == k], self.endog[fold == k],
                                            None if w is None else w[fold == k])
                for k in range(n_folds)]

    def rank_rows(self):
        """(DesignSVD, centred Y) for the rank selection criterion; None where the model
        has statistics only (the criterion then runs on the moments)."""
        return self.design_svd, self.centred_rows[1]

    def select_rank(self, cap=None):
        """:func:`~mtltransfer.selection.select_rank_rsc` on this model's data."""
        from ..selection import select_rank_rsc

        rows = self.rank_rows()
        return select_rank_rsc(self.stats if rows is None else None, rows=rows,
                               center=self.center, cap=cap)

    def residual_ss(self, coef, intercept):
        """Residual sum of squares of each response of the fit (coef, intercept),
        ``sum_i w_i r_i^2`` with weights (statsmodels' WLS ``ssr``)."""
        r = self.endog - (self.exog @ coef + intercept)
        w = self.data.weights
        return (r ** 2).sum(0) if w is None else w @ (r ** 2)

    def total_ss(self):
        """Total sum of squares of each response, centred when the model has a constant
        (weighted, about the weighted mean, with weights: statsmodels' WLS)."""
        Y, w = self.endog, self.data.weights
        if w is None:
            centre = Y.mean(0) if self.k_constant else 0.0
            return ((Y - centre) ** 2).sum(0)
        centre = w @ Y / w.sum() if self.k_constant else 0.0
        return w @ ((Y - centre) ** 2)

    def replace_data(self, rows=None, endog=None):
        """The same model (same options and source) on rows ``rows`` of the data and/or
        with responses ``endog`` (n x q): the refits of the bootstrap."""
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

    @cached_property
    def centred_rows(self):
        """(X, Y) centred by their column means when the model has an intercept; with
        weights, centred by the weighted means and each row scaled by the square root of
        its unit-mean weight, so that ``||Yc - Xc C||^2`` is the weighted loss."""
        w = self._unit_weights
        if w is None:
            if not self.center:
                return self.exog, self.endog
            return self.exog - self.exog.mean(0), self.endog - self.endog.mean(0)
        root = np.sqrt(w)[:, None]
        if not self.center:
            return self.exog * root, self.endog * root
        s = self.stats
        return (self.exog - s.x_mean) * root, (self.endog - s.y_mean) * root

    @cached_property
    def design_svd(self):
        """:class:`~mtltransfer.solvers.linear.DesignSVD` of the centred rows in their
        equilibrated basis (units-free rank and least squares)."""
        return design_svd(self.centred_rows[0])

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
            const = " (with the intercept)" if self.center and any(
                np.ptp(self.exog[:, j]) == 0 for j in range(p)) else ""
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
        return state

    def __repr__(self):
        return (f"{type(self).__name__}(nobs={self.nobs}, k_exog={self.k_exog}, "
                f"k_endog={self.k_endog}, formula={self.formula!r})")


class Results:
    """Base of every results object: solver diagnostics, likelihood-based criteria,
    tuning traces and persistence.

    Attributes
    ----------
    model
        The model that was fitted.
    tuning : dict of str to DataFrame
        The traces of whatever was tuned, each under its own name (empty when nothing
        was tuned): tuning scores live here, never under ``bic``.
    converged : bool
    n_iter : int
    history : DataFrame
        Per-iteration diagnostics of the solver (empty for closed forms), indexed from 1.
    stop_reason : str
        ``"converged"``, ``"max_iter"``, ``"stalled"`` or ``"closed_form"``.
    bootstrap_results : mtltransfer.bootstrap.BootstrapResults or None
        The draws of the latest :meth:`bootstrap` call (None before any): their standard
        errors and intervals, for the summary and the user.
    fit_kwargs : dict
        The keywords the ``fit`` call was given (positional ones by name; not ``init``,
        ``verbose``, ``n_jobs`` or OLS's covariance options). Bootstrap replicates refit
        with them, the tuned hyperparameters fixed unless ``refit_tuning=True``.

    Notes
    -----
    One definition of each criterion for every model, statsmodels' Gaussian ones. The
    residuals fall into groups ``g`` (the responses of a multi-response model; the
    stacked tasks of a shared representation), each normal with its own variance at
    its maximum-likelihood value ``ssr_g / n_g``:

        llf = sum_g -n_g/2 (log(2 pi ssr_g / n_g) + 1),
        aic = -2 llf + 2 k_params,
        bic = -2 llf + log(nobs) k_params,

    with ``k_params`` the effective number of coefficients, intercepts included
    (statsmodels' ``df_model + k_constant`` for one response). With one response these
    are exactly statsmodels' OLS values.
    """

    #: row-dependent statistics kept by ``save(..., remove_data=True)``
    _row_cached = ()
    #: results of this class can be written by :func:`mtltransfer.save`
    _saveable = True
    #: the latest ``bootstrap()`` (None before any)
    bootstrap_results = None
    #: replaced by the fit's own dict (see the class docstring); read-only here
    fit_kwargs = MappingProxyType({})

    def __init__(self, model, *, solver=None, tuning=None):
        self.model = model
        self._solver = solver
        self.tuning = dict(tuning or {})

    @property
    def nobs(self):
        return self.model.nobs

    # -- likelihood and information criteria ------------------------------------------
    def _ssr_groups(self):
        """(ssr_g, n_g) arrays of the residual groups of the likelihood."""
        raise NotImplementedError

    @property
    def k_params(self):
        """Parameters counted by the information criteria (intercepts included)."""
        raise NotImplementedError

    @property
    def llf(self):
        """Gaussian log-likelihood, each residual group with its own variance."""
        ssr, n = self._ssr_groups()
        with np.errstate(divide="ignore"):
            return float(np.sum(-0.5 * n * (np.log(2 * np.pi * ssr / n) + 1)))

    @property
    def aic(self):
        """Akaike information criterion ``-2 llf + 2 k_params`` (statsmodels)."""
        return float(-2 * self.llf + 2 * self.k_params)

    @property
    def bic(self):
        """Bayesian information criterion ``-2 llf + log(nobs) k_params`` (statsmodels)."""
        return float(-2 * self.llf + np.log(self.nobs) * self.k_params)

    # -- solver diagnostics -----------------------------------------------------------
    @property
    def converged(self):
        return True if self._solver is None else bool(self._solver.converged)

    @property
    def n_iter(self):
        return 0 if self._solver is None else int(self._solver.n_iter)

    @property
    def stop_reason(self):
        return "closed_form" if self._solver is None else self._solver.stop_reason

    @property
    def history(self):
        """Per-iteration diagnostics, indexed from 1 (a recorded start point is dropped)."""
        if self._solver is None or not self._solver.history:
            return pd.DataFrame()
        h = pd.DataFrame(self._solver.history)
        if len(h) == self.n_iter + 1:        # the solver also recorded its start point
            h = h.iloc[1:]
        h.index = pd.RangeIndex(1, len(h) + 1, name="iteration")
        return h

    # -- bootstrap --------------------------------------------------------------------
    def bootstrap(self, n_boot=200, method=None, random_state=None, n_jobs=1,
                  refit_tuning=False, source_sd=None, source_cov=None, source_nobs=None):
        """Bootstrap draws of the fit and intervals from them.

        Parameters
        ----------
        n_boot : int
            Number of replicates.
        method : {"residual", "pairs"} or None
            Residual bootstrap (the design kept, responses redrawn from the fitted values
            and resampled residuals; the default) or pairs (rows resampled; within each
            task for a shared representation). See :mod:`mtltransfer.bootstrap`. A
            weighted fit resamples pairs (each row with its weight).
        random_state : int, numpy SeedSequence, numpy Generator or None
            Replicate b uses the b-th child seed (of ``SeedSequence(random_state)``, or
            spawned from the Generator): the draws do not depend on ``n_jobs``.
        n_jobs : int
            Parallel workers (joblib).
        refit_tuning : bool
            Re-tune every replicate (the selection's variability is then counted);
            otherwise the full-data hyperparameters are kept and the solvers warm-start.
        source_sd, source_cov, source_nobs
            Models with a source only, at most one of them: what is known of the source's
            error, when the source is a matrix or frame of coefficients (a results source
            is redrawn from its own sampling distribution without them; an array source
            without them is treated as exact, with a warning). ``source_sd``: entrywise
            standard error (a number or p x q; ``"estimate"`` estimates one from the
            source's trailing singular values; 0 treats the source as exact, silently).
            ``source_cov``: covariance of the column-stacked source (pq x pq), or a pair
            (row p x p, column q x q) of a Kronecker covariance ``column (x) row``.
            ``source_nobs``: the source's number of rows (the target's residual
            covariance and design stand in for the source's). See
            :mod:`mtltransfer.bootstrap`.

        Returns
        -------
        mtltransfer.bootstrap.BootstrapResults
            ``bse``, ``conf_int(alpha, kind)``, ``predict(exog, alpha, kind)`` and the
            draws; also stored as ``self.bootstrap_results``.
        """
        from ..bootstrap import bootstrap
        if method is None and getattr(getattr(self.model, "data", None), "weights",
                                      None) is not None:
            method = "pairs"           # rows keep their weights; residuals are not iid
        self.bootstrap_results = bootstrap(self, n_boot, method, random_state, n_jobs,
                                           refit_tuning, source_sd, source_cov, source_nobs)
        return self.bootstrap_results

    def default_bootstrap_method(self):
        return "residual"

    def warm_start_kwargs(self):
        """``fit`` keywords that start a refit near this solution (none by default)."""
        return {}

    def bootstrap_extra(self, rep):
        """Model-specific quantities of a bootstrap replicate ``rep`` (dict of arrays)."""
        return {}

    # -- persistence ------------------------------------------------------------------
    def save(self, path, remove_data=False):
        """Write the results to ``path`` in a data-only format (see
        :func:`mtltransfer.load`).

        Parameters
        ----------
        path : str or path-like
        remove_data : bool
            Write no training rows (statsmodels' name): the statistics computed from
            the rows are kept; ``fittedvalues`` and ``resid`` are then unavailable.
        """
        from ..io import save
        save(self, path, remove_data=remove_data)

    def remove_data(self):
        """Drop the training rows from these results, in place (statsmodels' name).

        The results become exactly what ``save(path, remove_data=True)`` and
        :func:`mtltransfer.load` give: the statistics computed from the rows that
        inference needs (for least squares the residual cross-products and the sandwich
        covariances, joint across the responses) are kept, so ``params``, ``predict``,
        ``summary``, ``bse``, ``cov_params``, ``conf_int`` and the tests work; the rows
        themselves (and so ``fittedvalues``, ``resid`` and refitting) are gone. The
        model the results were fitted from is not changed: the results hold a copy
        without the rows.
        """
        import io

        from ..io import load, save
        buffer = io.BytesIO()
        save(self, buffer, remove_data=True)
        buffer.seek(0)
        light = load(buffer)
        self.__dict__.clear()
        self.__dict__.update(light.__dict__)
        if self.bootstrap_results is not None:
            self.bootstrap_results.results = self


class MultiResponseResults(Results):
    """Results of a multi-response linear model (statsmodels-style).

    Attributes
    ----------
    model : MultiResponseModel
    params : DataFrame, shape (p, q)
        Coefficients; index = predictor names, columns = response names.
    intercept : Series, shape (q,)
    tuning : dict of str to DataFrame
        The traces of whatever was tuned (empty when nothing was), each under its own
        name (``"gcv"``, ``"cv"``, ``"rank"``, ``"bic_path"`` ...): tuning scores live
        here, never under ``bic``.
    converged : bool
    n_iter : int
    history : DataFrame
        Per-iteration diagnostics of the solver (empty for closed forms), indexed from 1.

    Notes
    -----
    Likelihood and information criteria follow statsmodels' Gaussian definitions, with one
    convention for several responses: the responses are independent normals, each with its
    own variance at its maximum-likelihood value ``ssr_j / n``, so

        llf = sum_j -n/2 (log(2 pi ssr_j / n) + 1),
        aic = -2 llf + 2 (df_model + q k_constant),
        bic = -2 llf + log(n) (df_model + q k_constant),

    where ``df_model`` is the effective number of coefficients of all responses (without
    the intercepts; for a closed form, q times the rank of the design). With one response
    these are exactly statsmodels' OLS values.

    See Also
    --------
    OLS
    Ridge
    ReducedRank
    NuclearNorm

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> res = mt.ReducedRank.from_formula(formula, target).fit()
    >>> isinstance(res, mt.MultiResponseResults)
    True
    >>> res.params.shape, res.intercept.shape
    ((30, 12), (12,))
    """

    #: row-dependent statistics kept by ``save(..., remove_data=True)``
    _row_cached = ("ssr_per_response", "rsquared", "centered_tss", "_log_weights")

    def __init__(self, model, coef, *, solver=None, config=None, df_model=None,
                 tuning=None):
        super().__init__(model, solver=solver, tuning=tuning)
        self._coef = np.asarray(coef, dtype=float)
        self._intercept = model.intercept_for(self._coef)
        self.config = dict(config or {})
        self._df_coef = float(self._coef.size if df_model is None else df_model)

    # -- coefficients -----------------------------------------------------------------
    @property
    def params(self):
        return pd.DataFrame(self._coef, index=self.model.exog_names,
                            columns=self.model.endog_names)

    @property
    def intercept(self):
        return pd.Series(self._intercept, index=self.model.endog_names, name="Intercept")

    @property
    def coef(self):
        """The p x q coefficient matrix as a plain array (a copy)."""
        return self._coef.copy()

    @property
    def screening(self):
        """The fitted :class:`~mtltransfer.MarginalScreening` of a model built with
        ``screen=`` (its ``kept`` predictors are those of ``params``); None otherwise."""
        return getattr(self.model, "screening", None)

    # -- fit --------------------------------------------------------------------------
    def _predict_array(self, X, const=1.0):
        return X @ self._coef + np.multiply.outer(const, self._intercept)

    @cached_property
    def _fitted(self):
        return self._predict_array(self.model.exog)

    @property
    def fittedvalues(self):
        return pd.DataFrame(self._fitted, index=self.model.data.row_labels,
                            columns=self.model.endog_names)

    @property
    def resid(self):
        return pd.DataFrame(self.model.endog - self._fitted, index=self.model.data.row_labels,
                            columns=self.model.endog_names)

    def predict(self, exog=None, transform=True, *, newdata=None):
        """Predicted responses (statsmodels' signature).

        Parameters
        ----------
        exog : DataFrame or array_like, optional
            New data. For a formula model, a DataFrame with the formula's columns (the
            design is rebuilt with the same categories and transformations); otherwise
            exactly the columns the model was fitted on (by name for a DataFrame, by
            position for an array, the constant column included). ``None`` gives the
            fitted values.
        transform : bool
            For a formula model, ``False`` takes ``exog`` as the design matrix itself
            (the fitted predictor columns, optionally with ``Intercept`` first).
        newdata : optional
            Another name for ``exog``.

        Returns
        -------
        DataFrame, shape (n_new, q)
            Indexed like the input; rows with a missing value are NaN.
        """
        exog = new_data_argument(exog, newdata)
        if exog is None:
            return self.fittedvalues
        if design.is_dask_frame(exog):       # lazy, partition by partition
            return front_end("dask", "predict_partitions")(self, exog, transform=transform)
        X, const, index = self.model.data.exog_for(exog, "exog", transform=transform)
        return pd.DataFrame(self._predict_array(X, const), index=index,
                            columns=self.model.endog_names)

    @cached_property
    def ssr_per_response(self):
        """Residual sum of squares of each response (Series)."""
        return pd.Series(self.model.residual_ss(self._coef, self._intercept),
                         index=self.model.endog_names)

    @property
    def ssr(self):
        """Total residual sum of squares ||Y - Yhat||_F^2."""
        return float(self.ssr_per_response.sum())

    @cached_property
    def centered_tss(self):
        """Per-response total sum of squares, centred when the model has a constant."""
        return pd.Series(self.model.total_ss(), index=self.model.endog_names)

    @cached_property
    def rsquared(self):
        """Per-response R^2 (centred when the model has a constant, as statsmodels)."""
        tss = self.centered_tss.to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(tss > 0, 1 - self.ssr_per_response.to_numpy() / tss, np.nan)
        return pd.Series(r2, index=self.model.endog_names)

    @property
    def rsquared_adj(self):
        """Per-response adjusted R^2 (statsmodels): ``1 - (nobs - k_constant) / df_resid
        (1 - rsquared)``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            adj = 1 - np.divide(self.nobs - self.model.k_constant, self.df_resid) * (
                1 - self.rsquared.to_numpy())
        return pd.Series(adj, index=self.model.endog_names)

    def _fit_statistics(self):
        """Per-response goodness of fit for the summary (DataFrame, responses x
        statistics); least squares adds its F test."""
        return pd.DataFrame({"R-squared": self.rsquared, "Adj. R-squared": self.rsquared_adj})

    @property
    def df_model(self):
        """Effective number of coefficients of all responses, without the constant
        (statsmodels' ``df_model`` for one response)."""
        return float(self._df_coef - self.model.k_endog * int(
            self.model.data.implicit_constant))

    @property
    def df_resid(self):
        """Residual degrees of freedom per response: ``n - df_model/q - k_constant``."""
        q = self.model.k_endog
        return float(self.nobs - self.df_model / q - self.model.k_constant)

    def _ssr_groups(self):
        return self.ssr_per_response.to_numpy(), np.full(self.model.k_endog, self.nobs)

    @cached_property
    def _log_weights(self):
        """``sum_i log w_i`` of the observation weights (0 unweighted)."""
        w = self.model.data.weights
        return 0.0 if w is None else float(np.log(w).sum())

    @property
    def llf(self):
        """Gaussian log-likelihood, each response with its own variance; with weights,
        statsmodels' WLS ``llf`` per response (``+ sum_i log(w_i) / 2``)."""
        return super().llf + 0.5 * self.model.k_endog * self._log_weights

    # -- bootstrap hooks (see mtltransfer.bootstrap) -----------------------------------
    def coefficient_arrays(self):
        """(coef p x q, intercept q) as plain arrays."""
        return self._coef, self._intercept

    def predict_draws(self, exog, coef, intercept, transform=True):
        """Predictions of new data for stacks of coefficients (n_draws, n_new, q)."""
        X, const, _ = self.model.data.exog_for(exog, "exog", transform=transform)
        return np.einsum("np,bpq->bnq", X, coef) + const[None, :, None] * intercept[:, None]

    def bootstrap_spec(self, method):
        from ..bootstrap import Resampler

        if self.model.data.weights is not None and method == "residual":
            raise ValueError("method='residual' resamples residuals of equal variance; a "
                             "weighted fit's residuals have variance sigma^2 / w_i: use "
                             "method='pairs' (the default with weights)")
        fitted = self._fitted
        resid = self.model.endog - fitted
        resid = resid - resid.mean(0)
        dof = self.df_resid
        if dof > 0:                  # unbiased variance rather than the in-sample one
            resid = resid * np.sqrt(self.nobs / dof)
        return Resampler(self, fitted, resid, method)

    @property
    def k_params(self):
        """``df_model + q k_constant``."""
        return self.df_model + self.model.k_endog * self.model.k_constant

    @property
    def scale(self):
        """Residual variance ``ssr / (q df_resid)`` pooled over responses (``ssr/(nq)``
        when no residual degrees of freedom are left)."""
        dof = self.model.k_endog * self.df_resid
        return self.ssr / (dof if dof > 0 else self.nobs * self.model.k_endog)

    # -- reporting --------------------------------------------------------------------
    plot_convergence = _plotting.plot_convergence
    plot_spectrum = _plotting.plot_spectrum
    plot_tuning = _plotting.plot_tuning

    def _summary_rows(self):
        """(left, right) rows of the top summary table; subclasses extend them."""
        m = self.model
        left = [("Dep. Variables:", ", ".join(m.endog_names) if m.k_endog <= 4 else
                 f"{m.k_endog} responses"),
                ("Model:", type(m).__name__),
                ("Method:", m._method + (", weighted" if m.data.weights is not None else "")),
                ("No. Observations:", m.nobs), ("No. Predictors (p):", m.k_exog),
                ("No. Responses (q):", m.k_endog), ("Intercept:", m.center)]
        right = [(f"{k}:", v) for k, v in self.config.items()]
        right += [("Df Model:", round(self.df_model, 2)),
                  ("Df Residuals:", round(self.df_resid, 2)),
                  *self._r2_rows(),
                  ("Log-Likelihood:", self.llf), ("AIC:", self.aic), ("BIC:", self.bic)]
        if self._solver is not None:
            right += [("Iterations:", self.n_iter), ("Converged:", self.converged)]
        return left, right

    def _r2_rows(self):
        """The top table's goodness of fit: one response's statistics by name (as
        statsmodels); for several, the mean R^2 (each response's in its own table)."""
        stats = self._fit_statistics()
        if self.model.k_endog == 1:
            return [(f"{name}:", float(stats.iloc[0][name])) for name in stats.columns]
        return [("Mean R-squared:", float(np.nanmean(self.rsquared)))]

    def summary(self, alpha=0.05):
        """A :class:`statsmodels.iolib.summary.Summary` of the fit.

        Print it, or use ``.as_text()``, ``.as_html()``, ``.as_latex()``. ``alpha``: the
        level of the intervals shown (closed-form or a stored bootstrap's). With several
        responses, a table gives each response's R-squared, adjusted R-squared (and for
        least squares its F test); above ``MAX_COEF_CELLS`` coefficients the compact
        per-response table gives R-squared.
        """
        from ..summary import MAX_COEF_CELLS, add_frame, coefficient_block, fmt, new_summary

        left, right = self._summary_rows()
        smry = new_summary(self, f"{type(self.model).__name__} Results", left, right)
        q = self.model.k_endog
        if 1 < q and q * self.model.k_exog <= MAX_COEF_CELLS:   # else: the compact table
            stats = self._fit_statistics()
            add_frame(smry, stats.map(fmt).astype(object), "Fit per response")
        coefficient_block(self, smry, alpha)
        if self.screening is not None:       # add_extra_txt replaces: keep earlier notes
            smry.add_extra_txt([t for t in (smry.extra_txt, self.screening.summary_text())
                                if t])
        return smry

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("_fitted",):  # cached values are recomputed after loading
            state.pop(key, None)
        return state

    def __repr__(self):
        return (f"<{type(self).__name__}: {type(self.model).__name__}, "
                f"nobs={self.nobs}, p={self.model.k_exog}, q={self.model.k_endog}>")


class PenalizedResults(MultiResponseResults):
    """Results of a tuned multi-response model (Ridge, ReducedRank, NuclearNorm, SMART).

    Adds the hyperparameters of the fit and how each was chosen ("given", "GCV", "RSC",
    "5-fold CV", "BIC" ...); ``tuning`` holds the traces of those that were tuned.

    Attributes
    ----------
    hyperparameters : dict
        Name to value (``rank``, ``lam``, ``alpha``, ``structural_rank``,
        ``subspace_rank``, ``weight`` as the model has them); each is also an attribute
        (``res.rank``, ``res.lam`` ...).
    chosen_by : dict
        Name to how it was chosen.
    """

    def __init__(self, model, coef, *, hyperparameters, chosen_by, solver=None,
                 df_model=None, tuning=None, config=None):
        self.hyperparameters = dict(hyperparameters)
        self.chosen_by = dict(chosen_by)
        if config is None:
            config = {}
            for name, value in self.hyperparameters.items():
                how = self.chosen_by.get(name)
                config[name] = value if how is None else f"{_fmt_value(value)} ({how})"
        super().__init__(model, coef, solver=solver, config=config, df_model=df_model,
                         tuning=tuning)

    def _hyper(self, name):
        if name not in self.hyperparameters:
            raise AttributeError(f"{type(self.model).__name__} results have no {name!r}; "
                                 f"hyperparameters: {list(self.hyperparameters)}")
        return self.hyperparameters[name]

    rank = property(lambda self: self._hyper("rank"), doc="The rank of the fit.")
    structural_rank = property(lambda self: self._hyper("structural_rank"),
                               doc="(r_u, r_v) of SMART.")
    lam = property(lambda self: self._hyper("lam"), doc="The penalty.")
    alpha = property(lambda self: self._hyper("alpha"), doc="The ridge penalty.")
    subspace_rank = property(lambda self: self._hyper("subspace_rank"),
                             doc="(d_u, d_v) of SourceSubspaceRRR.")
    weight = property(lambda self: self._hyper("weight"),
                      doc="The source's share of SourceMixture.")


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


def _fmt_value(value):
    from ..summary import fmt
    return fmt(value)
