"""The results family of every multi-response model.

``Results`` (solver diagnostics, llf/aic/bic, tuning, bootstrap, save) and its
multi-response branch: ``MultiResponseResults`` (params, intercept, predict, R^2, df,
summary) and ``PenalizedResults`` (hyperparameters and how each was chosen). Results put
the names back on the plain arrays the solvers return; they read their model by duck
typing (a shared representation's results subclass ``Results`` in
:mod:`mtltransfer.models.shared`).
"""

from __future__ import annotations

from functools import cached_property
from types import MappingProxyType

import numpy as np
import pandas as pd

from .. import design
from .. import plotting as _plotting
from .._validation import front_end, new_data_argument
from ..summary import hyperparameter_rows


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
        # the hyperparameters from the model's declaration, then what else the fit reports
        declared, names = hyperparameter_rows(self)
        right = declared + [(f"{k}:", v) for k, v in self.config.items() if k not in names]
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

    def get_prediction(self, exog=None, kind="percentile", *, newdata=None, n_boot=200,
                       random_state=None):
        """Predictions with bootstrap standard errors and intervals (a penalised fit has
        no closed-form covariance): the stored bootstrap (``self.bootstrap_results``),
        else ``self.bootstrap(n_boot, random_state=random_state)`` first (stored).
        Returns :class:`mtltransfer.bootstrap.BootstrapPrediction`
        (``summary_frame(alpha)`` with statsmodels' ``mean``, ``mean_se``,
        ``mean_ci_lower``, ``mean_ci_upper``)."""
        if self.bootstrap_results is None:
            self.bootstrap(n_boot, random_state=random_state)
        return self.bootstrap_results.get_prediction(new_data_argument(exog, newdata),
                                                     kind)

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


def _fmt_value(value):
    from ..summary import fmt
    return fmt(value)
