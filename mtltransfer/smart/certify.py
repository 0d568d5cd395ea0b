"""SMART's stationarity certificate and its verification against CVXPY.

:func:`stationarity` measures first-order optimality at a state of the ADMM
(:mod:`mtltransfer.smart.admm`): it decides ``converged`` there, and the results'
``verify()`` shows its measures with their thresholds. :func:`smart_verify` re-solves the
convex subproblems at a solution in CVXPY and measures the gradients.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..solvers.stiefel import riemannian_gradient
from .problem import resolve_problem

__all__ = ["stationarity", "smart_verify", "verify_state"]

_TINY = 1e-300


# ---------------------------------------------------------------------------------------
# the stationarity certificate
# ---------------------------------------------------------------------------------------
#: the measures of the certificate and how each is scaled (see :func:`stationarity`)
_CERT_GRADIENTS = ("kkt_u", "kkt_v", "rgrad_u", "rgrad_v", "grad_d")
_CERT_PRIMAL = ("primal_residual_u", "primal_residual_v")
#: the gradients' rounding floor, relative to the size of the terms as computed
_CERT_ROUNDING = 1e3 * np.finfo(float).eps


def stationarity(problem, state, r_u, r_v, *, tol=1e-6):
    """First-order optimality of a SMART state, measured at the state itself.

    With the data term's gradients ``g_A = G A diag(d^2) - H B diag(d)``,
    ``g_B = -H^T A diag(d)`` and ``g_d = diag(A^T G A) d - diag(A^T H B)`` at the state's
    (A, d, B), and ``P_X`` the projection on the tangent space of the Stiefel manifold:

    * ``kkt_u = ||P_A(g_A + E_u rho Z_u)||_F``, ``kkt_v`` likewise: the Riemannian gradient
      of the Lagrangian ``f + <rho Z_u, A[r_u:]> + <rho Z_v, B[r_v:]>`` (``E`` pads the
      unpenalised rows with zeros); ``rho Z`` is a subgradient of the l1 penalty at Omega
      by construction of the Omega-step and the dual update;
    * ``rgrad_u = ||P_A(g_A + E_u rho (A[r_u:] - Omega_u + Z_u))||_F``, ``rgrad_v``
      likewise: the Riemannian gradient of the U- and V-subproblems at the state;
    * ``grad_d = ||g_d||`` (zero after an exact d-step);
    * ``primal_residual_u = ||A[r_u:] - Omega_u||_F``, ``primal_residual_v`` likewise.

    Thresholds: ``tol * scale`` for the gradients, with the gradient scale

        scale = max(f(0), ||rho [Z_u, Z_v]||_F, ||[g_A, g_B]||_F),  f(0) = tr(Syy) / 2,

    (the objective at C = 0 takes the place of the absolute 1 of the ADMM's own dual
    scale, so the measure does not depend on the responses' units). With the magnitude
    pull (``problem.pull = gamma > 0``, moments augmented by it) the measures are those of
    the whole problem, pull included, but the scale is that of the data: ``f(0)`` and
    ``[g_A, g_B]`` without the pull's terms (:meth:`SmartProblem.pull_gradient`), and the
    pull's Riemannian gradient ``||[P_A g_A^pull, P_B g_B^pull]||_F`` in their place. The
    pull's Euclidean gradient ``gamma A diag(d^2) - ...`` grows with gamma but its normal
    part cancels exactly on the manifold; a scale that held it (or ``gamma ||C0||^2 / 2``)
    would let a gradient grow with gamma and still pass. The gradients' thresholds are
    at least the rounding floor ``1e3 eps max(f'(0), ||rho [Z_u, Z_v]||_F, ||[g'_A,
    g'_B]||_F)`` of the terms as computed (primes: the augmented moments, pull included),
    below which no computed gradient can be trusted: it matters only for a pull far
    above the data's curvature (gamma = 1e7 on data of scale 1, where it is 1e-5
    against gradients of size 1e8, and a gradient error e moves C by about e / gamma).
    And ``tol * s_prim``,
    ``s_prim = 1 + max(||[A_low, B_low]||_F, ||[Omega_u, Omega_v]||_F)``, for the primal
    residuals. A state passes when every measure is at most its threshold; together the
    measures are the KKT conditions of SMART on the manifolds.

    Parameters
    ----------
    problem : SmartProblem
    state : AdmmState or dict
        A, B, d, Omega_u, Omega_v, Z_u, Z_v, rho (``SolverResult.extra`` will do).
    r_u, r_v : int
    tol : float

    Returns
    -------
    dict
        The measures, ``thresholds`` (dict of the same keys), ``scale``, ``floor``,
        ``s_prim``,
        ``criterion`` (the largest ratio measure / (threshold / tol)) and ``passed``.
    """
    get = (lambda k: state[k]) if isinstance(state, dict) else partial(getattr, state)
    A, B, d = get("A"), get("B"), np.asarray(get("d"), dtype=float)
    Om_u, Om_v, Z_u, Z_v, rho = (get(k) for k in ("Omega_u", "Omega_v", "Z_u", "Z_v",
                                                   "rho"))
    GA = None if isinstance(state, dict) else state.GA
    if GA is None:
        GA = problem.gram(A)
    HB, HtA = problem.H @ B, problem.H.T @ A
    g_u, g_v = problem.data_gradient(A, d, B, GA=GA, HB=HB, HtA=HtA)
    out = {}
    for side, X, k, g, Om, Z in (("u", A, r_u, g_u, Om_u, Z_u), ("v", B, r_v, g_v, Om_v,
                                                                   Z_v)):
        R = X[k:] - Om
        g_lag, g_sub = g.copy(), g.copy()
        g_lag[k:] += rho * Z
        g_sub[k:] += rho * (R + Z)
        out[f"kkt_{side}"] = float(np.linalg.norm(riemannian_gradient(X, g_lag)))
        out[f"rgrad_{side}"] = float(np.linalg.norm(riemannian_gradient(X, g_sub)))
        out[f"primal_residual_{side}"] = float(np.linalg.norm(R))
    c, gd = np.einsum("ij,ij->j", A, HB), np.einsum("ij,ij->j", A, GA)
    out["grad_d"] = float(np.linalg.norm(gd * d - c))
    lows = np.sqrt(np.sum(A[r_u:] ** 2) + np.sum(B[r_v:] ** 2))
    oms = np.sqrt(np.sum(Om_u ** 2) + np.sum(Om_v ** 2))
    s_prim = 1.0 + max(lows, oms)
    p_u, p_v = problem.pull_gradient(A, d, B)       # zero without the magnitude pull
    pull = np.hypot(np.linalg.norm(riemannian_gradient(A, p_u)),
                    np.linalg.norm(riemannian_gradient(B, p_v))) if problem.pull else 0.0
    rho_z = rho * np.sqrt(np.sum(Z_u ** 2) + np.sum(Z_v ** 2))
    scale = max(problem.half_tr_syy_data, rho_z,
                np.sqrt(np.sum((g_u - p_u) ** 2) + np.sum((g_v - p_v) ** 2)), pull, _TINY)
    floor = _CERT_ROUNDING * max(problem.half_tr_syy, rho_z,
                                 np.sqrt(np.sum(g_u ** 2) + np.sum(g_v ** 2)))
    thresholds = {k: max(tol * scale, floor) for k in _CERT_GRADIENTS}
    thresholds.update({k: tol * s_prim for k in _CERT_PRIMAL})
    ratio = max(out[k] / (v / tol) for k, v in thresholds.items())
    out.update(thresholds=thresholds, scale=float(scale), floor=float(floor),
               s_prim=float(s_prim),
               criterion=float(ratio), passed=bool(ratio <= tol))
    return out


# ---------------------------------------------------------------------------------------
# verification
# ---------------------------------------------------------------------------------------
def smart_verify(Sxx, Sxy, Syy, C0, state, *, svd0=None, problem=None, solver_opts=None):
    r"""Check a SMART solution: re-solve its convex subproblems in CVXPY, measure gradients.

    At the final state the d-step and the two Omega-steps are posed again in CVXPY
    (:func:`mtltransfer.solvers.cvx.smart_d_step`, :func:`~mtltransfer.solvers.cvx.smart_omega_step`)
    and compared with the returned d and Omega; the U- and V-subproblems are checked by
    the norm of their Riemannian gradient :math:`g - X \operatorname{sym}(X^\top g)` (g the
    Euclidean gradient of
    the subproblem's objective at the returned A, B). A CVXPY solve that ends
    ``optimal_inaccurate`` (or worse) is an error here: a verification must not rest on an
    inaccurate reference.

    Parameters
    ----------
    Sxx, Sxy, Syy, C0 : ndarray or None
        As for :func:`smart_admm`.
    state : dict
        ``SolverResult.extra`` of :func:`smart_admm` (needs A, B, d, Omega_u, Omega_v, Z_u,
        Z_v, rho, r_u, r_v, lam_u, lam_v).
    svd0 : tuple or None
    problem : SmartProblem or None
        Instead of the moments and the source.
    solver_opts : dict or None
        Options of the CVXPY solves.

    Returns
    -------
    dict of str to float
        ``d_step`` (max abs difference between d and the CVXPY d-step),
        ``omega_u_step``, ``omega_v_step`` (max abs difference between Omega and the CVXPY
        proximal step at ``A[r_u:] + Z_u``, evaluated with the pre-update Z = Z - residual),
        ``primal_residual_u``, ``primal_residual_v`` (Frobenius norms of A_low - Omega_u,
        B_low - Omega_v), ``rgrad_u``, ``rgrad_v`` (Riemannian gradient norms of the U- and
        V-subproblems), ``kkt_u``, ``kkt_v`` (Riemannian gradient norms of the Lagrangian
        ``f + <rho Z_u, A_low> + <rho Z_v, B_low>``), ``orth_u``, ``orth_v``
        (:math:`\|X^\top X - I\|_F`), ``objective``.
    """
    return verify_state(resolve_problem(problem, Sxx, Sxy, Syy, C0, svd0), state,
                        solver_opts=solver_opts)


def verify_state(problem, state, *, solver_opts=None):
    """:func:`smart_verify` on a built :class:`~mtltransfer.smart.problem.SmartProblem`
    (the one the fit solved): same checks, same result."""
    from ..solvers import cvx

    prob = problem
    opts = dict(solver_opts or {})
    A, B, d = state["A"], state["B"], state["d"]
    r_u, r_v = state["r_u"], state["r_v"]
    lam_u, lam_v, rho = state["lam_u"], state["lam_v"], state["rho"]
    Om_u, Om_v, Z_u, Z_v = state["Omega_u"], state["Omega_v"], state["Z_u"], state["Z_v"]
    GA, HB, HtA = prob.gram(A), prob.H @ B, prob.H.T @ A
    out = {}
    d_cvx = np.abs(cvx.smart_d_step(np.einsum("ij,ij->j", A, HB),
                                    np.einsum("ij,ij->j", A, GA), inaccurate="raise",
                                    **opts))
    out["d_step"] = float(np.max(np.abs(d_cvx - d), initial=0.0))
    # Z was updated after the Omega-step: Z_prev = Z - (X_low - Omega)
    for side, X, k, lam_s, Om, Z in (("u", A, r_u, lam_u, Om_u, Z_u),
                                     ("v", B, r_v, lam_v, Om_v, Z_v)):
        R = X[k:] - Om
        Om_cvx = cvx.smart_omega_step(X[k:] + (Z - R), lam_s, rho, inaccurate="raise",
                                      **opts)
        out[f"omega_{side}_step"] = float(np.max(np.abs(Om_cvx - Om), initial=0.0))
        out[f"primal_residual_{side}"] = float(np.linalg.norm(R))
    # U-subproblem: f(A) + (rho/2)||A_low - Omega_u + Z_u||^2, at the returned state;
    # the Lagrangian f + <rho Z_u, A_low> (and the V-side analogues)
    g_data_u, g_data_v = prob.data_gradient(A, d, B, GA=GA, HB=HB, HtA=HtA)
    for side, X, k, g_data, Om, Z in (("u", A, r_u, g_data_u, Om_u, Z_u),
                                      ("v", B, r_v, g_data_v, Om_v, Z_v)):
        g_sub, g_lag = g_data.copy(), g_data.copy()
        g_sub[k:] += rho * (X[k:] - Om + Z)
        g_lag[k:] += rho * Z
        out[f"rgrad_{side}"] = float(np.linalg.norm(riemannian_gradient(X, g_sub)))
        out[f"kkt_{side}"] = float(np.linalg.norm(riemannian_gradient(X, g_lag)))
    r = A.shape[1]
    out["orth_u"] = float(np.linalg.norm(A.T @ A - np.eye(r)))
    out["orth_v"] = float(np.linalg.norm(B.T @ B - np.eye(r)))
    out["objective"] = float(prob.data_term(A, d, B, GA) + lam_u * np.abs(A[r_u:]).sum()
                             + lam_v * np.abs(B[r_v:]).sum())
    return out
