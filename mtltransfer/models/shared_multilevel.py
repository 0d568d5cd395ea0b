# Over 600 lines: one model's public face: the model, its results, a new group and its bootstrap.
"""The shared representation as a multilevel (mixed) model.

Group (task) t has rows ``X_t`` (the fixed part, with the intercept), ``Z_t`` (the random
part, with the task intercept) and

    y_t = X_t beta + Z_t B w_t + e_t,    w_t ~ N(0, Sigma_w),    e_t ~ N(0, sigma^2 I),

B (q x k) orthonormal: the random coefficients ``u_t = B w_t`` live in a k-dimensional
shared representation of the random part. k = q is statsmodels' MixedLM (random
intercept and slopes, unstructured covariance); k < q a reduced-rank random-slope model.
The solver is :mod:`mtltransfer.solvers.shared_multilevel`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .. import design
from ..bootstrap import check_alpha
from ..exceptions import ValueWarning, user_stacklevel
from ..solvers import shared_multilevel as sml
from .base import DataViews, Results, check_int


class MultilevelRepresentation(DataViews):
    """A linear mixed model whose random part has a shared rank-k representation.

    Built by ``SharedRepresentation.from_formula(formula, data, groups,
    re_formula=...)`` or ``SharedRepresentation(endog, exog, groups, exog_re=...)``.

    Parameters
    ----------
    endog : array_like, shape (n,)
    exog : array_like or DataFrame, shape (n, p)
        The fixed part (a constant column is the fixed intercept, as statsmodels).
    groups : array_like or Series, shape (n,)
        Group (task) label of each row.
    exog_re : array_like or DataFrame, shape (n, q)
        The random part (a constant column is the random task intercept). Columns
        constant within every group are moved to the fixed part with a message (their
        random coefficients would not be identified beside the random intercept).
    intercept : bool or None
        Fixed intercept (None: when ``exog`` has a constant column).
    missing : {"raise", "drop"}

    Notes
    -----
    ``fit(k=q)`` is MixedLM's maximum-likelihood fit with an unstructured random-effects
    covariance (``reml=True``: the restricted likelihood); ``fit()`` chooses k in 1..q by
    BIC on the marginal likelihood.

    Examples
    --------
    >>> import numpy as np
    >>> import mtltransfer as mt
    >>> X, y, task, B, W = mt.datasets.simulate_shared(T=30, N=12, d=3, k=1,
    ...                                                random_state=0)
    >>> Xc = np.column_stack([np.ones(len(y)), X])      # intercept and slopes, all random
    >>> model = mt.SharedRepresentation(y, Xc, task, exog_re=Xc)
    >>> type(model).__name__
    'MultilevelRepresentation'
    >>> res = model.fit()                  # k chosen by BIC on the marginal likelihood
    >>> res.k, res.params.shape
    (1, (4,))
    """

    _formula_max_endog = 1
    #: one entry per training row (``save(..., remove_data=True)`` writes their shapes)
    _row_attributes = ("exog_re", "_Zextra", "task_codes", "_re_template")

    def __getstate__(self):
        # the random part's patsy design is rebuilt from its formula after loading
        state = self.__dict__.copy()
        state["_re_info"] = None
        return state

    def _re_design_info(self, newdata):
        """The random part's patsy design (rebuilt after loading: from the stored
        columns of the training data, or, saved without rows, from ``newdata``, checked
        to give the fitted columns)."""
        if self._re_info is None:
            import patsy

            src = self._re_template if isinstance(self._re_template, pd.DataFrame) else \
                newdata
            try:
                info = patsy.dmatrix(self._re_formula, src, NA_action="drop",
                                     return_type="dataframe").design_info
            except (patsy.PatsyError, NameError) as err:
                raise ValueError(f"cannot rebuild re_formula's design: "
                                 f"{str(err).splitlines()[0]}") from None
            if [str(c) for c in info.column_names] != self._Zall_names:
                raise ValueError(
                    f"the random part rebuilt after loading has columns "
                    f"{list(info.column_names)}, not the fitted {self._Zall_names} (saved "
                    "with remove_data=True, a categorical column's levels come from the "
                    "new data: give rows with every level, or save with the data)")
            if src is self._re_template:
                self._re_info = info
            return info
        return self._re_info

    def __init__(self, endog, exog=None, groups=None, *, exog_re=None, intercept=None,
                 missing="raise", _re=None):
        data = self._validated(endog, exog, intercept, missing)
        self.missing = missing
        kept = data.extra["kept"]
        self._re_formula, self._re_template = None, None
        if _re is not None:          # from_formula: (Z, names, info, gname, rhs, template)
            Z, re_names, self._re_info, gname, self._re_formula, self._re_template = _re
            labels = np.asarray(groups)
        else:
            if exog_re is None:
                raise ValueError("exog_re is required: the random part (an intercept "
                                 "column for a random task intercept)")
            re_names = list(exog_re.columns) if isinstance(exog_re, pd.DataFrame) else \
                [f"z{j}" for j in range(np.shape(exog_re)[1] if np.ndim(exog_re) == 2
                                        else 1)]
            Z = np.asarray(exog_re, dtype=float)
            Z = Z[:, None] if Z.ndim == 1 else Z
            if Z.shape[0] != len(kept):
                raise ValueError(f"exog_re must have one row per row of endog "
                                 f"({len(kept)}); got {Z.shape[0]}")
            pandas_rows = exog if isinstance(exog, (pd.Series, pd.DataFrame)) else None
            labels = design.groups_for(groups, pandas_rows if pandas_rows is not None
                                       else np.asarray(Z))
            gname = groups.name if isinstance(groups, pd.Series) else None
            self._re_info = None
            Z = Z[kept]
        labels = np.asarray(labels)[kept] if len(labels) == len(kept) else labels
        if len(labels) != data.nobs:
            raise ValueError(f"groups must have one label per row ({data.nobs}); got "
                             f"{len(labels)}")
        if pd.isna(labels).any():
            raise ValueError("groups contains missing labels")
        if not np.all(np.isfinite(Z)):
            raise ValueError("exog_re has missing or infinite values")
        codes, names = pd.factorize(labels, sort=True)
        self.data = data
        self.groups_name = gname
        self.task_codes = codes.astype(np.int64)
        self.task_names = names.tolist() if names.dtype.kind in "iu" else \
            [str(t) for t in names]
        self.N = np.bincount(self.task_codes, minlength=len(names))
        self._setup_parts(Z, [str(c) for c in re_names])

    # -- the two parts --------------------------------------------------------------
    def set_group_level(self, re_names, moved, exog_names):
        """Record the random part's columns ``moved`` (constant within every group) as
        fixed effects only (``re_moved``; ``fe_extra``, those not already in the fixed
        part ``exog_names``) and say so in a ValueWarning."""
        fixed_names = (["Intercept"] if self.data.intercept else []) + list(exog_names)
        self.re_moved = [re_names[j] for j in moved]
        self.fe_extra = [j for j in moved if re_names[j] not in fixed_names]
        if moved:
            warnings.warn(f"{self.re_moved} constant within every group: a random "
                          "coefficient would not be identified beside the random "
                          "intercept, so they are fixed effects only"
                          + (f" ({[re_names[j] for j in self.fe_extra]} added to the "
                             "fixed part)" if self.fe_extra else ""), ValueWarning,
                          stacklevel=user_stacklevel())

    def _setup_parts(self, Z, re_names):
        """Random part checks: within-group constant columns (beside a random
        intercept) go to the fixed part; a rank-deficient random part is refused."""
        const = np.flatnonzero(np.all(Z == Z[:1], axis=0) & (Z[0] != 0))
        self.re_const = int(const[0]) if len(const) else None
        moved = []
        if self.re_const is not None:
            T = self.n_tasks
            cnt = self.N.astype(float)
            mean = np.stack([np.bincount(self.task_codes, Z[:, j], T) for j in
                             range(Z.shape[1])], 1) / cnt[:, None]
            within = np.sum((Z - mean[self.task_codes]) ** 2, axis=0)
            total = np.sum(Z ** 2, axis=0)
            moved = [j for j in range(Z.shape[1]) if j != self.re_const and
                     within[j] <= 1e-12 * max(total[j], 1e-300)]
        self.set_group_level(re_names, moved, self.exog_names)
        keep = [j for j in range(Z.shape[1]) if j not in moved]
        self._Zall_names = re_names
        self._re_keep = keep
        self.exog_re = np.asarray(Z[:, keep])
        self.exog_re_names = [re_names[j] for j in keep]
        self._Zextra = Z[:, self.fe_extra]
        if np.linalg.matrix_rank(self.exog_re) < self.exog_re.shape[1]:
            raise ValueError(f"exog_re: the random part {self.exog_re_names} has "
                             "linearly dependent columns")
        Xf = self.fixed_design()
        if np.linalg.matrix_rank(Xf) < Xf.shape[1]:
            raise ValueError(f"exog: the fixed part {self.fe_names} has linearly "
                             "dependent columns")

    @property
    def fe_names(self):
        """Names of the fixed effects (statsmodels' order: intercept first)."""
        return ((["Intercept"] if self.data.intercept else []) + self.exog_names +
                [self._Zall_names[j] for j in self.fe_extra])

    @property
    def re_names(self):
        """Names of the random effects, MixedLM's way: the random intercept carries the
        groups' name ("Group" without one)."""
        out = list(self.exog_re_names)
        if self.re_const is not None:
            i = self._re_keep.index(self.re_const)
            out[i] = self.groups_name or "Group"
        return out

    def fixed_design(self, X=None, const=None, Zextra=None):
        X = self.exog if X is None else X
        n = X.shape[0]
        parts = []
        if self.data.intercept:
            parts.append(np.ones((n, 1)) if const is None else np.asarray(const)[:, None])
        parts += [X, self._Zextra if Zextra is None else Zextra]
        return np.hstack(parts)

    @property
    def n_tasks(self):
        return len(self.task_names)

    @property
    def endog(self):
        return self.data.endog[:, 0]

    k_endog = 1

    def _product_flops(self):
        """One pass over the rows for the per-group statistics."""
        return 2.0 * self.nobs * (self.k_exog + 1) * (self.k_re + 1)

    @property
    def k_re(self):
        """q, the dimension of the random part."""
        return self.exog_re.shape[1]

    def group_stats(self):
        """Per-group statistics of the fit
        (:func:`~mtltransfer.solvers.shared_multilevel.group_stats`), computed once."""
        if "_st" not in self.__dict__:
            self.__dict__["_st"] = sml.group_stats(self.fixed_design(), self.exog_re,
                                                   self.endog, self.task_codes,
                                                   self.n_tasks)
        return self.__dict__["_st"]

    def new_parts(self, newdata, exog_re=None, transform=True, name="exog"):
        """Fixed and random designs of new rows: (Xf, Z, index); NaN rows kept."""
        X, const, index = self.data.exog_for(newdata, name, transform=transform)
        if self._re_formula is not None and transform:
            import patsy

            frame = newdata.reset_index(drop=True) if isinstance(newdata, pd.DataFrame) \
                else pd.DataFrame(newdata)
            (Z,) = patsy.build_design_matrices([self._re_design_info(frame)], frame,
                                               NA_action=patsy.NAAction(NA_types=[]),
                                               return_type="dataframe")
            Z = Z.to_numpy(dtype=float)
        else:
            if exog_re is None:
                raise ValueError("exog_re= is required (the random part of the new rows)")
            Z = np.asarray(exog_re, dtype=float)
            Z = Z[:, None] if Z.ndim == 1 else Z
            if Z.shape != (X.shape[0], len(self._Zall_names)):
                raise ValueError(f"exog_re must have shape ({X.shape[0]}, "
                                 f"{len(self._Zall_names)}); got {Z.shape}")
        Xf = self.fixed_design(X, const, Z[:, self.fe_extra])
        return Xf, Z[:, self._re_keep], index

    # -- fit(tuning="holdout") (mtltransfer.holdout): k by validation rows within groups
    #: the candidate random parts: "intercept" (with a random intercept), then 1..q
    _holdout_grid = {"k": lambda m, call: (["intercept"] if m.re_const is not None
                                           else []) + list(range(1, m.k_re + 1))}

    def replace_data(self, rows=None, endog=None):
        """The same model (same fixed and random parts) on rows ``rows`` and/or with
        responses ``endog``; every group must keep rows."""
        rows = np.arange(self.nobs) if rows is None else np.asarray(rows)
        new = type(self).__new__(type(self))
        new.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_st"})
        new.data = self.data.take(rows, endog)
        codes, kept = pd.factorize(self.task_codes[rows], sort=True)
        if len(kept) < self.n_tasks:
            raise ValueError("every group must keep rows")
        new.task_codes, new.N = codes.astype(np.int64), np.bincount(codes)
        new.exog_re, new._Zextra = self.exog_re[rows], self._Zextra[rows]
        return new

    def _holdout_split(self, holdout, seed):
        """Validation rows within groups, as SharedRepresentation's."""
        from ..holdout import split_within_groups

        if not isinstance(self.exog_re, np.ndarray):
            raise TypeError("tuning='holdout' needs the model's rows in memory; this "
                            "MultilevelRepresentation holds per-group sums only")
        return split_within_groups(self.task_codes, self.task_names, holdout, seed)

    def _holdout_predict(self, res, rows):
        """``x_i^T beta + z_i^T u_t`` of this model's rows ``rows`` (known groups)."""
        Xf = self.fixed_design()[rows]
        return (Xf @ res._beta + np.einsum("iq,iq->i", self.exog_re[rows],
                                           res._U[self.task_codes[rows]]))[:, None]

    def fit(self, k=None, *, reml=False, criterion="bic", task_variance="auto", tol=1e-10,
            max_iter=1000):
        """Fit by maximum (or restricted) marginal likelihood.

        Parameters
        ----------
        k : int, "intercept" or None
            Rank of the random part, 1 <= k <= q; ``"intercept"``: the random intercept
            alone (MixedLM's default random part). None: chosen by ``criterion`` on the
            marginal likelihood among ``"intercept"`` and 1..q, each fitted (the table
            is in ``res.tuning["k"]``;
            :func:`~mtltransfer.solvers.shared_multilevel.select_k_multilevel`).
        reml : bool
            Restricted maximum likelihood (as MixedLM's ``reml=True``).
        criterion : {"bic", "bic_groups", "aic"}
            How k is chosen when ``k=None``: statsmodels' BIC (log of the rows per
            parameter), BIC with the covariance parameters penalised by the log of the
            number of groups (larger random parts), or AIC.
        task_variance : {"auto", "common", "separate"}
            ``"common"``: one noise variance sigma^2 (MixedLM's model). ``"separate"``:
            each group's own sigma_t^2, drawn from an inverse-gamma(a, b) prior fitted by
            marginal likelihood (a 3-row group borrows strength through the prior); the
            group's scale multiplies both its noise and its random effects,
            ``y_t ~ N(X_t beta, sigma_t^2 (I + Z_t L L^T Z_t^T))``, so each group's
            rows are multivariate t (the common model is the limit a -> infinity).
            ``"auto"``: "separate" when it raises the log-likelihood by more than
            ``log(n) / 2`` (BIC's price of its one extra parameter), at the random part
            chosen under the common variance; the comparison is in
            ``res.tuning["task_variance"]``. ML only. When "auto" keeps the common
            variance, a new group's intervals (:meth:`AdaptedGroup.get_prediction`)
            still average over the heterogeneity of the task variances that the
            training groups leave possible.
        tol : float
            Bound on the Newton decrement of the profiled deviance.
        max_iter : int
            BFGS iteration cap.

        Returns
        -------
        MultilevelResults
        """
        q = self.k_re
        max_iter = check_int("max_iter", max_iter, 1, 10 ** 6)
        if not isinstance(reml, (bool, np.bool_)):
            raise TypeError(f"reml must be True or False; got {reml!r}")
        if task_variance not in ("auto", "common", "separate"):
            raise ValueError(f"task_variance must be 'auto', 'common' or 'separate'; got "
                             f"{task_variance!r}")
        if reml and task_variance == "separate":
            raise ValueError("task_variance='separate' is fitted by ML (reml=False)")
        if reml:
            task_variance = "common"
        st = self.group_stats()
        icol = None if self.re_const is None else self._re_keep.index(self.re_const)
        if k is None:
            k, table, sols = sml.select_k_multilevel(st, reml=reml, tol=tol,
                                                     max_iter=max_iter,
                                                     criterion=criterion,
                                                     intercept_col=icol)
            sol, how = sols[k], criterion.upper()
            tab = ("k", criterion, [str(kk) for kk in table],
                   [list(v) for v in zip(*table.values())])
        elif k == "intercept":
            if icol is None:
                raise ValueError("k='intercept' needs a random intercept in the random "
                                 "part")
            sol = sml.fit_restricted(st, [icol], 1, reml=reml, tol=tol, max_iter=max_iter)
            how, tab = "given", None
        else:
            k = check_int("k", k, 1, q)
            sol = sml.fit_multilevel(st, k, reml=reml, tol=tol, max_iter=max_iter)
            how, tab = "given", None
        vtab = None
        if task_variance != "common":
            sep = sml.fit_separate(st, sol, tol=tol, max_iter=max_iter,
                                   warn=task_variance == "separate")
            gain = sep.extra["llf"] - sol.extra["llf"]
            thresh = np.log(self.nobs) / 2
            use = task_variance == "separate" or (gain > thresh and sep.converged)
            vtab = ("task_variance", None, ["common", "separate"],
                    [[sol.extra["llf"], sep.extra["llf"]], [0, 1], [not use, use]])
            if use:
                sol = sep
        res = MultilevelResults(self, sol, k, how, None)
        if task_variance == "auto" and res.task_variance == "common":
            # a new group's intervals average over the heterogeneity the training
            # groups leave possible (AdaptedGroup._tau_draws)
            res.__dict__["_auto_common"] = True
        # the tables are built when first read (res.tuning): pandas costs more than the
        # fit on small data
        res.__dict__["_tuning_raw"] = [t for t in (tab, vtab) if t is not None]
        return res


class MultilevelResults(Results):
    """Results of :class:`MultilevelRepresentation` (MixedLM's names).

    Attributes
    ----------
    fe_params : Series
        Fixed effects beta.
    cov_re : DataFrame (q x q)
        Random-effects covariance ``G = B Sigma_w B^T`` (rank k).
    scale : float
        sigma^2.
    random_effects : dict
        Per group, the BLUP ``E[u_t | y]`` (Series over the random part).
    random_effects_cov : dict
        Per group, ``Var(u_t | y)`` at the fitted parameters.
    representation : DataFrame (q x k)
        B; ``w_cov`` Sigma_w; ``task_params`` the posterior means of w_t (k x T).
    k, k_chosen_by, tuning["k"]
        The rank and, when chosen, the criterion table (llf, parameters, BIC).
    bse, bse_fe, tvalues, pvalues, conf_int(), cov_params()
        Inference on the fixed effects from the observed information of the marginal
        likelihood (normal quantiles, as MixedLM).
    llf, aic, bic, converged, n_iter

    Examples
    --------
    >>> import numpy as np
    >>> import mtltransfer as mt
    >>> X, y, task, B, W = mt.datasets.simulate_shared(T=30, N=12, d=3, k=1,
    ...                                                random_state=0)
    >>> Xc = np.column_stack([np.ones(len(y)), X])      # intercept and slopes, all random
    >>> model = mt.SharedRepresentation(y, Xc, task, exog_re=Xc)
    >>> res = model.fit()
    >>> bool(res.converged), res.params.shape
    (True, (4,))
    >>> res.predict(Xc[:3], groups=task[:3], exog_re=Xc[:3]).shape
    (3,)
    """

    #: what save(remove_data=True) computes and keeps
    _row_cached = ()

    @property
    def tuning(self):
        """The selection tables: ``"k"`` (llf, parameters, criterion, converged per
        candidate random part) and ``"task_variance"`` (common against separate)."""
        t = self.__dict__.setdefault("_tuning", {})
        for name, crit, index, cols in self.__dict__.pop("_tuning_raw", []):
            if name == "k":
                t[name] = pd.DataFrame(
                    {"llf": np.array(cols[0], float), "n_params": np.array(cols[1], int),
                     crit: np.array(cols[2], float),
                     "converged": np.array(cols[3], bool)},
                    index=pd.Index(index, name="k"))
            else:
                t[name] = pd.DataFrame(
                    {"llf": np.array(cols[0], float), "n_params": np.array(cols[1]),
                     "chosen": np.array(cols[2], bool)},
                    index=pd.Index(index, name="task_variance"))
        return t

    @tuning.setter
    def tuning(self, value):
        self.__dict__["_tuning"] = dict(value)

    def __init__(self, model, sol, k, how, table):
        super().__init__(model, solver=sol)
        #: the random part's rank, and its structure: "rank k" or "intercept" (the
        #: random intercept alone)
        self.k = 1 if k == "intercept" else int(k)
        self.random_part = "intercept" if k == "intercept" else f"rank {k}"
        self.k_chosen_by = how
        if table is not None:
            self.tuning["k"] = table
        ex = sol.extra
        self.reml = bool(ex["reml"])
        #: "common" (one sigma^2) or "separate" (sigma_t^2 ~ inverse gamma(a, b))
        self.task_variance = ex.get("task_variance", "common")
        self._beta = np.asarray(sol.coef)
        self._L, self._sigma2 = ex["L"], float(ex["sigma2"])
        self._U, self._Ucov, self._scale_t = self._blups(model.group_stats())

    # -- the posterior of the random effects ----------------------------------------
    def _post(self, Xf, Z, y, codes, T):
        """Per group: A_t^{-1}, L^T Z_t^T r_t (r = y - X beta)."""
        from scipy import sparse

        L = self._L
        r = y - Xf @ self._beta
        ZL = Z @ L
        n, k = ZL.shape
        S = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(T, n))
        H = np.asarray(S @ (ZL[:, :, None] * ZL[:, None, :]).reshape(n, k * k))
        g = np.asarray(S @ (ZL * r[:, None]))
        Ai = np.linalg.inv(H.reshape(T, k, k) + np.eye(k))
        rr = np.asarray(S @ (r * r)).ravel()
        Q = np.maximum(rr - np.einsum("tk,tkl,tl->t", g, Ai, g), 0.0)   # e^T W e
        return Ai, g, Q, np.asarray(S.sum(axis=1)).ravel()

    def _group_scale(self, Q, n):
        """Each group's scale: sigma^2 (common), or (b + Q_t/2) / (a + n_t/2), the
        inverse of E[1/sigma_t^2 | y_t] (separate), with the predictive t's degrees of
        freedom 2a + n_t (inf for common)."""
        if self.task_variance == "common":
            return np.full(len(Q), self._sigma2), np.full(len(Q), np.inf)
        a, b = self._solver.extra["a"], self._solver.extra["b"]
        return (b + Q / 2) / (a + n / 2), 2 * a + n

    def _post_stats(self, st):
        """:meth:`_post` of the training groups from their statistics (no pass over the
        rows): in equilibrated units ``L^T Z_t^T r_t = s_y L_s^T (Z_t^T y_t - Z_t^T X_t
        beta_s)`` and ``r_t^T r_t = s_y^2 (y_t^T y_t - 2 beta_s^T X_t^T y_t + beta_s^T
        X_t^T X_t beta_s)``, ``L_s = D_z L``, ``beta_s = D_x beta / s_y``."""
        Ls = self._L * st.Dz[:, None]
        bs = self._beta * st.Dx / st.sy
        k = Ls.shape[1]
        ZL = st.ZZ @ Ls
        Ai = np.linalg.inv(Ls.T @ ZL + np.eye(k))
        g = st.sy * ((st.Zy - st.ZX @ bs) @ Ls)
        rr = st.sy ** 2 * (st.yyt - 2 * st.Xyt @ bs + np.einsum("tpr,p,r->t", st.XXt,
                                                                  bs, bs))
        Q = np.maximum(rr - np.einsum("tk,tkl,tl->t", g, Ai, g), 0.0)
        return Ai, g, Q, st.n

    def _blups(self, st):
        Ai, g, Q, n = self._post_stats(st)
        L = self._L
        U = np.einsum("qk,tkl,tl->tq", L, Ai, g)
        scale = self._group_scale(Q, n)[0]
        Ucov = scale[:, None, None] * np.einsum("qk,tkl,rl->tqr", L, Ai, L)
        return U, Ucov, scale

    # -- MixedLM's attributes ---------------------------------------------------------
    @property
    def fe_params(self):
        return pd.Series(self._beta, index=self.model.fe_names, name="fe_params")

    params = fe_params

    @property
    def scale(self):
        """sigma^2 (``task_variance="separate"``: b / a, the prior's harmonic mean)."""
        return self._sigma2

    @property
    def task_scale(self):
        """Each group's noise variance: sigma^2 (common), or (b + Q_t/2) / (a + n_t/2)
        (separate: the inverse of the posterior mean of 1/sigma_t^2)."""
        return pd.Series(self._scale_t, index=self.model.task_names, name="scale")

    @property
    def variance_prior(self):
        """(a, b) of the inverse-gamma prior of the sigma_t^2 (None for common)."""
        ex = self._solver.extra
        return (ex["a"], ex["b"]) if self.task_variance == "separate" else None

    @property
    def cov_re(self):
        names = self.model.re_names
        return pd.DataFrame(self._solver.extra["G"], index=names, columns=names)

    @property
    def random_effects(self):
        names = self.model.re_names
        return {g: pd.Series(self._U[t], index=names)
                for t, g in enumerate(self.model.task_names)}

    @property
    def random_effects_cov(self):
        names = self.model.re_names
        return {g: pd.DataFrame(self._Ucov[t], index=names, columns=names)
                for t, g in enumerate(self.model.task_names)}

    @property
    def representation(self):
        B = self._solver.extra["B"]
        return pd.DataFrame(B, index=self.model.re_names,
                            columns=[f"b{j + 1}" for j in range(self.k)])

    @property
    def w_cov(self):
        c = [f"b{j + 1}" for j in range(self.k)]
        return pd.DataFrame(self._solver.extra["Sigma_w"], index=c, columns=c)

    @property
    def task_params(self):
        B = self._solver.extra["B"]
        return pd.DataFrame(B.T @ self._U.T, index=[f"b{j + 1}" for j in range(self.k)],
                            columns=self.model.task_names)

    @property
    def llf(self):
        """Log marginal likelihood (restricted with ``reml=True``; MixedLM's values)."""
        return float(self._solver.extra["llf"])

    @property
    def k_params(self):
        """beta, the free entries of the rank-k covariance and sigma^2 (MixedLM's count
        at k = q)."""
        m = self.model
        extra = int(self.task_variance == "separate")      # a and b instead of sigma^2
        if self.random_part == "intercept":
            return len(m.fe_names) + 2 + extra
        return sml.n_params(len(m.fe_names), m.k_re, self.k) + extra

    @property
    def aic(self):
        return np.nan if self.reml else float(-2 * self.llf + 2 * self.k_params)

    @property
    def bic(self):
        return np.nan if self.reml else float(-2 * self.llf + np.log(self.nobs) *
                                              self.k_params)

    def cov_params(self):
        """Covariance of the fixed effects from the observed information (DataFrame)."""
        if "_cov" not in self.__dict__:
            st = self.model.group_stats()
            sol = self._solver
            # with reml=True: the observed information of the ML likelihood at the REML
            # estimates (as MixedLM)
            self.__dict__["_cov"] = sml.cov_fixed_separate(st, sol) if \
                self.task_variance == "separate" else sml.cov_fixed(st, sol)
        names = self.model.fe_names
        return pd.DataFrame(self.__dict__["_cov"], index=names, columns=names)

    @property
    def bse_fe(self):
        return pd.Series(np.sqrt(np.diag(self.cov_params().to_numpy())),
                         index=self.model.fe_names, name="bse")

    bse = bse_fe

    @property
    def tvalues(self):
        return self.fe_params / self.bse_fe

    @property
    def pvalues(self):
        from scipy import stats

        return pd.Series(2 * stats.norm.sf(np.abs(self.tvalues.to_numpy())),
                         index=self.model.fe_names)

    def conf_int(self, alpha=0.05):
        """Normal intervals of the fixed effects (DataFrame with columns 0, 1)."""
        from scipy import stats

        alpha = check_alpha(alpha)
        z = stats.norm.ppf(1 - alpha / 2)
        b, s = self.fe_params, self.bse_fe
        return pd.DataFrame({0: b - z * s, 1: b + z * s})

    # -- fitted values and prediction -------------------------------------------------
    @property
    def fittedvalues(self):
        """Conditional fitted values ``X beta + Z u_t`` (MixedLM's)."""
        m = self.model
        f = m.fixed_design() @ self._beta + np.einsum("iq,iq->i", m.exog_re,
                                                       self._U[m.task_codes])
        return pd.Series(f, index=m.data.row_labels, name=m.endog_names[0])

    @property
    def resid(self):
        return pd.Series(self.model.endog, index=self.model.data.row_labels,
                         name=self.model.endog_names[0]) - self.fittedvalues

    def predict(self, exog=None, *, groups=None, exog_re=None, marginal=False,
                transform=True):
        """Predictions of new rows.

        Parameters
        ----------
        exog : DataFrame or array_like, optional
            For a formula model a DataFrame with both formulas' columns (and the groups
            column); else the fixed part, with ``exog_re=``. None: the fitted values.
        groups : array_like, optional
            Group labels (default: the groups column of ``exog``).
        exog_re : array_like, optional
            The random part of array models.
        marginal : bool
            True: ``X beta`` (MixedLM's ``predict``); False: conditional on each row's
            group, ``X beta + Z u_t`` (known groups only; use :meth:`adapt` for a new
            group).
        transform : bool

        Returns
        -------
        Series
        """
        m = self.model
        if exog is None:
            return self.fittedvalues if not marginal else pd.Series(
                m.fixed_design() @ self._beta, index=m.data.row_labels)
        Xf, Z, index = m.new_parts(exog, exog_re, transform)
        pred = Xf @ self._beta
        if not marginal:
            if groups is None:
                if not (isinstance(exog, pd.DataFrame) and m.groups_name in exog.columns):
                    raise ValueError("groups= is required for conditional predictions "
                                     "(or marginal=True)")
                groups = exog[m.groups_name]
            labels = np.asarray(pd.Series(np.asarray(groups)).astype(str))
            codes = pd.Index([str(t) for t in m.task_names]).get_indexer(labels)
            if (codes < 0).any():
                raise ValueError(f"groups not seen in fitting: "
                                 f"{sorted(set(labels[codes < 0]))[:10]}; use adapt() "
                                 "for a new group or marginal=True")
            pred = pred + np.einsum("iq,iq->i", Z, self._U[codes])
        return pd.Series(pred, index=index, name=m.endog_names[0])

    def adapt(self, new_group_data, endog=None, *, exog_re=None):
        """A new group's random effects (BLUP) from its rows, with intervals.

        Parameters
        ----------
        new_group_data : DataFrame or array_like
            The new group's rows (formula model: a DataFrame with the formulas' columns
            and the response).
        endog : array_like, optional
            The responses (array models, or to override the formula's response).
        exog_re : array_like, optional
            The random part of array models.

        Returns
        -------
        AdaptedGroup
        """
        m = self.model
        Xf, Z, _ = m.new_parts(new_group_data, exog_re, name="new_group_data")
        if endog is None:
            if m.data.formula is None or not isinstance(new_group_data, pd.DataFrame):
                raise ValueError("endog= is required when new_group_data holds predictors")
            lhs = m.data.formula.split("~", 1)[0].strip()
            y = new_group_data.eval(lhs) if lhs not in new_group_data.columns else \
                new_group_data[lhs]
            y = np.asarray(y, dtype=float)
        else:
            y = np.asarray(endog, dtype=float).ravel()
        if len(y) != Xf.shape[0]:
            raise ValueError(f"endog has {len(y)} rows; new_group_data has {Xf.shape[0]}")
        ok = np.isfinite(Xf).all(1) & np.isfinite(Z).all(1) & np.isfinite(y)
        if not ok.all():
            if m.missing != "drop" or not ok.any():
                raise ValueError(f"new_group_data has missing values in "
                                 f"{int((~ok).sum())} row(s); drop them first or build "
                                 "the model with missing='drop'")
            Xf, Z, y = Xf[ok], Z[ok], y[ok]
        Ai, g, Q, n = self._post(Xf, Z, y, np.zeros(len(y), dtype=np.int64), 1)
        scale, df = self._group_scale(Q, n)
        return AdaptedGroup(self, Ai[0], g[0], Xf, Z, float(scale[0]), float(df[0]), y)

    def bootstrap(self, n_boot=200, method="cluster", random_state=None, n_jobs=1):
        """Cluster bootstrap of the fit: groups drawn with replacement, the model
        refitted at its random part and task variance.

        Each replicate is computed from the per-group statistics (a group drawn c times
        counts c times in the likelihood), so no pass over the rows is made.

        Parameters
        ----------
        n_boot : int
            Number of replicates.
        method : {"cluster"}
            Groups resampled with replacement (the groups are the independent units).
        random_state : int, numpy SeedSequence, numpy Generator or None
            Replicate b uses the b-th child seed: the draws do not depend on ``n_jobs``.
        n_jobs : int
            Parallel workers (joblib).

        Returns
        -------
        MultilevelBootstrap
            Also stored as ``self.bootstrap_results``.
        """
        from ..bootstrap import child_seeds

        n_boot = check_int("n_boot", n_boot, 2, 10 ** 7)
        n_jobs = check_int("n_jobs", n_jobs, 1, 1024)
        if method != "cluster":
            raise ValueError(f"method must be 'cluster'; got {method!r}")
        st = self.model.group_stats()
        seeds = child_seeds(random_state, n_boot)
        ex = self._solver.extra
        spec = (self.random_part == "intercept", ex.get("cols"), self.k, self.reml,
                self.task_variance)
        if n_jobs == 1:
            reps = [_cluster_replicate(st, spec, sd) for sd in seeds]
        else:
            from joblib import Parallel, delayed
            reps = Parallel(n_jobs=n_jobs)(delayed(_cluster_replicate)(st, spec, sd)
                                           for sd in seeds)
        self.bootstrap_results = MultilevelBootstrap(self, reps)
        return self.bootstrap_results

    # -- summary ----------------------------------------------------------------------
    def summary(self, alpha=0.05):
        """MixedLM-style summary: fixed effects with observed-information standard
        errors, the random-effects covariance, sigma^2, and k with its criterion
        table."""
        from ..summary import add_frame, new_summary

        alpha = check_alpha(alpha)
        m = self.model
        left = [("Dep. Variable:", m.endog_names[0]),
                ("Model:", "SharedRepresentation (multilevel)"),
                ("Method:", "REML" if self.reml else "ML"),
                ("No. Observations:", m.nobs), ("No. Groups:", m.n_tasks),
                ("Group size:", f"{int(m.N.min())} to {int(m.N.max())} "
                                f"(mean {float(np.mean(m.N)):.1f})")]
        right = [("Random part (q):", m.k_re),
                 ("k:", f"{self.random_part} ({self.k_chosen_by})"),
                 ("Log-Likelihood:", self.llf), ("Scale (sigma^2):", self.scale),
                 ("Task variance:", self.task_variance),
                 ("Iterations:", self.n_iter), ("Converged:", self.converged)]
        smry = new_summary(self, "SharedRepresentation multilevel results", left, right)
        ci = self.conf_int(alpha)
        fe = pd.DataFrame({"coef": self.fe_params, "std err": self.bse_fe,
                           "z": self.tvalues, "P>|z|": self.pvalues,
                           f"[{alpha / 2:g}": ci[0], f"{1 - alpha / 2:g}]": ci[1]})
        add_frame(smry, fe, "Fixed effects (standard errors from the observed "
                  "information of the marginal likelihood)")
        add_frame(smry, self.cov_re, f"Random-effects covariance (rank {self.k})")
        if "k" in self.tuning:
            t = self.tuning["k"].drop(columns="converged").T
            add_frame(smry, t, f"k selection ({self.k_chosen_by}; smallest chosen)")
        if "task_variance" in self.tuning:
            add_frame(smry, self.tuning["task_variance"].T, "Task variance (separate if "
                      "its llf gain > log(n)/2)")
        if self.task_variance == "separate":
            a, b = self.variance_prior
            smry.add_extra_txt([f"Separate task variances sigma_t^2 ~ inverse gamma(a="
                                f"{a:.4g}, b={b:.4g}); scale = b/a; each group's own in "
                                "res.task_scale; cov_re is at scale b/a."])
        if m.re_moved:
            smry.add_extra_txt([f"{m.re_moved} are constant within every group: fixed "
                                "effects only."])
        return smry


