"""BI-SMART's refinement: quotient Gauss-Newton on the joint target-source objective.

The state is ``theta = (U0, V0, A, B, H, G)``: source bases ``U0`` (p x r0) and ``V0``
(q x r0) with orthonormal columns, target factors ``A``, ``B`` (r0 x r, zero outside the
selected blocks' rows, orthonormal on them), a target core ``H`` (r x r) and full source
cores ``G`` (one square block per certified source block, zero between blocks). It fits

    C(theta)  = U0 A H B^T V0^T          (the target's coefficients, rank <= r)
    C0(theta) = U0 blockdiag(G) V0^T     (the source's coefficients)

by minimising

    F(theta) = (1/2n) ||Yc - Xc C(theta)||_F^2 + (omega/2) ||C0(theta) - C0_obs||_F^2,

a sum of squares ``(1/2)||r(theta)||^2``: the target may tilt the source's subspaces
where its rows say so, at a cost ``omega`` per unit of source misfit. The cores are full
matrices, so rotating the source's singular vectors within a block (which changes U0,
V0 but not C0) is a change of coordinates of the same problem.

One Gauss-Newton step solves ``min ||r + J d||`` over tangent directions ``d`` (the
tangent spaces of the Stiefel factors, the blocks' pattern of G, the selected rows of A
and B) in the product Frobenius metric, by CGLS started at zero: its iterates stay in
the range of ``J^T``, so the limit is the minimum-norm solution, which is horizontal
(orthogonal to the directions that only re-parametrise the same C and C0; the quotient
by those gauge directions). The step is retracted by the polar factor of each Stiefel
factor (``polar(W R) = polar(W) R``: rotations within a block commute with it) and its
length set by Armijo backtracking: ``t = 1, 1/2, 1/4, ...`` until
``F(R(theta, t d)) <= F(theta) + c_A t <grad F, d>`` with ``c_A = 1e-4``; at most
``MAX_BACKTRACK`` halvings, else the refinement stops where it is (it never accepts an
increase). Every operation is equivariant under rotations within tied blocks, so the
refined C is invariant (to rounding and CGLS's tolerance).

Plain arrays in and out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Armijo's sufficient-decrease constant c_A
ARMIJO = 1e-4
#: step halvings before a Gauss-Newton step is given up (t >= 2^-30)
MAX_BACKTRACK = 30
#: Gauss-Newton iterations (the refinement starts at the restricted RRR optimum, where
#: only the source's subspaces move; a few steps reach the joint stationary point)
MAX_GN = 20
#: CGLS: relative residual of the normal equations, and the iteration cap
CG_TOL = 1e-6
CG_MAX = 100


@dataclass
class State:
    """theta: U0 (p, r0), V0 (q, r0), A (r0, r), B (r0, r), H (r, r), G (r0, r0)
    (block diagonal on ``blocks``), and the masks of A's and B's selected rows."""

    U0: np.ndarray
    V0: np.ndarray
    A: np.ndarray
    B: np.ndarray
    H: np.ndarray
    G: np.ndarray
    act_u: np.ndarray
    act_v: np.ndarray
    pattern: np.ndarray          # boolean r0 x r0: the blocks of G

    def coef(self):
        return self.U0 @ self.A @ self.H @ self.B.T @ self.V0.T

    def source(self):
        return self.U0 @ self.G @ self.V0.T


def _sym(M):
    return 0.5 * (M + M.T)


def _polar(W):
    P, _, Qt = np.linalg.svd(W, full_matrices=False)
    return P @ Qt


def _tangent_stiefel(W, D):
    """Projection of D onto the tangent space of the Stiefel manifold at W."""
    return D - W @ _sym(W.T @ D)


class Problem:
    """The residual r(theta), its Jacobian's action and adjoint.

    Parameters
    ----------
    Xc, Yc : ndarray
        The fitting rows (centred when the model has an intercept).
    C0 : ndarray (p, q)
        The observed source.
    omega : float
        The source's weight.
    """

    def __init__(self, Xc, Yc, C0, omega):
        n = Xc.shape[0]
        self.Xs = Xc / np.sqrt(n)
        self.Ys = Yc / np.sqrt(n)
        self.C0 = np.asarray(C0, dtype=float)
        self.w = float(np.sqrt(omega))

    def residual(self, s):
        return (self.Xs @ s.coef() - self.Ys, self.w * (s.source() - self.C0))

    def value(self, s):
        rt, rs = self.residual(s)
        return 0.5 * (np.sum(rt * rt) + np.sum(rs * rs))

    def project(self, s, d):
        """A direction (dU0, dV0, dA, dB, dH, dG) projected onto the tangent space."""
        dU, dV, dA, dB, dH, dG = d
        dA = np.where(s.act_u[:, None], dA, 0.0)
        dB = np.where(s.act_v[:, None], dB, 0.0)
        Aa, Ba = s.A[s.act_u], s.B[s.act_v]
        dA[s.act_u] = _tangent_stiefel(Aa, dA[s.act_u])
        dB[s.act_v] = _tangent_stiefel(Ba, dB[s.act_v])
        return (_tangent_stiefel(s.U0, dU), _tangent_stiefel(s.V0, dV), dA, dB, dH,
                np.where(s.pattern, dG, 0.0))

    def jvp(self, s, d):
        """J d: the residual's directional derivative (product rule)."""
        dU, dV, dA, dB, dH, dG = d
        U, V, A, B, H, G = s.U0, s.V0, s.A, s.B, s.H, s.G
        AH, BV = A @ H, (V @ B).T                       # r0 x r, r x q
        dC = (dU @ AH @ BV + U @ (dA @ H + A @ dH) @ BV
              + U @ AH @ (dV @ B + V @ dB).T)
        dC0 = dU @ G @ V.T + U @ dG @ V.T + U @ G @ dV.T
        return self.Xs @ dC, self.w * dC0

    def vjp(self, s, e):
        """J^T e, projected onto the tangent space."""
        et, es = e
        U, V, A, B, H, G = s.U0, s.V0, s.A, s.B, s.H, s.G
        Gam = self.Xs.T @ et                             # p x q: d/dC
        Gs = self.w * es                                 # p x q: d/dC0
        VB = V @ B                                       # q x r
        UA = U @ A                                       # p x r
        dU = Gam @ VB @ H.T @ A.T + Gs @ V @ G.T
        dV = Gam.T @ UA @ H @ B.T + Gs.T @ U @ G
        core = U.T @ Gam @ VB                            # r0 x r
        dA = core @ H.T
        dH = A.T @ core
        dB = V.T @ Gam.T @ UA @ H
        dG = U.T @ Gs @ V
        return self.project(s, (dU, dV, dA, dB, dH, dG))


