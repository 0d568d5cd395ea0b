"""Closed-form multi-response least squares, ridge and reduced-rank regression.

All functions work from the centred moments ``Sxx = X^T X / n`` (p x p) and
``Sxy = X^T Y / n`` (p x q) of :mod:`mtltransfer.gram`.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def _sym_eigh(S):
    w, Q = linalg.eigh(S)
    return np.clip(w, 0.0, None), Q


def ols(Sxx, Sxy, rcond=None):
    """Minimum-norm least squares ``C = Sxx^+ Sxy``.

    Returns
    -------
    C : ndarray, shape (p, q)
    rank : int
        Numerical rank of Sxx (eigenvalues above ``rcond * max eigenvalue``).
    """
    w, Q = _sym_eigh(Sxx)
    if rcond is None:
        rcond = max(Sxx.shape) * np.finfo(float).eps
    keep = w > rcond * max(w.max(initial=0.0), np.finfo(float).tiny)
    C = Q[:, keep] @ ((Q[:, keep].T @ Sxy) / w[keep, None])
    return C, int(keep.sum())


def ridge(Sxx, Sxy, alpha):
    """Ridge regression ``C = (Sxx + alpha I)^{-1} Sxy``.

    It minimises (1/2n)||Y - XC||_F^2 + (alpha/2)||C||_F^2.
    """
    p = Sxx.shape[0]
    if alpha == 0:
        return ols(Sxx, Sxy)[0]
    return linalg.solve(Sxx + alpha * np.eye(p), Sxy, assume_a="pos")


def ridge_path(Sxx, Sxy, alphas):
    """Ridge solutions for many alphas from one eigendecomposition of Sxx."""
    w, Q = _sym_eigh(Sxx)
    QtS = Q.T @ Sxy
    return [Q @ (QtS / (w + a)[:, None]) for a in alphas]


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
