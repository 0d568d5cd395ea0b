# Over 600 lines: two comparators of the revision, each with its results and tuning.
"""Comparators of the SMART paper's revision.

* :class:`ReducedRankRidge` -- ``(1/2n)||Y - XC||_F^2 + (ridge/2)||C||_F^2`` subject to
  ``rank(C) <= r`` (rrpack's ``rrs.fit``), exact in closed form; with ``source=`` the
  same inside the source's leading singular subspaces;
* :class:`TwoStageTransfer` -- a two-stage nuclear-norm transfer that uses the source's
  *rows*: a nuclear-norm fit W on the pooled source and target rows, then a nuclear-norm
  correction Delta fitted on the target alone; ``C = W + Delta``.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from scipy import linalg

from .. import design, source_alignment
from .._validation import Param, front_end
from ..gram import SufficientStats, offset_moments, total_stats, validation_loss
from ..selection import fold_se
from ..solvers import linear as lin
from ..solvers import prox
from ..solvers import rrridge as rrs
from ..solvers._base import SolverResult, argmin_simplest
from ..smart.problem import source_rank, source_svd
from .base import (RANK_PARAM, SUBSPACE_PAIR_PARAM, MultiResponseModel, PenalizedResults,
                   check_backend, check_int, check_positive, warn_penalty_scale)

#: the ridge grid of the revision's protocol, in units of ||X||_op^2 / n = lambda_max(Sxx)
RIDGE_FACTORS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    return value


def _subspace_pair(subspace_rank, rank, p, q):
    """``subspace_rank`` (an int or a pair) as a checked pair (d_u, d_v), each >= rank."""
    if isinstance(subspace_rank, (tuple, list)) and len(subspace_rank) == 2:
        d_u, d_v = subspace_rank
    elif isinstance(subspace_rank, (int, np.integer)) and not isinstance(
            subspace_rank, (bool, np.bool_)):
        d_u = d_v = subspace_rank
    else:
        raise TypeError(f"subspace_rank must be an int or a pair (d_u, d_v); got "
                        f"{subspace_rank!r}")
    low = 1 if rank is None else rank
    return check_int("d_u", d_u, low, p), check_int("d_v", d_v, low, q)


class _Projected:
    """A fold's held-out statistics in the coordinates ``C = U M V^T`` (U, V identity
    when None), so that a candidate's held-out error costs O(d_u^2 d_v), not O(p^2 q).

    With ``a``, ``b`` the training means (zero without an intercept),
    ``dy = ybar_f - a``, ``u = U^T (xbar_f - b)``, and V^T V = I:

        sum_i ||y_i - a - C^T (x_i - b)||^2
            = tr Cyy - 2 <U^T Cxy V, M> + <(U^T Cxx U) M, M>
              + n_f (||dy||^2 - 2 (V^T dy)^T M^T u + ||M^T u||^2).
    """

    def __init__(self, held, train, U, V, center):
        Cxx, Cxy = held.Cxx, held.Cxy
        dx = held.x_mean - (train.x_mean if center else 0.0)
        dy = held.y_mean - (train.y_mean if center else 0.0)
        if U is not None:
            Cxx, Cxy, dx = U.T @ Cxx @ U, U.T @ Cxy @ V, U.T @ dx
            dyv = V.T @ dy
        else:
            dyv = dy
        self.n, self.G, self.H, self.u, self.dyv = held.n, Cxx, Cxy, dx, dyv
        self.base = float(np.trace(held.Cyy)) + held.n * float(dy @ dy)

    def loss(self, M):
        """Mean squared prediction error per held-out row of ``C = U M V^T``."""
        Mu = M.T @ self.u
        within = -2.0 * np.sum(self.H * M) + np.sum((self.G @ M) * M)
        shift = -2.0 * float(self.dyv @ Mu) + float(Mu @ Mu)
        return float((self.base + within + self.n * shift) / self.n)


class ReducedRankRidgeResults(PenalizedResults):
    """Results of :class:`ReducedRankRidge`: the penalised-results API, with ``ridge``,
    ``rank`` and (with a source) ``subspace_rank``."""

    ridge = property(lambda self: self._hyper("ridge"), doc="The ridge penalty.")


class ReducedRankRidge(MultiResponseModel):
    """Reduced-rank ridge regression, optionally inside a source's singular subspaces.

    Minimise ``(1/2n)||Y - XC||_F^2 + (ridge/2)||C||_F^2`` subject to ``rank(C) <= r``
    (rrpack's ``rrs.fit``; Mukherjee and Zhu, 2011). The exact solution is the
    reduced-rank regression of the augmented data ``[X; sqrt(n ridge) I]``, ``[Y; 0]``:

        C = C_R V_r V_r^T,   C_R = (Sxx + ridge I)^{-1} Sxy,
        V_r = top-r eigenvectors of Sxy^T C_R = C_R^T (Sxx + ridge I) C_R,

    the top right singular vectors of the ridge fitted values on the augmented rows
    (derivation in :mod:`mtltransfer.solvers.rrridge`). ``ridge = 0`` is
    :class:`~mtltransfer.ReducedRank`.

    With ``source=`` (a coefficient matrix, as for :class:`~mtltransfer.SMART`) the fit is
    restricted to ``C = U0[:, :d_u] M V0[:, :d_v]^T`` in the source's leading singular
    subspaces: the same problem for M on the moments ``U0u^T Sxx U0u``,
    ``U0u^T Sxy V0v`` (``||C||_F = ||M||_F``). With ``(d_u, d_v) = (p, q)`` it is the
    target-only fit; with ``ridge = 0`` it is :class:`~mtltransfer.SourceSubspaceRRR`.

    Parameters
    ----------
    endog, exog
        Responses and predictors (see
        :class:`~mtltransfer.models.base.MultiResponseModel`).
    source : results, DataFrame, array_like or None
        The source's coefficient matrix (aligned by name as for SMART); None fits the
        target-only form.
    intercept : bool or None
    missing : {"raise", "drop"}

    See Also
    --------
    MultiResponseResults : what :meth:`fit` returns.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> res = mt.ReducedRankRidge.from_formula(formula, target).fit(rank=3)
    >>> int(res.rank)
    3
    """

    _method = "Reduced-rank ridge (closed form)"
    _param_table = {"rank": RANK_PARAM, "subspace_rank": SUBSPACE_PAIR_PARAM,
                    "ridge": Param("real", 0, none=True, tuned=True)}

    def __init__(self, endog, exog=None, *, source=None, intercept=None, missing="raise"):
        super().__init__(endog, exog, intercept=intercept, missing=missing)
        if source is None:
            self.source = self.source_svd = None
        else:
            self.source = source_alignment.align_source(source, self.data.xnames,
                                                        self.data.ynames)
            self.source_svd = source_svd(self.source)

    def init_options(self):
        return {} if self.source is None else {"source": self.source}

    @property
    def source_rank(self):
        """Numerical rank of the source (None without one)."""
        return None if self.source is None else source_rank(self.source_svd[1])

    def _bases(self, pair):
        """(U, V) of a subspace pair; (None, None) for the whole space."""
        if pair is None:
            return None, None
        U0, _, V0 = self.source_svd
        return U0[:, :pair[0]], V0[:, :pair[1]]

    def fit(self, rank=None, ridge=None, subspace_rank=None, *, rank_method="rsc",
            ridge_method="cv", n_folds=5, backend="fast", tol=None, max_iter=None,
            verbose=False):
        """Fit; every hyperparameter left as None is tuned.

        Parameters
        ----------
        rank : int or None
            Rank r. ``None``: by the rank selection criterion (``rank_method="rsc"``,
            as :class:`~mtltransfer.ReducedRank`; capped by the source's rank with a
            source) or by K-fold cross-validation jointly with the ridge and the
            subspaces (``"cv"``; ranks 1 to min(d_u, d_v)).
        ridge : float or None
            Ridge penalty (>= 0). ``None``: chosen from the revision's grid
            ``{0, 1e-4, 1e-3, ..., 100} x ||X||_op^2 / n`` (:data:`RIDGE_FACTORS`) by
            K-fold CV (``ridge_method="cv"``) or by generalised cross-validation
            (``"gcv"``: ``GCV = n q RSS / (n q - df)^2`` with
            ``df = r tr[Sxx (Sxx + ridge I)^{-1}] + q k_constant``, the trace of the fit's
            hat operator with V_r held fixed; it needs the rank and subspaces fixed).
        subspace_rank : int, (int, int) or None
            (d_u, d_v) of the source form (a scalar ties them); only with ``source=``.
            ``None``: K-fold CV over SMART's tied grid around the rank
            (:func:`mtltransfer.smart.tuning.default_structural_grid`, which includes
            ``(p, q)``), jointly with the ridge.
        rank_method : {"rsc", "cv"}
        ridge_method : {"cv", "gcv"}
        n_folds : int
            Folds of the cross-validation (the package's seeded folds).
        backend : {"fast", "cvxpy"}
            Closed form, or the convex ridge step and the Fantope program for V_r in
            CVXPY (:func:`mtltransfer.solvers.cvx.reduced_rank_ridge_cvx`).
        tol, max_iter : optional
            Accepted for a common interface; a closed form ignores them.
        verbose : bool
            Print the cross-validation's progress.

        Returns
        -------
        ReducedRankRidgeResults
            ``tuning["cv"]`` (``d_u, d_v, rank, ridge, cv_mean, cv_se``) or
            ``tuning["gcv"]``; ``tuning["rank"]`` for the rank selection criterion.
            ``df_model = r (t + d_v - r)`` with ``t = tr[G (G + ridge I)^{-1}]`` (``d_u``
            at ridge 0): reduced rank's count with the ridge's effective number of
            predictors.
        """
        check_backend(backend)
        _check_choice("rank_method", rank_method, ("rsc", "cv"))
        _check_choice("ridge_method", ridge_method, ("cv", "gcv"))
        p, q = self.k_exog, self.k_endog
        if rank is not None:
            rank = check_int("rank", rank, 1, min(p, q))
        if ridge is not None:
            ridge = check_positive("ridge", ridge)
        if subspace_rank is not None and self.source is None:
            raise ValueError("subspace_rank applies to the source form: pass source=")
        pair = None if subspace_rank is None else _subspace_pair(subspace_rank, rank, p, q)
        if ridge is None or ridge > 0:
            warn_penalty_scale(self)
        how = {name: "given" for name, value in (("rank", rank), ("ridge", ridge),
                                                 ("subspace_rank", pair)) if value is not None}
        tuning = {}
        cap = None if self.source is None else max(self.source_rank, 1)
        guide = rank
        if rank is None and (rank_method == "rsc" or (self.source is not None and
                                                       pair is None)):
            from ..selection import rank_table
            guide, info = self.select_rank(cap=cap)
            if rank_method == "rsc":
                rank, tuning["rank"], how["rank"] = guide, rank_table(info, guide), "RSC"
        if self.source is None:
            pairs = [None]
        elif pair is not None:
            pairs = [pair]
        else:
            from ..smart.tuning import default_structural_grid
            pairs = default_structural_grid(guide, p, q, self.source_rank)
        Sxx, Sxy, Syy = self.moments()
        lam_scale = float(linalg.eigvalsh(Sxx)[-1])
        ridges = [ridge] if ridge is not None else [f * lam_scale for f in RIDGE_FACTORS]
        if ridge is None and ridge_method == "gcv":
            if rank is None or len(pairs) > 1:
                raise ValueError("ridge_method='gcv' needs the rank and the subspaces "
                                 "fixed (rank given or rank_method='rsc'; subspace_rank "
                                 "given with a source): use ridge_method='cv'")
            ridge, tuning["gcv"] = self._gcv(pairs[0], rank, ridges)
            how["ridge"], ridges = "GCV", [ridge]
        if rank is None or len(pairs) > 1 or len(ridges) > 1:
            folds, n_folds = self.cv_folds(n_folds)
            (pair, rank, ridge), tuning["cv"] = self._cv(pairs, rank, ridges, folds,
                                                         verbose)
            cv_name = f"{n_folds}-fold CV"
            how.setdefault("rank", cv_name)
            how.setdefault("ridge", cv_name)
            if len(pairs) > 1:
                how["subspace_rank"] = cv_name
        else:
            pair, ridge = pairs[0], ridges[0]
        how.setdefault("rank", "given")
        how.setdefault("ridge", "given")
        if pair is not None:
            how.setdefault("subspace_rank", "given")
            rank = check_int("rank", rank, 1, min(pair))
        C, trace = self._solve(pair, rank, ridge, backend)
        d_v = q if pair is None else pair[1]
        hyper = {"rank": rank, "ridge": ridge}
        if pair is not None:
            hyper["subspace_rank"] = pair
        return ReducedRankRidgeResults(
            self, C, hyperparameters=hyper, chosen_by={k: how[k] for k in hyper},
            df_model=rank * (trace + d_v - rank), tuning=tuning)

    def _solve(self, pair, rank, ridge, backend):
        """The fit on all rows: (C, the ridge's effective number of predictors)."""
        U, V = self._bases(pair)
        Sxx, Sxy, Syy = self.moments()
        G, H = (Sxx, Sxy) if U is None else rrs.subspace_moments(Sxx, Sxy, U, V)
        d_u = G.shape[0]
        if backend == "cvxpy":
            from ..solvers.cvx import reduced_rank_ridge_cvx
            Syy_v = Syy if V is None else V.T @ Syy @ V
            M, _ = reduced_rank_ridge_cvx(G, H, Syy_v, rank, ridge)
        elif ridge == 0:
            # the rows, in their equilibrated basis: exactly ReducedRank / SourceSubspaceRRR
            self.warn_design()
            Xc, Yc = self.centred_rows
            if U is None:
                M, _, _ = lin.reduced_rank_rows(self.design_svd, Yc, rank)
            else:
                M, _, _ = lin.reduced_rank_rows(lin.design_svd(Xc @ U), Yc @ V, rank)
        else:
            M, _ = rrs.reduced_rank_ridge(G, H, rank, ridge)
        trace = float(d_u) if ridge == 0 else rrs.ridge_trace(rrs.psd_eig(G)[0], ridge)
        return (M if U is None else U @ M @ V.T), trace

    def _gcv(self, pair, rank, ridges):
        """GCV over the ridge grid at a fixed rank and subspace pair."""
        U, V = self._bases(pair)
        Sxx, Sxy, Syy = self.moments()
        G, H = (Sxx, Sxy) if U is None else rrs.subspace_moments(Sxx, Sxy, U, V)
        eig = rrs.psd_eig(G)
        n, q = self.nobs, self.k_endog
        rows = []
        for lam in ridges:
            M, _ = rrs.reduced_rank_ridge(G, H, rank, lam, eig)
            # RSS / n from the moments (Y V_perp's part is in tr Syy)
            rss = n * max(float(np.trace(Syy)) - 2 * float(np.sum(H * M)) +
                          float(np.sum((G @ M) * M)), 0.0)
            df = rank * (G.shape[0] if lam == 0 else rrs.ridge_trace(eig[0], lam)) + \
                q * int(self.center)
            gcv = n * q * rss / (n * q - df) ** 2 if n * q - df >= 0.5 else np.inf
            rows.append({"ridge": lam, "df": df, "rss": rss, "gcv": gcv})
        table = pd.DataFrame(rows)
        best = argmin_simplest(table["gcv"].to_numpy()[::-1])      # largest ridge first
        return float(table["ridge"].iloc[len(table) - 1 - best]), table

    def _cv(self, pairs, rank, ridges, folds, verbose):
        """K-fold CV over (subspace pair, rank, ridge); every candidate's held-out error
        from the fold's statistics in the subspace coordinates (:class:`_Projected`)."""
        n_folds = len(folds)
        total = total_stats(folds)
        p, q = self.k_exog, self.k_endog
        keys, losses = [], {}
        for k, held in enumerate(folds):
            train = total - held
            Sxx, Sxy, _ = train.moments(center=self.center)
            for pair in pairs:
                U, V = self._bases(pair)
                G, H = (Sxx, Sxy) if U is None else rrs.subspace_moments(Sxx, Sxy, U, V)
                proj = _Projected(held, train, U, V, self.center)
                eig = rrs.psd_eig(G)
                d_u, d_v = (p, q) if pair is None else pair
                ranks = [rank] if rank is not None else range(1, min(d_u, d_v) + 1)
                for lam in ridges:
                    C_R = lin.ols(G, H)[0] if lam == 0 else rrs.ridge_fit(G, H, lam, eig)
                    Mg = C_R.T @ (G @ C_R + lam * C_R)
                    w, Q = linalg.eigh(0.5 * (Mg + Mg.T))
                    Q = Q[:, ::-1]
                    for r in ranks:
                        Vr = Q[:, :r]
                        key = (d_u, d_v, r, lam)
                        if k == 0:
                            keys.append(key)
                        losses.setdefault(key, []).append(proj.loss((C_R @ Vr) @ Vr.T))
            if verbose:
                print(f"{type(self).__name__} CV: fold {k + 1}/{n_folds}", file=sys.stderr)
        # simplest first: smaller subspaces, smaller rank, larger ridge
        keys.sort(key=lambda t: (t[0], t[1], t[2], -t[3]))
        sizes = np.array([f.n for f in folds], dtype=float)
        table = pd.DataFrame(
            [{"d_u": a, "d_v": b, "rank": r, "ridge": lam,
              "cv_mean": float(np.dot(sizes, losses[(a, b, r, lam)]) / sizes.sum()),
              "cv_se": fold_se(losses[(a, b, r, lam)])}
             for a, b, r, lam in keys])
        best = argmin_simplest(table["cv_mean"].to_numpy())
        row = table.iloc[best]
        pair = None if self.source is None else (int(row.d_u), int(row.d_v))
        return (pair, int(row["rank"]), float(row.ridge)), table


# ---- two-stage nuclear-norm transfer --------------------------------------------------
def pooled_moments(source, target, center=True):
    """Moments of the pooled source and target rows, each study centred by its own means
    (its own intercept) when ``center``:

        Sxx = (Cxx_s + Cxx_t) / (n_s + n_t),  likewise Sxy, Syy;

    without an intercept, the raw cross products ``(X_s^T X_s + X_t^T X_t) / (n_s + n_t)``.
    """
    N = source.n + target.n
    if center:
        parts = [(s.Cxx, s.Cxy, s.Cyy) for s in (source, target)]
    else:
        parts = [(s.XtX, s.XtY, s.YtY) for s in (source, target)]
    Sxx, Sxy, Syy = (sum(blocks) / N for blocks in zip(*parts))
    return 0.5 * (Sxx + Sxx.T), Sxy, 0.5 * (Syy + Syy.T)


def _path_cv(moments, losses, lams, tol, max_iter, patience=3, verbose=None):
    """Cross-validated nuclear-norm path, all folds in lockstep.

    ``moments[k]`` are fold k's training moments of a nuclear-norm problem in D and
    ``losses[k](D)`` its share of the held-out error (rows weighted). Each solve
    starts from the first-order extrapolation of the fold's path (as NuclearNorm's CV);
    the path stops once the mean error has risen for ``patience`` consecutive lams.

    Returns
    -------
    best : int
        Index of the chosen lam.
    err : list of float
        Mean held-out error per visited lam (rows weighted).
    """
    path = [[] for _ in moments]
    err = []
    lips = [max(float(linalg.eigvalsh(m[0])[-1]), np.finfo(float).tiny) for m in moments]
    for i, lam in enumerate(lams):
        e = 0.0
        for k, m in enumerate(moments):
            D_init = None if not path[k] else path[k][-1] if len(path[k]) == 1 else \
                2.0 * path[k][-1] - path[k][-2]
            sol = prox.nuclear_norm_apg(*m, lam, C_init=D_init, tol=max(tol, 1e-5),
                                        max_iter=max_iter, lipschitz=lips[k], warn=False)
            path[k] = path[k][-1:] + [sol.coef]
            e += losses[k](sol.coef)
        err.append(e)
        if verbose:
            print(f"{verbose}: lam {i + 1}/{len(lams)}: {e:.5g}", file=sys.stderr)
        if i - argmin_simplest(err) >= patience:
            break
    return argmin_simplest(err), err


class TwoStageTransferResults(PenalizedResults):
    """Results of :class:`TwoStageTransfer`: the penalised-results API, with the stage-1
    pooled fit W (``pooled_params``) and the target's correction Delta
    (``contrast_params``); ``params = W + Delta``."""

    def __init__(self, model, coef, *, pooled, **kwargs):
        super().__init__(model, coef, **kwargs)
        self._pooled = np.asarray(pooled, dtype=float)

    lam_pool = property(lambda self: self._hyper("lam_pool"),
                        doc="Stage-1 penalty (the pooled fit W).")
    lam_delta = property(lambda self: self._hyper("lam_delta"),
                         doc="Stage-2 penalty (the correction Delta).")

    @property
    def pooled_params(self):
        """The stage-1 pooled fit W (DataFrame p x q)."""
        return pd.DataFrame(self._pooled, index=self.model.exog_names,
                            columns=self.model.endog_names)

    def _summary_rows(self):
        left, right = super()._summary_rows()
        left.append(("Source rows:", self.model.source_nobs))
        return left, right

    @property
    def contrast_params(self):
        """The stage-2 correction Delta = params - W (DataFrame p x q)."""
        return pd.DataFrame(self._coef - self._pooled, index=self.model.exog_names,
                            columns=self.model.endog_names)


class TwoStageTransfer(MultiResponseModel):
    """Two-stage nuclear-norm transfer from a source study's rows (Park et al.).

    Stage 1 fits W on the pooled source and target rows (each study centred by its own
    means when the model has an intercept), stage 2 a correction Delta on the target:

        W     = argmin (1/2N) ||Y_pool - X_pool W||_F^2 + lam_pool ||W||_*,   N = n_s + n,
        Delta = argmin (1/2n) ||(Y - X W) - X Delta||_F^2 + lam_delta ||Delta||_*,
        C     = W + Delta,   intercept = ybar - C^T xbar (the target's).

    Both are the package's nuclear-norm problem, solved from moments by accelerated
    proximal gradient with singular value thresholding
    (:func:`mtltransfer.solvers.prox.nuclear_norm_apg`; CVXPY twin
    :func:`mtltransfer.solvers.cvx.nuclear_norm_cvx`); stage 1 from the summed moments
    of the two studies (:func:`pooled_moments`), stage 2 from the target's moments of
    the residual ``Y - X W`` (:func:`mtltransfer.gram.offset_moments`). Unlike SMART and
    the coefficient-based baselines, it needs the source's rows (or their statistics).

    Parameters
    ----------
    endog, exog
        The target's responses and predictors.
    source_data : DataFrame or dask.dataframe.DataFrame, optional
        For a formula model: the source's rows with the formula's columns (the design
        is built with the target's categories and transformations). A Dask DataFrame is
        reduced to its statistics where it lives (one pass).
    source_endog, source_exog : array_like, optional
        The source's responses (n_s x q) and predictors, given as the target's
        ``exog`` is (the same columns; for a formula model, the design matrix).
    source_stats : SufficientStats, optional
        The source's statistics (:class:`~mtltransfer.SufficientStats`) instead of its
        rows: all the method uses.
    intercept : bool or None
    missing : {"raise", "drop"}
        Also applied to the source's rows.

    Notes
    -----
    Exactly one of ``source_data``, ``source_endog``/``source_exog`` and
    ``source_stats`` is given. The model keeps the source's statistics, never its rows;
    the bootstrap resamples the target and holds the source fixed.

    See Also
    --------
    MultiResponseResults : what :meth:`fit` returns.
    SMART

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> mod = mt.TwoStageTransfer.from_formula(formula, target, source_data=demo["source"])
    >>> res = mod.fit()
    >>> res.params.shape
    (30, 12)
    """

    _method = "Two-stage nuclear-norm transfer (pooled fit, target correction)"
    _param_table = {"lam_pool": Param("real", 0, none=True, tuned=True),
                    "lam_delta": Param("real", 0, none=True, tuned=True)}

    def __init__(self, endog, exog=None, *, source_data=None, source_endog=None,
                 source_exog=None, source_stats=None, intercept=None, missing="raise"):
        super().__init__(endog, exog, intercept=intercept, missing=missing)
        self.source_stats = self._source(source_data, source_endog, source_exog,
                                         source_stats, missing)

    def init_options(self):
        return {"source_stats": self.source_stats}

    @property
    def source_nobs(self):
        """Number of source rows used."""
        return int(self.source_stats.n)

    # -- the source ----------------------------------------------------------------------
    def _source(self, data, endog, exog, stats, missing):
        given = [name for name, v in (("source_data", data), ("source_endog", endog),
                                      ("source_exog", exog), ("source_stats", stats))
                 if v is not None]
        arrays = {"source_endog", "source_exog"} & set(given)
        if not given or (len(given) > 1 and set(given) != {"source_endog", "source_exog"}):
            raise TypeError(f"{type(self).__name__}() needs the source as exactly one of "
                            "source_data= (a DataFrame for a formula model), "
                            "source_endog= with source_exog=, or source_stats=; got "
                            f"{given or 'none'}")
        if arrays and len(arrays) == 1:
            lacking = ({"source_endog", "source_exog"} - arrays).pop()
            raise TypeError(f"{given[0]}= needs {lacking}= as well")
        p, q = self.k_exog, self.k_endog
        if stats is not None:
            if not isinstance(stats, SufficientStats):
                raise TypeError(f"source_stats must be a SufficientStats; got "
                                f"{type(stats).__name__}")
            if (stats.p, stats.q) != (p, q) or stats.n < 1:
                raise ValueError(f"source_stats must hold at least one row of {p} "
                                 f"predictors and {q} responses; got n={stats.n}, "
                                 f"p={stats.p}, q={stats.q}")
            return stats
        if data is not None:
            if self.formula is None:
                raise TypeError("source_data= takes the source's rows for a formula model; "
                                "for arrays give source_endog= and source_exog=")
            if design.is_dask_frame(data):
                return self._dask_source(data, missing)
            if not isinstance(data, pd.DataFrame):
                raise TypeError(f"source_data must be a pandas or Dask DataFrame; got "
                                f"{type(data).__name__}")
            X, _, _ = self.data.exog_for(data, "source_data")
            Y = self._formula_responses(data)
        else:
            X, _, _ = self.data.exog_for(exog, "source_exog", transform=False)
            Y = self._array_responses(endog)
            if Y.shape[0] != X.shape[0]:
                raise ValueError(f"source_endog and source_exog must have the same number "
                                 f"of rows; got {Y.shape[0]} and {X.shape[0]}")
        ok = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
        name = "source_data" if data is not None else "source_endog/source_exog"
        if not ok.all():
            if missing == "raise":
                raise ValueError(f"{name} has missing values (NaN or inf) in "
                                 f"{int((~ok).sum())} row(s); pass missing='drop' to drop "
                                 "them")
            X, Y = X[ok], Y[ok]
        if X.shape[0] < 1:
            raise ValueError(f"{name} has no complete row")
        return SufficientStats.from_arrays(X, Y)

    def _formula_responses(self, frame):
        import patsy

        info = self.data.response_info
        if info is None:
            raise ValueError("the formula's responses cannot be rebuilt (a loaded model): "
                             "give source_stats=")
        work = frame.reset_index(drop=True)
        try:
            (Yf,) = patsy.build_design_matrices([info], work, NA_action="drop",
                                                return_type="dataframe")
        except (patsy.PatsyError, NameError, KeyError) as err:
            raise ValueError(f"source_data lacks the formula's responses: "
                             f"{str(err).splitlines()[0]}") from None
        return Yf.reindex(pd.RangeIndex(len(work))).to_numpy(dtype=float)

    def _array_responses(self, endog):
        if isinstance(endog, pd.DataFrame) and not isinstance(endog.columns, pd.RangeIndex):
            cols = [str(c) for c in endog.columns]
            if set(cols) != set(self.endog_names):
                raise ValueError(f"source_endog must have the responses "
                                 f"{self.endog_names}; got {cols}")
            endog = endog.set_axis(cols, axis=1)[self.endog_names]
        Y = design.as_float_2d(endog, "source_endog")
        if Y.shape[1] != self.k_endog:
            raise ValueError(f"source_endog must have {self.k_endog} columns (the "
                             f"responses); got {Y.shape[1]}")
        return Y

    def _dask_source(self, ddf, missing):
        """The source's statistics from a Dask DataFrame: the target's design (its
        formula and categories) built in every partition (:func:`mtltransfer.dask.
        formula_stats`, one fold)."""
        formula_stats = front_end("dask", "formula_stats")
        template = self.data.data_template
        lacking = [c for c in template.columns if c not in ddf.columns]
        if lacking:
            raise ValueError(f"source_data lacks the formula's column(s): {lacking}")
        folds = formula_stats(self.formula, ddf, template, list(template.columns),
                              missing, 1)
        stats = folds[0]
        if stats.n < 1:
            raise ValueError("source_data has no complete row")
        return stats

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, lam_pool=None, lam_delta=None, *, n_folds=5, n_lams=30, backend="fast",
            tol=1e-8, max_iter=5000, verbose=False):
        """Fit both stages; a penalty left as None is tuned.

        Parameters
        ----------
        lam_pool, lam_delta : float or None
            Stage-1 and stage-2 penalties (>= 0). ``None``: K-fold cross-validation on
            the target's folds, the source in every training fold, one stage at a time:
            lam_pool over ``n_lams`` values from lam_max (where W = 0) down to
            1e-3 lam_max, scored by the held-out error of W alone; then, with lam_pool
            fixed and W refitted on each fold's training rows, lam_delta over the same
            kind of grid from the lam_max of the full-data correction. Each path stops
            once the error has risen three lams in a row (as NuclearNorm's CV).
        n_folds, n_lams : int
        backend : {"fast", "cvxpy"}
            Proximal gradient, or both stages in CVXPY (the tuning runs on the fast
            path).
        tol, max_iter : float, int
            Of the proximal gradient solver (each stage).
        verbose : bool

        Returns
        -------
        TwoStageTransferResults
            ``tuning["cv_pool"]``, ``tuning["cv_delta"]`` (lam, cv_mse); ``rank`` is
            that of C (:func:`mtltransfer.solvers.prox.nuclear_rank`) and ``df_model``
            ``rank (p + q - rank)``.
        """
        check_backend(backend)
        if lam_pool is not None:
            lam_pool = check_positive("lam_pool", lam_pool)
        if lam_delta is not None:
            lam_delta = check_positive("lam_delta", lam_delta)
        check_int("n_lams", n_lams, 2, 10 ** 4)
        warn_penalty_scale(self)
        how, tuning = {"lam_pool": "given", "lam_delta": "given"}, {}
        if lam_pool is None or lam_delta is None:
            folds, n_folds = self.cv_folds(n_folds)
            cv_name = f"{n_folds}-fold CV"
            if lam_pool is None:
                lam_pool, tuning["cv_pool"] = self._cv_pool(folds, n_lams, tol, max_iter,
                                                            verbose)
                how["lam_pool"] = cv_name
            if lam_delta is None:
                lam_delta, tuning["cv_delta"] = self._cv_delta(folds, lam_pool, n_lams, tol,
                                                               max_iter, verbose)
                how["lam_delta"] = cv_name
        W, C, sol = self._solve(lam_pool, lam_delta, backend, tol, max_iter)
        r = prox.nuclear_rank(linalg.svdvals(C))
        p, q = self.k_exog, self.k_endog
        return TwoStageTransferResults(
            self, C, pooled=W, hyperparameters={"lam_pool": lam_pool,
                                                "lam_delta": lam_delta, "rank": r},
            chosen_by=how, solver=sol, df_model=r * (p + q - r), tuning=tuning)

    def _pooled(self, target):
        return pooled_moments(self.source_stats, target, self.center)

    def _solve(self, lam_pool, lam_delta, backend, tol, max_iter):
        """Both stages on all rows: (W, C, the combined SolverResult)."""
        pooled = self._pooled(self.stats)
        target = self.moments()
        if backend == "cvxpy":
            from ..solvers.cvx import nuclear_norm_cvx
            W, v1 = nuclear_norm_cvx(*pooled, lam_pool)
            C, v2 = nuclear_norm_cvx(*target, lam_delta, C0=W)
            return W, C, SolverResult(C, True, 0, {}, v2, stop_reason="converged")
        s1 = prox.nuclear_norm_apg(*pooled, lam_pool, tol=tol, max_iter=max_iter)
        W = s1.coef
        s2 = prox.nuclear_norm_apg(*offset_moments(*target, W), lam_delta, tol=tol,
                                   max_iter=max_iter)
        hist = {"stage": [1] * s1.n_iter + [2] * s2.n_iter}
        for key in ("objective", "criterion"):
            hist[key] = list(s1.history.get(key, [])) + list(s2.history.get(key, []))
        converged = bool(s1.converged and s2.converged)
        sol = SolverResult(W + s2.coef, converged, s1.n_iter + s2.n_iter, hist,
                           s2.objective, {"stage1_n_iter": s1.n_iter,
                                          "stage2_n_iter": s2.n_iter},
                           stop_reason="converged" if converged else "max_iter")
        return W, W + s2.coef, sol

    def _cv_pool(self, folds, n_lams, tol, max_iter, verbose):
        total = total_stats(folds)
        trains = [total - f for f in folds]
        lam_max = prox.nuclear_norm_lam_max(self._pooled(self.stats)[1])
        lams = lam_max * np.logspace(0, -3, n_lams)
        moments = [self._pooled(t) for t in trains]
        n = float(total.n)
        losses = [lambda W, f=f, t=t: f.n / n * validation_loss(f, t, W, center=self.center)
                  for f, t in zip(folds, trains)]
        best, err = _path_cv(moments, losses, lams, tol, max_iter,
                             verbose=verbose and "TwoStageTransfer CV (stage 1)")
        table = pd.DataFrame({"lam": lams[:len(err)], "cv_mse": np.array(err) / self.k_endog})
        return float(lams[best]), table

    def _cv_delta(self, folds, lam_pool, n_lams, tol, max_iter, verbose):
        total = total_stats(folds)
        trains = [total - f for f in folds]
        W_full = prox.nuclear_norm_apg(*self._pooled(self.stats), lam_pool, tol=tol,
                                       max_iter=max_iter, warn=False).coef
        lam_max = prox.nuclear_norm_lam_max(offset_moments(*self.moments(), W_full)[1])
        lams = lam_max * np.logspace(0, -3, n_lams)
        n = float(total.n)
        moments, losses = [], []
        for f, t in zip(folds, trains):
            W = prox.nuclear_norm_apg(*self._pooled(t), lam_pool, tol=tol,
                                      max_iter=max_iter, warn=False).coef
            moments.append(offset_moments(*t.moments(center=self.center), W))
            losses.append(lambda D, f=f, t=t, W=W: f.n / n * validation_loss(
                f, t, W + D, center=self.center))
        best, err = _path_cv(moments, losses, lams, tol, max_iter,
                             verbose=verbose and "TwoStageTransfer CV (stage 2)")
        table = pd.DataFrame({"lam": lams[:len(err)], "cv_mse": np.array(err) / self.k_endog})
        return float(lams[best]), table
