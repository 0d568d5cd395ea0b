"""Small kernels on the Stiefel manifold ``St(m, r) = {X in R^{m x r} : X^T X = I_r}``.

Only NumPy/SciPy linear algebra: no manifold library, no autodiff. The one nontrivial
solver, :func:`mm_quadratic`, minimises the quadratic subproblems of the SMART ADMM
(:mod:`mtltransfer.solvers.admm`) by majorise-minimise steps whose minimiser is a polar
factor (one thin SVD of an m x r matrix per step).
"""

from __future__ import annotations

import numpy as np


def polar(M):
    """Orthonormal polar factor of ``M`` (m x r, m >= r): ``argmax_{X in St(m, r)} <M, X>``.

    With the thin SVD ``M = P s Q^T`` it is ``P Q^T`` (unique when M has full column rank;
    otherwise any maximiser, as returned by the SVD).
    """
    if M.shape[1] == 0:
        return M.copy()
    P, _, Qt = np.linalg.svd(M, full_matrices=False)
    return P @ Qt


def sym(S):
    """Symmetric part ``(S + S^T) / 2`` of a square matrix."""
    return 0.5 * (S + S.T)


def riemannian_gradient(X, egrad):
    """Projection of a Euclidean gradient on the tangent space of St(m, r) at ``X``.

    ``grad = egrad - X sym(X^T egrad)`` (embedded metric); it vanishes exactly at the
    first-order stationary points of a smooth function restricted to the manifold.
    """
    return egrad - X @ sym(X.T @ egrad)


def mm_quadratic(X, C, rho, k, W, *, Q=None, w=None, L_Q=0.0, QX=None, tol=1e-8,
                 max_steps=50):
    """Minimise a quadratic over St(m, r) by polar steps with Barzilai-Borwein lengths.

    The subproblem is

        F(X) = 1/2 sum_j w_j x_j^T Q x_j - <C, X> + (rho/2) ||X[k:] - W||_F^2,  X^T X = I_r,

    (``Q`` symmetric positive semidefinite, ``w >= 0``; ``Q=None`` means no quadratic term).
    Its Euclidean gradient is ``egrad = Q X diag(w) - C + rho E_k(X[k:] - W)`` (``E_k`` pads
    k zero rows on top) and its Riemannian gradient ``g = egrad - X sym(X^T egrad)``.

    Each step is ``X+ = polar(X - t g)`` (polar retraction of a Riemannian gradient step)
    with the alternating Barzilai-Borwein length ``t = <S,S>/|<S,D>|`` or ``|<S,D>|/<D,D>``
    (``S = X+ - X``, ``D = g+ - g``), accepted under the nonmonotone Armijo rule of Zhang and
    Hager (2004), ``F(X+) <= C_t - 1e-4 t ||g||^2`` (``C_t`` a running average of past
    values); otherwise t is halved (at most 3 times) and, failing that, the
    majorise-minimise step is taken, which always decreases F: with
    ``L = L_Q + rho >= lambda_max(Q) max w + rho``, F is majorised at X by
    ``F(X) + <egrad, Y - X> + (L/2)||Y - X||^2``, minimised over the manifold
    (``||Y||_F^2 = r`` there) by ``Y = polar(L X - egrad)``. Steps stop when ``||g||_F <= tol``
    or after ``max_steps``.

    Parameters
    ----------
    X : ndarray (m, r)
        Starting point on the manifold.
    C : ndarray (m, r)
        Linear term.
    rho : float
        Weight of the proximal term on rows ``k:``.
    k : int
        Number of unpenalised leading rows (0 <= k <= m).
    W : ndarray (m - k, r)
        Centre of the proximal term.
    Q : ndarray (m, m) or None
    w : ndarray (r,) or None
        Column weights of the quadratic term.
    L_Q : float
        Upper bound of ``lambda_max(Q) * max(w)``.
    QX : ndarray (m, r) or None
        ``Q @ X`` if already known (saves one product).
    tol : float
    max_steps : int

    Returns
    -------
    X : ndarray (m, r)
        Final point.
    QX : ndarray (m, r) or None
        ``Q @ X`` at the final point (None if ``Q`` is None).
    info : dict
        ``steps`` (polar steps taken), ``rgrad`` (Riemannian gradient norm at X),
        ``egrad`` (Euclidean gradient norm of the smooth data part ``Q X w - C``),
        ``value`` (F at X).
    """
    L = max(L_Q + rho, 1e-12)
    vdot = np.vdot

    def evaluate(X, QX):
        # gradient, Riemannian gradient and value of F at X, with few array passes
        if Q is not None:
            if QX is None:
                QX = Q @ X
            g_data = QX * w
            g_data -= C
            quad = 0.5 * float(np.einsum("ij,ij->j", QX, X) @ w)
        else:
            g_data = -C
            quad = 0.0
        R = X[k:] - W
        egrad = g_data.copy()
        egrad[k:] += rho * R
        XtE = X.T @ egrad
        rg = egrad - X @ (0.5 * (XtE + XtE.T))
        value = quad - vdot(C, X) + 0.5 * rho * vdot(R, R)
        return QX, g_data, egrad, rg, value

    QX, g_data, egrad, rg, F = evaluate(X, QX)
    rr = vdot(rg, rg)
    steps = 0
    t = 1.0 / L
    C_ref, q_ref = F, 1.0          # Zhang-Hager reference value and weight
    tol2 = tol * tol
    while rr > tol2 and steps < max_steps:
        accepted = False
        for _ in range(4):
            Xn = polar(X - t * rg)
            QXn, g_datan, egradn, rgn, Fn = evaluate(Xn, None)
            if Fn <= C_ref - 1e-4 * t * rr:
                accepted = True
                break
            t *= 0.5
        if not accepted:       # majorise-minimise step: guaranteed decrease
            Xn = polar(L * X - egrad)
            QXn, g_datan, egradn, rgn, Fn = evaluate(Xn, None)
        S, D = Xn - X, rgn - rg
        sd = abs(vdot(S, D))
        steps += 1
        if sd > 0:
            t = vdot(S, S) / sd if steps % 2 else sd / vdot(D, D)
            t = min(max(t, 1e-3 / L), 1e3 / L)
        else:
            t = 1.0 / L
        X, QX, g_data, egrad, rg, F = Xn, QXn, g_datan, egradn, rgn, Fn
        rr = vdot(rg, rg)
        q_new = 0.85 * q_ref + 1.0
        C_ref = (0.85 * q_ref * C_ref + F) / q_new
        q_ref = q_new
    rr = float(rr)
    return X, QX, {"steps": steps, "rgrad": float(np.sqrt(rr)),
                   "egrad": float(np.sqrt(vdot(g_data, g_data))), "value": float(F)}
