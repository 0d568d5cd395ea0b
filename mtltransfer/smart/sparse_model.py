"""SparseSMART: model and results (the solver is :mod:`mtltransfer.smart.sparse`)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from .._validation import Param
from ..gram import SufficientStats, validation_loss
from ..models.base import (RANK_PARAM, PenalizedResults, check_backend, check_int,
                           check_positive, warn_penalty_scale)
from ..models.source import SourceModel
from ..solvers import linear as lin
from ..solvers._base import argmin_simplest
from . import sparse as sp

#: the share of rows held out to choose lam (the revision's 80/20 split)
VALIDATION_SHARE = 0.2


class SparseSMARTResults(PenalizedResults):
    """Results of :class:`SparseSMART`: the penalised-results API with the anchors and
    the source directions the fit uses (``support``).

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> source = mt.ReducedRank.from_formula(formula, demo["source"]).fit()
    >>> res = mt.SparseSMART.from_formula(formula, target, source=source).fit()
    >>> isinstance(res, mt.SparseSMARTResults), res.params.shape
    (True, (30, 12))
    """

    def __init__(self, model, coef, *, solution, anchors, **kwargs):
        super().__init__(model, coef, **kwargs)
        self._A = np.asarray(solution, dtype=float)
        self._anchors = (np.asarray(anchors[0], int), np.asarray(anchors[1], int))

    @property
    def anchors(self):
        """(a_u, a_v): the unpenalised source directions (indices into U0, V0)."""
        return self._anchors

    @property
    def source_coordinates(self):
        """A = U0^T C V0 (p x q array): the fit in the source's singular coordinates."""
        return self._A.copy()

    @property
    def support(self):
        """(rows, columns): the source directions with a nonzero row (column) of A."""
        A = self._A
        tiny = 1e-12 * max(np.abs(A).max(initial=0.0), np.finfo(float).tiny)
        return (np.flatnonzero(np.abs(A).max(axis=1) > tiny),
                np.flatnonzero(np.abs(A).max(axis=0) > tiny))

    def _summary_rows(self):
        left, right = super()._summary_rows()
        rows, cols = self.support
        left += [("Source directions used:", f"{len(rows)} left, {len(cols)} right")]
        return left, right


