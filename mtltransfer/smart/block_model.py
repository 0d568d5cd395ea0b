"""BI-SMART: block-invariant spectral transfer (model and results).

The estimator and its solver steps are in :mod:`mtltransfer.smart.blocks`; this module
holds the model (tuning, the final fit) and its results class.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from ..gram import total_stats, validation_loss
from .._validation import Param
from ..models.base import (RANK_PARAM, SUBSPACE_PAIR_PARAM, PenalizedResults, check_backend,
                           check_int)
from ..models.source import SourceModel
from ..solvers import linear as lin
from ..solvers._base import argmin_simplest
from . import blocks as bk

#: the rules a fit can use; "target" and "zero" are the safeguards (no budget)
RULES = ("leading", "energy", "target", "zero")
#: how a fit is tuned: K-fold CV on all rows (refitted), or the three-fold protocol
PROTOCOLS = ("cv", "three-fold")


def _budget_pair(budget, p, q):
    if isinstance(budget, (tuple, list)) and len(budget) == 2:
        d_u, d_v = budget
    elif isinstance(budget, (int, np.integer)) and not isinstance(budget, (bool, np.bool_)):
        d_u, d_v = min(budget, p), min(budget, q)
    else:
        raise TypeError(f"budget must be an int or a pair (d_u, d_v); got {budget!r}")
    return check_int("budget d_u", d_u, 1, p), check_int("budget d_v", d_v, 1, q)


class BISMARTResults(PenalizedResults):
    """Results of :class:`BISMART`: the penalised-results API with the source's certified
    blocks (``blocks``), the selected columns of U0 and V0 (``selected``), the certificate
    ``eps0`` and Wedin's bounds on the selection (``subspace_error_bound``).

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> source = mt.ReducedRank.from_formula(formula, demo["source"]).fit()
    >>> res = mt.BISMART.from_formula(formula, target, source=source).fit()
    >>> isinstance(res, mt.BISMARTResults), res.params.shape
    (True, (30, 12))
    """

    def __init__(self, model, coef, *, selection, **kwargs):
        super().__init__(model, coef, **kwargs)
        self._selection = dict(selection)

    rule = property(lambda self: self._hyper("rule"),
                    doc="The block rule: 'leading', 'energy', 'target' or 'zero'.")
    budget = property(lambda self: self._hyper("budget"),
                      doc="The budget (d_u, d_v) of the rule (None for a safeguard).")
    c_gap = property(lambda self: self._hyper("c_gap"),
                     doc="The cut rule's multiple of the certificate.")
    source_sd = property(lambda self: self._hyper("source_sd"),
                         doc="The source's entrywise error sd tau0 of the certificate.")

    @property
    def eps0(self):
        """The source error certificate (:func:`mtltransfer.smart.blocks.source_certificate`)."""
        return self._selection["eps0"]

    @property
    def selected(self):
        """(I_u, I_v): the columns of U0 and V0 whose span holds the fit."""
        return self._selection["I_u"], self._selection["I_v"]

    @property
    def subspace_error_bound(self):
        """(left, right) Wedin bounds ``eps0 / gap`` on sin theta between the selected
        spans and the noiseless source's (:func:`mtltransfer.smart.blocks.wedin_bound`)."""
        return self._selection["wedin_u"], self._selection["wedin_v"]

    @property
    def blocks(self):
        """The certified blocks (DataFrame): index range of the extended spectrum, size,
        largest and smallest source singular value, and whether the fit uses the block's
        left and right span."""
        m = self.model
        p, q = m.k_exog, m.k_endog
        t = bk.extended_spectrum(m.source_svd[1], p, q)
        I_u, I_v = (set(i.tolist()) for i in self.selected)
        rows = [{"start": a, "stop": b, "size": b - a, "s_max": float(t[a]),
                 "s_min": float(t[b - 1]), "left": a < p and a in I_u,
                 "right": a < q and a in I_v}
                for a, b in self._selection["blocks"]]
        return pd.DataFrame(rows).rename_axis("block")

    def _summary_rows(self):
        left, right = super()._summary_rows()
        n_blocks = len(self._selection["blocks"])
        left += [("Source blocks:", n_blocks), ("Certificate eps0:", self.eps0)]
        return left, right


