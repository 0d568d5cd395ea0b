"""Sparse orthogonal factor regression (SOFAR; Uematsu, Fan, Chen, Lv and Lin, 2019).

The coefficient matrix is an SVD ``C = U D V^T`` (``U^T U = V^T V = I_r``, ``D = diag(d)``,
``d >= 0``) with sparse left and right factors:

    min  (1/2n)||Y - X U D V^T||_F^2 + lam_d ||w_d o d||_1 + lam_a ||W_A o (U D)||_1
                                      + lam_b ||W_B o (V D)||_1,

(``o`` the entrywise product; adaptive weights by default, ``W_A = |U0 D0|^-gamma`` and so on
from the reduced-rank fit, as rrpack's ``sofar`` with ``"adlasso"``). It is solved, as in
the paper, by ADMM on the splitting ``A = U D``, ``B = V D``, ``o = d`` with scaled duals
``G_A, G_B, g_o`` and penalty parameter mu (:func:`sofar_admm`):

* U-step: ``min_{U^T U = I} (1/2) tr(D U^T Sxx U D) - tr(U^T M)``, ``M = Sxy V D +
  mu (A - G_A) D`` (a quadratic on the Stiefel manifold; majorise-minimise with
  ``Sxx <= L I``, each step a polar factor);
* V-step: ``max_{V^T V = I} tr(V^T (Sxy^T U D + mu (B - G_B) D))``, a polar factor;
* d-step: the separable quadratic in d (V orthonormal makes the loss diagonal in d),
  clipped at 0;
* A, B, o: soft-thresholding; duals ``G_A += U D - A`` (and so on).

Everything works from the moments ``Sxx, Sxy, Syy`` (:mod:`mtltransfer.gram`).
"""

from __future__ import annotations

import numpy as np

from ..gram import quadratic_loss
from ._base import SolverResult, warn_not_converged
from .prox import soft_threshold
from .sparse_rrr import information_criterion, lipschitz, sse_from_moments
from .stiefel import polar


def sofar_objective(Sxx, Sxy, Syy, U, d, V, lams, weights):
    """The SOFAR objective at ``(U, d, V)`` (see the module docstring)."""
    lam_a, lam_b, lam_d = lams
    W_A, W_B, w_d = weights
    C = (U * d) @ V.T
    loss = quadratic_loss(Sxx, Sxy, Syy, C)
    return float(loss + lam_d * np.sum(w_d * np.abs(d)) + lam_a * np.sum(W_A * np.abs(U * d))
                 + lam_b * np.sum(W_B * np.abs(V * d)))


