"""SMART's active-set phase: Newton's method on the support the ADMM has found.

Why. Where the ranks are misspecified (a structural rank below the target's, so its
columns must leave the source's leading subspaces), the BIC path chooses a small lambda
whose alignment support is large (most entries of ``A[r_u:]`` nonzero). There the ADMM's
tail is slow: with the support fixed, an ADMM iteration is a proximal-point step
``A+ = argmin f(A) + lam <sign, A_low> + (rho/2)||A_low - A_low_prev||^2``, which contracts
at the rate ``rho / (rho + mu)``, mu the curvature of the data term along the manifold, and
that curvature is near zero in the directions that mix columns with close weights d.
Measured at Model-I/II (r_u = 7 against a rank-10 source): 600-1200 iterations after the
support has stopped changing, whatever rho (fixed 1 to 256, or balanced).

What. Once the support is known, the problem is smooth: with the zero pattern of
``Omega_u``, ``Omega_v`` fixed and the signs ``s`` of the nonzeros,

    minimise  phi(A, d, B) = f(A, d, B) + lam_u <s_u, A_low> + lam_v <s_v, B_low>
    subject   A^T A = I,  B^T B = I,  A_low, B_low zero off the support,

an equality-constrained problem in the free entries. Its Lagrangian
``phi + 1/2 <M_A, A^T A - I> + 1/2 <M_B, B^T B - I>`` (M symmetric) has a Hessian in
closed form (f is separable in the columns ``(a_j, d_j, b_j)``: the blocks are
``d_j^2 G``, ``-d_j H``, ``-H b_j + 2 d_j G a_j``, ``-H^T a_j``, ``a_j^T G a_j``, plus
``M_jk I`` between columns j and k), and Newton's method on the KKT system
(:func:`support_newton`) converges quadratically from the ADMM's iterate. The result is
accepted only when it keeps the support's signs and ``d > 0`` and its objective is not
above the iterate's; then ADMM state is built from it (``Omega = A_low``,
``rho Z = -(grad f + A M)_low``, clipped to ``[-lam, lam]``: the KKT multiplier) and the
ADMM continues from there. At a KKT point of SMART that state is a fixed point of the
ADMM map, so the ADMM's own stopping rule and certificate
(:func:`mtltransfer.smart.certify.stationarity`) decide convergence as before: the phase
only moves the iterate, it certifies nothing. A wrong support (a multiplier outside
``[-lam, lam]`` off the support) makes the state not a fixed point, and the ADMM moves on
from it.

When (:func:`run_with_active_set`). A penalised fit (lam > 0 with penalised rows) that
has not stopped is looked at every ``ACTIVE_SET_EVERY`` iterations (the first time after
``ACTIVE_SET_AFTER``) and tries the phase once its support has settled (at most 1% of
the entries, or 2, changed since the last look; after a failed attempt the next look
comes twice as late; after ``MAX_ATTEMPTS`` attempts the ADMM runs on alone), while the
free entries number at most ``MAX_NEWTON_VARS`` (the KKT system is solved densely). An
attempt is at most ``_SUPPORT_ROUNDS`` supports of at most ``_NEWTON_STEPS`` Newton
steps, each damped (halved until the KKT residual's norm decreases, at most 4 times;
otherwise the attempt stops), and stops when ``_SLOW`` steps have not cut the residual
tenfold.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

__all__ = ["support_newton", "run_with_active_set", "ACTIVE_SET_AFTER", "MAX_NEWTON_VARS"]

#: attempts of one fit, after which the ADMM runs on alone
MAX_ATTEMPTS = 4
#: ADMM iterations before the first active-set attempt, and between two attempts
ACTIVE_SET_AFTER, ACTIVE_SET_EVERY = 20, 20
#: the largest number of free entries (plus d) for which the dense KKT system is solved
MAX_NEWTON_VARS = 2500
#: Newton steps of one attempt
_NEWTON_STEPS = 15
#: Newton steps after which an attempt must have cut its KKT residual tenfold
_SLOW = 5
#: supports tried by one attempt (entries whose sign Newton reverses are dropped)
_SUPPORT_ROUNDS = 6
#: relative slack of the multipliers off the support (|rho Z| <= lam (1 + slack))
_DUAL_SLACK = 1e-9


def _layout(A, B, Om_u, Om_v, r_u, r_v):
    """Free entries per column: rows of A (B) allowed to be nonzero, and their offsets."""
    p, r = A.shape
    q = B.shape[0]
    rows_a = [np.concatenate([np.arange(r_u), r_u + np.flatnonzero(Om_u[:, j])])
              for j in range(r)]
    rows_b = [np.concatenate([np.arange(r_v), r_v + np.flatnonzero(Om_v[:, j])])
              for j in range(r)]
    pos_a, pos_b, pos_d = [], [], []
    off = 0
    for j in range(r):
        pa = np.full(p, -1)
        pa[rows_a[j]] = off + np.arange(rows_a[j].size)
        off += rows_a[j].size
        pb = np.full(q, -1)
        pb[rows_b[j]] = off + np.arange(rows_b[j].size)
        off += rows_b[j].size
        pos_a.append(pa)
        pos_b.append(pb)
        pos_d.append(off)
        off += 1
    return rows_a, rows_b, pos_a, pos_b, pos_d, off


def _pack_x(A, B, d, rows_a, rows_b, n_x):
    x = np.empty(n_x)
    i = 0
    for j in range(A.shape[1]):
        for v in (A[rows_a[j], j], B[rows_b[j], j], d[j:j + 1]):
            x[i:i + v.size] = v
            i += v.size
    return x


def _unpack_x(x, p, q, rows_a, rows_b):
    r = len(rows_a)
    A, B, d = np.zeros((p, r)), np.zeros((q, r)), np.zeros(r)
    i = 0
    for j in range(r):
        A[rows_a[j], j] = x[i:i + rows_a[j].size]
        i += rows_a[j].size
        B[rows_b[j], j] = x[i:i + rows_b[j].size]
        i += rows_b[j].size
        d[j] = x[i]
        i += 1
    return A, B, d


def _pairs(r):
    return [(i, k) for i in range(r) for k in range(i, r)]


def _lagrangian_gradient(A, B, d, GA, HB, HtA, M_A, M_B, lay, s_u, s_v, r_u, r_v, lam_u,
                         lam_v):
    """The Lagrangian's gradient in the free entries (``lay``'s order), with
    ``GA = G A``, ``HB = H B``, ``HtA = H^T A``:

        g_A = G A diag(d)^2 - H B diag(d) + A M_A   (+ lam_u sign on rows r_u:)
        g_B = -H^T A diag(d) + B M_B                (+ lam_v sign on rows r_v:)
        g_d = d * diag(A^T G A) - diag(A^T H B)
    """
    rows_a, rows_b, pos_a, pos_b, pos_d, n_x = lay
    gA = GA * d * d - HB * d + A @ M_A
    gA[r_u:] += lam_u * s_u
    gB = -HtA * d + B @ M_B
    gB[r_v:] += lam_v * s_v
    gd = d * np.einsum("ij,ij->j", A, GA) - np.einsum("ij,ij->j", A, HB)
    grad = np.empty(n_x)
    for j in range(A.shape[1]):
        grad[pos_a[j][rows_a[j]]] = gA[rows_a[j], j]
        grad[pos_b[j][rows_b[j]]] = gB[rows_b[j], j]
        grad[pos_d[j]] = gd[j]
    return grad


def _kkt(problem, A, B, d, M_A, M_B, lay, s_u, s_v, r_u, r_v, lam_u, lam_v):
    """The Lagrangian gradient, the constraints and the KKT matrix at (A, d, B, M)."""
    rows_a, rows_b, pos_a, pos_b, pos_d, n_x = lay
    G, H = problem.G, problem.H
    r = A.shape[1]
    GA, HB, HtA = G @ A, H @ B, H.T @ A
    grad = _lagrangian_gradient(A, B, d, GA, HB, HtA, M_A, M_B, lay, s_u, s_v, r_u, r_v,
                                lam_u, lam_v)
    pairs = _pairs(r)
    n_c = 2 * len(pairs)
    K = np.zeros((n_x + n_c, n_x + n_c))
    W = K[:n_x, :n_x]
    cons = np.empty(n_c)
    for j in range(r):
        ia, ib, jd = pos_a[j][rows_a[j]], pos_b[j][rows_b[j]], pos_d[j]
        W[np.ix_(ia, ia)] += d[j] ** 2 * G[np.ix_(rows_a[j], rows_a[j])]
        W[np.ix_(ia, ib)] = -d[j] * H[np.ix_(rows_a[j], rows_b[j])]
        W[np.ix_(ib, ia)] = W[np.ix_(ia, ib)].T
        v = -HB[rows_a[j], j] + 2 * d[j] * GA[rows_a[j], j]
        W[ia, jd] = W[jd, ia] = v
        w = -HtA[rows_b[j], j]
        W[ib, jd] = W[jd, ib] = w
        W[jd, jd] = A[:, j] @ GA[:, j]
    for c, (i, k) in enumerate(pairs):
        for side, (X, M, rows, pos) in enumerate(((A, M_A, rows_a, pos_a),
                                                  (B, M_B, rows_b, pos_b))):
            row = n_x + 2 * c + side
            common = np.flatnonzero((pos[i] >= 0) & (pos[k] >= 0))
            W[pos[i][common], pos[k][common]] += M[i, k]
            if i != k:
                W[pos[k][common], pos[i][common]] += M[i, k]
            # constraint a_i . a_k - delta_ik (1/2 (|a_i|^2 - 1) on the diagonal)
            K[row, pos[i][rows[i]]] += X[rows[i], k]
            if i != k:
                K[row, pos[k][rows[k]]] += X[rows[k], i]
                cons[2 * c + side] = X[:, i] @ X[:, k]
            else:
                cons[2 * c + side] = 0.5 * (X[:, i] @ X[:, i] - 1.0)
    K[:n_x, n_x:] = K[n_x:, :n_x].T
    return grad, cons, K


def _residual(problem, x, m, lay, s_u, s_v, r_u, r_v, lam_u, lam_v):
    """The KKT residual ``[Lagrangian gradient; constraints]`` at (x, m), as :func:`_kkt`
    orders it, without the matrix."""
    rows_a, rows_b, pos_a, pos_b, pos_d, n_x = lay
    p, q = problem.p, problem.q
    A, B, d = _unpack_x(x, p, q, rows_a, rows_b)
    r = A.shape[1]
    M_A, M_B = _multipliers_from(m, r)
    GA, HB = problem.gram(A), problem.H @ B
    grad = _lagrangian_gradient(A, B, d, GA, HB, problem.H.T @ A, M_A, M_B, lay, s_u, s_v,
                                r_u, r_v, lam_u, lam_v)
    CA, CB = A.T @ A - np.eye(r), B.T @ B - np.eye(r)
    half = np.where(np.eye(r, dtype=bool), 0.5, 1.0)
    CA, CB = CA * half, CB * half
    cons = np.array([[CA[i, k], CB[i, k]] for i, k in _pairs(r)]).ravel()
    return np.concatenate([grad, cons])


def _multipliers_from(m, r):
    M_A, M_B = np.zeros((r, r)), np.zeros((r, r))
    for c, (i, k) in enumerate(_pairs(r)):
        M_A[i, k] = M_A[k, i] = m[2 * c]
        M_B[i, k] = M_B[k, i] = m[2 * c + 1]
    return M_A, M_B


def _objective(problem, A, d, B, r_u, r_v, lam_u, lam_v):
    return (problem.data_term(A, d, B) + lam_u * np.abs(A[r_u:]).sum()
            + lam_v * np.abs(B[r_v:]).sum())


def support_newton(problem, A, B, d, Omega_u, Omega_v, r_u, r_v, lam_u, lam_v):
    """Newton's method on the KKT system of SMART with the support of Omega fixed.

    Entries whose sign Newton's point reverses leave the support (they belong to the
    zero set), entries off the support whose multiplier exceeds lambda join it (with the
    multiplier's sign), and Newton's method is run again on the new support, at most
    ``_SUPPORT_ROUNDS`` times. Parameters and returns as :func:`_support_newton_once`.
    """
    Om_u, Om_v = Omega_u, Omega_v
    for _ in range(_SUPPORT_ROUNDS):
        out = _support_newton_once(problem, A, B, d, Om_u, Om_v, r_u, r_v, lam_u, lam_v)
        if out is None or not isinstance(out[0], str):
            return out
        if out[0] == "signs":
            _, bad_u, bad_v = out
            Om_u, Om_v = np.where(bad_u, 0.0, Om_u), np.where(bad_v, 0.0, Om_v)
        else:
            _, add_u, add_v = out
            Om_u, Om_v = Om_u + add_u, Om_v + add_v
    return None


def _support_newton_once(problem, A, B, d, Omega_u, Omega_v, r_u, r_v, lam_u, lam_v):
    """Newton's method on the KKT system of SMART with the support of Omega fixed.

    Parameters
    ----------
    problem : SmartProblem
    A, B, d : ndarray
        The ADMM iterate (source coordinates; d > 0).
    Omega_u, Omega_v : ndarray
        Split variables: their nonzeros are the support, their signs the signs.
    r_u, r_v : int
    lam_u, lam_v : float

    Returns
    -------
    (A, B, d, rho_Z_u, rho_Z_v) or None
        The KKT point of the support-restricted problem and the unscaled duals
        ``-(grad f + A M)_low`` (on the support ``lam * sign``), or None when Newton's
        method did not converge, changed a sign, made a d nonpositive or raised the
        objective above the iterate's.
    """
    p, r = A.shape
    q = B.shape[0]
    if not np.all(d > 0):
        return None
    s_u, s_v = np.sign(Omega_u), np.sign(Omega_v)
    lay = _layout(A, B, Omega_u, Omega_v, r_u, r_v)
    rows_a, rows_b, n_x = lay[0], lay[1], lay[5]
    if n_x > MAX_NEWTON_VARS:
        return None
    start_obj = _objective(problem, A, d, B, r_u, r_v, lam_u, lam_v)
    # the iterate restricted to the support, orthonormalised
    A0, B0 = np.zeros_like(A), np.zeros_like(B)
    for j in range(r):
        A0[rows_a[j], j] = A[rows_a[j], j]
        B0[rows_b[j], j] = B[rows_b[j], j]
    A0, B0 = _orthonormal(A0), _orthonormal(B0)
    if A0 is None or B0 is None:
        return None
    x = _pack_x(A0, B0, d, rows_a, rows_b, n_x)
    m = None
    scale = 1.0 + 2.0 * abs(problem.half_tr_syy)
    norm_F0 = None                       # ||F|| at the attempt's start
    for k in range(_NEWTON_STEPS):
        Ai, Bi, di = _unpack_x(x, p, q, rows_a, rows_b)
        if m is None:
            grad0, cons, K = _kkt(problem, Ai, Bi, di, np.zeros((r, r)), np.zeros((r, r)),
                                  lay, s_u, s_v, r_u, r_v, lam_u, lam_v)
            J = K[n_x:, :n_x]
            m = np.linalg.lstsq(J.T, -grad0, rcond=None)[0]
        M_A, M_B = _multipliers_from(m, r)
        grad, cons, K = _kkt(problem, Ai, Bi, di, M_A, M_B, lay, s_u, s_v, r_u, r_v,
                             lam_u, lam_v)
        res = max(np.abs(grad).max(), np.abs(cons).max())
        if not np.isfinite(res):
            return None
        if res <= 1e-13 * scale:
            break
        F = np.concatenate([grad, cons])
        try:
            with warnings.catch_warnings():
                # a nearly singular system gives a poor step, which the damping rejects
                warnings.simplefilter("ignore", linalg.LinAlgWarning)
                step = linalg.solve(K, -F, assume_a="sym", check_finite=False)
        except (linalg.LinAlgError, ValueError):
            return None
        if not np.all(np.isfinite(step)):
            return None
        # damped: the longest of 1, 1/2, ..., 1/16 that decreases ||F|| (Armijo); an
        # attempt not within a tenth of its start after _SLOW steps is not converging
        norm_F = np.linalg.norm(F)
        norm_F0 = norm_F if norm_F0 is None else norm_F0
        if k >= _SLOW and norm_F > 0.1 * norm_F0:
            return None
        for t in 0.5 ** np.arange(5):
            x_t, m_t = x + t * step[:n_x], m + t * step[n_x:]
            if np.linalg.norm(_residual(problem, x_t, m_t, lay, s_u, s_v, r_u, r_v, lam_u,
                                        lam_v)) < (1 - 1e-4 * t) * norm_F:
                break
        else:
            return None
        x, m = x_t, m_t
    else:
        return None
    A1, B1, d1 = _unpack_x(x, p, q, rows_a, rows_b)
    if not np.all(d1 > 0):
        return None
    bad_u, bad_v = np.sign(A1[r_u:]) != s_u, np.sign(B1[r_v:]) != s_v
    if bad_u.any() or bad_v.any():
        return "signs", bad_u, bad_v
    if _objective(problem, A1, d1, B1, r_u, r_v, lam_u, lam_v) > start_obj + 1e-12 * scale:
        return None
    M_A, M_B = _multipliers_from(m, r)
    G_A = problem.gram(A1) * d1 * d1 - (problem.H @ B1) * d1 + A1 @ M_A
    G_B = -(problem.H.T @ A1) * d1 + B1 @ M_B
    gz_u, gz_v = -G_A[r_u:], -G_B[r_v:]
    add_u = (s_u == 0) & (np.abs(gz_u) > lam_u * (1 + _DUAL_SLACK))
    add_v = (s_v == 0) & (np.abs(gz_v) > lam_v * (1 + _DUAL_SLACK))
    if add_u.any() or add_v.any():
        return ("add", np.where(add_u, np.sign(gz_u), 0.0),
                np.where(add_v, np.sign(gz_v), 0.0))
    return A1, B1, d1, gz_u, gz_v


def _orthonormal(X):
    """The polar factor of X, or None when X is rank deficient."""
    u, s, vt = np.linalg.svd(X, full_matrices=False)
    if s.size and s.min() <= 1e-8 * max(s.max(), 1e-300):
        return None
    return u @ vt


def active_set_state(problem, state, r_u, r_v, lam_u, lam_v):
    """An ADMM state at the Newton point of the state's support, or None
    (:func:`support_newton`)."""
    from dataclasses import replace

    out = support_newton(problem, state.A, state.B, state.d, state.Omega_u, state.Omega_v,
                         r_u, r_v, lam_u, lam_v)
    if out is None:
        return None
    A, B, d, gz_u, gz_v = out
    rho = state.rho
    Z_u = np.clip(gz_u, -lam_u, lam_u) / rho
    Z_v = np.clip(gz_v, -lam_v, lam_v) / rho
    return replace(state, A=A, B=B, d=d, Omega_u=A[r_u:].copy(), Omega_v=B[r_v:].copy(),
                   Z_u=Z_u, Z_v=Z_v, GA=None, P_u=None)


def run_with_active_set(run, problem, state, *, r_u, r_v, lam_u, lam_v, max_iter,
                        aa_start):
    """The ADMM run ``run(state, max_iter, aa_start) -> (state, history, converged,
    criterion)`` interrupted every ``ACTIVE_SET_EVERY`` iterations (first after
    ``ACTIVE_SET_AFTER``; twice as long after a failed attempt) for an active-set attempt
    (:func:`active_set_state`) once the support has settled, continued from its state
    when the attempt succeeds, else from the ADMM's own. Returns the same four values (the
    histories joined) and the number of successful attempts."""
    hist, used, budget, accepted, support, tried = None, 0, ACTIVE_SET_AFTER, 0, None, 0
    while True:
        # after MAX_ATTEMPTS attempts the ADMM runs on uninterrupted (a run restarts its
        # Anderson memory and inner tolerance)
        chunk = max_iter - used if tried >= MAX_ATTEMPTS else min(budget, max_iter - used)
        state, h, converged, crit = run(state, chunk, max(0, aa_start - used))
        used += len(h["objective"])
        hist = h if hist is None else {k: hist[k] + h[k] for k in hist}
        if converged or used >= max_iter:
            return state, hist, converged, crit, accepted
        # an attempt once the support has settled: it changed in at most 1% of its
        # entries (and 2) over the last chunk
        now = np.concatenate([state.Omega_u.ravel() != 0, state.Omega_v.ravel() != 0])
        settled = (support is not None
                   and np.sum(now != support) <= max(2, 0.01 * np.sum(now)))
        support = now
        nxt = active_set_state(problem, state, r_u, r_v, lam_u, lam_v) if settled else None
        tried += settled
        if nxt is not None:
            state, accepted, budget = nxt, accepted + 1, ACTIVE_SET_EVERY
        elif settled:
            budget *= 2         # a failed attempt: the next look comes twice as late
        else:
            budget = ACTIVE_SET_EVERY
