"""Reduced-rank ridge regression in closed form, and its subspace-restricted form.

The problem (rrpack's ``rrs.fit``, Mukherjee and Zhu, 2011) is

    minimise  (1/2n)||Y - XC||_F^2 + (ridge/2)||C||_F^2   subject to rank(C) <= r.

**Exact solution by augmented data.** Stack ``X* = [X; sqrt(n ridge) I_p]`` and
``Y* = [Y; 0]``: then ``||Y* - X* C||_F^2 = ||Y - XC||_F^2 + n ridge ||C||_F^2``, so the
problem is reduced-rank regression of Y* on X*. For ridge > 0, X* has full column rank
and the least squares fit on the augmented rows is the ridge fit
``C_R = (Sxx + ridge I)^{-1} Sxy``. The normal equations give, for every C,

    ||Y* - X* C||^2 = ||Y* - X* C_R||^2 + ||X* C_R - X* C||^2,

and ``X* C`` ranges over the matrices of rank <= r in the column space of X*. By
Eckart-Young the best is ``X* C_R V_r V_r^T``, V_r the top-r right singular vectors of
the augmented fitted values ``X* C_R``, which lies in that column space with
``C = C_R V_r V_r^T``. From the moments

    (X* C_R)^T (X* C_R) / n = C_R^T (Sxx + ridge I) C_R = Sxy^T (Sxx + ridge I)^{-1} Sxy,

so V_r are the top-r eigenvectors of the q x q matrix ``Sxy^T C_R``. With ridge = 0 this
is reduced-rank regression (:func:`mtltransfer.solvers.linear.reduced_rank`).

**Source-subspace form.** With orthonormal ``U`` (p x d_u) and ``V`` (q x d_v) and
``C = U M V^T``: ``||C||_F = ||M||_F`` and, V being part of an orthogonal matrix,
``||Y - X U M V^T||^2 = ||Y V - X U M||^2 + ||Y V_perp||^2``. The problem in M is the
same one on the moments ``G = U^T Sxx U`` and ``H = U^T Sxy V``
(:func:`subspace_moments`).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from . import linear as lin


def psd_eig(S):
    """Eigendecomposition ``S = Q diag(w) Q^T`` of a symmetric PSD matrix (w clipped at 0,
    ascending)."""
    w, Q = linalg.eigh(0.5 * (S + S.T))
    return np.clip(w, 0.0, None), Q


def ridge_fit(Sxx, Sxy, ridge, eig=None):
    """The ridge fit ``C_R = (Sxx + ridge I)^{-1} Sxy`` (ridge > 0), from the eigenpairs
    ``eig = (w, Q)`` of Sxx (computed when not given)."""
    w, Q = psd_eig(Sxx) if eig is None else eig
    return Q @ ((Q.T @ Sxy) / (w + ridge)[:, None])


def top_right_vectors(Sxy, C_R, rank):
    """V_r: the top-``rank`` eigenvectors of ``Sxy^T C_R`` (the augmented fitted values'
    Gram matrix over n), and all its eigenvalues in descending order."""
    M = Sxy.T @ C_R
    w, Q = linalg.eigh(0.5 * (M + M.T))
    return Q[:, ::-1][:, :rank], np.clip(w[::-1], 0.0, None)


def reduced_rank_ridge(Sxx, Sxy, rank, ridge, eig=None):
    """Exact reduced-rank ridge regression from the moments.

    ``C = C_R V_r V_r^T`` with ``C_R = (Sxx + ridge I)^{-1} Sxy`` and V_r the top-r
    eigenvectors of ``Sxy^T C_R`` (module docstring). ``ridge = 0`` is reduced-rank
    regression (:func:`mtltransfer.solvers.linear.reduced_rank`, minimum-norm least
    squares for a singular Sxx).

    Parameters
    ----------
    Sxx : ndarray, shape (p, p)
    Sxy : ndarray, shape (p, q)
    rank : int
    ridge : float
        At least 0.
    eig : (ndarray, ndarray), optional
        Eigenpairs of Sxx (:func:`psd_eig`), reused along a grid of ridges.

    Returns
    -------
    C : ndarray, shape (p, q)
    V_r : ndarray, shape (q, rank)
    """
    if ridge == 0:
        return lin.reduced_rank(Sxx, Sxy, rank)
    C_R = ridge_fit(Sxx, Sxy, ridge, eig)
    V_r, _ = top_right_vectors(Sxy, C_R, rank)
    return (C_R @ V_r) @ V_r.T, V_r


def ridge_trace(w, ridge):
    """``tr[Sxx (Sxx + ridge I)^{-1}] = sum_i w_i / (w_i + ridge)``: the ridge's effective
    number of predictors (the rank of Sxx at ridge = 0)."""
    if ridge == 0:
        return float(np.sum(w > max(w.size, 1) * np.finfo(float).eps * max(w.max(
            initial=0.0), np.finfo(float).tiny)))
    return float(np.sum(w / (w + ridge)))


def subspace_moments(Sxx, Sxy, U, V):
    """``G = U^T Sxx U`` (symmetrised) and ``H = U^T Sxy V``: the moments of the
    problem in ``M`` where ``C = U M V^T``."""
    G = U.T @ Sxx @ U
    return 0.5 * (G + G.T), U.T @ Sxy @ V


def reduced_rank_ridge_subspace(Sxx, Sxy, U, V, rank, ridge):
    """Reduced-rank ridge restricted to ``C = U M V^T`` (U, V orthonormal columns of
    orthogonal matrices, e.g. the source's leading singular vectors).

    Returns
    -------
    C : ndarray, shape (p, q)
    M : ndarray, shape (d_u, d_v)
    """
    G, H = subspace_moments(Sxx, Sxy, U, V)
    M, _ = reduced_rank_ridge(G, H, rank, ridge)
    return U @ M @ V.T, M
