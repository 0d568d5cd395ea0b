# Over 600 lines: statsmodels' least-squares inference on one set of design factors.
"""Closed-form inference for least squares, per response, equal to statsmodels' OLS.

What is computed here and what statsmodels computes
---------------------------------------------------
The package fits the intercept by centring, so its parameters are ``b`` (intercept) and
``C`` (p x q). Inference is on the *full* parameter vector of each response, the one
statsmodels reports: the intercept as a parameter named as statsmodels names it
(``Intercept`` for a formula, the constant column's own name, e.g. ``const``, for array
input, at that column's position) followed or surrounded by the predictors. For a
constant column of value ``c`` the parameter is ``b / c``, as in statsmodels.

Only the bookkeeping is written here: the unscaled covariance ``(Z^T Z)^{-1}`` of the
full design ``Z`` and its influence matrix ``(Z^T Z)^{-1} Z^T`` come from the SVD of the
centred, equilibrated design that fitted the coefficients
(:class:`~mtltransfer.solvers.linear.DesignSVD`, ``Xc D^{-1} = U S V^T``), never from the
normal equations. With ``M = D^{-1} V S^{-1}`` and centred coordinates
``theta~ = (b~, C)``, ``b~ = b + C^T xbar`` (the fit at the mean of the predictors):

    (Z~^T Z~)^{-1} = blockdiag(1/n, M M^T),   influence rows  [1/n 1^T ; M U^T],
    theta = L theta~,   L = [[1/c, -xbar^T / c], [0, I]]   (intercept row first),

and every covariance is ``L cov~ L^T``. Everything else is statsmodels' own:

* the meat of the sandwich covariances: ``statsmodels.stats.sandwich_covariance``
  (``S_white_simple`` for HC0-HC3, ``S_crosssection`` for clusters) applied to the
  influence scores (rows of ``Z~ (Z~^T Z~)^{-1}`` times the residuals), with statsmodels'
  HC1 factor ``n / df_resid``, HC2/HC3 leverages ``h_i = 1/n + ||U_i||^2`` and cluster
  factor ``G/(G-1) (n-1)/(n-k)``;
* ``t_test``, ``f_test``, ``wald_test``, ``conf_int`` and the p-values: the methods of
  ``statsmodels.base.model.LikelihoodModelResults`` on the parameter vector and its
  covariance (string constraints through patsy's ``DesignInfo.linear_constraint``;
  :class:`statsmodels.stats.contrast.ContrastResults` returned);
* ``get_prediction``: :class:`statsmodels.regression._prediction.PredictionResults`;
* ``mv_test``: statsmodels' multivariate linear model tests (Wilks, Pillai,
  Hotelling-Lawley, Roy) fed with the accurate ``(Z^T Z)^{-1}`` and residual
  cross-products.

Several responses: the responses share the design; their parameters are labelled by
(predictor, response). The joint covariance has the cross-response blocks (for
``"nonrobust"`` ``Sigma kron (Z^T Z)^{-1}`` with ``Sigma = E^T E / df_resid``, as
statsmodels' ``MultivariateLS``; for the sandwich types the scores of all responses are
stacked), so cross-equation hypotheses can be tested; their parameters are named as in
``MultivariateLS``, ``"y<response>_<predictor>"``.
"""

from __future__ import annotations

from functools import cached_property
from types import MappingProxyType, SimpleNamespace

import numpy as np
import pandas as pd

from ._validation import show
from ._validation import RemovedRows, new_data_argument
from ._validation import check_alpha as _check_alpha

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")