def _dot(a, b):
    return float(sum(np.sum(x * y) for x, y in zip(a, b)))


def _axpy(t, a, b):
    return tuple(y + t * x for x, y in zip(a, b))


def gauss_newton_direction(prob, s, r):
    """The minimum-norm tangent solution of ``min ||r + J d||`` by CGLS from zero."""
    g = prob.vjp(s, tuple(-x for x in r))           # J^T (-r)
    d = tuple(np.zeros_like(x) for x in g)
    p_, rho = g, _dot(g, g)
    rho0 = rho
    for _ in range(CG_MAX):
        if rho <= CG_TOL ** 2 * rho0 or rho == 0.0:
            break
        q = prob.jvp(s, p_)
        alpha = rho / _dot(q, q)
        d = _axpy(alpha, p_, d)
        r = _axpy(alpha, q, r)                       # the residual r + J d
        g = prob.vjp(s, tuple(-x for x in r))
        rho_new = _dot(g, g)
        p_ = _axpy(rho_new / rho, p_, g)
        rho = rho_new
    return d


def retract(s, d, t):
    dU, dV, dA, dB, dH, dG = d
    A = np.zeros_like(s.A)
    B = np.zeros_like(s.B)
    A[s.act_u] = _polar(s.A[s.act_u] + t * dA[s.act_u])
    B[s.act_v] = _polar(s.B[s.act_v] + t * dB[s.act_v])
    return State(_polar(s.U0 + t * dU), _polar(s.V0 + t * dV), A, B, s.H + t * dH,
                 s.G + t * dG, s.act_u, s.act_v, s.pattern)


def refine(prob, state, max_iter=MAX_GN, tol=1e-10):
    """Quotient Gauss-Newton with Armijo backtracking from ``state``.

    Returns
    -------
    state : State
        The last accepted iterate.
    history : list of float
        F at each accepted iterate (the first is F at the start); non-increasing.
    """
    f = prob.value(state)
    history = [f]
    for _ in range(max_iter):
        r = prob.residual(state)
        d = gauss_newton_direction(prob, state, r)
        slope = _dot(prob.vjp(state, r), d)            # <grad F, d> = <J^T r, d>
        if not slope < 0:
            break
        t, accepted = 1.0, None
        for _ in range(MAX_BACKTRACK):
            trial = retract(state, d, t)
            f_t = prob.value(trial)
            if f_t <= f + ARMIJO * t * slope:
                accepted = (trial, f_t)
                break
            t *= 0.5
        if accepted is None:
            break
        state, f_new = accepted
        history.append(f_new)
        if f - f_new <= tol * max(f, 1e-300):
            break
        f = f_new
    return state, history


