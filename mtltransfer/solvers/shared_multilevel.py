"""The multilevel shared representation: a linear mixed model whose random part has rank k.

Model: T groups (tasks), group t has rows ``X_t`` (N_t x p, the fixed part, intercept
included), ``Z_t`` (N_t x q, the random part) and responses ``y_t``;

    y_t = X_t beta + Z_t B w_t + e_t,    w_t ~ N(0, Sigma_w),    e_t ~ N(0, sigma^2 I),

B (q x k) with orthonormal columns. The random coefficients ``u_t = B w_t`` have covariance
``G = B Sigma_w B^T`` of rank k; with k = q this is statsmodels' MixedLM with an
unstructured random-effects covariance, with k < q a reduced-rank (factor-analytic)
random-coefficient model. The task intercept is a random effect when Z has a constant
column: its mean is the fixed intercept in beta, its variance a diagonal entry of G.

Parametrisation (as lme4): ``G = sigma^2 L L^T`` with L (q x k) lower trapezoidal (the
relative factor), ``theta`` its free entries. With ``A_t = L^T Z_t^T Z_t L + I_k`` and
``W_t = I - Z_t L A_t^{-1} L^T Z_t^T = sigma^2 V_t^{-1}`` (Woodbury),

    C = sum_t X_t^T W_t X_t,   c = sum_t X_t^T W_t y_t,   beta(theta) = C^{-1} c,
    r^2(theta) = sum_t y_t^T W_t y_t - c^T beta = min_{beta, v} sum_t ||y_t - X_t beta
                 - Z_t L v_t||^2 + ||v_t||^2,
    ML:   -2 l = sum_t log|A_t| + n (1 + log(2 pi r^2 / n))          (sigma^2 = r^2 / n)
    REML: -2 l_R = sum_t log|A_t| + log|C| + (n - p) (1 + log(2 pi r^2 / (n - p)))

all from the per-group statistics ``Z_t^T Z_t``, ``Z_t^T X_t``, ``Z_t^T y_t`` and the
totals ``X^T X``, ``X^T y``, ``y^T y``. The gradient in L is exact (envelope theorem on the
penalised least squares): with ``v_t = A_t^{-1} L^T Z_t^T (y_t - X_t beta)``,
``g_t = Z_t^T (y_t - X_t beta)`` and ``V_t = A_t^{-1} L^T Z_t^T X_t``,

    d sum log|A_t| / dL = 2 sum_t Z_t^T Z_t L A_t^{-1},
    d r^2 / dL          = -2 sum_t (g_t - Z_t^T Z_t L v_t) v_t^T,
    d log|C| / dL       = -2 sum_t (Z_t^T X_t - Z_t^T Z_t L V_t) C^{-1} V_t^T.

The profiled deviance is minimised over theta by BFGS and polished by Newton steps on a
finite-difference Hessian of the exact gradient; the fit stops on the Newton decrement.
Everything runs in equilibrated coordinates (columns of X and Z at unit root mean square,
y at unit standard deviation), and is mapped back.

Public functions
----------------
group_stats            per-group statistics from rows
fit_multilevel         the fit at a given k (ML or REML)
select_k_multilevel    k by BIC over 1..q, each k fitted
n_params               free parameters at k
"""

from __future__ import annotations

import time

import numpy as np
from scipy import linalg, optimize, sparse

from ._base import SolverResult, warn_not_converged

__all__ = ["group_stats", "fit_multilevel", "select_k_multilevel", "n_params",
           "GroupStats"]

_LOG2PI = np.log(2 * np.pi)


class GroupStats:
    """Per-group statistics of a mixed model (equilibrated coordinates).

    Attributes
    ----------
    ZZ : ndarray (T, q, q)
    ZX : ndarray (T, q, p)
    Zy : ndarray (T, q)
    XX, Xy, yy : ndarray (p, p), (p,), float
    n : ndarray (T,)  rows per group
    Dx, Dz, sy : scales of X's and Z's columns and of y (x_s = x / Dx, ...)
    """

    def __init__(self, ZZ, ZX, Zy, XX, Xy, yy, n, Dx, Dz, sy, ym=0.0):
        self.ZZ, self.ZX, self.Zy = ZZ, ZX, Zy
        self.XX, self.Xy, self.yy, self.n = XX, Xy, yy, n
        self.Dx, self.Dz, self.sy, self.ym = Dx, Dz, sy, ym
        self.T, self.q, self.p = ZX.shape
        self.nobs = float(np.sum(n))


