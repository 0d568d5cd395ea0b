# Over 600 lines: one algorithm: the profiled likelihood, its derivatives and the Newton fit.
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

The profiled deviance is minimised over theta by damped Newton steps, the Hessian by
central differences of the exact gradient; the deviance is evaluated at all 2m + 1
points of a Hessian (and all trial steps of a line search) in one batched numpy call
(stacked T x k x k algebra), so a Newton iteration costs about one evaluation. The fit
stops on the Newton decrement. It starts from a moment estimate (:func:`moment_start`).
Choosing k fits the candidates in lockstep (small q) or bottom up, stopping at the rank
whose gradient in Lambda = L L^T is positive semi-definite (:func:`_lambda_gradient`:
no added column lowers the deviance, so every larger rank has the same optimum).
Everything runs in equilibrated coordinates (columns of X and Z at unit root mean square,
y at unit standard deviation), and is mapped back.

Public functions
----------------
group_stats            per-group statistics from rows
group_stats_from_sums  the same from per-group raw sums (Dask partitions)
fit_multilevel         the fit at a given k (ML or REML)
select_k_multilevel    k by BIC over the random intercept and 1..q
fit_separate           separate task variances (inverse-gamma prior), from a common fit
moment_start           a moment estimate of the relative covariance (the start)
heterogeneity_grid     the likelihood of the task variances' heterogeneity at a common fit
n_params               free parameters at k
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy import linalg, sparse

from ._base import SolverResult, warn_not_converged

__all__ = ["group_stats", "group_stats_from_sums", "fit_multilevel",
           "select_k_multilevel", "n_params", "heterogeneity_grid", "GroupStats"]

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


def group_stats_from_sums(AA, Ay, yy, n, xcols, zcols, ycol_sum):
    """:class:`GroupStats` from per-group raw sums of the columns of a matrix A (no row
    needed): ``AA`` (T x w x w) the sums of ``a a^T``, ``Ay`` (T x w) of ``a y``, ``yy``
    (T,) of ``y^2``, ``n`` (T,) the rows, with X = A[:, xcols], Z = A[:, zcols] and
    ``ycol_sum`` (T,) the sums of y. The sums of two row sets add, so they can be
    computed where the rows live (Dask partitions) and merged.

    The same statistics as :func:`group_stats` of the rows (up to rounding): the column
    scales are ``D = sqrt(diag(sum_t A_t^T A_t) / n)`` and ``s_y = sqrt(sum y^2 / n -
    (sum y / n)^2)``."""
    AA = np.asarray(AA, dtype=float)
    Ay = np.asarray(Ay, dtype=float)
    yy = np.asarray(yy, dtype=float)
    n = np.asarray(n, dtype=float)
    xc, zc = np.asarray(xcols), np.asarray(zcols)
    ntot = float(n.sum())
    diag = np.einsum("tjj->j", AA) / ntot
    D = np.sqrt(np.clip(diag, 0, None))
    D = np.where(D > 0, D, 1.0)
    Dx, Dz = D[xc], D[zc]
    var = float(yy.sum()) / ntot - (float(np.sum(ycol_sum)) / ntot) ** 2
    sy = float(np.sqrt(var)) if var > 0 else 1.0
    ZZ = AA[:, zc][:, :, zc] / np.outer(Dz, Dz)
    ZX = AA[:, zc][:, :, xc] / np.outer(Dz, Dx)
    Zy = Ay[:, zc] / (Dz * sy)
    XXt = AA[:, xc][:, :, xc] / np.outer(Dx, Dx)
    Xyt = Ay[:, xc] / (Dx * sy)
    yyt = yy / sy ** 2
    st = GroupStats(ZZ, ZX, Zy, XXt.sum(0), Xyt.sum(0), float(yyt.sum()), n, Dx, Dz, sy)
    st.XXt, st.Xyt, st.yyt = XXt, Xyt, yyt
    return st


def n_params(p, q, k):
    """Free parameters at rank k: beta (p), L (q k - k (k - 1) / 2) and sigma^2 (1)."""
    return p + q * k - k * (k - 1) // 2 + 1


def tril_index(q, k):
    return [(i, j) for i in range(q) for j in range(min(i + 1, k))]


def unpack_tril(theta, q, k):
    L = np.zeros((q, k))
    idx = tril_index(q, k)
    L[tuple(np.array(idx).T)] = theta
    return L


def _pack(L):
    q, k = L.shape
    return np.array([L[i, j] for i, j in tril_index(q, k)])


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


# ---------------------------------------------------------------------------------------
# batched evaluation: P parameter points at once (finite-difference Hessians and line
# searches cost one vectorised call each)
# ---------------------------------------------------------------------------------------

