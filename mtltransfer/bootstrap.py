# Over 600 lines: one procedure: resamplers, source redraws and the replicate loop.
"""Bootstrap uncertainty for every estimator: ``res.bootstrap(...)``.

A replicate draws a new data set from the fitted one and refits the same model:

* ``method="residual"`` (default for the multi-response models) keeps the design and
  draws ``Y* = Yhat + E*``, the rows of ``E*`` resampled (with replacement, jointly over
  the responses) from the centred residuals inflated by ``sqrt(n / df_resid)`` (so that
  their variance is the unbiased one rather than the shrunk in-sample one);
* ``method="pairs"`` resamples whole rows ``(x_i, y_i)`` (within each task for a shared
  representation, so every task keeps its size).

For a model that borrows a source study's coefficients (SMART, the transfer baselines),
the source is an estimate too, and an interval that treats it as exact is too narrow (at
the SMART paper's design with a good source, sigma0 = 0.01, p=20, q=8, n=150, only 0.81
of nominal 95% intervals for E[y | x] cover): SMART shrinks towards the *observed*
source subspaces, and the bias this leaves is of the size of the source's error, which no
resampling of the target's rows reproduces. Every replicate therefore also redraws the
source from its sampling distribution, as far as it is known:

* a fitted results object of this package (with its rows in memory) is refitted on a
  residual-bootstrap redraw of its own data, ``Y0* = Yhat0 + E0*``, with its fitted
  hyperparameters (:class:`RefitSourceDraws`): a low-rank source stays low-rank and its
  error is the one its estimator has;
* statsmodels results (OLS/WLS of one response, a list or dict of them, one per
  response, or ``MultivariateLS``) are drawn from their Gaussian sampling distribution,
  ``vec C0* ~ N(vec C0, Sigma0 (x) (X0^T X0)^{-1})`` when the responses share a design
  (Sigma0 the residual covariance), column by column from each fit's ``cov_params()``
  otherwise (:class:`GaussianSourceDraws`);
* a matrix or a frame of coefficients carries no uncertainty: it is treated as exact,
  and the bootstrap says so once in a warning. What the user knows can be given:
  ``source_cov=`` (the covariance of the column-stacked ``vec C0``, pq x pq, or a pair
  (row, column) whose Kronecker product ``column (x) row`` it is), ``source_nobs=`` (the
  source's number of rows: ``Sigma (x) Sxx^{-1} / n0`` with the target's residual
  covariance and design standing in for the source's), or ``source_sd=`` (an entrywise
  standard error; ``"estimate"`` estimates one number from the source's trailing
  singular values, :func:`source_noise_sd`, meant for a noisy full-rank source; 0 treats
  the source as exact without a warning).

The drawn sources are kept in ``extra["source"]`` and their entrywise standard deviation
is ``BootstrapResults.source_sd``. Coverage figures are in ``docs/uncertainty.rst``.

Hyperparameters are those of the full-data fit (``refit_tuning=False``: fast, and the
replicates warm-start from the full-data solution where the solver allows it), or tuned
again in every replicate (``refit_tuning=True``: the selection's variability is counted).
Replicate ``b`` uses the ``b``-th child of ``numpy.random.SeedSequence(random_state)``, so
the draws are identical whatever ``n_jobs`` is.

Intervals from the draws ``theta*_b`` of a quantity with full-data estimate ``theta``,
``q(a)`` the ``a``-quantile of the draws and ``Phi`` the normal distribution function:

* ``"percentile"``: ``[q(alpha/2), q(1 - alpha/2)]``;
* ``"basic"``: ``[2 theta - q(1 - alpha/2), 2 theta - q(alpha/2)]`` (corrects a shift of
  the estimator, e.g. the shrinkage of a penalised fit, to first order);
* ``"bc"`` (bias-corrected percentile): ``[q(Phi(2 z0 + z_{alpha/2})), q(Phi(2 z0 +
  z_{1-alpha/2}))]`` with ``z0 = Phi^{-1}(share of draws below theta)``;
* ``"normal"``: ``theta -+ t_{B-1}(1 - alpha/2) sd*``, ``sd*`` the standard deviation of
  the B draws (ddof 1) and ``t_{B-1}`` Student's quantile, which counts the Monte Carlo
  error of ``sd*`` (for B = 200 it is the normal quantile to 1%); the interval to use
  with few replicates, e.g. when every replicate is re-tuned.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._validation import RemovedRows, check_alpha, new_data_argument, tuned_params  # noqa: F401
from .exceptions import MtlWarning, user_stacklevel

METHODS = ("residual", "pairs")
KINDS = ("percentile", "basic", "bc", "normal")


@dataclass
class BootstrapResults:
    """Bootstrap draws of a fit and the intervals computed from them.

    Attributes
    ----------
    results
        The full-data results the draws belong to.
    params : DataFrame
        The draws of ``params``, labelled (a row per replicate; see the property).
    coef : ndarray, shape (n_boot, p, q)
        Draws of the coefficient matrix (``d x T`` task coefficients for a shared
        representation).
    intercept : ndarray, shape (n_boot, q)
    extra : dict of str to ndarray
        Draws of model-specific quantities: SMART's principal angles to the source
        subspaces (``"angles_u"``, ``"angles_v"``, degrees, shape (n_boot, r); with
        ``refit_tuning=True`` a replicate may select another rank, and the rows are
        padded with NaN to the largest); a shared
        representation's sin-theta distance to the full-data B (``"subspace_distance"``).
    method : str
    refit_tuning : bool
    n_failed : int
        Replicates whose fit raised (they are left out of the draws).
    source_sd : float, ndarray or None
        The entrywise standard deviation (p x q) of the sources the replicates drew
        (``extra["source"]``; see the module docstring): None for a model without a
        source, 0 for a source treated as exact.
    """

    results: object
    coef: np.ndarray
    intercept: np.ndarray
    extra: dict = field(default_factory=dict)
    method: str = "residual"
    refit_tuning: bool = False
    n_failed: int = 0
    source_sd: object = None

    @property
    def n_boot(self):
        return self.coef.shape[0]

    def _frame(self, values):
        p = self.results.params
        return pd.DataFrame(values, index=p.index, columns=p.columns)

    @property
    def bse(self):
        """Bootstrap standard errors of ``params`` (DataFrame like ``params``)."""
        return self._frame(self.coef.std(axis=0, ddof=1))

    @property
    def bse_intercept(self):
        return pd.Series(self.intercept.std(axis=0, ddof=1),
                         index=self.results.intercept.index)

    def conf_int(self, alpha=0.05, kind="percentile"):
        """Intervals for every coefficient.

        Returns
        -------
        DataFrame
            Rows: a MultiIndex (predictor, response) (``Intercept`` rows first); columns
            0 (lower) and 1 (upper), statsmodels' layout (as least squares'
            ``conf_int``).
        """
        est = np.vstack([self.results.intercept.to_numpy()[None, :],
                         self.results.params.to_numpy()])
        draws = np.concatenate([self.intercept[:, None, :], self.coef], axis=1)
        lo, hi = interval(draws, est, alpha, kind)
        names = ["Intercept"] + list(self.results.params.index)
        index = pd.MultiIndex.from_product([names, list(self.results.params.columns)],
                                           names=["predictor", "response"])
        return pd.DataFrame({0: lo.ravel(), 1: hi.ravel()}, index=index)

    @property
    def params(self):
        """The draws of ``params``, labelled: one row per replicate, columns a
        MultiIndex (predictor, response) (for a shared representation (predictor,
        task))."""
        p = self.results.params
        columns = pd.MultiIndex.from_product([list(p.index), list(p.columns)],
                                             names=["predictor", p.columns.name or
                                                    "response"])
        return pd.DataFrame(self.coef.reshape(self.n_boot, -1), columns=columns,
                            index=pd.RangeIndex(self.n_boot, name="replicate"))

    def get_prediction(self, exog=None, kind="percentile", *, newdata=None, **kwargs):
        """Predictions of E[y | x] at new data with bootstrap standard errors and
        intervals (:class:`BootstrapPrediction`: ``summary_frame(alpha)`` as
        statsmodels').

        Parameters
        ----------
        exog : DataFrame or array_like
            New data, as for ``results.predict`` (``newdata=`` is another name).
        kind : {"percentile", "basic", "bc", "normal"}
        **kwargs
            Passed to the results' design of new data.
        """
        exog = new_data_argument(exog, newdata)
        if exog is None:
            raise TypeError("get_prediction needs new data: exog (or newdata)")
        point = self.results.predict(exog, **kwargs)
        point = point.to_frame() if isinstance(point, pd.Series) else point
        draws = self.results.predict_draws(exog, self.coef, self.intercept, **kwargs)
        return BootstrapPrediction(point, draws, kind)

    def predict(self, exog=None, alpha=0.05, kind="percentile", *, newdata=None,
                **kwargs):
        """Predictions of E[y | x] with bootstrap intervals.

        Parameters
        ----------
        exog : DataFrame or array_like
            New data, as for ``results.predict`` (``newdata=`` is another name).
        alpha : float
        kind : {"percentile", "basic", "bc", "normal"}
        **kwargs
            Passed to the results' design of new data (``groups=`` for a shared
            representation).

        Returns
        -------
        DataFrame
            Columns: a MultiIndex (response, ``mean`` / ``lower`` / ``upper``); ``mean``
            is the full-data prediction. Rows with a missing value are NaN.
        """
        exog = new_data_argument(exog, newdata)
        if exog is None:
            raise TypeError("predict needs new data: exog (or newdata)")
        point = self.results.predict(exog, **kwargs)
        draws = self.results.predict_draws(exog, self.coef, self.intercept, **kwargs)
        lo, hi = interval(draws, np.asarray(point, dtype=float).reshape(draws.shape[1:]),
                          alpha, kind)
        point = point.to_frame() if isinstance(point, pd.Series) else point
        parts = {}
        for j, name in enumerate(point.columns):
            parts[(name, "mean")] = point.iloc[:, j].to_numpy()
            parts[(name, "lower")] = lo.reshape(len(point), -1)[:, j]
            parts[(name, "upper")] = hi.reshape(len(point), -1)[:, j]
        return pd.DataFrame(parts, index=point.index)


class BootstrapPrediction:
    """Predictions of E[y | x] with bootstrap standard errors and intervals, in the
    layout of statsmodels' prediction results (``predicted_mean``, ``se_mean``,
    ``conf_int(alpha)``, ``summary_frame(alpha)``).

    Parameters
    ----------
    point : DataFrame
        The full-data predictions (rows x responses).
    draws : ndarray, shape (B, rows, responses)
        The replicates' predictions.
    kind : {"percentile", "basic", "bc", "normal"}
        How the intervals are formed from the draws (:func:`interval`).
    """

    def __init__(self, point, draws, kind="percentile"):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
        self._point, self.kind = point, kind
        self._draws = np.asarray(draws, dtype=float).reshape((-1,) + point.shape)

    @property
    def predicted_mean(self):
        """The full-data predictions (DataFrame, rows x responses)."""
        return self._point

    @property
    def se_mean(self):
        """Bootstrap standard errors of the predictions (sd of the draws, ddof 1)."""
        return pd.DataFrame(self._draws.std(axis=0, ddof=1), index=self._point.index,
                            columns=self._point.columns)

    def conf_int(self, alpha=0.05):
        """Lower and upper bounds: two DataFrames (rows x responses)."""
        lo, hi = interval(self._draws, self._point.to_numpy(dtype=float), alpha,
                          self.kind)
        frame = lambda v: pd.DataFrame(v, index=self._point.index,  # noqa: E731
                                       columns=self._point.columns)
        return frame(lo), frame(hi)

    def summary_frame(self, alpha=0.05):
        """statsmodels' columns ``mean``, ``mean_se``, ``mean_ci_lower``,
        ``mean_ci_upper``; with several responses, side by side under a MultiIndex
        (response, column) as least squares' ``get_prediction``. (No ``obs_ci_*``: the
        draws are of the regression function, not of new observations.)"""
        lo, hi = self.conf_int(alpha)
        se = self.se_mean
        parts = {name: pd.DataFrame({"mean": self._point[name], "mean_se": se[name],
                                     "mean_ci_lower": lo[name], "mean_ci_upper": hi[name]})
                 for name in self._point.columns}
        if len(parts) == 1:
            return next(iter(parts.values()))
        return pd.concat(parts, axis=1, names=["response", None])


def interval(draws, estimate, alpha=0.05, kind="percentile"):
    """Lower and upper bounds along axis 0 of ``draws`` (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    alpha = check_alpha(alpha)
    draws = np.asarray(draws, dtype=float)
    from scipy import stats  # first use only: scipy.stats costs ~0.35 s at import
    if kind == "normal":
        half = stats.t.ppf(1 - alpha / 2, len(draws) - 1) * draws.std(axis=0, ddof=1)
        return estimate - half, estimate + half
    if kind == "bc":
        below = np.mean(draws < estimate, axis=0) + 0.5 * np.mean(draws == estimate, axis=0)
        z0 = stats.norm.ppf(np.clip(below, 1.0 / (2 * len(draws)),
                                    1 - 1.0 / (2 * len(draws))))
        z = stats.norm.ppf([alpha / 2, 1 - alpha / 2])
        qs = [stats.norm.cdf(2 * z0 + zz) for zz in z]
        lo, hi = (_quantile_per_entry(draws, q) for q in qs)
        return lo, hi
    lo = np.quantile(draws, alpha / 2, axis=0)
    hi = np.quantile(draws, 1 - alpha / 2, axis=0)
    if kind == "basic":
        return 2 * estimate - hi, 2 * estimate - lo
    return lo, hi


def _quantile_per_entry(draws, q):
    """The q[entry]-quantile of the draws of every entry (q an array over entries)."""
    flat = draws.reshape(len(draws), -1)
    qq = np.broadcast_to(q, draws.shape[1:]).ravel()
    sorted_ = np.sort(flat, axis=0)
    pos = np.clip(qq * (len(draws) - 1), 0, len(draws) - 1)
    lo_i = np.floor(pos).astype(int)
    hi_i = np.minimum(lo_i + 1, len(draws) - 1)
    cols = np.arange(flat.shape[1])
    frac = pos - lo_i
    out = sorted_[lo_i, cols] * (1 - frac) + sorted_[hi_i, cols] * frac
    return out.reshape(draws.shape[1:])


def replicate_fit_kwargs(res, refit_tuning=False):
    """The ``fit`` keywords of a replicate: those of the full-data fit
    (``res.fit_kwargs``), and unless ``refit_tuning`` the choices of the hyperparameters
    the estimator declares as tuned (``tuned=True`` in its ``_param_table``,
    :func:`mtltransfer._validation.tuned_params`), fixed, with the results' own warm
    start."""
    kwargs = dict(getattr(res, "fit_kwargs", {}))
    if refit_tuning:        # the solver options a re-tuned replicate may take (optional)
        kwargs.update(getattr(res, "retune_kwargs", dict)())
        return kwargs
    tuned = tuned_params(type(res.model))
    hyper = dict(getattr(res, "hyperparameters", {}))
    kwargs.update({k: v for k, v in hyper.items() if k in tuned})
    kwargs.update(res.warm_start_kwargs())
    return kwargs


def source_noise_sd(C0):
    """Entrywise noise level of a source coefficient matrix from its singular values.

    With ``C0 = L + sigma0 E`` (L of rank k, E standard Gaussian p x q), the singular values
    after the k-th are those of noise, all below the bulk edge
    ``sigma0 (sqrt(p - k) + sqrt(q - k))``. For k = 0, 1, ... the noise variance is
    estimated from the trailing singular values,

        sigma_k^2 = sum_{j > k} s_j^2 / ((p - k)(q - k)),

    and the first k whose next singular value ``s_{k+1}`` lies below the edge computed with
    ``sigma_k`` is taken. An exactly low-rank source (e.g. a reduced-rank fit) gives 0.

    Parameters
    ----------
    C0 : array_like, shape (p, q)

    Returns
    -------
    float
    """
    C0 = np.asarray(C0, dtype=float)
    if C0.ndim != 2:
        raise ValueError(f"C0 must be a 2-d array; got shape {C0.shape}")
    p, q = C0.shape
    s = np.linalg.svd(C0, compute_uv=False)
    for k in range(len(s)):
        sigma = np.sqrt(np.sum(s[k:] ** 2) / ((p - k) * (q - k)))
        if s[k] <= sigma * (np.sqrt(p - k) + np.sqrt(q - k)):
            return float(sigma)
    return 0.0


# ---- the source's sampling distribution ------------------------------------------------
def _psd_root(cov, name):
    """A factor ``R`` with ``R R^T = cov`` (symmetric PSD; tiny negative eigenvalues of
    rounding are clipped), or a ValueError naming the argument."""
    cov = np.asarray(cov, dtype=float)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or not np.all(np.isfinite(cov)):
        raise ValueError(f"{name} must be a finite square matrix; got shape {cov.shape}")
    cov = (cov + cov.T) / 2
    w, V = np.linalg.eigh(cov)
    tol = 1e-10 * max(float(np.abs(w).max()), 1e-300)
    if w.min() < -tol:
        raise ValueError(f"{name} must be a covariance matrix (positive semidefinite); its "
                         f"smallest eigenvalue is {w.min():.3g}")
    keep = w > tol
    return V[:, keep] * np.sqrt(w[keep])


@dataclass
class GaussianSourceDraws:
    """Gaussian draws of the source about its estimate (in the target's alignment).

    ``C0* = C0 + R Z L^T`` with Z standard Gaussian (``Cov(vec C0*) = L L^T (x) R R^T``)
    when ``row_factor`` R and ``col_factor`` L are given; else column by column,
    ``C0*[:, j] = C0[:, j] + F_j z_j`` with ``col_factors[j] = F_j``; else
    ``vec C0* = vec C0 + G z`` (column-stacked) with ``vec_factor`` G.
    """

    mean: np.ndarray
    row_factor: np.ndarray | None = None
    col_factor: np.ndarray | None = None
    col_factors: list | None = None
    vec_factor: np.ndarray | None = None
    what: str = ""

    def draw(self, rng):
        C = np.asarray(self.mean, dtype=float)
        if self.row_factor is not None:
            R, L = self.row_factor, self.col_factor
            return C + R @ rng.standard_normal((R.shape[1], L.shape[1])) @ L.T
        if self.col_factors is not None:
            return C + np.column_stack([F @ rng.standard_normal(F.shape[1])
                                        for F in self.col_factors])
        G = self.vec_factor
        return C + (G @ rng.standard_normal(G.shape[1])).reshape(C.shape, order="F")

    def restrict(self, rows):
        """The draws of the rows ``rows`` of the source (after a screening)."""
        from dataclasses import replace

        rows = np.asarray(rows)
        if self.row_factor is not None:
            return replace(self, mean=self.mean[rows], row_factor=self.row_factor[rows])
        if self.col_factors is not None:
            return replace(self, mean=self.mean[rows],
                           col_factors=[F[rows] for F in self.col_factors])
        p, q = self.mean.shape
        idx = (rows[:, None] + p * np.arange(q)[None, :]).ravel(order="F")
        return replace(self, mean=self.mean[rows], vec_factor=self.vec_factor[idx])


@dataclass
class RefitSourceDraws:
    """Draws of a source fitted by this package: its model refitted on a residual
    bootstrap redraw of its own rows (``Y0* = Yhat0 + E0*``) with its fitted
    hyperparameters, then aligned to the target as the source was (``layout``).
    A source that borrows a source itself redraws that one as well."""

    results: object
    layout: object
    support: np.ndarray | None = None
    what: str = ""

    def draw(self, rng):
        from .source_alignment import source_frame

        spec = self.__dict__.get("_spec")
        if spec is None:
            spec = self.results.bootstrap_spec("residual")
            inner = getattr(self.results.model, "source_draws", None)
            spec.source_draws = inner
            self.__dict__["_spec"] = spec
            self.__dict__["_kwargs"] = replicate_fit_kwargs(self.results)
        rep = spec.fit_replicate(rng, self.__dict__["_kwargs"])
        C = self.layout.apply(source_frame(rep).to_numpy(dtype=float))
        return C if self.support is None else C[self.support]

    def restrict(self, rows):
        from dataclasses import replace

        rows = np.asarray(rows)
        return replace(self, support=rows if self.support is None else self.support[rows])

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_spec", None)
        state.pop("_kwargs", None)
        return state


def source_draws(source, layout):
    """The sampling distribution of a source, as draws aligned to the target.

    Parameters
    ----------
    source
        What the model was given as ``source=``.
    layout : mtltransfer.source_alignment.SourceLayout
        How the target's matrix is read from the source's coefficients.

    Returns
    -------
    (draws, reason)
        ``draws``: a :class:`RefitSourceDraws` or :class:`GaussianSourceDraws`, or None
        when the source carries no uncertainty; then ``reason`` says why.
    """
    from .design import ModelData
    from .source_alignment import is_sm_single, source_frame

    module = type(source).__module__
    if module.startswith("mtltransfer") and hasattr(source, "bootstrap_spec"):
        data = getattr(source.model, "data", None)
        if not isinstance(data, ModelData) or not isinstance(source.model.exog, np.ndarray):
            return None, ("the source's results hold no rows (fitted on Dask or saved with "
                          "remove_data=True), so they cannot be redrawn")
        return RefitSourceDraws(source, layout, what=f"{type(source.model).__name__} fit "
                                f"refitted on redraws of its {source.nobs} rows"), ""
    fits = None
    if is_sm_single(source):
        fits = [source]
    elif isinstance(source, dict) and source and all(is_sm_single(v) for v in
                                                     source.values()):
        fits = list(source.values())
    elif isinstance(source, (list, tuple)) and source and all(is_sm_single(v) for v in
                                                              source):
        fits = list(source)
    if fits is not None:
        return _statsmodels_draws(fits, layout, source_frame(source)), ""
    if module.startswith("statsmodels") and hasattr(source, "cov_resid") and hasattr(
            source, "normalized_cov_params"):            # MultivariateLS
        X0 = np.asarray(source.model.exog, dtype=float)
        R = layout.M @ _psd_root(np.linalg.pinv(X0.T @ X0, hermitian=True),
                                 "the source's (X0^T X0)^{-1}")
        Sigma = np.asarray(source.cov_resid, dtype=float)[np.ix_(layout.cols, layout.cols)]
        return GaussianSourceDraws(layout.coef, R, _psd_root(Sigma, "the source's cov_resid"),
                                   what="MultivariateLS: Gaussian, Sigma0 (x) "
                                   "(X0^T X0)^{-1}"), ""
    if module.startswith("statsmodels"):
        return None, (f"the source's {type(source).__name__} gives no sampling distribution "
                      "this package reads")
    return None, "a matrix or frame of coefficients carries no uncertainty"


def _statsmodels_draws(fits, layout, frame):
    """Gaussian draws of statsmodels least-squares fits, one per source column."""
    rows = layout.rows
    shared = len(fits) > 1 and all(
        getattr(f, "cov_type", "nonrobust") == "nonrobust" and f.model.exog.shape ==
        fits[0].model.exog.shape and np.array_equal(f.model.exog, fits[0].model.exog) and
        np.ndim(f.resid) == 1 and type(f.model).__name__ == "OLS"
        for f in fits)
    if shared:        # one design: Cov(vec C0) = Sigma0 (x) (X0^T X0)^{-1}
        E = np.column_stack([np.asarray(f.resid, dtype=float) for f in fits])
        Sigma = E.T @ E / float(fits[0].df_resid)
        order = [list(map(str, fits[0].model.exog_names)).index(r) for r in rows]
        N = np.asarray(fits[0].normalized_cov_params, dtype=float)[np.ix_(order, order)]
        R = layout.M @ _psd_root(N, "the source's normalized_cov_params")
        L = _psd_root(Sigma[np.ix_(layout.cols, layout.cols)], "the source's residuals")
        return GaussianSourceDraws(layout.coef, R, L, what=f"{len(fits)} statsmodels fits "
                                   "on one design: Gaussian, Sigma0 (x) (X0^T X0)^{-1}")
    factors = []
    for j in layout.cols:          # each fit's own covariance (robust ones included)
        f = fits[j]
        names = list(map(str, f.model.exog_names))
        cov = np.zeros((len(rows), len(rows)))
        at = [rows.index(x) for x in names]
        cov[np.ix_(at, at)] = np.asarray(f.cov_params(), dtype=float)
        factors.append(layout.M @ _psd_root(cov, "the source's cov_params()"))
    return GaussianSourceDraws(layout.coef, col_factors=factors,
                               what="statsmodels fit(s): Gaussian, each response from its "
                               "cov_params() (responses independent)")


def resolve_source_draws(res, source_sd=None, source_cov=None, source_nobs=None):
    """The source's draws for the replicates: from what the user gives (at most one of
    ``source_sd``, ``source_cov``, ``source_nobs``) or the model's own
    (``model.source_draws``); None for a model without a source or a source treated
    as exact (then a warning says so, unless ``source_sd=0`` asked for it)."""
    model = res.model
    source = getattr(model, "source", None)
    given = {k: v for k, v in (("source_sd", source_sd), ("source_cov", source_cov),
                               ("source_nobs", source_nobs)) if v is not None}
    if source is None:
        if source_cov is not None or source_nobs is not None or (
                source_sd is not None and np.any(np.asarray(source_sd) != 0)):
            raise ValueError(f"{', '.join(given)} applies to models with a source; "
                             f"{type(model).__name__} has none")
        return None
    if len(given) > 1:
        raise ValueError(f"give at most one of source_sd, source_cov and source_nobs; got "
                         f"{', '.join(given)}")
    p, q = source.shape
    if source_sd is not None:
        if isinstance(source_sd, str):
            if source_sd != "estimate":
                raise ValueError(f"source_sd must be a number, a p x q array or "
                                 f"'estimate'; got {source_sd!r}")
            source_sd = source_noise_sd(source)
        sd = np.asarray(source_sd, dtype=float)
        if sd.ndim and sd.shape != (p, q):
            raise ValueError(f"source_sd must be a scalar or of the source's shape "
                             f"{(p, q)}; got shape {sd.shape}")
        if not np.all(np.isfinite(sd) & (sd >= 0)):
            raise ValueError("source_sd must be finite and >= 0")
        if not np.any(sd):
            return None                                  # exact, as asked
        return GaussianSourceDraws(source, col_factors=[
            np.diag(np.broadcast_to(sd, (p, q))[:, j]) for j in range(q)],
            what="entrywise source_sd")
    if source_cov is not None:
        if isinstance(source_cov, (tuple, list)) and len(source_cov) == 2:
            row, col = (np.asarray(c, dtype=float) for c in source_cov)
            if row.shape != (p, p) or col.shape != (q, q):
                raise ValueError(f"source_cov as a pair must be (row covariance {p} x {p}, "
                                 f"column covariance {q} x {q}); got {row.shape} and "
                                 f"{col.shape}")
            return GaussianSourceDraws(source, _psd_root(row, "source_cov[0]"),
                                       _psd_root(col, "source_cov[1]"),
                                       what="source_cov (Kronecker)")
        cov = np.asarray(source_cov, dtype=float)
        if cov.shape != (p * q, p * q):
            raise ValueError(f"source_cov must be the {p * q} x {p * q} covariance of the "
                             f"column-stacked source (p = {p}, q = {q}) or a pair (row, "
                             f"column); got shape {cov.shape}")
        return GaussianSourceDraws(source, vec_factor=_psd_root(cov, "source_cov"),
                                   what="source_cov")
    if source_nobs is not None:
        if isinstance(source_nobs, (bool, np.bool_)) or not isinstance(
                source_nobs, (int, np.integer)) or source_nobs < 1:
            raise ValueError(f"source_nobs must be a positive integer (the source's number "
                             f"of rows); got {source_nobs!r}")
        # the target's design and residual covariance stand in for the source's
        E = np.asarray(res.resid, dtype=float)
        dof = max(res.nobs - p - model.k_constant, 1)
        Sigma = (E - E.mean(0)).T @ (E - E.mean(0)) / dof
        Sxx = model.moments()[0]
        R = _psd_root(np.linalg.pinv(Sxx, hermitian=True) / float(source_nobs),
                      "the target's Sxx")
        return GaussianSourceDraws(source, R, _psd_root(Sigma, "the residual covariance"),
                                   what=f"source_nobs={source_nobs}: Sigma (x) Sxx^-1 / n0 "
                                   "with the target's Sigma and Sxx")
    draws = getattr(model, "source_draws", None)
    if draws is None:
        reason = getattr(model, "source_exact_reason", "") or "it carries no uncertainty"
        warnings.warn(f"the source is treated as exact in every bootstrap replicate: "
                      f"{reason}. The intervals then count only the target's error and are "
                      "too narrow when the source is itself an estimate; pass the source's "
                      "fitted results, or source_cov=, source_nobs= or source_sd=",
                      MtlWarning, stacklevel=user_stacklevel())
    return draws


def bootstrap(res, n_boot=200, method=None, random_state=None, n_jobs=1,
              refit_tuning=False, source_sd=None, source_cov=None, source_nobs=None):
    """Bootstrap a fitted model; see :meth:`mtltransfer.models.results.Results.bootstrap`."""
    from joblib import Parallel, delayed

    if isinstance(getattr(res.model, "exog", None), RemovedRows):
        raise TypeError("the bootstrap needs the training rows in memory: these results "
                        "were fitted from a Dask DataFrame or saved with remove_data=True")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2; got {n_boot!r}")
    method = res.default_bootstrap_method() if method is None else method
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a nonzero integer (-1: every core); "
                         f"got {n_jobs!r}")
    if not isinstance(refit_tuning, (bool, np.bool_)):
        raise TypeError(f"refit_tuning must be True or False; got {refit_tuning!r}")
    kwargs = replicate_fit_kwargs(res, bool(refit_tuning))
    children = child_seeds(random_state, int(n_boot))
    batches = np.array_split(np.arange(n_boot), max(1, min(int(n_boot), 4 * abs(n_jobs))))
    spec = res.bootstrap_spec(method)
    spec.source_draws = resolve_source_draws(res, source_sd, source_cov, source_nobs)
    out = Parallel(n_jobs=n_jobs)(
        delayed(_run_batch)(spec, [children[b] for b in batch], kwargs) for batch in batches
        if len(batch))
    draws = [d for batch in out for d in batch]
    ok = [d for d in draws if not isinstance(d, str)]
    failed = [d for d in draws if isinstance(d, str)]
    if len(ok) < 2:
        raise RuntimeError(f"only {len(ok)} of {n_boot} bootstrap replicates could be "
                           f"fitted; the first failure: {failed[0] if failed else None}")
    if failed:
        warnings.warn(f"{len(failed)} of {n_boot} bootstrap replicates could not be fitted "
                      f"and are left out of the draws (the first: {failed[0]}); the "
                      "intervals come from the other replicates", MtlWarning,
                      stacklevel=user_stacklevel())
    extra = {key: stack_padded([d[2][key] for d in ok]) for key in ok[0][2]}
    source_sd = None
    if getattr(res.model, "source", None) is not None:      # the drawn sources' spread
        source_sd = (extra["source"].std(axis=0, ddof=1) if "source" in extra else 0.0)
    return BootstrapResults(res, np.stack([d[0] for d in ok]), np.stack([d[1] for d in ok]),
                            extra, method, bool(refit_tuning), len(failed), source_sd)


