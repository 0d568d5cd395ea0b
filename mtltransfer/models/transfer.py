"""Source-aware transfer baselines: like SMART, they use only the source's fitted
coefficient matrix ``C0`` (never its rows).

* :class:`RidgeToSource` -- ``(1/2n)||Y - XC||_F^2 + (alpha/2)||C - C0||_F^2``;
* :class:`NuclearContrast` -- ``(1/2n)||Y - XC||_F^2 + lam ||C - C0||_*``;
* :class:`SourceSubspaceRRR` -- reduced-rank regression with ``C = U0_u M V0_v^T``, its
  column and row spaces inside the source's leading ``(d_u, d_v)`` singular subspaces;
* :class:`SourceMixture` -- ``(1 - w) C_target + w C0`` with the target-only
  reduced-rank fit.

Each is a baseline against which SMART's transfer is judged: the first two shrink
towards the source entrywise or spectrally, the third transfers the subspaces exactly
(SMART with lam = infinity), the last averages the two studies' answers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..gram import total_stats, validation_loss
from ..selection import fold_se
from ..solvers import linear as lin
from ..solvers._base import argmin_simplest
from .._validation import Param
from .base import RANK_PARAM, SUBSPACE_PAIR_PARAM, PenalizedResults, check_int
from .linear import NuclearNorm, Ridge
from .source import SourceModel


class RidgeToSource(SourceModel, Ridge):
    r"""Ridge towards the source: :math:`\frac{1}{2n}\lVert Y - XC\rVert_F^2 + \frac{\alpha}{2}\lVert C - C_0\rVert_F^2`.

    The shrinkage target is the source's coefficient matrix instead of zero; alpha is
    chosen by generalised cross-validation, as :class:`~mtltransfer.Ridge` does (the GCV
    curve of the ridge fit of ``Y - X C0``). ``alpha -> infinity`` gives C0, ``alpha = 0``
    least squares. Fit options as :meth:`mtltransfer.Ridge.fit`.

    See Also
    --------
    MultiResponseResults : what :meth:`fit` returns.
    SMART

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> source = mt.ReducedRank.from_formula(formula, demo["source"]).fit()
    >>> res = mt.RidgeToSource.from_formula(formula, target, source=source).fit()
    >>> res.params.shape
    (30, 12)
    """

    _method = "Ridge towards the source coefficients"

    def offset(self):
        return self.source


class NuclearContrast(SourceModel, NuclearNorm):
    r"""Nuclear-norm contrast with the source: :math:`\frac{1}{2n}\lVert Y - XC\rVert_F^2 + \lambda\lVert C - C_0\rVert_*`.

    The target differs from the source by a low-rank matrix. Solved by accelerated
    proximal gradient on ``D = C - C0`` (a nuclear-norm fit of ``Y - X C0``); lam by
    K-fold cross-validation along a warm-started path, as :class:`~mtltransfer.NuclearNorm`
    does. ``res.rank`` is the rank of the contrast ``C - C0``. Fit options as
    :meth:`mtltransfer.NuclearNorm.fit`.

    See Also
    --------
    MultiResponseResults : what :meth:`fit` returns.
    SMART

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> source = mt.ReducedRank.from_formula(formula, demo["source"]).fit()
    >>> res = mt.NuclearContrast.from_formula(formula, target, source=source).fit()
    >>> res.params.shape
    (30, 12)
    """

    _method = "Nuclear-norm contrast with the source coefficients"

    def offset(self):
        return self.source


def _subspace_rrr(Sxx, Sxy, U0u, V0v, rank):
    """Reduced-rank fit restricted to ``C = U0u M V0v^T`` from moments (folds)."""
    G = U0u.T @ Sxx @ U0u
    H = U0u.T @ Sxy @ V0v
    M, _ = lin.reduced_rank(0.5 * (G + G.T), H, rank)
    return U0u @ M @ V0v.T


class SourceSubspaceRRR(SourceModel):
    r"""Reduced-rank regression inside the source's leading singular subspaces.

    Minimise :math:`\lVert Y - XC\rVert_F^2` over :math:`\operatorname{rank} C \le r` and
    :math:`C = U_0[:, {:}d_u]\, M\, V_0[:, {:}d_v]^\top`:
    since ``V0`` is orthogonal this is the exact reduced-rank regression of
    ``Y V0[:, :d_v]`` on ``X U0[:, :d_u]``. It is SMART with an infinite penalty (no
    leakage); with ``(d_u, d_v) = (p, q)`` it is target-only reduced-rank regression.

    Tuning as SMART's: the rank by the rank selection criterion capped by the source's
    rank; the subspace dimensions (tied) by K-fold cross-validation over SMART's grid
    (:func:`mtltransfer.smart.tuning.default_structural_grid`, which includes ``(p, q)``, the
    fallback against a misleading source).

    See Also
    --------
    MultiResponseResults : what :meth:`fit` returns.
    SMART

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> source = mt.ReducedRank.from_formula(formula, demo["source"]).fit()
    >>> res = mt.SourceSubspaceRRR.from_formula(formula, target, source=source).fit()
    >>> int(res.rank)
    3
    """

    _method = "Reduced rank inside the source's singular subspaces"
    _param_table = {"rank": RANK_PARAM, "subspace_rank": SUBSPACE_PAIR_PARAM}

    def fit(self, rank=None, subspace_rank=None, *, n_folds=5, backend="fast", tol=None,
            max_iter=None, verbose=False):
        """Fit; every hyperparameter left as None is tuned.

        Parameters
        ----------
        rank : int or None
            Rank r in [1, min(p, q)].
        subspace_rank : int, (int, int) or None
            (d_u, d_v), each at least r; a scalar ties them.
        n_folds : int
            Folds of the cross-validation of ``subspace_rank``.
        backend : {"fast"}
            A closed form (exact reduced-rank regression on projected data).
        tol, max_iter, verbose
            Accepted for a common interface; unused.

        Returns
        -------
        PenalizedResults
        """
        from ..smart.tuning import default_structural_grid

        if backend != "fast":
            raise ValueError("SourceSubspaceRRR is a closed form; backend must be 'fast'")
        p, q = self.k_exog, self.k_endog
        how, tuning = {"rank": "given", "subspace_rank": "given"}, {}
        if rank is None:
            rank, tuning["rank"] = self.target_rank()
            how["rank"] = "RSC"
        rank = check_int("rank", rank, 1, min(p, q))
        U0, _, V0 = self.source_svd
        if subspace_rank is None:
            grid = default_structural_grid(rank, p, q, self.source_rank)
            subspace_rank, tuning["cv"] = self._cv(rank, grid, n_folds)
            how["subspace_rank"] = f"{n_folds}-fold CV"
        if np.isscalar(subspace_rank):
            d_u = d_v = subspace_rank
        elif isinstance(subspace_rank, (tuple, list)) and len(subspace_rank) == 2:
            d_u, d_v = subspace_rank
        else:
            raise ValueError(f"subspace_rank must be an int or a pair (d_u, d_v); got "
                             f"{subspace_rank!r}")
        d_u, d_v = check_int("d_u", d_u, rank, p), check_int("d_v", d_v, rank, q)
        Xc, Yc = self.centred_rows
        Xs, Ys = Xc @ U0[:, :d_u], Yc @ V0[:, :d_v]
        M, _, _ = lin.reduced_rank_rows(lin.design_svd(Xs), Ys, rank)
        C = U0[:, :d_u] @ M @ V0[:, :d_v].T
        return PenalizedResults(
            self, C, hyperparameters={"rank": rank, "subspace_rank": (d_u, d_v)},
            chosen_by=how, df_model=rank * (d_u + d_v - rank), tuning=tuning)

    def _cv(self, rank, grid, n_folds):
        U0, _, V0 = self.source_svd
        folds, n_folds = self.folds(n_folds)
        total = total_stats(folds)
        trains = [total - f for f in folds]
        rows = []
        for d_u, d_v in grid:
            losses = [validation_loss(f, t, _subspace_rrr(
                *t.moments(center=self.center)[:2], U0[:, :d_u], V0[:, :d_v], rank),
                center=self.center) for f, t in zip(folds, trains)]
            rows.append({"d_u": d_u, "d_v": d_v, "cv_mean": float(np.mean(losses)),
                         "cv_se": fold_se(losses)})
        table = pd.DataFrame(rows)
        best = argmin_simplest(table["cv_mean"])       # grid ascends: ties to the smaller
        return (int(table.d_u[best]), int(table.d_v[best])), table


class SourceMixture(SourceModel):
    """A source/target mixture: ``C = (1 - w) C_target + w C0``, 0 <= w <= 1.

    ``C_target`` is the target-only reduced-rank fit (rank by the rank selection
    criterion unless given). The weight w is chosen by K-fold cross-validation over a
    grid of ``n_weights`` values (the target fit refitted on each fold's training rows);
    near-ties go to the larger w (the simpler model: nothing estimated at w = 1).

    See Also
    --------
    MultiResponseResults : what :meth:`fit` returns.
    SMART

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> source = mt.ReducedRank.from_formula(formula, demo["source"]).fit()
    >>> res = mt.SourceMixture.from_formula(formula, target, source=source).fit()
    >>> 0 <= res.hyperparameters["weight"] <= 1
    True
    """

    _method = "Mixture of the source and the target-only fit"
    _param_table = {"rank": RANK_PARAM,
                    "weight": Param("real", 0, 1, none=True, tuned=True,
                                     why="the source's share")}

    def fit(self, weight=None, rank=None, *, n_folds=5, n_weights=21, backend="fast",
            tol=None, max_iter=None, verbose=False):
        """Fit; ``weight`` and ``rank`` left as None are tuned.

        Parameters
        ----------
        weight : float or None
            w in [0, 1]: the source's share.
        rank : int or None
            Rank of the target-only reduced-rank fit.
        n_folds, n_weights : int
            Folds and grid size of the cross-validation of w.
        backend : {"fast"}
        tol, max_iter, verbose
            Accepted for a common interface; unused.

        Returns
        -------
        PenalizedResults
            ``df_model`` counts ``(1 - w) r (p + q - r) + 1``.
        """
        if backend != "fast":
            raise ValueError("SourceMixture is a closed form; backend must be 'fast'")
        check_int("n_weights", n_weights, 2, 10 ** 5)
        if weight is not None:
            if isinstance(weight, (bool, np.bool_)) or not isinstance(
                    weight, (int, float, np.number)):
                raise TypeError(f"weight must be a number in [0, 1]; got {weight!r}")
        p, q = self.k_exog, self.k_endog
        how, tuning = {"rank": "given", "weight": "given"}, {}
        if rank is None:
            from ..selection import rank_table
            rank, info = self.select_rank()
            tuning["rank"] = rank_table(info, rank)
            how["rank"] = "RSC"
        rank = check_int("rank", rank, 1, min(p, q))
        if weight is None:
            weight, tuning["cv"] = self._cv(rank, n_folds, n_weights)
            how["weight"] = f"{n_folds}-fold CV"
        weight = float(weight)
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1]; got {weight}")
        C_t, _, _ = lin.reduced_rank_rows(self.design_svd, self.centred_rows[1], rank)
        C = (1 - weight) * C_t + weight * self.source
        return PenalizedResults(
            self, C, hyperparameters={"weight": weight, "rank": rank}, chosen_by=how,
            df_model=(1 - weight) * rank * (p + q - rank) + 1, tuning=tuning)

    def _cv(self, rank, n_folds, n_weights):
        folds, n_folds = self.folds(n_folds)
        total = total_stats(folds)
        weights = np.linspace(1.0, 0.0, n_weights)          # simplest (w = 1) first
        err = np.zeros(n_weights)
        for f in folds:
            t = total - f
            Sxx, Sxy, _ = t.moments(center=self.center)
            C_t, _ = lin.reduced_rank(Sxx, Sxy, rank)
            err += f.n * np.array([validation_loss(f, t, (1 - w) * C_t + w * self.source,
                                                   center=self.center) for w in weights])
        err /= total.n
        best = argmin_simplest(err)
        return float(weights[best]), pd.DataFrame({"weight": weights, "cv_mse": err})