_TRIL = {}


def _tril_arrays(q, k):
    key = (q, k)
    if key not in _TRIL:
        idx = np.array(tril_index(q, k)).reshape(-1, 2)
        _TRIL[key] = (idx[:, 0], idx[:, 1])
    return _TRIL[key]


def unpack_batch(Theta, q, k):
    """L (P x q x k) from P rows of free entries."""
    r, c = _tril_arrays(q, k)
    L = np.zeros((Theta.shape[0], q, k))
    L[:, r, c] = Theta
    return L


def _pack_batch(G, q, k):
    r, c = _tril_arrays(q, k)
    return G[:, r, c]


def _inv_logdet_batch(A):
    """Inverses and log-determinants of (P x T x k x k) symmetric matrices, and a (P,)
    mask of the points where some A_t is not positive definite (their values are junk)."""
    k = A.shape[-1]
    if k == 1:
        a = A[..., 0, 0]
        bad = np.any(a <= 0, axis=-1)
        a = np.where(a > 0, a, 1.0)
        return (1.0 / a)[..., None, None], np.log(a), bad
    if k == 2:
        a, b, d = A[..., 0, 0], A[..., 0, 1], A[..., 1, 1]
        det = a * d - b * b
        ok = (det > 0) & (a > 0)
        bad = ~np.all(ok, axis=-1)
        det = np.where(ok, det, 1.0)
        V = np.empty_like(A)
        V[..., 0, 0], V[..., 1, 1] = d / det, a / det
        V[..., 0, 1] = V[..., 1, 0] = -b / det
        return V, np.log(det), bad
    try:
        c = np.linalg.cholesky(A)
        bad = np.zeros(A.shape[0], bool)
    except np.linalg.LinAlgError:
        w = np.linalg.eigvalsh(A)
        bad = np.any(w[..., 0] <= 0, axis=-1)
        A = A.copy()
        A[bad] = np.eye(k)
        c = np.linalg.cholesky(A)
    logdet = 2 * np.sum(np.log(np.diagonal(c, axis1=-2, axis2=-1)), axis=-1)
    Ai = np.linalg.inv(A)
    return (Ai + np.swapaxes(Ai, -1, -2)) / 2, logdet, bad


