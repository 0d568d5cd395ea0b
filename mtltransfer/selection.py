"""Tuning helpers every tuned model shares, from moments only.

* :func:`select_rank_rsc` -- the rank selection criterion of Bunea, She and Wegkamp (2011).
* :func:`numerical_rank`, :func:`rank_table` -- a matrix's numerical rank; the RSC trace.
* :func:`warn_grid_edge` -- the warning when a tuned choice sits on its grid's edge.
* :func:`check_folds` -- the number of cross-validation folds, checked.

SMART's own tuning (lambda path, structural ranks, :func:`~mtltransfer.smart.tuning.tune_smart`)
is in :mod:`mtltransfer.smart.tuning`. Everything here takes and returns plain arrays,
numbers and dicts.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from .exceptions import GridEdgeWarning, user_stacklevel
from .gram import SufficientStats
from .solvers._base import argmin_simplest
from .solvers.linear import ridge_gcv

__all__ = ["select_rank_rsc", "numerical_rank", "rank_table", "warn_grid_edge",
           "check_folds", "fold_se"]


def _moments(stats, Sxy=None, Syy=None, n=None, center=True):
    if isinstance(stats, SufficientStats):
        Sxx, Sxy, Syy = stats.moments(center=center)
        return Sxx, Sxy, Syy, stats.n
    if Sxy is None or Syy is None or n is None:
        raise TypeError("pass a SufficientStats, or Sxx, Sxy, Syy and n")
    return (np.asarray(stats, float), np.asarray(Sxy, float), np.asarray(Syy, float),
            int(n))


def numerical_rank(M, rtol=None):
    """Number of singular values above ``rtol * max singular value`` (default max(shape)*eps)."""
    s = linalg.svdvals(np.asarray(M, float))
    if s.size == 0 or s[0] == 0:
        return 0
    if rtol is None:
        rtol = max(np.shape(M)) * np.finfo(float).eps
    return int(np.sum(s > rtol * s[0]))


# ---------------------------------------------------------------------------------------
# rank: Bunea, She and Wegkamp (2011)
# ---------------------------------------------------------------------------------------
def _ridge_gcv_sigma2(w, QtSxy, trSyy, n, q, n_grid=60, center=True):
    """Noise variance from a ridge fit with GCV-chosen alpha (fallback when n <= rank X).

    Along ``alpha = lambda_max(Sxx) * logspace(-6, 1, n_grid)`` the GCV curve of
    :func:`mtltransfer.solvers.linear.ridge_gcv` (the intercept, when the moments are
    centred, counted as a fitted parameter) is minimised and
    ``sigma^2 = RSS(a) / (q (n - df(a)))`` is the classical degrees-of-freedom-corrected
    residual variance of that linear smoother; it needs no n > rank X.
    """
    alphas = max(float(w.max(initial=0.0)), np.finfo(float).tiny) * np.logspace(-6, 1, n_grid)
    rss, df, gcv = ridge_gcv(w, QtSxy, trSyy, n, alphas, n_fixed=1 if center else 0)
    if not np.isfinite(gcv).any():
        return float(trSyy / q), float("nan")   # no usable smoother: Var(Y) as a bound
    i = len(alphas) - 1 - argmin_simplest(gcv[::-1])     # ties: the larger alpha
    return float(rss[i] / (q * (n - df[i]))), float(alphas[i])


def warn_grid_edge(model, param, chosen, grid, *, low=None, high=None):
    """Warn (:class:`~mtltransfer.exceptions.GridEdgeWarning`) when a tuned
    hyperparameter sits at an edge of the grid it was chosen from.

    One rule for every tuned model. An edge is either only the end of the grid (the
    criterion may keep improving beyond it: a warning says so and names the parameter
    and the edge), or a natural boundary of the parameter, where going further changes
    nothing or is impossible (a structural rank of p, a mixture weight of 0 or 1, a
    lambda path that ends at lam = 0 or starts where the penalised part is zero, the
    smallest rank): there is nothing beyond it, and no warning. A natural boundary whose
    fit is degenerate (all slopes zero) warns with its own explanation.

    Parameters
    ----------
    model : str
        The model's name, for the message.
    param : str
        The parameter's name, as ``fit`` takes it.
    chosen : float
        The chosen value.
    grid : array_like
        The values it was chosen from (a grid of fewer than two values has no edge).
    low, high : None, True or str
        What the lower / upper edge is: None, the end of the grid only (warn); True, a
        natural boundary (no warning); a str, a natural boundary with a degenerate fit
        (warn with this text).

    Returns
    -------
    str or None
        ``"low"``, ``"high"`` or None: the edge the choice sits on.
    """
    grid = np.unique(np.asarray(grid, dtype=float))
    if grid.size < 2:
        return None
    chosen = float(chosen)
    span = grid[-1] - grid[0]
    at = "low" if chosen <= grid[0] + 1e-12 * span else \
        "high" if chosen >= grid[-1] - 1e-12 * span else None
    what = {"low": low, "high": high}.get(at)
    if at is None or what is True:
        return at
    edge = "lower" if at == "low" else "upper"
    head = (f"{model}: {param} = {chosen:.4g} was chosen at the {edge} edge of its grid "
            f"({grid[0]:.4g} to {grid[-1]:.4g}, {grid.size} values)")
    if isinstance(what, str):
        msg = f"{head}: {what}"
    else:
        msg = (f"{head}; the criterion may keep improving beyond it: give {param}= "
               "explicitly, or a grid that reaches further")
    warnings.warn(msg, GridEdgeWarning, stacklevel=user_stacklevel())
    return at


def check_folds(n_folds, n, model_name, what="cross-validation"):
    """Validate ``n_folds`` against the number of rows, with a message for the user.

    Each fold must hold at least 2 rows, so K-fold cross-validation needs ``2 K`` rows.
    """
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or \
            n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2; got {n_folds!r}")
    if n < 2 * n_folds:
        raise ValueError(f"{model_name} needs at least {2 * n_folds} rows for "
                         f"{n_folds}-fold {what}; got {n}. Pass a smaller n_folds (at "
                         f"least 2, so {max(n // 2, 2)} at most here) or give the tuned "
                         "value(s) to fit()")
    return int(n_folds)


def fold_se(losses, axis=-1):
    """Standard error of the mean over folds, ``sd(ddof=1) / sqrt(K)`` along ``axis``;
    NaN for one fold (a holdout split, :mod:`mtltransfer.holdout`, has no spread)."""
    losses = np.asarray(losses, dtype=float)
    K = losses.shape[axis]
    if K < 2:
        return np.full(np.delete(losses.shape, axis % losses.ndim), np.nan) \
            if losses.ndim > 1 else float("nan")
    return losses.std(axis=axis, ddof=1) / np.sqrt(K)


def rank_table(info, rank):
    """The rank-selection trace as a DataFrame: eigenvalues, threshold, selected."""
    import pandas as pd

    ev = info["eigenvalues"]
    return pd.DataFrame({"eigenvalue": ev, "threshold mu": info["mu"],
                         "selected": np.arange(len(ev)) < rank},
                        index=pd.RangeIndex(1, len(ev) + 1, name="component"))


def _replicate_df(dsvd, multiplicity, n, center):
    """Residual degrees of freedom and noise scale of rows that repeat.

    In a pairs-bootstrap replicate, row ``j`` is one of ``m_j`` copies of the same
    observation (``multiplicity[j] = m_j``), and the copies share their noise. On the
    distinct rows this is least squares with weights ``m_i``, whose residual ``e`` has
    ``E[e^T W e] = sigma^2 tr(W (I - H)) = sigma^2 sum_i m_i (1 - m_i h_i)``, with
    ``h_i = x_i^T (X^T W X)^+ x_i`` the leverage of a copy in the stacked design (its
    diagonal of the hat matrix, the intercept's ``1/n`` included when centred). Summed over
    the stacked rows:

        df = n - sum_j m_j h_j           (= n - rank X - 1 when every m_j = 1).

    The noise part of ``Y^T P_X Y`` is ``E^T W X (X^T W X)^+ X^T W E``, whose trace has
    expectation ``sigma^2 q sum_j m_j h_j^c`` (``h^c`` the centred leverage) against
    ``sigma^2 q rank X`` without repeats: the noise eigenvalues are inflated by

        c = sum_j m_j h_j^c / rank X     (= 1 when every m_j = 1),

    which multiplies the threshold ``mu``.
    """
    m = np.asarray(multiplicity, float)
    if m.shape != (n,) or not np.all(m >= 1):
        raise ValueError(f"multiplicity must hold n = {n} counts >= 1; got shape {m.shape}")
    h_c = np.einsum("ij,ij->i", dsvd.U, dsvd.U)              # centred leverages
    mh_c = float(m @ h_c)
    df = n - mh_c - (float(m.sum()) / n if center else 0.0)
    return df, (mh_c / dsvd.rank if dsvd.rank else 1.0)


def select_rank_rsc(stats, Sxy=None, Syy=None, n=None, *, theta=0.1, cap=None,
                    center=True, rows=None, multiplicity=None):
    r"""Rank by the rank selection criterion (RSC) of Bunea, She and Wegkamp (2011).

    The selected rank is the number of eigenvalues of
    :math:`Y^\top P_X Y = n S_{xy}^\top S_{xx}^+ S_{xy}` at or above
    :math:`\mu = (1 + \theta)^2 \sigma^2 (\sqrt q + \sqrt{\operatorname{rank} X})^2` with
    :math:`\sigma^2 = \|Y - P_X Y\|_F^2 / (q (n - \operatorname{rank} X))` (``rank X``
    counts the intercept when ``center=True``), clipped to ``[1, cap]``. Rows that are
    copies of one observation (``multiplicity``) count once: :math:`n - \operatorname{rank} X`
    becomes :math:`n - \sum_j m_j h_j` and :math:`\mu` is multiplied by
    :math:`c = \sum_j m_j h^c_j / \operatorname{rank} X` (:func:`_replicate_df`).

    When ``n <= rank X`` the least-squares residual is zero and ``sigma2`` is taken from a
    ridge fit with alpha chosen by generalised cross-validation,
    ``sigma2 = RSS(alpha) / (q (n - df(alpha)))`` (see :func:`_ridge_gcv_sigma2`).

    Parameters
    ----------
    stats : SufficientStats or ndarray
        Statistics of the target, or ``Sxx`` (then ``Sxy``, ``Syy``, ``n`` are required).
    theta : float
        Safety margin above the noise level (BSW use a small positive constant).
    cap : int or None
        Upper bound (typically the rank of the source matrix C0); default ``min(p, q)``.
    center : bool
        Whether the moments are centred (the model has an intercept).
    rows : (DesignSVD, ndarray), optional
        :func:`mtltransfer.solvers.linear.design_svd` of the centred design and the
        centred responses: the eigenvalues, rank X and residual come from the rows in
        the equilibrated basis (accurate and units-free); ``stats`` is then not needed.
    multiplicity : ndarray (n,) or None
        With ``rows``: how many copies of each row's observation the rows hold (a pairs
        bootstrap replicate); the copies share their noise, so the residual degrees of
        freedom and the noise level of the eigenvalues are those of the distinct rows
        (:func:`_replicate_df`). None: the rows are distinct.

    Returns
    -------
    rank : int
    info : dict
        ``eigenvalues`` (of Y^T P_X Y, descending), ``mu``, ``sigma2``, ``rank_X``,
        ``sigma_method`` ("residual" or "ridge-gcv"), ``ridge_alpha`` (nan if unused).
    """
    if rows is not None:
        dsvd, Yc = rows
        n, p, q = Yc.shape[0], dsvd.scale.size, Yc.shape[1]
        rank_X = dsvd.rank
        UtY = dsvd.U.T @ Yc
        sv = linalg.svdvals(UtY)
        ev = np.zeros(q)
        ev[:sv.size] = sv * sv                              # eigenvalues of Y^T P_X Y
        rss = float(np.sum((Yc - dsvd.U @ UtY) ** 2))
        trSyy = float(np.sum(Yc * Yc)) / n

        def spectrum():  # Sxx = V diag(w) V^T, w = s^2/n, V^T Sxy = diag(s) U^T Y / n
            Xc = (dsvd.U * dsvd.s) @ dsvd.Vt * dsvd.scale
            U, s_raw, _ = linalg.svd(Xc, full_matrices=False)
            return s_raw * s_raw / n, s_raw[:, None] * (U.T @ Yc) / n
    else:
        Sxx, Sxy, Syy, n = _moments(stats, Sxy, Syy, n, center)
        p, q = Sxy.shape
        D = np.sqrt(np.clip(np.diag(Sxx), 0.0, None))
        D = np.where(D > 0, D, 1.0)
        w_s, Q_s = linalg.eigh(Sxx / np.outer(D, D))          # equilibrated basis
        keep = w_s > max(p, 1) * np.finfo(float).eps * max(w_s.max(initial=0.0), 1e-300)
        rank_X = int(keep.sum())
        QtS_s = Q_s.T @ (Sxy / D[:, None])
        M = n * (QtS_s[keep].T @ (QtS_s[keep] / w_s[keep, None]))      # Y^T P_X Y
        ev = np.sort(np.clip(linalg.eigvalsh(0.5 * (M + M.T)), 0.0, None))[::-1]
        trSyy = float(np.trace(Syy))
        rss = max(n * trSyy - float(ev.sum()), 0.0)

        def spectrum():
            w, Q = linalg.eigh(Sxx)
            return np.clip(w, 0.0, None), Q.T @ Sxy
    df, c = n - rank_X - (1 if center else 0), 1.0
    if multiplicity is not None:
        if rows is None:
            raise ValueError("multiplicity needs rows= (the leverages of the rows)")
        df, c = _replicate_df(rows[0], multiplicity, n, center)
    if df > 1e-8 * n:
        sigma2 = rss / (q * df)
        method, alpha = "residual", float("nan")
    else:
        sigma2, alpha = _ridge_gcv_sigma2(*spectrum(), trSyy, n, q, center=center)
        method = "ridge-gcv"
    mu = (1 + theta) ** 2 * c * sigma2 * (np.sqrt(q) + np.sqrt(rank_X)) ** 2
    cap = min(p, q) if cap is None else max(1, min(int(cap), p, q))
    rank = int(np.clip(np.sum(ev >= mu), 1, cap))
    return rank, {"eigenvalues": ev, "mu": float(mu), "sigma2": float(sigma2),
                  "rank_X": rank_X, "sigma_method": method, "ridge_alpha": alpha}
