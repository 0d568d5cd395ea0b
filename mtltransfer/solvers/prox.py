"""Proximal operators and the accelerated proximal-gradient solver for NuclearNorm."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ..gram import quadratic_loss
from ._base import SolverResult, warn_not_converged


def soft_threshold(Z, t):
    """Entrywise soft-thresholding S_t(Z) = sign(Z) max(|Z| - t, 0), the prox of t||.||_1."""
    return np.sign(Z) * np.maximum(np.abs(Z) - t, 0.0)


def svt(Z, t):
    """Singular value thresholding, the prox of t||.||_*: U max(s - t, 0) V^T.

    Returns
    -------
    C : ndarray
    s : ndarray
        The thresholded singular values (zeros included).
    """
    try:
        U, s, Vt = linalg.svd(Z, full_matrices=False, check_finite=False)
    except linalg.LinAlgError:
        # LAPACK's divide and conquer (gesdd) fails to converge on rare finite matrices
        # (a 300 x 200 iterate of TwoStageTransfer's CV path); gesvd does not
        U, s, Vt = linalg.svd(Z, full_matrices=False, lapack_driver="gesvd")
    s = np.maximum(s - t, 0.0)
    k = int(np.count_nonzero(s))
    return (U[:, :k] * s[:k]) @ Vt[:k], s


#: relative threshold of the one rank rule (:func:`nuclear_rank`)
RANK_RTOL = 1e-8


def nuclear_rank(s, rtol=RANK_RTOL):
    """Rank of a nuclear-norm estimate from its singular values ``s``.

    The number of singular values above ``rtol * max(s)``. For the fast solvers ``s`` are
    the thresholded values that :func:`svt` returns for the final iterate (the values it
    sets to zero are exactly zero); for a CVXPY solution, the singular values of its
    coefficient matrix, whose discarded directions are only approximately zero.
    """
    s = np.asarray(s, dtype=float)
    if s.size == 0:
        return 0
    return int(np.count_nonzero(s > rtol * max(float(s.max()), np.finfo(float).tiny)))


def accelerated_proximal_gradient(smooth, prox, x0, lipschitz, *, tol, max_iter,
                                  name="accelerated proximal gradient", warn=True,
                                  verbose=False, affine_gradient=False):
    r"""Minimise :math:`F(x) = f(x) + h(x)` by FISTA with a monotone restart.

    ``f`` is smooth with an ``L``-Lipschitz gradient (``L = lipschitz``), ``h`` has a
    computable prox. From :math:`x_0`, :math:`v_0 = x_0`, :math:`a_0 = 1`, each iteration
    is

    .. math::

       x_+ &= \operatorname{prox}_{h/L}\bigl(v - \nabla f(v) / L\bigr), \qquad
       G = L (v - x_+),\\
       a_+ &= \bigl(1 + \sqrt{1 + 4 a^2}\bigr) / 2, \qquad
       v_+ = x_+ + \frac{a - 1}{a_+} (x_+ - x),

    except that if :math:`F(x_+) > F(x)` and :math:`a > 1`, the step is redone from
    :math:`v = x`, :math:`a = 1` (restart).

    The restart (O'Donoghue and Candes, 2015, function-value scheme) makes the accepted
    objective values non-increasing; a step from ``v = x`` without momentum always
    decreases F, so a restart is never repeated.

    Stopping rule (optimality): ``G = L (v - x+)`` is the prox-gradient mapping, zero
    exactly at a minimiser, and ``G + grad f(x+) - grad f(v)`` is a subgradient of F at
    :math:`x_+`, so :math:`\operatorname{dist}(0, \partial F(x_+)) \le 2 \|G\|`. The
    solver stops when the relative residual

    .. math::

       \|G\|_F / \max(\|\nabla f(0)\|_F, \text{tiny}) \le \mathrm{tol}

    (``grad f(0)`` fixes the scale of the gradients, independently of the start) and
    returns ``x+``; ``stop_reason`` is then ``"converged"``, otherwise ``"max_iter"``
    with a ConvergenceWarning (when ``warn``).

    Parameters
    ----------
    smooth : callable
        ``smooth(x, grad) -> (f(x), grad f(x) or None)``.
    prox : callable
        ``prox(z, step) -> (x, h(x), aux)``: the prox of ``step * h`` at z, the value of
        h at its output and anything the caller wants back for the final iterate (for
        :func:`svt`, the singular values).
    x0 : ndarray
        Start (not modified).
    lipschitz : float
        The Lipschitz constant L of grad f (> 0).
    tol : float
    max_iter : int
    name : str
        Used in the warning.
    warn, verbose : bool
    affine_gradient : bool
        Whether ``grad f`` is affine (f quadratic). Then ``grad f(v+)`` is
        ``grad f(x+) + ((a - 1) / a+) (grad f(x+) - grad f(x))``, formed from the gradients
        at the iterates, so each iteration evaluates ``smooth`` once (at x+, with its
        gradient) instead of twice.

    Returns
    -------
    SolverResult
        ``coef`` = x; ``history`` with ``objective`` and ``criterion`` per accepted
        iteration; ``extra`` with ``lipschitz``, ``aux`` (the prox's ``aux`` at the
        returned x, None when no step was taken) and ``restarts``.
    """
    L = max(float(lipschitz), np.finfo(float).tiny)
    x = np.array(x0, dtype=float)
    g0 = smooth(np.zeros_like(x), True)[1]
    scale = max(float(np.linalg.norm(g0)), np.finfo(float).tiny)
    F = smooth(x, False)[0] + prox(x, 0.0)[1]
    v, a = x.copy(), 1.0
    g_x = g_v = smooth(x, True)[1] if affine_gradient else None
    hist = {"objective": [], "criterion": []}
    aux, n_iter, crit, restarts, stop = None, 0, np.inf, 0, "max_iter"
    for _ in range(max_iter):
        g = g_v if affine_gradient else smooth(v, True)[1]
        x_new, h_new, aux_new = prox(v - g / L, 1.0 / L)
        f_new, g_new = smooth(x_new, affine_gradient)
        F_new = f_new + h_new
        if F_new > F and a > 1.0:                 # restart: drop the momentum, redo
            v, a, g_v, restarts = x.copy(), 1.0, g_x, restarts + 1
            continue
        crit = L * float(np.linalg.norm(v - x_new)) / scale
        a_new = (1.0 + np.sqrt(1.0 + 4.0 * a * a)) / 2.0
        beta = (a - 1.0) / a_new
        v = x_new + beta * (x_new - x)
        if affine_gradient:
            g_v, g_x = g_new + beta * (g_new - g_x), g_new
        x, F, a, aux, n_iter = x_new, F_new, a_new, aux_new, n_iter + 1
        hist["objective"].append(float(F))
        hist["criterion"].append(crit)
        if verbose:
            print(f"iter {n_iter:5d}  objective={F:.12g}  criterion={crit:.3e}")
        if crit <= tol:
            stop = "converged"
            break
    converged = stop == "converged"
    if not converged and warn:
        warn_not_converged(name, n_iter, crit, tol)
    return SolverResult(coef=x, converged=converged, n_iter=n_iter, history=hist,
                        objective=float(F), stop_reason=stop,
                        extra={"lipschitz": L, "aux": aux, "restarts": restarts})


def nuclear_prox(lam, threshold=None):
    """The prox of ``lam ||.||_*`` in the form :func:`accelerated_proximal_gradient` takes.

    ``prox(Z, step) = (SVT_{step lam}(Z), lam ||SVT(Z)||_*, s)`` with ``s`` the thresholded
    singular values: the nuclear norm of the output comes from the SVD the threshold
    already computed. ``threshold`` replaces :func:`svt` (same signature).
    """
    threshold = svt if threshold is None else threshold

    def prox(Z, step):
        X, s = threshold(Z, step * lam)
        return X, lam * float(s.sum()), s
    return prox


def nuclear_norm_objective(Sxx, Sxy, Syy, C, lam):
    """(1/2n)||Y - XC||_F^2 + lam ||C||_* from the moments."""
    return quadratic_loss(Sxx, Sxy, Syy, C) + lam * np.linalg.norm(C, "nuc")


def nuclear_norm_apg(Sxx, Sxy, Syy, lam, *, C_init=None, tol=1e-8, max_iter=5000,
                     lipschitz=None, warn=True, threshold=None):
    r"""Minimise :math:`\frac{1}{2n}\|Y - XC\|_F^2 + \lambda \|C\|_*` by FISTA.

    The smooth part
    :math:`f(C) = \frac12 \operatorname{tr} S_{yy} - \langle S_{xy}, C\rangle
    + \frac12 \langle S_{xx} C, C\rangle` has gradient :math:`S_{xx} C - S_{xy}` and
    Lipschitz constant :math:`L = \lambda_{\max}(S_{xx})`; the prox is singular value
    thresholding. Driver, restart and stopping rule (the prox-gradient mapping
    relative to ``||Sxy||_F``): :func:`accelerated_proximal_gradient`.

    Parameters
    ----------
    Sxx, Sxy, Syy : ndarray
        Centred moments (see :mod:`mtltransfer.gram`).
    lam : float
        Penalty, at least 0.
    C_init : ndarray, optional
        Warm start (p x q).
    tol, max_iter : float, int
    lipschitz : float, optional
        Precomputed lambda_max(Sxx) (saves an eigenvalue computation along a path).
    warn : bool
        Issue a ConvergenceWarning when ``tol`` is not met.
    threshold : callable, optional
        ``threshold(Z, t) -> (SVT_t(Z), thresholded singular values)``: :func:`svt`
        (default) or an equivalent such as
        :func:`mtltransfer.solvers.contrast.svt_gram`.

    Returns
    -------
    SolverResult
        ``coef`` is C; ``history`` has the objective and the stopping criterion;
        ``extra`` has ``lipschitz``, ``singular_values`` of C and ``rank``
        (:func:`nuclear_rank`).
    """
    p, q = Sxy.shape
    L = lipschitz if lipschitz is not None else float(linalg.eigvalsh(Sxx)[-1])
    C0 = np.zeros((p, q)) if C_init is None else np.asarray(C_init, dtype=float)

    half_tr_syy = 0.5 * float(np.trace(Syy))

    def smooth(C, grad):
        SxxC = Sxx @ C            # one product gives f and its gradient
        f = half_tr_syy - float(np.sum(Sxy * C)) + 0.5 * float(np.sum(SxxC * C))
        return f, (SxxC - Sxy if grad else None)

    res = accelerated_proximal_gradient(smooth, nuclear_prox(lam, threshold), C0, L,
                                        affine_gradient=True, tol=tol,
                                        max_iter=max_iter, warn=warn,
                                        name="NuclearNorm proximal gradient")
    return nuclear_extras(res)


def nuclear_extras(res):
    """Move the driver's ``aux`` (the final SVT's singular values) of a nuclear-norm fit
    to ``res.extra["singular_values"]`` and add ``res.extra["rank"]``
    (:func:`nuclear_rank`); returns ``res``."""
    s = res.extra.pop("aux")
    if s is None:                                  # no step taken: the start is returned
        s = linalg.svdvals(res.coef)
    res.extra["singular_values"] = s
    res.extra["rank"] = nuclear_rank(s)
    return res


def nuclear_norm_lam_max(Sxy):
    """Smallest lam for which C = 0 is optimal: the spectral norm of Sxy."""
    return float(linalg.norm(Sxy, 2))
