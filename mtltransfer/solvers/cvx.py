"""Every CVXPY formulation of the package, in one place.

Each function poses one convex problem (a whole convex model, or one convex subproblem of
a nonconvex solver) and returns plain arrays. They are the reference ("cvxpy") backend
against which the fast closed-form / proximal kernels are tested.

Problems solved many times are built once with ``cp.Parameter`` placeholders following
the DPP rules (disciplined parametrised programming, ``problem.is_dpp()``), so a re-solve
only updates parameter values and skips CVXPY's compilation: the SMART d- and
Omega-steps (one problem per size and thread, re-used along ADMM iterations and lambda
paths) and the ridge and nuclear-norm grids (:func:`ridge_cvx_path`,
:func:`nuclear_norm_cvx_path`). Every twin takes ``solver_opts`` (passed to
``Problem.solve``; the default is Clarabel with tight tolerances). A solve that ends
``optimal_inaccurate`` gives a ``UserWarning`` (an error with ``inaccurate="raise"``, as
in :func:`mtltransfer.smart.admm.smart_verify`); any other non-optimal status is an
error.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict

import cvxpy as cp
import numpy as np

from ..gram import quadratic_loss
from ..exceptions import user_stacklevel

#: default solver options (used when no ``solver`` is given)
_CLARABEL_OPTS = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10,
                  "max_iter": 500}


def solve_reference(prob, solver=None, *, inaccurate="warn", **opts):
    """Solve ``prob`` (Clarabel with tight tolerances by default) and check its status.

    ``cp.OPTIMAL`` returns the optimal value; ``cp.OPTIMAL_INACCURATE`` warns
    (``inaccurate="warn"``, a ``UserWarning``) or raises (``"raise"``); any other status
    raises ``RuntimeError``.
    """
    if inaccurate not in ("warn", "raise"):
        raise ValueError(f"inaccurate must be 'warn' or 'raise'; got {inaccurate!r}")
    if solver is None:
        solver = cp.CLARABEL
        opts = {**_CLARABEL_OPTS, **opts}
    prob.solve(solver=solver, **opts)
    if prob.status == cp.OPTIMAL:
        return prob.value
    if prob.status == cp.OPTIMAL_INACCURATE:
        msg = (f"CVXPY ({solver}) returned status {prob.status!r}: the reference solution "
               "is inaccurate; tighten the solver options or try another solver")
        if inaccurate == "raise":
            raise RuntimeError(msg)
        warnings.warn(msg, UserWarning, stacklevel=user_stacklevel())
        return prob.value
    raise RuntimeError(f"CVXPY returned status {prob.status!r}")


# ---- parametrised problems, built once ----------------------------------------------
class _Twin:
    """A parametrised CVXPY problem: the problem, its variable and its parameters."""

    __slots__ = ("problem", "variable", "params")

    def __init__(self, problem, variable, **params):
        if not problem.is_dpp():  # pragma: no cover - a formulation error
            raise AssertionError("a cached CVXPY twin must follow the DPP rules")
        self.problem, self.variable, self.params = problem, variable, params

    def solve(self, solver_opts, inaccurate="warn", **values):
        """Set the parameters' values, solve, return the optimal value."""
        for name, value in values.items():
            self.params[name].value = value
        return solve_reference(self.problem, inaccurate=inaccurate, **solver_opts)


_local = threading.local()
_CACHE_SIZE = 64


def _cached_twin(key, build):
    """The twin stored under ``key`` in this thread's cache, built on first use."""
    cache = getattr(_local, "twins", None)
    if cache is None:
        cache = _local.twins = OrderedDict()
    twin = cache.get(key)
    if twin is None:
        twin = cache[key] = build()
        if len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return twin


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


