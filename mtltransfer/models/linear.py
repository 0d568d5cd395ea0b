"""Target-only baselines: OLS, Ridge, ReducedRank and NuclearNorm.

Each model fits from the sufficient statistics of :mod:`mtltransfer.gram` with a fast
closed-form / proximal path or, with ``backend="cvxpy"``, the same problem posed in CVXPY
(:mod:`mtltransfer.solvers.cvx`).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
from scipy import linalg

from ..gram import offset_moments, total_stats, validation_loss
from ..holdout import HOLDOUT_RIDGE_FACTORS
from ..solvers import linear as lin
from ..solvers import prox
from ..solvers._base import argmin_simplest
from ..solvers.contrast import svt_gram
from ..exceptions import ValueWarning, user_stacklevel
from ..inference import (INFERENCE_CACHE, INFERENCE_ROW_CACHED, LeastSquaresInference,
                         check_cov_type)
from .._validation import Param
from .base import (RANK_PARAM, MultiResponseModel, MultiResponseResults, PenalizedResults,
                   warn_penalty_scale)

_COMMON_FIT_DOC = """
        backend : {"fast", "cvxpy"}
            Closed-form / proximal NumPy path, or the same problem solved by CVXPY.
        verbose : bool
            Print progress of tuning."""
_CLOSED_FORM_DOC = """
        tol, max_iter : optional
            Accepted so that every model takes the same fit options; a closed form has no
            iterations and ignores them."""


def _fit_doc(method):
    """Complete a fit method's docstring: the options every fit takes are written once
    (above) and stand in for the ``<fit options>`` and ``<closed form>`` lines."""
    method.__doc__ = method.__doc__.replace("\n        <fit options>", _COMMON_FIT_DOC) \
        .replace("\n        <closed form>", _CLOSED_FORM_DOC)
    return method


def _no_weighted_screening(screen, data):
    """Screening ranks predictors by unweighted marginal statistics: refused with
    weights (a weighted model would silently keep an unweighted selection)."""
    if screen is not None and data.weights is not None:
        raise ValueError("screen= and weights= together are not supported: marginal "
                         "screening is unweighted; screen first, then fit with weights")


def warn_saturated(res):
    """Warn when a fit reproduces some response exactly (R^2 = 1 up to rounding)."""
    ssr = res.ssr_per_response.to_numpy()
    tss = res.centered_tss.to_numpy()
    names = res.model.endog_names
    constant = [name for name, t in zip(names, tss) if not t > 0]
    if constant:
        warnings.warn(f"constant response(s) {constant}: nothing varies to explain, so "
                      "R-squared is undefined (NaN); the scale, log-likelihood and information "
                      "criteria are degenerate",
                      ValueWarning, stacklevel=user_stacklevel())
    exact = [name for name, e, t in zip(names, ssr, tss)
             if t > 0 and e <= (1e-10) ** 2 * t]
    if exact:
        warnings.warn(f"saturated fit: the residuals of {exact} are zero up to rounding "
                      f"(R-squared = 1; n = {res.nobs}, p = {res.model.k_exog}); the scale, "
                      "log-likelihood and information criteria are degenerate",
                      ValueWarning, stacklevel=user_stacklevel())


class OLSResults(LeastSquaresInference, MultiResponseResults):
    """Results of :class:`OLS`: the multi-response results API plus statsmodels'
    inference, per response (see :mod:`mtltransfer.inference` and the page "OLS
    inference").

    Attributes
    ----------
    cov_type : str
        ``"nonrobust"``, ``"HC0"`` ... ``"HC3"`` or ``"cluster"``.
    cov_kwds : dict
        For ``"cluster"``: ``groups`` (integer codes of the rows used),
        ``use_correction``, ``df_correction``.
    use_t : bool
        t (and F) reference distributions, else normal (and chi-square).
    params_full, bse, tvalues, pvalues
        Per parameter, the intercept included (``param_names``): Series for one
        response, parameters x responses DataFrame for several.

    Notes
    -----
    Methods: ``conf_int(alpha)``, ``cov_params(response=None)``,
    ``t_test``/``f_test``/``wald_test(r_matrix, response=None)``,
    ``get_prediction(exog)``, ``mv_test()``. A rank-deficient design has no
    closed-form standard errors: they raise ``ValueError`` naming the collinear columns.
    """

    class _RowCached:
        """The parent's row-cached statistics plus the inference's (read when saving)."""

        def __get__(self, obj, cls):
            return tuple(MultiResponseResults._row_cached) + INFERENCE_ROW_CACHED

    #: row-dependent statistics kept by ``save(..., remove_data=True)``
    _row_cached = _RowCached()

    def __init__(self, model, coef, *, cov_type="nonrobust", cov_kwds=None, use_t=True,
                 **kwargs):
        super().__init__(model, coef, **kwargs)
        self.cov_type = cov_type
        self.cov_kwds = dict(cov_kwds or {})
        self.use_t = bool(use_t)

    def _summary_rows(self):
        left, right = super()._summary_rows()
        left.append(("Covariance Type:", self.cov_type))
        return left, right

    def _fit_statistics(self):
        stats = super()._fit_statistics()
        stats["F-statistic"] = self.fvalue
        stats["Prob (F-statistic)"] = self.f_pvalue
        return stats

    @property
    def _df_model_each(self):
        return self.df_model / self.model.k_endog

    def _f_tests(self):
        """(F statistic, p-value) of each response: all slopes zero (statsmodels'
        ``fvalue``, ``f_pvalue``). Nonrobust: ``(ess / df_model) / (ssr / df_resid)``
        with ``ess = centered_tss - ssr``; other covariance types: the Wald F test of
        the slopes with that covariance (NaN with an implicit constant, as
        statsmodels)."""
        from scipy import stats

        cached = self.__dict__.get("_f_cache")
        if cached is not None:
            return cached
        q, df_m = self.model.k_endog, self._df_model_each
        ssr, tss = self.ssr_per_response.to_numpy(), self.centered_tss.to_numpy()
        if self.cov_type == "nonrobust":
            with np.errstate(divide="ignore", invalid="ignore"):
                f = ((tss - ssr) / df_m) / (ssr / self.df_resid)
                pv = stats.f.sf(f, df_m, self.df_resid) if df_m > 0 else np.full(q, np.nan)
        else:
            pos = self._layout[2]
            k = len(self.param_names)
            if pos is None and self.model.k_constant:
                f = pv = np.full(q, np.nan)
            else:
                mat = np.delete(np.eye(k), pos, axis=0) if pos is not None else np.eye(k)
                tests = [self._engine(j).f_test(mat) for j in range(q)]
                f = np.array([float(np.squeeze(t.fvalue)) for t in tests])
                pv = np.array([float(t.pvalue) for t in tests])
        names = self.model.endog_names
        out = (pd.Series(f, index=names), pd.Series(pv, index=names))
        self.__dict__["_f_cache"] = out
        return out

    @property
    def fvalue(self):
        """F statistic of each response that all its slopes are zero (statsmodels'
        ``fvalue``; Series)."""
        return self._f_tests()[0]

    @property
    def f_pvalue(self):
        """p-value of :attr:`fvalue` (Series)."""
        return self._f_tests()[1]

    def __getstate__(self):
        state = super().__getstate__()
        for key in INFERENCE_CACHE + ("_f_cache",):
            state.pop(key, None)
        return state


class OLS(MultiResponseModel):
    r"""Multi-response least squares: minimise :math:`\lVert Y - \mathbf{1} b^\top - XC\rVert_F^2`.

    Each response's coefficients equal a single-response OLS fit (statsmodels' ``OLS``).
    It is solved from an SVD of the centred rows with every column scaled to unit norm,
    so the answer does not depend on the predictors' units. A rank-deficient design (rank
    by the scale-free rule of :mod:`mtltransfer.solvers.linear`) gives a
    ``SingularMatrixWarning`` naming the collinear columns and the minimum-norm solution
    in that equilibrated basis. The results carry statsmodels' inference per response
    (:class:`OLSResults`).

    See Also
    --------
    MultiResponseResults : the results of every multi-response model.

    Examples
    --------
    >>> import numpy as np
    >>> import statsmodels.api as sm
    >>> import mtltransfer as mt
    >>> data = sm.datasets.longley.load_pandas()
    >>> X = sm.add_constant(data.exog)
    >>> res = mt.OLS(data.endog, X).fit()
    >>> ref = sm.OLS(data.endog, X).fit()
    >>> bool(np.allclose(res.bse.to_numpy().ravel(), ref.bse.to_numpy()))
    True
    """

    _method = "Least squares"

    @_fit_doc
    def fit(self, *, cov_type="nonrobust", cov_kwds=None, use_t=None, backend="fast",
            tol=None, max_iter=None, verbose=False):
        """Fit by least squares.

        Parameters
        ----------
        cov_type : {"nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"}
            Covariance of the estimates, as statsmodels' ``OLS.fit``.
        cov_kwds : dict, optional
            For ``"cluster"``: ``{"groups": labels}`` (a Series is aligned to the rows
            by index; an array is positional, one label per row given), and optionally
            ``use_correction`` and ``df_correction`` (default True, as statsmodels).
        use_t : bool, optional
            t/F reference distributions (default: for ``"nonrobust"`` only, as
            statsmodels).
        <fit options>
        <closed form>

        Returns
        -------
        OLSResults
        """
        cov_type, cov_kwds, use_t = check_cov_type(cov_type, cov_kwds, use_t, self.data)
        self.warn_design()
        dsvd = self.design_svd
        if backend == "cvxpy":
            from ..solvers.cvx import ridge_cvx
            C, _ = ridge_cvx(*self.moments(), 0.0)
        else:
            C, _ = lin.ols_rows(dsvd, self.centred_rows[1])
        res = OLSResults(self, C, config={"rank(X)": dsvd.rank},
                         df_model=dsvd.rank * self.k_endog, cov_type=cov_type,
                         cov_kwds=cov_kwds, use_t=use_t)
        warn_saturated(res)
        return res


class Ridge(MultiResponseModel):
    r"""Multi-response ridge regression.

    Minimises :math:`\frac{1}{2n}\lVert Y - XC\rVert_F^2 + \frac{\alpha}{2}\lVert C\rVert_F^2`.
    ``fit(alpha=None)`` chooses :math:`\alpha` by generalised cross-validation over a log
    grid, at the cost of one eigendecomposition of :math:`X^\top X`.

    See Also
    --------
    MultiResponseResults : what :meth:`fit` returns.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> res = mt.Ridge.from_formula(formula, target).fit()     # alpha by GCV
    >>> res.params.shape
    (30, 12)
    >>> res.chosen_by["alpha"]
    'GCV'
    """

    _method = "Ridge (L2-penalised least squares)"
    _param_table = {"alpha": Param("real", 0, none=True, tuned=True)}
    #: the candidates of ``fit(tuning="holdout")`` (:mod:`mtltransfer.holdout`): the
    #: revision's ridge multipliers {0, 1e-4, ..., 100} x ||Xc||_op^2 / n of the
    #: training rows (ties go to the first)
    _holdout_grid = {"alpha": lambda m, call: HOLDOUT_RIDGE_FACTORS * max(
        float(m.access.spectral()[0].max(initial=0.0)), np.finfo(float).tiny)}

    def offset(self):
        """The matrix the penalty shrinks towards (None: zero)."""
        return None

    @_fit_doc
    def fit(self, alpha=None, *, backend="fast", n_alphas=50, tol=None, max_iter=None,
            verbose=False):
        """Fit ridge regression.

        Parameters
        ----------
        alpha : float or None
            Penalty (>= 0). ``None``: minimise GCV(alpha) = n RSS(alpha) / (n - df)^2 per
            response (summed over responses), df = sum_i w_i / (w_i + alpha) over the
            eigenvalues w_i of X^T X / n.
        n_alphas : int
            Length of the GCV grid ``alpha = lambda_max(X^T X / n) logspace(-6, 2,
            n_alphas)``.
        <fit options>
        <closed form>

        Returns
        -------
        MultiResponseResults
            ``config`` holds alpha and how it was chosen; ``tuning`` the GCV curve.
        """
        # the options were checked against the declarations (_param_table) by fit's wrapper
        if alpha is not None:
            alpha = float(alpha)
        warn_penalty_scale(self)
        C0 = self.offset()
        tuning, how = {}, "given" if alpha is not None else "GCV"
        if alpha == 0:
            self.warn_design()
            C, _ = lin.ols_rows(self.design_svd, self.centred_rows[1])
            df = float(self.design_svd.rank)
        else:
            # the moments of Y - X C0 in spectral form (ridge towards C0 shrinks C - C0):
            # from the rows' SVD, or from the statistics alone
            C, alpha, df, trace = lin.ridge_spectral(*self.access.spectral(C0), self.nobs,
                                                     alpha, n_alphas=n_alphas,
                                                     n_fixed=int(self.center))
            C = C if C0 is None else C0 + C
            if trace is not None:
                tuning["gcv"] = pd.DataFrame(trace)
                from ..selection import warn_grid_edge
                # both ends are natural: the small end is least squares to 1e-6, the large
                # end (100 lambda_max(Sxx)) shrinks every slope (towards the offset) by
                # >= 99%, so no alpha beyond either changes the fit by more than 1%
                warn_grid_edge(type(self).__name__, "alpha", alpha, trace["alpha"],
                               low=True, high=True)
        if backend == "cvxpy":
            from ..solvers.cvx import ridge_cvx
            C, _ = ridge_cvx(*self.moments(), alpha, C0=C0)
        return PenalizedResults(self, C, hyperparameters={"alpha": alpha},
                                chosen_by={"alpha": how}, df_model=df * self.k_endog,
                                tuning=tuning)


class ReducedRank(MultiResponseModel):
    r"""Reduced-rank regression: :math:`\min \lVert Y - XC\rVert_F^2` s.t. :math:`\operatorname{rank} C \le r`.

    The exact solution is :math:`C_{\mathrm{ols}} V_r V_r^\top` with :math:`V_r` the
    top-:math:`r` eigenvectors of the fitted values' covariance (see :func:`mtltransfer.solvers.linear.reduced_rank`).

    ``screen=`` (a :class:`~mtltransfer.MarginalScreening` or an int m) screens the
    predictors on the rows first, as :class:`~mtltransfer.SMART` does: the model then
    holds the kept predictors, ``predict`` takes all the original columns, and the
    selection is ``results.screening``.

    See Also
    --------
    MultiResponseResults : what :meth:`fit` returns.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> res = mt.ReducedRank.from_formula(formula, target).fit()   # rank by RSC
    >>> int(res.rank)
    3
    >>> res.predict(demo["test"]).shape
    (400, 12)
    """

    _method = "Reduced-rank regression (closed form)"
    _param_table = {"rank": RANK_PARAM}
    #: ``fit(tuning="holdout")`` tries every rank 1..min(p, q) (:mod:`mtltransfer.holdout`)
    _holdout_grid = {"rank": lambda m, call: range(1, min(m.k_exog, m.k_endog) + 1)}

    def __init__(self, endog, exog=None, *, intercept=None, missing="raise", screen=None,
                 weights=None):
        from ..screening import screen_data

        super().__init__(endog, exog, intercept=intercept, missing=missing, weights=weights)
        _no_weighted_screening(screen, self.data)
        self.data, self.screening = screen_data(screen, self.data)

    @_fit_doc
    def fit(self, rank=None, *, backend="fast", tol=None, max_iter=None, verbose=False):
        """Fit reduced-rank regression.

        Parameters
        ----------
        rank : int or None
            Rank r in [1, min(p, q)]. ``None``: the rank selection criterion of Bunea,
            She and Wegkamp (2011), see :func:`mtltransfer.selection.select_rank_rsc`.
        <fit options>
        <closed form>

        Returns
        -------
        MultiResponseResults
        """
        p, q = self.k_exog, self.k_endog
        if rank is not None:        # checked against RANK_PARAM by fit's wrapper
            rank = int(rank)
        self.warn_design()
        how, tuning = "given", {}
        if rank is None:
            from ..selection import rank_table
            rank, info = self.select_rank()
            tuning["rank"] = rank_table(info, rank)
            how = "RSC"
        if backend == "cvxpy":
            from ..solvers.cvx import reduced_rank_cvx
            C, _ = reduced_rank_cvx(*self.moments(), rank)
        else:
            C, _, _ = lin.reduced_rank_rows(self.design_svd, self.centred_rows[1], rank)
        res = PenalizedResults(self, C, hyperparameters={"rank": rank},
                               chosen_by={"rank": how}, df_model=rank * (p + q - rank),
                               tuning=tuning)
        warn_saturated(res)
        return res


class NuclearNorm(MultiResponseModel):
    r"""Nuclear-norm penalised regression: :math:`\frac{1}{2n}\lVert Y - XC\rVert_F^2 + \lambda\lVert C\rVert_*`.

    Solved by accelerated proximal gradient with singular value thresholding
    (:func:`mtltransfer.solvers.prox.nuclear_norm_apg`); ``fit(lam=None)`` chooses lam
    by K-fold cross-validation along a warm-started log-spaced path. The reported rank
    is that of the penalised part: the number of its singular values above 1e-8 times
    the largest (:func:`mtltransfer.solvers.prox.nuclear_rank`), for both backends.

    See Also
    --------
    MultiResponseResults : what :meth:`fit` returns.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> res = mt.NuclearNorm.from_formula(formula, target).fit()   # lam by 5-fold CV
    >>> res.params.shape
    (30, 12)
    """

    _method = "Nuclear-norm penalised least squares"
    _param_table = {"lam": Param("real", 0, none=True, tuned=True),
                    "tol": Param("real", 0, low_open=True),
                    "max_iter": Param("int", 1, 10 ** 7)}

    def offset(self):
        """The matrix the penalty is centred on (None: zero)."""
        return None

    @_fit_doc
    def fit(self, lam=None, *, backend="fast", tol=1e-8, max_iter=5000, n_lams=30,
            n_folds=5, verbose=False):
        """Fit nuclear-norm penalised regression.

        Parameters
        ----------
        lam : float or None
            Penalty (>= 0). ``None``: K-fold CV over ``n_lams`` values from
            lam_max = ||Sxy||_2 (where C = 0) down to 1e-3 lam_max.
        <fit options>
        tol, max_iter : float, int
            Stopping tolerance and iteration cap of the proximal gradient solver.
        n_lams, n_folds : int
            Path length and number of folds for tuning.

        Returns
        -------
        MultiResponseResults
        """
        if lam is not None:         # checked against _param_table by fit's wrapper
            lam = float(lam)
        warn_penalty_scale(self)
        C0 = self.offset()
        Sxx, Sxy, Syy = self.moments()
        how, tuning = "given", {}
        if lam is None:
            folds, n_folds = self.cv_folds(n_folds)
            lam, tuning["lam_cv"], start = self._cv(n_lams, folds, tol, max_iter,
                                                    verbose)
            how = f"{n_folds}-fold CV"
            from ..selection import warn_grid_edge
            lam_top = float(tuning["lam_cv"]["lam"].iloc[0])
            # the grid's top is lam_max, where the penalised part is zero (a natural
            # boundary: larger lams give the same fit); its bottom, 1e-3 lam_max, is not
            warn_grid_edge(type(self).__name__, "lam", lam,
                           lam_top * np.logspace(0, -3, n_lams),
                           high=True if C0 is not None else (
                               "the fit is all zero (rank 0, no slopes): cross-validation "
                               "prefers no predictor at all"))
        else:
            start = None
        if backend == "cvxpy":
            from ..solvers.cvx import nuclear_norm_cvx
            from ..solvers._base import SolverResult
            C, val = nuclear_norm_cvx(Sxx, Sxy, Syy, lam, C0=C0)
            sol = SolverResult(C, True, 0, {}, val)
            D = C if C0 is None else C - C0
        else:
            # with an offset, the penalised part is D = C - C0: a nuclear-norm fit of the
            # residual moments (gram.offset_moments)
            # after CV, started from the folds' mean solution at the chosen lam when the
            # minimiser is unique (Sxx nonsingular): the start then changes only the
            # iteration count, never which minimiser is returned
            L = None
            if start is not None:
                w = linalg.eigvalsh(Sxx)
                L = float(w[-1])                    # the solver's Lipschitz constant
                if w[0] <= 1e-12 * max(L, np.finfo(float).tiny):
                    start = None
            sol = prox.nuclear_norm_apg(*offset_moments(Sxx, Sxy, Syy, C0), lam, tol=tol,
                                        max_iter=max_iter, C_init=start, lipschitz=L)
            D = sol.coef
            C = D if C0 is None else C0 + D
        # lam >= lam_max = ||Sxy - Sxx C0||_2: D = 0 is the exact minimiser (its
        # subgradient condition); the solvers leave rounding residue of ~1e-17 there,
        # which a relative rank rule would count as rank 1
        if lam >= prox.nuclear_norm_lam_max(offset_moments(Sxx, Sxy, Syy, C0)[1]):
            D = np.zeros_like(D)
            C = D if C0 is None else C0 + D
            sol.extra["singular_values"] = np.zeros(min(D.shape))
        # the rank of the penalised part D, one rule for both backends (prox.nuclear_rank)
        s = sol.extra["singular_values"] if "singular_values" in sol.extra else \
            linalg.svdvals(D)
        r = prox.nuclear_rank(s)
        p, q = self.k_exog, self.k_endog
        return PenalizedResults(self, C, hyperparameters={"lam": lam, "rank": r},
                                chosen_by={"lam": how}, solver=sol,
                                df_model=r * (p + q - r), tuning=tuning)

    #: singular value thresholding of the CV path (None: :func:`prox.svt`)
    _cv_threshold = staticmethod(svt_gram)

    def _cv(self, n_lams, folds, tol, max_iter, verbose, patience=3):
        """K-fold CV along lam_max * logspace(0, -3, n_lams), all folds in lockstep.

        Each fold's path is screened at a moderate tolerance (held-out errors do not move
        at the 1e-5 level; the chosen lam is solved to ``tol`` by the caller) and
        thresholds through the small Gram matrix
        (:func:`mtltransfer.solvers.contrast.svt_gram`). Each solve starts from the
        first-order extrapolation of the fold's path: on the uniform grid in log lam,

            D_start(lam_{i+1}) = D(lam_i) + (D(lam_i) - D(lam_{i-1})),

        about half the iterations of starting from ``D(lam_i)`` (where a fold's
        ``Sxx`` is nonsingular its problem is strongly convex, and the start changes
        only the iteration count). The path stops
        once the mean held-out error has risen for ``patience`` consecutive lams: the
        small-lam end is the slowest to solve and, past the minimum, only overfits
        further.

        Returns
        -------
        lam : float
        table : DataFrame
            ``lam`` and ``cv_mse`` of the lams visited.
        start : ndarray
            The folds' mean solution at the chosen lam (the final fit's start).
        """
        center = self.center
        C0 = self.offset()
        Sxx, Sxy, Syy = offset_moments(*self.moments(), C0)
        lam_max = prox.nuclear_norm_lam_max(Sxy)
        lams = lam_max * np.logspace(0, -3, n_lams)
        if isinstance(folds, (int, np.integer)):        # a number of folds
            folds, _ = self.cv_folds(folds)
        n_folds = len(folds)
        total = total_stats(folds)
        trains = [total - held for held in folds]
        moments = [offset_moments(*t.moments(center=center), C0) for t in trains]
        lips = [float(linalg.eigvalsh(m[0])[-1]) for m in moments]
        path = [[] for _ in range(n_folds)]          # each fold's last two solutions
        err, start = [], None
        for i, lam in enumerate(lams):
            e, solutions = 0.0, []
            for k, (held, train) in enumerate(zip(folds, trains)):
                D_init = None if not path[k] else path[k][-1] if len(path[k]) == 1 else \
                    2.0 * path[k][-1] - path[k][-2]
                sol = prox.nuclear_norm_apg(*moments[k], lam, C_init=D_init,
                                            tol=max(tol, 1e-5), max_iter=max_iter,
                                            lipschitz=lips[k], warn=False,
                                            threshold=self._cv_threshold)
                path[k] = path[k][-1:] + [sol.coef]
                solutions.append(sol.coef)
                C = sol.coef if C0 is None else C0 + sol.coef
                e += held.n * validation_loss(held, train, C, center=center)
            err.append(e / (self.nobs * self.k_endog))
            if verbose:
                print(f"{type(self).__name__} CV: lam {i + 1}/{n_lams}: {err[-1]:.5g}",
                      file=sys.stderr)
            best = argmin_simplest(err)
            if best == i:
                start = np.mean(solutions, axis=0)
            if i - best >= patience:
                break
        table = pd.DataFrame({"lam": lams[:len(err)], "cv_mse": err})
        return float(lams[argmin_simplest(err)]), table, start
