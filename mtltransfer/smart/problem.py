"""The SMART problem in the source's singular coordinates (see docs/smart.rst).

Given the centred target moments ``Sxx = X^T X / n``, ``Sxy = X^T Y / n``,
``Syy = Y^T Y / n`` and the full SVD ``C0 = U0 S0 V0^T`` of the source coefficient matrix
(:func:`source_svd`), write ``U = U0 A`` and ``V = V0 B`` and let

    G = U0^T Sxx U0 (p x p),    H = U0^T Sxy V0 (p x q).

Because ``B^T B = I`` the data term of SMART is exactly

    f(A, d, B) = tr(Syy)/2 - sum_j d_j c_j + 1/2 sum_j d_j^2 g_j,
    c_j = a_j^T H b_j,  g_j = a_j^T G a_j,

with the Euclidean gradients

    grad_A f = G A diag(d^2) - H B diag(d),    grad_B f = -H^T A diag(d),

and, for fixed (A, B), the minimiser ``d_j = c_j / g_j`` over d (the closed-form d-step).
:class:`SmartProblem` holds G, H and these formulas, each written once; the ADMM
(:mod:`mtltransfer.smart.admm`) and the tuning (:mod:`mtltransfer.selection`) share it.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ..solvers.linear import reduced_rank
from ..solvers.stiefel import tangent_projection
from .directions import complement_basis, complement_start  # noqa: F401

__all__ = ["SOURCE_RTOL", "source_svd", "source_rank", "complement_basis",
           "check_source_svd", "closed_form_d", "SmartProblem", "resolve_problem"]

#: singular values of C0 below this fraction of the largest are taken as zero: a fitted
#: source carries no information there (a reduced-rank source is exactly low rank up to
#: rounding at ~1e-15, which must not decide the basis of U_perp)
SOURCE_RTOL = 1e-10

_TINY = 1e-300


# ---------------------------------------------------------------------------------------
# the source's singular coordinates
# ---------------------------------------------------------------------------------------
def source_svd(C0):
    r"""Full SVD of the source matrix: :math:`C_0 = U_0 \operatorname{diag}(s_0) V_0^\top`.

    (With V0's first ``len(s0)`` columns in the product when p < q.)

    Beyond the numerical rank r0 of C0 (:func:`source_rank`: singular values above
    ``SOURCE_RTOL * s_max``) the singular vectors are not determined by C0: any orthonormal
    basis of the complement will do, and LAPACK's choice jumps under perturbations at
    rounding level. Because the SMART penalty is the entrywise L1 norm of
    :math:`U_\perp^\top U` in that basis, a fixed, canonical basis is used instead
    (:func:`complement_basis`: the standard basis vectors projected on the complement and
    orthonormalised in pivoted order), so the fit depends continuously on C0 and leakage
    beyond rank(C0) is measured along the predictors' (responses') own axes.

    Parameters
    ----------
    C0 : ndarray (p, q)
        Source coefficient matrix.

    Returns
    -------
    U0 : ndarray (p, p)
    s0 : ndarray (min(p, q),)
    V0 : ndarray (q, q)
        The bases are completed to square orthogonal matrices when p != q.
    """
    C0 = np.asarray(C0, dtype=float)
    # the thin SVD suffices: every column beyond the rank comes from complement_basis
    U0, s0, V0t = linalg.svd(C0, full_matrices=False, lapack_driver="gesdd")
    V0 = V0t.T
    r0 = source_rank(s0)
    U0 = np.column_stack([U0[:, :r0], complement_basis(U0[:, :r0])])
    V0 = np.column_stack([V0[:, :r0], complement_basis(V0[:, :r0])])
    return U0, s0, V0


def source_rank(s0):
    """Numerical rank of the source: singular values above ``SOURCE_RTOL * s_max``.

    Parameters
    ----------
    s0 : array_like
        Singular values of C0, descending.

    Returns
    -------
    int
    """
    s0 = np.asarray(s0, dtype=float)
    if s0.size == 0 or s0[0] <= 0:
        return 0
    return int(np.sum(s0 > SOURCE_RTOL * s0[0]))


def check_source_svd(svd0, C0, p, q):
    """The source's SVD ``(U0, s0, V0)``: ``svd0`` checked, or :func:`source_svd` of C0.

    Parameters
    ----------
    svd0 : (U0, s0, V0) or None
    C0 : ndarray (p, q) or None
        Used when ``svd0`` is None.
    p, q : int
        Expected numbers of predictors and responses.

    Returns
    -------
    U0 : ndarray (p, p)
    s0 : ndarray
    V0 : ndarray (q, q)
    """
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


def closed_form_d(c, g):
    """The d-step ``d_j = c_j / g_j``: the minimiser of ``1/2 sum g_j d_j^2 - sum c_j d_j``.

    Components with ``g_j <= 1e-300`` (a column of A in the null space of G) are 0.

    Parameters
    ----------
    c, g : ndarray (r,)
        ``c_j = [A^T H B]_jj``, ``g_j = [A^T G A]_jj >= 0``.

    Returns
    -------
    ndarray (r,)
    """
    return np.where(g > _TINY, c / np.maximum(g, _TINY), 0.0)


def _ols_through_rows(Xc, Sxy):
    """The least-squares fit of :func:`mtltransfer.solvers.linear.ols` from the rows.

    With ``D = sqrt(diag Sxx)`` and the thin SVD ``X D^{-1} = U s V^T``,
    ``C = D^{-1} V diag(n / s^2) V^T D^{-1} Sxy`` over the singular values with
    ``s^2 / n > p eps max(s^2 / n)`` (the same pseudo-inverse in the same equilibrated
    basis, from an n x p SVD, O(n^2 p), instead of a p x p eigendecomposition).
    """
    n, p = Xc.shape
    D = np.sqrt(np.einsum("ij,ij->j", Xc, Xc) / n)
    D = np.where(D > 0, D, 1.0)
    _, sv, Vt = linalg.svd(Xc / D, full_matrices=False, lapack_driver="gesdd")
    w = sv * sv / n
    keep = w > p * np.finfo(float).eps * max(w.max(initial=0.0), np.finfo(float).tiny)
    Vk = Vt[keep]
    return (Vk.T @ ((Vk @ (Sxy / D[:, None])) / w[keep, None])) / D[:, None]


#: from this many predictors on, the least-squares fit of a well-conditioned Sxx comes
#: from a Cholesky factorisation (p^3 / 3 flops) instead of an eigendecomposition
_CHOLESKY_P = 500


def _ols_cholesky(Sxx, Sxy):
    """The least-squares fit of :func:`mtltransfer.solvers.linear.ols` by Cholesky, or
    None.

    In the same equilibrated basis (``D = sqrt(diag Sxx)``), ``C = D^{-1} R^{-1} R^{-T}
    D^{-1} Sxy`` with ``D^{-1} Sxx D^{-1} = R^T R``. Used only when the factorisation
    exists and every eigenvalue is far above the pseudo-inverse's cut-off ``p eps
    lambda_max``: the pseudo-inverse is then the inverse, and the fit the same up to
    rounding. That holds when LAPACK's estimate of the reciprocal condition number
    exceeds ``1e4 p eps``; where the estimate (of the 1-norm ratio, which can be far below
    the 2-norm one) does not, the extreme eigenvalues of ``R^T R`` are measured by Lanczos
    iterations, lambda_min as ``1 / lambda_max(R^{-1} R^{-T})`` through the factor, and
    the fit is accepted when ``lambda_min > 100 p eps lambda_max`` (the factorisation's
    backward error, a few ``p eps lambda_max``, is well inside that margin).
    """
    p = Sxx.shape[0]
    D = np.sqrt(np.clip(np.diag(Sxx), 0.0, None))
    D = np.where(D > 0, D, 1.0)
    S = Sxx / np.outer(D, D)
    try:
        cf = linalg.cho_factor(S, lower=False, check_finite=False)
    except linalg.LinAlgError:
        return None
    anorm = float(np.abs(S).sum(axis=0).max())
    rcond, info = linalg.lapack.dpocon(cf[0], anorm)
    if info != 0:
        return None
    eps = np.finfo(float).eps
    if not rcond > 1e4 * p * eps:
        from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, \
            eigsh

        inv = LinearOperator((p, p), dtype=float,
                             matvec=lambda v: linalg.cho_solve(cf, v, check_finite=False))
        try:
            lmax_inv = eigsh(inv, k=1, which="LA", tol=1e-8, v0=np.ones(p) / np.sqrt(p),
                             return_eigenvectors=False)[0]
        except (ArpackNoConvergence, ArpackError):   # the eigendecomposition decides
            return None
        if not 1.0 / (lmax_inv * (1 + 1e-6)) > 1e2 * p * eps * _lambda_max(S):
            return None
    return linalg.cho_solve(cf, Sxy / D[:, None], check_finite=False) / D[:, None]


def _rrr_fit(Sxx, Sxy, rank, rows=None):
    """The exact reduced-rank fit of rank r (its least-squares fit from the rows when
    they are given, by Cholesky when p is large and Sxx well conditioned)."""
    C_ols = None
    if rows is not None:
        C_ols = _ols_through_rows(rows, Sxy)
    elif Sxx.shape[0] >= _CHOLESKY_P:
        C_ols = _ols_cholesky(Sxx, Sxy)
    return reduced_rank(Sxx, Sxy, rank, C_ols=C_ols)[0]


def _rrr_factors(Sxx, Sxy, rank, rows=None, C_r=None):
    """Leading ``rank`` left and right singular vectors of the exact reduced-rank fit."""
    if C_r is None:
        C_r = _rrr_fit(Sxx, Sxy, rank, rows)
    P, _, Qt = np.linalg.svd(C_r, full_matrices=False)
    return P[:, :rank], Qt[:rank].T


#: from this size on, lambda_max(G) comes from Lanczos iterations (O(p^2) each) instead
#: of a tridiagonalisation (O(p^3))
_LANCZOS_P = 1000


def _lambda_max(G):
    """``max(lambda_max(G), 0)`` of a symmetric matrix: LAPACK for ``p < 1000``, else
    Lanczos (ARPACK, deterministic start, relative tolerance 1e-12), enlarged by a
    factor ``1 + 1e-9`` so that it stays an upper bound."""
    p = G.shape[0]
    if p == 0:
        return 0.0
    if p < _LANCZOS_P:
        return float(max(linalg.eigvalsh(G, subset_by_index=[p - 1, p - 1])[0], 0.0))
    from scipy.sparse.linalg import eigsh

    v0 = np.ones(p) / np.sqrt(p)
    lam = eigsh(G, k=1, which="LA", tol=1e-12, v0=v0, return_eigenvectors=False)[0]
    return float(max(lam * (1 + 1e-9), 0.0))


# ---------------------------------------------------------------------------------------
# the problem object
# ---------------------------------------------------------------------------------------
class SmartProblem:
    """SMART's data in the source's singular coordinates, computed once.

    Build it with :meth:`from_moments` and pass it to
    :func:`mtltransfer.smart.admm.smart_admm` and
    :func:`mtltransfer.smart.tuning.smart_lambda_path` (``problem=``) to share G, H and the
    Lipschitz bound between the fits of a path or a cross-validation fold.

    Parameters
    ----------
    Sxx, Sxy, Syy : ndarray
        Centred moments ``X^T X / n`` (p x p), ``X^T Y / n`` (p x q), ``Y^T Y / n`` (q x q).
    U0 : ndarray (p, p)
    V0 : ndarray (q, q)
        Orthogonal bases of the source's singular coordinates (:func:`source_svd`).
    s0 : ndarray or None
        The source's singular values (needed when ``pull > 0``).
    pull : float
        The weight gamma of the magnitude pull ``(gamma/2)||C - C0||_F^2`` when the moments
        given are already augmented by it
        (:func:`~mtltransfer.smart.gamma.magnitude_moments`); 0 for the paper's SMART.
        The fit does not use it; the stationarity certificate does, to scale its measures
        by the data's part of the problem and not by the pull's terms that cancel on the
        manifold (:func:`mtltransfer.smart.admm.stationarity`).

    Attributes
    ----------
    G : ndarray (p, p)
        ``U0^T Sxx U0`` (symmetrised; with ``rows``, ``W^T W`` formed on first use).
    W : ndarray (n, p) or None
        ``X U0 / sqrt(n)`` when built with ``rows`` (then ``G = W^T W``).
    H : ndarray (p, q)
        ``U0^T Sxy V0``.
    half_tr_syy : float
        ``tr(Syy) / 2``.
    pull : float
        As given.
    lmax_G : float
        ``lambda_max(G)`` (>= 0), the curvature scale of the U-step.
    p, q : int
    Sxx, Sxy, Syy, U0, s0, V0
        As given.
    """

    def __init__(self, Sxx, Sxy, Syy, U0, V0, s0=None, *, rows=None, pull=0.0):
        self.Sxx, self.Sxy, self.Syy = Sxx, Sxy, Syy
        self.U0, self.s0, self.V0 = U0, s0, V0
        self.pull = float(pull)
        if self.pull and s0 is None:
            raise ValueError("a problem with pull > 0 needs the source's singular values s0")
        self.H = U0.T @ Sxy @ V0
        self.half_tr_syy = 0.5 * float(np.trace(Syy))
        self.p, self.q = self.H.shape
        p = self.p
        self._G = None
        self.W = None
        self._rows = None
        if rows is not None:
            # G = W^T W with W = X U0 / sqrt(n) (n x p): products through the rows
            Xc = np.asarray(rows, dtype=float)
            if Xc.ndim != 2 or Xc.shape[1] != p:
                raise ValueError(f"rows must be an n x p = n x {p} array; got shape "
                                 f"{Xc.shape}")
            self._rows = Xc
            self.W = (Xc @ U0) / np.sqrt(Xc.shape[0])
            WWt = self.W @ self.W.T
            m = WWt.shape[0]
            self.lmax_G = float(max(linalg.eigvalsh(WWt, subset_by_index=[m - 1, m - 1])[0],
                                    0.0)) if m and p else 0.0
        else:
            G = U0.T @ Sxx @ U0
            self._G = 0.5 * (G + G.T)
            self.lmax_G = _lambda_max(self._G)

    @property
    def G(self):
        """``U0^T Sxx U0`` (p x p; formed on first use when the rows path is used)."""
        if self._G is None:
            self._G = self.W.T @ self.W
        return self._G

    def gram(self, A):
        """``G @ A``: through the rows, ``W^T (W A)`` (4 n p r flops), when they are held,
        else the p x p product (2 p^2 r flops)."""
        if self.W is not None:
            return self.W.T @ (self.W @ A)
        return self._G @ A

    def gram_block(self, k):
        """The leading block ``G[:k, :k]``."""
        if self.W is not None:
            Wk = self.W[:, :k]
            return Wk.T @ Wk
        return self._G[:k, :k]

    @classmethod
    def from_moments(cls, Sxx, Sxy, Syy, C0=None, *, svd0=None, rows=None, pull=0.0):
        """Build the problem from the moments and the source (C0 or its SVD).

        Parameters
        ----------
        Sxx, Sxy, Syy : array_like
            Centred moments (p x p, p x q, q x q).
        C0 : array_like (p, q) or None
            Source coefficient matrix (may be None when ``svd0`` is given).
        svd0 : (U0, s0, V0) or None
            Precomputed :func:`source_svd` of C0.
        rows : ndarray (n, p) or None
            The centred rows X with ``Sxx = X^T X / n``: the products ``G A`` then go
            through ``W = X U0 / sqrt(n)`` (``W^T (W A)``, 4 n p r flops instead of
            2 p^2 r), G is never formed unless asked for, and the reduced-rank start's
            least-squares fit comes from an n x p SVD instead of a p x p
            eigendecomposition; worth it when ``n < p / 2``. The result is the same up
            to rounding.
        pull : float
            The magnitude pull's gamma when the moments are augmented by it (class
            docstring).

        Returns
        -------
        SmartProblem
        """
        Sxx, Sxy, Syy = (np.asarray(M, dtype=float) for M in (Sxx, Sxy, Syy))
        p, q = Sxy.shape
        if Sxx.shape != (p, p) or Syy.shape != (q, q):
            raise ValueError(f"Sxx must be {p}x{p} and Syy {q}x{q}; got {Sxx.shape}, "
                             f"{Syy.shape}")
        U0, s0, V0 = check_source_svd(svd0, C0, p, q)
        return cls(Sxx, Sxy, Syy, U0, V0, s0, rows=rows, pull=pull)

    # -- the data term and its derivatives ------------------------------------------------
    def data_term_from(self, c, g, d):
        """``f = tr(Syy)/2 - sum_j d_j c_j + 1/2 sum_j d_j^2 g_j`` from the diagonals c, g."""
        return self.half_tr_syy - float(c @ d) + 0.5 * float(g @ (d * d))

    def diagonals(self, A, B, GA=None):
        """``c_j = a_j^T H b_j`` and ``g_j = a_j^T G a_j`` (``GA = G A`` if known)."""
        if GA is None:
            GA = self.gram(A)
        return np.einsum("ij,ij->j", A, self.H @ B), np.einsum("ij,ij->j", A, GA)

    def data_term(self, A, d, B, GA=None):
        """The data term ``f(A, d, B) = (1/2n)||Y - X U0 A diag(d) B^T V0^T||_F^2``.

        Parameters
        ----------
        A : ndarray (p, r)
        d : ndarray (r,)
        B : ndarray (q, r)
            Orthonormal columns (the formula uses ``B^T B = I``).
        GA : ndarray (p, r) or None
            ``G @ A`` if already known.

        Returns
        -------
        float
        """
        c, g = self.diagonals(A, B, GA)
        return self.data_term_from(c, g, d)

    def data_gradient(self, A, d, B, *, GA=None, HB=None, HtA=None):
        """Euclidean gradients of the data term in A and B.

        ``grad_A = G A diag(d^2) - H B diag(d)``, ``grad_B = -H^T A diag(d)`` (the products
        ``GA``, ``HB``, ``HtA`` are used when given).

        Returns
        -------
        grad_A : ndarray (p, r)
        grad_B : ndarray (q, r)
        """
        if GA is None:
            GA = self.gram(A)
        if HB is None:
            HB = self.H @ B
        if HtA is None:
            HtA = self.H.T @ A
        return GA * (d * d) - HB * d, -HtA * d

    def pull_gradient(self, A, d, B):
        """The magnitude pull's share of :meth:`data_gradient` (zero when ``pull = 0``).

        With ``S0 = U0^T C0 V0`` (``diag(s0)``, p x q), the pull
        ``(gamma/2)||A diag(d) B^T - S0||_F^2`` has, on the manifolds, the gradients
        ``gamma (A diag(d^2) - S0 B diag(d))`` in A and ``-gamma S0^T A diag(d)`` in B.

        Returns
        -------
        grad_A : ndarray (p, r)
        grad_B : ndarray (q, r)
        """
        gA, gB = np.zeros_like(A, dtype=float), np.zeros_like(B, dtype=float)
        if not self.pull:
            return gA, gB
        s0 = np.asarray(self.s0, dtype=float)
        k = len(s0)
        gA[:k] -= s0[:, None] * B[:k] * d
        gB[:k] -= s0[:, None] * A[:k] * d
        gA += A * (d * d)
        return self.pull * gA, self.pull * gB

    @property
    def half_tr_syy_data(self):
        """``tr(Syy) / 2`` of the data alone: without the pull's ``gamma ||C0||_F^2 / 2``."""
        if not self.pull:
            return self.half_tr_syy
        return self.half_tr_syy - 0.5 * self.pull * float(np.sum(np.asarray(self.s0) ** 2))

    def optimal_d(self, A, B):
        """The closed-form d-step at (A, B), ``d_j = c_j / g_j`` (signed)."""
        return closed_form_d(*self.diagonals(A, B))

    def profiled_gradients(self, A, B):
        """Riemannian gradients of the data term at (A, B) with d at its optimum.

        The optimal d is made nonnegative by flipping the signs of B's columns (a symmetry
        of the fit), and the gradients are taken at ``(A, |d|, B diag(sign))``.

        Returns
        -------
        d : ndarray (r,)
            ``|optimal d|``.
        sign : ndarray (r,)
            The column signs (+-1) applied to B.
        rgrad_A : ndarray (p, r)
        rgrad_B : ndarray (q, r)
            Riemannian gradients (at A and at ``B diag(sign)``).
        """
        d = self.optimal_d(A, B)
        sign = np.where(d < 0, -1.0, 1.0)
        d = np.abs(d)
        Bs = B * sign
        grad_A, grad_B = self.data_gradient(A, d, Bs)
        return d, sign, tangent_projection(A, grad_A), tangent_projection(Bs, grad_B)

    def curvature(self, d):
        """``lambda_max(G) max_j d_j^2``: a Lipschitz bound of the U-step's data part."""
        return self.lmax_G * float((d * d).max(initial=0.0))

    # -- reduced-rank starting points ---------------------------------------------------
    def rrr_start(self, rank):
        """The exact reduced-rank fit of rank r, its factors in source coordinates.

        Returns
        -------
        A : ndarray (p, r)
        B : ndarray (q, r)
            Orthonormal bases of ``U0^T P`` and ``V0^T Q`` (``C_r = P s Q^T``).
        """
        cache = self.__dict__.setdefault("_rrr_cache", {})
        if rank not in cache:
            P, Qv = _rrr_factors(self.Sxx, self.Sxy, rank, C_r=self.rrr_coef(rank))
            cache[rank] = (np.linalg.qr(self.U0.T @ P)[0], np.linalg.qr(self.V0.T @ Qv)[0])
        A, B = cache[rank]
        return A.copy(), B.copy()

    def rrr_coef(self, rank):
        """The exact reduced-rank fit ``C_r`` (p x q) of rank r, computed once per rank
        (the cross-validation's target-only candidate shares it with the start)."""
        cache = self.__dict__.setdefault("_rrr_coef", {})
        if rank not in cache:
            cache[rank] = _rrr_fit(self.Sxx, self.Sxy, rank, rows=self._rows)
        return cache[rank]

    def rrr_data_term(self, rank):
        """The data term of the exact reduced-rank fit of rank r: its minimum over all
        rank-r coefficient matrices, so a lower bound of the data term of every SMART fit
        of rank r (whatever r_u, r_v and lambda)."""
        A, B = self.rrr_start(rank)
        return self.data_term(A, self.optimal_d(A, B), B)

    def restricted_rrr(self, rank, r_u, r_v):
        """The reduced-rank fit restricted to the source's leading subspaces.

        ``U in span U0[:, :r_u]``, ``V in span V0[:, :r_v]``: reduced-rank regression with
        the moments ``G[:r_u, :r_u]``, ``H[:r_u, :r_v]`` (exact; needs
        ``rank <= min(r_u, r_v)``). It is the SMART solution for a large lambda.

        Returns
        -------
        A : ndarray (p, r)
        B : ndarray (q, r)
            Orthonormal, zero beyond the first r_u (r_v) rows.
        """
        Pt, Qt = _rrr_factors(self.gram_block(r_u), self.H[:r_u, :r_v], rank)
        A = np.zeros((self.p, rank))
        B = np.zeros((self.q, rank))
        A[:r_u] = np.linalg.qr(Pt)[0]
        B[:r_v] = np.linalg.qr(Qt)[0]
        return A, B

    def complement_start(self, rank, r_u, r_v, lam_u, lam_v):
        """The start for ``rank > min(r_u, r_v)``:
        :func:`mtltransfer.smart.directions.complement_start` of this problem."""
        return complement_start(self, rank, r_u, r_v, lam_u, lam_v)


def resolve_problem(problem, Sxx, Sxy, Syy, C0, svd0):
    """The SmartProblem given, or one built from the moments and the source."""
    if problem is None:
        return SmartProblem.from_moments(Sxx, Sxy, Syy, C0, svd0=svd0)
    if not isinstance(problem, SmartProblem):
        raise TypeError(f"problem must be a SmartProblem; got {type(problem).__name__}")
    if any(v is not None for v in (Sxx, Sxy, Syy, C0, svd0)):
        raise ValueError("pass either the moments and the source (Sxx, Sxy, Syy, C0/svd0) "
                         "or problem=, not both")
    return problem
