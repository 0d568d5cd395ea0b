"""Base classes of every multi-response model and its results.

A model holds validated data (see :mod:`mtltransfer.design`) and never changes after
``__init__``; ``fit`` returns a new results object. Results put the names back on the
plain arrays the solvers return.
"""

from __future__ import annotations

import pickle
from functools import cached_property

import numpy as np
import pandas as pd

from .. import design
from .. import plotting as _plotting
from ..gram import SufficientStats

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


def check_int(name, value, low, high):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}]; got {value}")
    return int(value)


class DataViews:
    """Read-only views of a model's validated data (``self.data``, a ModelData)."""

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
        return int(self.data.intercept)


class MultiResponseModel(DataViews):
    """Multi-response linear model ``Y = 1 b^T + X C + E`` (base class).

    Parameters
    ----------
    endog : array_like or DataFrame, shape (n, q)
        Responses.
    exog : array_like or DataFrame, shape (n, p)
        Predictors. A constant column is recognised as the intercept and removed.
    intercept : bool, default True
        Fit an unpenalised intercept by centring X and Y (the penalised or low-rank
        part never sees it).
    missing : {"raise", "drop"}
        What to do with rows containing NaN/inf.
    """

    #: how many response columns the formula may have (None: any)
    _formula_max_endog = None
    #: a short name of the estimation method, shown in the summary
    _method = ""

    def __init__(self, endog, exog, *, intercept=True, missing="raise", **kwargs):
        data = design.from_arrays(endog, exog, intercept=intercept, missing=missing)
        self._setup(data, **kwargs)

    @classmethod
    def from_formula(cls, formula, data, *, missing="raise", eval_env=0, **kwargs):
        """Build the model from a patsy formula and a DataFrame.

        Parameters
        ----------
        formula : str
            ``"Y1 + Y2 ~ x1 + np.log(x2) + C(group)"``: responses on the left. The
            intercept (dropped with ``- 1``) is handled by centring.
        data : DataFrame
        missing : {"raise", "drop"}
        eval_env : int
            Frames above the caller whose names the formula may use (as in patsy).
        **kwargs
            Passed to the model (for example ``source=`` for SMART).
        """
        import patsy

        env = patsy.EvalEnvironment.capture(eval_env + 1).with_outer_namespace(
            {"np": np, "numpy": np})
        md = design.from_formula(formula, data, missing=missing,
                                 max_endog=cls._formula_max_endog, eval_env=env)
        self = cls.__new__(cls)
        self._setup(md, **kwargs)
        return self

    def _setup(self, data, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword argument(s): "
                            f"{', '.join(sorted(kwargs))}")
        self.data = data

    # -- data views (shared with SharedRepresentation via DataViews) -------------------
    @property
    def endog(self):
        return self.data.endog

    @property
    def k_endog(self):
        return self.endog.shape[1]

    @cached_property
    def stats(self):
        """:class:`~mtltransfer.gram.SufficientStats` of the rows (one pass, cached)."""
        return SufficientStats.from_arrays(self.exog, self.endog)

    def moments(self):
        """(Sxx, Sxy, Syy): centred when the model has an intercept."""
        return self.stats.moments(center=bool(self.k_constant))

    def _intercept_for(self, C):
        """Intercept b = ybar - C^T xbar when centring, else zeros."""
        if not self.k_constant:
            return np.zeros(self.k_endog)
        return self.stats.y_mean - C.T @ self.stats.x_mean

    def __repr__(self):
        return (f"{type(self).__name__}(nobs={self.nobs}, k_exog={self.k_exog}, "
                f"k_endog={self.k_endog}, formula={self.formula!r})")


