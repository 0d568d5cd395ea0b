"""Closed-form multi-response least squares, ridge and reduced-rank regression.

Two paths. Where the rows are at hand, :func:`design_svd` factors the centred design in
an equilibrated basis (every column scaled to unit norm) and :func:`ols_rows` and
:func:`reduced_rank_rows` solve from that factorisation: their answers do not depend on
the units of the predictors, and the condition number that matters is the equilibrated
one. :func:`ridge_rows` solves ridge (whose penalty is tied to the units) from an SVD of
the rows, never from the normal equations. The moment functions (:func:`ols`, :func:`ridge`,
:func:`reduced_rank`) serve cross-validation folds and chunked statistics, which only
have ``Sxx = X^T X / n`` and ``Sxy = X^T Y / n`` (:mod:`mtltransfer.gram`); they
equilibrate the moments the same way.

Rank decisions (everywhere in the package) use one scale-free rule: the numerical rank of
the centred design is the number of singular values of the equilibrated design above
``max(n, p) * eps * s_max`` (:data:`RANK_RTOL_FACTOR` times machine epsilon, NumPy's
``matrix_rank`` default applied to the equilibrated matrix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg


@dataclass(frozen=True)
class DesignSVD:
    """Thin SVD of a design in its equilibrated basis: ``X D^{-1} = U diag(s) V^T``.

    Attributes
    ----------
    scale : ndarray, shape (p,)
        Column norms D of the (centred) design; 1 for an all-zero column.
    U : ndarray, shape (n, r)
    s : ndarray, shape (r,)
    Vt : ndarray, shape (r, p)
        The factors truncated at the numerical rank r.
    rank : int
    s_all : ndarray
        Every singular value of the equilibrated design (descending).
    null : ndarray, shape (p - r, p)
        Rows spanning the null space, in the equilibrated basis (collinear columns).
    """

    scale: np.ndarray
    U: np.ndarray
    s: np.ndarray
    Vt: np.ndarray
    rank: int
    s_all: np.ndarray
    null: np.ndarray

    @property
    def condition_number(self):
        """s_max / s_min of the equilibrated design over its rank (inf when deficient)."""
        if self.rank < self.scale.size:
            return float("inf")
        return float(self.s_all[0] / self.s_all[-1])


def design_svd(X):
    """Factor a (centred) design in its equilibrated basis; see :class:`DesignSVD`."""
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    scale = np.sqrt(np.einsum("ij,ij->j", X, X))
    scale = np.where(scale > 0, scale, 1.0)
    # thin U (n x min(n, p)); V square, so that the null space is at hand when n < p
    U, s, Vt = linalg.svd(X / scale, full_matrices=n < p, lapack_driver="gesdd")
    tol = max(n, p) * np.finfo(float).eps * (s[0] if s.size else 0.0)
    r = int(np.sum(s > tol))
    null = Vt[r:]
    return DesignSVD(scale, U[:, :r], s[:r], Vt[:r], r, s, null)


def ols_rows(dsvd, Y):
    """Least squares from :func:`design_svd` of the centred design.

    ``C = D^{-1} V diag(1/s) U^T Y``: the minimum-norm solution in the equilibrated basis
    (the unique one when the design has full column rank).

    Returns
    -------
    C : ndarray, shape (p, q)
    UtY : ndarray, shape (r, q)
        ``U^T Y``, the fitted values' coordinates (``Yhat = U UtY``).
    """
    UtY = dsvd.U.T @ Y
    C = (dsvd.Vt.T @ (UtY / dsvd.s[:, None])) / dsvd.scale[:, None]
    return C, UtY


def reduced_rank_rows(dsvd, Y, rank):
    """Exact reduced-rank regression from :func:`design_svd` of the centred design.

    ``C_r = C_ols V_r V_r^T`` with V_r the top-r right singular vectors of the fitted
    values ``Yhat = U U^T Y`` (those of the small ``U^T Y``), so the fitted values
    ``Yhat V_r V_r^T`` do not depend on the predictors' units.

    Returns
    -------
    C : ndarray, shape (p, q)
    V_r : ndarray, shape (q, r)
    fitted_sv : ndarray
        Singular values of the least-squares fitted values (``Y^T P_X Y`` has their
        squares as eigenvalues).
    """
    C_ols, UtY = ols_rows(dsvd, Y)
    _, sv, Wt = linalg.svd(UtY, full_matrices=True)
    V_r = Wt[:rank].T
    return (C_ols @ V_r) @ V_r.T, V_r, sv


def ridge_rows(X, Y, alpha=None, *, n_alphas=50, n_fixed=0):
    """Ridge ``C = (X^T X / n + alpha I)^{-1} X^T Y / n`` from the SVD of the (centred) rows,
    alpha by generalised cross-validation when not given.

    With ``X = U diag(s) V^T``: the spectral form ``w = s^2 / n``, ``V^T Sxy = diag(s)
    U^T Y / n`` of the moments (no normal equations), solved by :func:`ridge_spectral`.

    Returns
    -------
    C, alpha, df, trace
        See :func:`ridge_spectral`.
    """
    n = X.shape[0]
    U, s, Vt = linalg.svd(X, full_matrices=False, lapack_driver="gesdd")
    return ridge_spectral(s * s / n, Vt.T, s[:, None] * (U.T @ Y) / n,
                          float(np.sum(Y * Y)) / n, n, alpha, n_alphas=n_alphas,
                          n_fixed=n_fixed)


def ridge_spectral(w, V, VtSxy, trSyy, n, alpha=None, *, n_alphas=50, n_fixed=0):
    """Ridge ``C = (Sxx + alpha I)^{-1} Sxy`` from the spectral form of the moments,
    alpha by generalised cross-validation when not given.

    With ``Sxx = V diag(w) V^T`` (``V`` may have fewer than p columns when the rest of
    the spectrum is zero): ``C = V diag(1 / (w + alpha)) V^T Sxy``. ``alpha=None``
    minimises the closed-form GCV curve of :func:`ridge_gcv` (``n`` the number of rows)
    over ``alpha = max(w) * logspace(-6, 2, n_alphas)``; near-ties go to the larger alpha
    (:func:`~mtltransfer.solvers._base.argmin_simplest`). The spectral form comes from
    the rows' SVD where rows exist (:func:`ridge_rows`) and from ``eigh(Sxx)`` where
    only statistics do: both give the same fit.

    Returns
    -------
    C : ndarray, shape (p, q)
    alpha : float
    df : float
        Effective degrees of freedom per response, ``sum_i w_i / (w_i + alpha)``.
    trace : dict or None
        ``alpha, df, rss, gcv`` along the grid when alpha was chosen.
    """
    from ._base import argmin_simplest

    trace = None
    if alpha is None:
        alphas = max(w.max(initial=0.0), 1e-12) * np.logspace(-6, 2, n_alphas)
        rss, dfs, gcv = ridge_gcv(w, VtSxy, trSyy, n, alphas, n_fixed=n_fixed)
        alpha = float(alphas[len(alphas) - 1 - argmin_simplest(gcv[::-1])])
        trace = {"alpha": alphas, "df": dfs, "rss": rss, "gcv": gcv}
    C = V @ (VtSxy / (w + alpha)[:, None])
    return C, float(alpha), float(np.sum(w / (w + alpha))), trace


def _sym_eigh(S):
    w, Q = linalg.eigh(S)
    return np.clip(w, 0.0, None), Q


def moment_scale(Sxx):
    """Equilibration of the moments: ``sqrt(diag Sxx)`` (1 for a zero column)."""
    d = np.sqrt(np.clip(np.diag(Sxx), 0.0, None))
    return np.where(d > 0, d, 1.0)


def ols(Sxx, Sxy, rcond=None):
    """Least squares ``C = Sxx^+ Sxy`` from the moments, in the equilibrated basis.

    With ``D = sqrt(diag Sxx)``, ``C = D^{-1} (D^{-1} Sxx D^{-1})^+ D^{-1} Sxy``: the
    pseudo-inverse is taken of the correlation-scaled moment matrix, so a predictor's
    units never make it "rank deficient".

    Returns
    -------
    C : ndarray, shape (p, q)
    rank : int
        Eigenvalues of the scaled matrix above ``rcond * max eigenvalue`` (default
        ``p * eps``; the moments square the design's condition number, so the row path
        :func:`design_svd` is the accurate one where rows exist).
    """
    D = moment_scale(Sxx)
    w, Q = _sym_eigh(Sxx / np.outer(D, D))
    if rcond is None:
        rcond = max(Sxx.shape) * np.finfo(float).eps
    keep = w > rcond * max(w.max(initial=0.0), np.finfo(float).tiny)
    C = Q[:, keep] @ ((Q[:, keep].T @ (Sxy / D[:, None])) / w[keep, None])
    return C / D[:, None], int(keep.sum())


def ridge(Sxx, Sxy, alpha):
    """Ridge regression ``C = (Sxx + alpha I)^{-1} Sxy``.

    It minimises (1/2n)||Y - XC||_F^2 + (alpha/2)||C||_F^2.
    """
    p = Sxx.shape[0]
    if alpha == 0:
        return ols(Sxx, Sxy)[0]
    return linalg.solve(Sxx + alpha * np.eye(p), Sxy, assume_a="pos")


def ridge_gcv(w, QtSxy, trSyy, n, alphas, n_fixed=0):
    """Generalised cross-validation curve of multi-response ridge, in closed form.

    With ``Sxx = Q diag(w) Q^T`` and ``e_i = ||row i of Q^T Sxy||^2``, the ridge fit
    ``C_a = (Sxx + a I)^{-1} Sxy`` has

        RSS(a) = n (tr Syy - 2 sum_i e_i / (w_i + a) + sum_i w_i e_i / (w_i + a)^2),
        df(a)  = sum_i w_i / (w_i + a) + n_fixed,
        GCV(a) = n RSS(a) / (n - df(a))^2         (inf where n - df(a) < 1/2),

    summed over responses (Golub, Heath and Wahba, 1979); ``n_fixed`` counts unpenalised
    parameters per response (1 for a centred intercept). O(p) per alpha.

    Returns
    -------
    rss, df, gcv : ndarray, shape (len(alphas),)
    """
    alphas = np.asarray(alphas, dtype=float)
    e2 = np.sum(QtSxy * QtSxy, axis=1)
    inv = 1.0 / (w[None, :] + alphas[:, None])            # (n_alphas, p)
    lin = inv @ e2
    quad = (inv * inv) @ (w * e2)
    rss = n * np.maximum(trSyy - 2 * lin + quad, 0.0)
    df = (w[None, :] * inv).sum(1) + n_fixed
    with np.errstate(divide="ignore"):
        gcv = np.where(n - df >= 0.5, n * rss / np.maximum(n - df, 0.5) ** 2, np.inf)
    return rss, df, gcv


def reduced_rank(Sxx, Sxy, rank, C_ols=None):
    """Exact reduced-rank regression of rank ``rank``.

    The minimiser of (1/2n)||Y - XC||_F^2 over rank(C) <= r is (Reinsel and Velu, 1998)

        C_r = C_ols V_r V_r^T,   V_r = top-r eigenvectors of  C_ols^T Sxx C_ols,

    where ``C_ols^T Sxx C_ols = Yhat^T Yhat / n`` is the covariance of the fitted values.
    For a rank-deficient Sxx the minimum-norm least squares fit is used.

    Returns
    -------
    C : ndarray, shape (p, q)
    V_r : ndarray, shape (q, r)
    """
    if C_ols is None:
        C_ols = ols(Sxx, Sxy)[0]
    M = C_ols.T @ Sxx @ C_ols
    w, Q = linalg.eigh((M + M.T) / 2)
    V_r = Q[:, ::-1][:, :rank]
    return (C_ols @ V_r) @ V_r.T, V_r