class BISMART(SourceModel):
    """Block-invariant SMART: transfer of the source's certified spectral blocks.

    The source's SVD is cut into blocks only at gaps larger than ``c_gap`` source-error
    certificates, whole blocks are selected on each side, and the target's reduced-rank
    regression is fitted inside their spans:

        C = U M V^T,   M = argmin_{rank(M) <= r} (1/2n)||Y V - X U M||_F^2,
        U = U0[:, I_u],  V = V0[:, I_v]  (unions of whole blocks),

    so the fit depends on C0 only through spans it determines: tied or clustered source
    singular values, rotated within their block, give the same fit (SMART's penalty
    acts on individual singular vectors and may not). See
    :mod:`mtltransfer.smart.blocks` for the certificate, the blocks, the pilot and the
    selection rules, and docs/comparators.rst.

    Parameters
    ----------
    endog, exog
        Target responses and predictors.
    source : results, DataFrame, array_like or a list of them
        The source's coefficient matrix, as for :class:`~mtltransfer.SMART`.
    intercept : bool or None
    missing : {"raise", "drop"}
    screen, weights
        As for :class:`~mtltransfer.SMART`.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> source = mt.ReducedRank.from_formula(formula, demo["source"]).fit()
    >>> res = mt.BISMART.from_formula(formula, target, source=source).fit()
    >>> int(res.rank), res.hyperparameters["rule"]
    (3, 'leading')
    >>> res.predict(demo["test"]).shape
    (400, 12)
    """

    _method = "BI-SMART (certified source blocks, restricted RRR)"
    _param_table = {"rank": RANK_PARAM,
                    "rule": Param("option", none=True, options=RULES, tuned=True),
                    "budget": SUBSPACE_PAIR_PARAM,
                    "source_sd": Param("real", 0, none=True, tuned=True,
                                       why="the source's entrywise error sd"),
                    "c_gap": Param("real", 0, low_open=True, none=True, tuned=True),
                    "x0": Param("real", 0, low_open=True),
                    "protocol": Param("option", options=PROTOCOLS)}

    def fit(self, rank=None, rule=None, budget=None, *, source_sd=None, c_gap=None,
            x0=bk.X0, n_folds=5, protocol="cv", backend="fast", tol=None, max_iter=None,
            verbose=False):
        """Fit; every hyperparameter left as None is tuned.

        Parameters
        ----------
        rank : int or None
            Rank r. None: the rank selection criterion, capped by the source's rank (as
            SMART).
        rule : {"leading", "energy", "target", "zero"} or None
            How blocks are selected at the budget: the longest run of leading blocks
            ("leading"), or the blocks of largest pilot energy (an exact knapsack,
            "energy"); "target" uses every direction (the target-only reduced-rank fit)
            and "zero" none (C = 0). None: K-fold cross-validation over every rule and
            budget, the safeguards "target" and "zero" always included; the lowest
            cross-validated error wins (near-ties to the simpler: zero, then smaller
            budgets, "leading" before "energy", "target" last).
        budget : int, (int, int) or None
            Total size (d_u, d_v) of the selected blocks on each side (an int ties
            them). None: SMART's tied grid ``{r, 1.5r, 2r, 3r, 4r, rank(C0)}``
            (:func:`mtltransfer.smart.tuning.default_structural_grid`, without (p, q),
            which is the "target" safeguard).
        source_sd : float or None
            tau0, the source's entrywise error sd. None: estimated from the source's
            trailing singular values (:func:`mtltransfer.bootstrap.source_noise_sd`;
            0 for an exactly low-rank source).
        c_gap : float or None
            The cut rule's multiple of the certificate. None: cross-validated between
            the certified partition (``c_gap = 3``, ``blocks.C_GAP``: every cut has a
            gap of three certificates, Wedin's bound <= 1/3)
            and the finer one at ``c_gap = 1`` (cuts at gaps larger than the
            certificate itself), which keeps single source directions apart when the
            source's error is a sizeable fraction of its spectral gaps; both are
            invariant to rotations within blocks.
        x0 : float
            The certificate's tail ``exp(-x0)`` (default 3).
        n_folds : int
            Folds of the cross-validation (the package's seeded folds).
        protocol : {"cv", "three-fold"}
            ``"cv"``: the rule, budget and c_gap by K-fold cross-validation, the chosen
            candidate refitted on all rows. ``"three-fold"``: the reference's protocol
            on a seeded split of the rows in three
            (:func:`mtltransfer.smart.block_refine.three_fold`): fold 1 screens whole
            blocks by the pilot's energy (a knapsack at each budget), fold 2 gates each
            selection by Wedin's bound (<= 1/2), fits the restricted RRR and refines it
            by quotient Gauss-Newton on the joint target-source objective (source
            weights {0.1, 1, 10} x tr(Sxx)/p), fold 3 validates every candidate and
            the safeguards (one block at the full budget, target-only minimum-norm RRR,
            zero); the winner's fit on fold 2 is the result (no refit: ``nobs`` counts
            fold 2). c_gap is 3 and the rule is the knapsack.
        backend : {"fast", "cvxpy"}
            The restricted fit in closed form, or by the convex least squares step and
            the Fantope program in CVXPY
            (:func:`mtltransfer.solvers.cvx.reduced_rank_ridge_cvx` at ridge 0).
        tol, max_iter : optional
            Accepted for a common interface; the fit is a closed form.
        verbose : bool

        Returns
        -------
        BISMARTResults
            ``tuning["cv"]`` (rule, budget_u, budget_v, cv_mean, cv_se) when tuned
            (``tuning["three_fold"]``, every candidate of the three-fold protocol, and
            ``tuning["three_fold_rows"]``, its folds' rows, with that protocol);
            ``df_model = r (d_u + d_v - r)`` in the selected spans.
        """
        check_backend(backend)
        p, q = self.k_exog, self.k_endog
        how, tuning = {}, {}
        if rule is not None and rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}; got {rule!r}")
        x0 = float(x0)
        gaps = (bk.C_GAP, bk.C_GAP_FINE) if c_gap is None else (float(c_gap),)
        if rank is None:
            rank, tuning["rank"] = self.target_rank()
            how["rank"] = "RSC"
        rank = check_int("rank", rank, 1, min(p, q))
        if source_sd is None:
            from ..bootstrap import source_noise_sd
            source_sd, how["source_sd"] = source_noise_sd(self.source), "estimated"
        source_sd = float(source_sd)
        U0, s0, V0 = self.source_svd
        eps0 = bk.source_certificate(source_sd, p, q, s0[0], x0)
        partitions = {}
        for g in gaps:                     # identical partitions are tried once
            blocks = bk.spectral_blocks(s0, p, q, eps0, g)
            if blocks not in partitions.values():
                partitions[g] = blocks
        pair = None if budget is None else _budget_pair(budget, p, q)
        if protocol == "three-fold":
            return self._three_fold_fit(rank, rule, pair, c_gap, source_sd, eps0, how,
                                        tuning, backend)
        cands = self._candidates(rank, rule, pair, list(partitions))
        if len(cands) > 1:
            folds, n_folds = self.folds(n_folds)
            (rule, pair, c_gap), tuning["cv"] = self._cv(cands, rank, partitions, folds,
                                                          verbose)
            how["rule"] = how["budget"] = f"{n_folds}-fold CV"
            if len(partitions) > 1:
                how["c_gap"] = f"{n_folds}-fold CV"
        else:
            rule, pair, c_gap = cands[0]
        blocks = partitions[c_gap]
        Sxx, Sxy, Syy = self.moments()
        pilot = lin.reduced_rank(Sxx, Sxy, rank)[0]
        I_u, I_v = bk.candidate_subspaces(rule, pair, blocks, U0, V0, pilot)
        C = self._restricted_fit(U0[:, I_u], V0[:, I_v], rank, backend)
        t = bk.extended_spectrum(s0, p, q)
        tv = t[:q] if q < len(t) else t
        r_fit = min(rank, len(I_u), len(I_v))
        selection = {"eps0": eps0, "blocks": blocks, "I_u": I_u, "I_v": I_v,
                     "wedin_u": bk.wedin_bound(t[:p], I_u, eps0),
                     "wedin_v": bk.wedin_bound(tv, I_v, eps0)}
        hyper = {"rank": rank, "rule": rule, "budget": pair, "c_gap": c_gap,
                 "source_sd": source_sd, "subspace_rank": (len(I_u), len(I_v))}
        chosen = {k: how.get(k, "given") for k in hyper}
        chosen["subspace_rank"] = "from the rule"
        return BISMARTResults(self, C, selection=selection, hyperparameters=hyper,
                              chosen_by=chosen, tuning=tuning,
                              df_model=r_fit * (len(I_u) + len(I_v) - r_fit))

    def _three_fold_fit(self, rank, rule, pair, c_gap, source_sd, eps0, how, tuning,
                        backend):
        """The three-fold protocol (see ``fit``): the rows in three seeded folds."""
        from .block_refine import three_fold
        from .tuning import default_structural_grid

        if rule is not None or backend != "fast" or self.weights is not None:
            raise ValueError("protocol='three-fold' chooses the blocks itself (rule=None), "
                             "runs the fast path (backend='fast') and takes unweighted "
                             "rows")
        p, q = self.k_exog, self.k_endog
        if self.nobs < 9:
            raise ValueError(f"protocol='three-fold' needs at least 9 rows (3 per fold); "
                             f"got {self.nobs}")
        gaps = (bk.C_GAP, bk.C_GAP_FINE) if c_gap is None else (float(c_gap),)
        U0, s0, V0 = self.source_svd
        partitions = []
        for g in gaps:
            blocks = bk.spectral_blocks(s0, p, q, eps0, g)
            if blocks not in partitions:
                partitions.append(blocks)
        blocks = partitions[0]
        budgets = [pair] if pair is not None else [
            g for g in default_structural_grid(rank, p, q, self.source_rank) if g != (p, q)]
        perm = np.random.default_rng(0).permutation(self.nobs)
        parts = [np.sort(f) for f in np.array_split(perm, 3)]
        X, Y = self.exog, self.endog
        C, rows, best, r0 = three_fold([(X[f], Y[f]) for f in parts], self.source,
                                       (U0, s0, V0), partitions, eps0, rank, budgets,
                                       center=self.center)
        row = rows[best]
        I_u, I_v = np.asarray(row["I_u"], dtype=int), np.asarray(row["I_v"], dtype=int)
        t = bk.extended_spectrum(s0, p, q)
        table = pd.DataFrame([{k: v for k, v in r.items() if k not in ("I_u", "I_v")}
                              for r in rows])
        tuning["three_fold"] = table
        tuning["three_fold_rows"] = {"screen": parts[0], "fit": parts[1],
                                     "validation": parts[2], "r0": r0}
        fit_model = self.replace_data(rows=parts[1])
        d_u, d_v = len(I_u), len(I_v)
        r_fit = min(rank, d_u, d_v)
        selection = {"eps0": eps0, "blocks": blocks, "I_u": I_u, "I_v": I_v,
                     "wedin_u": bk.wedin_bound(t[:p], I_u, eps0),
                     "wedin_v": bk.wedin_bound(t[:q] if q < len(t) else t, I_v, eps0)}
        hyper = {"rank": rank, "rule": row["label"], "budget": row.get("budget"),
                 "c_gap": gaps[0], "source_sd": source_sd, "subspace_rank": (d_u, d_v)}
        chosen = {k: how.get(k, "given") for k in hyper}
        chosen["rule"] = chosen["budget"] = "three-fold validation"
        chosen["subspace_rank"] = "from the rule"
        return BISMARTResults(fit_model, C, selection=selection, hyperparameters=hyper,
                              chosen_by=chosen, tuning=tuning,
                              df_model=r_fit * (d_u + d_v - r_fit))

    # -- candidates and cross-validation -------------------------------------------------
    def _candidates(self, rank, rule, pair, gaps):
        """(rule, budget, c_gap) candidates, simplest first (coarser partitions first)."""
        p, q = self.k_exog, self.k_endog
        if rule in ("target", "zero"):
            return [(rule, None, gaps[0])]
        if pair is not None:
            pairs = [pair]
        else:
            from .tuning import default_structural_grid
            pairs = [g for g in default_structural_grid(rank, p, q, self.source_rank)
                     if g != (p, q)]
        rules = ("leading", "energy") if rule is None else (rule,)
        cands = [(r, b, g) for b in pairs for g in gaps for r in rules]
        if rule is None:
            cands = [("zero", None, gaps[0])] + cands + [("target", None, gaps[0])]
        return cands

    def _cv(self, cands, rank, partitions, folds, verbose):
        U0, _, V0 = self.source_svd
        total = total_stats(folds)
        losses = np.zeros((len(cands), len(folds)))
        for k, held in enumerate(folds):
            train = total - held
            Sxx, Sxy, _ = train.moments(center=self.center)
            pilot = lin.reduced_rank(Sxx, Sxy, rank)[0]
            for j, (rule, pair, g) in enumerate(cands):
                I_u, I_v = bk.candidate_subspaces(rule, pair, partitions[g], U0, V0,
                                                  pilot)
                C, _ = bk.restricted_rrr(Sxx, Sxy, U0[:, I_u], V0[:, I_v], rank)
                losses[j, k] = validation_loss(held, train, C, center=self.center)
            if verbose:
                print(f"BISMART CV: fold {k + 1}/{len(folds)}", file=sys.stderr)
        sizes = np.array([f.n for f in folds], dtype=float)
        mean = losses @ sizes / sizes.sum()
        from ..selection import fold_se
        se = fold_se(losses, axis=1)
        table = pd.DataFrame({
            "rule": [c[0] for c in cands],
            "budget_u": [np.nan if c[1] is None else c[1][0] for c in cands],
            "budget_v": [np.nan if c[1] is None else c[1][1] for c in cands],
            "c_gap": [c[2] for c in cands],
            "cv_mean": mean, "cv_se": se})
        return cands[argmin_simplest(mean)], table

    def _restricted_fit(self, U, V, rank, backend):
        """The restricted reduced-rank fit on all rows (its closed form in the rows'
        equilibrated basis, or CVXPY)."""
        p, q = self.k_exog, self.k_endog
        r = min(rank, U.shape[1], V.shape[1])
        if r == 0:
            return np.zeros((p, q))
        if backend == "cvxpy":
            from ..solvers.cvx import reduced_rank_ridge_cvx
            from ..solvers.rrridge import subspace_moments
            Sxx, Sxy, Syy = self.moments()
            G, H = subspace_moments(Sxx, Sxy, U, V)
            M, _ = reduced_rank_ridge_cvx(G, H, V.T @ Syy @ V, r, 0.0)
            return U @ M @ V.T
        self.warn_design()
        Xc, Yc = self.centred_rows
        if U.shape[1] == p and V.shape[1] == q:     # the whole space: ReducedRank's fit
            C, _, _ = lin.reduced_rank_rows(self.design_svd, Yc, r)
            return C
        M, _, _ = lin.reduced_rank_rows(lin.design_svd(Xc @ U), Yc @ V, r)
        return U @ M @ V.T
