"""SMART that borrows the source's magnitudes: the penalty ``(gamma/2)||C - C0||_F^2``.

With ``C = U diag(d) V^T`` (U, V orthonormal) and the source's SVD ``C0 = U0 S0 V0^T``
(:func:`~mtltransfer.smart.problem.source_svd`, ``U = U0 A``, ``V = V0 B``), the
added penalty splits into a pull of the target's singular values towards the source's
magnitudes *in the target's own frame* and a term in the subspaces only:

    (gamma/2)||C - C0||_F^2 = (gamma/2)||d - d0||^2 + (gamma/2)(||C0||_F^2 - ||d0||^2),
    d0_j = u_j^T C0 v_j = a_j^T S0 b_j,

(expand ``||A diag(d) B^T - S0||_F^2`` with ``A^T A = B^T B = I``). The whole penalty is the
same as fitting SMART to the moments of the data augmented by ``sqrt(n gamma) I`` rows with
responses ``sqrt(n gamma) C0`` (:func:`magnitude_moments`):

    Sxx' = Sxx + gamma I,   Sxy' = Sxy + gamma C0,   Syy' = Syy + gamma C0^T C0,

so the ADMM, the lambda path and the verification of SMART run unchanged on ``Sxx', Sxy',
Syy'``. Its d-step (the closed form of :func:`magnitude_d_step`) is

    d_j = (c_j + gamma d0_j) / (g_j + gamma),   c_j = a_j^T H b_j,  g_j = a_j^T G a_j,

exactly the plain d-step ``c'_j / g'_j`` of the augmented moments. Limits: ``gamma = 0`` is
the paper's SMART; at rank ``r >= rank(C0)`` the source itself is feasible (its penalty
``lam ||U_perp^T U0||_1`` is bounded), so ``gamma -> infinity`` gives ``C -> C0``; at
``r = min(p, q)`` and structural ranks ``(p, q)`` (nothing penalised) the fit is ridge
towards the source, :class:`~mtltransfer.RidgeToSource` with ``alpha = gamma``.

Why the whole ``||C - C0||`` and not only ``(gamma/2)||d - d0||^2``: with the second, the
subspaces are still chosen by the target alone and ``gamma -> infinity`` gives
``U diag(U^T C0 V) V^T``, a projection of C0 on subspaces fitted to the target, not C0;
with the first, the pull reaches the subspaces too (through ``-||d0||^2``) and the limit is
the source as is.
"""

from __future__ import annotations

import numpy as np

__all__ = ["magnitude_moments", "magnitude_d_step", "magnitude_d_step_cvx", "source_d0",
           "magnitude_penalty"]

_TINY = 1e-300


def magnitude_moments(Sxx, Sxy, Syy, C0, gamma):
    r"""The moments of SMART with the penalty :math:`\frac{\gamma}{2}\|C - C_0\|_F^2`.

    .. math::

       \frac{1}{2n}\|Y - XC\|_F^2 + \frac{\gamma}{2}\|C - C_0\|_F^2
       = \tfrac12 \operatorname{tr} S_{yy}' - \langle S_{xy}', C\rangle
         + \tfrac12 \langle S_{xx}' C, C\rangle

    with :math:`S_{xx}' = S_{xx} + \gamma I`, :math:`S_{xy}' = S_{xy} + \gamma C_0`,
    :math:`S_{yy}' = S_{yy} + \gamma C_0^\top C_0`.

    Parameters
    ----------
    Sxx, Sxy, Syy : ndarray
        Centred moments (p x p, p x q, q x q).
    C0 : ndarray (p, q)
    gamma : float
        ``>= 0``.

    Returns
    -------
    (Sxx', Sxy', Syy') : tuple of ndarray
        New arrays (the inputs are not modified).
    """
    gamma = float(gamma)
    if not (np.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma must be finite and >= 0; got {gamma!r}")
    C0 = np.asarray(C0, dtype=float)
    p = C0.shape[0]
    Syy2 = np.asarray(Syy, dtype=float) + gamma * (C0.T @ C0)
    return (np.asarray(Sxx, dtype=float) + gamma * np.eye(p),
            np.asarray(Sxy, dtype=float) + gamma * C0, 0.5 * (Syy2 + Syy2.T))


def source_d0(A, B, s0):
    """``d0_j = a_j^T S0 b_j = u_j^T C0 v_j``: the source's magnitudes in the target's frame.

    Parameters
    ----------
    A : ndarray (p, r)
    B : ndarray (q, r)
        The target's factors in source coordinates (``U = U0 A``, ``V = V0 B``).
    s0 : ndarray (min(p, q),)
        The source's singular values (S0 is p x q, ``diag(s0)`` in its leading block).

    Returns
    -------
    ndarray (r,)
    """
    k = len(s0)
    return np.einsum("ij,i,ij->j", A[:k], np.asarray(s0, dtype=float), B[:k])


def magnitude_d_step(c, g, d0, gamma):
    r"""The d-step with the magnitude penalty, in closed form.

    .. math::

       \operatorname*{argmin}_d \tfrac12 \sum_j g_j d_j^2 - \sum_j c_j d_j
       + \frac{\gamma}{2}\|d - d_0\|^2 = \frac{c + \gamma d_0}{g + \gamma}

    componentwise (components with :math:`g_j + \gamma \le 10^{-300}` are 0).

    Parameters
    ----------
    c, g, d0 : ndarray (r,)
        :math:`c_j = a_j^\top H b_j`, :math:`g_j = a_j^\top G a_j \ge 0`, ``d0`` of
        :func:`source_d0`.
    gamma : float

    Returns
    -------
    ndarray (r,)
    """
    c, g, d0 = (np.asarray(v, dtype=float) for v in (c, g, d0))
    den = g + gamma
    return np.where(den > _TINY, (c + gamma * d0) / np.maximum(den, _TINY), 0.0)


def magnitude_d_step_cvx(c, g, d0, gamma, **solver_opts):
    """CVXPY twin of :func:`magnitude_d_step` (Clarabel, tight tolerances by default).

    An ``optimal_inaccurate`` status raises ``RuntimeError``.
    """
    import cvxpy as cp

    from ..solvers.cvx import solve_reference

    c, g, d0 = (np.asarray(v, dtype=float) for v in (c, g, d0))
    d = cp.Variable(len(c))
    obj = 0.5 * cp.sum(cp.multiply(g, cp.square(d))) - c @ d + \
        0.5 * float(gamma) * cp.sum_squares(d - d0)
    solve_reference(cp.Problem(cp.Minimize(obj)), inaccurate="raise", **solver_opts)
    return np.asarray(d.value, dtype=float)


def magnitude_penalty(C, C0, gamma):
    """``(gamma/2)||C - C0||_F^2``."""
    D = np.asarray(C, dtype=float) - np.asarray(C0, dtype=float)
    return 0.5 * float(gamma) * float(np.sum(D * D))