def initial_state(U0, s0, V0, blocks, r0, I_u, I_v, M, rank):
    """The state of a restricted RRR fit ``C = U0[:, I_u] M V0[:, I_v]^T``.

    ``U0``, ``V0`` the source's singular vectors (first r0 columns kept), ``s0`` its
    singular values, ``blocks`` the certified partition (only blocks inside r0 are
    used), ``M`` (|I_u| x |I_v|) the restricted fit's core of rank <= rank.
    """
    P, D, Qt = np.linalg.svd(M, full_matrices=False)
    r = min(rank, int(np.sum(D > D[0] * 1e-12)) if D.size and D[0] > 0 else 0)
    if r == 0:
        raise ValueError("the restricted fit is zero: nothing to refine")
    A = np.zeros((r0, r))
    B = np.zeros((r0, r))
    A[I_u] = P[:, :r]
    B[I_v] = Qt[:r].T
    act_u = np.zeros(r0, bool)
    act_v = np.zeros(r0, bool)
    act_u[I_u] = True
    act_v[I_v] = True
    pattern = np.zeros((r0, r0), bool)
    for a, b in blocks:
        if b <= r0:
            pattern[a:b, a:b] = True
    return State(U0[:, :r0].copy(), V0[:, :r0].copy(), A, B, np.diag(D[:r]),
                 np.diag(s0[:r0]).astype(float), act_u, act_v, pattern)


# ---------------------------------------------------------------------------------------
# the three-fold protocol
# ---------------------------------------------------------------------------------------
#: the Wedin gate: a selection goes on to fold 2 when eps0 / gap <= WEDIN_GATE on both
#: sides (sin theta <= 1/2: its span within 30 degrees of the noiseless source's)
WEDIN_GATE = 0.5
#: the source weights of the refinement, times omega_0 = tr(Sxx) / p (the target loss's
#: mean curvature per coefficient): the source as weak as, as strong as and ten times
#: stronger than one coefficient's worth of target information
OMEGA_FACTORS = (0.1, 1.0, 10.0)


def working_rank(t, blocks, eps0, dim):
    """r0: the source directions above the certificate, extended to a block boundary
    (at least the first block, at most ``dim`` = min(p, q))."""
    k = int(np.sum(t[:dim] > eps0))
    stops = [b for _, b in blocks if b <= dim]
    above = [b for b in stops if b >= max(k, 1)]
    return above[0] if above else (stops[-1] if stops else dim)


