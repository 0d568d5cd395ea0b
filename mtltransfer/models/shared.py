"""SharedRepresentation: many regression tasks sharing a d x k linear representation.

Task t has rows (X_t, y_t) and ``y_t = b_t + X_t B w_t + eps_t`` with B (d x k, orthonormal
columns) shared by all tasks, a per-task weight vector w_t and, when the model has an
intercept, a per-task unpenalised intercept b_t (handled by centring within each task).
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd

from .. import design
from .. import plotting as _plotting
from ..solvers import shared_rep as sr
from .base import DataViews, check_backend, check_int, check_positive

_METHODS = ("gd", "altmin", "mom", "per_task", "nuclear")


class SharedRepresentation(DataViews):
    """Multi-task linear regression with a shared linear representation.

    Parameters
    ----------
    endog : array_like, Series or DataFrame with one column, shape (n,)
        Responses of all tasks, stacked.
    exog : array_like or DataFrame, shape (n, d)
        Predictors (a constant column is the intercept and is removed).
    groups : array_like, shape (n,)
        Task label of each row (any hashable labels; tasks are ordered by sorted label).
    intercept : bool, default True
        A per-task, unpenalised intercept (centring within each task).
    missing : {"raise", "drop"}

    Notes
    -----
    The estimator minimises ``sum_t (1/(2 N_t)) ||y_t - X_t B w_t||^2`` over B with
    orthonormal columns and W = [w_1 ... w_T] by a preconditioned first-order method from a
    spectral start (:func:`mtltransfer.solvers.shared_rep.fit_shared_representation`).
    """

    _formula_max_endog = 1

    def __init__(self, endog, exog, groups, *, intercept=True, missing="raise"):
        if groups is None:
            raise ValueError("groups is required: the task label of each row")
        labels = np.asarray(groups)  # positional, like endog and exog
        n_rows = len(endog) if hasattr(endog, "__len__") else None
        if labels.ndim != 1 or (n_rows is not None and len(labels) != n_rows):
            raise ValueError(f"groups must have one label per row ({n_rows}); got "
                             f"{labels.shape}")
        data = design.from_arrays(endog, exog, intercept=intercept, missing=missing)
        self._setup(data, labels[data.extra["kept"]], None)

    @classmethod
    def from_formula(cls, formula, data, groups, *, missing="raise", eval_env=0):
        """Build the model from a one-response formula and a DataFrame.

        Parameters
        ----------
        formula : str
            ``"y ~ x1 + x2 + C(z)"``; the intercept (default) is per task.
        data : DataFrame
        groups : str or array_like
            Name of the column holding the task labels, or the labels themselves.
        missing : {"raise", "drop"}
        eval_env : int
        """
        import patsy

        env = patsy.EvalEnvironment.capture(eval_env + 1).with_outer_namespace(
            {"np": np, "numpy": np})
        md = design.from_formula(formula, data, missing=missing, max_endog=1, eval_env=env)
        name = None
        if isinstance(groups, str):
            if groups not in data.columns:
                raise ValueError(f"groups={groups!r} is not a column of data")
            name = groups
            g = data[groups]
        else:
            g = pd.Series(np.asarray(groups), index=data.index)
            if len(g) != len(data):
                raise ValueError(f"groups must have one label per row of data ({len(data)})")
        self = cls.__new__(cls)
        self._setup(md, g.loc[md.row_labels].to_numpy(), name)
        return self

    def _setup(self, data, labels, groups_name):
        """``labels``: the task label of each row of ``data`` (positional)."""
        if pd.isna(labels).any():
            raise ValueError("groups contains missing labels")
        codes, names = pd.factorize(labels, sort=True)
        self.data = data
        self.task_codes = codes.astype(np.int64)
        self.task_names = [str(t) for t in names]
        self.groups_name = groups_name
        self.N = np.bincount(self.task_codes, minlength=len(names))

    # -- data views (the rest from DataViews) -------------------------------------
    @property
    def endog(self):
        return self.data.endog[:, 0]

    @property
    def n_tasks(self):
        return len(self.task_names)

    def _task_means(self, X, y, codes):
        cnt = np.bincount(codes, minlength=self.n_tasks).astype(float)
        cnt[cnt == 0] = 1.0
        xm = np.stack([np.bincount(codes, X[:, j], self.n_tasks) for j in
                       range(X.shape[1])], axis=1) / cnt[:, None]
        ym = np.bincount(codes, y, self.n_tasks) / cnt
        return xm, ym

    def fit(self, k=None, *, method="gd", lam=None, init=None, backend="fast", tol=1e-8,
            max_iter=500, criterion="bic", w_ridge="auto", verbose=False):
        """Fit the shared representation (or one of its baselines).

        Parameters
        ----------
        k : int or None
            Representation dimension, 1 <= k <= min(d, T). None: chosen by ``criterion``
            (:func:`mtltransfer.solvers.shared_rep.select_k`).
        method : {"gd", "altmin", "mom", "per_task", "nuclear"}
            ``"gd"``: the likelihood estimator (preconditioned first-order method);
            baselines: ``"altmin"`` (alternating minimisation), ``"mom"`` (method of
            moments), ``"per_task"`` (least squares / ridge per task), ``"nuclear"``
            (nuclear-norm relaxation over Theta = B W, penalty ``lam``).
        lam : float, optional
            Penalty of ``method="nuclear"`` (required there).
        init : {"ridge", "mom"} or ndarray, optional
            Spectral start.
        backend : {"fast", "cvxpy"}
            How each convex subproblem is solved (W-step, nuclear-norm problem).
        tol, max_iter : float, int
        criterion : {"bic", "cv"}
            How k is chosen when ``k=None``.
        w_ridge : "auto", float or None
            Random-effects penalty of the W-step (see
            :func:`mtltransfer.solvers.shared_rep.fit_shared_representation`); None fits
            the pure likelihood.
        verbose : bool

        Returns
        -------
        SharedRepresentationResults
        """
        check_backend(backend)
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
        d, T = self.k_exog, self.n_tasks
        X, y, task = self.exog, self.endog, self.task_codes
        center = bool(self.k_constant)
        how, scores = "given", None
        B = W = None
        if method == "per_task":
            sol = sr.fit_per_task(X, y, task, center=center)
            k = None
        elif method == "nuclear":
            if lam is None:
                raise ValueError("method='nuclear' needs lam= (the nuclear-norm penalty)")
            lam = check_positive("lam", lam)
            sol = sr.fit_nuclear_norm(X, y, task, lam, tol=tol, max_iter=max_iter * 10,
                                      backend=backend, center=center)
            k = None
        else:
            if k is None:
                # candidates are screened at a moderate tolerance; the chosen k is then
                # fitted to ``tol`` below
                k, scores = sr.select_k(X, y, task, criterion=criterion, center=center,
                                        method=method, tol=max(tol, 1e-6),
                                        max_iter=max_iter, w_ridge=w_ridge)
                how = criterion.upper()
            k = check_int("k", k, 1, min(d, T))
            sol = sr.fit_shared_representation(X, y, task, k, method=method, init=init,
                                               tol=tol, max_iter=max_iter, backend=backend,
                                               center=center, verbose=verbose,
                                               w_ridge=w_ridge)
            B, W = sol.extra["B"], sol.extra["W"]
        return SharedRepresentationResults(self, sol, method, k, how, scores, B, W, lam)


class SharedRepresentationResults:
    """Results of :class:`SharedRepresentation`.

    Attributes
    ----------
    representation : DataFrame (d x k) or None
        B, orthonormal columns (None for the per-task and nuclear-norm baselines).
    task_params : DataFrame (k x T) or None
        W.
    params : DataFrame (d x T)
        Each task's coefficients B w_t.
    intercept : Series (T,)
        Per-task intercepts.
    k : int or None
    converged, n_iter, history
        Solver diagnostics.
    """

    def __init__(self, model, sol, method, k, how, scores, B, W, lam):
        self.model = model
        self._solver = sol
        self.method = method
        self.k = k
        self.k_chosen_by = how
        self.k_scores = scores
        self.lam = lam
        self._B, self._W = B, W
        self._theta = np.asarray(sol.coef, dtype=float)
        if model.k_constant:
            xm, ym = model._task_means(model.exog, model.endog, model.task_codes)
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
    def params(self):
        return pd.DataFrame(self._theta, index=self.model.exog_names,
                            columns=self.model.task_names)

    @property
    def intercept(self):
        return pd.Series(self._b, index=self.model.task_names, name="Intercept")

    @property
    def nobs(self):
        return self.model.nobs

    @property
    def converged(self):
        return bool(self._solver.converged)

    @property
    def n_iter(self):
        return int(self._solver.n_iter)

    @property
    def history(self):
        h = pd.DataFrame(self._solver.history)
        h.index = pd.RangeIndex(0, len(h), name="iteration")
        return h

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

    @property
    def ssr(self):
        return float(np.sum(self.resid.to_numpy() ** 2))

    @property
    def scale(self):
        """sigma^2 estimate: RSS / N (the maximum-likelihood value)."""
        return self.ssr / self.nobs

    @property
    def llf(self):
        """Gaussian log-likelihood at sigma^2 = RSS/N."""
        n = self.nobs
        return float(-0.5 * n * (np.log(2 * np.pi * self.scale) + 1))

    @property
    def df_model(self):
        d, T = self.model.k_exog, self.model.n_tasks
        if self.k is None:
            return float(d * T)
        return float(d * self.k - self.k * (self.k + 1) // 2 + self.k * T)

    @property
    def bic(self):
        n = self.nobs
        return float(-2 * self.llf + (self.df_model + self.model.k_constant *
                                      self.model.n_tasks) * np.log(n))

    @property
    def rsquared(self):
        """Per-task R^2 (Series)."""
        m = self.model
        r = self.resid.to_numpy()
        y = m.endog
        T = m.n_tasks
        cnt = np.bincount(m.task_codes, minlength=T)
        ym = np.bincount(m.task_codes, y, T) / np.maximum(cnt, 1)
        centre = ym[m.task_codes] if m.k_constant else 0.0
        tss = np.bincount(m.task_codes, (y - centre) ** 2, T)
        rss = np.bincount(m.task_codes, r ** 2, T)
        with np.errstate(divide="ignore", invalid="ignore"):
            return pd.Series(np.where(tss > 0, 1 - rss / tss, np.nan),
                             index=m.task_names, name="R2")

    def _new_design(self, newdata, exog=None, groups=None):
        m = self.model
        if m.data.formula is not None and isinstance(newdata, pd.DataFrame):
            X = m.data.exog_for(newdata, "newdata")
            if groups is None:
                if m.groups_name is None or m.groups_name not in newdata.columns:
                    raise ValueError(f"newdata needs the groups column {m.groups_name!r}")
                groups = newdata[m.groups_name]
            index = newdata.index
        else:
            X = m.data.exog_for(newdata if exog is None else exog, "newdata")
            if groups is None:
                raise ValueError("groups= is required to predict from arrays")
            index = pd.RangeIndex(X.shape[0])
        labels = np.asarray(pd.Series(groups).astype(str))
        codes = pd.Index(m.task_names).get_indexer(labels)
        if (codes < 0).any():
            unknown = sorted(set(labels[codes < 0]))
            raise ValueError(f"newdata has tasks not seen in fitting: {unknown[:10]}; use "
                             "adapt() for a new task")
        return X, codes.astype(np.int64), index

    def predict(self, newdata=None, *, groups=None):
        """Predictions for new rows of known tasks (each row by its own task).

        Parameters
        ----------
        newdata : DataFrame or array_like, optional
            For a formula model, a DataFrame with the formula's columns and the groups
            column; otherwise the d predictor columns, with ``groups=``. None: fitted values.
        groups : array_like, optional
            Task labels of the rows (overrides the groups column).

        Returns
        -------
        Series
        """
        if newdata is None:
            return self.fittedvalues
        X, codes, index = self._new_design(newdata, groups=groups)
        return pd.Series(self._predict_rows(X, codes), index=index,
                         name=self.model.endog_names[0])

    def subspace_distance(self, B_other):
        """sin-theta distance ||B_perp^T B_other||_F between the learned and another
        representation (orthonormal d x k array or DataFrame)."""
        if self._B is None:
            raise ValueError(f"method={self.method!r} has no representation")
        return sr.subspace_distance(self._B, np.asarray(B_other, dtype=float))

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
            None: least squares of y on X B. A float s >= 0: ridge towards the mean of the
            learned w's, penalty s (w - wbar)^T Sigma_w^{-1} (w - wbar)/2 (Sigma_w their
            covariance). "auto": s = sigma^2 / n_new, the Gaussian posterior mean.

        Returns
        -------
        AdaptedTask
        """
        if self._B is None:
            raise ValueError(f"method={self.method!r} has no representation to adapt")
        m = self.model
        if m.data.formula is not None and isinstance(new_task_data, pd.DataFrame) \
                and endog is None:
            import patsy
            lhs = m.data.formula.split("~", 1)[0]
            y = np.asarray(patsy.dmatrix(lhs + " - 1", new_task_data,
                                         return_type="dataframe")).ravel()
            X = m.data.exog_for(new_task_data, "new_task_data")
        else:
            if endog is None:
                raise ValueError("endog= is required when new_task_data holds predictors")
            X = m.data.exog_for(new_task_data, "new_task_data")
            y = np.asarray(endog, dtype=float).ravel()
        if len(y) != X.shape[0]:
            raise ValueError(f"endog has {len(y)} rows; new_task_data has {X.shape[0]}")
        if m.k_constant:
            xm, ym = X.mean(0), y.mean()
            Xc, yc = X - xm, y - ym
        else:
            Xc, yc = X, y
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
        if s is None and len(y) < self._B.shape[1] + m.k_constant:
            raise ValueError(f"new_task_data has {len(y)} rows, fewer than k + intercept "
                             f"({self._B.shape[1] + m.k_constant}); pass shrink='auto'")
        w = sr.adapt(self._B, Xc, yc, shrink=s, w_mean=w_mean if s else None,
                     w_cov=w_cov if s else None)
        theta = self._B @ w
        b = float(ym - xm @ theta) if m.k_constant else 0.0
        return AdaptedTask(self, w, theta, b)

    plot_convergence = _plotting.plot_convergence

    def summary(self):
        """A statsmodels Summary: T, N range, d, k and how chosen, log-likelihood,
        sigma^2, iterations, convergence and the per-task R^2 distribution."""
        from ..summary import add_frame, new_summary

        m = self.model
        left = [("Dep. Variable:", m.endog_names[0]), ("Model:", "SharedRepresentation"),
                ("Method:", {"gd": "first-order joint likelihood" + (
                    ", random-effects W-step" if self._solver.extra.get("w_ridge", 0) > 0
                    else ""), "altmin":
                             "alternating minimisation", "mom": "method of moments",
                             "per_task": "per-task least squares", "nuclear":
                             "nuclear-norm relaxation"}[self.method]),
                ("No. Observations:", m.nobs), ("No. Tasks (T):", m.n_tasks),
                ("Rows per task:", f"{int(m.N.min())} to {int(m.N.max())} "
                                   f"(median {float(np.median(m.N)):g})"),
                ("No. Predictors (d):", m.k_exog)]
        right = [("k:", "-" if self.k is None else f"{self.k} ({self.k_chosen_by})"),
                 ("Log-Likelihood:", self.llf), ("sigma^2 (RSS/N):", self.scale),
                 ("BIC:", self.bic), ("Iterations:", self.n_iter),
                 ("Converged:", self.converged), ("Intercept:", "per task" if
                                                  m.k_constant else "none")]
        smry = new_summary(self, "SharedRepresentation Results", left, right)
        r2 = self.rsquared.describe()[["mean", "min", "25%", "50%", "75%", "max"]]
        add_frame(smry, r2.to_frame("per-task R2").T, "Per-task R-squared")
        if self._W is not None and m.n_tasks <= 12:
            add_frame(smry, self.task_params, "Task weights W (k x T)")
        return smry

    def save(self, path):
        """Pickle the results to ``path`` (see :func:`mtltransfer.load`)."""
        with open(path, "wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)


class AdaptedTask:
    """A new task fitted on a learned representation by :meth:`SharedRepresentationResults.adapt`.

    Attributes
    ----------
    w : ndarray (k,)
    params : Series (d,)
        The task's coefficients B w.
    intercept : float
    """

    def __init__(self, parent, w, theta, b):
        self._parent = parent
        self.w = w
        self.params = pd.Series(theta, index=parent.model.exog_names)
        self.intercept = b

    def predict(self, newdata, exog=None):
        """Predictions for the new task's rows (DataFrame for a formula model, else X)."""
        X = self._parent.model.data.exog_for(newdata if exog is None else exog, "newdata")
        return pd.Series(X @ self.params.to_numpy() + self.intercept,
                         index=newdata.index if isinstance(newdata, pd.DataFrame) else None)