def _rms(A):
    D = np.sqrt(np.mean(A * A, axis=0)) if A.shape[0] else np.ones(A.shape[1])
    return np.where(D > 0, D, 1.0)


def group_stats(X, Z, y, task, T=None):
    """:class:`GroupStats` from stacked rows (``task`` integer labels 0..T-1).

    Columns are scaled to unit root mean square and y to unit standard deviation
    (no copy of the caller's arrays is modified)."""
    X = np.asarray(X, dtype=float)
    Z = np.asarray(Z, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    task = np.asarray(task, dtype=np.int64)
    n, p = X.shape
    q = Z.shape[1]
    if Z.shape[0] != n or y.shape[0] != n or task.shape != (n,):
        raise ValueError("X, Z, y and task must have the same number of rows")
    T = int(task.max()) + 1 if T is None else int(T)
    Dx, Dz = _rms(X), _rms(Z)
    sy = float(np.std(y)) or 1.0
    Xs, Zs, ys = X / Dx, Z / Dz, y / sy
    H = sparse.csr_matrix((np.ones(n), (task, np.arange(n))), shape=(T, n))
    ZZ = np.asarray(H @ (Zs[:, :, None] * Zs[:, None, :]).reshape(n, q * q))
    ZZ = ZZ.reshape(T, q, q)
    ZX = np.asarray(H @ (Zs[:, :, None] * Xs[:, None, :]).reshape(n, q * p))
    ZX = ZX.reshape(T, q, p)
    Zy = np.asarray(H @ (Zs * ys[:, None]))
    st = GroupStats(ZZ, ZX, Zy, Xs.T @ Xs, Xs.T @ ys, float(ys @ ys),
                    np.bincount(task, minlength=T).astype(float), Dx, Dz, sy)
    # per-group X^T X, X^T y, y^T y (the separate-variance model)
    st.XXt = np.asarray(H @ (Xs[:, :, None] * Xs[:, None, :]).reshape(n, p * p)
                        ).reshape(T, p, p)
    st.Xyt = np.asarray(H @ (Xs * ys[:, None]))
    st.yyt = np.asarray(H @ (ys * ys)).ravel()
    return st


def n_params(p, q, k):
    """Free parameters at rank k: beta (p), L (q k - k (k - 1) / 2) and sigma^2 (1)."""
    return p + q * k - k * (k - 1) // 2 + 1


def _tril_index(q, k):
    return [(i, j) for i in range(q) for j in range(min(i + 1, k))]


def _unpack(theta, q, k):
    L = np.zeros((q, k))
    idx = _tril_index(q, k)
    L[tuple(np.array(idx).T)] = theta
    return L


def _pack(L):
    q, k = L.shape
    return np.array([L[i, j] for i, j in _tril_index(q, k)])


def _to_trapezoid(F):
    """A q x k factor with the same F F^T and lower trapezoidal (F Q for Q orthogonal)."""
    Q, R = np.linalg.qr(F.T)              # F^T = Q R, F Q = R^T
    return R.T


def _inv_logdet(A):
    """Inverses and log-determinants of symmetric positive definite A (T x k x k):
    closed forms for k <= 2, Cholesky beyond."""
    k = A.shape[1]
    if k == 1:
        a = A[:, 0, 0]
        if np.any(a <= 0):
            raise np.linalg.LinAlgError("not positive definite")
        return (1.0 / a)[:, None, None], np.log(a)
    if k == 2:
        a, b, d = A[:, 0, 0], A[:, 0, 1], A[:, 1, 1]
        det = a * d - b * b
        if np.any(det <= 0) or np.any(a <= 0):
            raise np.linalg.LinAlgError("not positive definite")
        V = np.empty_like(A)
        V[:, 0, 0], V[:, 1, 1] = d / det, a / det
        V[:, 0, 1] = V[:, 1, 0] = -b / det
        return V, np.log(det)
    c = np.linalg.cholesky(A)
    logdet = 2 * np.sum(np.log(np.diagonal(c, axis1=1, axis2=2)), axis=1)
    Ai = np.linalg.inv(A)
    return (Ai + np.swapaxes(Ai, 1, 2)) / 2, logdet


def _pieces(st, L):
    """The quantities of the profiled likelihood at the relative factor L."""
    k = L.shape[1]
    ZZL = st.ZZ @ L                                          # T q k
    A = L.T @ ZZL + np.eye(k)
    Ai, logdetA = _inv_logdet(A)
    LZX = L.T @ st.ZX                                        # T k p
    LZy = st.Zy @ L                                          # T k
    VX = Ai @ LZX                                            # T k p  (V_t)
    vy = np.einsum("tkl,tl->tk", Ai, LZy)
    C = st.XX - np.einsum("tkp,tkr->pr", LZX, VX)
    c = st.Xy - np.einsum("tkp,tk->p", LZX, vy)
    yWy = st.yy - np.sum(LZy * vy)
    C = (C + C.T) / 2
    cC = linalg.cho_factor(C)
    beta = linalg.cho_solve(cC, c)
    r2 = float(yWy - c @ beta)
    v = vy - VX @ beta                                       # T k
    g = st.Zy - st.ZX @ beta                                 # T q
    return dict(ZZL=ZZL, Ai=Ai, logdetA=logdetA, VX=VX, C=C, cC=cC, beta=beta,
                r2=max(r2, 1e-300), v=v, g=g)


def _deviance(theta, st, k, reml):
    """Profiled -2 log-likelihood (constants included) and its gradient in theta."""
    L = _unpack(theta, st.q, k)
    try:
        P = _pieces(st, L)
    except (np.linalg.LinAlgError, linalg.LinAlgError):
        return np.inf, np.zeros_like(theta)
    n, p = st.nobs, st.p
    m = n - p if reml else n
    r2 = P["r2"]
    dev = float(np.sum(P["logdetA"]) + m * (1 + _LOG2PI + np.log(r2 / m)))
    ZZL, Ai, v, g = P["ZZL"], P["Ai"], P["v"], P["g"]
    grad = 2 * np.einsum("tqk,tkl->ql", ZZL, Ai)
    resid = g - np.einsum("tqk,tk->tq", ZZL, v)
    grad -= (2 * m / r2) * (resid.T @ v)
    if reml:
        dev += float(2 * np.sum(np.log(np.diag(P["cC"][0]))))
        VX = P["VX"]
        Ci = linalg.cho_solve(P["cC"], np.eye(p))
        RX = st.ZX - ZZL @ VX                                # T q p
        grad -= 2 * np.einsum("tqp,pr,tkr->qk", RX, Ci, VX)
    return dev, _pack(grad)


def _num_hess(fun, x, h=1e-5):
    """Central differences of an exact gradient, symmetrised."""
    m = len(x)
    H = np.empty((m, m))
    for j in range(m):
        e = np.zeros(m)
        e[j] = h * max(1.0, abs(x[j]))
        H[:, j] = (fun(x + e)[1] - fun(x - e)[1]) / (2 * e[j])
    return (H + H.T) / 2


def _minimise(st, k, reml, theta0, tol, max_iter):
    """BFGS, then Newton polish; returns theta, deviance, n_iter, decrement, history."""
    fun = lambda th: _deviance(th, st, k, reml)       # noqa: E731
    hist = {"deviance": []}
    # BFGS to a loose gradient (deviance units), then Newton steps to tol
    res = optimize.minimize(fun, theta0, jac=True, method="BFGS",
                            options={"gtol": 1e-5, "maxiter": max_iter})
    theta, dev = res.x, float(res.fun)
    n_iter = int(res.nit)
    hist["deviance"].append(dev)
    # the Newton decrement with BFGS's inverse Hessian; a Hessian by differences of the
    # exact gradient only if that does not meet tol
    g = res.jac
    dec = float(g @ res.hess_inv @ g) if np.all(np.isfinite(g)) else np.inf
    if 0 <= dec < tol:
        return theta, dev, n_iter, dec, hist
    for _ in range(20):
        dev, g = fun(theta)
        H = _num_hess(fun, theta)
        w, Q = np.linalg.eigh(H)
        floor = 1e-8 * max(np.max(np.abs(w)), 1.0)
        step = -(Q / np.maximum(w, floor)) @ (Q.T @ g)
        dec = float(-g @ step)                       # Newton decrement^2 (>= 0)
        if dec < tol:
            break
        t = 1.0
        while t > 1e-6:
            new, _ = fun(theta + t * step)
            if new <= dev:
                break
            t /= 2
        if t <= 1e-6:
            break                                    # no decrease possible: stalled
        theta = theta + t * step
        n_iter += 1
        hist["deviance"].append(fun(theta)[0])
    dev, g = fun(theta)
    return theta, dev, n_iter, dec, hist


def _start(st, k, L_full=None):
    if L_full is not None:                   # leading k factors of a larger fit
        G = L_full @ L_full.T
        w, U = np.linalg.eigh((G + G.T) / 2)
        F = U[:, ::-1][:, :k] * np.sqrt(np.clip(w[::-1][:k], 0, None))
        F = _to_trapezoid(F)
        F[np.abs(F) < 1e-8] = 0.0
        F[np.arange(k), np.arange(k)] += 1e-3    # off the singular point
        return _pack(F)
    return _pack(np.eye(st.q)[:, :k])


def fit_multilevel(st, k, *, reml=False, tol=1e-10, max_iter=1000, start=None,
                   warn=True):
    """Fit the rank-k mixed model by (restricted) maximum likelihood.

    Parameters
    ----------
    st : GroupStats
    k : int
        1 <= k <= q.
    reml : bool
    tol : float
        Bound on the Newton decrement ``g^T H^{-1} g`` of the profiled deviance (the
        deviance a further Newton step could still gain, times two).
    max_iter : int
        BFGS iteration cap.
    start : ndarray (q x k'), optional
        A relative factor to start from (its leading k factors).

    Returns
    -------
    SolverResult
        ``coef`` beta (original units); ``extra``: ``L`` (relative factor, original
        units of Z and y), ``G`` (random-effects covariance), ``sigma2``, ``B``,
        ``Sigma_w``, ``llf``, ``beta_s``, ``L_s`` (equilibrated).
    """
    t0 = time.perf_counter()
    q = st.q
    if not 1 <= k <= q:
        raise ValueError(f"k must be in [1, {q}]; got {k}")
    theta0 = _start(st, k, start)
    theta, dev, n_iter, dec, hist = _minimise(st, k, reml, theta0, tol, max_iter)
    converged = bool(dec < tol or dec < 1e-6 * tol * st.nobs)
    if not converged and warn:
        warn_not_converged("the mixed-model fit", n_iter, dec, tol)
    return _result(st, k, reml, theta, dev, n_iter, converged, dec, hist, t0)


def _result(st, k, reml, theta, dev, n_iter, converged, dec, hist, t0):
    L_s = _unpack(theta, st.q, k)
    P = _pieces(st, L_s)
    n, p = st.nobs, st.p
    m = n - p if reml else n
    s2_s = P["r2"] / m
    llf = -0.5 * dev
    if not reml:
        # -2 l in the original units: the scale of y enters through n log sy^2
        llf -= n * np.log(st.sy)
    else:
        llf -= (n - p) * np.log(st.sy) + float(np.sum(np.log(st.Dx)))
    beta = P["beta"] * st.sy / st.Dx
    L = L_s / st.Dz[:, None]
    sigma2 = s2_s * st.sy ** 2
    G = sigma2 * L @ L.T
    U, sv, _ = np.linalg.svd(L, full_matrices=False)
    B = U[:, :k]
    Sigma_w = B.T @ G @ B
    extra = dict(L=L, G=(G + G.T) / 2, sigma2=float(sigma2), B=B, Sigma_w=Sigma_w,
                 llf=float(llf), beta_s=P["beta"], L_s=L_s, theta=theta, reml=reml,
                 decrement=dec, time=time.perf_counter() - t0, k=k)
    return SolverResult(beta, converged=converged, n_iter=n_iter, history=hist,
                        objective=float(dev), extra=extra,
                        stop_reason="converged" if converged else "stalled")


def _substats(st, cols):
    """The statistics of the random part restricted to the columns ``cols``."""
    c = np.asarray(cols)
    sub = GroupStats(st.ZZ[:, c][:, :, c], st.ZX[:, c], st.Zy[:, c], st.XX, st.Xy,
                     st.yy, st.n, st.Dx, st.Dz[c], st.sy)
    sub.XXt, sub.Xyt, sub.yyt = st.XXt, st.Xyt, st.yyt
    return sub


def fit_restricted(st, cols, k, **kwargs):
    """:func:`fit_multilevel` with the random part restricted to the columns ``cols``
    (e.g. the random intercept alone), embedded back into the q columns (zero rows of L
    and G elsewhere); ``extra["cols"]`` records the columns."""
    sub = _substats(st, cols)
    sol = fit_multilevel(sub, k, **kwargs)
    ex = sol.extra
    q = st.q
    for key in ("L", "B"):
        full = np.zeros((q, ex[key].shape[1]))
        full[list(cols)] = ex[key]
        ex[key] = full
    G = np.zeros((q, q))
    G[np.ix_(list(cols), list(cols))] = ex["G"]
    ex["G"] = G
    ex["cols"] = list(cols)
    return sol


def n_cov_params(q, k):
    """Free parameters of a rank-k q x q covariance: q k - k (k - 1) / 2."""
    return q * k - k * (k - 1) // 2


def select_k_multilevel(st, ks=None, *, reml=False, tol=1e-10, max_iter=1000,
                        criterion="bic", intercept_col=None):
    """Choose the random part's rank by an information criterion of the marginal
    likelihood, each candidate fitted.

    Candidates: ``"intercept"`` (the random intercept alone, when ``intercept_col`` is
    given and q > 1) and the ranks ``ks`` (default 1..q). The criteria, with c the
    covariance parameters (:func:`n_cov_params`):

    * ``"bic"``: ``-2 llf + (p + 1 + c) log n`` (statsmodels' BIC, n the rows);
    * ``"bic_groups"``: ``-2 llf + (p + 1) log n + c log T``: the covariance parameters
      are estimated from T groups (the penalty of Delattre, Lavielle and Poursat, 2014,
      for random-effects variances); it takes larger random parts;
    * ``"aic"``: ``-2 llf + 2 (p + 1 + c)``.

    The full-rank fit (k = q) comes first from the identity start; each smaller k starts
    from the leading factors of the fit one rank above (the best rank-k approximation of
    its covariance). Ties go to the simplest candidate.

    Returns
    -------
    choice : int or "intercept"
    table : dict candidate -> (llf, n_params, criterion, converged)
    sols : dict candidate -> SolverResult
    """
    if criterion not in ("bic", "bic_groups", "aic"):
        raise ValueError(f"criterion must be 'bic', 'bic_groups' or 'aic'; got "
                         f"{criterion!r}")
    q, p = st.q, st.p
    ks = sorted(set(range(1, q + 1) if ks is None else ks), reverse=True)
    logn, logT = np.log(st.nobs), np.log(st.T)

    def crit(llf, c):
        if criterion == "aic":
            return -2 * llf + 2 * (p + 1 + c)
        if criterion == "bic":
            return -2 * llf + (p + 1 + c) * logn
        return -2 * llf + (p + 1) * logn + c * logT

    sols, table = {}, {}
    prev = None
    for k in ks:
        sol = fit_multilevel(st, k, reml=reml, tol=tol, max_iter=max_iter,
                             start=prev, warn=False)
        prev = sol.extra["L_s"]
        sols[k] = sol
    if intercept_col is not None and q > 1:
        sols["intercept"] = fit_restricted(st, [intercept_col], 1, reml=reml, tol=tol,
                                           max_iter=max_iter, warn=False)
    order = (["intercept"] if "intercept" in sols else []) + sorted(ks)
    for c in order:
        sol = sols[c]
        ncov = 1 if c == "intercept" else n_cov_params(q, c)
        table[c] = (sol.extra["llf"], p + 1 + ncov, crit(sol.extra["llf"], ncov),
                    sol.converged)
    scores = np.array([table[c][2] for c in order])
    best = scores.min()
    choice = order[int(np.flatnonzero(scores <= best + 1e-8 * abs(best))[0])]
    if not sols[choice].converged:
        warn_not_converged("the mixed-model fit", sols[choice].n_iter,
                           sols[choice].extra["decrement"], tol)
    return choice, table, sols


def _full_deviance(par, st, k):
    """-2 log-likelihood (ML) in (beta, theta, sigma^2), equilibrated, and its gradient:

    -2 l = sum_t log|A_t| + n log(2 pi sigma^2) + Q / sigma^2,
    Q = sum_t e_t^T e_t - (L^T g_t)^T A_t^{-1} (L^T g_t),  e_t = y_t - X_t beta,
    g_t = Z_t^T e_t; dQ/dbeta = -2 (c - C beta), dQ/dL = -2 sum_t (g_t - Z_t^T Z_t L v_t)
    v_t^T with v_t = A_t^{-1} L^T g_t."""
    p, q = st.p, st.q
    beta, s2 = par[:p], par[-1]
    L = _unpack(par[p:-1], q, k)
    ZZL = st.ZZ @ L
    Ai, logdetA = _inv_logdet(L.T @ ZZL + np.eye(k))
    g = st.Zy - st.ZX @ beta
    Lg = g @ L
    v = np.einsum("tkl,tl->tk", Ai, Lg)
    ee = st.yy - 2 * beta @ st.Xy + beta @ st.XX @ beta
    Q = ee - np.sum(Lg * v)
    n = st.nobs
    dev = np.sum(logdetA) + n * (_LOG2PI + np.log(s2)) + Q / s2
    LZX = L.T @ st.ZX
    C = st.XX - np.einsum("tkp,tkl,tlr->pr", LZX, Ai, LZX)
    c = st.Xy - np.einsum("tkp,tk->p", LZX, np.einsum("tkl,tl->tk", Ai, st.Zy @ L))
    gb = -2 * (c - C @ beta) / s2
    gL = 2 * np.einsum("tqk,tkl->ql", ZZL, Ai) - (2 / s2) * (
        (g - np.einsum("tqk,tk->tq", ZZL, v)).T @ v)
    gs = n / s2 - Q / s2 ** 2
    return float(dev), np.concatenate([gb, _pack(gL), [gs]])


def cov_fixed(st, sol):
    """Covariance of beta (original units) from the observed information of the
    (unprofiled) likelihood in (beta, theta, sigma^2): the inverse of the beta block of
    its Schur complement, ``2 (H_bb - H_bt H_tt^+ H_tb)^{-1}`` with H the Hessian of
    -2 l (central differences of the exact gradient). A singular variance block (a
    variance at zero) is pseudo-inverted."""
    ex = sol.extra
    if "cols" in ex:
        st = _substats(st, ex["cols"])
    k, p = ex["k"], st.p
    s2 = float(ex["sigma2"] / st.sy ** 2)
    par = np.concatenate([ex["beta_s"], ex["theta"], [s2]])
    fun = lambda x: _full_deviance(x, st, k)       # noqa: E731
    H = _num_hess(fun, par, h=1e-5)
    Hbb, Hbt, Htt = H[:p, :p], H[:p, p:], H[p:, p:]
    S = Hbb - Hbt @ linalg.pinvh(Htt, atol=1e-10 * max(1.0, np.abs(Htt).max())) @ Hbt.T
    cov_s = 2 * linalg.pinvh((S + S.T) / 2)
    f = st.sy / st.Dx
    return cov_s * np.outer(f, f)


# ---------------------------------------------------------------------------------------
# separate task variances: sigma_t^2 ~ inverse gamma(a, b), integrated out
# ---------------------------------------------------------------------------------------

def _separate_deviance(par, st, k):
    """-2 log marginal likelihood of the separate-variance model and its gradient in
    ``par = (beta, theta, log a, log b)`` (equilibrated).

    Group t: ``y_t | sigma_t^2 ~ N(X_t beta, sigma_t^2 (I + Z_t L L^T Z_t^T))`` and
    ``sigma_t^2 ~ IG(a, b)``; integrating sigma_t^2 out (a multivariate t),

        l_t = lgamma(a + n_t/2) - lgamma(a) + a log b - (a + n_t/2) log(b + Q_t/2)
              - log|A_t| / 2 - n_t/2 log(2 pi),

    ``Q_t = e_t^T W_t e_t`` as in :func:`_full_deviance`. With ``w_t = (a + n_t/2) / (b +
    Q_t/2)`` (= E[1/sigma_t^2 | y_t]): ``dl/dbeta = sum_t w_t X_t^T W_t e_t``,
    ``dl/dL = sum_t -Z_t^T Z_t L A_t^{-1} + w_t (g_t - Z_t^T Z_t L v_t) v_t^T``,
    ``dl/da = sum_t psi(a + n_t/2) - psi(a) + log b - log(b + Q_t/2)``,
    ``dl/db = sum_t a/b - w_t``."""
    from scipy import special

    p, q = st.p, st.q
    beta = par[:p]
    a, b = np.exp(par[-2]), np.exp(par[-1])
    L = _unpack(par[p:-2], q, k)
    ZZL = st.ZZ @ L
    try:
        Ai, logdetA = _inv_logdet(L.T @ ZZL + np.eye(k))
    except np.linalg.LinAlgError:
        return np.inf, np.zeros_like(par)
    g = st.Zy - st.ZX @ beta                                   # T q
    Lg = g @ L
    v = np.einsum("tkl,tl->tk", Ai, Lg)
    ee = st.yyt - 2 * st.Xyt @ beta + np.einsum("tpr,p,r->t", st.XXt, beta, beta)
    Q = np.maximum(ee - np.sum(Lg * v, 1), 0.0)
    n = st.n
    ah = a + n / 2
    bq = b + Q / 2
    ll = (special.gammaln(ah) - special.gammaln(a) + a * np.log(b) - ah * np.log(bq)
          - 0.5 * logdetA - 0.5 * n * _LOG2PI)
    w = ah / bq
    Xe = st.Xyt - np.einsum("tpr,r->tp", st.XXt, beta)         # X_t^T e_t
    LZX = L.T @ st.ZX                                          # T k p
    gb = np.sum(w[:, None] * (Xe - np.einsum("tkp,tk->tp", LZX, v)), 0)
    gL = -np.einsum("tqk,tkl->ql", ZZL, Ai) + (
        (w[:, None] * (g - np.einsum("tqk,tk->tq", ZZL, v))).T @ v)
    ga = np.sum(special.digamma(ah) - special.digamma(a) + np.log(b) - np.log(bq))
    gbb = np.sum(a / b - w)
    grad = np.concatenate([gb, _pack(gL), [ga * a, gbb * b]])
    return float(-2 * np.sum(ll)), -2 * grad


def fit_separate(st, common, *, tol=1e-10, max_iter=1000, warn=True):
    """The separate-variance model at the rank (and columns) of a common-variance fit,
    started from it (``a`` = 5, ``b = a sigma^2``).

    Returns
    -------
    SolverResult
        As :func:`fit_multilevel`, with ``extra["a"], extra["b"]`` (the inverse-gamma
        prior of the sigma_t^2, b in the units of y^2) and ``extra["task_variance"] =
        "separate"``; ``sigma2 = b / a`` (the prior's harmonic mean) and ``G = (b / a) L
        L^T``.
    """
    t0 = time.perf_counter()
    ex = common.extra
    sub = _substats(st, ex["cols"]) if "cols" in ex else st
    k = ex["k"]
    s2 = ex["sigma2"] / st.sy ** 2
    a0 = 5.0
    par0 = np.concatenate([ex["beta_s"], ex["theta"], [np.log(a0), np.log(a0 * s2)]])
    fun = lambda x: _separate_deviance(x, sub, k)          # noqa: E731
    res = optimize.minimize(fun, par0, jac=True, method="BFGS",
                            options={"gtol": 1e-2, "maxiter": max_iter})
    par, n_iter = res.x, int(res.nit)
    dec = np.inf
    for _ in range(20):
        dev, gr = fun(par)
        H = _num_hess(fun, par)
        w, Qm = np.linalg.eigh(H)
        step = -(Qm / np.maximum(w, 1e-8 * max(np.abs(w).max(), 1.0))) @ (Qm.T @ gr)
        dec = float(-gr @ step)
        if dec < tol:
            break
        t = 1.0
        while t > 1e-6 and fun(par + t * step)[0] > dev:
            t /= 2
        if t <= 1e-6:
            break
        par, n_iter = par + t * step, n_iter + 1
    dev, gr = fun(par)
    converged = bool(dec < tol)
    if not converged and warn:
        warn_not_converged("the separate-variance fit", n_iter, dec, tol)
    p = st.p
    a, b_s = float(np.exp(par[-2])), float(np.exp(par[-1]))
    L_s = _unpack(par[p:-2], sub.q, k)
    L = L_s / sub.Dz[:, None]
    b = b_s * st.sy ** 2
    G = (b / a) * L @ L.T
    U = np.linalg.svd(L, full_matrices=False)[0][:, :k]
    extra = dict(ex)
    extra.update(L=L, G=(G + G.T) / 2, sigma2=b / a, B=U, Sigma_w=U.T @ G @ U,
                 llf=float(-0.5 * dev - st.nobs * np.log(st.sy)), beta_s=par[:p],
                 L_s=L_s, theta=par[p:-2], a=a, b=b, par=par, decrement=dec,
                 task_variance="separate", time=time.perf_counter() - t0)
    if "cols" in ex:
        q, cols = st.q, ex["cols"]
        for key in ("L", "B"):
            full = np.zeros((q, extra[key].shape[1]))
            full[cols] = extra[key]
            extra[key] = full
        Gf = np.zeros((q, q))
        Gf[np.ix_(cols, cols)] = extra["G"]
        extra["G"] = Gf
    beta = par[:p] * st.sy / st.Dx
    return SolverResult(beta, converged=converged, n_iter=n_iter,
                        history={"deviance": [float(dev)]}, objective=float(dev),
                        extra=extra, stop_reason="converged" if converged else "stalled")


def cov_fixed_separate(st, sol):
    """Covariance of beta under the separate-variance model (observed information,
    Schur complement as :func:`cov_fixed`)."""
    ex = sol.extra
    sub = _substats(st, ex["cols"]) if "cols" in ex else st
    p = st.p
    H = _num_hess(lambda x: _separate_deviance(x, sub, ex["k"]), ex["par"], h=1e-5)
    Hbb, Hbt, Htt = H[:p, :p], H[:p, p:], H[p:, p:]
    S = Hbb - Hbt @ linalg.pinvh(Htt, atol=1e-10 * max(1.0, np.abs(Htt).max())) @ Hbt.T
    f = st.sy / st.Dx
    return 2 * linalg.pinvh((S + S.T) / 2) * np.outer(f, f)


def cov_mean_params(st, sol):
    """Joint covariance of (beta_s, theta), the parameters the predictions' means depend
    on (equilibrated coordinates), from the observed information of the likelihood of
    the fit (common: in (beta, theta, sigma^2); separate: in (beta, theta, log a,
    log b)): the (beta, theta) block of ``2 H^+``. Returns (par, cov, p, k, sub) with
    ``sub`` the statistics of the fitted columns."""
    ex = sol.extra
    sub = _substats(st, ex["cols"]) if "cols" in ex else st
    k, p = ex["k"], st.p
    if ex.get("task_variance") == "separate":
        par = ex["par"]
        fun = lambda x: _separate_deviance(x, sub, k)      # noqa: E731
        m = len(par) - 2
    else:
        par = np.concatenate([ex["beta_s"], ex["theta"],
                              [float(ex["sigma2"] / st.sy ** 2)]])
        fun = lambda x: _full_deviance(x, sub, k)          # noqa: E731
        m = len(par) - 1
    H = _num_hess(fun, par, h=1e-5)
    cov = 2 * linalg.pinvh(H, atol=1e-10 * max(1.0, np.abs(H).max()))
    return par[:m], cov[:m, :m], p, k, sub
