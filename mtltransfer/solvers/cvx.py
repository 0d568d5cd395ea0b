"""Every CVXPY formulation of the package, in one place.

Each function poses one convex problem (a whole convex model, or one convex subproblem of
a nonconvex solver) and returns plain arrays. They are the reference ("cvxpy") backend
against which the fast closed-form / proximal kernels are tested.
"""

from __future__ import annotations

import numpy as np

try:  # cvxpy is a core dependency; imported lazily by callers that need it
    import cvxpy as cp
except ImportError:  # pragma: no cover
    cp = None


def _solve(prob, solver=None, **opts):
    """Solve ``prob`` with Clarabel (tight tolerances) and check the status."""
    if solver is None:
        solver = cp.CLARABEL
        opts = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10,
                "max_iter": 500, **opts}
    prob.solve(solver=solver, **opts)
    if prob.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"CVXPY returned status {prob.status!r}")
    return prob.value


# ---- baselines (OLS, Ridge, ReducedRank pieces, NuclearNorm) -------------------------
def _sqrt_psd(S):
    """R with R^T R = S (S symmetric PSD), from its eigendecomposition."""
    w, Q = np.linalg.eigh((S + S.T) / 2)
    keep = w > max(S.shape) * np.finfo(float).eps * max(w.max(), 1e-300)
    return (Q[:, keep] * np.sqrt(w[keep])).T


def _quadratic_loss_expr(Sxx, Sxy, Syy, C):
    """(1/2n)||Y - XC||_F^2 = tr(Syy)/2 - <Sxy, C> + ||R C||_F^2 / 2 with R^T R = Sxx."""
    R = _sqrt_psd(Sxx)
    return 0.5 * float(np.trace(Syy)) - cp.sum(cp.multiply(Sxy, C)) + \
        0.5 * cp.sum_squares(R @ C)


def ridge_cvx(Sxx, Sxy, Syy, alpha=0.0, C0=None, **solver_opts):
    """OLS (alpha = 0) or ridge: min (1/2n)||Y - XC||_F^2 + (alpha/2)||C - C0||_F^2 in CVXPY
    (``C0`` = 0 unless given: ridge towards a source).

    Returns ``(C, objective)``. With alpha = 0 and a singular Sxx the problem has many
    minimisers; CVXPY returns one of them.
    """
    C = cp.Variable(Sxy.shape)
    centre = 0.0 if C0 is None else C0
    obj = _quadratic_loss_expr(Sxx, Sxy, Syy, C) + 0.5 * alpha * cp.sum_squares(C - centre)
    val = _solve(cp.Problem(cp.Minimize(obj)), **solver_opts)
    return C.value, val


def top_subspace_cvx(M, rank, **solver_opts):
    """Projector onto the top-``rank`` eigenspace of symmetric M, as a convex program.

    By Ky Fan's theorem max tr(M P) over the Fantope {0 <= P <= I, tr P = r} is attained at
    P = V_r V_r^T (unique when the r-th eigengap is positive). Returns the q x r
    orthonormal basis of the range of the solution P.
    """
    q = M.shape[0]
    P = cp.Variable((q, q), symmetric=True)
    cons = [P >> 0, np.eye(q) - P >> 0, cp.trace(P) == rank]
    _solve(cp.Problem(cp.Maximize(cp.trace(M @ P)), cons), **solver_opts)
    w, Q = np.linalg.eigh((P.value + P.value.T) / 2)
    return Q[:, ::-1][:, :rank]


def reduced_rank_cvx(Sxx, Sxy, Syy, rank, **solver_opts):
    """Reduced-rank regression through two convex programs.

    1. least squares C_ols (CVXPY); 2. the top-r eigenspace V_r of the fitted-value
    covariance C_ols^T Sxx C_ols by the Fantope program of :func:`top_subspace_cvx`;
    then C = C_ols V_r V_r^T. Returns ``(C, objective)``. ``solver_opts`` go to the
    semidefinite (Fantope) step; the least-squares step uses the default solver.
    """
    C_ols, _ = ridge_cvx(Sxx, Sxy, Syy, 0.0)
    M = C_ols.T @ Sxx @ C_ols
    V_r = top_subspace_cvx((M + M.T) / 2, rank, **solver_opts)
    C = C_ols @ V_r @ V_r.T
    val = 0.5 * np.trace(Syy) - np.sum(Sxy * C) + 0.5 * np.sum((Sxx @ C) * C)
    return C, float(val)


def nuclear_norm_cvx(Sxx, Sxy, Syy, lam, C0=None, **solver_opts):
    """min (1/2n)||Y - XC||_F^2 + lam ||C - C0||_* in CVXPY (``C0`` = 0 unless given: the
    nuclear-norm contrast with a source). Returns ``(C, objective)``."""
    C = cp.Variable(Sxy.shape)
    centre = 0.0 if C0 is None else C0
    obj = _quadratic_loss_expr(Sxx, Sxy, Syy, C) + lam * cp.normNuc(C - centre)
    val = _solve(cp.Problem(cp.Minimize(obj)), **solver_opts)
    return C.value, val



