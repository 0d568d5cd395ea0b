"""scikit-learn estimators for the package's models (``pip install "mtltransfer[sklearn]"``).

Each regressor wraps one model: its hyperparameters (and the few solver options worth
searching over) are constructor parameters with the native ``fit``'s defaults, so
``None`` still means "tuned automatically"; ``fit(X, y)`` builds the model and calls its
``fit`` with them; the package's own results object is kept as ``results_``, with the
statsmodels-style summary, inference and bootstrap. The regressors are generated from one
table (:data:`ESTIMATORS`): one row per model, no per-model code.

Conventions (scikit-learn's):

* ``coef_`` is (n_responses, n_features), or (n_features,) when ``y`` is 1-d, so that
  ``predict(X) = X @ coef_.T + intercept_``; ``intercept_`` is (n_responses,) or a float;
* ``rank_``: the rank the results report (:func:`fitted_rank`); ``n_iter_`` where the
  model has ``max_iter``; ``hyperparameters_``: the values used, given or tuned;
* ``score`` is R^2 averaged over the responses (``r2_score``'s ``"uniform_average"``);
* ``feature_names_in_`` from a DataFrame ``X`` (the model's predictor names; a source
  DataFrame is aligned to them by name); ``set_output(transform="pandas")`` makes
  ``predict`` return a DataFrame (a Series for 1-d ``y``) labelled with the response
  names and ``X``'s index.

:class:`SharedRepresentationRegressor` takes the task labels as ``fit(X, y,
groups=...)``; ``predict`` and ``score`` take them too. The three methods request
``groups`` by default, so with ``sklearn.set_config(enable_metadata_routing=True)``,
``cross_val_score(est, X, y, params={"groups": g})`` hands each fold's labels to ``fit``
and to ``score``.

The package's core never imports this module or scikit-learn.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data

from .models.linear import OLS, NuclearNorm, ReducedRank, Ridge
from .models.shared import SharedRepresentation
from .smart.model import SMART
from .models.sparse import RSSVD, SOFAR, SparseReducedRank
from .models.transfer import NuclearContrast, RidgeToSource, SourceMixture, SourceSubspaceRRR
from .models.transfer_family import Transfer

__all__ = ["ESTIMATORS", "MtlTags", "fitted_rank"]


@dataclass(slots=True)
class MtlTags(Tags):
    """scikit-learn's tags plus the checks of ``sklearn.utils.estimator_checks`` that
    cannot apply to the estimator as configured: ``{check name: reason}`` (pass it as
    ``expected_failed_checks`` of ``parametrize_with_checks``/``check_estimator``)."""

    expected_failed_checks: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    """One row of the table: the regressor ``name`` wraps ``model``.

    ``fit`` names the keywords of ``model.fit`` that become constructor parameters (their
    defaults are read from ``model.fit``'s signature); ``source`` adds a ``source``
    parameter (the model's constructor keyword); ``groups`` marks the multi-task model
    (``fit(X, y, groups=...)``, one response); ``summary`` is the first line of the
    class docstring.
    """

    name: str
    model: type
    fit: tuple
    summary: str
    source: bool = False
    groups: bool = False


#: the regressors: one row each
ESTIMATORS = (
    Spec("SMARTRegressor", SMART,
         ("rank", "structural_rank", "lam", "tol", "max_iter", "n_folds", "n_jobs"),
         "Spectral transfer (SMART) from a source study's coefficient matrix.", source=True),
    Spec("ReducedRankRegressor", ReducedRank, ("rank",),
         "Reduced-rank regression (exact closed form)."),
    Spec("NuclearNormRegressor", NuclearNorm, ("lam", "tol", "max_iter", "n_lams", "n_folds"),
         "Nuclear-norm penalised multi-response regression."),
    Spec("RidgeRegressor", Ridge, ("alpha", "n_alphas"),
         "Multi-response ridge regression (alpha by GCV unless given)."),
    Spec("OLSRegressor", OLS, (), "Multi-response least squares."),
    Spec("RidgeToSourceRegressor", RidgeToSource, ("alpha", "n_alphas"),
         "Ridge shrinking towards the source's coefficients.", source=True),
    Spec("NuclearContrastRegressor", NuclearContrast,
         ("lam", "tol", "max_iter", "n_lams", "n_folds"),
         "Nuclear-norm penalty on the contrast with the source's coefficients.", source=True),
    Spec("SourceSubspaceRRRRegressor", SourceSubspaceRRR, ("rank", "subspace_rank", "n_folds"),
         "Reduced-rank regression inside the source's leading singular subspaces.",
         source=True),
    Spec("SourceMixtureRegressor", SourceMixture, ("weight", "rank", "n_folds", "n_weights"),
         "Mixture of the source's coefficients and the target-only reduced-rank fit.",
         source=True),
    Spec("TransferRegressor", Transfer, ("candidates", "n_folds", "folds", "rule"),
         "The transfer method chosen by cross-validation for the data (mt.Transfer).",
         source=True),
    Spec("SparseReducedRankRegressor", SparseReducedRank,
         ("lam", "rank", "criterion", "n_lams", "adaptive", "gamma", "tol", "max_iter"),
         "Sparse reduced-rank regression (row group lasso, SRRR)."),
    Spec("SOFARRegressor", SOFAR,
         ("lam", "rank", "criterion", "n_lams", "n_folds", "gamma", "tol", "max_iter"),
         "Sparse orthogonal factor regression (SOFAR)."),
    Spec("RSSVDRegressor", RSSVD, ("lam", "rank", "criterion", "n_lams", "gamma", "tol",
                                   "max_iter"),
         "Reduced-rank sparse SVD regression (RSSVD)."),
    Spec("SharedRepresentationRegressor", SharedRepresentation,
         ("k", "method", "lam", "tol", "max_iter", "criterion"),
         "Multi-task regression with a shared linear representation (tasks from groups).",
         groups=True),
)

_SOURCE_DOC = """source : array_like, DataFrame, results or callable
    The source study's coefficient matrix, as the model's ``source=``: a p x q array
    (positional), a DataFrame indexed by predictor names with response names as
    columns (aligned by name to ``feature_names_in_`` and the response names), or
    fitted results. A callable ``source(feature_names, response_names)`` returning
    one of these is called at fit with the names the model sees (for a source that
    must follow the features a pipeline produces)."""


def fitted_rank(results, coef):
    """The rank a fit reports: ``fitted_rank``, ``rank`` or ``k`` of the results'
    hyperparameters (in that order), else the numerical rank of the p x q ``coef``."""
    hyper = getattr(results, "hyperparameters", None) or {}
    for key in ("fitted_rank", "rank", "k"):
        if hyper.get(key) is not None:
            return int(hyper[key])
    return int(np.linalg.matrix_rank(coef))


def _names(obj, prefix, k):
    """Column names of a pandas y, else the package's defaults (``Y1``, ...)."""
    if isinstance(obj, pd.DataFrame):
        return [str(c) for c in obj.columns]
    if isinstance(obj, pd.Series) and obj.name is not None:
        return [str(obj.name)]
    return [f"{prefix}{j + 1}" for j in range(k)]


#: the estimator checks that fit the estimator as configured (a SharedRepresentation on one
#: task, since they pass no groups; a source model with the source it was given)
_CHECKS_THAT_FIT = (
    "check_dict_unchanged", "check_dont_overwrite_parameters", "check_dtype_object",
    "check_estimators_dtypes", "check_estimators_fit_returns_self",
    "check_estimators_nan_inf", "check_estimators_overwrite_params",
    "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_fit2d_1feature", "check_fit2d_predict1d", "check_fit_check_is_fitted",
    "check_fit_idempotent", "check_fit_score_takes_y",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_n_features_in", "check_n_features_in_after_fitting",
    "check_non_transformer_estimators_n_iter",
    "check_pipeline_consistency", "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input", "check_regressor_data_not_an_array",
    "check_regressor_multioutput",
    "check_regressors_int", "check_regressors_no_decision_function",
    "check_regressors_train", "check_supervised_y_2d")


class _Regressor(RegressorMixin, BaseEstimator):
    """What every generated regressor shares; the class attribute ``_spec`` says which
    model it wraps."""

    _spec: Spec

    # -- fitting ---------------------------------------------------------------------
    def _fit_kwargs(self):
        return {name: getattr(self, name) for name in self._spec.fit}

    def _data(self, Xv, yv, y):
        """(exog, endog, predictor names, response names) for the model: the validated
        arrays, as DataFrames on a RangeIndex (rows paired by position, as scikit-learn
        pairs them) where they carry names (``feature_names_in_``, a pandas ``y``), so
        that a NumPy fit is the native NumPy fit, bit for bit."""
        Y = yv.reshape(len(yv), -1)
        ynames = _names(y, "Y", Y.shape[1])
        if hasattr(self, "feature_names_in_"):
            xnames = [str(c) for c in self.feature_names_in_]
            exog = pd.DataFrame(Xv, columns=xnames)
        else:
            xnames, exog = [f"x{j + 1}" for j in range(Xv.shape[1])], Xv
        endog = pd.DataFrame(Y, columns=ynames) if isinstance(y, (pd.Series, pd.DataFrame)) \
            else Y
        return exog, endog, xnames, ynames

    def _finish(self, results, coef, intercept):
        """Set the learned attributes from the results (coef p x q over the model's
        predictors)."""
        self.results_ = results
        self.hyperparameters_ = dict(getattr(results, "hyperparameters", None) or {})
        self.rank_ = fitted_rank(results, coef)
        if "max_iter" in self._spec.fit:
            self.n_iter_ = int(results.n_iter)
        return self

    def _full_coef(self, params, xnames):
        """Coefficients over every input feature: a constant column the model took as
        its intercept gets 0."""
        return params.reindex(index=xnames, fill_value=0.0).to_numpy(dtype=float)

    def score(self, X, y, sample_weight=None):
        """R^2 of the predictions, averaged over the responses (scikit-learn's
        ``r2_score`` with ``multioutput="uniform_average"``).

        Parameters
        ----------
        X : array_like or DataFrame, shape (n_samples, n_features)
        y : array_like, shape (n_samples,) or (n_samples, n_responses)
        sample_weight : array_like, shape (n_samples,), optional

        Returns
        -------
        float
        """
        return float(r2_score(y, self.predict(X), sample_weight=sample_weight))

    # -- output ----------------------------------------------------------------------
    def set_output(self, *, transform=None):
        """Choose the container of ``predict``'s output.

        Parameters
        ----------
        transform : {"default", "pandas"} or None
            ``"pandas"``: a DataFrame (a Series for 1-d ``y``) with the response names as
            columns and ``X``'s index; ``"default"``: NumPy arrays; None: unchanged.

        Returns
        -------
        self
        """
        if transform is None:
            return self
        if transform not in ("default", "pandas"):
            raise ValueError(f"transform must be 'default' or 'pandas'; got {transform!r}")
        self._sklearn_output_config = {"predict": transform}
        return self

    def _wrap(self, pred, X):
        config = getattr(self, "_sklearn_output_config", {}).get("predict", "default")
        if config != "pandas":
            return pred
        index = X.index if isinstance(X, (pd.DataFrame, pd.Series)) else None
        if pred.ndim == 1:
            return pd.Series(pred, index=index, name=self.response_names_[0])
        return pd.DataFrame(pred, index=index, columns=self.response_names_)

    def _expected_failed_checks(self):
        """{check name: reason} of the estimator checks that cannot apply."""
        return {}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        if not isinstance(tags, MtlTags):
            tags = MtlTags(**{f.name: getattr(tags, f.name) for f in fields(tags)})
        tags.expected_failed_checks = self._expected_failed_checks()
        return tags


class _MultiResponseRegressor(MultiOutputMixin, _Regressor):
    """A multi-response model ``Y = 1 b^T + X C + E`` (one or several responses)."""

    def fit(self, X, y):
        """Fit the model.

        Parameters
        ----------
        X : array_like or DataFrame, shape (n_samples, n_features)
        y : array_like, Series or DataFrame, shape (n_samples,) or (n_samples, n_responses)

        Returns
        -------
        self
        """
        Xv, yv = validate_data(self, X, y, multi_output=True, y_numeric=True,
                               ensure_min_samples=2)
        exog, endog, xnames, ynames = self._data(Xv, yv, y)
        init = {}
        if self._spec.source:
            init["source"] = self.source(xnames, ynames) if callable(self.source) else \
                self.source
        model = self._spec.model(endog, exog, intercept=bool(self.fit_intercept), **init)
        results = model.fit(**self._fit_kwargs())
        C = self._full_coef(results.params, xnames)                         # p x q
        b = results.intercept.to_numpy(dtype=float)
        self.response_names_ = ynames
        if yv.ndim == 1:
            self.coef_, self.intercept_ = C[:, 0].copy(), float(b[0])
        else:
            self.coef_, self.intercept_ = C.T.copy(), b
        return self._finish(results, C, b)

    def predict(self, X):
        """Predictions ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : array_like or DataFrame, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples,) or (n_samples, n_responses)
            A DataFrame/Series after ``set_output(transform="pandas")``.
        """
        check_is_fitted(self)
        Xv = validate_data(self, X, reset=False)
        return self._wrap(Xv @ self.coef_.T + self.intercept_, X)

    def _expected_failed_checks(self):
        if self._spec.source and self.source is None:
            return dict.fromkeys(_CHECKS_THAT_FIT, (
                "source= is required: the estimator cannot fit without one (the checks run "
                "with a callable source that fits any shape)"))
        return {}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class _SharedRegressor(_Regressor):
    """The multi-task model: one response, task labels from ``groups``."""

    __metadata_request__fit = {"groups": True}
    __metadata_request__predict = {"groups": True}
    __metadata_request__score = {"groups": True}

    def fit(self, X, y, groups=None):
        """Fit the shared representation.

        Parameters
        ----------
        X : array_like or DataFrame, shape (n_samples, n_features)
        y : array_like or Series, shape (n_samples,)
        groups : array_like, shape (n_samples,), optional
            The task label of each row (positional). None: all rows are one task (the
            fit is then least squares).

        Returns
        -------
        self
        """
        Xv, yv = validate_data(self, X, y, y_numeric=True, ensure_min_samples=2)
        exog, endog, xnames, ynames = self._data(Xv, yv, y)
        endog = endog.iloc[:, 0] if isinstance(endog, pd.DataFrame) else endog[:, 0]
        labels = self._labels(groups, len(yv), fitting=True)
        if self.method == "marginal" and len(pd.unique(labels)) < 2:
            raise ValueError("groups: method='marginal' needs at least two tasks (the "
                             "variance of the task weights is not identified from one); "
                             "pass groups=, or choose another method (e.g. 'gd')")
        model = self._spec.model(endog, exog, labels, intercept=bool(self.fit_intercept))
        results = model.fit(**self._fit_kwargs())
        self.tasks_ = np.asarray(model.task_names, dtype=object)
        theta = self._full_coef(results.params, xnames)                     # d x T
        self.coef_ = theta.T.copy()
        self.intercept_ = results.intercept.to_numpy(dtype=float)
        self.response_names_ = ynames
        rep = results.representation
        self.representation_ = None if rep is None else rep.to_numpy(dtype=float)
        return self._finish(results, theta, self.intercept_)

    def _expected_failed_checks(self):
        out = {"check_non_transformer_estimators_n_iter":
               "n_iter_ counts the iterations after the spectral start, which can be "
               "stationary already (n_iter_ = 0): true, though the check wants >= 1"}
        if self.method == "marginal":
            out.update(dict.fromkeys(_CHECKS_THAT_FIT, (
                "the check fits without groups, i.e. one task, and method='marginal' needs "
                "at least two (the checks run with method='gd')")))
        return out

    def _labels(self, groups, n, fitting=False):
        if groups is None:
            if fitting or len(self.tasks_) == 1:
                return np.zeros(n, dtype=np.int64) if fitting else \
                    np.repeat(self.tasks_[:1], n)
            raise ValueError(f"groups is required: the model was fitted on "
                             f"{len(self.tasks_)} tasks")
        labels = np.asarray(groups)
        if labels.ndim != 1 or len(labels) != n:
            raise ValueError(f"groups must have one label per row of X ({n}); got shape "
                             f"{labels.shape}")
        return labels

    def predict(self, X, groups=None):
        """Predictions for rows of tasks seen in fitting, each by its own task.

        Parameters
        ----------
        X : array_like or DataFrame, shape (n_samples, n_features)
        groups : array_like, shape (n_samples,), optional
            Task labels (required unless the fit had one task).

        Returns
        -------
        ndarray, shape (n_samples,)
            A Series after ``set_output(transform="pandas")``.
        """
        check_is_fitted(self)
        Xv = validate_data(self, X, reset=False)
        labels = self._labels(groups, Xv.shape[0])
        codes = pd.Index([str(t) for t in self.tasks_]).get_indexer(
            [str(t) for t in labels])
        if (codes < 0).any():
            unknown = sorted({str(t) for t, c in zip(labels, codes) if c < 0})
            raise ValueError(f"groups has tasks not seen in fitting: {unknown[:10]} (a "
                             "new task is fitted with results_.adapt)")
        pred = np.einsum("id,id->i", Xv, self.coef_[codes]) + self.intercept_[codes]
        return self._wrap(pred, X)

    def score(self, X, y, groups=None, sample_weight=None):
        """R^2 of the predictions.

        Parameters
        ----------
        X : array_like or DataFrame, shape (n_samples, n_features)
        y : array_like, shape (n_samples,)
        groups : array_like, shape (n_samples,), optional
            Task labels, as for :meth:`predict`.
        sample_weight : array_like, shape (n_samples,), optional

        Returns
        -------
        float
        """
        return float(r2_score(y, self.predict(X, groups=groups), sample_weight=sample_weight))


def _parameters(spec):
    """The constructor's parameters: source, the fit keywords with the native defaults,
    fit_intercept."""
    native = inspect.signature(spec.model.fit).parameters
    missing = [name for name in spec.fit if name not in native]
    if missing:
        raise TypeError(f"{spec.model.__name__}.fit has no keyword(s) {missing}")
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("source", kw, default=None)] if spec.source else []
    params += [inspect.Parameter(name, kw, default=native[name].default)
               for name in spec.fit]
    params.append(inspect.Parameter("fit_intercept", kw, default=True))
    return params


def _native_docs(fit):
    """{name: (type, description lines)} from the Parameters section of a numpydoc
    docstring (``a, b : t1, t2`` entries give each name its type when the counts match)."""
    doc = inspect.getdoc(fit) or ""
    lines = doc.splitlines()
    try:
        start = lines.index("Parameters") + 2
    except ValueError:
        return {}
    out, current = {}, []
    for i, line in enumerate(lines[start:], start):
        if line and not line.startswith(" "):
            if lines[i + 1:i + 2] and lines[i + 1].startswith("---"):     # next section
                break
            names, _, kind = line.partition(" : ")
            names = [n.strip() for n in names.split(",")]
            kinds = [k.strip() for k in kind.split(",")]
            current = []
            for j, name in enumerate(names):
                out[name] = (kinds[j] if len(kinds) == len(names) else kind, current)
        elif line.startswith("    "):
            current.append(line[4:])
    return out


def _docstring(spec, params):
    model = spec.model.__name__
    native = _native_docs(spec.model.fit)
    lines = [spec.summary, "",
             f"scikit-learn face of :class:`mtltransfer.{model}`: the parameters below are "
             f"those of :meth:`mtltransfer.{model}.fit` (same defaults and meaning; None is "
             "tuned as there), and the fitted model's results are ``results_``.", "",
             "Parameters", "----------"]
    for p in params:
        if p.name == "source":
            lines.append(_SOURCE_DOC)
        elif p.name == "fit_intercept":
            lines += ["fit_intercept : bool, default True",
                      "    Fit an unpenalised intercept (by centring), as the model's "
                      "``intercept=``."]
        else:
            kind, desc = native.get(p.name, ("", [f"As in :meth:`mtltransfer.{model}.fit`."]))
            lines.append(f"{p.name} : {kind + ', ' if kind else ''}default {p.default!r}")
            lines += ["    " + d for d in desc]
    lines += ["", "Attributes", "----------",
              f"results_ : the results of :meth:`mtltransfer.{model}.fit`",
              "coef_ : ndarray" + (", shape (n_tasks, n_features)" if spec.groups else
                                   ", shape (n_responses, n_features) or (n_features,)"),
              "intercept_ : " + ("ndarray, shape (n_tasks,)" if spec.groups else
                                 "ndarray, shape (n_responses,) or float"),
              "rank_ : int",
              "    The rank of the fit (see :func:`mtltransfer.sklearn.fitted_rank`).",
              "hyperparameters_ : dict",
              "    The hyperparameters used, given or tuned."]
    if spec.groups:
        lines += ["tasks_ : ndarray", "    The task labels, in the order of ``coef_``.",
                  "representation_ : ndarray, shape (n_features, k) or None",
                  "    The shared representation B."]
    if "max_iter" in spec.fit:
        lines += ["n_iter_ : int", "    Iterations of the final fit's solver."]
    lines += ["n_features_in_ : int", "feature_names_in_ : ndarray of str",
              "    Only when ``X`` is a DataFrame with string column names.",
              "response_names_ : list of str"]
    lines += ["", "See Also", "--------",
              f"mtltransfer.{model} : the model; ``results_`` is its fitted results."]
    lines += ["", "Examples", "--------", *_examples(spec)]
    return "\n".join(lines)


def _examples(spec):
    """The Examples section of one regressor (run as a doctest by the tests): a fit on a
    small simulation, scikit-learn's coefficients and the native results they come
    from."""
    name, model = spec.name, spec.model.__name__
    head = [">>> import numpy as np", ">>> import mtltransfer as mt",
            f">>> from mtltransfer.sklearn import {name}"]
    if spec.groups:
        return head + [
            ">>> sim = mt.datasets.simulate_shared(T=10, N=20, d=5, k=2, sigma=0.5,",
            "...                                   random_state=0)",
            f">>> est = {name}(k=2).fit(sim.X, sim.y, groups=sim.task)",
            ">>> est.coef_.shape                 # one row per task, in tasks_' order",
            "(10, 5)",
            ">>> est.representation_.shape       # the shared representation B",
            "(5, 2)",
            ">>> est.predict(sim.X[:3], groups=sim.task[:3]).shape",
            "(3,)",
            ">>> est.results_.model.__class__.__name__",
            f"'{model}'"]
    call = f"{name}(source=C0)" if spec.source else f"{name}()"
    note = [">>> # C0: the source study's 8 x 6 coefficient matrix"] if spec.source else []
    return head + [
        ">>> X, Y, C, C0 = mt.datasets.simulate_smart(60, 8, 6, rank=2, source_rank=3,",
        "...                                          random_state=0)",
        *note,
        f">>> est = {call}.fit(X, Y)",
        ">>> est.coef_.shape                 # scikit-learn's (n_responses, n_features)",
        "(6, 8)",
        ">>> bool(np.allclose(est.predict(X), X @ est.coef_.T + est.intercept_))",
        "True",
        ">>> bool(np.allclose(est.coef_.T, est.results_.params))   # the native fit",
        "True",
        ">>> est.results_.model.__class__.__name__",
        f"'{model}'"]


def _make(spec):
    """Build the regressor class of one table row."""
    params = _parameters(spec)
    names = [p.name for p in params]
    signature = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + params)

    def __init__(self, **kwargs):
        bound = signature.bind(self, **kwargs)
        bound.apply_defaults()
        for name in names:
            setattr(self, name, bound.arguments[name])

    __init__.__signature__ = signature
    __init__.__qualname__ = f"{spec.name}.__init__"
    base = _SharedRegressor if spec.groups else _MultiResponseRegressor
    cls = type(spec.name, (base,), {"__init__": __init__, "_spec": spec,
                                    "__module__": __name__,
                                    "__doc__": _docstring(spec, params)})
    return cls


_SPECS = {spec.name: spec for spec in ESTIMATORS}
SMARTRegressor = _make(_SPECS["SMARTRegressor"])
ReducedRankRegressor = _make(_SPECS["ReducedRankRegressor"])
NuclearNormRegressor = _make(_SPECS["NuclearNormRegressor"])
RidgeRegressor = _make(_SPECS["RidgeRegressor"])
OLSRegressor = _make(_SPECS["OLSRegressor"])
RidgeToSourceRegressor = _make(_SPECS["RidgeToSourceRegressor"])
NuclearContrastRegressor = _make(_SPECS["NuclearContrastRegressor"])
SourceSubspaceRRRRegressor = _make(_SPECS["SourceSubspaceRRRRegressor"])
SourceMixtureRegressor = _make(_SPECS["SourceMixtureRegressor"])
TransferRegressor = _make(_SPECS["TransferRegressor"])
SparseReducedRankRegressor = _make(_SPECS["SparseReducedRankRegressor"])
SOFARRegressor = _make(_SPECS["SOFARRegressor"])
RSSVDRegressor = _make(_SPECS["RSSVDRegressor"])
SharedRepresentationRegressor = _make(_SPECS["SharedRepresentationRegressor"])
__all__ += list(_SPECS)