def child_seeds(random_state, n):
    """The replicates' seeds: children of ``SeedSequence(random_state)``, or of a
    Generator's own seed sequence (spawned from it)."""
    if isinstance(random_state, (np.random.Generator, np.random.SeedSequence)):
        return random_state.spawn(n)
    if random_state is not None and (
            isinstance(random_state, (bool, np.bool_))
            or not isinstance(random_state, (int, np.integer)) or random_state < 0):
        raise TypeError(f"random_state must be None, a non-negative integer, a "
                        f"numpy SeedSequence or Generator; got {random_state!r}")
    return np.random.SeedSequence(random_state).spawn(n)


def stack_padded(arrays):
    """Stack the replicates' draws of a quantity along a new first axis; draws of
    different shapes (SMART's principal angles when a re-tuned replicate selects another
    rank) are padded with NaN to the largest along every axis."""
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    shape = tuple(np.max([a.shape for a in arrays], axis=0)) if arrays[0].ndim else ()
    if all(a.shape == shape for a in arrays):
        return np.stack(arrays)
    out = np.full((len(arrays),) + shape, np.nan)
    for b, a in enumerate(arrays):
        out[(b,) + tuple(slice(0, m) for m in a.shape)] = a
    return out


def _run_batch(spec, seeds, kwargs):
    """Replicates of one batch: (coef, intercept, extra draws), or the reason a
    replicate's fit raised (a degenerate resample: the draw is left out)."""
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # replicates: the full fit has warned
            try:
                rep = spec.fit_replicate(rng, kwargs)
            except (ValueError, np.linalg.LinAlgError) as exc:
                out.append(f"{type(exc).__name__}: {exc}")
                continue
            # outside the try: an error here is a defect, not a degenerate resample
            coef, intercept = rep.coefficient_arrays()
            extra = spec.results.bootstrap_extra(rep)
            if spec.source_draws is not None:
                extra = dict(extra, source=rep.model.source)
            out.append((coef, intercept, extra))
    return out


