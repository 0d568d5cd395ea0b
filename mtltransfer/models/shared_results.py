"""The results of a SharedRepresentation fit: representation, task weights, fit
statistics, prediction, the bootstrap hooks and the summary; ``adapt`` fits a new
task on the learned representation (:class:`~.shared_adapt.AdaptedTask`)."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from .. import design
from .. import plotting as _plotting
from .._validation import check_alpha, front_end, show
from ..solvers import shared_marginal as smg
from ..solvers.shared_baselines import adapt, subspace_distance
from .base import Results, check_positive, new_data_argument
from .shared_adapt import AdaptedTask


class SharedRepresentationResults(Results):
    """Results of :class:`SharedRepresentation`.

    Attributes
    ----------
    representation : DataFrame (d x k) or None
        B, orthonormal columns (None for the per-task and nuclear-norm baselines).
    task_params : DataFrame (k x T) or None
        W (for ``method="marginal"``, the posterior means E[w_t | y]).
    task_params_cov : ndarray (T x k x k) or None
        ``method="marginal"``: posterior covariance of each w_t under the fitted model,
        ``(Sigma_w^{-1} + B^T X_t^T X_t B / sigma^2)^{-1}``, tasks in the order of
        ``task_params``' columns; None for the other methods.
    w_mean, w_cov : Series (k,), DataFrame (k x k) or None
        ``method="marginal"``: the fitted mu_w and Sigma_w.
    params : DataFrame (d x T)
        Each task's coefficients B w_t.
    intercept : Series (T,)
        Per-task intercepts.
    k : int or None
    converged, n_iter, history
        Solver diagnostics.

    See Also
    --------
    mtltransfer.SharedRepresentation : the model whose ``fit`` returns these results.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> X, y, task, B, W = mt.datasets.simulate_shared(T=40, N=20, d=8, k=2,
    ...                                                random_state=0)
    >>> res = mt.SharedRepresentation(y, X, task).fit()
    >>> res.task_params.shape            # k x T: one weight vector per task
    (2, 40)
    >>> new = res.adapt(X[:4], y[:4])    # a new task with four rows
    >>> new.params.shape
    (8,)
    """

    def __init__(self, model, sol, method, k, how, scores, B, W, lam):
        super().__init__(model, solver=sol)
        self.method = method
        self.k = k
        self.k_chosen_by = how
        if scores:
            self.tuning["k"] = pd.DataFrame(
                {"k": list(scores), "score": list(scores.values())}).set_index("k",
                                                                             drop=False)
        self.lam = lam
        self._B, self._W = B, W
        self._theta = np.asarray(sol.coef, dtype=float)
        if model.center:
            xm, ym = model.task_means()
            self._b = ym - np.einsum("td,dt->t", xm, self._theta)
        else:
            self._b = np.zeros(model.n_tasks)

    # -- parameters -------------------------------------------------------------------
    def _comp(self):
        return [f"b{j + 1}" for j in range(self._B.shape[1])]

    @property
    def representation(self):
        if self._B is None:
            return None
        return pd.DataFrame(self._B, index=self.model.exog_names, columns=self._comp())

    @property
    def task_params(self):
        if self._W is None:
            return None
        return pd.DataFrame(self._W, index=self._comp(), columns=self.model.task_names)

    @property
    def task_params_cov(self):
        V = self._solver.extra.get("W_cov") if self.method == "marginal" else None
        return None if V is None else np.array(V)

    @property
    def w_mean(self):
        if self.method != "marginal":
            return None
        return pd.Series(self._solver.extra["mu_w"], index=self._comp(), name="mu_w")

    @property
    def w_cov(self):
        if self.method != "marginal":
            return None
        return pd.DataFrame(self._solver.extra["Sigma_w"], index=self._comp(),
                            columns=self._comp())

    @property
    def params(self):
        return pd.DataFrame(self._theta, index=self.model.exog_names,
                            columns=self.model.task_names)

    @property
    def intercept(self):
        return pd.Series(self._b, index=self.model.task_names, name="Intercept")

    @property
    def k_scores(self):
        """The k-selection score of each candidate k (dict), or None if k was given."""
        t = self.tuning.get("k")
        return None if t is None else dict(zip(t["k"], t["score"]))

    # -- fit --------------------------------------------------------------------------
    def _predict_rows(self, X, codes):
        return np.einsum("id,di->i", X, self._theta[:, codes]) + self._b[codes]

    @property
    def fittedvalues(self):
        m = self.model
        return pd.Series(self._predict_rows(m.exog, m.task_codes), index=m.data.row_labels,
                         name=m.endog_names[0])

    @property
    def resid(self):
        return pd.Series(self.model.endog, index=self.model.data.row_labels,
                         name=self.model.endog_names[0]) - self.fittedvalues

    #: row-dependent statistics kept by ``save(..., remove_data=True)``
    _row_cached = ("ssr", "rsquared")

    @property
    def hyperparameters(self):
        """The configuration of the fit (``k``, ``method``, and ``lam`` for the
        nuclear-norm relaxation)."""
        out = {"k": self.k, "method": self.method}
        if self.lam is not None:
            out["lam"] = self.lam
        return out

    @property
    def chosen_by(self):
        """How each hyperparameter the fit tuned was chosen (``{"k": "BIC"}``)."""
        return {} if self.k is None else {"k": self.k_chosen_by}

    # -- bootstrap hooks (see mtltransfer.bootstrap) -----------------------------------
    def coefficient_arrays(self):
        """(task coefficients d x T, intercepts T) as plain arrays."""
        return self._theta, self._b

    def predict_draws(self, exog, coef, intercept, transform=True, groups=None):
        """Predictions of new rows for stacks of task coefficients (n_draws, n_new, 1)."""
        X, const, codes, _ = self._new_design(exog, groups=groups, transform=transform)
        pred = np.einsum("nd,bdn->bn", X, coef[:, :, codes]) + const * intercept[:, codes]
        return pred[:, :, None]

    def warm_start_kwargs(self):
        return {"init": self._B} if self._B is not None and self.method in (
            "gd", "altmin", "marginal") \
            else {}

    def bootstrap_extra(self, rep):
        """The sin-theta distance of a replicate's representation to this one, and its k."""
        if self._B is None or rep._B is None:
            return {}
        return {"subspace_distance": np.array([rep.subspace_distance(self._B)]),
                "k": np.array([rep._B.shape[1]])}

    def bootstrap_spec(self, method):
        from ..bootstrap import Resampler

        if not self.model.task_access.has_rows:
            raise TypeError("the bootstrap needs the rows in memory")
        fitted = self.fittedvalues.to_numpy()[:, None]
        resid = self.model.endog[:, None] - fitted
        resid = resid - resid.mean(0)
        if self.df_resid > 0:
            resid = resid * np.sqrt(self.nobs / self.df_resid)
        strata = self.model.task_codes if method == "pairs" else None
        return Resampler(self, fitted, resid, method, strata)

    @cached_property
    def ssr(self):
        """Residual sum of squares (from the rows, or from the per-task sums)."""
        return self.model.task_access.ssr(self._theta, self._b)

    @property
    def scale(self):
        """sigma^2 estimate: RSS / N (the maximum-likelihood value)."""
        return self.ssr / self.nobs

    def _ssr_groups(self):
        """One residual group: the stacked responses, sigma^2 = RSS/N."""
        return np.array([self.ssr]), np.array([float(self.nobs)])

    @property
    def llf(self):
        """Log-likelihood: for ``method="marginal"`` the log marginal likelihood (task
        weights integrated out) of every row; with intercepts, of the full model
        ``y_t ~ N(a_t 1 + X_t B mu_w, C_t)`` at the fitted intercepts (statsmodels'
        convention: the Gaussian likelihood at the estimates, the intercepts counted in
        ``k_params``). Else the Gaussian likelihood of the residuals."""
        if self.method == "marginal":
            ex = self._solver.extra
            return float(ex.get("loglik_full", ex["loglik"]))
        return super().llf

    @property
    def df_model(self):
        """Free coefficients without the intercepts: k (d - k) for the subspace of B
        (a point of the Grassmannian) plus k T task weights; d T for the baselines
        without a representation."""
        d, T = self.model.k_exog, self.model.n_tasks
        if self.k is None:
            return float(d * T)
        if self.method == "marginal":       # B, mu_w, Sigma_w, sigma^2 (see bic_n_params)
            return float(smg.bic_n_params(d, self.k) - 1)
        return float(self.k * (d - self.k) + self.k * T)

    @property
    def df_resid(self):
        return float(self.nobs - self.df_model - self.model.n_tasks * int(self.model.center))

    @property
    def k_params(self):
        """Parameters counted by the information criteria (intercepts included)."""
        if self.method == "marginal":        # + sigma^2 and the intercepts
            return self.df_model + 1 + self.model.n_tasks * int(self.model.center)
        return self.df_model + self.model.n_tasks * int(self.model.center)

    @cached_property
    def rsquared(self):
        """Per-task R^2 (Series)."""
        m = self.model
        return pd.Series(m.task_access.rsquared(self._theta, self._b, m.n_tasks),
                         index=m.task_names, name="R2")

    def _new_design(self, newdata, groups=None, transform=True):
        m = self.model
        X, const, index = m.data.exog_for(newdata, "exog", transform=transform)
        if groups is None:
            if not (isinstance(newdata, pd.DataFrame) and m.groups_name is not None and
                    m.groups_name in newdata.columns):
                raise ValueError("groups= is required (the task label of each new row)"
                                 if m.groups_name is None else
                                 f"exog needs the groups column {m.groups_name!r} (or pass "
                                 "groups=)")
            groups = newdata[m.groups_name]
        labels = design.groups_for(groups, newdata if isinstance(
            newdata, (pd.DataFrame, pd.Series)) else X)
        missing = np.asarray(pd.isna(labels))
        given = pd.Series(labels)
        labels = np.asarray(given.astype(str))
        codes = pd.Index([str(t) for t in m.task_names]).get_indexer(labels)
        unknown = pd.unique(given[(codes < 0) & ~missing])
        if len(unknown):
            raise ValueError(f"exog has tasks not seen in fitting: {show(unknown)}; use "
                             "adapt() for a new task")
        X = np.where(missing[:, None], np.nan, X)     # a missing label: a NaN row
        return X, const, np.where(missing, 0, codes).astype(np.int64), index

    def predict(self, exog=None, transform=True, *, groups=None, newdata=None):
        """Predictions for new rows of known tasks (each row by its own task).

        Parameters
        ----------
        exog : DataFrame or array_like, optional
            For a formula model, a DataFrame with the formula's columns and the groups
            column; otherwise the fitted predictor columns, with ``groups=``. None: the
            fitted values.
        transform : bool
            ``False``: ``exog`` is the design matrix of a formula model.
        groups : array_like, optional
            Task labels of the rows (overrides the groups column).
        newdata : optional
            Another name for ``exog``.

        Returns
        -------
        Series
            Indexed like the input; rows with a missing value are NaN. For a Dask
            DataFrame (its task labels read from the groups column), a lazy Dask Series
            computed partition by partition.
        """
        exog = new_data_argument(exog, newdata)
        if exog is None:
            return self.fittedvalues
        if design.is_dask_frame(exog):
            return front_end("dask", "predict_shared")(self, exog, transform, groups)
        X, const, codes, index = self._new_design(exog, groups=groups, transform=transform)
        pred = np.einsum("id,di->i", X, self._theta[:, codes]) + const * self._b[codes]
        return pd.Series(pred, index=index, name=self.model.endog_names[0])

    def subspace_distance(self, B_other):
        """sin-theta distance ||B_perp^T B_other||_F between the learned and another
        representation (orthonormal d x k array or DataFrame)."""
        if self._B is None:
            raise ValueError(f"method={self.method!r} has no representation")
        return subspace_distance(self._B, np.asarray(B_other, dtype=float))

    def adapt(self, new_task_data, endog=None, *, shrink=None):
        """Fit a new task's weights w on the learned representation B.

        Parameters
        ----------
        new_task_data : DataFrame or array_like
            The new task's rows: a DataFrame with the formula's columns for a formula
            model, else the predictors (with ``endog=``).
        endog : array_like, optional
            The new task's responses when ``new_task_data`` holds predictors only.
        shrink : None, "auto" or float
            None: for ``method="marginal"``, the Gaussian posterior mean of w under the
            fitted mu_w, Sigma_w and sigma^2 (the result then has a posterior covariance
            and :meth:`AdaptedTask.get_prediction` gives intervals); for the other
            methods, least squares of y on X B. A float s >= 0: ridge towards the mean of the
            learned w's, penalty s (w - wbar)^T Sigma_w^{-1} (w - wbar)/2 (Sigma_w their
            covariance). "auto": s = sigma^2 / n_new, the Gaussian posterior mean.

        Returns
        -------
        AdaptedTask
        """
        if self._B is None:
            raise ValueError(f"method={self.method!r} has no representation to adapt")
        m = self.model
        if isinstance(new_task_data, pd.DataFrame) and m.groups_name is not None and \
                m.groups_name in new_task_data.columns:
            tasks = pd.unique(new_task_data[m.groups_name].dropna())
            if len(tasks) > 1:
                raise ValueError(f"new_task_data holds rows of {len(tasks)} tasks "
                                 f"({show(tasks, 5)} in column {m.groups_name!r}); adapt() "
                                 "fits one new task: call it once per task")
        # both sides of the formula are evaluated the same way: with the design's
        # environment, incomplete rows kept as NaN, then the model's missing handling
        X, _, _ = m.data.exog_for(new_task_data, "new_task_data")
        if m.data.formula is not None and isinstance(new_task_data, pd.DataFrame) \
                and endog is None:
            y = self._response_of(new_task_data)
        else:
            if endog is None:
                raise ValueError("endog= is required when new_task_data holds predictors")
            y = np.asarray(endog, dtype=float).ravel()
        if len(y) != X.shape[0]:
            raise ValueError(f"endog has {len(y)} rows; new_task_data has {X.shape[0]}")
        bad = ~(np.isfinite(X).all(1) & np.isfinite(y))
        if bad.any() and getattr(m, "missing", "raise") == "drop" and not bad.all():
            X, y = X[~bad], y[~bad]
        elif bad.any():
            raise ValueError(f"new_task_data has missing values in {int(bad.sum())} row(s) "
                             f"(positions {show(np.flatnonzero(bad), 5)}); drop them first"
                             " or build the model with missing='drop'")
        if m.center:
            xm, ym = X.mean(0), y.mean()
            Xc, yc = X - xm, y - ym
        else:
            Xc, yc = X, y
        if shrink is None and self.method == "marginal":
            ex = self._solver.extra
            w, V = smg.posterior_new_task(self._B, Xc, yc, ex["mu_w"], ex["Sigma_w"],
                                          ex["sigma2"])
            theta = self._B @ w
            b = float(ym - xm @ theta) if m.center else 0.0
            post = {"w_cov": V, "sigma2": float(ex["sigma2"]), "n": len(y),
                    "xm": xm if m.center else None}
            # the B-fixed intervals too: a ridge towards mu_w with A = Z^T Z + sigma^2 Sigma_w^-1
            Z = Xc @ self._B
            gram = Z.T @ Z + float(ex["sigma2"]) * np.linalg.inv(ex["Sigma_w"])
            return AdaptedTask(self, w, theta, b, posterior=post,
                               fit=(Z, yc - Z @ w, gram, xm if m.center else None))
        w_mean = self._W.mean(1)
        w_cov = np.cov(self._W) if self._W.shape[1] > self._W.shape[0] else None
        if np.ndim(w_cov) == 0 and w_cov is not None:
            w_cov = np.atleast_2d(w_cov)
        if shrink == "auto":
            s = self.scale / max(len(y), 1)
        elif shrink is None:
            s = None
        else:
            s = check_positive("shrink", shrink)
        if s is None and len(y) < self._B.shape[1] + int(m.center):
            raise ValueError(f"new_task_data has {len(y)} rows, fewer than k + intercept "
                             f"({self._B.shape[1] + int(m.center)}); pass shrink='auto'")
        w = adapt(self._B, Xc, yc, shrink=s, w_mean=w_mean if s else None,
                  w_cov=w_cov if s else None)
        theta = self._B @ w
        b = float(ym - xm @ theta) if m.center else 0.0
        Z = Xc @ self._B
        gram = Z.T @ Z + (len(y) * s * np.linalg.inv(w_cov if w_cov is not None else
                                                     np.eye(len(w))) if s else 0.0)
        return AdaptedTask(self, w, theta, b, fit=(Z, yc - Z @ w, gram,
                                                   xm if m.center else None))

    def _response_of(self, frame):
        """The formula's response evaluated on new rows (NaN kept, checked by adapt), in
        the environment the predictors' design is evaluated in (the caller's, captured
        by ``from_formula``)."""
        import patsy

        data = self.model.data
        lhs = data.formula.split("~", 1)[0].strip()
        work = frame.reset_index(drop=True)
        keep_nan = patsy.NAAction(NA_types=[])
        try:
            if data.response_info is not None:       # the fitted response's own design
                (y,) = patsy.build_design_matrices([data.response_info], work,
                                                   NA_action=keep_nan,
                                                   return_type="dataframe")
            else:                # after loading: as the predictors, from the stored data
                y = patsy.dmatrix(lhs + " - 1", work, eval_env=design.default_env(),
                                  NA_action=keep_nan, return_type="dataframe")
        except (patsy.PatsyError, NameError) as err:
            lacking = [v for v in design.formula_variables(lhs) if v not in frame.columns
                       and v not in ("np", "numpy", "I", "log", "exp")]
            raise ValueError(f"new_task_data lacks the response column(s) {lacking or lhs!r}"
                             f" of the formula (adapt() needs the new task's responses): "
                             f"{str(err).splitlines()[0]}") from None
        return y.to_numpy(dtype=float).ravel()

    plot_convergence = _plotting.plot_convergence
    plot_tuning = _plotting.plot_tuning

    def summary(self, alpha=0.05):
        """A statsmodels Summary: T, N range, d, k and how chosen, log-likelihood,
        sigma^2, iterations, convergence and the per-task R^2 distribution.

        Intervals at level ``1 - alpha`` where they exist: with ``method="marginal"`` and
        at most 12 tasks, each task weight's posterior mean, sd and normal interval
        (``task_params_cov``); with a stored bootstrap (:meth:`bootstrap`), the
        distribution of the subspace distance of the replicates' representations to
        this one, and where every coefficient's interval is.
        """
        from ..summary import add_frame, hyperparameter_rows, new_summary

        alpha = check_alpha(alpha)

        m = self.model
        left = [("Dep. Variable:", m.endog_names[0]), ("Model:", "SharedRepresentation"),
                ("Method:", {"marginal": "marginal likelihood (EM)",
                             "gd": "first-order joint likelihood" + (
                    ", random-effects W-step" if self._solver.extra.get("w_ridge", 0) > 0
                    else ""), "altmin":
                             "alternating minimisation", "mom": "method of moments",
                             "per_task": "per-task least squares", "nuclear":
                             "nuclear-norm relaxation"}[self.method]),
                ("No. Observations:", m.nobs), ("No. Tasks (T):", m.n_tasks),
                ("Rows per task:", f"{int(m.N.min())} to {int(m.N.max())} "
                                   f"(median {float(np.median(m.N)):g})"),
                ("No. Predictors (d):", m.k_exog)]
        rows, _ = hyperparameter_rows(self)     # k (and lam) from the declaration
        right = [*rows, ("Log-Likelihood:", self.llf), ("AIC:", self.aic), ("BIC:", self.bic),
                 ("sigma^2 (RSS/N):", self.scale), ("Iterations:", self.n_iter),
                 ("Converged:", self.converged), ("Intercept:", "per task" if
                                                  m.center else "none")]
        smry = new_summary(self, "SharedRepresentation Results", left, right)
        r2 = self.rsquared.describe()[["mean", "min", "25%", "50%", "75%", "max"]]
        add_frame(smry, r2.to_frame("per-task R2").T, "Per-task R-squared")
        if self._W is not None and m.n_tasks <= 12:
            cov = self.task_params_cov
            if cov is None:
                add_frame(smry, self.task_params, "Task weights W (k x T)")
            else:
                add_frame(smry, self._posterior_weight_table(cov, alpha),
                          f"Task weights: posterior mean, sd and {1 - alpha:.0%} interval "
                          "(w_t | y_t under the fitted mu_w, Sigma_w, sigma^2)")
        if self.tuning.get("k") is not None:
            add_frame(smry, self.tuning["k"].set_index("k")[["score"]].T.rename(
                index={"score": self.k_chosen_by}), "k selection (score by k; smallest "
                "chosen)")
        boot = self.bootstrap_results
        if boot is not None and "subspace_distance" in boot.extra:
            dist = boot.extra["subspace_distance"].ravel()
            dist = dist[np.isfinite(dist)]
            row = pd.DataFrame({"mean": [dist.mean()], "sd": [dist.std(ddof=1)],
                                f"{alpha / 2:g}": [np.quantile(dist, alpha / 2)],
                                "median": [np.median(dist)],
                                f"{1 - alpha / 2:g}": [np.quantile(dist, 1 - alpha / 2)]},
                               index=["sin-theta distance"])
            add_frame(smry, row, f"Bootstrap ({boot.method}, {boot.n_boot} replicates"
                      f"{', re-tuned' if boot.refit_tuning else ''}): distance of the "
                      "replicates' representations to B")
            smry.add_extra_txt([f"Every task coefficient's {1 - alpha:.0%} bootstrap "
                                f"interval: res.bootstrap_results.conf_int(alpha={alpha:g})."])
        return smry

    def _posterior_weight_table(self, cov, alpha):
        """Rows (task, component): posterior mean, sd and normal interval of w_t."""
        from scipy import stats

        W = self._W
        sd = np.sqrt(np.clip(np.einsum("tjj->jt", cov), 0.0, None))
        z = stats.norm.ppf(1 - alpha / 2)
        index = [f"w[{t}, {c}]" for t in self.model.task_names for c in self._comp()]
        mean, sd = W.T.ravel(), sd.T.ravel()
        return pd.DataFrame({"mean": mean, "sd": sd, f"[{alpha / 2:g}": mean - z * sd,
                             f"{1 - alpha / 2:g}]": mean + z * sd}, index=index)