def _penalty_path(Sxx, Sxy, Syy, penalty, values, name, solver_opts):
    """Solve ``loss(C) + t * penalty(C)`` for each t in ``values``, compiled once."""
    values = np.atleast_1d(np.asarray(values, dtype=float))
    if values.ndim != 1 or not np.all(values >= 0) or not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite and >= 0; got {values!r}")
    C = cp.Variable(Sxy.shape)
    t = cp.Parameter(nonneg=True)
    twin = _Twin(cp.Problem(cp.Minimize(_quadratic_loss_expr(Sxx, Sxy, Syy, C)
                                        + t * penalty(C))), C, t=t)
    out = []
    for v in values:
        val = twin.solve(solver_opts, t=v)
        out.append((C.value.copy(), val))
    return out


def ridge_cvx_path(Sxx, Sxy, Syy, alphas, C0=None, **solver_opts):
    """Ridge along a grid: ``min (1/2n)||Y - XC||_F^2 + (alpha/2)||C - C0||_F^2`` for each
    alpha, one CVXPY problem with alpha a ``cp.Parameter`` (compiled once).

    Parameters
    ----------
    Sxx, Sxy, Syy : ndarray
        Centred moments.
    alphas : array_like
        Penalties, >= 0.
    C0 : ndarray (p, q) or None
        Centre of the penalty (0 unless given: ridge towards a source).
    **solver_opts
        Passed to ``Problem.solve``.

    Returns
    -------
    list of (ndarray (p, q), float)
        ``(C, objective)`` per alpha.
    """
    centre = 0.0 if C0 is None else C0
    return _penalty_path(Sxx, Sxy, Syy, lambda C: 0.5 * cp.sum_squares(C - centre),
                         alphas, "alpha", solver_opts)


def ridge_cvx(Sxx, Sxy, Syy, alpha=0.0, C0=None, **solver_opts):
    """OLS (alpha = 0) or ridge: min (1/2n)||Y - XC||_F^2 + (alpha/2)||C - C0||_F^2 in CVXPY
    (``C0`` = 0 unless given: ridge towards a source).

    Returns ``(C, objective)``. With alpha = 0 and a singular Sxx the problem has many
    minimisers; CVXPY returns one of them. A grid of alphas: :func:`ridge_cvx_path`.
    """
    return ridge_cvx_path(Sxx, Sxy, Syy, [alpha], C0, **solver_opts)[0]


def top_subspace_cvx(M, rank, **solver_opts):
    """Projector onto the top-``rank`` eigenspace of symmetric M, as a convex program.

    By Ky Fan's theorem max tr(M P) over the Fantope {0 <= P <= I, tr P = r} is attained at
    P = V_r V_r^T (unique when the r-th eigengap is positive). Returns the q x r
    orthonormal basis of the range of the solution P.
    """
    q = M.shape[0]
    P = cp.Variable((q, q), symmetric=True)
    cons = [P >> 0, np.eye(q) - P >> 0, cp.trace(P) == rank]
    solve_reference(cp.Problem(cp.Maximize(cp.trace(M @ P)), cons), **solver_opts)
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
    return C, float(quadratic_loss(Sxx, Sxy, Syy, C))


def reduced_rank_ridge_cvx(Sxx, Sxy, Syy, rank, ridge, **solver_opts):
    """Reduced-rank ridge through two convex programs (the rank constraint itself is not
    convex): 1. the convex ridge step ``C_R`` (:func:`ridge_cvx`); 2. the top-r eigenspace
    V_r of the augmented fitted values' Gram matrix ``C_R^T (Sxx + ridge I) C_R`` by the
    Fantope program (:func:`top_subspace_cvx`); then ``C = C_R V_r V_r^T`` (see
    :mod:`mtltransfer.solvers.rrridge`). Returns ``(C, objective)`` with the objective
    ``(1/2n)||Y - XC||_F^2 + (ridge/2)||C||_F^2``.
    """
    C_R, _ = ridge_cvx(Sxx, Sxy, Syy, ridge)
    M = C_R.T @ (Sxx + ridge * np.eye(Sxx.shape[0])) @ C_R
    M = (M + M.T) / (2 * max(float(np.abs(M).max()), np.finfo(float).tiny))  # unit scale
    V_r = top_subspace_cvx(M, rank, **solver_opts)
    C = C_R @ V_r @ V_r.T
    return C, float(quadratic_loss(Sxx, Sxy, Syy, C) + 0.5 * ridge * np.sum(C * C))


