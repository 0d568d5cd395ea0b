"""ADMM for SMART, the spectral transfer estimator (Zhao, Kolar and Lv, 2026).

Problem. Given the centred target moments ``Sxx = X^T X / n``, ``Sxy = X^T Y / n``,
``Syy = Y^T Y / n`` and the source coefficient matrix ``C0`` with full SVD
``C0 = U0 S0 V0^T`` (U0 p x p, V0 q x q), SMART solves

    minimise  (1/2n) ||Y - X U diag(d) V^T||_F^2 + lam_u ||U_perp^T U||_1 + lam_v ||V_perp^T V||_1
    over      U (p x r), d (r), V (q x r),  U^T U = I_r,  V^T V = I_r,

with ``U_perp = U0[:, r_u:]`` and ``V_perp = V0[:, r_v:]``.

Source coordinates. Write ``U = U0 A`` and ``V = V0 B`` (A, B again orthonormal) and let
``G = U0^T Sxx U0`` (p x p) and ``H = U0^T Sxy V0`` (p x q), computed once. Because
``B^T B = I``, the data term is exactly

    f(A, d, B) = tr(Syy)/2 - sum_j d_j a_j^T H b_j + 1/2 sum_j d_j^2 a_j^T G a_j,

and the penalised blocks are simply the rows ``A[r_u:]`` and ``B[r_v:]``. No iteration
touches the n rows of the data; one iteration costs a few p x p x r products and thin SVDs
of p x r and q x r matrices.

ADMM (scaled duals). Split ``Omega_u = A[r_u:]``, ``Omega_v = B[r_v:]`` with scaled duals
``Z_u``, ``Z_v`` and penalty ``rho``. One iteration:

1. U-step: ``A <- argmin_{A in St(p, r)} f(A, d, B) + (rho/2)||A[r_u:] - Omega_u + Z_u||^2``,
   solved by majorise-minimise polar steps (:func:`mtltransfer.solvers.stiefel.mm_quadratic`
   with ``Q = G``, ``w = d^2``, ``C = H B diag(d)``, ``L = lambda_max(G) max d^2 + rho``),
   warm-started at the current A and run until its Riemannian gradient norm is below an
   inner tolerance tied to the current ADMM residuals (at most ``inner_steps`` steps).
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

Anderson acceleration (``accelerate="auto"``, the default, uses it for a cold start and not
for a warm start: measured on the paper's Model-I/II, it cuts a cold fit's iterations
3-5x, while along the warm-started lambda paths and cross-validation fits of the tuning,
which start next to the solution, it cost more than it saved). Steps 1-5 define a fixed-point
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

At such a point the KKT conditions of SMART on the manifolds hold to O(tol):
``rho Z`` is a subgradient of the l1 penalty at ``Omega = A_low`` and the Riemannian gradient
of ``f + <rho Z_u, A_low> + <rho Z_v, B_low>`` is small.

With ``backend="cvxpy"`` the d-step and Omega-steps are solved by the CVXPY formulations of
:mod:`mtltransfer.solvers.cvx` instead of in closed form; all else is shared.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ._anderson import Anderson
from ._base import SolverResult, warn_not_converged
from .linear import reduced_rank
from .prox import soft_threshold
from .stiefel import mm_quadratic, polar, riemannian_gradient


__all__ = ["source_svd", "source_rank", "complement_basis", "smart_admm",
           "smart_objective", "smart_verify"]

# bounds of rho relative to the data curvature kappa = lambda_max(G) max d^2
_RHO_MIN, _RHO_MAX = 1e-4, 10.0
_TINY = 1e-300
# Anderson acceleration: an extrapolated point is kept when its fixed-point residual is at
# most _AA_SLACK times that of the plain iterate it replaced; Tikhonov weight of the
# least-squares problem (relative to ||dF||_F^2)
_AA_SLACK, _AA_REG = 1.2, 1e-10
# rejections after which, if they outnumber the accepted extrapolations, AA is switched off
_AA_GIVE_UP = 5
# iterations without a 1% improvement of the best merit after which AA is switched off
_AA_PATIENCE = 30


# ---------------------------------------------------------------------------------------
# set-up
# ---------------------------------------------------------------------------------------
def source_svd(C0):
    """Full SVD of the source matrix: ``C0 = U0 diag(s0) V0[:, :len(s0)]^T``.

    Beyond the numerical rank r0 of C0 (:func:`source_rank`: singular values above
    ``SOURCE_RTOL * s_max``) the singular vectors are not determined by C0: any orthonormal basis of the
    complement will do, and LAPACK's choice jumps under perturbations at rounding level.
    Because the SMART penalty is the entrywise L1 norm of ``U_perp^T U`` in that basis, a
    fixed, canonical basis is used instead (:func:`complement_basis`: the standard basis
    vectors projected on the complement and orthonormalised in pivoted order), so the
    fit depends continuously on C0 and leakage beyond rank(C0) is measured along the
    predictors' (responses') own axes.

    Returns
    -------
    U0 : ndarray (p, p)
    s0 : ndarray (min(p, q),)
    V0 : ndarray (q, q)
        The bases are completed to square orthogonal matrices when p != q.
    """
    C0 = np.asarray(C0, dtype=float)
    U0, s0, V0t = linalg.svd(C0, full_matrices=True, lapack_driver="gesdd")
    V0 = V0t.T
    r0 = source_rank(s0)
    U0 = np.column_stack([U0[:, :r0], complement_basis(U0[:, :r0])])
    V0 = np.column_stack([V0[:, :r0], complement_basis(V0[:, :r0])])
    return U0, s0, V0


#: singular values of C0 below this fraction of the largest are taken as zero: a fitted
#: source carries no information there (a reduced-rank source is exactly low rank up to
#: rounding at ~1e-15, which must not decide the basis of U_perp)
SOURCE_RTOL = 1e-10


def source_rank(s0):
    """Numerical rank of the source: singular values above ``SOURCE_RTOL * s_max``."""
    s0 = np.asarray(s0, dtype=float)
    if s0.size == 0 or s0[0] <= 0:
        return 0
    return int(np.sum(s0 > SOURCE_RTOL * s0[0]))


def complement_basis(Q):
    """A canonical orthonormal basis of the orthogonal complement of span(Q).

    Q is m x r with orthonormal columns. The projections ``(I - Q Q^T) e_j`` of the
    standard basis vectors are orthonormalised by a QR factorisation with column pivoting
    (the most independent first), with signs fixed by a positive diagonal of R: a smooth,
    deterministic function of span(Q) wherever the pivot order is strict.
    """
    m, r = Q.shape
    if r == m:
        return np.zeros((m, 0))
    P = np.eye(m) - Q @ Q.T
    Qc, R, _ = linalg.qr(P, pivoting=True)
    k = m - r
    sign = np.where(np.diag(R)[:k] < 0, -1.0, 1.0)
    return Qc[:, :k] * sign


def _check_svd0(svd0, C0, p, q):
    if svd0 is None:
        if C0 is None:
            raise ValueError("either C0 or svd0 must be given")
        C0 = np.asarray(C0, dtype=float)
        if C0.shape != (p, q):
            raise ValueError(f"C0 must have shape (p, q) = {(p, q)}; got {C0.shape}")
        return source_svd(C0)
    U0, s0, V0 = svd0
    if U0.shape != (p, p) or V0.shape != (q, q):
        raise ValueError(f"svd0 must hold square U0 ({p}x{p}) and V0 ({q}x{q}); got "
                         f"{U0.shape} and {V0.shape}")
    return U0, np.asarray(s0), V0


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


class _Problem:
    """SMART data in source coordinates: G, H, tr(Syy)/2 and the Lipschitz bound of G."""

    def __init__(self, Sxx, Sxy, Syy, U0, V0):
        self.U0, self.V0 = U0, V0
        G = U0.T @ Sxx @ U0
        self.G = 0.5 * (G + G.T)
        self.H = U0.T @ Sxy @ V0
        self.half_tr_syy = 0.5 * float(np.trace(Syy))
        p = G.shape[0]
        self.lmax_G = float(max(linalg.eigvalsh(self.G, subset_by_index=[p - 1, p - 1])[0],
                                0.0)) if p else 0.0
        self.p, self.q = self.H.shape

    def data_term(self, A, d, B, GA=None):
        """f = tr(Syy)/2 - sum_j d_j a_j^T H b_j + 1/2 sum_j d_j^2 a_j^T G a_j."""
        if GA is None:
            GA = self.G @ A
        c = np.einsum("ij,ij->j", A, self.H @ B)
        g = np.einsum("ij,ij->j", A, GA)
        return self.half_tr_syy - float(c @ d) + 0.5 * float(g @ (d * d))


def _d_step_fast(c, g):
    """d_j = c_j / g_j, the minimiser of 1/2 sum g_j d_j^2 - sum c_j d_j (0 where g_j = 0)."""
    return np.where(g > _TINY, c / np.maximum(g, _TINY), 0.0)


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
    U0, _, V0 = _check_svd0(svd0, C0, p, q)
    U, V, d = np.asarray(U, float), np.asarray(V, float), np.asarray(d, float)
    _, r_u, r_v, lam_u, lam_v = _check_config(p, q, max(1, U.shape[1]), structural_rank,
                                              lam)
    C = (U * d) @ V.T
    data = 0.5 * np.trace(Syy) - np.sum(Sxy * C) + 0.5 * np.sum((Sxx @ C) * C)
    pen = lam_u * np.abs(U0[:, r_u:].T @ U).sum() + lam_v * np.abs(V0[:, r_v:].T @ V).sum()
    return float(data + pen)


# ---------------------------------------------------------------------------------------
# the solver
# ---------------------------------------------------------------------------------------
def _rrr_factors(Sxx, Sxy, rank):
    """Exact reduced-rank fit of rank r and its thin SVD factors (P, s, Q)."""
    C_r, _ = reduced_rank(Sxx, Sxy, rank)
    P, s, Qt = np.linalg.svd(C_r, full_matrices=False)
    return C_r, P[:, :rank], s[:rank], Qt[:rank].T


def _initial_state(prob, Sxx, Sxy, rank, r_u, r_v, lam_u, lam_v, rho):
    """Deterministic start: the better (in SMART objective) of two reduced-rank fits.

    (a) the unrestricted reduced-rank fit of rank r (exact), and, when r <= min(r_u, r_v),
    (b) the reduced-rank fit restricted to the source's leading subspaces,
    ``U in span U0[:, :r_u]``, ``V in span V0[:, :r_v]`` (exact: reduced-rank regression
    with moments ``G[:r_u, :r_u]``, ``H[:r_u, :r_v]``), which is the SMART solution for large
    lambda. Each is factorised by its SVD and written in source coordinates.
    """
    p, q = prob.p, prob.q
    C_r, P, _, Qv = _rrr_factors(Sxx, Sxy, rank)
    A = np.linalg.qr(prob.U0.T @ P)[0]
    B = np.linalg.qr(prob.V0.T @ Qv)[0]
    best = None
    if (lam_u > 0 or lam_v > 0) and rank <= min(r_u, r_v) and (r_u < p or r_v < q):
        obj_a = (prob.data_term(A, _d_opt(prob, A, B), B)
                 + lam_u * np.abs(A[r_u:]).sum() + lam_v * np.abs(B[r_v:]).sum())
        Ct, Pt, _, Qt = _rrr_factors(prob.G[:r_u, :r_u], prob.H[:r_u, :r_v], rank)
        A_b = np.zeros((p, rank))
        B_b = np.zeros((q, rank))
        A_b[:r_u] = np.linalg.qr(Pt)[0]
        B_b[:r_v] = np.linalg.qr(Qt)[0]
        obj_b = prob.data_term(A_b, _d_opt(prob, A_b, B_b), B_b)
        if obj_b < obj_a:
            A, B = A_b, B_b
    Z_u, Z_v = _dual_guess(prob, A, B, r_u, r_v, lam_u, lam_v, rho)
    return {"A": A, "B": B, "d": np.zeros(rank),
            "Omega_u": soft_threshold(A[r_u:] + Z_u, lam_u / rho),
            "Omega_v": soft_threshold(B[r_v:] + Z_v, lam_v / rho), "Z_u": Z_u, "Z_v": Z_v,
            "rho": float(rho)}


def _dual_guess(prob, A, B, r_u, r_v, lam_u, lam_v, rho):
    """Scaled duals from the KKT conditions at (A, B): ``rho Z = -clip(grad_low, +-lam)``.

    ``grad`` is the Riemannian gradient of the data term (with d at its optimum); at a
    point with ``A_low = 0`` it is the multiplier that makes the point stationary when
    ``|grad_low| <= lam``, so a solution of the restricted problem starts at a fixed point.
    """
    d = _d_opt(prob, A, B)
    sgn = np.where(d < 0, -1.0, 1.0)
    d = np.abs(d)
    Bs = B * sgn
    HB = prob.H @ Bs
    g_u = riemannian_gradient(A, (prob.G @ A) * (d * d) - HB * d)
    g_v = riemannian_gradient(Bs, -(prob.H.T @ A) * d) * sgn
    Z_u = -np.clip(g_u[r_u:], -lam_u, lam_u) / rho
    Z_v = -np.clip(g_v[r_v:], -lam_v, lam_v) / rho
    return Z_u, Z_v


def _d_opt(prob, A, B):
    """|d-step| at (A, B) (the sign is absorbed by B in the solver)."""
    c = np.einsum("ij,ij->j", A, prob.H @ B)
    g = np.einsum("ij,ij->j", A, prob.G @ A)
    return _d_step_fast(c, g)


def _state_from_init(init, prob, rank, r_u, r_v, lam_u, lam_v, rho):
    """Warm start: accept A/B (source coordinates) or U/V, plus optional d, Omega, Z, rho."""
    if "A" in init:
        A = np.array(init["A"], dtype=float)
    else:
        A = prob.U0.T @ np.asarray(init["U"], dtype=float)
    if "B" in init:
        B = np.array(init["B"], dtype=float)
    else:
        B = prob.V0.T @ np.asarray(init["V"], dtype=float)
    if A.shape != (prob.p, rank) or B.shape != (prob.q, rank):
        raise ValueError(f"init must give U/A of shape {(prob.p, rank)} and V/B of shape "
                         f"{(prob.q, rank)}; got {A.shape} and {B.shape}")
    rho = float(init.get("rho", rho))
    d = np.array(init["d"], float) if "d" in init else np.zeros(rank)
    st = {"A": A, "B": B, "d": d, "rho": rho}
    same_u = ("r_u" not in init) or int(init["r_u"]) == r_u
    same_v = ("r_v" not in init) or int(init["r_v"]) == r_v
    for side, low, k, lam_s in (("u", A, r_u, lam_u), ("v", B, r_v, lam_v)):
        same = same_u if side == "u" else same_v
        Om, Z = init.get("Omega_" + side), init.get("Z_" + side)
        shape = low[k:].shape
        if same and Om is not None and np.shape(Om) == shape:
            st["Omega_" + side] = np.array(Om, dtype=float)
        else:
            st["Omega_" + side] = soft_threshold(low[k:], lam_s / rho)
        if same and Z is not None and np.shape(Z) == shape:
            st["Z_" + side] = np.array(Z, dtype=float)
        else:
            st["Z_" + side] = np.zeros(shape)
    return st


def _make_nonnegative(d, B, Om_v, Z_v):
    """Flip the sign of column j of B, Omega_v and Z_v where d_j < 0 (in place).

    (d_j, b_j) and (-d_j, -b_j) give the same fit and the same l1 penalty, so this is a
    symmetry of the augmented Lagrangian; returns |d|.
    """
    neg = d < 0
    if neg.any():
        B[:, neg] *= -1
        Om_v[:, neg] *= -1
        Z_v[:, neg] *= -1
    return np.abs(d)


def _admm_core(prob, rank, r_u, r_v, lam_u, lam_v, state, *, tol, max_iter, backend,
               inner_steps, mu, tau, adapt_rho, verbose, alpha=1.0, accelerate=False,
               aa_memory=5):
    """Run ADMM from ``state`` (modified in place); returns (state, history, converged)."""
    if backend == "cvxpy":
        from . import cvx
        d_step = cvx.smart_d_step
        omega_step = cvx.smart_omega_step
    else:
        d_step = _d_step_fast

        def omega_step(V, lam_s, rho_s):
            return soft_threshold(V, lam_s / rho_s)

    G, H, lmax_G = prob.G, prob.H, prob.lmax_G
    A, B, d = state["A"], state["B"], state["d"]
    Om_u, Om_v, Z_u, Z_v = state["Omega_u"], state["Omega_v"], state["Z_u"], state["Z_v"]
    rho = state["rho"]
    hist = {k: [] for k in ("objective", "primal_residual", "dual_residual",
                            "stationarity", "rho", "inner_steps")}
    if not np.any(d):
        # d-step at the starting point so the first U-step sees the right scale
        GA0 = G @ A
        d = d_step(np.einsum("ij,ij->j", A, H @ B), np.einsum("ij,ij->j", A, GA0))
        d = _make_nonnegative(d, B, Om_v, Z_v)
    GA = None
    inner_tol = 0.0  # first iteration: inner_steps polar steps
    converged = False
    crit = np.inf
    aa = Anderson(aa_memory, _AA_REG) if accelerate else None
    n_accepted = n_rejected = 0
    best_merit, since_best = np.inf, 0
    pending = None      # (saved plain state, its residual norm) while an AA point is tested
    for it in range(max_iter):
        if aa is not None:
            x_in = (A, B, d, Om_u, Om_v, Z_u, Z_v)
        d2 = d * d
        # 1. U-step: min_A f(A, d, B) + (rho/2)||A[r_u:] - Omega_u + Z_u||^2 on St(p, r)
        HB = H @ B
        A, GA, info_u = mm_quadratic(A, HB * d, rho, r_u, Om_u - Z_u, Q=G, w=d2,
                                     L_Q=lmax_G * float(d2.max(initial=0.0)), QX=GA,
                                     tol=inner_tol, max_steps=inner_steps)
        if GA is None:
            GA = G @ A
        # 2. V-step: min_B -<H^T A diag(d), B> + (rho/2)||B[r_v:] - Omega_v + Z_v||^2
        HtA = H.T @ A
        exact_v = r_v in (0, prob.q)
        B, _, info_v = mm_quadratic(B, HtA * d, rho, r_v, Om_v - Z_v, tol=inner_tol,
                                    max_steps=1 if exact_v else inner_steps)
        # 3. d-step: d_j = [A^T H B]_jj / [A^T G A]_jj, then d >= 0 by flipping B's columns
        c = np.einsum("ij,ij->j", HtA, B)
        g = np.einsum("ij,ij->j", A, GA)
        d_raw = np.asarray(d_step(c, g), dtype=float)
        flipped = bool(np.any(d_raw < 0))
        if flipped and aa is not None:
            # a sign flip changes the coordinates of Omega_v, Z_v: the memory is void
            # (x_in's Omega_v, Z_v are flipped in place below, consistently)
            aa.reset()
            x_in = None
        d = _make_nonnegative(d_raw, B, Om_v, Z_v)
        c = np.where(d_raw < 0, -c, c)  # c_j = [A^T H B]_jj after the column flips
        # 4. Omega-steps (soft-thresholding) and 5. dual ascent
        A_low, B_low = A[r_u:], B[r_v:]
        # over-relaxation: A_hat = alpha A_low + (1 - alpha) Omega_u (alpha = 1: plain ADMM)
        A_hat = alpha * A_low + (1.0 - alpha) * Om_u if alpha != 1.0 else A_low
        B_hat = alpha * B_low + (1.0 - alpha) * Om_v if alpha != 1.0 else B_low
        Om_u_new = omega_step(A_hat + Z_u, lam_u, rho)
        Om_v_new = omega_step(B_hat + Z_v, lam_v, rho)
        Ru, Rv = A_low - Om_u_new, B_low - Om_v_new
        Z_u = Z_u + (A_hat - Om_u_new)
        Z_v = Z_v + (B_hat - Om_v_new)
        r_prim = np.sqrt(np.sum(Ru * Ru) + np.sum(Rv * Rv))
        dOu, dOv = Om_u_new - Om_u, Om_v_new - Om_v
        r_dual = rho * np.sqrt(np.sum(dOu * dOu) + np.sum(dOv * dOv))
        Om_u, Om_v = Om_u_new, Om_v_new
        r_stat = max(info_u["rgrad"], info_v["rgrad"])
        # tolerances (absolute + relative)
        s_prim = 1.0 + max(np.sqrt(np.sum(A_low * A_low) + np.sum(B_low * B_low)),
                           np.sqrt(np.sum(Om_u * Om_u) + np.sum(Om_v * Om_v)))
        s_dual = 1.0 + max(rho * np.sqrt(np.sum(Z_u * Z_u) + np.sum(Z_v * Z_v)),
                           np.hypot(info_u["egrad"], info_v["egrad"]))
        obj = (prob.half_tr_syy - float(c @ d) + 0.5 * float(g @ (d * d))
               + lam_u * np.abs(A_low).sum() + lam_v * np.abs(B_low).sum())
        hist["objective"].append(float(obj))
        hist["primal_residual"].append(float(r_prim))
        hist["dual_residual"].append(float(r_dual))
        hist["stationarity"].append(float(r_stat))
        hist["rho"].append(float(rho))
        hist["inner_steps"].append(info_u["steps"] + info_v["steps"])
        if verbose:
            print(f"{it + 1:5d}  obj {obj: .8e}  r_prim {r_prim:.2e}  r_dual {r_dual:.2e}"
                  f"  r_stat {r_stat:.2e}  rho {rho:.3g}  inner {hist['inner_steps'][-1]}")
        crit = max(r_prim / s_prim, r_dual / s_dual, r_stat / s_dual)
        if crit <= tol:
            converged = True
            break
        rho_old = rho
        if aa is not None:
            # merit: the (Omega, Z) part of the fixed-point residual of the step just made,
            # ||[Omega+ - Omega, Z+ - Z]|| (Z+ - Z = A_low - Omega+)
            res_norm = np.sqrt(np.sum(dOu * dOu) + np.sum(dOv * dOv) + r_prim * r_prim)
            if pending is not None:
                saved, ref_norm = pending
                pending = None
                if res_norm <= _AA_SLACK * ref_norm:
                    n_accepted += 1
                else:
                    # safeguard: the extrapolated point did not decrease the merit; fall
                    # back to the plain iterate it replaced and restart the memory
                    A, B, d, GA = saved["A"], saved["B"], saved["d"], saved["GA"]
                    Om_u, Om_v, Z_u, Z_v = saved["x"]
                    rho, r_prim, r_dual = saved["rho"], saved["r_prim"], saved["r_dual"]
                    s_prim, s_dual = saved["s_prim"], saved["s_dual"]
                    aa.reset()
                    d2 = d * d
                    res_norm = ref_norm
                    x_in = None
                    n_rejected += 1
                    if n_rejected >= _AA_GIVE_UP and n_rejected > n_accepted:
                        aa = None   # extrapolation does not pay on this problem: plain ADMM
        if aa is not None:
            # stagnation guard: accepted extrapolations that never bring the merit below
            # its best value (by 1%) for _AA_PATIENCE iterations are not helping either
            if res_norm < 0.99 * best_merit:
                best_merit, since_best = res_norm, 0
            else:
                since_best += 1
                if since_best >= _AA_PATIENCE:
                    aa, pending = None, None
        # the next subproblems are solved to a tolerance tied to the residuals
        inner_tol = 0.2 * max(r_prim / s_prim, r_dual / s_dual, tol) * s_dual
        # 6. residual balancing of rho
        if adapt_rho:
            rp, rd = r_prim / s_prim, r_dual / s_dual
            kappa = max(lmax_G * float(d2.max(initial=0.0)), _TINY)
            if rp > mu * rd and rp > tol and rho * tau <= _RHO_MAX * kappa:
                rho *= tau
                Z_u, Z_v = Z_u / tau, Z_v / tau
            elif rd > mu * rp and rd > tol and rho / tau >= _RHO_MIN * kappa:
                rho /= tau
                Z_u, Z_v = Z_u * tau, Z_v * tau
        if aa is not None:
            if rho != rho_old:
                aa.reset()          # the scaled duals changed coordinates
            elif x_in is not None:
                x_vec = np.concatenate([v.ravel() for v in x_in])
                g_vec = np.concatenate([v.ravel() for v in (A, B, d, Om_u, Om_v, Z_u, Z_v)])
                x_next = aa.step(x_vec, g_vec)
                if len(aa):
                    pending = ({"A": A, "B": B.copy(), "d": d, "GA": GA, "rho": rho,
                                "x": (Om_u, Om_v, Z_u, Z_v), "r_prim": r_prim,
                                "r_dual": r_dual, "s_prim": s_prim, "s_dual": s_dual},
                               res_norm)
                    A, B, d, Om_u, Om_v, Z_u, Z_v = _unstack(x_next, A, B, d, Om_u, Om_v,
                                                             Z_u, Z_v)
                    # back onto the manifolds (polar retraction) and d >= 0
                    A, B, d, GA = polar(A), polar(B), np.abs(d), None
    if pending is not None and not converged:
        # out of iterations with an untested extrapolated point: return the plain iterate
        saved = pending[0]
        A, B, d = saved["A"], saved["B"], saved["d"]
        Om_u, Om_v, Z_u, Z_v = saved["x"]
        rho = saved["rho"]
    state.update(A=A, B=B, d=d, Omega_u=Om_u, Omega_v=Om_v, Z_u=Z_u, Z_v=Z_v, rho=rho,
                 criterion=float(crit))
    return state, hist, converged


def _unstack(vec, *like):
    """Split a flat vector into arrays shaped like ``like``."""
    out, i = [], 0
    for a in like:
        out.append(vec[i:i + a.size].reshape(a.shape))
        i += a.size
    return out


def smart_admm(Sxx, Sxy, Syy, C0, rank, structural_rank=None, lam=(0.0, 0.0), *,
               rho=1.0, tol=1e-6, max_iter=2000, init=None, backend="fast", svd0=None,
               inner_steps=20, mu=10.0, tau=2.0, adapt_rho=True, verbose=False,
               accelerate="auto", aa_memory=5, _problem=None):
    """Fit SMART by ADMM from the centred moments (see the module docstring for the steps).

    Parameters
    ----------
    Sxx, Sxy, Syy : ndarray
        ``X^T X / n`` (p x p), ``X^T Y / n`` (p x q), ``Y^T Y / n`` (q x q), centred.
    C0 : ndarray (p, q) or None
        Source coefficient matrix (may be None when ``svd0`` is given).
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
        module docstring); False gives the plain ADMM iteration; "auto" accelerates a cold
        start (``init=None``) only.
    aa_memory : int
        Number of stored pairs of the Anderson memory.

    Returns
    -------
    SolverResult
        ``coef = U diag(d) V^T`` (p x q), ``objective`` the SMART objective there,
        ``history`` per iteration (objective, primal_residual, dual_residual, stationarity,
        rho, inner_steps) and ``extra`` with U, d (descending, >= 0), V, A, B (source
        coordinates), Omega_u, Omega_v, Z_u, Z_v, rho, r_u, r_v, lam_u, lam_v, criterion,
        nnz (nonzeros of Omega_u and Omega_v) -- a complete warm-start state.
    """
    if backend not in ("fast", "cvxpy"):
        raise ValueError(f"backend must be 'fast' or 'cvxpy'; got {backend!r}")
    Sxx, Sxy, Syy = (np.asarray(M, dtype=float) for M in (Sxx, Sxy, Syy))
    p, q = Sxy.shape
    if Sxx.shape != (p, p) or Syy.shape != (q, q):
        raise ValueError(f"Sxx must be {p}x{p} and Syy {q}x{q}; got {Sxx.shape}, {Syy.shape}")
    rank, r_u, r_v, lam_u, lam_v = _check_config(p, q, rank, structural_rank, lam)
    if not rho > 0:
        raise ValueError(f"rho must be > 0; got {rho!r}")
    if _problem is None:
        U0, s0, V0 = _check_svd0(svd0, C0, p, q)
        prob = _Problem(Sxx, Sxy, Syy, U0, V0)
    else:
        prob = _problem
    if init is None:
        state = _initial_state(prob, Sxx, Sxy, rank, r_u, r_v, lam_u, lam_v, rho)
    else:
        state = _state_from_init(init, prob, rank, r_u, r_v, lam_u, lam_v, rho)
    if accelerate == "auto":
        accelerate = init is None
    elif not isinstance(accelerate, (bool, np.bool_)):
        raise ValueError(f"accelerate must be True, False or 'auto'; got {accelerate!r}")
    state, hist, converged = _admm_core(prob, rank, r_u, r_v, lam_u, lam_v, state, tol=tol,
                                        max_iter=max_iter, backend=backend,
                                        inner_steps=inner_steps, mu=mu, tau=tau,
                                        adapt_rho=adapt_rho, verbose=verbose,
                                        accelerate=accelerate, aa_memory=aa_memory)
    n_iter = len(hist["objective"])
    if not converged:
        warn_not_converged("SMART ADMM", n_iter, state["criterion"], tol)
    return _pack(prob, state, hist, converged, r_u, r_v, lam_u, lam_v)


def _pack(prob, state, hist, converged, r_u, r_v, lam_u, lam_v):
    """Sort the factors by descending d (a symmetry) and build the SolverResult."""
    order = np.argsort(-state["d"], kind="stable")
    A, B, d = state["A"][:, order], state["B"][:, order], state["d"][order]
    Om_u, Om_v = state["Omega_u"][:, order], state["Omega_v"][:, order]
    Z_u, Z_v = state["Z_u"][:, order], state["Z_v"][:, order]
    U, V = prob.U0 @ A, prob.V0 @ B
    coef = (U * d) @ V.T
    obj = (prob.data_term(A, d, B) + lam_u * np.abs(A[r_u:]).sum()
           + lam_v * np.abs(B[r_v:]).sum())
    extra = {"U": U, "d": d, "V": V, "A": A, "B": B, "Omega_u": Om_u, "Omega_v": Om_v,
             "Z_u": Z_u, "Z_v": Z_v, "rho": state["rho"], "r_u": r_u, "r_v": r_v,
             "lam_u": lam_u, "lam_v": lam_v, "criterion": state["criterion"],
             "nnz": int(np.count_nonzero(Om_u) + np.count_nonzero(Om_v)),
             "data_term": float(prob.data_term(A, d, B))}
    return SolverResult(coef=coef, converged=bool(converged),
                        n_iter=len(hist["objective"]), history=hist, objective=float(obj),
                        extra=extra)


# ---------------------------------------------------------------------------------------
# verification
# ---------------------------------------------------------------------------------------
def smart_verify(Sxx, Sxy, Syy, C0, state, *, svd0=None):
    """Check a SMART solution: re-solve its convex subproblems in CVXPY, measure gradients.

    At the final state the d-step and the two Omega-steps are posed again in CVXPY
    (:func:`mtltransfer.solvers.cvx.smart_d_step`, :func:`~mtltransfer.solvers.cvx.smart_omega_step`)
    and compared with the returned d and Omega; the U- and V-subproblems are checked by
    the norm of their Riemannian gradient ``g - X sym(X^T g)`` (g the Euclidean gradient of
    the subproblem's objective at the returned A, B).

    Parameters
    ----------
    Sxx, Sxy, Syy, C0 : ndarray
        As for :func:`smart_admm`.
    state : dict
        ``SolverResult.extra`` of :func:`smart_admm` (needs A, B, d, Omega_u, Omega_v, Z_u,
        Z_v, rho, r_u, r_v, lam_u, lam_v).
    svd0 : tuple or None

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
        (``||X^T X - I||_F``), ``objective``.
    """
    from . import cvx

    Sxx, Sxy, Syy = (np.asarray(M, dtype=float) for M in (Sxx, Sxy, Syy))
    p, q = Sxy.shape
    U0, _, V0 = _check_svd0(svd0, C0, p, q)
    prob = _Problem(Sxx, Sxy, Syy, U0, V0)
    A, B, d = state["A"], state["B"], state["d"]
    r_u, r_v = state["r_u"], state["r_v"]
    lam_u, lam_v, rho = state["lam_u"], state["lam_v"], state["rho"]
    Om_u, Om_v, Z_u, Z_v = state["Omega_u"], state["Omega_v"], state["Z_u"], state["Z_v"]
    G, H = prob.G, prob.H
    GA, HB, HtA = G @ A, H @ B, H.T @ A
    out = {}
    d_cvx = np.abs(cvx.smart_d_step(np.einsum("ij,ij->j", A, HB),
                                    np.einsum("ij,ij->j", A, GA)))
    out["d_step"] = float(np.max(np.abs(d_cvx - d), initial=0.0))
    # Z was updated after the Omega-step: Z_prev = Z - (X_low - Omega)
    for side, X, k, lam_s, Om, Z in (("u", A, r_u, lam_u, Om_u, Z_u),
                                     ("v", B, r_v, lam_v, Om_v, Z_v)):
        R = X[k:] - Om
        Om_cvx = cvx.smart_omega_step(X[k:] + (Z - R), lam_s, rho)
        out[f"omega_{side}_step"] = float(np.max(np.abs(Om_cvx - Om), initial=0.0))
        out[f"primal_residual_{side}"] = float(np.linalg.norm(R))
    # U-subproblem: f(A) + (rho/2)||A_low - Omega_u + Z_u||^2, at the returned state
    g_data_u = GA * (d * d) - HB * d
    g_u = g_data_u.copy()
    g_u[r_u:] += rho * (A[r_u:] - Om_u + Z_u)
    g_data_v = -HtA * d
    g_v = g_data_v.copy()
    g_v[r_v:] += rho * (B[r_v:] - Om_v + Z_v)
    out["rgrad_u"] = float(np.linalg.norm(riemannian_gradient(A, g_u)))
    out["rgrad_v"] = float(np.linalg.norm(riemannian_gradient(B, g_v)))
    lg_u = g_data_u.copy()
    lg_u[r_u:] += rho * Z_u
    lg_v = g_data_v.copy()
    lg_v[r_v:] += rho * Z_v
    out["kkt_u"] = float(np.linalg.norm(riemannian_gradient(A, lg_u)))
    out["kkt_v"] = float(np.linalg.norm(riemannian_gradient(B, lg_v)))
    r = A.shape[1]
    out["orth_u"] = float(np.linalg.norm(A.T @ A - np.eye(r)))
    out["orth_v"] = float(np.linalg.norm(B.T @ B - np.eye(r)))
    out["objective"] = float(prob.data_term(A, d, B, GA) + lam_u * np.abs(A[r_u:]).sum()
                             + lam_v * np.abs(B[r_v:]).sum())
    return out
