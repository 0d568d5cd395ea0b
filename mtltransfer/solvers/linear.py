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
