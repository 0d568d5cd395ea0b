"""SparseSMART: sparse use of the source's singular directions (solver).

In the full orthogonal completions of the source SVD (``U0`` p x p, ``V0`` q x q) the
target's coefficients are ``C = U0 A V0^T`` and SparseSMART writes ``A = P D Q^T``
(rank r, P and Q orthonormal). A zero row i of ``P D`` means that C does not use the
source's left direction ``u_i``; a zero row j of ``Q D`` that it does not use ``v_j``.
Because P and Q are orthonormal, ``||(P D)_i.||_2 = ||A_i.||_2`` and
``||(Q D)_j.||_2 = ||A_.j||_2``, so the penalty on those rows is a group penalty on the
rows and columns of A. With the moments in source coordinates ``G = U0^T Sxx U0`` and
``H = U0^T Sxy V0`` (``(1/2n)||Y - X C||^2 = const + f(A)``):

    minimise   f(A) + lam ( sum_{i not in a_u} ||A_i.||_2 + sum_{j not in a_v} ||A_.j||_2 )
    subject to rank(A) <= r,        f(A) = (1/2) <G A, A> - <H, A>,

where the anchors ``a_u``, ``a_v`` (r directions a side, never penalised) are chosen from
a pilot by energy screening and a rank-revealing (column-pivoted) QR
(:func:`select_anchors`).

**Solver** (:func:`sparse_smart`): proximal gradient with the step ``t = 1 / L``,
``L = lambda_max(G)``,

    A+ = T_r( prox_{t lam P}( A - t (G A - H) ) ),

``prox`` the exact prox of the row-plus-column group penalty (soft thresholding; both
groups at once by Dykstra's algorithm, :func:`prox_rows_columns`) and ``T_r`` the hard
rank-r truncation (Eckart-Young). A step is kept only if it lowers the objective
(backtracking halves t otherwise). It stops when ``||A+ - A||_F <= tol (1 + ||A||_F)``.
With ``r = min(p, q)`` no truncation happens and this is the proximal gradient method for
a convex problem (CVXPY twin :func:`sparse_smart_cvx`); with a rank constraint the
problem is not convex and the fixed point is a stationary point of the map, not a
certified global optimum.

Every function takes and returns plain arrays.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ..solvers._base import SolverResult, warn_not_converged
from ..solvers.sparse_rrr import group_soft_threshold, lipschitz


def penalty(A, lam, free_u, free_v):
    """``lam (sum_{i in free_u} ||A_i.|| + sum_{j in free_v} ||A_.j||)`` (free: the
    non-anchor rows and columns, boolean masks)."""
    rows = np.sqrt(np.sum(A[free_u] ** 2, axis=1)).sum()
    cols = np.sqrt(np.sum(A[:, free_v] ** 2, axis=0)).sum()
    return float(lam * (rows + cols))


def objective(G, H, A, lam, free_u, free_v, GA=None):
    """``f(A) + penalty``, f(A) = (1/2)<G A, A> - <H, A> (``GA``: the product ``G @ A``
    when the caller has it)."""
    GA = G @ A if GA is None else GA
    return float(0.5 * np.sum(GA * A) - np.sum(H * A)) + penalty(A, lam, free_u, free_v)


def prox_rows_columns(B, s, free_u, free_v, tol=1e-12, max_iter=500):
    """The exact prox of ``s (sum_{free rows} ||A_i.|| + sum_{free cols} ||A_.j||)`` at B,
    by Dykstra's algorithm between the row and the column group soft-thresholding (each
    a prox in closed form); it converges to the prox of the sum.

    Returns
    -------
    ndarray
        ``argmin_A (1/2)||A - B||_F^2 + s (...)``.
    """
    t_rows = np.where(free_u, s, 0.0)
    t_cols = np.where(free_v, s, 0.0)
    if not free_v.any():
        return group_soft_threshold(B, t_rows)
    if not free_u.any():
        return group_soft_threshold(B.T, t_cols).T
    x, p, q = B.copy(), np.zeros_like(B), np.zeros_like(B)
    for _ in range(max_iter):
        y = group_soft_threshold(x + p, t_rows)
        p = x + p - y
        x_new = group_soft_threshold((y + q).T, t_cols).T
        q = y + q - x_new
        if np.linalg.norm(x_new - x) <= tol * (1.0 + np.linalg.norm(x)):
            return x_new
        x = x_new
    return x


def truncate_rank(A, r):
    """The best rank-r approximation of A (Eckart-Young)."""
    if r >= min(A.shape):
        return A
    W, s, Zt = linalg.svd(A, full_matrices=False)
    return (W[:, :r] * s[:r]) @ Zt[:r]


def lam_max(G, H, free_u, free_v):
    """The top of the lam path: the largest norm of a free row or column of H (the
    gradient at A = 0 is -H). It sets the path's scale; the lam at which the free
    directions leave the fit exactly depends on the anchors' fit and may be larger."""
    rows = np.sqrt(np.sum(H[free_u] ** 2, axis=1))
    cols = np.sqrt(np.sum(H[:, free_v] ** 2, axis=0))
    return float(max(rows.max(initial=0.0), cols.max(initial=0.0)))