def _chunks(P, st, width):
    """Slices of at most ~4e6 array elements per batched call (memory)."""
    per = max(1, int(4e6 // max(1, st.T * st.q * width)))
    return [slice(i, min(P, i + per)) for i in range(0, P, per)]


def _augmented(st):
    """``Z_t^T [X_t y_t]`` (T x q x (p+1)) and ``[X y]^T [X y]``, cached on ``st``."""
    if not hasattr(st, "_ZXy"):
        st._ZXy = np.concatenate([st.ZX, st.Zy[:, :, None]], axis=2)
        M = np.empty((st.p + 1, st.p + 1))
        M[:-1, :-1], M[:-1, -1], M[-1, :-1], M[-1, -1] = st.XX, st.Xy, st.Xy, st.yy
        st._XyXy = M
    return st._ZXy, st._XyXy


def _quad(L, S):
    """``L^T S_t L`` for P factors L (P x q x k) and T symmetric S (T x q x q): (P x T x k
    x k), as one 2-D product (stacked small matmuls are slow in numpy)."""
    P, q, k = L.shape
    T = S.shape[0]
    LL = (L[:, :, None, :, None] * L[:, None, :, None, :]).reshape(P, q * q, k * k)
    out = S.reshape(T, q * q) @ LL.transpose(1, 0, 2).reshape(q * q, P * k * k)
    return out.reshape(T, P, k, k).transpose(1, 0, 2, 3)


def _left(L, B):
    """``L^T B_t`` for L (P x q x k) and B (T x q x a): (P x T x k x a)."""
    P, q, k = L.shape
    T, _, a = B.shape
    out = B.transpose(0, 2, 1).reshape(T * a, q) @ L.transpose(1, 0, 2).reshape(q, P * k)
    return out.reshape(T, a, P, k).transpose(2, 0, 3, 1)


def _smallmul(A, B):
    """``A @ B`` over stacked small matrices (k x k times k x a) by k broadcast
    products."""
    out = A[..., :, 0, None] * B[..., None, 0, :]
    for j in range(1, A.shape[-1]):
        out = out + A[..., :, j, None] * B[..., None, j, :]
    return out


def _deviance_batch(Theta, st, k, reml, grad=True):
    """:func:`_deviance` at the P rows of ``Theta``: deviances (P,) (inf where
    infeasible) and gradients (P x len(theta)).

    With ``[X y]`` augmented, ``M = [X y]^T W [X y] = [X y]^T [X y] - sum_t
    (L^T Z_t^T [X_t y_t])^T A_t^{-1} (L^T Z_t^T [X_t y_t])`` holds C, c and y^T W y;
    ``v_t = A_t^{-1} L^T Z_t^T (y_t - X_t beta)`` and ``g_t = Z_t^T (y_t - X_t beta)``
    are products with ``(-beta, 1)``."""
    Theta = np.atleast_2d(Theta)
    P = Theta.shape[0]
    sl = _chunks(P, st, k + st.p + st.q)
    if len(sl) > 1:
        outs = [_deviance_batch(Theta[s], st, k, reml, grad) for s in sl]
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])
    n, p, q = st.nobs, st.p, st.q
    ZXy, XyXy = _augmented(st)
    m = n - p if reml else n
    L = unpack_batch(Theta, q, k)                            # P q k
    T, a = st.T, p + 1
    Ai, logdetA, bad = _inv_logdet_batch(_quad(L, st.ZZ) + np.eye(k))
    LZ = _left(L, ZXy)                                        # P T k a
    VZ = _smallmul(Ai, LZ)                                    # P T k a
    M = XyXy - np.swapaxes(LZ.reshape(P, T * k, a), 1, 2) @ VZ.reshape(P, T * k, a)
    C = M[:, :p, :p]
    C = (C + np.swapaxes(C, 1, 2)) / 2
    c = M[:, :p, p]
    if reml:
        try:
            cC = np.linalg.cholesky(C)
        except np.linalg.LinAlgError:
            badC = np.linalg.eigvalsh(C)[:, 0] <= 0
            bad = bad | badC
            C = C.copy()
            C[badC] = np.eye(p)
            cC = np.linalg.cholesky(C)
    beta = np.linalg.solve(C, c[..., None])[..., 0]           # P p
    r2 = M[:, p, p] - np.sum(c * beta, axis=1)
    bad = bad | ~(r2 > 0)
    r2 = np.where(bad, 1.0, r2)
    dev = np.sum(logdetA, axis=1) + m * (1 + _LOG2PI + np.log(r2 / m))
    if reml:
        dev = dev + 2 * np.sum(np.log(np.diagonal(cC, axis1=1, axis2=2)), axis=1)
    dev = np.where(bad, np.inf, dev)
    if not grad:
        return dev, None
    bv = np.concatenate([-beta, np.ones((P, 1))], axis=1)    # P a
    v = np.sum(VZ * bv[:, None, None, :], axis=-1)            # P T k
    gres = (ZXy.reshape(T * q, a) @ bv.T).reshape(T, q, P).transpose(2, 0, 1)
    ZZL = (st.ZZ.reshape(T * q, q) @ L.transpose(1, 0, 2).reshape(q, P * k)).reshape(
        T, q, P, k).transpose(2, 0, 1, 3)                     # P T q k
    resid = gres - np.sum(ZZL * v[:, :, None, :], axis=-1)   # P T q
    G = 2 * np.sum(_smallmul(ZZL, Ai), axis=1) - (2 * m / r2)[:, None, None] * (
        np.swapaxes(resid, 1, 2) @ v)
    if reml:
        Ci = np.linalg.inv(C)
        VX = VZ[..., :p]
        RX = st.ZX - ZZL @ VX                                 # P T q p
        G -= 2 * np.sum(RX @ Ci[:, None] @ np.swapaxes(VX, 2, 3), axis=1)
    g = _pack_batch(G, q, k)
    g[bad] = 0.0
    return dev, g