# ---- covariance options ---------------------------------------------------------------
def check_cov_type(cov_type, cov_kwds, use_t, data):
    """Validate ``fit(cov_type=..., cov_kwds=..., use_t=...)`` (statsmodels' options).

    Returns
    -------
    cov_type : str
    cov_kwds : dict
        For ``"cluster"``: ``groups`` as integer codes of the model's rows,
        ``use_correction`` and ``df_correction`` (statsmodels' defaults: True).
    use_t : bool
        statsmodels' default: t for ``"nonrobust"``, normal for the robust types.
    """
    if not isinstance(cov_type, str) or cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {COV_TYPES}; got {cov_type!r}")
    if cov_kwds is None:
        cov_kwds = {}
    if not isinstance(cov_kwds, dict):
        raise TypeError(f"cov_kwds must be a dict; got {type(cov_kwds).__name__}")
    if use_t is not None and not isinstance(use_t, (bool, np.bool_)):
        raise TypeError(f"use_t must be None, True or False; got {use_t!r}")
    use_t = (cov_type == "nonrobust") if use_t is None else bool(use_t)
    if cov_type != "cluster":
        if cov_kwds:
            raise ValueError(f"cov_type={cov_type!r} takes no cov_kwds; got "
                             f"{sorted(cov_kwds)}")
        return cov_type, {}, use_t
    unknown = set(cov_kwds) - {"groups", "use_correction", "df_correction"}
    if unknown:
        raise ValueError(f"cov_kwds for 'cluster' takes groups, use_correction and "
                         f"df_correction; got {sorted(unknown)}")
    if "groups" not in cov_kwds:
        raise ValueError("cov_type='cluster' needs cov_kwds={'groups': labels}, one "
                         "cluster label per row")
    codes = _group_codes(cov_kwds["groups"], data)
    if np.unique(codes).size < 2:
        raise ValueError("cov_kwds['groups'] must have at least 2 clusters")
    return cov_type, {"groups": codes,
                      "use_correction": bool(cov_kwds.get("use_correction", True)),
                      "df_correction": bool(cov_kwds.get("df_correction", True))}, use_t


def _group_codes(groups, data):
    """Integer cluster codes of the model's rows.

    A Series is aligned by index to the rows used (missing rows dropped); an array is
    positional, one label per row given (or per row used).
    """
    rows = data.row_labels
    if isinstance(groups, pd.DataFrame):
        if groups.shape[1] != 1:
            raise ValueError("cov_kwds['groups'] must be one column of labels")
        groups = groups.iloc[:, 0]
    if isinstance(groups, pd.Series):
        if not groups.index.is_unique:
            raise ValueError("cov_kwds['groups'] has a duplicated index: it cannot be "
                             "aligned to the rows by label")
        lacking = rows.difference(groups.index)
        if len(lacking):
            raise ValueError(f"cov_kwds['groups'] lacks labels of {len(lacking)} row(s) "
                             f"of the data (first: {show(lacking, 5)})")
        labels = groups.reindex(rows).to_numpy()
    else:
        labels = np.asarray(groups)
        if labels.ndim != 1:
            raise ValueError(f"cov_kwds['groups'] must be one label per row; got shape "
                             f"{labels.shape}")
        kept = data.extra.get("kept") if data.extra else None
        if kept is not None and len(labels) == len(kept) and len(kept) != data.nobs:
            labels = labels[np.asarray(kept)]
        if len(labels) != data.nobs:
            raise ValueError(f"cov_kwds['groups'] must have one label per row "
                             f"({data.nobs}); got {len(labels)}")
    if pd.isna(labels).any():
        raise ValueError("cov_kwds['groups'] has missing labels")
    return np.unique(labels, return_inverse=True)[1].ravel()


def identified_or_raise(model):
    """Refuse closed-form inference on a design whose coefficients are not identified, or
    that leaves no residual degrees of freedom (the scale would be 0/0)."""
    dsvd = model.design_svd
    p = model.k_exog
    if dsvd.rank == p:
        df_resid = model.nobs - p - int(model.center)
        if df_resid < 1:
            raise ValueError(f"standard errors and tests need residual degrees of freedom: "
                             f"{model.nobs} rows for {p} predictors"
                             f"{' and the intercept' if model.center else ''} leave "
                             f"{df_resid}; the fit is saturated")
        return dsvd
    what = "; ".join(", ".join(g) for g in model.collinear_groups()[:5]) or \
        "more predictors than rows"
    raise ValueError(f"standard errors and tests need an identified design: rank "
                     f"{dsvd.rank} of {p} predictors (collinear: {what}). Drop or "
                     "combine collinear columns and refit")