# ---- SMART subproblems ---------------------------------------------------------------
def smart_d_step(c, g):
    """SMART d-step: ``argmin_d 1/2 sum_j g_j d_j^2 - sum_j c_j d_j``.

    ``c_j = [A^T H B]_jj`` and ``g_j = [A^T G A]_jj >= 0`` (source coordinates). Components
    with ``g_j <= 1e-300`` are set to 0, as in the closed form.
    """
    c, g = np.asarray(c, dtype=float), np.asarray(g, dtype=float)
    d_out = np.zeros_like(c)
    ok = g > 1e-300
    if not ok.any():
        return d_out
    d = cp.Variable(int(ok.sum()))
    _solve(cp.Problem(cp.Minimize(0.5 * cp.sum(cp.multiply(g[ok], cp.square(d)))
                                  - c[ok] @ d)))
    d_out[ok] = d.value
    return d_out


def smart_omega_step(V, lam, rho):
    """SMART Omega-step: ``argmin_Omega lam ||Omega||_1 + (rho/2) ||Omega - V||_F^2``.

    ``V = A[r_u:] + Z_u`` (or the V-side analogue). Entries below 1e-9 in magnitude are
    returned as exact zeros (the interior-point solution is accurate to ~1e-10).
    """
    V = np.asarray(V, dtype=float)
    if V.size == 0:
        return V.copy()
    Om = cp.Variable(V.shape)
    _solve(cp.Problem(cp.Minimize(lam * cp.sum(cp.abs(Om))
                                  + 0.5 * rho * cp.sum_squares(Om - V))))
    out = np.asarray(Om.value, dtype=float)
    out[np.abs(out) < 1e-9] = 0.0
    return out



# ---- SharedRepresentation subproblems ------------------------------------------------

def _task_block_design(Z, task, T):
    """Sparse N x (m T) matrix A with row i holding Z[i] in the columns of its task.

    ``A @ vec(M)`` (column-major vec of an m x T matrix M) is ``Z[i] . M[:, task[i]]``.
    """
    from scipy import sparse

    n, m = Z.shape
    cols = task[:, None] * m + np.arange(m)[None, :]
    return sparse.csr_matrix((Z.ravel(), (np.repeat(np.arange(n), m), cols.ravel())),
                             shape=(n, m * T))


def _task_weights(task, T):
    """sqrt(1 / N_t) for each row's task."""
    N = np.bincount(task, minlength=T)
    return np.sqrt(1.0 / N[task])


def shared_rep_w_step(Z, y, task, T, ridge=None):
    """W-step of the shared representation:
    ``min_W sum_t (1/2N_t)||y_t - Z_t w_t||^2 + sum_t (ridge_t/2)||w_t||^2``.

    Parameters
    ----------
    Z : ndarray, shape (N, k)
        ``X @ B``, the rows in the representation.
    y : ndarray, shape (N,)
    task : ndarray of int, shape (N,)
        Task label 0..T-1 of each row.
    T : int
    ridge : None or ndarray of shape (T,)
        Per-task ridge penalty (>= 0); None for plain least squares.

    Returns
    -------
    W : ndarray, shape (k, T)
    """
    k = np.shape(Z)[1]
    w = cp.Variable(k * T)
    obj = _task_loss(Z, y, task, T, w)
    if ridge is not None:
        # w is vec of the k x T matrix W, column-major: task t holds entries t k .. t k + k - 1
        sr = np.repeat(np.sqrt(np.asarray(ridge, dtype=float)), k)
        obj = obj + 0.5 * cp.sum_squares(cp.multiply(sr, w))
    prob = cp.Problem(cp.Minimize(obj))
    _solve(prob)
    return w.value.reshape(T, k).T


def _task_loss(M, y, task, T, coef):
    """sum_t (1/2N_t) ||y_t - M_t c_t||^2 as a CVXPY expression; ``coef`` stacks the c_t."""
    M = np.asarray(M, dtype=float)
    task = np.asarray(task)
    A = _task_block_design(M, task, T)
    sw = _task_weights(task, T)
    return 0.5 * cp.sum_squares(cp.multiply(sw, y - A @ coef))


def shared_rep_nuclear_norm(X, y, task, T, lam):
    """Convex relaxation ``min_Theta sum_t (1/2N_t)||y_t - X_t theta_t||^2 + lam ||Theta||_*``.

    Parameters
    ----------
    X : ndarray, shape (N, d)
    y : ndarray, shape (N,)
    task : ndarray of int, shape (N,)
    T : int
    lam : float

    Returns
    -------
    Theta : ndarray, shape (d, T)
    """
    Theta = cp.Variable((np.shape(X)[1], T))
    fit = _task_loss(X, y, task, T, cp.vec(Theta, order="F"))
    prob = cp.Problem(cp.Minimize(fit + lam * cp.normNuc(Theta)))
    _solve(prob)
    return Theta.value
