"""Sparse reduced-rank regression kernels: SRRR (Chen and Huang, 2012) and RSSVD (Chen,
Chan and Stenseth, 2012).

Every function works from the moments ``Sxx = X^T X / n``, ``Sxy = X^T Y / n``,
``Syy = Y^T Y / n`` (:mod:`mtltransfer.gram`, centred when the model has an intercept), for
which ``(1/2n)||Y - XC||_F^2 = tr(Syy)/2 - <Sxy, C> + <Sxx C, C>/2``, and returns plain
arrays in a :class:`~mtltransfer.solvers._base.SolverResult`.

SRRR
    ``min_{U, V} (1/2n)||Y - X U V^T||_F^2 + lam sum_j w_j ||U_j.||_2``  s.t.  ``V^T V = I_r``.

    Since ``V`` has orthonormal columns, ``||Y - X U V^T||^2 = ||Y V - X U||^2 +
    ||Y (I - V V^T)||^2``: at fixed V the problem in U is a group lasso of ``Y V`` on X
    (rows of U as groups; :func:`srrr_u_step`, accelerated proximal gradient), and at fixed
    U it is the orthogonal Procrustes problem ``max tr(V^T Sxy^T U)`` whose solution is the
    polar factor of ``Sxy^T U`` (:func:`srrr_v_step`). The two steps alternate
    (:func:`srrr`); each one does not increase the objective.

RSSVD
    ``C = sum_k d_k u_k v_k^T`` fitted layer by layer: layer k minimises

        (1/2n)||Y_k - X d u v^T||_F^2 + lam w_d d ||w_u o u||_1 ||w_v o v||_1,
        ||u|| = ||v|| = 1, d >= 0,

    with ``Y_k = Y - X (C_rrr - C_rrr,k)`` (the reduced-rank fit without its k-th layer) and
    adaptive weights ``w = |.|^{-gamma}`` from that layer. With ``b = d u`` (v fixed) the
    problem is a weighted lasso in b; with ``c = d v`` (u fixed) it is separable and solved
    in closed form by soft-thresholding (:func:`unit_rank_fit`).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ..gram import quadratic_loss
from ._base import SolverResult, warn_not_converged
from .prox import accelerated_proximal_gradient, soft_threshold
from .stiefel import polar


# ---- shared pieces --------------------------------------------------------------------
def sse_from_moments(Sxx, Sxy, Syy, C, n):
    """Residual sum of squares ``||Y - XC||_F^2 = n (tr Syy - 2 <Sxy, C> + <Sxx C, C>)``."""
    return float(max(n * (np.trace(Syy) - 2 * np.sum(Sxy * C) + np.sum((Sxx @ C) * C)),
                     0.0))


def information_criterion(sse, df, n, q, kind="BIC", p=None):
    """rrpack's criteria on the scale of the nq residuals:

        BIC = log(SSE) + log(nq) / (nq) df,
        GIC = log(SSE) + log(log(nq)) log(pq) / (nq) df.
    """
    nq = n * q
    if kind == "BIC":
        pen = np.log(nq)
    elif kind == "GIC":
        pen = np.log(np.log(nq)) * np.log(p * q)
    else:
        raise ValueError(f"criterion must be 'BIC' or 'GIC'; got {kind!r}")
    return float(np.log(max(sse, np.finfo(float).tiny)) + pen / nq * df)


def lipschitz(Sxx):
    """The largest eigenvalue of Sxx (the gradient's Lipschitz constant)."""
    return max(float(linalg.eigvalsh(Sxx, subset_by_index=[Sxx.shape[0] - 1,
                                                           Sxx.shape[0] - 1])[0]),
               np.finfo(float).tiny)


def group_soft_threshold(Z, t):
    """Row-wise group soft-thresholding, the prox of ``sum_j t_j ||Z_j.||_2``:
    ``Z_j. max(1 - t_j / ||Z_j.||, 0)``."""
    norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(norms > t, 1.0 - t / np.where(norms > 0, norms, 1.0), 0.0)
    return Z * scale[:, None]


def _quadratic_lasso(Sxx, B, prox, penalty, x0, L, tol, max_iter):
    """``min_x (1/2) tr(x^T Sxx x) - <B, x> + h(x)`` by the package's accelerated
    proximal-gradient driver (:func:`mtltransfer.solvers.prox.accelerated_proximal_gradient`;
    ``prox(z, step)`` is the prox of ``step h``, ``penalty(x) = h(x)``).
    Returns ``(x, n_iter, criterion)``."""
    def smooth(x, grad):
        Sx = Sxx @ x
        return 0.5 * float(np.sum(Sx * x)) - float(np.sum(B * x)), (Sx - B if grad else None)

    def prox_h(z, step):
        x = prox(z, step)
        return x, penalty(x), None

    res = accelerated_proximal_gradient(smooth, prox_h, x0, L, tol=tol, max_iter=max_iter,
                                        warn=False, affine_gradient=True)
    crit = res.history["criterion"][-1] if res.history["criterion"] else 0.0
    return res.coef, res.n_iter, crit


# ---- SRRR -----------------------------------------------------------------------------
def srrr_objective(Sxx, Sxy, Syy, U, V, lam, weights):
    """(1/2n)||Y - X U V^T||_F^2 + lam sum_j w_j ||U_j.||_2 from the moments."""
    C = U @ V.T
    loss = quadratic_loss(Sxx, Sxy, Syy, C)
    return float(loss + lam * np.sum(weights * np.sqrt(np.einsum("ij,ij->i", U, U))))


def srrr_u_step(Sxx, SxyV, lam, weights, U_init=None, *, L=None, tol=1e-9, max_iter=5000):
    """The convex U-step of SRRR at fixed V (``V^T V = I``):

        min_U  (1/2) tr(U^T Sxx U) - <Sxy V, U> + lam sum_j w_j ||U_j.||_2,

    a group lasso (rows of U as groups) solved by accelerated proximal gradient with
    row-wise group soft-thresholding. Returns ``(U, n_iter, criterion)``.
    """
    p, r = SxyV.shape
    L = lipschitz(Sxx) if L is None else L
    U0 = np.zeros((p, r)) if U_init is None else np.asarray(U_init, dtype=float)
    thr = lam * np.asarray(weights, dtype=float)
    return _quadratic_lasso(Sxx, SxyV, lambda Z, s: group_soft_threshold(Z, s * thr),
                            lambda U: float(thr @ np.sqrt(np.einsum("ij,ij->i", U, U))),
                            U0, L, tol, max_iter)


def srrr_v_step(Sxy, U):
    """The V-step of SRRR: ``argmax_{V^T V = I} tr(V^T Sxy^T U)``, the polar factor of
    ``Sxy^T U`` (orthogonal Procrustes)."""
    return polar(Sxy.T @ U)


def srrr_kkt(Sxx, Sxy, U, V, lam, weights):
    """Violation of the optimality conditions of SRRR at ``(U, V)``.

    U-step (subgradient conditions of the group lasso at V), with ``G = Sxx U - Sxy V``:
    a nonzero row has ``G_j + lam w_j U_j / ||U_j|| = 0``; a zero row has
    ``||G_j|| <= lam w_j``. V-step (Procrustes stationarity): ``V`` maximises
    ``tr(V^T M)`` for ``M = Sxy^T U`` iff ``V^T M`` is symmetric positive semidefinite and
    ``(I - V V^T) M = 0`` when M has rank r; the residual ``||V - polar(M)||``.

    Returns
    -------
    dict
        ``u_step`` (largest violation over rows, relative to ``max(1, ||Sxy V||)``) and
        ``v_step``.
    """
    G = Sxx @ U - Sxy @ V
    norms = np.sqrt(np.einsum("ij,ij->i", U, U))
    thr = lam * np.asarray(weights, dtype=float)
    nz = norms > 0
    viol = np.zeros(U.shape[0])
    viol[nz] = np.linalg.norm(G[nz] + thr[nz, None] * U[nz] / norms[nz, None], axis=1)
    viol[~nz] = np.maximum(np.linalg.norm(G[~nz], axis=1) - thr[~nz], 0.0)
    scale = max(1.0, float(np.linalg.norm(Sxy @ V)))
    return {"u_step": float(viol.max(initial=0.0) / scale),
            "v_step": float(np.linalg.norm(V - srrr_v_step(Sxy, U)))}


def srrr(Sxx, Sxy, Syy, rank, lam, *, weights=None, U_init=None, V_init=None, L=None,
         tol=1e-7, max_iter=500, inner_tol=None, warn=True):
    """Sparse reduced-rank regression by alternating the group-lasso U-step and the
    Procrustes V-step (Chen and Huang, 2012; see the module docstring).

    Parameters
    ----------
    Sxx, Sxy, Syy : ndarray
        Moments (p x p, p x q, q x q).
    rank : int
        r, the number of columns of U and V.
    lam : float
        Penalty, >= 0.
    weights : ndarray (p,), optional
        Group weights w_j (1 by default: the group lasso; adaptive weights otherwise).
    U_init, V_init : ndarray, optional
        Start (default: the reduced-rank fit, ``V`` its top-r right factors, ``U = C V``).
    L : float, optional
        lambda_max(Sxx), if known.
    tol, max_iter : float, int
        Stop when the relative change of ``C = U V^T`` falls below ``tol``.
    inner_tol : float, optional
        Tolerance of the U-step (default ``tol / 10``).

    Returns
    -------
    SolverResult
        ``coef`` is ``C = U V^T``; ``extra`` holds ``U``, ``V``, ``support`` (nonzero rows).
    """
    p, q = Sxy.shape
    w = np.ones(p) if weights is None else np.asarray(weights, dtype=float)
    L = lipschitz(Sxx) if L is None else L
    inner_tol = tol / 10 if inner_tol is None else inner_tol
    if V_init is None:
        from .linear import reduced_rank
        C_rr, V = reduced_rank(Sxx, Sxy, rank)
        U = C_rr @ V
    else:
        V = np.asarray(V_init, dtype=float)
        U = np.zeros((p, rank)) if U_init is None else np.asarray(U_init, dtype=float)
    C = U @ V.T
    hist = {"objective": [], "criterion": []}
    converged = False
    crit = np.inf
    for it in range(1, max_iter + 1):
        U, _, _ = srrr_u_step(Sxx, Sxy @ V, lam, w, U, L=L, tol=inner_tol)
        V = srrr_v_step(Sxy, U)
        C_new = U @ V.T
        crit = np.linalg.norm(C_new - C) / max(np.linalg.norm(C_new), 1e-12)
        C = C_new
        hist["objective"].append(srrr_objective(Sxx, Sxy, Syy, U, V, lam, w))
        hist["criterion"].append(crit)
        if crit < tol:
            converged = True
            break
    # end on a U-step at the final V, so that the U-step conditions hold to inner_tol
    U, _, _ = srrr_u_step(Sxx, Sxy @ V, lam, w, U, L=L, tol=inner_tol)
    if not converged and warn:
        warn_not_converged("SRRR block coordinate descent", it, crit, tol)
    support = np.sqrt(np.einsum("ij,ij->i", U, U)) > 0
    return SolverResult(U @ V.T, converged, it, hist,
                        srrr_objective(Sxx, Sxy, Syy, U, V, lam, w),
                        {"U": U, "V": V, "support": support})


def srrr_lam_max(Sxy, weights):
    """The smallest lam at which ``U = 0`` is a stationary point for every orthonormal V:
    ``max_j ||Sxy_j.||_2 / w_j`` (since ``||Sxy_j. V|| <= ||Sxy_j.||``)."""
    return float(np.max(np.linalg.norm(Sxy, axis=1) / weights))


def srrr_path(Sxx, Sxy, Syy, rank, n, lams, *, weights=None, criterion="BIC", tol=1e-6,
              max_iter=300):
    """SRRR along ``lams`` (ascending, from 0: the exact reduced-rank fit), warm-started,
    with rrpack's information criterion at each lam.

    The degrees of freedom of a fit with s nonzero rows of U are those of a rank-r
    s x q matrix, ``df = r (s + q - r)``.

    Returns
    -------
    fits : list of SolverResult
    table : dict of lists
        ``lam, n_rows, df, sse, ic, converged, n_iter``.
    """
    p, q = Sxy.shape
    w = np.ones(p) if weights is None else np.asarray(weights, dtype=float)
    L = lipschitz(Sxx)
    fits, table = [], {k: [] for k in ("lam", "n_rows", "df", "sse", "ic", "converged",
                                       "n_iter")}
    U = V = None
    for lam in lams:
        sol = srrr(Sxx, Sxy, Syy, rank, lam, weights=w, U_init=U, V_init=V, L=L, tol=tol,
                   max_iter=max_iter, warn=False)
        U, V = sol.extra["U"], sol.extra["V"]
        s = int(sol.extra["support"].sum())
        r_eff = min(rank, s)
        df = r_eff * (s + q - r_eff)
        sse = sse_from_moments(Sxx, Sxy, Syy, sol.coef, n)
        fits.append(sol)
        for k, v in (("lam", lam), ("n_rows", s), ("df", df), ("sse", sse),
                     ("ic", information_criterion(sse, df, n, q, criterion, p)),
                     ("converged", sol.converged), ("n_iter", sol.n_iter)):
            table[k].append(v)
        if s == 0:
            break
    return fits, table


# ---- RSSVD ----------------------------------------------------------------------------
def unit_rank_objective(Sxx, Sxy, Syy, d, u, v, lam, wd, wu, wv):
    """(1/2n)||Y - X d u v^T||^2 + lam wd d ||wu o u||_1 ||wv o v||_1 from the moments."""
    C = d * np.outer(u, v)
    loss = quadratic_loss(Sxx, Sxy, Syy, C)
    return float(loss + lam * wd * d * np.sum(wu * np.abs(u)) * np.sum(wv * np.abs(v)))


def unit_rank_fit(Sxx, Sxy, Syy, lam, wd, wu, wv, u_init, v_init, *, L=None, tol=1e-7,
                  max_iter=200, inner_tol=None):
    """One sparse unit-rank layer of RSSVD by alternating two convex steps.

    With ``||v|| = 1`` and ``b = d u``:
    ``min_b (1/2) b^T Sxx b - b^T Sxy v + lam wd ||wv o v||_1 ||wu o b||_1`` (weighted
    lasso, accelerated proximal gradient). With ``||u|| = 1`` and ``c = d v``:
    ``min_c (u^T Sxx u)/2 ||c||^2 - c^T Sxy^T u + lam wd ||wu o u||_1 ||wv o c||_1``,
    whose solution is ``S(Sxy^T u, lam wd ||wu o u||_1 wv) / (u^T Sxx u)``.

    Returns
    -------
    (d, u, v, n_iter, converged)
        ``d = 0`` (u, v zero) when the layer is thresholded away.
    """
    L = lipschitz(Sxx) if L is None else L
    inner_tol = tol / 10 if inner_tol is None else inner_tol
    u = np.asarray(u_init, dtype=float)
    v = np.asarray(v_init, dtype=float)
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    d = 0.0
    C = np.zeros((u.size, v.size))
    b = u * max(float(u @ Sxy @ v) / max(float(u @ Sxx @ u), 1e-300), 0.0)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        # b-step (v fixed, unit norm)
        thr_b = lam * wd * np.sum(wv * np.abs(v)) * wu
        Sxyv = Sxy @ v
        b, _, _ = _quadratic_lasso(Sxx, Sxyv, lambda z, s: soft_threshold(z, s * thr_b),
                                   lambda z: float(np.sum(thr_b * np.abs(z))), b, L,
                                   inner_tol, 5000)
        nb = np.linalg.norm(b)
        if nb == 0:
            return 0.0, np.zeros_like(u), np.zeros_like(v), it, True
        u = b / nb
        # c-step (u fixed, unit norm): closed form
        a = float(u @ Sxx @ u)
        c = soft_threshold(Sxy.T @ u, lam * wd * np.sum(wu * np.abs(u)) * wv) / a
        d = float(np.linalg.norm(c))
        if d == 0:
            return 0.0, np.zeros_like(u), np.zeros_like(v), it, True
        v = c / d
        b = d * u
        C_new = d * np.outer(u, v)
        crit = np.linalg.norm(C_new - C) / max(np.linalg.norm(C_new), 1e-12)
        C = C_new
        if crit < tol:
            converged = True
            break
    return d, u, v, it, converged


def rssvd_layer_kkt(Sxx, Sxy, d, u, v, lam, wd, wu, wv):
    """Violation of the two block optimality conditions of a unit-rank layer.

    b-step (``b = d u`` at fixed v): the weighted-lasso subgradient conditions, with
    ``g = Sxx b - Sxy v`` and ``t = lam wd ||wv o v||_1 wu``: ``g_i + t_i sign(b_i) = 0``
    where ``b_i != 0`` and ``|g_i| <= t_i`` elsewhere. c-step (``c = d v`` at fixed u):
    ``c`` equals its closed form. Both relative to ``max(1, ||Sxy||)``.
    """
    b = d * u
    g = Sxx @ b - Sxy @ v
    t = lam * wd * np.sum(wv * np.abs(v)) * wu
    nz = b != 0
    viol_b = np.where(nz, np.abs(g + t * np.sign(b)), np.maximum(np.abs(g) - t, 0.0))
    a = float(u @ Sxx @ u)
    c = soft_threshold(Sxy.T @ u, lam * wd * np.sum(wu * np.abs(u)) * wv) / a
    scale = max(1.0, float(np.linalg.norm(Sxy)))
    return {"b_step": float(viol_b.max() / scale),
            "c_step": float(np.linalg.norm(c - d * v) / scale)}


def _rssvd_layers(Sxx, Sxy, Syy, rank, gamma):
    """Each RSSVD layer's problem, in the order of the reduced-rank fit: None for a
    vanished layer, else ``(Sxx_k, Sxy_k, Syy_k, w_d, w_u, w_v, i, j, lam_max)`` (see
    :func:`rssvd`; ``(i, j)`` is the arg max that defines ``lam_max`` and the start)."""
    from ..gram import offset_moments
    from .linear import reduced_rank

    C_rr, _ = reduced_rank(Sxx, Sxy, rank)
    P, s, Qt = np.linalg.svd(C_rr, full_matrices=False)
    P, s, Q = P[:, :rank], s[:rank], Qt[:rank].T
    tiny = 1e-8
    for k in range(rank):
        if s[k] <= tiny * max(s[0], 1e-300):
            yield None
            continue
        C_minus = C_rr - s[k] * np.outer(P[:, k], Q[:, k])
        Sxx_k, Sxy_k, Syy_k = offset_moments(Sxx, Sxy, Syy, C_minus)
        wd = s[k] ** -gamma
        wu = np.maximum(np.abs(P[:, k]), tiny) ** -gamma
        wv = np.maximum(np.abs(Q[:, k]), tiny) ** -gamma
        ratio = np.abs(Sxy_k) / (wd * np.outer(wu, wv))
        i, j = np.unravel_index(np.argmax(ratio), ratio.shape)
        yield Sxx_k, Sxy_k, Syy_k, wd, wu, wv, i, j, float(ratio[i, j])


def rssvd_lam_paths(Sxx, Sxy, Syy, rank, *, gamma=2.0, n_lams=25, lam_min_ratio=1e-5):
    """The layers' lam paths of :func:`rssvd`: an (n_lams, rank) array whose column k
    is ``lam_max_k * logspace(log10(0.9), log10(lam_min_ratio), n_lams - 1)`` followed by
    0 (NaN for a vanished layer)."""
    rel = np.append(np.logspace(np.log10(0.9), np.log10(lam_min_ratio), n_lams - 1), 0.0)
    out = np.full((n_lams, rank), np.nan)
    for k, layer in enumerate(_rssvd_layers(Sxx, Sxy, Syy, rank, gamma)):
        if layer is not None:
            out[:, k] = layer[-1] * rel
    return out


def rssvd(Sxx, Sxy, Syy, rank, n, *, gamma=2.0, n_lams=25, lam_min_ratio=1e-5,
          criterion="BIC", layer_lams=None, tol=1e-6, max_iter=200):
    """Reduced-rank regression with a sparse SVD, layer by layer (Chen, Chan and
    Stenseth, 2012), each layer's lam by rrpack's criterion.

    The reduced-rank fit of rank r, ``C_rrr = sum_k d_k u_k v_k^T`` (its SVD), gives the
    layers' responses ``Y_k = Y - X (C_rrr - d_k u_k v_k^T)`` (their moments by
    :func:`mtltransfer.gram.offset_moments`) and the adaptive weights
    ``w_d = d_k^-gamma``, ``w_u = |u_k|^-gamma``, ``w_v = |v_k|^-gamma``. Each layer is fitted
    along ``lam_max * logspace(log10(0.9), log10(lam_min_ratio), n_lams - 1)`` followed by 0
    (warm-started from the largest lam, where ``lam_max = max_ij |Sxy_k|_ij / (w_d w_u_i
    w_v_j)`` and the start is the indicator of the arg max). The criterion of a layer with
    ``df = nnz(u) + nnz(v) - 1`` is BIC (or GIC) on its own residuals; an empty layer
    competes with ``df = 0``. ``layer_lams`` (one lam per layer; NaN: an empty layer)
    fixes the penalties instead: each layer is then fitted at its lam only.

    Returns
    -------
    SolverResult
        ``coef`` is ``sum_k d_k u_k v_k^T``; ``extra`` holds ``d, U, V`` (layers in the order
        of the reduced-rank fit), ``lam`` per layer, ``df`` and the per-layer ``paths``
        (dicts of lists).
    """
    p, q = Sxy.shape
    L = lipschitz(Sxx)
    d_out, U_out, V_out = np.zeros(rank), np.zeros((p, rank)), np.zeros((q, rank))
    lam_out, df_total, paths, conv_all, it_all = [], 0, [], True, 0
    for k, layer in enumerate(_rssvd_layers(Sxx, Sxy, Syy, rank, gamma)):
        if layer is None:
            lam_out.append(np.nan)
            paths.append({})
            continue
        Sxx_k, Sxy_k, Syy_k, wd, wu, wv, i, j, lam_max = layer
        fixed = layer_lams is not None
        if fixed and not np.isfinite(layer_lams[k]):
            lam_out.append(np.nan)
            paths.append({})
            continue
        grid = (lam_max * np.append(np.logspace(np.log10(0.9), np.log10(lam_min_ratio),
                                                n_lams - 1), 0.0)) if not fixed \
            else np.array([float(layer_lams[k])])
        u0, v0 = np.zeros(p), np.zeros(q)
        u0[i], v0[j] = 1.0, 1.0
        sse0 = float(n * max(np.trace(Syy_k), 0.0))
        path = {"lam": [], "df": [], "sse": [], "ic": [], "d": [], "n_iter": []}
        best = (np.inf if fixed else information_criterion(sse0, 0, n, q, criterion, p),
                0.0, np.zeros(p), np.zeros(q), np.nan, 0)
        for lam in grid:
            d, u, v, it, conv = unit_rank_fit(Sxx_k, Sxy_k, Syy_k, lam, wd, wu, wv, u0, v0,
                                              L=L, tol=tol, max_iter=max_iter)
            it_all += it
            conv_all &= conv
            if d > 0:
                u0, v0 = u, v
            df = int(np.count_nonzero(u) + np.count_nonzero(v) - 1) if d > 0 else 0
            sse = sse_from_moments(Sxx_k, Sxy_k, Syy_k, d * np.outer(u, v), n)
            ic = information_criterion(sse, df, n, q, criterion, p)
            for key, val in (("lam", lam), ("df", df), ("sse", sse), ("ic", ic), ("d", d),
                             ("n_iter", it)):
                path[key].append(val)
            if ic < best[0]:
                best = (ic, d, u, v, lam, df)
        _, d_out[k], U_out[:, k], V_out[:, k], lam_k, df_k = best
        lam_out.append(lam_k)
        df_total += df_k
        paths.append(path)
    C = (U_out * d_out) @ V_out.T
    return SolverResult(C, conv_all, it_all, {}, float("nan"),
                        {"d": d_out, "U": U_out, "V": V_out, "lam": lam_out,
                         "df": df_total, "paths": paths})