# ---- the statsmodels engine -----------------------------------------------------------
def contrast_engine(params, cov, names, df_resid, use_t, df_resid_inference=None):
    """A statsmodels ``LikelihoodModelResults`` on a parameter vector and its covariance.

    Its ``t_test``, ``f_test``, ``wald_test``, ``conf_int``, ``bse`` and ``pvalues`` are
    statsmodels' own; ``names`` are the parameter names its string constraints use.
    """
    from statsmodels.base.model import LikelihoodModelResults

    names = list(names)
    stub = SimpleNamespace(data=SimpleNamespace(cov_names=names, param_names=names,
                                                xnames=names),
                           exog_names=names)
    eng = LikelihoodModelResults(stub, np.asarray(params, dtype=float),
                                 normalized_cov_params=None, scale=1.0, use_t=use_t)
    eng.cov_params_default = np.asarray(cov, dtype=float)
    eng.df_resid = df_resid
    if df_resid_inference is not None:
        eng.df_resid_inference = df_resid_inference
    return eng


class PredictionResults:
    """Predictions of one response with their intervals: statsmodels'
    :class:`~statsmodels.regression._prediction.PredictionResults` (``predicted_mean``,
    ``se_mean``, ``se_obs``, ``conf_int(obs, alpha)``, ``summary_frame(alpha)``), with
    ``alpha`` checked.

    Parameters
    ----------
    predicted_mean, var_pred_mean : ndarray
        The predicted means and their variances.
    var_resid : float
        The variance a new observation adds (``obs_ci_*``).
    df : float or None
        Degrees of freedom of Student-t quantiles (``dist="t"``).
    dist : {"t", "norm"}
    row_labels : index, optional
    """

    def __init__(self, predicted_mean, var_pred_mean, var_resid, df=None, dist="norm",
                 row_labels=None):
        from statsmodels.regression._prediction import PredictionResults as _Prediction

        self._sm = _Prediction(np.asarray(predicted_mean, dtype=float),
                               np.asarray(var_pred_mean, dtype=float), var_resid, df=df,
                               dist=dist, row_labels=row_labels)

    predicted_mean = property(lambda self: self._sm.predicted_mean)
    var_pred_mean = property(lambda self: self._sm.var_pred_mean)
    se_mean = property(lambda self: self._sm.se_mean)
    se_obs = property(lambda self: self._sm.se_obs)
    row_labels = property(lambda self: self._sm.row_labels)

    def conf_int(self, obs=False, alpha=0.05):
        """Intervals of the mean (``obs=False``) or of a new observation, n x 2."""
        return self._sm.conf_int(obs=obs, alpha=_check_alpha(alpha))

    def summary_frame(self, alpha=0.05):
        """DataFrame: ``mean``, ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper``,
        ``obs_ci_lower``, ``obs_ci_upper`` (statsmodels' columns)."""
        return self._sm.summary_frame(alpha=_check_alpha(alpha))


class MultiPredictionResults:
    """Predictions of several responses with their intervals, one statsmodels
    :class:`~statsmodels.regression._prediction.PredictionResults` per response.

    Attributes
    ----------
    results : dict of str to PredictionResults
    """

    def __init__(self, results):
        self.results = dict(results)

    def __getitem__(self, response):
        return self.results[response]

    @property
    def predicted_mean(self):
        """DataFrame, rows x responses."""
        return pd.DataFrame({k: np.asarray(r.predicted_mean) for k, r in
                             self.results.items()}, index=self._index())

    @property
    def se_mean(self):
        return pd.DataFrame({k: np.asarray(r.se_mean) for k, r in self.results.items()},
                            index=self._index())

    def _index(self):
        first = next(iter(self.results.values()))
        return first.row_labels if first.row_labels is not None else None

    def summary_frame(self, alpha=0.05):
        """statsmodels' ``summary_frame`` of every response side by side: columns
        (response, mean / mean_se / mean_ci_lower / mean_ci_upper / obs_ci_lower /
        obs_ci_upper)."""
        alpha = _check_alpha(alpha)
        return pd.concat({k: r.summary_frame(alpha=alpha) for k, r in self.results.items()},
                         axis=1, names=["response", None])


# ---- the results mixin ----------------------------------------------------------------
#: cached inference quantities recomputed after loading (without the training rows
#: those of ``INFERENCE_ROW_CACHED`` are kept, so that the per-response inference works)
INFERENCE_CACHE = ("_layout", "_theta", "_cov_root", "_factors", "normalized_cov_params",
                   "_cov_each", "_engines")
INFERENCE_ROW_CACHED = ("_robust_cov_tilde", "_robust_cov_tilde_joint",
                        "_normalized_cov_tilde", "_sscp")