def sofar_admm(Sxx, Sxy, Syy, lams, weights, U, d, V, *, mu=None, L=None, tol=1e-6,
               max_iter=2000, mm_steps=3, state=None, mu_growth=1.0, mu_max=None,
               warn=True):
    """SOFAR at fixed penalties by ADMM (see the module docstring).

    Parameters
    ----------
    Sxx, Sxy, Syy : ndarray
        Moments.
    lams : (lam_a, lam_b, lam_d)
    weights : (W_A (p, r), W_B (q, r), w_d (r,))
    U, d, V : ndarray
        Start (orthonormal U, V; d >= 0), e.g. the SVD of the reduced-rank fit.
    mu : float, optional
        ADMM penalty parameter (default lambda_max(Sxx)).
    tol, max_iter : float, int
        Stop when the primal residual ``||(U D - A, V D - B, d - o)||`` and the dual
        residual ``mu ||(A, B, o) - previous||``, both relative to ``max(1, ||d||)``, are
        below ``tol``.
    mm_steps : int
        Majorise-minimise steps of each U-step.
    state : dict, optional
        ``A, B, o, GA, GB, go`` of a previous solve (warm start along a path).

    Returns
    -------
    SolverResult
        ``coef`` is the sparse ``C = A diag(1/o) B^T`` (over ``o > 0``); ``extra`` holds
        ``U, d, V`` (the orthonormal iterates), the split variables and the scaled duals
        (``A, B, o, GA, GB, go``) and ``mu``.
    """
    lam_a, lam_b, lam_d = (float(x) for x in lams)
    W_A, W_B, w_d = weights
    L = lipschitz(Sxx) if L is None else L
    mu = L if mu is None else float(mu)
    mu_max = 1e3 * mu if mu_max is None else float(mu_max)
    U, V, d = np.array(U, dtype=float), np.array(V, dtype=float), np.array(d, dtype=float)
    if state is None:
        A, B, o = U * d, V * d, d.copy()
        GA, GB, go = np.zeros_like(A), np.zeros_like(B), np.zeros_like(d)
    else:
        A, B, o, GA, GB, go = (np.array(state[k], dtype=float)
                               for k in ("A", "B", "o", "GA", "GB", "go"))
    hist = {"primal": [], "dual": []}
    converged = False
    crit = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        # U-step: majorise (1/2) tr(D U^T Sxx U D) by L; each minimiser is a polar factor
        M = Sxy @ V * d + mu * (A - GA) * d
        for _ in range(mm_steps):
            U = polar(M + (L * U - Sxx @ U) * d ** 2)
        # V-step: Procrustes
        V = polar(Sxy.T @ U * d + mu * (B - GB) * d)
        # d-step: separable quadratic, d >= 0
        num = np.einsum("ik,ik->k", U, Sxy @ V) + mu * (
            np.einsum("ik,ik->k", U, A - GA) + np.einsum("ik,ik->k", V, B - GB) + o - go)
        den = np.einsum("ik,ik->k", U, Sxx @ U) + 3 * mu
        d = np.maximum(num / den, 0.0)
        # split variables: proximal maps of the penalties
        A_old, B_old, o_old = A, B, o
        A = soft_threshold(U * d + GA, lam_a * W_A / mu)
        B = soft_threshold(V * d + GB, lam_b * W_B / mu)
        o = np.maximum(d + go - lam_d * w_d / mu, 0.0)
        rA, rB, ro = U * d - A, V * d - B, d - o
        GA, GB, go = GA + rA, GB + rB, go + ro
        if mu_growth != 1.0 and mu < mu_max:
            # a larger mu: the scaled duals G = Lambda / mu shrink by the same factor
            GA, GB, go = GA / mu_growth, GB / mu_growth, go / mu_growth
            mu *= mu_growth
        scale = max(1.0, float(np.linalg.norm(d)))
        primal = np.sqrt(np.sum(rA ** 2) + np.sum(rB ** 2) + np.sum(ro ** 2)) / scale
        dual = mu * np.sqrt(np.sum((A - A_old) ** 2) + np.sum((B - B_old) ** 2)
                            + np.sum((o - o_old) ** 2)) / scale
        hist["primal"].append(primal)
        hist["dual"].append(dual)
        crit = max(primal, dual)
        if crit < tol:
            converged = True
            break
    if not converged and warn:
        warn_not_converged("SOFAR ADMM", it, crit, tol)
    live = o > 0
    C = (A[:, live] / o[live]) @ B[:, live].T
    return SolverResult(C, converged, it, hist,
                        sofar_objective(Sxx, Sxy, Syy, U, d, V, lams, weights),
                        {"U": U, "d": d, "V": V, "A": A, "B": B, "o": o, "GA": GA,
                         "GB": GB, "go": go, "mu": mu})


