"""Directions outside the source's leading subspaces.

:func:`complement_basis`, a canonical orthonormal basis of the complement of a subspace,
and :func:`complement_start`, SMART's start when the rank exceeds a structural rank, so
that some columns of the factors must leave the leading subspaces (docs/smart.rst,
"Start").
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

__all__ = ["complement_basis", "complement_start"]

_TINY = 1e-300


#: from this many rows on (and for r <= m / 10), :func:`complement_basis` runs its
#: O(m^2 r) pivot loop (one step per basis vector); otherwise LAPACK's O(m^3) pivoted QR
#: is faster
_COMPLEMENT_LOOP_M = 500


def complement_basis(Q):
    """A canonical orthonormal basis of the orthogonal complement of span(Q).

    Q is m x r with orthonormal columns. The projections ``v_i = (I - Q Q^T) e_i`` of the
    standard basis vectors are orthonormalised in pivoted order (at each step the one
    with the largest residual after the previous ones, the first of equals in LAPACK's
    swapping order), with positive diagonal: the basis of the QR factorisation with column
    pivoting of ``I - Q Q^T`` (:func:`_complement_basis_qr`), a smooth, deterministic
    function of span(Q) wherever the pivot order is strict. Where residuals tie exactly
    (e.g. ``Q = 1 / sqrt(m)``, every residual equal) LAPACK's own rounding breaks the tie
    and the two computations may pick different, equally canonical, orthonormal bases.

    From ``m = 500`` on, for ``r <= m / 10``, it is computed in O(m^2 r) instead of
    O(m^3). With ``z_i = Q^T e_i`` and S the pivots chosen before ``j``, the Gram matrix
    of ``v_S`` is ``I - Z_S Z_S^T``, and by the push-through identity the residual of
    ``v_j`` after projection on ``v_S`` is

        w_j = (I - E_S E_S^T) (e_j - Q y_j),   y_j = (I - Z_S^T Z_S)^{-1} z_j,
        ||w_j||^2 = 1 - z_j^T y_j,

    (rows of earlier pivots are exactly zero: the basis is lower triangular in pivot
    order, its pivot rows being the Cholesky factor of ``I - Q Q^T`` permuted). The
    residual norms of all candidates fall by ``(z_i^T y_j)^2 / ||w_j||^2`` per pivot, and
    ``(I - Z_S^T Z_S)^{-1}`` is downdated by Sherman-Morrison, formed afresh every 64
    pivots and at the last ``r + 16``. Where a pivot's residual falls below ``1e-8`` (Q
    nearly containing a coordinate direction's complement) the QR factorisation is used
    instead.

    Parameters
    ----------
    Q : ndarray (m, r)

    Returns
    -------
    ndarray (m, m - r)
    """
    Q = np.asarray(Q, dtype=float)
    m, r = Q.shape
    k = m - r
    if m < _COMPLEMENT_LOOP_M or 10 * r > m:
        return _complement_basis_qr(Q)
    if r == 0:
        return np.eye(m)
    Z = Q
    resid = 1.0 - np.einsum("ij,ij->i", Z, Z)       # ||v_i||^2, then residual norms
    perm = np.arange(m)
    Y = np.empty((k, r))
    for j in range(k):
        pos = j + int(np.argmax(resid[perm[j:]]))
        perm[j], perm[pos] = perm[pos], perm[j]
        if j % 64 == 0 or m - j <= r + 16:
            # M = (I - Z_S^T Z_S)^{-1} = (Z_R^T Z_R)^{-1} over the rows R not chosen
            # before j (Q^T Q = I), formed afresh; between refreshes it is downdated
            # by Sherman-Morrison, O(r^2) a step
            Zr = Z[perm[j:]]
            try:
                M = linalg.inv(Zr.T @ Zr, check_finite=False)
            except linalg.LinAlgError:
                return _complement_basis_qr(Q)
        z = Z[perm[j]]
        y = M @ z
        wj2 = 1.0 - z @ y
        if not wj2 > 1e-8:
            return _complement_basis_qr(Q)
        Y[j] = y
        M += np.outer(y, y / wj2)
        resid -= (Z @ y) ** 2 / wj2
    W = -(Z[perm] @ Y.T)                            # rows in pivot order
    W[:k] = np.tril(W[:k])
    W[np.arange(k), np.arange(k)] += 1.0
    W /= np.linalg.norm(W, axis=0)
    out = np.empty((m, k))
    out[perm] = W
    return out


def _complement_basis_qr(Q):
    """:func:`complement_basis` by LAPACK's QR factorisation with column pivoting of
    ``I - Q Q^T`` (O(m^3)): the reference, and the fallback for degenerate Q."""
    m, r = Q.shape
    if r == m:
        return np.zeros((m, 0))
    P = np.eye(m) - Q @ Q.T
    Qc, R, _ = linalg.qr(P, pivoting=True)
    k = m - r
    sign = np.where(np.diag(R)[:k] < 0, -1.0, 1.0)
    return Qc[:, :k] * sign


def complement_start(problem, rank, r_u, r_v, lam_u, lam_v):
    """A start for ``rank > min(r_u, r_v)``: the restricted fit plus sparse columns.

    ``problem`` is a :class:`~mtltransfer.smart.problem.SmartProblem`.

    The reduced-rank fit restricted to the leading subspaces has rank at most
    ``k = min(r_u, r_v)``; the other ``rank - k`` columns must leave them. Each is
    added greedily, as a single source direction where its side has no room left
    (``A[:, j] = e_i``, ``i >= r_u``: one nonzero of Omega_u, penalty ``lam_u``) and as
    the best direction in the room left on the other side, chosen by the largest
    gain ``(a^T R b)^2 / (2 a^T G a)`` less its penalty, ``R = H - G A diag(d) B^T``
    the residual cross-moment of the columns so far (source coordinates).

    Returns
    -------
    A : ndarray (p, rank)
    B : ndarray (q, rank)
        Orthonormal.
    """
    p, q = problem.p, problem.q
    k = min(rank, r_u, r_v)
    A, B = np.zeros((p, rank)), np.zeros((q, rank))
    if k:
        A[:, :k], B[:, :k] = problem.restricted_rrr(k, r_u, r_v)
    W = problem.W
    Gd = np.diag(problem.G) if W is None else np.einsum("ij,ij->j", W, W)
    Gd = np.maximum(Gd, _TINY)
    for j in range(k, rank):
        Aj, Bj = A[:, :j], B[:, :j]
        d = problem.optimal_d(Aj, Bj) if j else np.zeros(0)
        R = problem.H - problem.gram(Aj * d) @ Bj.T if j else problem.H.copy()
        room_u = np.linalg.matrix_rank(Aj[:r_u]) < r_u if j else r_u > 0
        room_v = np.linalg.matrix_rank(Bj[:r_v]) < r_v if j else r_v > 0
        if not room_u:
            # a = e_i (i >= r_u, unused): b in the room left, or a single direction
            used = np.any(Aj != 0, axis=1)
            rows = [i for i in range(r_u, p) if not used[i]]
            Rr = R[rows]
            if room_v:
                Pv = np.zeros((q, q))
                Pv[:r_v, :r_v] = np.eye(r_v)
                Pv -= Bj @ Bj.T @ Pv if j else 0.0
                gains = np.sum((Rr @ Pv) ** 2, axis=1) / (2 * Gd[rows]) - lam_u
                i = rows[int(np.argmax(gains))]
                b = Pv.T @ R[i]
            else:
                usedb = np.any(Bj != 0, axis=1)
                cols = [c for c in range(r_v, q) if not usedb[c]]
                g2 = Rr[:, cols] ** 2 / (2 * Gd[rows, None])
                ii, cc = np.unravel_index(int(np.argmax(g2)), g2.shape)
                i, b = rows[ii], np.zeros(q)
                b[cols[cc]] = 1.0
            a = np.zeros(p)
            a[i] = 1.0
        else:
            # b = e_c (c >= r_v, unused); a in the room left on the A side
            usedb = np.any(Bj != 0, axis=1)
            cols = [c for c in range(r_v, q) if not usedb[c]]
            Pu = np.zeros((p, p))
            Pu[:r_u, :r_u] = np.eye(r_u)
            Pu -= Aj @ Aj.T @ Pu if j else 0.0
            Rc = Pu.T @ R[:, cols]
            gains = np.sum(Rc ** 2, axis=0) / max(problem.lmax_G, _TINY) - lam_v
            c = cols[int(np.argmax(gains))]
            a = Pu.T @ R[:, c]
            b = np.zeros(q)
            b[c] = 1.0
        for X, v, Xj in ((A, a, Aj), (B, b, Bj)):
            if j:
                v = v - Xj @ (Xj.T @ v)
            nv = np.linalg.norm(v)
            if not nv > 1e-12:
                return None
            X[:, j] = v / nv
    return A, B