#: the joint sandwich covariance of several responses is kept without the training rows
#: up to this many parameters (q k); beyond, its (q k)^2 entries (over 128 MB) are not
JOINT_KEPT_MAX = 4000


class LeastSquaresInference:
    """Inference of a least-squares fit (mixed into its results class).

    The fit sets ``cov_type``, ``cov_kwds`` and ``use_t`` (see :func:`check_cov_type`).
    For one response the attributes are those of statsmodels' ``RegressionResults``
    (Series indexed by the parameter names, the intercept included); for several, each
    is a DataFrame of parameters x responses, and ``conf_int`` and ``cov_params`` are
    indexed by (predictor, response).
    """

    cov_type = "nonrobust"
    cov_kwds = MappingProxyType({})
    use_t = True

    # -- the parameter vector of each response ---------------------------------------
    @cached_property
    def _layout(self):
        """(names, L, pos): the full parameter names; the map L from centred
        coordinates (intercept first) to the full vector in statsmodels' order; the
        intercept's position (None without one)."""
        model, data = self.model, self.model.data
        xnames = list(model.exog_names)
        if not model.center:
            return xnames, np.eye(len(xnames)), None
        if data.formula is None and data.const_idx is not None:
            pos, cname, c = data.const_idx, data.exog_names_in[data.const_idx], \
                data.const_value
        else:
            pos, cname, c = 0, "Intercept", 1.0
        xbar = model.stats.x_mean
        p = len(xnames)
        L0 = np.zeros((p + 1, p + 1))          # intercept first
        L0[0, 0] = 1.0 / c
        L0[0, 1:] = -xbar / c
        L0[1:, 1:] = np.eye(p)
        order = list(range(1, pos + 1)) + [0] + list(range(pos + 1, p + 1))
        names = xnames[:pos] + [cname] + xnames[pos:]
        return names, L0[order], pos

    @property
    def param_names(self):
        """Names of each response's parameters, the intercept included (statsmodels'
        ``exog_names``)."""
        return list(self._layout[0])

    @cached_property
    def _theta(self):
        """Full parameters, k x q, in statsmodels' order: the reported coefficients and
        the intercept (over the constant column's value)."""
        _, L, pos = self._layout
        if pos is None:
            return self._coef.copy()
        return np.insert(self._coef, pos, self._intercept * L[pos, 0], axis=0)

    @cached_property
    def _cov_root(self):
        """``M`` with ``M M^T = (Xc^T Xc)^{-1}``, from the design's SVD (of the rows, or
        of the statistics' pseudo-rows: the nonrobust covariance needs no rows)."""
        dsvd = identified_or_raise(self.model)
        return (dsvd.Vt.T / dsvd.s) / dsvd.scale[:, None]          # p x r

    @cached_property
    def _factors(self):
        """(M, P~^T, leverage): ``M M^T = (Xc^T Xc)^{-1}``, the influence rows in
        centred coordinates (n x k) and the leverages, from the design's SVD."""
        model = self.model
        dsvd = identified_or_raise(model)
        n = model.nobs
        M = self._cov_root
        U = dsvd.U
        lev = np.einsum("ij,ij->i", U, U)
        w = model._unit_weights
        if model.center:
            # the intercept's column of the whitened design is sqrt(w~) (1 unweighted)
            k = M.shape[0] + 1
            infl = np.empty((n, k))
            infl[:, 0] = (1.0 if w is None else np.sqrt(w)) / n
            infl[:, 1:] = U @ M.T
            lev = lev + (1.0 if w is None else w) / n
        else:
            infl = U @ M.T
        return M, infl, lev

    @cached_property
    def _normalized_cov_tilde(self):
        """``(Z~^T W Z~)^{-1}`` in centred coordinates (W the weights as given, identity
        unweighted; the rows were scaled by the unit-mean weights, hence the division
        by the mean weight)."""
        M = self._cov_root
        w = self.model.data.weights
        wbar = 1.0 if w is None else float(w.mean())
        G = M @ M.T / wbar
        if not self.model.center:
            return G
        k = G.shape[0] + 1
        out = np.zeros((k, k))
        out[0, 0] = 1.0 / (self.model.nobs * wbar)
        out[1:, 1:] = G
        return out

    @cached_property
    def normalized_cov_params(self):
        """``(Z^T Z)^{-1}`` of the full design (statsmodels' ``normalized_cov_params``),
        DataFrame."""
        L = self._layout[1]
        names = self.param_names
        return pd.DataFrame(L @ self._normalized_cov_tilde @ L.T, index=names, columns=names)

    @property
    def df_resid_inference(self):
        """Degrees of freedom of t and F reference distributions: ``df_resid``, or the
        number of clusters minus one (statsmodels' ``df_resid_inference``)."""
        if self.cov_type == "cluster" and self.cov_kwds.get("df_correction", True):
            return int(np.unique(self.cov_kwds["groups"]).size - 1)
        return self.df_resid

    @property
    def mse_resid(self):
        """Residual variance ``ssr_j / df_resid`` (statsmodels' ``mse_resid``, equal to
        its ``scale``): a float for one response, a Series for several."""
        mse = self.ssr_per_response / self.df_resid
        return float(mse.iloc[0]) if len(mse) == 1 else mse

    # -- covariance --------------------------------------------------------------------
    def _cov_tilde(self, responses):
        """Covariance of the centred-coordinate parameters of ``responses`` stacked
        response after response."""
        from statsmodels.stats import sandwich_covariance as sw

        responses = list(responses)
        k = self._normalized_cov_tilde.shape[0]
        n, df = self.nobs, self.df_resid
        if self.cov_type == "nonrobust":
            Sigma = self._sscp[np.ix_(responses, responses)] / df
            return np.kron(Sigma, self._normalized_cov_tilde)
        E = (self.model.endog - self._fitted)[:, responses]
        w = self.model._unit_weights
        if w is not None:               # whitened residuals (statsmodels' WLS wresid)
            E = E * np.sqrt(w)[:, None]
        _, infl, lev = self._factors
        if self.cov_type == "HC0":
            a = np.ones(n)
        elif self.cov_type == "HC1":
            a = np.full(n, np.sqrt(n / df))
        elif self.cov_type == "HC2":
            a = 1.0 / np.sqrt(1.0 - lev)
        elif self.cov_type == "HC3":
            a = 1.0 / (1.0 - lev)
        else:
            a = np.ones(n)
        # influence scores of every parameter of every response: n x (k * len(responses))
        xu = (infl[:, None, :] * (a[:, None] * E)[:, :, None]).reshape(n, -1)
        if self.cov_type != "cluster":
            return sw.S_white_simple(xu)
        groups = self.cov_kwds["groups"]
        meat = sw.S_crosssection(xu, groups)
        if self.cov_kwds["use_correction"]:
            G = np.unique(groups).size
            meat = meat * (G / (G - 1.0) * (n - 1.0) / (n - k))
        return meat

    def _cov(self, responses):
        """Covariance of the full parameters of ``responses`` (response-major)."""
        L = self._layout[1]
        responses = list(responses)
        m = len(responses)
        if self.cov_type != "nonrobust" and m == 1:
            cov_t = self._robust_cov_tilde[responses[0]]
        elif self.cov_type != "nonrobust" and responses == list(range(self.model.k_endog)):
            cov_t = self._joint_robust_cov_tilde()
        else:
            cov_t = self._cov_tilde(responses)
        k = L.shape[0]
        cov_t = cov_t.reshape(m, k, m, k)
        return np.einsum("ia,rasb,jb->risj", L, cov_t, L).reshape(m * k, m * k)

    @cached_property
    def _robust_cov_tilde(self):
        """Per-response sandwich covariances in centred coordinates, q x k x k (None
        for ``"nonrobust"``, whose are ``s_j^2 (Z~^T Z~)^{-1}``)."""
        if self.cov_type == "nonrobust":
            return None
        return np.stack([self._cov_tilde([j]) for j in range(self.model.k_endog)])

    @cached_property
    def _robust_cov_tilde_joint(self):
        """The sandwich covariance of all responses' centred-coordinate parameters,
        (q k) x (q k), response-major, with its cross-response blocks (None for
        ``"nonrobust"``, whose joint covariance is ``Sigma kron (Z~^T Z~)^{-1}`` from the
        kept ``E^T E``, for one response, and beyond ``JOINT_KEPT_MAX`` parameters).

        It is what cross-equation inference needs of the rows: kept by
        ``save(..., remove_data=True)`` in place of the rows, so that ``cov_params()``
        and the joint ``t_test``/``f_test``/``wald_test`` work after it.
        """
        q = self.model.k_endog
        if self.cov_type == "nonrobust" or q == 1 or \
                q * self._normalized_cov_tilde.shape[0] > JOINT_KEPT_MAX:
            return None
        return self._cov_tilde(range(q))

    def _joint_robust_cov_tilde(self):
        """The joint sandwich covariance (see ``_robust_cov_tilde_joint``), from the
        rows when it is too large to be kept."""
        joint = self._robust_cov_tilde_joint
        if joint is not None:
            return joint
        if isinstance(self.model.data.endog, RemovedRows):
            q, k = self.model.k_endog, self._normalized_cov_tilde.shape[0]
            raise ValueError(f"the joint robust covariance of the {q} responses ({q * k} "
                             f"parameters) was too large to keep without the training "
                             f"rows (over {JOINT_KEPT_MAX}); per-response inference "
                             "(response=...) is available")
        return self._cov_tilde(range(self.model.k_endog))

    @property
    def _cov_tilde_each(self):
        """Per-response covariances in centred coordinates, q x k x k."""
        if self._robust_cov_tilde is not None:
            return self._robust_cov_tilde
        normalized = self._normalized_cov_tilde      # refuses a saturated fit first
        s2 = np.diag(self._sscp) / self.df_resid
        return s2[:, None, None] * normalized[None]

    @cached_property
    def _cov_each(self):
        """Per-response covariance blocks of the full parameters, q x k x k."""
        L = self._layout[1]
        return np.einsum("ia,rab,jb->rij", L, self._cov_tilde_each, L)

    @cached_property
    def _sscp(self):
        """Residual sums of squares and cross-products ``E^T E`` (q x q); ``E^T W E``
        with weights (from the rows, or from the statistics alone)."""
        return self.model.access.residual_sscp(self._coef, self._intercept)

    def _response_index(self, response):
        names = self.model.endog_names
        if response is None:
            return None
        if isinstance(response, (int, np.integer)) and not isinstance(response, bool):
            if not 0 <= response < len(names):
                raise ValueError(f"response must be a response name or a position in "
                                 f"0..{len(names) - 1}; got {response}")
            return int(response)
        if response in names:
            return names.index(response)
        raise ValueError(f"response {response!r} is not one of the responses {names}")

    def cov_params(self, response=None):
        """Covariance of the parameter estimates (statsmodels' ``cov_params()``).

        Parameters
        ----------
        response : str or int, optional
            One response's covariance (k x k, labelled by parameter). With several
            responses and ``None``: the joint covariance, indexed by (predictor,
            response), predictor after predictor (the order of ``conf_int``).

        Returns
        -------
        DataFrame
        """
        names = self.param_names
        j = self._response_index(response)
        if j is None and self.model.k_endog == 1:
            j = 0
        if j is not None:
            return pd.DataFrame(self._cov_each[j], index=names, columns=names)
        q, k = self.model.k_endog, len(names)
        cov = self._cov(range(q))
        perm = self._predictor_major(q, k)
        index = pd.MultiIndex.from_product([names, self.model.endog_names],
                                           names=["predictor", "response"])
        return pd.DataFrame(cov[np.ix_(perm, perm)], index=index, columns=index)

    @staticmethod
    def _predictor_major(q, k):
        """Positions, in response-major order, of the predictor-major entries."""
        return (np.arange(q)[None, :] * k + np.arange(k)[:, None]).ravel()

    # -- per-parameter statistics ------------------------------------------------------
    def _engine(self, j):
        cache = self.__dict__.setdefault("_engines", {})
        if j not in cache:
            cache[j] = contrast_engine(self._theta[:, j], self._cov_each[j],
                                       self.param_names, self.df_resid, self.use_t,
                                       self._df_inference_or_none())
        return cache[j]

    def _df_inference_or_none(self):
        return self.df_resid_inference if self.cov_type == "cluster" and \
            self.cov_kwds.get("df_correction", True) else None

    def _joint_engine(self):
        cache = self.__dict__.setdefault("_engines", {})
        if "joint" not in cache:
            q, k = self.model.k_endog, len(self.param_names)
            perm = self._predictor_major(q, k)
            cov = self._cov(range(q))[np.ix_(perm, perm)]
            names = [f"y{r}_{x}" for x in self.param_names for r in self.model.endog_names]
            cache["joint"] = contrast_engine(self._theta.ravel(), cov, names,
                                             self.df_resid, self.use_t,
                                             self._df_inference_or_none())
        return cache["joint"]

    def _per_response(self, attr):
        names, ynames = self.param_names, self.model.endog_names
        cols = [np.asarray(getattr(self._engine(j), attr)) for j in range(len(ynames))]
        if len(ynames) == 1:
            return pd.Series(cols[0], index=names)
        return pd.DataFrame(np.column_stack(cols), index=names, columns=ynames)

    @property
    def params_full(self):
        """The parameters inference is about: the intercept as statsmodels names and
        places it, and the predictors (Series for one response, parameters x responses
        DataFrame for several). The intercept entry is ``intercept / c`` for a
        constant column of value ``c``."""
        names, ynames = self.param_names, self.model.endog_names
        if len(ynames) == 1:
            return pd.Series(self._theta[:, 0], index=names)
        return pd.DataFrame(self._theta, index=names, columns=ynames)

    @property
    def bse(self):
        """Standard errors of ``params_full`` (statsmodels' ``bse``)."""
        return self._per_response("bse")

    @property
    def tvalues(self):
        """``params_full / bse``."""
        return self._per_response("tvalues")

    @property
    def pvalues(self):
        """Two-sided p-values of the t statistics (t with ``df_resid_inference`` degrees
        of freedom when ``use_t``, else normal)."""
        return self._per_response("pvalues")

    def conf_int(self, alpha=0.05):
        """Confidence intervals of ``params_full`` (statsmodels' ``conf_int``).

        Returns
        -------
        DataFrame
            Columns 0 (lower) and 1 (upper); rows the parameters for one response, a
            MultiIndex (predictor, response) for several.
        """
        alpha = _check_alpha(alpha)
        names, ynames = self.param_names, self.model.endog_names
        ci = [np.asarray(self._engine(j).conf_int(alpha)) for j in range(len(ynames))]
        if len(ynames) == 1:
            return pd.DataFrame(ci[0], index=names, columns=[0, 1])
        arr = np.stack(ci, axis=1).reshape(-1, 2)          # predictor-major
        index = pd.MultiIndex.from_product([names, ynames], names=["predictor", "response"])
        return pd.DataFrame(arr, index=index, columns=[0, 1])

    # -- hypothesis tests --------------------------------------------------------------
    def _test_engine(self, response):
        j = self._response_index(response)
        if j is None and self.model.k_endog == 1:
            j = 0
        return self._joint_engine() if j is None else self._engine(j)

    def t_test(self, r_matrix, response=None, use_t=None):
        """t tests of linear combinations (statsmodels' ``t_test``).

        Parameters
        ----------
        r_matrix : str, array_like or tuple
            As statsmodels: ``"x1 = x2"``, ``"x1 = 0, x2 = 0"`` with the names of
            ``param_names``, or a matrix over ``params_full`` (and an optional tuple's
            right-hand side).
        response : str or int, optional
            Test one response's parameters. With several responses and ``None`` the
            hypothesis is on all parameters jointly (cross-equation): they are named
            ``"y<response>_<predictor>"`` as in statsmodels' ``MultivariateLS``, and a
            matrix has one column per entry of ``cov_params().index``.
        use_t : bool, optional
            Override the fit's ``use_t``.

        Returns
        -------
        statsmodels.stats.contrast.ContrastResults
        """
        return self._test_engine(response).t_test(r_matrix, use_t=use_t)

    def f_test(self, r_matrix, response=None):
        """F test of a joint linear hypothesis (statsmodels' ``f_test``); ``r_matrix``
        and ``response`` as for :meth:`t_test`."""
        return self._test_engine(response).f_test(r_matrix)

    def wald_test(self, r_matrix, response=None, use_f=None, scalar=True):
        """Wald test of a joint linear hypothesis (statsmodels' ``wald_test``: F when
        ``use_f`` (default: the fit's ``use_t``), else chi-square); ``r_matrix`` and
        ``response`` as for :meth:`t_test`."""
        return self._test_engine(response).wald_test(r_matrix, use_f=use_f, scalar=scalar)

    # -- prediction --------------------------------------------------------------------
    def _new_design_tilde(self, exog, transform):
        """Centred-coordinate design rows of new data, its row labels and the predicted
        means."""
        data = self.model.data
        if exog is None:
            X, const = self.model.exog, np.ones(self.nobs)
            index = data.row_labels
        else:
            X, const, index = data.exog_for(exog, "exog", transform=transform)
        mean = self._predict_array(X, const)
        if self.model.center:
            Zt = np.column_stack([const, X - const[:, None] * self.model.stats.x_mean])
        else:
            Zt = X
        return Zt, index, mean

    def get_prediction(self, exog=None, transform=True, *, newdata=None, row_labels=None):
        """Predictions with standard errors and intervals (statsmodels'
        ``get_prediction``).

        Parameters
        ----------
        exog : DataFrame or array_like, optional
            New data as for :meth:`predict`; ``None``: the fitted rows.
        transform : bool
        newdata : optional
            Another name for ``exog``.
        row_labels : list, optional
            Labels of the rows (default: the new data's index).

        Returns
        -------
        PredictionResults or MultiPredictionResults
            statsmodels' prediction results for one response (``summary_frame(alpha)``
            with ``mean``, ``mean_se``, ``mean_ci_*`` and the observation intervals
            ``obs_ci_*``, whose variance adds ``mse_resid``); one per response, side by
            side, for several.
        """
        exog = new_data_argument(exog, newdata)
        Zt, index, mean = self._new_design_tilde(exog, transform)
        if row_labels is None:
            row_labels = index
        q = self.model.k_endog
        out = {}
        dist = "t" if self.use_t else "norm"
        cov_each = self._cov_tilde_each
        mse = (self.ssr_per_response / self.df_resid).to_numpy()
        for j, name in enumerate(self.model.endog_names):
            cov_t = cov_each[j]
            var_mean = np.einsum("ij,jk,ik->i", Zt, cov_t, Zt)
            out[name] = PredictionResults(mean[:, j], var_mean,
                                          mse[j], df=self.df_resid,
                                          dist=dist, row_labels=row_labels)
        return out[self.model.endog_names[0]] if q == 1 else MultiPredictionResults(out)

    # -- multivariate tests ------------------------------------------------------------
    def mv_test(self, hypotheses=None, skip_intercept_test=False):
        """Multivariate tests of ``L B M = C`` (statsmodels' multivariate OLS
        ``mv_test``): Wilks' lambda, Pillai's trace, Hotelling-Lawley trace, Roy's
        greatest root.

        Parameters
        ----------
        hypotheses : list, optional
            statsmodels' ``(name, L[, M[, C]])`` tuples, ``L`` a matrix over
            ``param_names`` or a list of constraint strings. Default: one hypothesis per
            formula term (``Intercept`` included), or per column (named by it) for
            array input.
        skip_intercept_test : bool

        Returns
        -------
        statsmodels.multivariate.multivariate_ols.MultivariateTestResults
        """
        from statsmodels.multivariate.multivariate_ols import (MultivariateTestResults,
                                                                _multivariate_ols_test)

        names, ynames = self.param_names, self.model.endog_names
        if len(ynames) < 2:
            raise ValueError("mv_test needs several responses; use f_test for one")
        k = len(names)
        intercept_name = names[self._layout[2]] if self._layout[2] is not None else None
        if hypotheses is None:
            hypotheses = []
            if self.model.data.formula is not None:
                # the formula's columns are the parameters, Intercept first
                items = self.model.data.rhs_info().term_name_slices.items()
            else:
                items = [(nm, slice(i, i + 1)) for i, nm in enumerate(names)]
            for term, sl in items:
                if skip_intercept_test and term in ("Intercept", intercept_name):
                    continue
                hypotheses.append([term, np.eye(k)[sl, :], None])
        L = self._layout[1]
        inv_cov = L @ self._normalized_cov_tilde @ L.T
        fit = (self._theta, self.df_resid, inv_cov, self._sscp)
        results = _multivariate_ols_test(hypotheses, fit, names, ynames)
        return MultivariateTestResults(results, ynames, names)
