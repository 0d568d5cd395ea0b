# Over 600 lines: one estimator's public face, its model and results (adapt, summary).
"""SharedRepresentation: many regression tasks sharing a d x k linear representation.

Task t has rows (X_t, y_t) and ``y_t = b_t + X_t B w_t + eps_t`` with B (d x k, orthonormal
columns) shared by all tasks, a per-task weight vector w_t and, when the model has an
intercept, a per-task unpenalised intercept b_t (handled by centring within each task).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .. import design
from .._validation import check_alpha, front_end
from ..exceptions import ValueWarning, user_stacklevel
from .. import plotting as _plotting
from ..solvers.shared_baselines import (adapt, fit_nuclear_norm, fit_per_task,
                                        subspace_distance)
from ..solvers.shared_fit import fit_shared_representation
from ..access import TaskRowAccess, TaskSumsAccess
from ..solvers.shared_sums import TaskSums
from ..solvers import shared_marginal as smg
from functools import cached_property

from .._validation import Param, show
from .base import (DataViews, Results, check_backend, check_int, check_positive,
                   new_data_argument, warn_penalty_scale)

_METHODS = ("marginal", "gd", "altmin", "mom", "per_task", "nuclear")


def _k_why(model):
    d, T = model.k_exog, model.n_tasks
    return (f"k <= min(d, T): the representation has at most as many columns as there "
            f"are predictors (d = {d}) and tasks (T = {T})")


#: SharedRepresentation's declared fit options (see mtltransfer._validation)
_SHARED_PARAMS = {
    "k": Param("int", 1, lambda m: min(m.k_exog, m.n_tasks), none=True, why=_k_why,
               tuned=True),
    "lam": Param("real", 0, none=True),
    "tol": Param("real", 0, low_open=True),
    "method": Param("option", options=_METHODS),
}


class SharedRepresentation(DataViews):
    r"""Multi-task linear regression with a shared linear representation.

    Parameters
    ----------
    endog : array_like, Series or DataFrame with one column, shape (n,)
        Responses of all tasks, stacked.
    exog : array_like or DataFrame, shape (n, d)
        Predictors (a constant column is the intercept and is removed).
    groups : array_like or Series, shape (n,)
        Task label of each row (any hashable labels; tasks are ordered by sorted label).
        A Series must carry the same index as the data.
    intercept : bool or None, default None
        A per-task, unpenalised intercept (centring within each task). ``None``: as
        statsmodels, when ``exog`` has a constant column.
    missing : {"raise", "drop"}
        Rows with a missing value: an error, or dropped (also the new task's rows in
        ``adapt``).
    exog_re : array_like, optional
        A random part (n x q): the model is then the multilevel one,
        :class:`~mtltransfer.models.shared_multilevel.MultilevelRepresentation`
        (``exog`` its fixed part), as with ``from_formula(..., re_formula=...)``.

    Notes
    -----
    The model is :math:`y_t = b_t \mathbf{1} + X_t B w_t + \varepsilon_t` with
    :math:`B \in \mathbb{R}^{d\times k}`, :math:`B^\top B = I_k`. The default fit
    (``method="marginal"``) treats the task weights as random effects,
    :math:`w_t \sim N(\mu_w, \Sigma_w)`, :math:`\varepsilon_t \sim N(0, \sigma^2 I)`, and
    maximises the marginal likelihood by EM
    (:func:`mtltransfer.solvers.shared_marginal.fit_marginal`); with ``k=None`` it chooses
    :math:`k` by BIC on that likelihood, whose parameter count does not grow with
    :math:`T` (right also when the tasks have few rows). ``method="gd"`` minimises
    :math:`\sum_t \frac{1}{2N_t}\lVert y_t - X_t B w_t\rVert^2` over :math:`B` with
    orthonormal columns and :math:`W = [w_1 \cdots w_T]` by a preconditioned first-order
    method from a spectral start
    (:func:`mtltransfer.solvers.shared_fit.fit_shared_representation`).

    See Also
    --------
    SharedRepresentationResults : what :meth:`fit` returns.
    AdaptedTask : a new task fitted with the learned representation.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> X, y, task, B, W = mt.datasets.simulate_shared(T=40, N=20, d=8, k=2,
    ...                                                random_state=0)
    >>> res = mt.SharedRepresentation(y, X, task).fit()
    >>> res.k                            # chosen by BIC
    2
    >>> res.representation.shape         # d x k
    (8, 2)
    """

    #: attributes with one entry per training row (dropped by save(remove_data=True))
    _row_attributes = ("task_codes",)

    _formula_max_endog = 1

    _param_table = _SHARED_PARAMS

    def __new__(cls, *args, exog_re=None, **kwargs):
        # a random part makes the multilevel model (models/shared_multilevel.py)
        if exog_re is not None and cls is SharedRepresentation:
            from .shared_multilevel import MultilevelRepresentation
            return MultilevelRepresentation(*args, exog_re=exog_re, **kwargs)
        return super().__new__(cls)

    def __init__(self, endog, exog=None, groups=None, *, intercept=None, missing="raise"):
        data = self._validated(endog, exog, intercept, missing)
        self.missing = missing          # also how adapt() treats incomplete new rows
        kept = data.extra["kept"]
        if isinstance(endog, design.ModelData):        # from_formula: the data's rows
            rows_like = pd.RangeIndex(len(kept)) if not isinstance(groups, pd.Series) \
                else None
            labels = design.groups_for(groups, rows_like)
            if len(labels) != len(kept):
                raise ValueError(f"groups must have one label per row of data "
                                 f"({len(kept)}); got {len(labels)}")
            self.groups_name = groups.name if isinstance(groups, pd.Series) else None
        else:
            pandas_rows = exog if isinstance(exog, (pd.Series, pd.DataFrame)) else (
                endog if isinstance(endog, (pd.Series, pd.DataFrame)) else None)
            labels = design.groups_for(groups, pandas_rows if pandas_rows is not None
                                       else np.asarray(exog))
            self.groups_name = None
        labels = labels[kept]
        if pd.isna(labels).any():
            raise ValueError("groups contains missing labels")
        codes, names = pd.factorize(labels, sort=True)
        self.data = data
        self.task_codes = codes.astype(np.int64)
        # integer labels keep their type (res.params[0] is task 0); others as strings
        self.task_names = names.tolist() if names.dtype.kind in "iu" else \
            [str(t) for t in names]
        self.N = np.bincount(self.task_codes, minlength=len(names))
        single = [self.task_names[t] for t in np.flatnonzero(self.N < 2)]
        if single:
            warnings.warn(f"{len(single)} task(s) have a single row ({single[:5]}"
                          f"{' ...' if len(single) > 5 else ''}): with a per-task intercept "
                          "such a task carries no information about the slopes (its "
                          "residual is zero)" if data.intercept else
                          f"{len(single)} task(s) have a single row ({single[:5]})",
                          ValueWarning, stacklevel=user_stacklevel())

    @classmethod
    def from_formula(cls, formula, data, groups, *, re_formula=None, subset=None,
                     missing="raise", eval_env=0):
        """Build the model from a one-response formula and a DataFrame.

        With ``re_formula`` (MixedLM's argument, e.g. ``"~ x1 + x2"``) the model is
        multilevel (:class:`~mtltransfer.models.shared_multilevel.MultilevelRepresentation`):
        ``formula`` is the fixed part, ``re_formula`` the random part (with the random
        task intercept unless it says ``0 +``), and the shared representation is the
        rank-k random-effects covariance of the random part.

        Parameters
        ----------
        formula : str
            ``"y ~ x1 + x2 + C(z)"``; the intercept (default) is per task.
        data : DataFrame or dask.dataframe.DataFrame
            A Dask DataFrame is fitted from per-task sums computed on the cluster
            (:func:`mtltransfer.dask.shared_from_dask`, read through a
            :class:`~mtltransfer.access.TaskSumsAccess`; ``groups`` must then be a
            column name).
        groups : str, Series or array_like
            Name of the column holding the task labels (then ``predict`` reads the same
            column of new data), or the labels themselves (a Series aligned with
            ``data``, or one label per row).
        re_formula : str, optional
            The random part of the multilevel model.
        subset : array_like, optional
            The rows of ``data`` to use (statsmodels): a boolean mask or row labels;
            ``groups`` given as labels are subset with them.
        missing : {"raise", "drop"}
        eval_env : int
        """
        if design.is_dask_frame(data):       # per-task statistics on the cluster
            if subset is not None:
                raise TypeError("subset= is for in-memory data; select the rows of a Dask "
                                "DataFrame first (data[mask])")
            if re_formula is not None:       # the multilevel model's per-group sums
                return front_end("dask", "multilevel_from_dask")(
                    cls, formula, data, groups, re_formula, missing=missing)
            return front_end("dask", "shared_from_dask")(cls, formula, data, groups,
                                                         missing=missing)
        if subset is not None and isinstance(data, pd.DataFrame):
            pos = design.subset_positions(data, subset)
            if isinstance(groups, pd.Series):
                design.check_aligned(("data", data), ("groups", groups))
                groups = groups.iloc[pos]
            elif not isinstance(groups, str) and groups is not None:
                groups = design.groups_for(groups, data)[pos]
            data = data.iloc[pos]
        if re_formula is not None:
            from .shared_multilevel import multilevel_from_formula
            return multilevel_from_formula(formula, data, groups, re_formula,
                                           missing=missing, eval_env=eval_env)
        groups = design.column_or_aligned(data, groups, "groups")
        md = cls._formula_data(formula, data, missing, eval_env)
        return cls(md, groups=groups, missing=missing)

    # -- data views (the rest from DataViews) -------------------------------------
    @property
    def endog(self):
        return self.data.endog[:, 0]

    def replace_data(self, rows=None, endog=None):
        """The same model on rows ``rows`` and/or with responses ``endog`` (bootstrap)."""
        if not self.task_access.has_rows:
            raise TypeError(f"{type(self).__name__} holds statistics, not rows: the "
                            "bootstrap needs the rows in memory")
        labels = np.asarray(self.task_names, dtype=object)[self.task_codes]
        if rows is not None:
            labels = labels[np.asarray(rows)]
        return type(self)(self.data.take(rows, endog), groups=labels)

    def _product_flops(self):
        """One pass over the rows, ``2 n d`` per column of the representation."""
        return 2.0 * self.nobs * self.k_exog

    @property
    def n_tasks(self):
        return len(self.task_names)

    @property
    def center(self):
        """Whether a per-task intercept is fitted (by centring within each task)."""
        return bool(self.data.intercept)

    @property
    def task_access(self):
        """What ``fit`` reads: the per-task data of the rows
        (:class:`~mtltransfer.access.TaskRowAccess`), or the per-task sums a front end
        without rows supplied (:class:`~mtltransfer.access.TaskSumsAccess`,
        :meth:`_with_task_access`)."""
        access = self.__dict__.get("_task_access")
        if access is not None:
            return access
        if "sums" in self.__dict__:      # a model of per-task sums saved before the access
            sums = self.__dict__["sums"]
            if isinstance(sums, dict):
                sums = TaskSums(sums["labels"],
                                **{k: v for k, v in sums.items() if k != "labels"})
            return TaskSumsAccess(sums, self.center)
        return TaskRowAccess(self.exog, self.endog, self.task_codes, self.center)

    @classmethod
    def _with_task_access(cls, data, access, task_names, task_codes, groups_name,
                          missing):
        """The model of ``data`` (a ModelData without rows) that fits from the per-task
        sums of ``access`` (a :class:`~mtltransfer.access.TaskSumsAccess`, tasks in the
        order of ``task_names``; ``task_codes`` stands in for the rows' task codes)."""
        self = cls.__new__(cls)
        self.data, self.missing, self.groups_name = data, missing, groups_name
        self.task_names = list(task_names)
        self.N = access.sums.n.astype(np.int64)
        self.task_codes = task_codes
        self.__dict__["_task_access"] = access
        return self

    def exog_sd(self):
        """Standard deviation of each predictor column (ddof 0); computed once."""
        access = self.task_access
        if access.has_rows:
            return super().exog_sd()
        return access.sums.exog_sd()

    def task_means(self, X=None, y=None, codes=None):
        """Per-task means of the predictors (T x d) and the response (T,)."""
        access = self.task_access
        if not access.has_rows and X is None and y is None and codes is None:
            return access.sums.means()
        X = self.exog if X is None else X
        y = self.endog if y is None else y
        codes = self.task_codes if codes is None else codes
        cnt = np.bincount(codes, minlength=self.n_tasks).astype(float)
        cnt[cnt == 0] = 1.0
        xm = np.stack([np.bincount(codes, X[:, j], self.n_tasks) for j in
                       range(X.shape[1])], axis=1) / cnt[:, None]
        ym = np.bincount(codes, y, self.n_tasks) / cnt
        return xm, ym

    def fit(self, k=None, *, method="marginal", lam=None, init=None, backend="fast", tol=1e-8,
            max_iter=None, criterion="bic", w_ridge="auto", verbose=False):
        """Fit the shared representation (or one of its baselines).

        Parameters
        ----------
        k : int or None
            Representation dimension, 1 <= k <= min(d, T). None: chosen by ``criterion``
            (for ``method="marginal"``, BIC on the marginal likelihood,
            :func:`mtltransfer.solvers.shared_marginal.select_k_marginal`; otherwise
            :func:`mtltransfer.solvers.shared_select.select_k`).
        method : {"marginal", "gd", "altmin", "mom", "per_task", "nuclear"}
            ``"marginal"`` (default): the random-effects model ``w_t ~ N(mu_w,
            Sigma_w)`` fitted by maximum marginal likelihood (EM,
            :func:`mtltransfer.solvers.shared_marginal.fit_marginal`); the task weights
            are posterior means and ``task_params_cov`` their posterior covariances.
            ``"gd"``: the joint likelihood estimator over (B, W) (preconditioned
            first-order method);
            baselines: ``"altmin"`` (alternating minimisation), ``"mom"`` (method of
            moments), ``"per_task"`` (least squares / ridge per task), ``"nuclear"``
            (nuclear-norm relaxation over Theta = B W, penalty ``lam``).
        lam : float, optional
            Penalty of ``method="nuclear"`` (required there).
        init : {"ridge", "mom"} or ndarray, optional
            Spectral start (``method="marginal"`` uses its own spectral start unless
            given a d x k array).
        backend : {"fast", "cvxpy"}
            How each convex subproblem is solved (W-step, nuclear-norm problem).
        tol, max_iter : float, int or None
            Tolerance and iteration cap of the iterative methods (for ``"marginal"``,
            ``tol`` bounds the per-row squared gradient norm of the marginal
            log-likelihood, see :func:`~mtltransfer.solvers.shared_marginal.fit_marginal`);
            ``max_iter=None`` is
            500 for ``"gd"``/``"altmin"``, 2000 for the EM of ``"marginal"`` (at a k
            above the true one a variance component tends to zero and EM slows down:
            about 1,100 iterations at T=200, N=15, d=20, k=6 for a true k of 3) and 5000
            for the proximal-gradient ``"nuclear"``.
        criterion : {"bic", "cv"}
            How k is chosen when ``k=None``.
        w_ridge : "auto", float or None
            Random-effects penalty of the W-step (see
            :func:`mtltransfer.solvers.shared_fit.fit_shared_representation`); None fits
            the pure likelihood.
        verbose : bool

        Returns
        -------
        SharedRepresentationResults
        """
        check_backend(backend)
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
        if method != "marginal":     # the marginal likelihood does not depend on units
            warn_penalty_scale(self)
        if max_iter is None:
            max_iter = {"nuclear": 5000, "marginal": 2000}.get(method, 500)
        max_iter = check_int("max_iter", max_iter, 1, 10 ** 7)
        if method in ("per_task", "mom") and backend != "fast":
            raise ValueError(f"method={method!r} is a closed form with no CVXPY "
                             "formulation; backend='cvxpy' applies to 'gd', 'altmin' (the "
                             "W-step) and 'nuclear'")
        access = self.task_access
        access.check_fit(method, backend, criterion, init)
        d, T = self.k_exog, self.n_tasks
        center = self.center
        how, scores = "given", None
        B = W = None
        if method == "marginal":
            if T < 2:
                raise ValueError("method='marginal' needs at least two tasks (groups): the "
                                 "distribution of the task weights is not identified from "
                                 "one; give several tasks, or method='per_task' or 'gd'")
            if backend != "fast" or criterion != "bic":
                raise ValueError("method='marginal' supports backend='fast' and "
                                 "criterion='bic' only")
            init_B = init if isinstance(init, np.ndarray) else None
            data = access.marginal_data()
            if k is None:
                k, scores, sol = smg.select_k_marginal(data, center=center, tol=tol,
                                                       max_iter=max_iter)
                how = "BIC"
            else:
                k = check_int("k", k, 1, min(d, T))
                sol = smg.fit_marginal(data, k=k, center=center, init=init_B, tol=tol,
                                       max_iter=max_iter)
            B, W = sol.extra["B"], sol.extra["W"]
            const = sol.extra.get("const_within", ())
            if len(const):
                names = [self.exog_names[j] for j in const]
                warnings.warn(f"{names} constant within every task: beside the per-task "
                              "intercept their coefficients are not identified (left "
                              "out of the representation); to estimate them, fit them "
                              "as fixed effects of the multilevel model "
                              "(from_formula(..., re_formula=...))", ValueWarning,
                              stacklevel=user_stacklevel())
        elif method == "per_task":
            sol = fit_per_task(access.task_data())
            k = None
        elif method == "nuclear":
            if lam is None:
                raise ValueError("method='nuclear' needs lam= (the nuclear-norm penalty)")
            lam = check_positive("lam", lam)
            sol = fit_nuclear_norm(access.task_data(), lam=lam, tol=tol, max_iter=max_iter,
                                   backend=backend)
            k = None
        else:
            if k is None:
                # candidates are screened at a moderate tolerance; the chosen k is then
                # fitted to ``tol`` below
                k, scores = access.select_k(criterion, method=method, tol=max(tol, 1e-6),
                                            max_iter=max_iter, w_ridge=w_ridge)
                how = criterion.upper()
            k = check_int("k", k, 1, min(d, T))
            sol = fit_shared_representation(access.task_data(), k=k, method=method,
                                            init=init, tol=tol, max_iter=max_iter,
                                            backend=backend, verbose=verbose,
                                            w_ridge=w_ridge)
            B, W = sol.extra["B"], sol.extra["W"]
        if scores:          # k = 1 and k = min(d, T) (T - 1 marginal) are natural edges
            from ..selection import warn_grid_edge
            top = min(d, T - 1) if method == "marginal" else min(d, T)
            warn_grid_edge("SharedRepresentation", "k", k, list(scores), low=True,
                           high=True if max(scores) >= top else None)
        return SharedRepresentationResults(self, sol, method, k, how, scores, B, W, lam)


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
    SharedRepresentation : the model whose :meth:`SharedRepresentation.fit` returns these results.

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
        from ..summary import add_frame, new_summary

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
        right = [("k:", "-" if self.k is None else f"{self.k} ({self.k_chosen_by})"),
                 ("Log-Likelihood:", self.llf), ("AIC:", self.aic), ("BIC:", self.bic),
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



class AdaptedTask:
    r"""A new task fitted on a learned representation by :meth:`SharedRepresentationResults.adapt`.

    Attributes
    ----------
    w : ndarray (k,)
    params : Series (d,)
        The task's coefficients B w.
    intercept : float
    df_resid : int
        ``n_new - k - 1 (intercept)``: the degrees of freedom of the B-fixed intervals.
    w_cov : ndarray (k x k) or None
        Posterior covariance of w (when fitted as a posterior mean under
        ``method="marginal"``).

    Notes
    -----
    Two kinds of intervals. :meth:`get_prediction` (fits of ``method="marginal"``) uses the
    Gaussian posterior of :math:`w` under the fitted :math:`\mu_w, \Sigma_w, \sigma^2`.
    Intervals (:meth:`conf_int`, :meth:`predict_interval`) hold the learned :math:`B`
    fixed: with :math:`Z = X_c B` (centred rows when there is an intercept),
    :math:`A = Z^\top Z + n s P` (:math:`sP` the shrinkage, zero for least squares) and
    :math:`s^2 = \lVert y_c - Z w\rVert^2 / \mathrm{df_{resid}}`,

    .. math::

       \operatorname{Var}(w) = s^2 A^{-1} Z^\top Z A^{-1}, \qquad
       \operatorname{Var}(x^\top B w + b)
       = s^2/n + (x - \bar x)^\top B \operatorname{Var}(w) B^\top (x - \bar x)

    (the :math:`s^2/n` term and the centring only with an intercept),

    with Student-t quantiles on ``df_resid``. This is exact for least squares when B spans
    the true representation; B's own error (learned from the other tasks) and the shrinkage
    bias are left out.

    See Also
    --------
    SharedRepresentationResults.adapt : returns these results.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> X, y, task, B, W = mt.datasets.simulate_shared(T=40, N=20, d=8, k=2,
    ...                                                random_state=0)
    >>> res = mt.SharedRepresentation(y, X, task).fit()
    >>> new = res.adapt(X[:4], y[:4])
    >>> new.predict(X[:2]).shape
    (2,)
    >>> new.get_prediction(X[:2]).summary_frame().shape[0]
    2
    """

    #: results of this class can be written by :func:`mtltransfer.save`
    _saveable = True

    def __init__(self, parent, w, theta, b, fit=None, posterior=None):
        self._parent = parent
        self.w = w
        self.params = pd.Series(theta, index=parent.model.exog_names)
        self.intercept = b
        self._fit = fit
        if fit is not None:
            Z, e, _, xm = fit
            self.df_resid = int(len(e) - Z.shape[1] - (xm is not None))
        self._post = posterior
        self.w_cov = None if posterior is None else posterior["w_cov"]

    def cov_w(self):
        """Var(w) (k x k) with B fixed (see the Notes)."""
        if self._fit is None or self.df_resid < 1:
            raise ValueError("intervals need at least k + 2 rows (k + 1 without an "
                             "intercept) in the new task")
        Z, e, gram, _ = self._fit
        s2 = float(e @ e) / self.df_resid
        Ainv = np.linalg.inv(gram)
        return s2 * Ainv @ (Z.T @ Z) @ Ainv, s2

    def conf_int(self, alpha=0.05):
        """Intervals for the coefficients ``B w`` (DataFrame: columns 0 (lower) and 1
        (upper), statsmodels' layout)."""
        from scipy import stats

        alpha = check_alpha(alpha)
        cov_w, _ = self.cov_w()
        B = self._parent._B
        se = np.sqrt(np.einsum("ik,kl,il->i", B, cov_w, B))
        t = stats.t.ppf(1 - alpha / 2, self.df_resid)
        return pd.DataFrame({0: self.params - t * se, 1: self.params + t * se})

    def predict_interval(self, exog, alpha=0.05, transform=True):
        """Predictions of E[y | x] for the new task with intervals (B fixed).

        Returns
        -------
        DataFrame
            Columns ``mean``, ``lower``, ``upper``.
        """
        from scipy import stats

        alpha = check_alpha(alpha)
        X, const, index = self._parent.model.data.exog_for(exog, "exog", transform=transform)
        cov_w, s2 = self.cov_w()
        xm = self._fit[3]
        G = (X - (xm if xm is not None else 0.0)) @ self._parent._B
        var = np.einsum("ik,kl,il->i", G, cov_w, G) + (s2 / len(self._fit[1])
                                                        if xm is not None else 0.0)
        mean = X @ self.params.to_numpy() + const * self.intercept
        t = stats.t.ppf(1 - alpha / 2, self.df_resid)
        half = t * np.sqrt(var)
        return pd.DataFrame({"mean": mean, "lower": mean - half, "upper": mean + half},
                            index=index)

    def get_prediction(self, exog, transform=True):
        """Predictions for the new task's rows with posterior intervals.

        For a row x, with z = B^T (x - xbar) (xbar the new task's predictor means when
        the model has an intercept, else 0): the mean ``x^T B w + b`` has variance
        ``z^T V z + sigma^2 / n`` (V the posterior covariance of w; the second term, the
        intercept's, only with an intercept), a new observation ``+ sigma^2``.

        Returns
        -------
        mtltransfer.inference.PredictionResults
            As least squares' ``get_prediction``: ``summary_frame(alpha)`` gives
            ``mean``, ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper``,
            ``obs_ci_lower``, ``obs_ci_upper`` (statsmodels' names), normal quantiles.
        """
        from ..inference import PredictionResults

        if self._post is None:
            raise ValueError("intervals need the posterior of w: adapt() with shrink=None "
                             "on a method='marginal' fit")
        X, const, index = self._parent.model.data.exog_for(exog, "exog", transform=transform)
        mean = X @ self.params.to_numpy() + const * self.intercept
        p = self._post
        Xc = X - p["xm"] if p["xm"] is not None else X
        Z = Xc @ self._parent._B
        var = np.einsum("ik,kl,il->i", Z, p["w_cov"], Z)
        if p["xm"] is not None:
            var = var + p["sigma2"] / p["n"]
        return PredictionResults(mean, var, p["sigma2"], dist="norm", row_labels=index)

    def predict(self, exog, transform=True):
        """Predictions for the new task's rows (DataFrame for a formula model, else X);
        rows with a missing value are NaN."""
        X, const, index = self._parent.model.data.exog_for(exog, "exog", transform=transform)
        return pd.Series(X @ self.params.to_numpy() + const * self.intercept, index=index)
