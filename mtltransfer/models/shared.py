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
from .._validation import Param, front_end
from ..access import TaskRowAccess, TaskSumsAccess
from ..exceptions import ValueWarning, user_stacklevel
from ..solvers import shared_marginal as smg
from ..solvers.shared_baselines import fit_nuclear_norm, fit_per_task
from ..solvers.shared_fit import fit_shared_representation
from ..solvers.shared_sums import TaskSums
from .base import DataViews, check_backend, check_int, check_positive, warn_penalty_scale
from .shared_adapt import AdaptedTask
from .shared_results import SharedRepresentationResults

__all__ = ["SharedRepresentation", "SharedRepresentationResults", "AdaptedTask"]

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
        labels = np.asarray(self.task_names)[self.task_codes]    # ints stay ints
        if rows is not None:
            labels = labels[np.asarray(rows)]
        new = type(self)(self.data.take(rows, endog), groups=labels, missing=self.missing)
        new.groups_name = self.groups_name     # predict reads the same groups column
        return new

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

    # -- fit(tuning="holdout") (mtltransfer.holdout): k by validation rows within tasks --
    #: the candidate k's: those ``k=None`` would scan (1..min(d, T - 1, 12) for
    #: "marginal", 1..min(d, T) otherwise), each fitted on the training rows
    _holdout_grid = {"k": lambda m, call: m._holdout_ks(call)}

    def _holdout_ks(self, call):
        method = call.get("method", "marginal")
        if method in ("per_task", "nuclear"):
            raise ValueError(f"SharedRepresentation: tuning='holdout' has nothing to choose "
                             f"with method={method!r} (no k); use the default tuning")
        d, T = self.k_exog, self.n_tasks
        top = max(1, min(d, T - 1, 12)) if method == "marginal" else min(d, T)
        return range(1, top + 1)

    def _holdout_split(self, holdout, seed):
        """(training, validation) rows within tasks: a share takes round(share N_t) of
        each task's rows (drawn by ``default_rng(seed)``, task by task), leaving each
        task at least 2 training rows; given rows must leave each task a training row."""
        if not self.task_access.has_rows:
            raise TypeError("tuning='holdout' needs the model's rows in memory; this "
                            "SharedRepresentation holds per-task sums only")
        from ..holdout import split_within_groups

        return split_within_groups(self.task_codes, self.task_names, holdout, seed)

    def _holdout_predict(self, res, rows):
        """Predictions of this model's rows ``rows`` by ``res`` (fitted on other rows of
        the same tasks): ``b_t + x_i^T theta_t`` with the fitted task weights."""
        labels = [str(self.task_names[c]) for c in self.task_codes[rows]]
        codes = pd.Index([str(t) for t in res.model.task_names]).get_indexer(labels)
        if (codes < 0).any():
            raise ValueError("the validation rows' tasks must be tasks of the fit")
        return res._predict_rows(self.exog[rows], codes)[:, None]

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