def sofar_kkt(Sxx, Sxy, sol, lams, weights):
    """Violations of the first-order conditions of SOFAR at an ADMM solution.

    With the multipliers ``Lambda_A = mu G_A`` (and so on), a stationary point satisfies:
    feasibility ``U D = A``, ``V D = B``, ``d = o``; membership of each multiplier in the
    penalty's subdifferential (``Lambda_A = lam_a W_A sign(A)`` where ``A != 0``,
    ``|Lambda_A| <= lam_a W_A`` elsewhere; likewise B, and o >= 0); the Riemannian
    gradients of the Lagrangian in U and V vanish (``G - X sym(X^T G)`` with
    ``G_U = Sxx U D^2 - Sxy V D + Lambda_A D``, ``G_V = -Sxy^T U D + Lambda_B D``); and the
    d-stationarity ``u_k^T Sxx u_k d_k - u_k^T Sxy v_k + u_k^T Lambda_A,k + v_k^T
    Lambda_B,k + lambda_o,k = 0`` where ``d_k > 0``.

    Returns
    -------
    dict of float
        ``feasibility, subgradient, stiefel_u, stiefel_v, d``.
    """
    lam_a, lam_b, lam_d = lams
    W_A, W_B, w_d = weights
    e = sol.extra
    U, d, V, A, B, o, mu = e["U"], e["d"], e["V"], e["A"], e["B"], e["o"], e["mu"]
    LA, LB, lo = mu * e["GA"], mu * e["GB"], mu * e["go"]
    feas = np.sqrt(np.sum((U * d - A) ** 2) + np.sum((V * d - B) ** 2) + np.sum((d - o) ** 2))

    def sub(Lm, X, thr):
        return np.where(X != 0, np.abs(Lm - thr * np.sign(X)), np.maximum(np.abs(Lm) - thr, 0))

    sub_viol = max(sub(LA, A, lam_a * W_A).max(), sub(LB, B, lam_b * W_B).max(),
                   np.where(o > 0, np.abs(lo - lam_d * w_d),
                            np.maximum(lo - lam_d * w_d, 0)).max())
    GU = Sxx @ U * d ** 2 - Sxy @ V * d + LA * d
    GV = -(Sxy.T @ U) * d + LB * d

    def rgrad(X, G):
        S = X.T @ G
        return float(np.linalg.norm(G - X @ ((S + S.T) / 2)))

    gd = np.einsum("ik,ik->k", U, Sxx @ U) * d - np.einsum("ik,ik->k", U, Sxy @ V) + \
        np.einsum("ik,ik->k", U, LA) + np.einsum("ik,ik->k", V, LB) + lo
    return {"feasibility": float(feas), "subgradient": float(sub_viol),
            "stiefel_u": rgrad(U, GU), "stiefel_v": rgrad(V, GV),
            "d": float(np.abs(gd[d > 0]).max(initial=0.0))}


def sofar_weights(U0, d0, V0, gamma=2.0, adaptive=True, floor=1e-8):
    """Adaptive weights from a start SVD: ``|U0 D0|^-gamma``, ``|V0 D0|^-gamma``,
    ``d0^-gamma`` (ones when ``adaptive`` is False)."""
    if not adaptive:
        return np.ones_like(U0), np.ones_like(V0), np.ones_like(d0)
    return (np.maximum(np.abs(U0 * d0), floor) ** -gamma,
            np.maximum(np.abs(V0 * d0), floor) ** -gamma,
            np.maximum(d0, floor) ** -gamma)


def sofar_start(Sxx, Sxy, rank, gamma=2.0, adaptive=True):
    """The start of a SOFAR path: the SVD ``U0 D0 V0^T`` of the rank-r reduced-rank fit,
    the adaptive weights (:func:`sofar_weights`) and the penalty maxima
    ``(max |Sxy V0| / W_A, max |Sxy^T U0| / W_B, max d0 / w_d)`` (the largest weighted
    gradients at the start).

    Returns
    -------
    (U0, d0, V0), weights, lam_max
    """
    from .linear import reduced_rank

    C_rr, _ = reduced_rank(Sxx, Sxy, rank)
    P, s, Qt = np.linalg.svd(C_rr, full_matrices=False)
    U0, d0, V0 = P[:, :rank], s[:rank], Qt[:rank].T
    weights = sofar_weights(U0, d0, V0, gamma, adaptive)
    W_A, W_B, w_d = weights
    lam_max = (float(np.max(np.abs(Sxy @ V0) / W_A)), float(np.max(np.abs(Sxy.T @ U0) / W_B)),
               float(np.max(d0 / w_d)))
    return (U0, d0, V0), weights, lam_max