class MultiResponseResults:
    """Results of a multi-response linear model (statsmodels-style).

    Attributes
    ----------
    model : MultiResponseModel
    params : DataFrame, shape (p, q)
        Coefficients; index = predictor names, columns = response names.
    intercept : Series, shape (q,)
    converged : bool
    n_iter : int
    history : DataFrame
        Per-iteration diagnostics of the solver (empty for closed forms).
    """

    def __init__(self, model, coef, *, solver=None, config=None, df_model=None):
        self.model = model
        self._coef = np.asarray(coef, dtype=float)
        self._intercept = model._intercept_for(self._coef)
        self._solver = solver
        self.config = dict(config or {})
        self._df_model = df_model

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

    # -- fit --------------------------------------------------------------------------
    @property
    def nobs(self):
        return self.model.nobs

    def _predict_array(self, X):
        return X @ self._coef + self._intercept

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

    def predict(self, newdata=None):
        """Predicted responses.

        Parameters
        ----------
        newdata : DataFrame or array_like, optional
            For a formula model, a DataFrame with the formula's columns (the design is
            rebuilt with the same categories and transformations); otherwise the p
            predictor columns. ``None`` gives the fitted values.

        Returns
        -------
        DataFrame, shape (n_new, q)
        """
        if newdata is None:
            return self.fittedvalues
        X = self.model.data.exog_for(newdata, "newdata")
        index = newdata.index if isinstance(newdata, pd.DataFrame) and \
            len(newdata.index) == X.shape[0] else pd.RangeIndex(X.shape[0])
        return pd.DataFrame(self._predict_array(X), index=index,
                            columns=self.model.endog_names)

    @cached_property
    def ssr_per_response(self):
        """Residual sum of squares of each response (Series)."""
        r = self.model.endog - self._fitted
        return pd.Series((r ** 2).sum(0), index=self.model.endog_names)

    @property
    def ssr(self):
        """Total residual sum of squares ||Y - Yhat||_F^2."""
        return float(self.ssr_per_response.sum())

    @cached_property
    def rsquared(self):
        """Per-response R^2 (centred when the model has an intercept)."""
        Y = self.model.endog
        centre = Y.mean(0) if self.model.k_constant else 0.0
        tss = ((Y - centre) ** 2).sum(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(tss > 0, 1 - self.ssr_per_response.to_numpy() / tss, np.nan)
        return pd.Series(r2, index=self.model.endog_names)

    @property
    def df_model(self):
        """Effective number of coefficients (without the intercept)."""
        return float(self._df_model if self._df_model is not None else self._coef.size)

    @property
    def bic(self):
        """BIC = log(RSS/(nq)) + df log(nq)/(nq), the criterion of DESIGN.md (per entry)."""
        nq = self.nobs * self.model.k_endog
        rss = max(self.ssr, np.finfo(float).tiny * nq)  # an exact fit: finite, not -inf
        return float(np.log(rss / nq) + self.df_model * np.log(nq) / nq)

    @property
    def scale(self):
        """Residual variance estimate RSS / (n q - df - q * intercept), floored at RSS/(nq)."""
        nq = self.nobs * self.model.k_endog
        dof = nq - self.df_model - self.model.k_endog * self.model.k_constant
        return self.ssr / (dof if dof > 0 else nq)

    # -- solver diagnostics -----------------------------------------------------------
    @property
    def converged(self):
        return True if self._solver is None else bool(self._solver.converged)

    @property
    def n_iter(self):
        return 0 if self._solver is None else int(self._solver.n_iter)

    @property
    def history(self):
        if self._solver is None or not self._solver.history:
            return pd.DataFrame()
        h = pd.DataFrame(self._solver.history)
        h.index = pd.RangeIndex(1, len(h) + 1, name="iteration")
        return h

    # -- reporting --------------------------------------------------------------------
    plot_convergence = _plotting.plot_convergence
    plot_spectrum = _plotting.plot_spectrum
    plot_tuning = _plotting.plot_tuning

    def _summary_rows(self):
        """(left, right) rows of the top summary table; subclasses extend them."""
        m = self.model
        left = [("Dep. Variables:", ", ".join(m.endog_names) if m.k_endog <= 4 else
                 f"{m.k_endog} responses"),
                ("Model:", type(m).__name__), ("Method:", m._method),
                ("No. Observations:", m.nobs), ("No. Predictors (p):", m.k_exog),
                ("No. Responses (q):", m.k_endog), ("Intercept:", bool(m.k_constant))]
        right = [(f"{k}:", v) for k, v in self.config.items()]
        right += [("Df Model:", round(self.df_model, 2)), ("Mean R-squared:",
                  float(np.nanmean(self.rsquared))), ("RSS:", self.ssr),
                  ("BIC:", self.bic)]
        if self._solver is not None:
            right += [("Iterations:", self.n_iter), ("Converged:", self.converged)]
        return left, right

    def summary(self):
        """A :class:`statsmodels.iolib.summary.Summary` of the fit.

        Print it, or use ``.as_text()``, ``.as_html()``, ``.as_latex()``.
        """
        from ..summary import coefficient_block, new_summary

        left, right = self._summary_rows()
        smry = new_summary(self, f"{type(self.model).__name__} Results", left, right)
        coefficient_block(self, smry)
        return smry

    def save(self, path):
        """Pickle the results (model and data included) to ``path``; see :func:`load`."""
        with open(path, "wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("_fitted",):  # cached values are recomputed after loading
            state.pop(key, None)
        return state

    def __repr__(self):
        return (f"<{type(self).__name__}: {type(self.model).__name__}, "
                f"nobs={self.nobs}, p={self.model.k_exog}, q={self.model.k_endog}>")


def load(path):
    """Load results saved with ``results.save(path)``.

    Only load files you trust: this unpickles Python objects.
    """
    with open(path, "rb") as fh:
        obj = pickle.load(fh)
    if not isinstance(obj, MultiResponseResults) and not hasattr(obj, "predict"):
        raise TypeError(f"{path} does not contain mtltransfer results")
    return obj