def _cluster_replicate(st, spec, seed):
    """One cluster-bootstrap replicate: (beta, G, converged) refitted on the groups
    drawn with replacement (their statistics stacked)."""
    intercept_only, cols, k, reml, tv = spec
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, st.T, st.T)
    sub = sml.GroupStats(st.ZZ[idx], st.ZX[idx], st.Zy[idx], st.XXt[idx].sum(0),
                         st.Xyt[idx].sum(0), float(st.yyt[idx].sum()), st.n[idx], st.Dx,
                         st.Dz, st.sy)
    sub.XXt, sub.Xyt, sub.yyt = st.XXt[idx], st.Xyt[idx], st.yyt[idx]
    if intercept_only:
        sol = sml.fit_restricted(sub, cols, 1, reml=reml, warn=False)
    else:
        sol = sml.fit_multilevel(sub, k, reml=reml, warn=False)
    if tv == "separate":
        sep = sml.fit_separate(sub, sol, warn=False)
        # a -> infinity: the replicate's maximum is the common-variance model (the
        # boundary the separate fit only approaches)
        if sep.converged or sep.extra["a"] < 1e4:
            sol = sep
    return np.asarray(sol.coef), sol.extra["G"], bool(sol.converged)


class MultilevelBootstrap:
    """Cluster-bootstrap replicates of a multilevel fit
    (:meth:`MultilevelResults.bootstrap`).

    Attributes
    ----------
    params : DataFrame (n_boot x p)
        The fixed effects of each replicate.
    cov_re : ndarray (n_boot x q x q)
        The random-effects covariance of each replicate.
    converged : ndarray of bool
        Whether each replicate's fit converged (a replicate that did not is kept and
        counted in ``n_not_converged``; it is reported, never dropped silently).

    Examples
    --------
    >>> import numpy as np
    >>> import mtltransfer as mt
    >>> X, y, task, B, W = mt.datasets.simulate_shared(T=30, N=12, d=3, k=1,
    ...                                                random_state=0)
    >>> Xc = np.column_stack([np.ones(len(y)), X])      # intercept and slopes, all random
    >>> model = mt.SharedRepresentation(y, Xc, task, exog_re=Xc)
    >>> boot = model.fit().bootstrap(20, random_state=0)     # groups resampled
    >>> boot.params.shape, int(boot.n_not_converged)
    ((20, 4), 0)
    """

    def __init__(self, results, reps):
        self.results = results
        names = results.model.fe_names
        self.params = pd.DataFrame(np.array([r[0] for r in reps]), columns=names)
        self.cov_re = np.array([r[1] for r in reps])
        self.converged = np.array([r[2] for r in reps])
        self.n_boot = len(reps)
        self.n_not_converged = int((~self.converged).sum())
        if self.n_not_converged:
            from ..exceptions import ConvergenceWarning
            warnings.warn(f"{self.n_not_converged} of {self.n_boot} bootstrap refits did "
                          "not converge (kept; see .converged)", ConvergenceWarning,
                          stacklevel=user_stacklevel())

    @property
    def bse(self):
        """Standard deviation of the replicates' fixed effects."""
        return self.params.std(ddof=1).rename("bse")

    def conf_int(self, alpha=0.05, kind="percentile"):
        """Intervals of the fixed effects from the replicates.

        Parameters
        ----------
        alpha : float
        kind : {"percentile", "basic", "normal"}
            Quantiles of the replicates; the basic (reflected) interval
            ``2 beta - q(1 - alpha/2), 2 beta - q(alpha/2)``; or ``beta +- z se``.

        Returns
        -------
        DataFrame
            Columns 0 and 1 (lower, upper), as statsmodels.
        """
        from scipy import stats

        alpha = check_alpha(alpha)
        b = self.results.fe_params
        lo = self.params.quantile(alpha / 2)
        hi = self.params.quantile(1 - alpha / 2)
        if kind == "percentile":
            return pd.DataFrame({0: lo, 1: hi})
        if kind == "basic":
            return pd.DataFrame({0: 2 * b - hi, 1: 2 * b - lo})
        if kind == "normal":
            z = stats.norm.ppf(1 - alpha / 2)
            return pd.DataFrame({0: b - z * self.bse, 1: b + z * self.bse})
        raise ValueError(f"kind must be 'percentile', 'basic' or 'normal'; got {kind!r}")