def nuclear_norm_cvx_path(Sxx, Sxy, Syy, lams, C0=None, **solver_opts):
    """Nuclear-norm regression along a grid: ``min (1/2n)||Y - XC||_F^2 + lam ||C - C0||_*``
    for each lam, one CVXPY problem with lam a ``cp.Parameter`` (compiled once).

    Parameters
    ----------
    Sxx, Sxy, Syy : ndarray
        Centred moments.
    lams : array_like
        Penalties, >= 0.
    C0 : ndarray (p, q) or None
        Centre of the penalty (0 unless given: the nuclear-norm contrast with a source).
    **solver_opts
        Passed to ``Problem.solve``.

    Returns
    -------
    list of (ndarray (p, q), float)
        ``(C, objective)`` per lam.
    """
    centre = 0.0 if C0 is None else C0
    return _penalty_path(Sxx, Sxy, Syy, lambda C: cp.normNuc(C - centre), lams, "lam",
                         solver_opts)


def nuclear_norm_cvx(Sxx, Sxy, Syy, lam, C0=None, **solver_opts):
    """min (1/2n)||Y - XC||_F^2 + lam ||C - C0||_* in CVXPY (``C0`` = 0 unless given: the
    nuclear-norm contrast with a source). Returns ``(C, objective)``. A grid of lams:
    :func:`nuclear_norm_cvx_path`."""
    return nuclear_norm_cvx_path(Sxx, Sxy, Syy, [lam], C0, **solver_opts)[0]


# ---- SMART subproblems ---------------------------------------------------------------
def _smart_d_twin(k):
    """``min_d 1/2 sum_j g_j d_j^2 - sum_j c_j d_j`` with parameters c and g >= 0."""
    d = cp.Variable(k)
    c, g = cp.Parameter(k), cp.Parameter(k, nonneg=True)
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum(cp.multiply(g, cp.square(d))) - c @ d))
    return _Twin(prob, d, c=c, g=g)


def _smart_omega_twin(shape):
    """``min_Omega lam ||Omega||_1 + (rho/2) ||D||_F^2`` s.t. ``D = Omega - V``, with
    parameters V, lam >= 0 and rho >= 0.

    (The split D keeps the objective DPP, which ``rho ||Omega - V||^2`` with both rho and V
    parameters is not, and the problem's scale is the Omega-step's own: dividing by rho
    instead loses about an order of magnitude of the interior-point accuracy.)
    """
    Om, D = cp.Variable(shape), cp.Variable(shape)
    V = cp.Parameter(shape)
    lam, rho = cp.Parameter(nonneg=True), cp.Parameter(nonneg=True)
    prob = cp.Problem(cp.Minimize(lam * cp.sum(cp.abs(Om)) + 0.5 * rho * cp.sum_squares(D)),
                      [D == Om - V])
    return _Twin(prob, Om, V=V, lam=lam, rho=rho)


def smart_d_step(c, g, *, inaccurate="warn", **solver_opts):
    """SMART d-step: ``argmin_d 1/2 sum_j g_j d_j^2 - sum_j c_j d_j``.

    ``c_j = [A^T H B]_jj`` and ``g_j = [A^T G A]_jj >= 0`` (source coordinates). Components
    with ``g_j <= 1e-300`` are set to 0, as in the closed form. The problem is built once
    per number of components (and thread) and re-solved with new parameter values.

    Parameters
    ----------
    c, g : array_like (r,)
    inaccurate : {"warn", "raise"}
        What an ``optimal_inaccurate`` status does.
    **solver_opts
        Passed to ``Problem.solve``.

    Returns
    -------
    ndarray (r,)
    """
    c, g = np.asarray(c, dtype=float), np.asarray(g, dtype=float)
    d_out = np.zeros_like(c)
    ok = g > 1e-300
    k = int(ok.sum())
    if not k:
        return d_out
    twin = _cached_twin(("smart_d", k), lambda: _smart_d_twin(k))
    twin.solve(solver_opts, inaccurate, c=c[ok], g=g[ok])
    d_out[ok] = twin.variable.value
    return d_out