def three_fold(folds, C0, svd0, partitions, eps0, rank, budgets, center=True,
               refinement=True):
    """BI-SMART's three-fold protocol on row folds (1: screening, 2: fitting,
    3: validation).

    Parameters
    ----------
    folds : three (X, Y) pairs
        The folds' rows.
    C0 : ndarray (p, q)
        The observed source.
    svd0 : (U0, s0, V0)
        Its full SVD (:func:`mtltransfer.smart.problem.source_svd`).
    partitions : list of list of (int, int)
        Certified partitions (:func:`mtltransfer.smart.blocks.spectral_blocks`), the
        coarsest first; each gives its own screened selections. The first gives the
        working rank r0 of the one-block safeguard.
    eps0 : float
        The certificate.
    rank : int
    budgets : list of (int, int)
        The knapsack budgets (d_u, d_v) of the screen.
    center : bool
    refinement : bool
        Run the Gauss-Newton refinement (else the restricted RRR only).

    Returns
    -------
    C : ndarray (p, q)
        The chosen candidate (fitted on fold 2).
    table : list of dict
        Every candidate, in the order of the tie rule (zero first, then the screened
        selections by budget, each as its restricted RRR and its refinements, then the
        one-block and target-only safeguards): label, budget, selected sizes and
        columns, Wedin bounds, gate, omega, the refinement's objective before and after
        and its steps, validation error (per response).
    best : int
        The chosen row (the first attaining the smallest validation error).
    r0 : int
        The working source rank.
    """
    from ..gram import SufficientStats, validation_loss
    from ..solvers import linear as lin
    from ..solvers._base import argmin_simplest
    from . import blocks as bk

    U0, s0, V0 = svd0
    p, q = C0.shape
    dim = min(p, q)
    t = bk.extended_spectrum(s0, p, q)
    r0 = working_rank(t, partitions[0], eps0, dim)
    stats = [SufficientStats.from_arrays(X, Y) for X, Y in folds]
    S1xx, S1xy, _ = stats[0].moments(center=center)
    S2xx, S2xy, _ = stats[1].moments(center=center)
    X2, Y2 = folds[1]
    X2c = X2 - X2.mean(0) if center else X2
    Y2c = Y2 - Y2.mean(0) if center else Y2
    # fold 1: the pilot in source coordinates
    pilot = lin.reduced_rank(S1xx, S1xy, rank)[0]
    omega0 = max(float(np.trace(S2xx)) / p, np.finfo(float).tiny)
    cands, rows = [], []

    def add(label, C, **info):
        cands.append(C)
        rows.append(dict(label=label, **info))

    none = np.zeros(0, dtype=int)
    add("zero", np.zeros((p, q)), d_u=0, d_v=0, I_u=none, I_v=none)
    seen = set()
    branches = []
    for blocks in partitions:
        r0_b = working_rank(t, blocks, eps0, dim)
        inner = [(a, b) for a, b in blocks if b <= r0_b]
        sizes = np.array([b - a for a, b in inner])
        # the block energies of the pilot (fold 1) and the knapsack at each budget
        e_u = bk.block_energy(pilot, U0, inner)
        e_v = bk.block_energy(pilot.T, V0, inner)
        for d_u, d_v in budgets:
            branches.append((blocks, r0_b, inner, sizes, e_u, e_v, d_u, d_v))
    for blocks, r0_b, inner, sizes, e_u, e_v, d_u, d_v in branches:
        def pick(e, d):
            keep = bk.knapsack(sizes, e, min(d, r0_b))
            return np.concatenate([np.arange(*inner[k]) for k in keep]) if len(keep) \
                else np.zeros(0, dtype=int)
        I_u, I_v = pick(e_u, d_u), pick(e_v, d_v)
        key = (tuple(I_u), tuple(I_v))
        if key in seen or min(len(I_u), len(I_v)) == 0:
            continue
        seen.add(key)
        w_u, w_v = bk.wedin_bound(t[:p], I_u, eps0), bk.wedin_bound(t[:q], I_v, eps0)
        gate = w_u <= WEDIN_GATE and w_v <= WEDIN_GATE
        base = dict(budget=(d_u, d_v), d_u=len(I_u), d_v=len(I_v), wedin_u=w_u,
                    wedin_v=w_v, gate=gate, I_u=I_u, I_v=I_v)
        if not gate:
            rows.append(dict(label="screened out (Wedin gate)", **base))
            cands.append(None)
            continue
        # fold 2: the restricted RRR (iteration 0), then the refinement
        C_r, M = bk.restricted_rrr(S2xx, S2xy, U0[:, I_u], V0[:, I_v], rank)
        add("restricted RRR", C_r, **base)
        if not refinement or not np.any(M):
            continue
        for f in OMEGA_FACTORS:
            prob = Problem(X2c, Y2c, C0, f * omega0)
            state = initial_state(U0, s0, V0, blocks, r0_b, I_u, I_v, M, rank)
            state, hist = refine(prob, state)
            add("refined", state.coef(), omega=f * omega0, f_start=hist[0],
                f_end=hist[-1], steps=len(hist) - 1, **base)
    # the safeguards: one block at the full budget, target only, (zero above)
    C_one, _ = bk.restricted_rrr(S2xx, S2xy, U0[:, :r0], V0[:, :r0], rank)
    add("one block, full budget", C_one, d_u=r0, d_v=r0, I_u=np.arange(r0),
        I_v=np.arange(r0))
    add("target only (minimum-norm RRR)", lin.reduced_rank(S2xx, S2xy, rank)[0],
        d_u=p, d_v=q, I_u=np.arange(p), I_v=np.arange(q))
    # fold 3: validation
    for row, C in zip(rows, cands):
        row["val_mse"] = float("nan") if C is None else \
            validation_loss(stats[2], stats[1], C, center=center) / q
    best = argmin_simplest([r["val_mse"] for r in rows])
    return cands[best], rows, best, r0