class AdaptedGroup:
    """A new group's random effects from its rows (:meth:`MultilevelResults.adapt`).

    Attributes
    ----------
    random_effects : Series
        BLUP ``E[u | y] = L A^{-1} L^T Z^T (y - X beta)``, ``A = L^T Z^T Z L + I``.
    random_effects_cov : DataFrame
        ``Var(u | y) = sigma^2 L A^{-1} L^T``.

    Notes
    -----
    For a new row (x, z) the prediction is ``x^T beta + z^T u``; its error has variance

        sigma^2 z^T L A^{-1} L^T z + J C J^T      (mean)
        + sigma^2                                (a new observation)

    with J the derivatives of the mean ``x^T beta + z^T L A^{-1} L^T Z^T (y - X beta)``
    (X, Z, y the group's revealed rows) in the estimated (beta, theta) and C their
    covariance from the observed information (the delta method; the beta part of J is
    ``h = x - X^T Z L A^{-1} L^T z``): the new group's rows are independent of the
    estimates, so the two parts add. With separate
    task variances sigma^2 is the group's own, ``(b + Q/2) / (a + n/2)`` from its n
    revealed rows (``Q = e^T (I - Z L A^{-1} L^T Z^T) e``), and the quantiles are
    Student t on ``2a + n`` degrees of freedom (the posterior predictive).

    Examples
    --------
    >>> import numpy as np
    >>> import mtltransfer as mt
    >>> X, y, task, B, W = mt.datasets.simulate_shared(T=30, N=12, d=3, k=1,
    ...                                                random_state=0)
    >>> Xc = np.column_stack([np.ones(len(y)), X])      # intercept and slopes, all random
    >>> model = mt.SharedRepresentation(y, Xc, task, exog_re=Xc)
    >>> new = model.fit().adapt(Xc[:4], y[:4], exog_re=Xc[:4])   # a group with 4 rows
    >>> new.random_effects.shape, new.predict(Xc[:2], Xc[:2]).shape
    ((4,), (2,))
    """

    def __init__(self, parent, Ai, g, Xf, Z, scale, df, y):
        self._p = parent
        #: the group's noise variance (common: sigma^2; separate: (b + Q/2) / (a + n/2)
        #: from its revealed rows) and the predictive t's degrees of freedom (inf:
        #: normal)
        self.scale, self.df = scale, df
        L = parent._L
        self._K = L @ Ai @ L.T                    # L A^{-1} L^T
        self._u = L @ Ai @ g
        self._ZX = Z.T @ Xf
        self._Xr, self._Zr, self._y = Xf, Z, y
        self.nobs = Xf.shape[0]

    @property
    def random_effects(self):
        return pd.Series(self._u, index=self._p.model.re_names)

    @property
    def random_effects_cov(self):
        n = self._p.model.re_names
        return pd.DataFrame(self.scale * self._K, index=n, columns=n)

    def get_prediction(self, exog, exog_re=None, alpha=0.05, transform=True,
                       intervals="posterior"):
        """Predictions with intervals (statsmodels' column names).

        Parameters
        ----------
        exog, exog_re, transform
            The rows to predict, as :meth:`MultilevelResults.predict`.
        alpha : float
            1 - the intervals' level.
        intervals : {"posterior", "delta"}
            ``"posterior"`` (default): the predictive distribution averaged over the
            estimates' approximate sampling distribution, normal with the observed
            information's covariance in every parameter the prediction uses (beta, the
            factor L and the variance parameters: sigma^2, or the prior's log a and
            log b; held at their estimates when a > 1e4, the common-variance limit where
            the likelihood is flat in a), by 400 fixed draws (antithetic; the same on
            every call); the intervals are that mixture's quantiles.

            When ``task_variance="auto"`` kept the common variance, each draw also takes a
            heterogeneity tau = 1/a from its likelihood at the common fit (a grid
            posterior, flat prior on tau >= 0;
            ``mtltransfer.solvers.shared_multilevel.heterogeneity_grid``) and, for
            tau > 0, the group's own variance posterior and Student t predictive as
            with separate variances.

            ``"delta"``: the plug-in predictive
            (normal, or Student t on ``df`` degrees of freedom with separate task
            variances) with the delta-method variance of the mean in (beta, L) added;
            it ignores the variance parameters' uncertainty.

        Returns
        -------
        DataFrame
            ``mean``, ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper``,
            ``obs_ci_lower``, ``obs_ci_upper``. ``mean`` is the prediction at the
            estimates; ``mean_se`` the standard deviation of the conditional mean
            ``x^T beta + z^T u`` (posterior: under the mixture).
        """
        from scipy import stats

        alpha = check_alpha(alpha)
        if intervals not in ("posterior", "delta"):
            raise ValueError(f"intervals must be 'posterior' or 'delta'; got "
                             f"{intervals!r}")
        p = self._p
        Xf, Z, index = p.model.new_parts(exog, exog_re, transform)
        mean = Xf @ p._beta + Z @ self._u
        if intervals == "posterior":
            se, lo, hi, olo, ohi = self._posterior(Xf, Z, alpha)
            return pd.DataFrame({"mean": mean, "mean_se": se, "mean_ci_lower": lo,
                                 "mean_ci_upper": hi, "obs_ci_lower": olo,
                                 "obs_ci_upper": ohi}, index=index)
        var = self.scale * np.einsum("iq,qr,ir->i", Z, self._K, Z) + \
            self._param_var(Xf, Z)
        q = stats.norm.ppf(1 - alpha / 2) if not np.isfinite(self.df) else \
            stats.t.ppf(1 - alpha / 2, self.df)
        se, se_obs = np.sqrt(var), np.sqrt(var + self.scale)
        return pd.DataFrame({"mean": mean, "mean_se": se, "mean_ci_lower": mean - q * se,
                             "mean_ci_upper": mean + q * se,
                             "obs_ci_lower": mean - q * se_obs,
                             "obs_ci_upper": mean + q * se_obs}, index=index)

    def _draws(self):
        """Parameter draws (J x len(par)) from N(estimate, 2 H^+) (observed information
        of the fit's likelihood, equilibrated coordinates), fixed antithetic normals."""
        p = self._p
        if "_draws" not in p.__dict__:
            par, C, npar, k, sub = sml.cov_mean_params(p.model.group_stats(), p._solver,
                                                       full=True)
            if p.task_variance == "separate" and np.exp(par[-2]) > 1e4:
                # the common-variance limit (a -> infinity): the likelihood is flat in
                # log a there and its curvature says nothing; (a, b) are held fixed
                C = C.copy()
                C[-2:, :] = 0.0
                C[:, -2:] = 0.0
            # the symmetric square root R = U diag(sqrt w) U^T (R R^T = C): unlike
            # U diag(sqrt w), it does not depend on the eigenvectors' signs, which
            # rounding may flip, so the same C always gives the same draws
            w, U = np.linalg.eigh((C + C.T) / 2)
            R = (U * np.sqrt(np.clip(w, 0, None))) @ U.T
            E = np.random.default_rng(20261207).standard_normal((200, len(par)))
            E = np.vstack([E, -E])
            p.__dict__["_draws"] = (par + E @ R.T, npar, k, sub)
        return p.__dict__["_draws"]

    def _tau_draws(self, J):
        """Draws of the heterogeneity tau = 1/a of the task variances when the
        automatic choice kept the common model (None otherwise): J stratified quantiles
        (in a fixed random order) of its grid posterior
        (:func:`~mtltransfer.solvers.shared_multilevel.heterogeneity_grid`, a flat prior
        on tau >= 0 at the common fit). The training groups did not show heterogeneity
        enough to choose separate variances, but they rarely rule out a moderate one: a
        new group whose revealed rows scatter more than the training groups' then gets
        wider intervals through its own variance posterior."""
        p = self._p
        if not p.__dict__.get("_auto_common"):
            return None
        if "_tau" not in p.__dict__:
            tau, wt = sml.heterogeneity_grid(p.model.group_stats(), p._solver)
            cdf = np.cumsum(wt)
            u = (np.random.default_rng(20261208).permutation(J) + 0.5) / J
            p.__dict__["_tau"] = np.interp(u, cdf, tau)
        return p.__dict__["_tau"]

    def _posterior(self, Xf, Z, alpha):
        """The mixture over parameter draws (see :meth:`get_prediction`): per draw j the
        group's conditional mean m_j, the variance factor of the mean s_j z^T K_j z and
        of an observation s_j (1 + z^T K_j z), and the degrees of freedom nu_j; the
        mixture's CDF ``mean_j F_nu_j((y - m_j) / sd_j)`` is inverted by bisection."""
        from scipy import special

        p = self._p
        D, npar, k, sub = self._draws()
        st = p.model.group_stats()
        ex = p._solver.extra
        cols = ex.get("cols")
        Zc = Z if cols is None else Z[:, cols]
        Zr = self._Zr if cols is None else self._Zr[:, cols]
        beta = D[:, :npar] * (st.sy / st.Dx)                         # J p
        nth = len(sml.tril_index(sub.q, k))
        L = sml.unpack_batch(D[:, npar:npar + nth], sub.q, k) / sub.Dz[:, None]
        ZrL = np.einsum("mq,jqk->jmk", Zr, L)                        # J m k
        A = np.swapaxes(ZrL, 1, 2) @ ZrL + np.eye(k)
        Ai = np.linalg.inv(A)
        e = self._y - beta @ self._Xr.T                             # J m
        h = np.einsum("jmk,jm->jk", ZrL, e)
        w = np.einsum("jkl,jl->jk", Ai, h)
        ZL = np.einsum("iq,jqk->jik", Zc, L)                         # J r k
        m = beta @ Xf.T + np.einsum("jik,jk->ji", ZL, w)             # J r
        zKz = np.einsum("jik,jkl,jil->ji", ZL, Ai, ZL)
        n = len(self._y)
        if self._p.task_variance == "separate":
            a = np.exp(D[:, -2])
            b = np.exp(D[:, -1]) * st.sy ** 2
            Q = np.maximum(np.sum(e * e, 1) - np.einsum("jk,jk->j", h, w), 0.0)
            s = (b + Q / 2) / (a + n / 2)
            nu = 2 * a + n
        else:
            s = np.maximum(D[:, -1], 1e-12 * abs(np.median(D[:, -1]))) * st.sy ** 2
            nu = np.full(len(s), np.inf)
            tau = self._tau_draws(len(s))
            if tau is not None:
                # the common model chosen by "auto": heterogeneity tau = 1/a drawn from
                # its likelihood; the group's variance is then its own posterior,
                # (a s + Q/2) / (a + n/2) with the prior's mean scale s
                het = tau > 0
                a = np.where(het, 1.0 / np.where(het, tau, 1.0), np.inf)
                Q = np.maximum(np.sum(e * e, 1) - np.einsum("jk,jk->j", h, w), 0.0)
                s = np.where(het, (np.where(het, a, 0.0) * s + Q / 2) /
                             (np.where(het, a, 0.0) + n / 2), s)
                nu = np.where(het, 2 * np.where(het, a, 0.0) + n, np.inf)
        s, nu = s[:, None], nu[:, None]
        inf = ~np.isfinite(nu)
        nu_f = np.where(inf, 1.0, nu)

        # log of the t density's constant (normal: -log(2 pi) / 2)
        logc = np.where(inf, -0.5 * np.log(2 * np.pi),
                        special.gammaln((nu_f + 1) / 2) - special.gammaln(nu_f / 2)
                        - 0.5 * np.log(nu_f * np.pi))

        normal = bool(inf.all())             # common variance: every draw normal

        def cdf_pdf(z):
            if normal:
                return special.ndtr(z), np.exp(logc - 0.5 * z * z)
            # Student t draws, and normal ones where nu is infinite (a mixture of both
            # when "auto" kept the common variance: some heterogeneity draws are 0)
            return (np.where(inf, special.ndtr(z), special.stdtr(nu_f, z)),
                    np.exp(logc - np.where(inf, 0.5 * z * z, (nu_f + 1) / 2 *
                                           np.log1p(z * z / nu_f))))

        def quantiles(sd):
            """Safeguarded Newton on the mixture CDF, inside the bracket of its
            components' quantiles (the mixture's quantile lies between them)."""
            sd = np.maximum(sd, 1e-300)
            out = []
            for prob in (alpha / 2, 1 - alpha / 2):
                zq = np.where(inf, special.ndtri(prob), special.stdtrit(nu_f, prob))
                lo = np.min(m + zq * sd, 0)
                hi = np.max(m + zq * sd, 0)
                x = np.mean(m + zq * sd, 0)
                for _ in range(100):
                    F, f = cdf_pdf((x - m) / sd)
                    F, f = np.mean(F, 0) - prob, np.mean(f / sd, 0)
                    lo, hi = np.where(F < 0, x, lo), np.where(F < 0, hi, x)
                    new = x - F / np.maximum(f, 1e-300)
                    new = np.where((new >= lo) & (new <= hi), new, (lo + hi) / 2)
                    done = np.abs(new - x) <= 1e-11 * sd.min(0)
                    x = new
                    if done.all():
                        break
                out.append(x)
            return out

        sd_mean = np.sqrt(s * zKz)
        sd_obs = np.sqrt(s * (1 + zKz))
        var_t = np.where(inf, 1.0, nu_f / np.maximum(nu_f - 2, 1e-12))
        se = np.sqrt(np.var(m, 0) + np.mean(s * zKz * var_t, 0))
        lo, hi = quantiles(sd_mean)
        olo, ohi = quantiles(sd_obs)
        return se, lo, hi, olo, ohi

    def _param_var(self, Xf, Z):
        """Variance of the predicted means from the estimates of beta and of the
        random-effects factor L: ``J C J^T`` by rows, J the derivatives of the mean
        ``x^T beta + z^T L A^{-1} L^T Z^T (y - X beta)`` in (beta, theta) (central
        differences) and C their covariance from the observed information
        (:func:`~mtltransfer.solvers.shared_multilevel.cov_mean_params`)."""
        p = self._p
        if "_pc" not in p.__dict__:
            p.__dict__["_pc"] = sml.cov_mean_params(p.model.group_stats(), p._solver)
        par, C, npar, k, sub = p.__dict__["_pc"]
        ex = p._solver.extra
        cols = ex.get("cols")
        Zc = Z if cols is None else Z[:, cols]
        Zr = self._Zr if cols is None else self._Zr[:, cols]
        st = p.model.group_stats()

        def mean(x):
            beta = x[:npar] * st.sy / st.Dx
            L = sml.unpack_tril(x[npar:], sub.q, k) / sub.Dz[:, None]
            ZL = Zr @ L
            A = ZL.T @ ZL + np.eye(k)
            u = L @ np.linalg.solve(A, ZL.T @ (self._y - self._Xr @ beta))
            return Xf @ beta + Zc @ u

        J = np.empty((Xf.shape[0], len(par)))
        for j in range(len(par)):
            h = 1e-6 * max(1.0, abs(par[j]))
            e = np.zeros(len(par))
            e[j] = h
            J[:, j] = (mean(par + e) - mean(par - e)) / (2 * h)
        return np.einsum("ip,pr,ir->i", J, C, J)

    def predict(self, exog, exog_re=None, transform=True):
        p = self._p
        Xf, Z, index = p.model.new_parts(exog, exog_re, transform)
        return pd.Series(Xf @ p._beta + Z @ self._u, index=index)