def _newton_multi(fun, starts, frees, tol, max_iter, h=1e-5, max_step=10.0):
    """:func:`_newton` on several problems in lockstep over one function: problem i
    varies the coordinates ``frees[i]`` of its start (the others stay fixed), and each
    round evaluates every unfinished problem's point set (its Hessian's 2m + 1 points, or
    its line search's trial steps) in one batched call of ``fun``.

    Returns a list of (x, f, n_iter, decrement, history).
    """
    ts = 0.5 ** np.arange(1, 13)
    probs = []
    for x0, free in zip(starts, frees):
        x0 = np.asarray(x0, dtype=float)
        fr = np.asarray(free)
        m = len(fr)
        rows = np.arange(m)
        probs.append(dict(x=x0, free=fr, m=m, up=1 + rows, dn=1 + m + rows,
                          trial=x0, f=np.inf, g=None, step=None, dec=np.inf, it=0,
                          hist=[], done=False, search=False))
    d = len(probs[0]["x"]) if probs else 0
    while True:
        live = [pr for pr in probs if not pr["done"]]
        if not live:
            break
        blocks = []
        for pr in live:
            fr = pr["free"]
            if pr["search"]:
                full = np.zeros((len(ts), d))
                full[:, fr] = ts[:, None] * pr["step"]
                blocks.append(pr["x"] + full)
            else:
                t = pr["trial"]
                e = h * np.maximum(1.0, np.abs(t[fr]))
                P = np.empty((2 * pr["m"] + 1, d))
                P[:] = t
                P[pr["up"], fr] += e
                P[pr["dn"], fr] -= e
                pr["e"] = e
                blocks.append(P)
        F, G = fun(blocks[0] if len(blocks) == 1 else np.concatenate(blocks))
        pos = 0
        for pr, blk in zip(live, blocks):
            nb = len(blk)
            Fi = F[pos:pos + nb]
            Gi = G[pos:pos + nb]
            pos += nb
            fr, m = pr["free"], pr["m"]
            if pr["search"]:
                pr["search"] = False
                ok = np.flatnonzero(Fi <= pr["f"])
                if len(ok) == 0:
                    pr["done"] = True               # stalled: no decrease
                else:
                    pr["trial"] = blk[ok[0]]
                continue
            f = float(Fi[0])
            if not f <= pr["f"]:                    # no decrease (or infeasible)
                if pr["g"] is None:
                    pr["done"] = True               # the start is infeasible
                else:
                    pr["search"] = True
                continue
            x = pr["trial"]
            Gf = Gi[:, fr]
            g = Gf[0]
            pr["x"], pr["f"], pr["g"] = x, f, g
            if np.isfinite(Fi[1:]).all():
                H = (Gf[1:m + 1] - Gf[m + 1:]).T / (2 * pr["e"])
                H = (H + H.T) / 2
            else:                                   # at the feasible set's edge
                H = np.eye(m) * max(1.0, float(np.abs(g).max()))
            pr["hist"].append(f)
            w, Q = np.linalg.eigh(H)
            aw = np.abs(w)
            floor = 1e-8 * max(float(aw.max()), 1.0)
            step = -(Q / np.maximum(aw, floor)) @ (Q.T @ g)
            pr["dec"] = dec = float(-g @ step)
            if dec < tol or pr["it"] >= max_iter:
                pr["done"] = True
                continue
            nrm = math.sqrt(float(step @ step))
            xf = x[fr]
            cap = max_step * max(1.0, math.sqrt(float(xf @ xf)))
            if nrm > cap:
                step = step * (cap / nrm)
            pr["step"] = step
            trial = x.copy()
            trial[fr] += step
            pr["trial"] = trial
            pr["it"] += 1
    return [(pr["x"], pr["f"], pr["it"], pr["dec"], pr["hist"]) for pr in probs]


def _newton(fun, x0, tol, max_iter, h=1e-5, max_step=10.0):
    """Damped Newton on a smooth function with an exact gradient, the Hessian by central
    differences of the gradient; every point set (the 2m + 1 points of a Hessian, the
    trial steps of a line search) is one call of the batched ``fun(X) -> (f, g)``.

    The Hessian's eigenvalues are replaced by their absolute values (floored), so the step
    is a descent direction away from saddles; the step length is capped (``max_step`` in
    the parameters' norm) and halved until the function decreases (tried first in full:
    its Hessian's points are evaluated with it). Stops when the Newton decrement ``g^T
    H^{-1} g`` is below ``tol``, or when no step decreases the function (stalled).

    Returns x, f, n_iter, decrement, history (f per iteration).
    """
    return _newton_multi(fun, [x0], [np.arange(len(x0))], tol, max_iter, h, max_step)[0]


def moment_start(st):
    """A moment estimate of the relative covariance ``Lambda = G / sigma^2``
    (equilibrated): per-group least squares of the pooled residuals on Z_t, ``G =
    cov(b_t) - sigma^2 mean((Z_t^T Z_t)^{-1})`` over the groups with Z_t of full column
    rank, sigma^2 from their within-group residuals; clipped to positive
    semi-definite. The identity when fewer than q + 2 groups qualify."""
    q = st.q
    beta = np.linalg.lstsq(st.XX, st.Xy, rcond=None)[0]
    w, U = np.linalg.eigh(st.ZZ)
    ok = (w[:, 0] > 1e-8 * np.maximum(w[:, -1], 1e-300)) & (st.n > q)
    if ok.sum() < q + 2:
        return np.eye(q)
    ZZi = np.einsum("tij,tj,tkj->tik", U[ok], 1 / w[ok], U[ok])
    r = st.Zy[ok] - st.ZX[ok] @ beta                           # Z_t^T (y_t - X_t beta)
    b = np.einsum("tij,tj->ti", ZZi, r)
    rr = st.yyt[ok] - 2 * st.Xyt[ok] @ beta + np.einsum("tpr,p,r->t", st.XXt[ok],
                                                          beta, beta)
    s2 = max(float(np.sum(rr - np.sum(r * b, 1)) / np.sum(st.n[ok] - q)), 1e-12)
    G = np.cov(b.T).reshape(q, q) - s2 * ZZi.mean(0)
    w, U = np.linalg.eigh((G + G.T) / 2 / s2)
    w = np.clip(w, 1e-4 * max(w.max(), 1e-2), None)
    return (U * w) @ U.T