@dataclass
class Resampler:
    """What a replicate needs: the model, its fitted values and residuals, and the
    full-data results (for the model-specific draws). Picklable, for joblib workers."""

    results: object
    fitted: np.ndarray
    resid: np.ndarray
    method: str
    strata: np.ndarray | None = None
    #: draws of the source (:func:`resolve_source_draws`), None: the source kept
    source_draws: object = None

    def rows(self, rng):
        """Row indices drawn with replacement (within each stratum, keeping its size)."""
        n = len(self.fitted)
        if self.strata is None:
            return rng.integers(0, n, size=n)
        order = np.argsort(self.strata, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(self.strata[order]) != 0])
        sizes = np.diff(np.r_[starts, n])
        offsets = np.repeat(starts, sizes)
        draw = offsets + (rng.random(n) * np.repeat(sizes, sizes)).astype(int)
        rows = np.empty(n, dtype=int)
        rows[order] = order[draw]
        return rows

    def fit_replicate(self, rng, kwargs):
        """One bootstrap fit: the results of the model refitted on a resample."""
        rows = self.rows(rng)
        model = self.results.model
        if self.method == "residual":
            data = dict(endog=self.fitted + self.resid[rows])
        else:
            data = dict(rows=rows)
        if self.source_draws is not None:
            # the source redrawn from its sampling distribution (resolve_source_draws)
            source = self.source_draws.draw(rng)
            new = type(model)(model.data.take(**data),
                              **dict(model.init_options(), source=source))
        else:
            new = model.replace_data(**data)
        return new.fit(**kwargs)
