"""The Stiefel toolkit: kernels on ``St(m, r) = {X in R^{m x r} : X^T X = I_r}``.

Only NumPy linear algebra: no manifold library, no autodiff. With the embedded metric,

* :func:`tangent_projection` -- ``P_X(Z) = Z - X sym(X^T Z)``, the orthogonal projection on
  the tangent space at X (:func:`riemannian_gradient` applies it to a Euclidean gradient);
* :func:`retract_polar`, :func:`retract_qr` -- the polar and QR retractions
  ``R_X(xi) = polar(X + xi)`` and ``qf(X + xi)`` (:func:`polar`, :func:`qr_pos`: the
  orthonormal factors, the QR one with a positive diagonal of R so that it is unique);
* :func:`armijo_search` -- backtracking along a retraction curve under the (possibly
  nonmonotone) Armijo rule, with a stop reason;
* :func:`mm_quadratic` -- the one nontrivial solver: it minimises the quadratic subproblems
  of the SMART ADMM (:mod:`mtltransfer.smart.admm`) by Riemannian gradient steps with
  Barzilai-Borwein lengths and a majorise-minimise fallback whose minimiser is a polar
  factor (one thin SVD of an m x r matrix per step);
* :func:`subspace_quadratic` -- the same subproblems by Rayleigh-Ritz subspace steps (one
  product with the quadratic's matrix per step), for a large, expensive matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg.lapack import dgesdd as _dgesdd


__all__ = ["polar", "qr_pos", "sym", "tangent_projection", "riemannian_gradient",
           "retract_polar", "retract_qr", "LineSearchResult", "armijo_search",
           "mm_quadratic", "subspace_quadratic"]


def polar(M):
    """Orthonormal polar factor of ``M`` (m x r, m >= r): ``argmax_{X in St(m, r)} <M, X>``.

    With the thin SVD ``M = P s Q^T`` it is ``P Q^T`` (unique when M has full column rank;
    otherwise any maximiser, as returned by the SVD).
    """
    if M.shape[1] == 0:
        return M.copy()
    if M.dtype == np.float64 and M.shape[0] >= M.shape[1]:
        # LAPACK's gesdd called directly: the same factorisation as np.linalg.svd,
        # without its wrapper's overhead (these SVDs are small and very many)
        P, _, Qt, info = _dgesdd(M, full_matrices=0)
        if info == 0:
            return P @ Qt
    P, _, Qt = np.linalg.svd(M, full_matrices=False)
    return P @ Qt


def qr_pos(M):
    """Thin QR factorisation ``M = Q R`` with ``diag(R) >= 0``.

    The sign convention makes Q unique when M has full column rank (it is then the
    Gram-Schmidt orthonormalisation of M's columns, a smooth function of M).

    Returns
    -------
    Q : ndarray (m, r)
        Orthonormal columns.
    R : ndarray (r, r)
        Upper triangular with a nonnegative diagonal.
    """
    Q, R = np.linalg.qr(M)
    s = np.where(np.diag(R) < 0, -1.0, 1.0)
    return Q * s, R * s[:, None]


def sym(S):
    """Symmetric part ``(S + S^T) / 2`` of a square matrix."""
    return 0.5 * (S + S.T)


def tangent_projection(X, Z):
    """Orthogonal projection of ``Z`` (m x r) on the tangent space of St(m, r) at ``X``.

    ``P_X(Z) = Z - X sym(X^T Z)`` (embedded metric): the tangent space at X is
    ``{xi : X^T xi + xi^T X = 0}``.
    """
    return Z - X @ sym(X.T @ Z)


def riemannian_gradient(X, egrad):
    """Riemannian gradient ``P_X(egrad)`` of a function with Euclidean gradient ``egrad``.

    It vanishes exactly at the first-order stationary points of a smooth function
    restricted to the manifold (see :func:`tangent_projection`).
    """
    return tangent_projection(X, egrad)


def retract_polar(X, xi):
    """Polar retraction ``R_X(xi) = polar(X + xi)`` (the closest point of St(m, r))."""
    return polar(X + xi)


def retract_qr(X, xi):
    """QR retraction ``R_X(xi) = Q`` of ``X + xi = Q R``, ``diag(R) >= 0`` (:func:`qr_pos`)."""
    return qr_pos(X + xi)[0]


@dataclass
class LineSearchResult:
    """Outcome of :func:`armijo_search`.

    Attributes
    ----------
    X : ndarray
        The last trial point (the accepted one when ``stop_reason == "armijo"``).
    value : float
        The objective at X.
    aux : object
        Whatever the evaluation returned beside the value at X (gradients, products).
    step : float
        Step length of the last trial.
    n_trials : int
        Number of trial points evaluated.
    stop_reason : str
        ``"armijo"`` (sufficient decrease) or ``"max_backtracks"`` (the budget of
        backtracking steps ran out: X is then the last, shortest trial).
    """

    X: np.ndarray
    value: float
    aux: Any
    step: float
    n_trials: int
    stop_reason: str

    @property
    def accepted(self):
        """Whether the last trial satisfied the Armijo rule."""
        return self.stop_reason == "armijo"


def armijo_search(evaluate, X, direction, step, decrease, *, reference,
                  retraction=retract_polar, c1=1e-4, shrink=0.5, max_backtracks=3):
    """Backtracking line search along a retraction curve under the Armijo rule.

    Trial points ``X_t = R_X(t D)`` for ``t = step, shrink step, shrink^2 step, ...`` are
    evaluated until

        F(X_t) <= reference - c1 t decrease,

    with ``decrease = -<grad F(X), D> >= 0`` (``||g||^2`` for the steepest-descent direction
    ``D = -g``). ``reference = F(X)`` is the classical monotone rule; a running average of
    past values (Zhang and Hager, 2004) gives the nonmonotone one.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(Y) -> (value, aux)``: F at a trial point and anything the caller wants
        to keep from that evaluation.
    X : ndarray (m, r)
        Current point on the manifold.
    direction : ndarray (m, r)
        Search direction D (a tangent vector at X).
    step : float
        First trial step length.
    decrease : float
        ``-<grad F(X), D>``.
    reference : float
        Reference value of the rule.
    retraction : callable
        ``retraction(X, xi)``: :func:`retract_polar` (default) or :func:`retract_qr`.
    c1 : float
        Sufficient-decrease constant.
    shrink : float
        Factor applied to t after a failed trial.
    max_backtracks : int
        At most ``max_backtracks + 1`` trial points are evaluated.

    Returns
    -------
    LineSearchResult
    """
    t = step
    for trial in range(max_backtracks + 1):
        Y = retraction(X, t * direction)
        value, aux = evaluate(Y)
        if value <= reference - c1 * t * decrease:
            return LineSearchResult(Y, value, aux, t, trial + 1, "armijo")
        if trial < max_backtracks:
            t *= shrink
    return LineSearchResult(Y, value, aux, t, max_backtracks + 1, "max_backtracks")


def mm_quadratic(X, C, rho, k, W, *, Q=None, w=None, L_Q=0.0, QX=None, tol=1e-8,
                 max_steps=50, step0=None):
    """Minimise a quadratic over St(m, r) by polar steps with Barzilai-Borwein lengths.

    The subproblem is

        F(X) = 1/2 sum_j w_j x_j^T Q x_j - <C, X> + (rho/2) ||X[k:] - W||_F^2,  X^T X = I_r,

    (``Q`` symmetric positive semidefinite, ``w >= 0``; ``Q=None`` means no quadratic term).
    Its Euclidean gradient is ``egrad = Q X diag(w) - C + rho E_k(X[k:] - W)`` (``E_k`` pads
    k zero rows on top) and its Riemannian gradient ``g = P_X(egrad)``
    (:func:`tangent_projection`).

    Each step is ``X+ = polar(X - t g)`` (:func:`retract_polar` of a Riemannian gradient
    step) with the alternating Barzilai-Borwein length ``t = <S,S>/|<S,D>|`` or
    ``|<S,D>|/<D,D>`` (``S = X+ - X``, ``D = g+ - g``), accepted under the nonmonotone Armijo
    rule of Zhang and Hager (2004), ``F(X+) <= C_t - 1e-4 t ||g||^2`` (``C_t = (0.85 q C_t +
    F) / (0.85 q + 1)`` a running average of past values, :func:`armijo_search`);
    otherwise t is halved (at most 3 times) and, failing that, the
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
    Q : ndarray (m, m), callable or None
        The quadratic's matrix, or a function ``X -> Q X`` (e.g. a product through a
        factor, ``Q = W^T W``).
    w : ndarray (r,) or None
        Column weights of the quadratic term.
    L_Q : float
        Upper bound of ``lambda_max(Q) * max(w)``.
    QX : ndarray (m, r) or None
        ``Q @ X`` if already known (saves one product).
    tol : float
    max_steps : int
    step0 : float or None
        First trial step length (e.g. the last one of a previous, similar subproblem;
        clipped to ``[1e-3, 1e3] / L``); None: ``1 / L``.

    Returns
    -------
    X : ndarray (m, r)
        Final point.
    QX : ndarray (m, r) or None
        ``Q @ X`` at the final point (None if ``Q`` is None).
    info : dict
        ``steps`` (polar steps taken), ``rgrad`` (Riemannian gradient norm at X),
        ``egrad`` (Euclidean gradient norm of the smooth data part ``Q X w - C``),
        ``value`` (F at X), ``step`` (the next Barzilai-Borwein length).
    """
    L = max(L_Q + rho, 1e-12)
    vdot = np.vdot

    def evaluate(X, QX=None):
        # value of F and (QX, g_data, egrad, rg) at X, with few array passes
        if Q is not None:
            if QX is None:
                QX = Q(X) if callable(Q) else Q @ X
            g_data = QX * w
            g_data -= C
            quad = 0.5 * float(np.einsum("ij,ij->j", QX, X) @ w)
        else:
            g_data = -C
            quad = 0.0
        R = X[k:] - W
        egrad = g_data.copy()
        egrad[k:] += rho * R
        value = quad - vdot(C, X) + 0.5 * rho * vdot(R, R)
        return value, (QX, g_data, egrad, tangent_projection(X, egrad))

    F, (QX, g_data, egrad, rg) = evaluate(X, QX)
    rr = vdot(rg, rg)
    steps = 0
    t = 1.0 / L if step0 is None else min(max(step0, 1e-3 / L), 1e3 / L)
    C_ref, q_ref = F, 1.0          # Zhang-Hager reference value and weight
    tol2 = tol * tol
    while rr > tol2 and steps < max_steps:
        ls = armijo_search(evaluate, X, -rg, t, rr, reference=C_ref, max_backtracks=3)
        if ls.accepted:
            Xn, Fn, aux = ls.X, ls.value, ls.aux
        else:                  # majorise-minimise step: guaranteed decrease
            Xn = polar(L * X - egrad)
            Fn, aux = evaluate(Xn)
        rgn = aux[3]
        S, D = Xn - X, rgn - rg
        sd = abs(vdot(S, D))
        steps += 1
        if sd > 0:
            t = vdot(S, S) / sd if steps % 2 else sd / vdot(D, D)
            t = min(max(t, 1e-3 / L), 1e3 / L)
        else:
            t = 1.0 / L
        X, F, (QX, g_data, egrad, rg) = Xn, Fn, aux
        rr = vdot(rg, rg)
        q_new = 0.85 * q_ref + 1.0
        C_ref = (0.85 * q_ref * C_ref + F) / q_new
        q_ref = q_new
    rr = float(rr)
    return X, QX, {"steps": steps, "rgrad": float(np.sqrt(rr)), "step": float(t),
                   "egrad": float(np.sqrt(vdot(g_data, g_data))), "value": float(F)}


def subspace_quadratic(X, C, rho, k, W, *, Q, w, L_Q, QX=None, tol=1e-8, max_steps=50,
                       P=None, small_tol=0.1, small_steps=30, first_steps=None):
    """Minimise the quadratic of :func:`mm_quadratic` by Rayleigh-Ritz subspace steps.

    Same subproblem as :func:`mm_quadratic`,

        F(X) = 1/2 sum_j w_j x_j^T Q x_j - <C, X> + (rho/2) ||X[k:] - W||_F^2,  X^T X = I_r,

    but built for a large, expensive ``Q`` (m x m): each step costs **one** product of Q
    with at most 2r columns (for m in the thousands this costs about one pass over Q, as
    a product with r columns does) plus O(m r^2) work, where a polar/Barzilai-Borwein
    step costs one product per trial point.

    One step. With the Riemannian gradient ``g = P_X(egrad)`` and the previous step's
    move ``P`` (outside span X), the block ``[g, P]`` is orthogonalised against X and
    orthonormalised (``K``; a direction whose part outside span X is below ``1e-6`` of
    its norm is dropped); with
    ``S = [X, K]`` (orthonormal, at most 3r columns) and ``Q S`` (the product ``Q K``
    computed, ``Q X`` carried), F is restricted to ``{S Y : Y in St(|S|, r)}``: the small
    problem

        F_S(Y) = 1/2 sum_j y_j^T (w_j S^T Q S + rho S_k^T S_k) y_j
                 - <S^T C + rho S_k^T W, Y>,    S_k = S[k:],

    is solved from ``Y0 = [I; 0]`` (that is X) by :func:`mm_quadratic` to a Riemannian
    gradient norm of ``max(tol / 2, small_tol ||g||)``, and ``X+ = S Y``, ``Q X+ = (Q S) Y``
    (so Q X is carried exactly, up to rounding, without a further product). This is the
    locally optimal block step of LOBPCG (Knyazev, 2001) applied to a Stiefel-constrained
    quadratic. Steps stop when ``||g||_F <= tol`` or after ``max_steps``.

    Guarantee. The Euclidean gradient ``egrad`` at X lies in span S (its part outside
    span X is the part of g outside span X), so S contains the Riemannian gradient step
    and the majorise-minimise step ``polar(L X - egrad)`` of :func:`mm_quadratic`
    (``polar(S M) = S polar(M)`` for orthonormal S). The step keeps the better (in F) of
    the small solve's result and that MM step, so every step decreases F at least as
    much as one MM step, and the convergence of the MM iteration (F decreasing, every
    limit point stationary, ``||g|| -> 0``) carries over.

    Parameters
    ----------
    X, C, rho, k, W, Q, w, L_Q, QX, tol, max_steps
        As for :func:`mm_quadratic` (``Q`` required: a matrix or a function ``X -> Q X``).
    P : ndarray (m, r) or None
        The previous step's move (e.g. from a previous, similar subproblem).
    small_tol : float
        Relative tolerance of the small problems (their gradient norm below
        ``small_tol ||g||``, or ``tol / 2``).
    small_steps : int
        Maximum polar steps per small problem.
    first_steps : int or None
        With ``tol <= 0`` (a fixed budget), at most this many steps.

    Returns
    -------
    X : ndarray (m, r)
    QX : ndarray (m, r)
        ``Q @ X`` at the final point.
    info : dict
        As for :func:`mm_quadratic`, plus ``P`` (the last move, for a warm start) and
        ``products`` (the number of columns multiplied by Q).
    """
    apply = Q if callable(Q) else Q.__matmul__
    r = X.shape[1]
    L = max(L_Q + rho, 1e-12)
    if QX is None:
        QX = apply(X)
        n_cols = r
    else:
        n_cols = 0
    steps = 0
    t_small = None
    vdot = np.vdot
    C_full = C.copy()                                 # C + rho E_k W: the linear term
    C_full[k:] += rho * W
    if tol <= 0 and first_steps is not None:
        max_steps = min(max_steps, first_steps)
    while True:
        g_data = QX * w
        g_data -= C
        R = X[k:] - W
        egrad = g_data.copy()
        egrad[k:] += rho * R
        rg = tangent_projection(X, egrad)
        rr = float(vdot(rg, rg))
        if rr <= tol * tol or steps >= max_steps:
            break
        # the new directions: g and the previous move, orthogonal to X, orthonormal
        blocks = [rg] if P is None else [rg, P]
        K = np.hstack(blocks)
        norms = np.sqrt(np.einsum("ij,ij->j", K, K))
        K = K[:, norms > 1e-300] / norms[norms > 1e-300]
        K -= X @ (X.T @ K)
        K -= X @ (X.T @ K)
        # an orthonormal basis of span K (eigenvectors of K^T K) without the directions
        # whose part outside span X is below 1e-6 of the unit columns they came from
        # (rounding noise there is not orthogonal to X), orthogonalised again, by QR
        lam, V = np.linalg.eigh(K.T @ K)
        keep = lam > 1e-12
        Uk = K @ (V[:, keep] / np.sqrt(lam[keep]))
        Uk -= X @ (X.T @ Uk)
        Uk = np.linalg.qr(Uk)[0]
        Uk -= X @ (X.T @ Uk)
        QK = apply(Uk)
        n_cols += Uk.shape[1]
        S = np.hstack([X, Uk])
        QS = np.hstack([QX, QK])
        Gs = S.T @ QS
        Gs = 0.5 * (Gs + Gs.T)
        s = S.shape[1]
        S_top = S[:k]
        Ms = np.eye(s) - S_top.T @ S_top             # S[k:]^T S[k:], S orthonormal
        Cs = S.T @ C_full
        Y0 = np.eye(s, r)

        def small_q(Y, Gs=Gs, Ms=Ms):
            return (Gs @ Y) * w + rho * (Ms @ Y)

        Y, _, info = mm_quadratic(Y0, Cs, 0.0, s, np.zeros((0, r)), Q=small_q,
                                  w=np.ones(r), L_Q=L,
                                  tol=max(0.5 * tol, small_tol * np.sqrt(rr)),
                                  max_steps=small_steps, step0=t_small)
        t_small = info["step"]
        # the majorise-minimise step of the full problem lies in the subspace
        Y_mm = polar(L * Y0 - (small_q(Y0) - Cs))
        QY_mm = small_q(Y_mm)
        f_mm = 0.5 * float(np.einsum("ij,ij->", QY_mm, Y_mm)) - float(vdot(Cs, Y_mm))
        if f_mm < info["value"]:
            Y = Y_mm
        Xn = S @ Y
        P = Uk @ Y[r:]
        QX = QS @ Y
        X = Xn
        steps += 1
    return X, QX, {"steps": steps, "rgrad": float(np.sqrt(rr)),
                   "egrad": float(np.sqrt(vdot(g_data, g_data))), "value": float(
                       0.5 * float(np.einsum("ij,ij->j", QX, X) @ w) - vdot(C, X)
                       + 0.5 * rho * vdot(R, R)),
                   "step": None, "P": P, "products": n_cols}