def select_anchors(A_pilot, r, screen=None):
    """Anchor directions of one side: energy screening, then a column-pivoted QR.

    The rows of the pilot ``A_pilot`` (directions x the other side) with the ``screen``
    largest energies ``||A_i.||^2`` (default 2r) are kept, and among them the first r
    pivots of the QR with column pivoting of their transpose (the most linearly
    independent high-energy directions) are the anchors.

    Returns
    -------
    ndarray of int
        r anchor indices (ascending).
    """
    m = A_pilot.shape[0]
    r = min(r, m)
    screen = min(m, 2 * r if screen is None else screen)
    energy = np.sum(A_pilot ** 2, axis=1)
    keep = np.argsort(-energy, kind="stable")[:screen]
    _, _, piv = linalg.qr(A_pilot[keep].T, mode="economic", pivoting=True)
    return np.sort(keep[piv[:r]])


def sparse_smart(G, H, rank, lam, anchors_u, anchors_v, A_init=None, tol=1e-8,
                 max_iter=5000, warn=True):
    """Proximal gradient with soft then hard thresholding (module docstring).

    Parameters
    ----------
    G : ndarray (p, p)
        ``U0^T Sxx U0``.
    H : ndarray (p, q)
        ``U0^T Sxy V0``.
    rank : int
    lam : float
        >= 0.
    anchors_u, anchors_v : array of int
        Unpenalised rows and columns.
    A_init : ndarray (p, q), optional
        Start (default 0).
    tol, max_iter : float, int
    warn : bool
        ConvergenceWarning when ``max_iter`` is reached or no descent step exists.

    Returns
    -------
    SolverResult
        ``coef`` is A; ``history`` has ``objective`` and ``step``.
    """
    p, q = H.shape
    free_u = np.ones(p, bool)
    free_u[np.asarray(anchors_u, int)] = False
    free_v = np.ones(q, bool)
    free_v[np.asarray(anchors_v, int)] = False
    L = lipschitz(G)
    A = np.zeros((p, q)) if A_init is None else truncate_rank(np.array(A_init, float), rank)
    GA = G @ A                  # one product with G per trial point, reused as the gradient
    F = objective(G, H, A, lam, free_u, free_v, GA)
    hist = {"objective": [], "step": []}
    stop, crit = "max_iter", np.inf
    for it in range(1, max_iter + 1):
        t = 1.0 / L
        grad = GA - H
        for _ in range(30):                       # backtracking: descent or give up
            A_new = truncate_rank(prox_rows_columns(A - t * grad, t * lam, free_u, free_v),
                                  rank)
            GA_new = G @ A_new
            F_new = objective(G, H, A_new, lam, free_u, free_v, GA_new)
            if F_new <= F + 1e-14 * max(1.0, abs(F)):
                break
            t *= 0.5
        else:
            stop = "stalled"
            break
        crit = np.linalg.norm(A_new - A) / (1.0 + np.linalg.norm(A))
        A, F, GA = A_new, F_new, GA_new
        hist["objective"].append(F)
        hist["step"].append(t)
        if crit <= tol:
            stop = "converged"
            break
    converged = stop == "converged"
    if not converged and warn:
        warn_not_converged("SparseSMART", len(hist["objective"]), crit, tol)
    return SolverResult(A, converged, len(hist["objective"]), hist, F,
                        {"free_u": free_u, "free_v": free_v}, stop_reason=stop)


def sparse_smart_cvx(G, H, lam, anchors_u, anchors_v, **solver_opts):
    """The convex problem (no rank constraint) in CVXPY: the twin of
    :func:`sparse_smart` with ``rank = min(p, q)``. Returns ``(A, objective)``."""
    import cvxpy as cp

    p, q = H.shape
    free_u = np.setdiff1d(np.arange(p), anchors_u)
    free_v = np.setdiff1d(np.arange(q), anchors_v)
    A = cp.Variable((p, q))
    R = np.linalg.cholesky(0.5 * (G + G.T) + 1e-12 * np.eye(p)).T     # G = R^T R
    pen = 0
    if len(free_u):
        pen = pen + cp.sum(cp.norm(A[free_u, :], 2, axis=1))
    if len(free_v):
        pen = pen + cp.sum(cp.norm(A[:, free_v], 2, axis=0))
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(R @ A) - cp.sum(cp.multiply(H, A))
                                  + lam * pen))
    prob.solve(**solver_opts)
    Av = np.asarray(A.value)
    fu = np.ones(p, bool)
    fu[anchors_u] = False
    fv = np.ones(q, bool)
    fv[anchors_v] = False
    return Av, objective(G, H, Av, lam, fu, fv)