def sofar_path(Sxx, Sxy, Syy, rank, n, *, ts=None, n_lams=20, lam_min_ratio=1e-6,
               gamma=2.0, adaptive=True, criterion="BIC", tol=1e-4, max_iter=1000,
               design_rank=None, patience=3, mu=None, penalize=(True, True, True),
               weights=None, lam_max=None):
    """SOFAR along one path of penalty triplets, warm-started, rrpack's criterion at each.

    The start is the SVD of the rank-r reduced-rank fit (:func:`sofar_start`, which also
    gives the adaptive weights and the penalty maxima unless ``weights`` and ``lam_max``
    are given). The triplets are ``t (lam_a,max, lam_b,max, lam_d,max)`` for ``t`` in
    ``ts`` (default ``logspace(log10(lam_min_ratio), 0, n_lams)``, ascending); a component
    with ``penalize`` False is not penalised. The degrees of freedom are rrpack's,
    ``df = nnz(U) rank(X) / p + nnz(V) - r^2``; the criterion is BIC
    ``log SSE + log(nq) df / (nq)`` or GIC ``log SSE + log(log nq) log(pq) df / (nq)``
    (:func:`~mtltransfer.solvers.sparse_rrr.information_criterion`). The path stops
    when the criterion has risen ``patience`` times in a row (``patience=None``: never)
    or every factor is zero.

    Returns
    -------
    fits : list of SolverResult
    table : dict of lists
        ``t, lam_a, lam_b, lam_d, rank, nnz_u, nnz_v, df, sse, ic, converged, n_iter``.
    weights : (W_A, W_B, w_d)
    """
    p, q = Sxy.shape
    (U, d, V), w0, lm0 = sofar_start(Sxx, Sxy, rank, gamma, adaptive)
    weights = w0 if weights is None else weights
    lam_max = lm0 if lam_max is None else lam_max
    ts = np.logspace(np.log10(lam_min_ratio), 0, n_lams) if ts is None else np.asarray(ts)
    xrank = p if design_rank is None else design_rank
    L = lipschitz(Sxx)
    mu = 0.3 * L if mu is None else mu
    state = None
    fits = []
    table = {k: [] for k in ("t", "lam_a", "lam_b", "lam_d", "rank", "nnz_u", "nnz_v", "df",
                             "sse", "ic", "converged", "n_iter")}
    for t in ts:
        lams = tuple(t * m * bool(on) for m, on in zip(lam_max, penalize))
        sol = sofar_admm(Sxx, Sxy, Syy, lams, weights, U, d, V, L=L, mu=mu, tol=tol,
                         max_iter=max_iter, state=state, warn=False)
        e = sol.extra
        U, d, V = e["U"], e["d"], e["V"]
        state = e
        live = e["o"] > 0
        r = int(live.sum())
        nnz_u = int(np.count_nonzero(e["A"][:, live]))
        nnz_v = int(np.count_nonzero(e["B"][:, live]))
        df = max(nnz_u * xrank / p + nnz_v - r * r, 0.0)
        sse = sse_from_moments(Sxx, Sxy, Syy, sol.coef, n)
        fits.append(sol)
        for k, v in (("t", t), ("lam_a", lams[0]), ("lam_b", lams[1]), ("lam_d", lams[2]),
                     ("rank", r), ("nnz_u", nnz_u), ("nnz_v", nnz_v), ("df", df),
                     ("sse", sse), ("ic", information_criterion(sse, df, n, q, criterion, p)),
                     ("converged", sol.converged), ("n_iter", sol.n_iter)):
            table[k].append(v)
        if r == 0 or nnz_u == 0 or nnz_v == 0:
            break
        best = int(np.argmin(table["ic"]))
        if patience is not None and len(table["ic"]) - 1 - best >= patience:
            break
    return fits, table, weights