def _separate_batch(Par, st, k, grad=True):
    """:func:`_separate_deviance` at the P rows of ``Par``."""
    from scipy import special

    Par = np.atleast_2d(Par)
    P = Par.shape[0]
    sl = _chunks(P, st, k + 2 * st.p + st.q)
    if len(sl) > 1:
        outs = [_separate_batch(Par[s], st, k, grad) for s in sl]
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])
    p, q = st.p, st.q
    beta = Par[:, :p]
    a, b = np.exp(Par[:, -2]), np.exp(Par[:, -1])
    L = unpack_batch(Par[:, p:-2], q, k)
    T = st.T
    ZXy, _ = _augmented(st)
    Ai, logdetA, bad = _inv_logdet_batch(_quad(L, st.ZZ) + np.eye(k))
    bv = np.concatenate([-beta, np.ones((P, 1))], axis=1)     # P (p+1)
    gres = (ZXy.reshape(T * q, p + 1) @ bv.T).reshape(T, q, P).transpose(2, 0, 1)
    Lg = gres @ L                                             # P T k
    v = _smallmul(Ai, Lg[..., None])[..., 0]
    XXb = (st.XXt.reshape(T * p, p) @ beta.T).reshape(T, p, P).transpose(2, 0, 1)
    ee = st.yyt[None] - 2 * beta @ st.Xyt.T + np.sum(XXb * beta[:, None], -1)
    Q = np.maximum(ee - np.sum(Lg * v, -1), 0.0)               # P T
    n = st.n[None]
    ah = a[:, None] + n / 2
    bq = b[:, None] + Q / 2
    ll = (special.gammaln(ah) - special.gammaln(a)[:, None] + (a * np.log(b))[:, None]
          - ah * np.log(bq) - 0.5 * logdetA - 0.5 * n * _LOG2PI)
    dev = -2 * np.sum(ll, axis=1)
    bad = bad | ~np.isfinite(dev)
    dev = np.where(bad, np.inf, dev)
    if not grad:
        return dev, None
    w = ah / bq                                                 # P T
    Xe = st.Xyt[None] - XXb
    Lv = v @ np.swapaxes(L, 1, 2)                               # P T q
    ZXLv = np.sum(st.ZX[None] * Lv[..., None], axis=2)          # P T p
    gb = np.sum(w[..., None] * (Xe - ZXLv), 1)
    ZZL = (st.ZZ.reshape(T * q, q) @ L.transpose(1, 0, 2).reshape(q, P * k)).reshape(
        T, q, P, k).transpose(2, 0, 1, 3)                       # P T q k
    resid = gres - np.sum(ZZL * v[:, :, None, :], axis=-1)
    gL = -np.sum(_smallmul(ZZL, Ai), 1) + np.swapaxes(w[..., None] * resid, 1, 2) @ v
    ga = np.sum(special.digamma(ah) - np.log(bq), 1) + st.T * (
        np.log(b) - special.digamma(a))
    gbb = st.T * a / b - np.sum(w, 1)
    g = -2 * np.concatenate([gb, _pack_batch(gL, q, k), (ga * a)[:, None],
                             (gbb * b)[:, None]], axis=1)
    g[bad] = 0.0
    return dev, g



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
    dev, g = _deviance_batch(np.asarray(theta, dtype=float)[None], st, k, reml)
    return float(dev[0]), g[0]


def _num_hess(fun, x, h=1e-5):
    """Central differences of an exact gradient, symmetrised."""
    m = len(x)
    H = np.empty((m, m))
    for j in range(m):
        e = np.zeros(m)
        e[j] = h * max(1.0, abs(x[j]))
        H[:, j] = (fun(x + e)[1] - fun(x - e)[1]) / (2 * e[j])
    return (H + H.T) / 2


def _converged(dec, f, tol):
    """The Newton decrement below tol, or below the rounding of the deviance (a further
    step could not gain anything measurable)."""
    return bool(np.isfinite(f) and (dec < tol or dec < 100 * np.finfo(float).eps *
                                    abs(f)))


