"""ADMM for SMART, the spectral transfer estimator (Zhao, Kolar and Lv, 2026).

Problem. Given the centred target moments ``Sxx = X^T X / n``, ``Sxy = X^T Y / n``,
``Syy = Y^T Y / n`` and the source coefficient matrix ``C0`` with full SVD
``C0 = U0 S0 V0^T`` (U0 p x p, V0 q x q), SMART solves

    minimise  (1/2n) ||Y - X U diag(d) V^T||_F^2 + lam_u ||U_perp^T U||_1 + lam_v ||V_perp^T V||_1
    over      U (p x r), d (r), V (q x r),  U^T U = I_r,  V^T V = I_r,

with ``U_perp = U0[:, r_u:]`` and ``V_perp = V0[:, r_v:]``.

Source coordinates. Write ``U = U0 A`` and ``V = V0 B`` (A, B again orthonormal) and let
``G = U0^T Sxx U0`` (p x p) and ``H = U0^T Sxy V0`` (p x q), computed once
(:class:`mtltransfer.smart.problem.SmartProblem`). Because ``B^T B = I``, the data
term is exactly

    f(A, d, B) = tr(Syy)/2 - sum_j d_j a_j^T H b_j + 1/2 sum_j d_j^2 a_j^T G a_j,

and the penalised blocks are simply the rows ``A[r_u:]`` and ``B[r_v:]``. No iteration
touches the n rows of the data; one iteration costs a few p x p x r products and thin SVDs
of p x r and q x r matrices.

ADMM (scaled duals). Split ``Omega_u = A[r_u:]``, ``Omega_v = B[r_v:]`` with scaled duals
``Z_u``, ``Z_v`` and penalty ``rho``. One iteration:

1. U-step: ``A <- argmin_{A in St(p, r)} f(A, d, B) + (rho/2)||A[r_u:] - Omega_u + Z_u||^2``,
   solved by majorise-minimise polar steps (:func:`mtltransfer.solvers.stiefel.mm_quadratic`
   with ``Q = G``, ``w = d^2``, ``C = H B diag(d)``, ``L = lambda_max(G) max d^2 + rho``),
   warm-started at the current A, with the previous U-step's last Barzilai-Borwein length
   as its first trial step, and run until its Riemannian gradient norm is below an
   inner tolerance tied to the current ADMM residuals (at most ``inner_steps`` steps).
   For large p (``u_step="auto"``: ``2 p^2 r >= 1e7`` flops) the same subproblem is
   solved to the same inner tolerance by Rayleigh-Ritz subspace steps instead
   (:func:`mtltransfer.solvers.stiefel.subspace_quadratic`: one product of G with at most
   2r columns per step, in the span of A, the Riemannian gradient and the previous move,
   carried across iterations; each step decreases the subproblem at least as much as
   the MM step, so the MM iteration's convergence carries over). At most 3 such steps
   are taken when there is no inner tolerance yet (the first iteration of a fit).
   With ``SmartProblem(rows=X)`` the products ``G A`` are ``W^T (W A)``, ``W = X U0/sqrt(n)``.
2. V-step: ``B <- argmin_{B in St(q, r)} -<H^T A diag(d), B> + (rho/2)||B[r_v:] - Omega_v + Z_v||^2``
   (the quadratic part of f does not depend on B on the manifold), the same polar MM with
   ``L = rho``; it is exact in one step when r_v = q or r_v = 0.
3. d-step (closed form): ``d_j = [A^T H B]_jj / [A^T G A]_jj``; a negative d_j is made
   positive by flipping the sign of column j of B, Omega_v and Z_v (a symmetry of the
   augmented Lagrangian).
4. Omega-steps: ``Omega_u = S_{lam_u/rho}(A[r_u:] + Z_u)``, ``Omega_v = S_{lam_v/rho}(B[r_v:] + Z_v)``
   (entrywise soft-thresholding).
5. Dual ascent: ``Z_u += A[r_u:] - Omega_u``, ``Z_v += B[r_v:] - Omega_v``.
6. Residual balancing: with normalised residuals ``rp = r_prim / s_prim``,
   ``rd = r_dual / s_dual`` (scales below), ``rho <- rho * tau`` if ``rp > mu rd`` and
   ``rho <- rho / tau`` if ``rd > mu rp`` (mu = 10, tau = 2), the scaled duals divided /
   multiplied by tau so that the unscaled duals ``rho Z`` are unchanged.

Anderson acceleration (``accelerate="auto"``, the default, uses it from the first iteration
of a cold start and after ``_AA_WARM_START = 150`` plain iterations of a warm start:
measured on the paper's Model-I/II, it cuts a cold fit's iterations 3-5x, while a
warm-started fit of a lambda path or of the cross-validation starts next to its solution,
where extrapolation cost more than it saved; a warm start still running after 150
iterations is no longer next to it (Model-I, r_u = 0: path fits that took 2000 plain
iterations take 160-170). ``accelerate=True`` accelerates from the first iteration, as the
polishing of a lambda path's chosen fit does). Steps 1-5 define a fixed-point
map ``x+ = T(x)`` of the stacked state ``x = (A, B, d, Omega_u, Omega_v, Z_u, Z_v)``. After a
step from ``x_k`` (when rho was not changed by step 6) the pair ``(x_k, T(x_k))`` enters a
type-II Anderson memory of ``aa_memory`` (default 5) pairs
(:class:`mtltransfer.solvers._anderson.Anderson`): with ``f_i = T(x_i) - x_i`` and the
difference matrices ``dF``, ``dT`` of the stored pairs, the next input is
``T(x_k) - dT gamma``, ``gamma = argmin ||f_k - dF gamma||^2 + 1e-10 ||dF||_F^2 ||gamma||^2``,
with its A and B mapped back to the Stiefel manifolds by the polar factor and d replaced by
|d|. Safeguard: the merit of a step is the (Omega, Z) part of its fixed-point residual,
``m = ||[Omega+ - Omega, A_low - Omega+]||_F`` (both blocks, i.e. the primal residual and
the dual residual divided by rho). The step taken from an extrapolated point is kept when
its merit is at most 1.2 times the merit of the plain step ``x_k -> T(x_k)`` that it
replaced; otherwise that step is discarded (it still counts as an iteration), the state is
reset to the plain iterate ``T(x_k)`` and the memory is cleared. The memory is also cleared
when rho changes (the scaled duals change coordinates) and when a sign flip of step 3
occurs. Once 5 extrapolations have been rejected and the rejections outnumber the
accepted ones, acceleration is switched off for the rest of the run (on some tightly
constrained configurations, e.g. r_u = r, extrapolation keeps failing and only costs
iterations), and so it is when the best merit seen has not improved by 1% for 30
iterations (accepted extrapolations that stall). The stopping rule below is applied unchanged to every step, including a step from
an extrapolated point: its (A, B, d, Omega, Z) output is a genuine ADMM step, so the same
KKT certificate holds. If ``max_iter`` is reached while an extrapolated point is pending,
the plain iterate is returned. Everything is deterministic.

Stopping rule (absolute + relative, as OSQP). With
``r_prim = ||[A[r_u:] - Omega_u, B[r_v:] - Omega_v]||_F``,
``r_dual = rho ||[Omega_u - Omega_u_prev, Omega_v - Omega_v_prev]||_F`` and the stationarity
``r_stat = max`` of the Riemannian gradient norms of the U- and V-subproblems at the
accepted A and B, stop when

    r_prim <= tol * s_prim,   s_prim = 1 + max(||[A_low, B_low]||_F, ||[Omega_u, Omega_v]||_F)
    r_dual <= tol * s_dual,   r_stat <= tol * s_dual,
    s_dual = 1 + max(||rho [Z_u, Z_v]||_F, ||grad of the data term||_F).

These residuals are those of the step: the U-step's stationarity is measured before the
V- and d-steps move B and d. So a step that passes them is then certified at its output
state by :func:`stationarity` (the Riemannian gradients of the Lagrangian and of the
subproblems, the d-gradient and the primal residuals, each at most ``tol`` times its
scale, the gradients' scale having ``f(0) = tr(Syy)/2`` in place of the absolute 1); a
state that fails is tried once more with its U-step solved again at its own (B, d) and
then its d-step (:func:`_refine_u`), certified the same way and returned if it passes;
otherwise the iteration continues with the U- and V-steps solved tighter, and ``converged`` is
true only for a certified state (``certify=False``, used by the inexact fits of a lambda
path or a cross-validation fold, stops on the residuals alone).
At such a point the KKT conditions of SMART on the manifolds hold to O(tol):
``rho Z`` is a subgradient of the l1 penalty at ``Omega = A_low`` and the Riemannian gradient
of ``f + <rho Z_u, A_low> + <rho Z_v, B_low>`` is small.

With ``backend="cvxpy"`` the d-step and Omega-steps are solved by the CVXPY formulations of
:mod:`mtltransfer.solvers.cvx` instead of in closed form (built once per size, with
parameters); all else is shared.

Code structure. :func:`admm_step` is steps 1-5 as a pure function of an :class:`AdmmState`
(it returns a new state and the :class:`StepResiduals`, and never modifies an array it was
given); :func:`balance_rho` is step 6 (both in :mod:`mtltransfer.smart.step`); the
certificate :func:`stationarity` and the CVXPY check :func:`smart_verify` are in
:mod:`mtltransfer.smart.certify` (all re-exported here), the start for a rank above a
structural rank in :mod:`mtltransfer.smart.directions`, the active-set phase (Newton's
method on the settled support, which ends the slow tail of a penalised fit; the ADMM
then certifies its point) in :mod:`mtltransfer.smart.active_set`; the driver runs plain
steps or, through :class:`mtltransfer.solvers._anderson.SafeguardedAnderson`, the
safeguarded Anderson rules above, with the stopping rule and the history; :func:`smart_admm` sets
up and packs.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from .._threads import smart_iteration_threads
from ..solvers._anderson import SafeguardedAnderson
from ..solvers._base import SolverResult, warn_not_converged
from ..solvers.prox import soft_threshold
from ..solvers.stiefel import mm_quadratic, polar, subspace_quadratic
from .certify import smart_verify, stationarity
from .problem import (SOURCE_RTOL, SmartProblem, check_source_svd, closed_form_d,
                      complement_basis, resolve_problem, source_rank, source_svd)
from .step import (MM_FIRST_STEPS, STACKED, AdmmParams, AdmmState, StepResiduals,
                   _flip_columns, _soft_threshold_step, admm_step, balance_rho)
from .active_set import run_with_active_set


__all__ = ["source_svd", "source_rank", "complement_basis", "SOURCE_RTOL", "SmartProblem",
           "AdmmState", "AdmmParams", "StepResiduals", "admm_step", "balance_rho",
           "smart_admm", "smart_solve", "smart_objective", "smart_verify", "stationarity"]

_TINY = 1e-300
# Anderson acceleration: an extrapolated point is kept when its fixed-point residual is at
# most _AA_SLACK times that of the plain iterate it replaced; Tikhonov weight of the
# least-squares problem (relative to ||dF||_F^2)
_AA_SLACK, _AA_REG = 1.2, 1e-10
# rejections after which, if they outnumber the accepted extrapolations, AA is switched off
_AA_GIVE_UP = 5
# iterations without a 1% improvement of the best merit after which AA is switched off
_AA_PATIENCE = 30
# plain iterations of a warm start before Anderson acceleration is switched on ("auto")
_AA_WARM_START = 150
#: polar steps per U- or V-step once a certificate failed (the steps are solved tighter)
_CERT_INNER_STEPS = 100
_HISTORY_KEYS = ("objective", "primal_residual", "dual_residual", "stationarity", "rho",
                 "inner_steps")


def _check_config(p, q, rank, structural_rank, lam):
    if not (isinstance(rank, (int, np.integer)) and 1 <= rank <= min(p, q)):
        raise ValueError(f"rank must be an integer in [1, min(p, q)] = [1, {min(p, q)}]; "
                         f"got {rank!r}")
    if structural_rank is None:
        structural_rank = (p, q)
    r_u, r_v = (int(v) for v in structural_rank)
    if not (0 <= r_u <= p and 0 <= r_v <= q):
        raise ValueError(f"structural_rank (r_u, r_v) must satisfy 0 <= r_u <= p={p} and "
                         f"0 <= r_v <= q={q}; got {structural_rank!r}")
    lam_u, lam_v = (float(v) for v in np.broadcast_to(np.asarray(lam, float), (2,)))
    if not (lam_u >= 0 and lam_v >= 0 and np.isfinite(lam_u) and np.isfinite(lam_v)):
        raise ValueError(f"lam (lam_u, lam_v) must be finite and >= 0; got {lam!r}")
    return int(rank), r_u, r_v, lam_u, lam_v


# ---------------------------------------------------------------------------------------
# objective
# ---------------------------------------------------------------------------------------
def smart_objective(Sxx, Sxy, Syy, C0, U, d, V, structural_rank, lam, *, svd0=None):
    """The SMART objective at ``(U, d, V)``, computed in the original coordinates.

    ``(1/2n)||Y - X U diag(d) V^T||_F^2 + lam_u ||U_perp^T U||_1 + lam_v ||V_perp^T V||_1``,
    the data term from the moments (``tr(Syy)/2 - <Sxy, C> + <Sxx C, C>/2`` with
    ``C = U diag(d) V^T``; this does not assume orthonormal U, V).

    Returns
    -------
    float
    """
    Sxx, Sxy, Syy = (np.asarray(M, dtype=float) for M in (Sxx, Sxy, Syy))
    p, q = Sxy.shape
    U0, _, V0 = check_source_svd(svd0, C0, p, q)
    U, V, d = np.asarray(U, float), np.asarray(V, float), np.asarray(d, float)
    _, r_u, r_v, lam_u, lam_v = _check_config(p, q, max(1, U.shape[1]), structural_rank,
                                              lam)
    C = (U * d) @ V.T
    data = 0.5 * np.trace(Syy) - np.sum(Sxy * C) + 0.5 * np.sum((Sxx @ C) * C)
    pen = lam_u * np.abs(U0[:, r_u:].T @ U).sum() + lam_v * np.abs(V0[:, r_v:].T @ V).sum()
    return float(data + pen)


# ---------------------------------------------------------------------------------------
# the driver: plain or safeguarded-Anderson steps, stopping rule, history
# ---------------------------------------------------------------------------------------
def _stack(state):
    """The fixed-point vector ``x = (A, B, d, Omega_u, Omega_v, Z_u, Z_v)``, flattened."""
    return np.concatenate([getattr(state, name).ravel() for name in STACKED])


def _unstack_retract(vec, like):
    """A state shaped as ``like`` from a flat vector, A and B mapped back to the manifolds
    by the polar factor and d replaced by |d|."""
    blocks, i = {}, 0
    for name in STACKED:
        a = getattr(like, name)
        blocks[name] = vec[i:i + a.size].reshape(a.shape)
        i += a.size
    blocks.update(A=polar(blocks["A"]), B=polar(blocks["B"]), d=np.abs(blocks["d"]))
    return replace(like, GA=None, P_u=None, **blocks)


def _first_d_step(problem, state, params):
    """A cold start (d = 0) gets a d-step first, so the first U-step sees the right scale."""
    if np.any(state.d):
        return state
    GA = problem.gram(state.A)
    d = np.asarray(params.d_step(*problem.diagonals(state.A, state.B, GA)), dtype=float)
    if np.any(d < 0):
        sign = np.where(d < 0, -1.0, 1.0)
        B, Om_v, Z_v = _flip_columns(sign, state.B, state.Omega_v, state.Z_v)
        state = replace(state, B=B, Omega_v=Om_v, Z_v=Z_v)
    return replace(state, d=np.abs(d), GA=GA)


def _record(hist, res, it, verbose):
    hist["objective"].append(res.objective)
    hist["primal_residual"].append(float(res.r_prim))
    hist["dual_residual"].append(float(res.r_dual))
    hist["stationarity"].append(float(res.r_stat))
    hist["rho"].append(float(res.rho))
    hist["inner_steps"].append(res.inner_steps)
    if verbose:
        print(f"{it + 1:5d}  obj {res.objective: .8e}  r_prim {res.r_prim:.2e}  "
              f"r_dual {res.r_dual:.2e}  r_stat {res.r_stat:.2e}  rho {res.rho:.3g}  "
              f"inner {res.inner_steps}")


def _run_admm(problem, state, params, *, max_iter, accelerate, aa_memory, verbose,
              aa_start=0, certify=True):
    """Iterate from ``state``; returns (state, history, converged, criterion).

    Plain ADMM, or (``accelerate``) the safeguarded Anderson rules of the module docstring:
    a step's pair (input, output) enters the memory unless the step flipped a sign or rho
    changed (both clear the memory), and the next input is then the extrapolated point.
    The rho bounds of step 6 use the d the step started from (or, after a rejected
    extrapolation, the restored plain iterate's d). Acceleration starts after
    ``aa_start`` plain iterations (0 for a cold start; a warm start that has not converged
    after ``aa_start`` iterations is no longer next to its solution).
    """
    hist = {k: [] for k in _HISTORY_KEYS}
    state = _first_d_step(problem, state, params)
    aa = SafeguardedAnderson(aa_memory, _AA_REG, slack=_AA_SLACK, give_up=_AA_GIVE_UP,
                             patience=_AA_PATIENCE) if accelerate else None
    inner_tol, converged, crit, tighten = 0.0, False, np.inf, False
    for it in range(max_iter):
        new, res = admm_step(problem, state, params, inner_tol=inner_tol)
        _record(hist, res, it, verbose)
        crit = res.criterion
        if crit <= params.tol and not certify:
            state, converged = new, True
            break
        if crit <= params.tol:
            # the residuals of the step pass; the certificate measures the whole state
            # (the U-step's gradient was taken before the V- and d-steps moved B and d)
            cert = stationarity(problem, new, params.r_u, params.r_v, tol=params.tol)
            crit = max(crit, cert["criterion"])
            if cert["passed"]:
                state, converged = new, True
                break
            # the U-step solved again at the step's output (B, d): the measure that
            # fails is almost always the U-side gradient, taken before B and d moved
            ref = _refine_u(problem, new, params,
                            max(0.1 * params.tol * cert["scale"], cert["floor"]))
            if ref is not None:
                cert_r = stationarity(problem, ref, params.r_u, params.r_v, tol=params.tol)
                if cert_r["passed"]:
                    state, converged, crit = ref, True, cert_r["criterion"]
                    # the history's last entry describes the state returned
                    hist["objective"][-1] = float(
                        problem.data_term(ref.A, ref.d, ref.B, ref.GA)
                        + params.lam_u * np.abs(ref.A[params.r_u:]).sum()
                        + params.lam_v * np.abs(ref.B[params.r_v:]).sum())
                    hist["primal_residual"][-1] = float(np.hypot(
                        cert_r["primal_residual_u"], cert_r["primal_residual_v"]))
                    hist["stationarity"][-1] = max(cert_r["rgrad_u"], cert_r["rgrad_v"])
                    break
            # the tighter inner tolerance: a tenth of the threshold, not below the floor
            cert_inner = max(0.1 * params.tol * cert["scale"], cert["floor"])
            if not tighten:
                tighten = True
                params = replace(params, inner_steps=max(params.inner_steps,
                                                         _CERT_INNER_STEPS))
        d_kappa, pair_usable = state.d, not res.flipped
        if aa is not None and aa.active and it >= aa_start:
            if res.flipped:
                aa.reset()      # a sign flip changes the coordinates of Omega_v, Z_v
            new, res, merit, restored = aa.review(res.merit, new, res)
            if restored:        # the plain iterate T(x_{k-1}) replaces the rejected step
                d_kappa, pair_usable, crit = new.d, False, res.criterion
        inner_tol = res.inner_tolerance(params.tol)
        if tighten:                     # a failed certificate: solve the steps tighter
            inner_tol = min(inner_tol, cert_inner)
        balanced = balance_rho(new, res, problem.curvature(d_kappa), params)
        if aa is not None and aa.active and it >= aa_start:
            if balanced.rho != new.rho:
                aa.reset()      # the scaled duals changed coordinates
            elif pair_usable:
                x_next = aa.extrapolate(_stack(state), _stack(balanced), balanced, res,
                                        merit)
                if x_next is not None:
                    balanced = _unstack_retract(x_next, balanced)
        state = balanced
    if not converged and aa is not None and aa.pending is not None:
        # out of iterations with an untested extrapolated point: the plain iterate
        state, res, _ = aa.pending
        crit = res.criterion
    return state, hist, converged, float(crit)


def _refine_u(problem, state, params, inner_tol):
    """The state with its U-step solved again at its own (B, d, Omega, Z), to
    ``inner_tol`` (at most ``_CERT_INNER_STEPS`` polar steps), then its d-step; None when
    that d-step would flip a sign (the state is then left to the iteration).

    A step's residuals measure the U-subproblem's gradient before the V- and d-steps
    move B and d; at a state whose residuals pass but whose certificate fails on that
    gradient (Model-I bootstrap replicates: 1260 of 1281 failed certificates), this
    re-solve removes the lag. The result is certified like any state
    (:func:`stationarity` at the state itself), so it is returned only when it passes.
    """
    d = state.d
    args = (state.A, (problem.H @ state.B) * d, state.rho, params.r_u,
            state.Omega_u - state.Z_u)
    kw = dict(Q=problem.gram, w=d * d, L_Q=problem.curvature(d), QX=state.GA,
              tol=inner_tol, max_steps=_CERT_INNER_STEPS)
    if params.u_step == "subspace":
        A, GA, _ = subspace_quadratic(*args, P=state.P_u, **kw)
    else:
        A, GA, _ = mm_quadratic(*args, step0=state.t_u, **kw)
    c = np.einsum("ij,ij->j", problem.H.T @ A, state.B)
    g = np.einsum("ij,ij->j", A, GA)
    d_new = np.asarray(params.d_step(c, g), dtype=float)
    if np.any(d_new < 0):
        return None
    return replace(state, A=A, GA=GA, d=d_new)


# ---------------------------------------------------------------------------------------
# starting points
# ---------------------------------------------------------------------------------------
def _initial_state(problem, rank, r_u, r_v, lam_u, lam_v, rho):
    """Deterministic start: the better (in SMART objective) of two reduced-rank fits.

    (a) the unrestricted reduced-rank fit of rank r (exact), and, when r <= min(r_u, r_v),
    (b) the reduced-rank fit restricted to the source's leading subspaces
    (:meth:`SmartProblem.restricted_rrr`), which is the SMART solution for large lambda.
    The scaled duals start at the KKT multipliers of (:func:`_dual_guess`).
    """
    p, q = problem.p, problem.q
    A, B = problem.rrr_start(rank)
    if (lam_u > 0 or lam_v > 0) and rank <= min(r_u, r_v) and (r_u < p or r_v < q):
        obj_a = (problem.data_term(A, problem.optimal_d(A, B), B)
                 + lam_u * np.abs(A[r_u:]).sum() + lam_v * np.abs(B[r_v:]).sum())
        A_b, B_b = problem.restricted_rrr(rank, r_u, r_v)
        obj_b = problem.data_term(A_b, problem.optimal_d(A_b, B_b), B_b)
        if obj_b < obj_a:
            A, B = A_b, B_b
    elif (lam_u > 0 or lam_v > 0) and rank > min(r_u, r_v) and (r_u < p or r_v < q):
        start = problem.complement_start(rank, r_u, r_v, lam_u, lam_v)
        if start is not None:
            obj_a = (problem.data_term(A, problem.optimal_d(A, B), B)
                     + lam_u * np.abs(A[r_u:]).sum() + lam_v * np.abs(B[r_v:]).sum())
            A_c, B_c = start
            obj_c = (problem.data_term(A_c, problem.optimal_d(A_c, B_c), B_c)
                     + lam_u * np.abs(A_c[r_u:]).sum() + lam_v * np.abs(B_c[r_v:]).sum())
            if obj_c < obj_a:
                A, B = A_c, B_c
    Z_u, Z_v = _dual_guess(problem, A, B, r_u, r_v, lam_u, lam_v, rho)
    return AdmmState(A=A, B=B, d=np.zeros(rank),
                     Omega_u=soft_threshold(A[r_u:] + Z_u, lam_u / rho),
                     Omega_v=soft_threshold(B[r_v:] + Z_v, lam_v / rho), Z_u=Z_u, Z_v=Z_v,
                     rho=float(rho))


def _dual_guess(problem, A, B, r_u, r_v, lam_u, lam_v, rho):
    """Scaled duals from the KKT conditions at (A, B): ``rho Z = -clip(grad_low, +-lam)``.

    ``grad`` is the Riemannian gradient of the data term (with d at its optimum); at a
    point with ``A_low = 0`` it is the multiplier that makes the point stationary when
    ``|grad_low| <= lam``, so a solution of the restricted problem starts at a fixed point.
    """
    _, sign, g_u, g_v = problem.profiled_gradients(A, B)
    Z_u = -np.clip(g_u[r_u:], -lam_u, lam_u) / rho
    Z_v = -np.clip((g_v * sign)[r_v:], -lam_v, lam_v) / rho
    return Z_u, Z_v


def _state_from_init(init, problem, rank, r_u, r_v, lam_u, lam_v, rho):
    """Warm start: accept A/B (source coordinates) or U/V, plus optional d, Omega, Z, rho."""
    A = (np.array(init["A"], dtype=float) if "A" in init
         else problem.U0.T @ np.asarray(init["U"], dtype=float))
    B = (np.array(init["B"], dtype=float) if "B" in init
         else problem.V0.T @ np.asarray(init["V"], dtype=float))
    if A.shape != (problem.p, rank) or B.shape != (problem.q, rank):
        raise ValueError(f"init must give U/A of shape {(problem.p, rank)} and V/B of shape "
                         f"{(problem.q, rank)}; got {A.shape} and {B.shape}")
    rho = float(init.get("rho", rho))
    st = {"A": A, "B": B, "rho": rho,
          "d": np.array(init["d"], float) if "d" in init else np.zeros(rank)}
    for side, low, k, lam_s in (("u", A, r_u, lam_u), ("v", B, r_v, lam_v)):
        same = ("r_" + side not in init) or int(init["r_" + side]) == k
        Om, Z = init.get("Omega_" + side), init.get("Z_" + side)
        shape = low[k:].shape
        if same and Om is not None and np.shape(Om) == shape:
            st["Omega_" + side] = np.array(Om, dtype=float)
        else:
            st["Omega_" + side] = soft_threshold(low[k:], lam_s / rho)
        st["Z_" + side] = (np.array(Z, dtype=float)
                           if same and Z is not None and np.shape(Z) == shape
                           else np.zeros(shape))
    return AdmmState(**st)


# ---------------------------------------------------------------------------------------
# the solver
# ---------------------------------------------------------------------------------------
def _subproblem_kernels(backend, solver_opts):
    """(d_step, omega_step) of the backend: closed forms, or the CVXPY twins."""
    if backend == "fast":
        return closed_form_d, _soft_threshold_step
    from ..solvers import cvx

    opts = dict(solver_opts or {})
    return partial(cvx.smart_d_step, **opts), partial(cvx.smart_omega_step, **opts)


def smart_admm(Sxx, Sxy, Syy, C0, rank, structural_rank=None, lam=(0.0, 0.0), *,
               svd0=None, problem=None, **options):
    r"""Fit SMART by ADMM from the centred moments (see the module docstring for the steps).

    Parameters
    ----------
    Sxx, Sxy, Syy : ndarray or None
        :math:`X^\top X / n` (p x p), :math:`X^\top Y / n` (p x q), :math:`Y^\top Y / n`
        (q x q), centred (None
        when ``problem`` is given).
    C0 : ndarray (p, q) or None
        Source coefficient matrix (may be None when ``svd0`` or ``problem`` is given).
    rank : int
        Rank r of the fit, ``1 <= r <= min(p, q)``.
    structural_rank : (int, int) or None
        ``(r_u, r_v)``, ``0 <= r_u <= p``, ``0 <= r_v <= q``; None means ``(p, q)``
        (nothing penalised: reduced-rank regression).
    lam : float or (float, float)
        ``(lam_u, lam_v) >= 0``; a scalar is used for both.
    rho : float
        Initial ADMM penalty (ignored when ``init`` carries its own ``rho``).
    tol : float
        Relative tolerance of the stopping rule.
    max_iter : int
        Maximum number of ADMM iterations.
    init : dict or None
        Warm start: ``A``/``U``, ``B``/``V`` and optionally ``d``, ``Omega_u``, ``Omega_v``,
        ``Z_u``, ``Z_v``, ``rho`` (e.g. ``result.extra`` of a previous fit). Omega and Z
        are reused only when their shapes and structural ranks match. None: the exact
        reduced-rank fit of rank r (deterministic).
    backend : {"fast", "cvxpy"}
        How the d-step and Omega-steps are solved.
    svd0 : (U0, s0, V0) or None
        Precomputed :func:`source_svd` of C0.
    inner_steps : int
        Maximum polar steps per U- or V-step.
    mu, tau : float
        Residual balancing parameters.
    adapt_rho : bool
        Whether to adapt rho.
    verbose : bool
        Print one line per iteration.
    accelerate : bool or "auto"
        Safeguarded type-II Anderson acceleration of the ADMM fixed-point map (see the
        module docstring); False gives the plain ADMM iteration; True accelerates from the
        first iteration; "auto" accelerates a cold start (``init=None``) from the first
        iteration and a warm start after 150 plain iterations.
    aa_memory : int
        Number of stored pairs of the Anderson memory.
    problem : SmartProblem or None
        The problem built once (:meth:`SmartProblem.from_moments`), e.g. shared by the
        fits of a lambda path; then Sxx, Sxy, Syy, C0 and svd0 must be None.
    solver_opts : dict or None
        Options of the CVXPY solves (``backend="cvxpy"``), e.g. ``{"solver": "SCS"}``.
    u_step : {"auto", "mm", "subspace"}
        The U-step's solver (:class:`AdmmParams`); "auto" takes the subspace steps when a
        product ``G @ A`` costs at least ``1e7`` flops (``2 p^2 r``, e.g. p >= 800 at r = 8),
        where the products dominate the cost. Both solve the U-step to the same inner
        tolerance, so the fit agrees to the solver tolerance.
    certify : bool
        Stop only where the state also passes :func:`stationarity` at ``tol`` (default).
        False stops on the residual rule alone (the inexact fits of a lambda path or a
        cross-validation fold, which only need a fit and its support); ``converged``
        then means that rule only.

    Returns
    -------
    SolverResult
        ``coef`` :math:`= U \operatorname{diag}(d) V^\top` (p x q), ``objective`` the SMART
        objective there,
        ``history`` per iteration (objective, primal_residual, dual_residual, stationarity,
        rho, inner_steps) and ``extra`` with U, d (descending, >= 0), V, A, B (source
        coordinates), Omega_u, Omega_v, Z_u, Z_v, rho, r_u, r_v, lam_u, lam_v, criterion,
        nnz (nonzeros of Omega_u and Omega_v) -- a complete warm-start state.
    """
    return smart_solve(resolve_problem(problem, Sxx, Sxy, Syy, C0, svd0), rank,
                       structural_rank, lam, **options)


def smart_solve(problem, rank, structural_rank=None, lam=(0.0, 0.0), *, rho=1.0, tol=1e-6,
                max_iter=2000, init=None, backend="fast", inner_steps=20, mu=10.0, tau=2.0,
                adapt_rho=True, verbose=False, accelerate="auto", aa_memory=5,
                solver_opts=None, u_step="auto", certify=True):
    """SMART by ADMM on a built :class:`~mtltransfer.smart.problem.SmartProblem` (from
    :meth:`~mtltransfer.smart.problem.SmartProblem.from_moments`; the fits of a lambda
    path, a fold or a bootstrap share one). Options and result as :func:`smart_admm`,
    which builds the problem from the moments and calls this."""
    if backend not in ("fast", "cvxpy"):
        raise ValueError(f"backend must be 'fast' or 'cvxpy'; got {backend!r}")
    if not isinstance(problem, SmartProblem):
        raise TypeError(f"problem must be a SmartProblem; got {type(problem).__name__}")
    prob = problem
    rank, r_u, r_v, lam_u, lam_v = _check_config(prob.p, prob.q, rank, structural_rank, lam)
    if not rho > 0:
        raise ValueError(f"rho must be > 0; got {rho!r}")
    aa_start = 0
    if accelerate == "auto":
        accelerate, aa_start = True, (0 if init is None else _AA_WARM_START)
    elif not isinstance(accelerate, (bool, np.bool_)):
        raise ValueError(f"accelerate must be True, False or 'auto'; got {accelerate!r}")
    if init is None:
        state = _initial_state(prob, rank, r_u, r_v, lam_u, lam_v, rho)
    else:
        state = _state_from_init(init, prob, rank, r_u, r_v, lam_u, lam_v, rho)
    d_step, omega_step = _subproblem_kernels(backend, solver_opts)
    params = AdmmParams(r_u=r_u, r_v=r_v, lam_u=lam_u, lam_v=lam_v, tol=tol,
                        inner_steps=inner_steps, mu=mu, tau=tau, adapt_rho=adapt_rho,
                        d_step=d_step, omega_step=omega_step,
                        u_step=_resolve_u_step(u_step, prob.p, rank),
                        first_steps=None if init is None else MM_FIRST_STEPS)
    run = partial(_run_admm, prob, params=params, accelerate=bool(accelerate),
                  aa_memory=aa_memory, verbose=verbose, certify=certify)
    with smart_iteration_threads(prob.p, rank):
        if (lam_u > 0 and r_u < prob.p) or (lam_v > 0 and r_v < prob.q):
            # Newton on the support found (mtltransfer.smart.active_set)
            state, hist, converged, crit, _ = run_with_active_set(
                lambda st, m, a: run(st, max_iter=m, aa_start=a), prob, state, r_u=r_u,
                r_v=r_v, lam_u=lam_u, lam_v=lam_v, max_iter=max_iter, aa_start=aa_start)
        else:
            state, hist, converged, crit = run(state, max_iter=max_iter, aa_start=aa_start)
    if not converged and certify:
        # the certificate at the returned state (the step's own residuals may pass it)
        crit = max(crit, stationarity(prob, state, r_u, r_v, tol=tol)["criterion"])
        warn_not_converged("SMART ADMM", len(hist["objective"]), crit, tol)
    return _pack(prob, state, hist, converged, crit, params)


#: from this many flops per product ``G @ A`` (2 p^2 r) on, ``u_step="auto"`` takes the
#: subspace U-step: below it a product costs less than the subspace step's small solves
_SUBSPACE_FLOPS = 1e7


def _resolve_u_step(u_step, p, rank):
    """``"mm"`` or ``"subspace"``: the given one, or by the size of ``G @ A`` (auto)."""
    if u_step == "auto":
        return "subspace" if 2.0 * p * p * rank >= _SUBSPACE_FLOPS else "mm"
    if u_step not in ("mm", "subspace"):
        raise ValueError(f"u_step must be 'auto', 'mm' or 'subspace'; got {u_step!r}")
    return u_step


#: below this many flops per product ``G @ A`` (2 p^2 r) the iterations run on one BLAS
#: thread: thread start-up costs more than it saves on such small products
def _pack(problem, state, hist, converged, crit, params):
    """Sort the factors by descending d (a symmetry) and build the SolverResult."""
    r_u, r_v, lam_u, lam_v = params.r_u, params.r_v, params.lam_u, params.lam_v
    order = np.argsort(-state.d, kind="stable")
    A, B, d = state.A[:, order], state.B[:, order], state.d[order]
    Om_u, Om_v = state.Omega_u[:, order], state.Omega_v[:, order]
    Z_u, Z_v = state.Z_u[:, order], state.Z_v[:, order]
    U, V = problem.U0 @ A, problem.V0 @ B
    data = problem.data_term(A, d, B)
    obj = data + lam_u * np.abs(A[r_u:]).sum() + lam_v * np.abs(B[r_v:]).sum()
    extra = {"U": U, "d": d, "V": V, "A": A, "B": B, "Omega_u": Om_u, "Omega_v": Om_v,
             "Z_u": Z_u, "Z_v": Z_v, "rho": state.rho, "r_u": r_u, "r_v": r_v,
             "lam_u": lam_u, "lam_v": lam_v, "criterion": crit,
             "nnz": int(np.count_nonzero(Om_u) + np.count_nonzero(Om_v)),
             "data_term": float(data), "tol": float(params.tol)}
    return SolverResult(coef=(U * d) @ V.T, converged=bool(converged),
                        n_iter=len(hist["objective"]), history=hist, objective=float(obj),
                        extra=extra)
