"""Proximal operators and the accelerated proximal-gradient solver for NuclearNorm."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ..gram import quadratic_loss
from ._base import SolverResult, warn_not_converged


def soft_threshold(Z, t):
    """Entrywise soft-thresholding S_t(Z) = sign(Z) max(|Z| - t, 0), the prox of t||.||_1."""
    return np.sign(Z) * np.maximum(np.abs(Z) - t, 0.0)


def svt(Z, t):
    """Singular value thresholding, the prox of t||.||_*: U max(s - t, 0) V^T.

    Returns
    -------
    C : ndarray
    s : ndarray
        The thresholded singular values (zeros included).
    """
    U, s, Vt = linalg.svd(Z, full_matrices=False, check_finite=False)
    s = np.maximum(s - t, 0.0)
    k = int(np.count_nonzero(s))
    return (U[:, :k] * s[:k]) @ Vt[:k], s


def nuclear_norm_objective(Sxx, Sxy, Syy, C, lam):
    """(1/2n)||Y - XC||_F^2 + lam ||C||_* from the moments."""
    return quadratic_loss(Sxx, Sxy, Syy, C) + lam * np.linalg.norm(C, "nuc")


def nuclear_norm_apg(Sxx, Sxy, Syy, lam, *, C_init=None, tol=1e-8, max_iter=5000,
                     lipschitz=None, warn=True):
    """Minimise (1/2n)||Y - XC||_F^2 + lam ||C||_* by accelerated proximal gradient.

    FISTA (Beck and Teboulle, 2009) with adaptive restart (O'Donoghue and Candes, 2015):
    the smooth part f(C) = tr(Syy)/2 - <Sxy, C> + <Sxx C, C>/2 has gradient
    Sxx C - Sxy and Lipschitz constant L = lambda_max(Sxx); each step is

        C+ = SVT_{lam/L}(Z - (Sxx Z - Sxy)/L),   Z = C+ + (t_k - 1)/t_{k+1} (C+ - C).

    It stops when the prox-gradient mapping, relative to ``max(1, ||C||_F)``, satisfies
    ``L ||C+ - Z||_F / max(1, L ||C+||_F) < tol``: that mapping is the distance of the
    subdifferential of the objective to zero, up to L, at the current point.

    Parameters
    ----------
    Sxx, Sxy, Syy : ndarray
        Centred moments (see :mod:`mtltransfer.gram`).
    lam : float
        Penalty, at least 0.
    C_init : ndarray, optional
        Warm start (p x q).
    tol, max_iter : float, int
    lipschitz : float, optional
        Precomputed lambda_max(Sxx) (saves an eigenvalue computation along a path).

    Returns
    -------
    SolverResult
        ``coef`` is C; ``history`` has the objective and the stopping criterion.
    """
    p, q = Sxy.shape
    L = lipschitz if lipschitz is not None else float(linalg.eigvalsh(Sxx)[-1])
    L = max(L, np.finfo(float).tiny)
    C = np.zeros((p, q)) if C_init is None else np.array(C_init, dtype=float)
    Z, t = C.copy(), 1.0
    hist = {"objective": [], "criterion": []}
    obj_old = np.inf
    converged = False
    for it in range(1, max_iter + 1):
        grad = Sxx @ Z - Sxy
        C_new, _ = svt(Z - grad / L, lam / L)
        crit = L * np.linalg.norm(C_new - Z) / max(1.0, L * np.linalg.norm(C_new))
        obj = nuclear_norm_objective(Sxx, Sxy, Syy, C_new, lam)
        hist["objective"].append(obj)
        hist["criterion"].append(crit)
        if obj > obj_old:  # adaptive restart: drop the momentum
            t = 1.0
        t_new = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        Z = C_new + ((t - 1.0) / t_new) * (C_new - C)
        C, t, obj_old = C_new, t_new, obj
        if crit < tol:
            converged = True
            break
    if not converged and warn:
        warn_not_converged("NuclearNorm proximal gradient", it, crit, tol)
    return SolverResult(C, converged, it, hist, hist["objective"][-1],
                        {"lipschitz": L, "rank": int(np.linalg.matrix_rank(C))})


def nuclear_norm_lam_max(Sxy):
    """Smallest lam for which C = 0 is optimal: the spectral norm of Sxy."""
    return float(linalg.norm(Sxy, 2))