def _minimise(st, k, reml, theta0, tol, max_iter):
    """Damped Newton (:func:`_newton`) on the profiled deviance; returns theta, deviance,
    n_iter, decrement, history."""
    fun = lambda Th, grad=True: _deviance_batch(Th, st, k, reml, grad)   # noqa: E731
    theta, dev, n_iter, dec, hist = _newton(fun, theta0, tol, max_iter)
    return theta, float(dev), n_iter, dec, {"deviance": hist}


def _factors(Lam, k):
    """Lower trapezoidal q x k factor of the best rank-k approximation of Lam."""
    w, U = np.linalg.eigh((Lam + Lam.T) / 2)
    F = U[:, ::-1][:, :k] * np.sqrt(np.clip(w[::-1][:k], 0, None))
    F = _to_trapezoid(F)
    F[np.abs(F) < 1e-8] = 0.0
    F[np.arange(k), np.arange(k)] += 1e-3        # off the singular point
    return F


def _start(st, k, L_full=None):
    """Start: the leading k factors of a larger fit, else of the moment estimate."""
    Lam = moment_start(st) if L_full is None else L_full @ L_full.T
    return _pack(_factors(Lam, k))


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
    converged = _converged(dec, dev, tol)
    if not converged and warn:
        warn_not_converged("the mixed-model fit", n_iter, dec, tol)
    return _result(st, k, reml, theta, dev, n_iter, converged, dec, hist, t0)


def _result(st, k, reml, theta, dev, n_iter, converged, dec, hist, t0):
    L_s = unpack_tril(theta, st.q, k)
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


def _embed(sol, q, cols):
    """A fit on the columns ``cols`` of the random part, embedded into the q columns
    (zero rows of L and G elsewhere); ``extra["cols"]`` records the columns."""
    ex = sol.extra
    for key in ("L", "B"):
        full = np.zeros((q, ex[key].shape[1]))
        full[list(cols)] = ex[key]
        ex[key] = full
    G = np.zeros((q, q))
    G[np.ix_(list(cols), list(cols))] = ex["G"]
    ex["G"] = G
    ex["cols"] = list(cols)
    return sol


def fit_restricted(st, cols, k, **kwargs):
    """:func:`fit_multilevel` with the random part restricted to the columns ``cols``
    (e.g. the random intercept alone), embedded back into the q columns (zero rows of L
    and G elsewhere); ``extra["cols"]`` records the columns."""
    return _embed(fit_multilevel(_substats(st, cols), k, **kwargs), st.q, cols)


def n_cov_params(q, k):
    """Free parameters of a rank-k q x q covariance: q k - k (k - 1) / 2."""
    return q * k - k * (k - 1) // 2


class _LazySols(dict):
    """Candidate fits built when first read: the losers' SolverResults (a pass of
    :func:`_pieces` and an SVD each) are never built unless asked for. ``meta[c]`` holds
    each candidate's (llf, converged) for the criterion table."""

    def __init__(self):
        super().__init__()
        self.meta = {}

    def __getitem__(self, key):
        v = dict.__getitem__(self, key)
        if callable(v):
            v = v()
            dict.__setitem__(self, key, v)
        return v

    def llf_conv(self, key):
        if key in self.meta:
            return self.meta[key]
        sol = self[key]
        return sol.extra["llf"], sol.converged


def _llf_from_dev(st, dev, reml):
    """The log-likelihood in the original units from the equilibrated deviance (as
    :func:`_result`)."""
    n, p = st.nobs, st.p
    if not reml:
        return float(-0.5 * dev - n * np.log(st.sy))
    return float(-0.5 * dev - (n - p) * np.log(st.sy) - np.sum(np.log(st.Dx)))