def smart_omega_step(V, lam, rho, *, inaccurate="warn", **solver_opts):
    """SMART Omega-step: ``argmin_Omega lam ||Omega||_1 + (rho/2) ||Omega - V||_F^2``.

    ``V = A[r_u:] + Z_u`` (or the V-side analogue). Entries below 1e-9 in magnitude are
    returned as exact zeros (the interior-point solution is accurate to ~1e-10). The
    problem is built once per shape (and thread) and re-solved with new parameter values.

    Parameters
    ----------
    V : array_like (m, r)
    lam : float
        >= 0.
    rho : float
        > 0.
    inaccurate : {"warn", "raise"}
        What an ``optimal_inaccurate`` status does.
    **solver_opts
        Passed to ``Problem.solve``.

    Returns
    -------
    ndarray (m, r)
    """
    V = np.asarray(V, dtype=float)
    if V.size == 0:
        return V.copy()
    twin = _cached_twin(("smart_omega", V.shape), lambda: _smart_omega_twin(V.shape))
    twin.solve(solver_opts, inaccurate, V=V, lam=float(lam), rho=float(rho))
    out = np.array(twin.variable.value, dtype=float)
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
    solve_reference(prob)
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
    solve_reference(prob)
    return Theta.value


# ---- SparseReducedRank subproblem ----------------------------------------------------
def _srrr_u_twin(Sxx, weights, r):
    """``min_U ||R U||_F^2 / 2 - <P, U> + lam sum_j w_j ||U_j.||_2`` (``R^T R = Sxx``) with
    parameters P (= Sxy V) and lam >= 0."""
    p = Sxx.shape[0]
    U = cp.Variable((p, r))
    P = cp.Parameter((p, r))
    lam = cp.Parameter(nonneg=True)
    R = _sqrt_psd(Sxx)
    obj = 0.5 * cp.sum_squares(R @ U) - cp.sum(cp.multiply(P, U)) + \
        lam * cp.sum(cp.multiply(np.asarray(weights, dtype=float), cp.norm(U, 2, axis=1)))
    return _Twin(cp.Problem(cp.Minimize(obj)), U, P=P, lam=lam)


def srrr_u_step_cvx(Sxx, SxyV, lam, weights=None, *, inaccurate="warn", **solver_opts):
    """The convex U-step of SparseReducedRank at fixed V (``V^T V = I``), in CVXPY:

        min_U  (1/2) tr(U^T Sxx U) - <Sxy V, U> + lam sum_j w_j ||U_j.||_2.

    The problem is built once per (Sxx, weights, r) (and thread) with ``Sxy V`` and lam as
    ``cp.Parameter`` s, so the block coordinate descent's repeated U-steps only re-solve.

    Parameters
    ----------
    Sxx : ndarray (p, p)
    SxyV : ndarray (p, r)
    lam : float
        >= 0.
    weights : ndarray (p,), optional
        Group weights (ones by default).
    inaccurate : {"warn", "raise"}
    **solver_opts
        Passed to ``Problem.solve``.

    Returns
    -------
    (U, objective) : (ndarray (p, r), float)
        The optimal value of the problem above (no constant term).
    """
    import hashlib

    Sxx = np.asarray(Sxx, dtype=float)
    SxyV = np.asarray(SxyV, dtype=float)
    p, r = SxyV.shape
    w = np.ones(p) if weights is None else np.asarray(weights, dtype=float)
    if lam < 0 or not np.isfinite(lam):
        raise ValueError(f"lam must be finite and >= 0; got {lam!r}")
    h = hashlib.sha1(np.ascontiguousarray(Sxx).tobytes() + w.tobytes()).hexdigest()
    twin = _cached_twin(("srrr_u", p, r, h), lambda: _srrr_u_twin(Sxx, w, r))
    val = twin.solve(solver_opts, inaccurate, P=SxyV, lam=float(lam))
    return np.array(twin.variable.value, dtype=float), float(val)
