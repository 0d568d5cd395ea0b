"""One iteration of SMART's ADMM: the state, its parameters and residuals, steps 1-5
(:func:`admm_step`) and the residual balancing of step 6 (:func:`balance_rho`).

The algorithm, its stopping rule and the driver that runs these steps are described in
:mod:`mtltransfer.smart.admm`, which re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ..solvers.prox import soft_threshold
from ..solvers.stiefel import mm_quadratic, subspace_quadratic
from .problem import closed_form_d

__all__ = ["AdmmState", "AdmmParams", "StepResiduals", "admm_step", "balance_rho"]

# bounds of rho relative to the data curvature kappa = lambda_max(G) max d^2
_RHO_MIN, _RHO_MAX = 1e-4, 10.0
_TINY = 1e-300
#: subspace steps of a U-step run without a tolerance (the first iteration of a fit)
_SUBSPACE_FIRST_STEPS = 3


# ---------------------------------------------------------------------------------------
# state, parameters, residuals
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AdmmState:
    """The ADMM iterate in source coordinates (never modified in place).

    Attributes
    ----------
    A : ndarray (p, r)
    B : ndarray (q, r)
        Orthonormal factors, ``U = U0 A``, ``V = V0 B``.
    d : ndarray (r,)
        Nonnegative weights (zero before the first d-step of a cold start).
    Omega_u : ndarray (p - r_u, r)
    Omega_v : ndarray (q - r_v, r)
        Split variables of ``A[r_u:]`` and ``B[r_v:]``.
    Z_u, Z_v : ndarray
        Scaled duals, shaped as Omega_u, Omega_v.
    rho : float
        ADMM penalty.
    GA : ndarray (p, r) or None
        ``G @ A`` when known (a cache; None after A changed otherwise).
    t_u : float or None
        The U-step's last Barzilai-Borwein step length, the first trial step of the next
        U-step (None: ``1 / L``).
    P_u : ndarray (p, r) or None
        The subspace U-step's last move (the third block of its next subspace; None
        after A changed otherwise).
    """

    A: np.ndarray
    B: np.ndarray
    d: np.ndarray
    Omega_u: np.ndarray
    Omega_v: np.ndarray
    Z_u: np.ndarray
    Z_v: np.ndarray
    rho: float
    GA: np.ndarray | None = None
    t_u: float | None = None
    P_u: np.ndarray | None = None


#: the blocks of the state stacked into the fixed-point vector of Anderson acceleration
STACKED = ("A", "B", "d", "Omega_u", "Omega_v", "Z_u", "Z_v")


def _soft_threshold_step(V, lam, rho):
    """Omega-step in closed form: ``S_{lam/rho}(V)``, entrywise soft-thresholding."""
    return soft_threshold(V, lam / rho)


@dataclass(frozen=True)
class AdmmParams:
    """The fixed configuration of one ADMM run.

    Attributes
    ----------
    r_u, r_v : int
        Structural ranks (penalised rows ``A[r_u:]``, ``B[r_v:]``).
    lam_u, lam_v : float
        Penalties.
    tol : float
        Relative tolerance of the stopping rule.
    inner_steps : int
        Maximum polar steps per U- or V-step.
    mu, tau : float
        Residual balancing parameters (step 6).
    adapt_rho : bool
        Whether step 6 is applied.
    d_step : callable
        ``d_step(c, g) -> d`` (closed form or CVXPY).
    omega_step : callable
        ``omega_step(V, lam, rho) -> argmin lam ||Omega||_1 + (rho/2)||Omega - V||_F^2``.
    u_step : {"mm", "subspace"}
        The U-step's solver: polar steps with Barzilai-Borwein lengths
        (:func:`~mtltransfer.solvers.stiefel.mm_quadratic`, one product ``G A`` per trial
        point) or Rayleigh-Ritz subspace steps
        (:func:`~mtltransfer.solvers.stiefel.subspace_quadratic`, one product of G with
        at most 2r columns per step).
    first_steps : int or None
        Polar steps of the U- and V-steps of the first iteration, which has no inner
        tolerance yet (None: ``inner_steps``); ``smart_admm`` takes 5 for a warm start.
    """

    r_u: int
    r_v: int
    lam_u: float
    lam_v: float
    tol: float = 1e-6
    inner_steps: int = 20
    mu: float = 10.0
    tau: float = 2.0
    adapt_rho: bool = True
    d_step: Callable = closed_form_d
    omega_step: Callable = _soft_threshold_step
    u_step: str = "mm"
    first_steps: int | None = None


@dataclass(frozen=True)
class StepResiduals:
    """What one :func:`admm_step` measured (module docstring: stopping rule).

    Attributes
    ----------
    objective : float
        SMART objective at the step's output.
    r_prim, r_dual, r_stat : float
        Primal and dual residuals and stationarity.
    s_prim, s_dual : float
        Their scales.
    omega_change_sq : float
        ``||[Omega+ - Omega]||_F^2`` (so ``r_dual = rho sqrt(omega_change_sq)``).
    rho : float
        The penalty the step used.
    inner_steps : int
        Polar steps of the U- and V-steps.
    flipped : bool
        Whether the d-step flipped the sign of a column of B (and of Omega_v, Z_v).
    """

    objective: float
    r_prim: float
    r_dual: float
    r_stat: float
    s_prim: float
    s_dual: float
    omega_change_sq: float
    rho: float
    inner_steps: int
    flipped: bool

    @property
    def criterion(self):
        """``max(r_prim / s_prim, r_dual / s_dual, r_stat / s_dual)``: stop when <= tol."""
        return max(self.r_prim / self.s_prim, self.r_dual / self.s_dual,
                   self.r_stat / self.s_dual)

    @property
    def merit(self):
        """Merit of Anderson's safeguard: the (Omega, Z) part of the fixed-point residual.

        ``||[Omega+ - Omega, Z+ - Z]||_F`` with ``Z+ - Z = A_low - Omega+``.
        """
        return np.sqrt(self.omega_change_sq + self.r_prim * self.r_prim)

    def inner_tolerance(self, tol):
        """Tolerance of the next U- and V-steps, tied to the residuals."""
        return 0.2 * max(self.r_prim / self.s_prim, self.r_dual / self.s_dual, tol) * \
            self.s_dual


# ---------------------------------------------------------------------------------------
# one ADMM iteration (steps 1-5) and residual balancing (step 6)
# ---------------------------------------------------------------------------------------
def _flip_columns(sign, *arrays):
    """The arrays with column j multiplied by ``sign[j]`` (new arrays)."""
    return tuple(M * sign for M in arrays)


#: polar steps of the U- and V-steps of a warm start's first iteration (no inner
#: tolerance yet; the start is next to its solution, and the iterations that follow
#: solve the steps to a tolerance tied to the residuals): the fits of a lambda path and
#: of the cross-validation spent a third of their polar steps in first iterations
MM_FIRST_STEPS = 5


def _first_steps(params, inner_tol):
    """Polar steps allowed in a U- or V-step: ``inner_steps``, at most
    ``first_steps`` without an inner tolerance (a fit's first iteration)."""
    if inner_tol > 0 or params.first_steps is None:
        return params.inner_steps
    return min(params.inner_steps, params.first_steps)


def admm_step(problem, state, params, *, inner_tol=0.0):
    """One ADMM iteration, steps 1-5 of the module docstring, without side effects.

    Parameters
    ----------
    problem : SmartProblem
    state : AdmmState
        The input iterate (not modified).
    params : AdmmParams
    inner_tol : float
        Tolerance of the U- and V-steps (0: ``params.inner_steps`` polar steps).

    Returns
    -------
    new_state : AdmmState
    residuals : StepResiduals
    """
    H, rho, d = problem.H, state.rho, state.d
    r_u, r_v = params.r_u, params.r_v
    # 1. U-step: min_A f(A, d, B) + (rho/2)||A[r_u:] - Omega_u + Z_u||^2 on St(p, r)
    P_u = state.P_u
    if params.u_step == "subspace":
        A, GA, info_u = subspace_quadratic(state.A, (H @ state.B) * d, rho, r_u,
                                           state.Omega_u - state.Z_u, Q=problem.gram,
                                           w=d * d, L_Q=problem.curvature(d), QX=state.GA,
                                           tol=inner_tol, max_steps=params.inner_steps,
                                           P=P_u, first_steps=_SUBSPACE_FIRST_STEPS)
        P_u = info_u["P"]
    else:
        A, GA, info_u = mm_quadratic(state.A, (H @ state.B) * d, rho, r_u,
                                     state.Omega_u - state.Z_u, Q=problem.gram, w=d * d,
                                     L_Q=problem.curvature(d), QX=state.GA, tol=inner_tol,
                                     max_steps=_first_steps(params, inner_tol),
                                     step0=state.t_u)
    # 2. V-step: min_B -<H^T A diag(d), B> + (rho/2)||B[r_v:] - Omega_v + Z_v||^2
    HtA = H.T @ A
    exact_v = r_v in (0, problem.q)
    B, _, info_v = mm_quadratic(state.B, HtA * d, rho, r_v, state.Omega_v - state.Z_v,
                                tol=inner_tol,
                                max_steps=1 if exact_v else _first_steps(params, inner_tol))
    # 3. d-step: d_j = c_j / g_j, c_j = [A^T H B]_jj, g_j = [A^T G A]_jj; a negative d_j
    # flips column j of B, Omega_v and Z_v (a symmetry of the augmented Lagrangian)
    c = np.einsum("ij,ij->j", HtA, B)
    g = np.einsum("ij,ij->j", A, GA)
    d_raw = np.asarray(params.d_step(c, g), dtype=float)
    Om_v, Z_v = state.Omega_v, state.Z_v
    flipped = bool(np.any(d_raw < 0))
    if flipped:
        sign = np.where(d_raw < 0, -1.0, 1.0)
        B, Om_v, Z_v, c = _flip_columns(sign, B, Om_v, Z_v, c)
    d = np.abs(d_raw)
    # 4. Omega-steps: Omega = prox of (lam/rho)||.||_1 at A_low + Z; 5. dual ascent
    A_low, B_low = A[r_u:], B[r_v:]
    Om_u_new = params.omega_step(A_low + state.Z_u, params.lam_u, rho)
    Om_v_new = params.omega_step(B_low + Z_v, params.lam_v, rho)
    Ru, Rv = A_low - Om_u_new, B_low - Om_v_new
    Z_u_new, Z_v_new = state.Z_u + Ru, Z_v + Rv
    new = AdmmState(A, B, d, Om_u_new, Om_v_new, Z_u_new, Z_v_new, rho, GA,
                    info_u["step"] if info_u["steps"] else state.t_u, P_u)
    return new, _residuals(problem, params, new, state.Omega_u, Om_v, Ru, Rv, c, g,
                           info_u, info_v, flipped)


def _residuals(problem, params, new, Om_u, Om_v, Ru, Rv, c, g, info_u, info_v, flipped):
    """Residuals, their scales and the objective after a step (module docstring)."""
    A_low, B_low = new.A[params.r_u:], new.B[params.r_v:]
    dOu, dOv = new.Omega_u - Om_u, new.Omega_v - Om_v
    omega_change_sq = np.sum(dOu * dOu) + np.sum(dOv * dOv)
    s_prim = 1.0 + max(np.sqrt(np.sum(A_low * A_low) + np.sum(B_low * B_low)),
                       np.sqrt(np.sum(new.Omega_u * new.Omega_u)
                               + np.sum(new.Omega_v * new.Omega_v)))
    s_dual = 1.0 + max(new.rho * np.sqrt(np.sum(new.Z_u * new.Z_u)
                                         + np.sum(new.Z_v * new.Z_v)),
                       np.hypot(info_u["egrad"], info_v["egrad"]))
    obj = (problem.data_term_from(c, g, new.d) + params.lam_u * np.abs(A_low).sum()
           + params.lam_v * np.abs(B_low).sum())
    return StepResiduals(
        objective=float(obj), r_prim=np.sqrt(np.sum(Ru * Ru) + np.sum(Rv * Rv)),
        r_dual=new.rho * np.sqrt(omega_change_sq),
        r_stat=max(info_u["rgrad"], info_v["rgrad"]), s_prim=s_prim, s_dual=s_dual,
        omega_change_sq=omega_change_sq, rho=new.rho,
        inner_steps=info_u["steps"] + info_v["steps"], flipped=flipped)


def balance_rho(state, residuals, kappa, params):
    """Step 6, residual balancing: the state with rho (and the scaled duals) rebalanced.

    With ``rp = r_prim / s_prim`` and ``rd = r_dual / s_dual``: ``rho * tau`` if
    ``rp > mu rd`` and ``rp > tol``, ``rho / tau`` if ``rd > mu rp`` and ``rd > tol``, within
    ``[_RHO_MIN, _RHO_MAX] * kappa`` (``kappa = lambda_max(G) max d^2``, the data
    curvature); the scaled duals are divided (multiplied) by tau so that ``rho Z`` is
    unchanged. Returns ``state`` itself when rho is unchanged.
    """
    if not params.adapt_rho:
        return state
    rp, rd = residuals.r_prim / residuals.s_prim, residuals.r_dual / residuals.s_dual
    kappa = max(kappa, _TINY)
    rho, tau = state.rho, params.tau
    if rp > params.mu * rd and rp > params.tol and rho * tau <= _RHO_MAX * kappa:
        return replace(state, rho=rho * tau, Z_u=state.Z_u / tau, Z_v=state.Z_v / tau)
    if rd > params.mu * rp and rd > params.tol and rho / tau >= _RHO_MIN * kappa:
        return replace(state, rho=rho / tau, Z_u=state.Z_u * tau, Z_v=state.Z_v * tau)
    return state