def _lockstep(st, reml, kq, cands, Lam, icol, tol, max_iter, t0):
    """Candidates (ranks <= kq, and "intercept") fitted in lockstep in the rank-kq space:
    each is a rank-kq factor with some entries held at zero (rank k: the columns beyond
    k; the intercept: all but L[icol, 0]), started from the moment estimate ``Lam``.
    Returns a :class:`_LazySols`: the candidates' results are built when read."""
    q = st.q
    r, c = _tril_arrays(q, kq)
    starts, frees = [], []
    for cand in cands:
        if cand == "intercept":
            j0 = int(np.flatnonzero((r == icol) & (c == 0))[0])
            x0 = np.zeros(len(r))
            x0[j0] = np.sqrt(Lam[icol, icol])
            starts.append(x0)
            frees.append(np.array([j0]))
        else:
            Lk = np.zeros((q, kq))
            Lk[:, :cand] = _factors(Lam, cand)
            starts.append(Lk[r, c])
            frees.append(np.flatnonzero(c < cand))
    fun = lambda Th, grad=True: _deviance_batch(Th, st, kq, reml, grad)   # noqa: E731
    outs = _newton_multi(fun, starts, frees, tol, max_iter)
    sols = _LazySols()
    for cand, (x, f, n_iter, dec, hist) in zip(cands, outs):
        Lq = np.zeros((q, kq))
        Lq[r, c] = x
        conv = _converged(dec, f, tol)
        sols.meta[cand] = (_llf_from_dev(st, f, reml), conv)
        if cand == "intercept":
            def build(Lq=Lq, f=f, n_iter=n_iter, conv=conv, dec=dec, hist=hist):
                sub = _substats(st, [icol])
                sol = _result(sub, 1, reml, Lq[[icol], :1].ravel(), f, n_iter, conv,
                              dec, {"deviance": hist}, t0)
                return _embed(sol, q, [icol])
        else:
            def build(Lq=Lq, f=f, n_iter=n_iter, conv=conv, dec=dec, hist=hist,
                      cand=cand):
                return _result(st, cand, reml, _pack(Lq[:, :cand]), f, n_iter, conv,
                               dec, {"deviance": hist}, t0)
        sols[cand] = build
    return sols


def _lambda_gradient(st, L, reml):
    """The gradient D of the profiled deviance in the relative covariance Lambda = L L^T
    (equilibrated; the gradient in L is 2 D L):

        D = sum_t Z_t^T W_t Z_t - (m / r^2) sum_t s_t s_t^T  [- sum_t R_t C^{-1} R_t^T],

    ``Z_t^T W_t Z_t = Z_t^T Z_t - Z_t^T Z_t L A_t^{-1} L^T Z_t^T Z_t``, ``s_t = Z_t^T W_t
    (y_t - X_t beta)``, and for REML ``R_t = Z_t^T W_t X_t``. At a rank-k stationary
    point (D L = 0), D positive semi-definite means no added column lowers the deviance
    to second order."""
    P = _pieces(st, L)
    n, p = st.nobs, st.p
    m = n - p if reml else n
    ZZL, Ai = P["ZZL"], P["Ai"]
    s = P["g"] - np.einsum("tqk,tk->tq", ZZL, P["v"])
    D = np.sum(st.ZZ - ZZL @ Ai @ np.swapaxes(ZZL, 1, 2), 0) - (m / P["r2"]) * s.T @ s
    if reml:
        RX = st.ZX - ZZL @ P["VX"]
        D -= np.einsum("tqp,pr,tsr->qs", RX, linalg.cho_solve(P["cC"], np.eye(p)), RX)
    return (D + D.T) / 2


def _grow(st, reml, Lp, u, tol, max_iter, t0):
    """Rank k + 1 from a rank-k factor ``Lp`` and a direction ``u`` (the eigenvector of
    D's smallest eigenvalue): the column ``t u`` with t the best of a grid (one batched
    call), then Newton."""
    k = Lp.shape[1] + 1
    scale = np.sqrt(max(np.sum(Lp * Lp), 1e-4))
    ts = scale * 2.0 ** np.arange(2, -12, -1)
    pts = np.array([_pack(_to_trapezoid(np.column_stack([Lp, t * u]))) for t in ts])
    F, _ = _deviance_batch(pts, st, k, reml, grad=False)
    x0 = pts[int(np.argmin(F))]
    theta, dev, n_iter, dec, hist = _minimise(st, k, reml, x0, tol, max_iter)
    return _result(st, k, reml, theta, dev, n_iter, _converged(dec, dev, tol), dec, hist,
                   t0)


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

    Each rank k starts from the leading k factors of a moment estimate of the relative
    covariance (:func:`moment_start`), the random intercept from its diagonal entry;
    the candidates are fitted by Newton's method in lockstep (:func:`_newton_multi`:
    one batched deviance call per round for all of them). Ties go to the simplest
    candidate.

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

    t0 = time.perf_counter()
    Lam = moment_start(st)
    icol = intercept_col if (intercept_col is not None and q > 1) else None
    if q <= 2 or ks != list(range(q, 0, -1)):
        # small random part (or chosen ranks): every candidate in lockstep in the rank-q
        # space, one batched call per round
        cands = list(ks) + (["intercept"] if icol is not None else [])
        sols = _lockstep(st, reml, q, cands, Lam, icol, tol, max_iter, t0)
    else:
        # larger random part: bottom up. The intercept and rank 1 in lockstep; rank k + 1
        # from rank k plus the column along which the deviance falls fastest, unless
        # rank k is already optimal among rank k + 1 (then among every larger rank)
        cands = [1] + (["intercept"] if icol is not None else [])
        sols = _lockstep(st, reml, 1, cands, Lam, icol, tol, max_iter, t0)
        for k in range(2, q + 1):
            prev = sols[k - 1]
            Lp = prev.extra["L_s"]
            D = _lambda_gradient(st, Lp, reml)
            w, U = np.linalg.eigh(D)
            if w[0] >= -1e-6 * max(1.0, np.abs(w).max()):
                # D >= 0 and D L = 0: rank k - 1 is a stationary point of every larger
                # rank with a positive semi-definite Hessian in the added columns
                for kk in range(k, q + 1):
                    Lk = np.zeros((q, kk))
                    Lk[:, :k - 1] = Lp
                    sol = _result(st, kk, reml, _pack(Lk), prev.objective, 0,
                                  prev.converged, prev.extra["decrement"],
                                  {"deviance": []}, t0)
                    sol.extra["same_as_rank"] = k - 1
                    sols[kk] = sol
                break
            sols[k] = _grow(st, reml, Lp, U[:, 0], tol, max_iter, t0)
    table = {}
    order = (["intercept"] if "intercept" in sols else []) + sorted(ks)
    for c in order:
        llf, conv = sols.llf_conv(c)
        ncov = 1 if c == "intercept" else n_cov_params(q, c)
        table[c] = (llf, p + 1 + ncov, crit(llf, ncov), conv)
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
    L = unpack_tril(par[p:-1], q, k)
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
    dev, g = _separate_batch(np.asarray(par, dtype=float)[None], st, k)
    return float(dev[0]), g[0]


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
    fun = lambda X, grad=True: _separate_batch(X, sub, k, grad)   # noqa: E731
    par, dev, n_iter, dec, hist = _newton(fun, par0, tol, max_iter)
    converged = _converged(dec, dev, tol)
    if not converged and warn:
        warn_not_converged("the separate-variance fit", n_iter, dec, tol)
    p = st.p
    a, b_s = float(np.exp(par[-2])), float(np.exp(par[-1]))
    L_s = unpack_tril(par[p:-2], sub.q, k)
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
                        history={"deviance": hist}, objective=float(dev),
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