def multilevel_from_formula(formula, data, groups, re_formula, *, missing="raise",
                            eval_env=0):
    """:class:`MultilevelRepresentation` from two formulas (see
    :meth:`SharedRepresentation.from_formula`)."""
    import patsy

    if not isinstance(re_formula, str):
        raise TypeError(f"re_formula must be a str such as '~ x1 + x2'; got "
                        f"{type(re_formula).__name__}")
    if isinstance(groups, str):
        if groups not in data.columns:
            raise ValueError(f"groups={groups!r} is not a column of data")
        gname, groups = groups, data[groups]
    else:
        if isinstance(groups, pd.Series):
            design.check_aligned(("data", data), ("groups", groups))
        gname = groups.name if isinstance(groups, pd.Series) else None
    env = patsy.EvalEnvironment.capture(eval_env + 2).with_outer_namespace(
        {"np": np, "numpy": np})
    md = design.from_formula(formula, data, missing=missing, max_endog=1, eval_env=env)
    kept = md.extra["kept"]
    rhs = re_formula.split("~", 1)[-1]
    work = data.set_axis(pd.RangeIndex(len(data)), axis=0)
    try:
        Zf = patsy.dmatrix(rhs, work, eval_env=env, NA_action=patsy.NAAction(NA_types=[]),
                           return_type="dataframe")
    except (patsy.PatsyError, NameError) as err:
        raise ValueError(f"cannot evaluate re_formula {re_formula!r}: "
                         f"{str(err).splitlines()[0]}") from None
    Z = Zf.to_numpy(dtype=float)
    bad = ~np.isfinite(Z).all(1) & kept
    if bad.any():
        if missing != "drop":
            raise ValueError(f"data has missing values in re_formula's columns in "
                             f"{int(bad.sum())} row(s); pass missing='drop'")
        raise ValueError("rows with missing values only in re_formula's columns are not "
                         "supported: drop them from data first")
    labels = np.asarray(groups)
    if len(labels) != len(data):
        raise ValueError(f"groups must have one label per row of data ({len(data)}); "
                         f"got {len(labels)}")
    template = data[design.formula_columns(rhs, data.columns)].copy()
    return MultilevelRepresentation(md, groups=labels[kept], missing=missing,
                                    _re=(Z[kept], list(Zf.columns), Zf.design_info,
                                         gname, rhs, template))