class SparseSMART(SourceModel):
    """SparseSMART: a low-rank fit that uses few of the source's singular directions.

    In the source's full orthogonal singular bases ``C = U0 A V0^T`` and

        minimise  (1/2n)||Y - X U0 A V0^T||_F^2
                  + lam ( sum_{i not in a_u} ||A_i.||_2 + sum_{j not in a_v} ||A_.j||_2 )
        subject to rank(A) <= r,

    the group penalties being those on the non-anchor rows of ``P D`` and ``Q D`` for
    ``A = P D Q^T`` (equal norms). The r anchors of each side are the pilot's
    high-energy directions picked by a column-pivoted QR; the pilot is the target's
    rank-r reduced-rank fit. Solved by proximal gradient with soft (group) then hard
    (rank) thresholding and backtracking (:func:`mtltransfer.smart.sparse.sparse_smart`).

    Parameters
    ----------
    endog, exog, source, intercept, missing, screen, weights
        As for :class:`~mtltransfer.SMART`.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> source = mt.ReducedRank.from_formula(formula, demo["source"]).fit()
    >>> res = mt.SparseSMART.from_formula(formula, target, source=source).fit()
    >>> int(res.rank), bool(res.converged)
    (3, True)
    >>> res.predict(demo["test"]).shape
    (400, 12)
    """

    _method = "SparseSMART (group-sparse source directions, proximal gradient)"
    _needs_rows = ("the penalty is chosen on a validation split of the rows and scored on "
                   "the held-out rows")
    _param_table = {"rank": RANK_PARAM,
                    "lam": Param("real", 0, none=True, tuned=True),
                    "validation": Param("real", 0, 0.5, low_open=True),
                    "lam_ratio": Param("real", 0, 1, low_open=True)}

    def fit(self, rank=None, lam=None, *, validation=VALIDATION_SHARE, n_lam=20,
            lam_ratio=1e-3, backend="fast", tol=1e-8, max_iter=5000, verbose=False):
        """Fit; every hyperparameter left as None is tuned.

        Parameters
        ----------
        rank : int or None
            Rank r. None: the rank selection criterion, capped by the source's rank.
        lam : float or None
            The group penalty (>= 0). None: chosen on a validation split (a seeded
            ``validation`` share of the rows, 20% by default, as the revision's
            protocol) along ``n_lam`` log-spaced values from lam_max (the largest norm
            of a free row or column of ``U0^T Sxy V0``,
            :func:`mtltransfer.smart.sparse.lam_max`) down to ``lam_ratio`` lam_max,
            warm-started; the smallest held-out
            error wins (ties to the larger lam); the fit is then redone on all rows.
        validation : float
            Share of rows held out, in (0, 0.5].
        n_lam, lam_ratio : int, float
        backend : {"fast", "cvxpy"}
            "cvxpy" solves the convex problem without the rank constraint
            (:func:`mtltransfer.smart.sparse.sparse_smart_cvx`) and needs
            ``rank = min(p, q)``.
        tol, max_iter : float, int
            Of the proximal gradient.
        verbose : bool

        Returns
        -------
        SparseSMARTResults
            ``tuning["validation"]`` (lam, val_mse, n_rows, n_cols) when lam is tuned;
            ``df_model`` ``r (a + b - r)`` for a used rows and b used columns.
        """
        check_backend(backend)
        warn_penalty_scale(self)       # the group penalties are not invariant to units
        p, q = self.k_exog, self.k_endog
        how, tuning = {}, {}
        if rank is None:
            rank, tuning["rank"] = self.target_rank()
            how["rank"] = "RSC"
        rank = check_int("rank", rank, 1, min(p, q))
        if backend == "cvxpy" and rank < min(p, q):
            raise ValueError("backend='cvxpy' solves the convex problem: it needs "
                             f"rank = min(p, q) = {min(p, q)}; got rank={rank}")
        if lam is not None:
            lam = check_positive("lam", lam)
        validation = float(validation)
        if not 0.0 < validation <= 0.5:
            raise ValueError(f"validation must be in (0, 0.5]; got {validation}")
        check_int("n_lam", n_lam, 1, 10 ** 4)
        if lam is None:
            lam, tuning["validation"] = self._tune(rank, validation, n_lam, lam_ratio,
                                                   tol, max_iter, verbose)
            how["lam"] = f"validation ({validation:.0%} held out)"
        U0, _, V0 = self.source_svd
        Sxx, Sxy, _ = self.moments()
        G, H, A_p, a_u, a_v = self._setup(Sxx, Sxy, rank)
        if backend == "cvxpy":
            A, _ = sp.sparse_smart_cvx(G, H, lam, a_u, a_v)
            from ..solvers._base import SolverResult
            sol = SolverResult(A, True, 0, {}, sp.objective(
                G, H, A, lam, ~np.isin(np.arange(p), a_u), ~np.isin(np.arange(q), a_v)),
                stop_reason="converged")
        else:
            sol = sp.sparse_smart(G, H, rank, lam, a_u, a_v, A_init=A_p, tol=tol,
                                  max_iter=max_iter)
            A = sol.coef
        C = U0 @ A @ V0.T
        a = int(np.sum(np.abs(A).max(axis=1) > 0))
        b = int(np.sum(np.abs(A).max(axis=0) > 0))
        r_fit = min(rank, a, b)
        hyper = {"rank": rank, "lam": lam}
        return SparseSMARTResults(
            self, C, solution=A, anchors=(a_u, a_v), hyperparameters=hyper,
            chosen_by={k: how.get(k, "given") for k in hyper}, solver=sol, tuning=tuning,
            df_model=r_fit * (a + b - r_fit))

    def _setup(self, Sxx, Sxy, rank):
        """Moments in source coordinates, the pilot A_p and the anchors."""
        U0, _, V0 = self.source_svd
        G = U0.T @ Sxx @ U0
        G = 0.5 * (G + G.T)
        H = U0.T @ Sxy @ V0
        A_p = U0.T @ lin.reduced_rank(Sxx, Sxy, rank)[0] @ V0
        return G, H, A_p, sp.select_anchors(A_p, rank), sp.select_anchors(A_p.T, rank)

    def _split(self, validation):
        """(training, held-out) statistics of a seeded split of the rows; inside
        ``fit(tuning="holdout")``, this model's rows and the shared validation rows
        (:mod:`mtltransfer.holdout`)."""
        split = self.__dict__.get("_holdout")
        if split is not None:
            split.used = True
            return split.train, split.held
        n = self.nobs
        perm = np.random.default_rng(0).permutation(n)
        n_val = max(int(round(validation * n)), 1)
        held, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        w = self._unit_weights
        X, Y = self.exog, self.endog
        return tuple(SufficientStats.from_arrays(X[i], Y[i], None if w is None else w[i])
                     for i in (train, held))

    def _tune(self, rank, validation, n_lam, lam_ratio, tol, max_iter, verbose):
        U0, _, V0 = self.source_svd
        p, q = self.k_exog, self.k_endog
        train, held = self._split(validation)
        Sxx, Sxy, _ = train.moments(center=self.center)
        G, H, A_p, a_u, a_v = self._setup(Sxx, Sxy, rank)
        top = sp.lam_max(G, H, ~np.isin(np.arange(p), a_u), ~np.isin(np.arange(q), a_v))
        lams = top * np.logspace(0, np.log10(lam_ratio), n_lam) if n_lam > 1 else \
            np.array([top])
        rows, A = [], A_p
        for k, lam in enumerate(lams):           # largest first: the simplest first
            sol = sp.sparse_smart(G, H, rank, lam, a_u, a_v, A_init=A, tol=max(tol, 1e-6),
                                  max_iter=max_iter, warn=False)
            A = sol.coef
            err = validation_loss(held, train, U0 @ A @ V0.T, center=self.center)
            rows.append({"lam": lam, "val_mse": err / q,
                         "n_rows": int(np.sum(np.abs(A).max(axis=1) > 0)),
                         "n_cols": int(np.sum(np.abs(A).max(axis=0) > 0)),
                         "converged": sol.converged})
            if verbose:
                print(f"SparseSMART: lam {k + 1}/{len(lams)}: {err / q:.5g}",
                      file=sys.stderr)
        table = pd.DataFrame(rows)
        return float(lams[argmin_simplest(table["val_mse"].to_numpy())]), table