def cov_mean_params(st, sol, full=False):
    """Joint covariance of (beta_s, theta), the parameters the predictions' means depend
    on (equilibrated coordinates), from the observed information of the likelihood of
    the fit (common: in (beta, theta, sigma^2); separate: in (beta, theta, log a,
    log b)): the (beta, theta) block of ``2 H^+`` (``full=True``: all of it, with the
    variance parameters). Returns (par, cov, p, k, sub) with ``sub`` the statistics of
    the fitted columns."""
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
    if full:
        return par, cov, p, k, sub
    return par[:m], cov[:m, :m], p, k, sub


def heterogeneity_grid(st, sol, n_grid=64, tau_max=4.0):
    """The likelihood of the task variances' heterogeneity at a common-variance fit.

    With ``tau = 1 / a`` (a the inverse-gamma prior's shape; about the squared
    coefficient of variation of the sigma_t^2) and the prior's scale ``b = a sigma^2``,
    ``tau = 0`` is the common-variance model and ``tau > 0`` the separate one
    (:func:`_separate_deviance`). At the common fit's (beta, theta, sigma^2) the
    deviance is evaluated on a grid of tau in [0, tau_max], denser near 0 (one batched
    call), and turned into posterior weights under a flat prior on tau >= 0 (the
    trapezoid rule). When the common model is chosen, few groups cannot rule out a
    moderate heterogeneity; a new group's intervals average over it.

    Returns
    -------
    tau : ndarray (n_grid,)
    weight : ndarray (n_grid,), summing to one
    """
    ex = sol.extra
    sub = _substats(st, ex["cols"]) if "cols" in ex else st
    k = ex["k"]
    s2 = float(ex["sigma2"] / st.sy ** 2)
    tau = tau_max * (np.arange(n_grid) / (n_grid - 1)) ** 2
    t = tau[1:]
    P = np.column_stack([np.tile(np.concatenate([ex["beta_s"], ex["theta"]]),
                                 (len(t), 1)), -np.log(t), np.log(s2) - np.log(t)])
    dev = np.empty(n_grid)
    dev[1:], _ = _separate_batch(P, sub, k, grad=False)
    dev[0] = _full_deviance(np.concatenate([ex["beta_s"], ex["theta"], [s2]]), sub, k)[0]
    dens = np.exp(-0.5 * (dev - np.min(dev)))
    dens = np.where(np.isfinite(dens), dens, 0.0)
    w = np.zeros(n_grid)
    h = np.diff(tau)
    w[:-1] += h * dens[:-1] / 2
    w[1:] += h * dens[1:] / 2
    return tau, w / w.sum()
