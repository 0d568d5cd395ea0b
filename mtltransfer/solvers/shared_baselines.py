"""Baselines of the shared-representation model and the transfer to a new task.

fit_per_task        per-task least squares / ridge
fit_nuclear_norm    convex relaxation, accelerated proximal gradient
adapt               a new task's w on a fixed B
subspace_distance   sin-theta distance between two column spaces
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import linalg

from ._base import SolverResult
from .prox import (accelerated_proximal_gradient, nuclear_extras, nuclear_prox,
                   nuclear_rank)
from .shared_data import (TaskData, as_float_matrix, bayes_ridge_alpha, per_task_ridge,
                          problem_data)

__all__ = ["fit_per_task", "fit_nuclear_norm", "adapt", "subspace_distance"]


def fit_per_task(X, y=None, task=None, *, alpha=None, center=False):
    r"""Per-task least squares, with ridge for the tasks that have fewer rows than d.

    For each task,
    :math:`\theta_t = \operatorname*{argmin}_\theta \frac{1}{2N_t}\|y_t - X_t\theta\|^2
    + \frac{\alpha_t}{2}\|\theta\|^2`.

    Parameters
    ----------
    X : ndarray, shape (N, d), or TaskData
        Stacked rows, or a :class:`~.shared_data.TaskData` (then without ``y`` and
        ``task``).
    y : ndarray, shape (N,)
    task : ndarray of int, shape (N,)
        Task label of each row, 0..T-1, every task present.
    alpha : None, float or ndarray of shape (T,)
        Ridge penalty per task. ``None``: 0 (least squares) for tasks with N_t >= d, and
        for N_t < d the data-driven posterior-mean penalty
        ``alpha_t = sigma2_hat d / (N_t tau2_hat)`` from pooled moment estimates of the
        noise variance and of E||theta_t||^2.
    center : bool
        Centre X and y within each task first.

    Returns
    -------
    SolverResult
        ``coef`` = Theta (d x T); ``extra["alpha"]`` the penalties used.
    """
    # a TaskData (TaskData.from_rows or .from_sums) is used as it is
    data = problem_data(X, y, task, TaskData, lambda: TaskData.from_rows(X, y, task, center=center))
    if alpha is None:
        alpha = np.where(data.N < data.d, bayes_ridge_alpha(data), 0.0)
    else:
        alpha = np.broadcast_to(np.asarray(alpha, dtype=float), (data.T,)).copy()
        if np.any(alpha < 0) or not np.all(np.isfinite(alpha)):
            raise ValueError("alpha must be finite and >= 0")
    Theta = per_task_ridge(data, alpha)
    obj = data.theta_loss_grad(Theta, grad=False)[0]
    return SolverResult(coef=Theta, objective=float(obj), extra={"alpha": alpha})



def fit_nuclear_norm(X, y=None, task=None, lam=None, *, tol=1e-10, max_iter=5000,
                     backend="fast", center=False, Theta0=None, verbose=False):
    r"""Convex relaxation: minimise :math:`L(\Theta) + \lambda\|\Theta\|_*` (Theta d x T).

    :math:`L(\Theta) = \sum_t \frac{1}{2N_t} \|y_t - X_t \theta_t\|^2` and
    :math:`\|\cdot\|_*` is the nuclear norm (sum of singular values). ``backend="fast"``:
    accelerated proximal gradient with singular value thresholding
    (:func:`~mtltransfer.solvers.prox.accelerated_proximal_gradient`: its restart rule,
    and its stopping rule, the prox-gradient mapping relative to ``||grad L(0)||_F``
    below ``tol``), with
    :math:`\mathrm{Lip} = \max_t \lambda_{\max}(X_t^\top X_t / N_t)` (the Lipschitz
    constant of grad L; the
    task blocks of the Hessian are separate). ``backend="cvxpy"``: the same problem in
    CVXPY (:func:`~mtltransfer.solvers.cvx.shared_rep_nuclear_norm`).

    Parameters
    ----------
    X, y, task : ndarray
        Stacked rows, responses and task labels, or a TaskData as ``X`` alone (see
        :func:`~mtltransfer.solvers.shared_fit.fit_shared_representation`).
    lam : float
        Penalty, >= 0.
    tol : float
    max_iter : int
    backend : {"fast", "cvxpy"}
    center : bool
    Theta0 : ndarray of shape (d, T), optional
        Warm start.
    verbose : bool

    Returns
    -------
    SolverResult
        ``coef`` = Theta; ``objective`` = L + lam ||Theta||_*; ``history`` with
        ``objective`` and ``criterion`` per iteration; ``extra["rank"]``
        (:func:`~mtltransfer.solvers.prox.nuclear_rank`), ``extra["singular_values"]``.
    """
    data = problem_data(X, y, task, TaskData, lambda: TaskData.from_rows(X, y, task, center=center))
    if not (isinstance(lam, numbers.Real) and np.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0; got {lam!r}")
    if backend not in ("fast", "cvxpy"):
        raise ValueError(f"backend must be 'fast' or 'cvxpy'; got {backend!r}")
    d, T = data.d, data.T
    if backend == "cvxpy":
        from .cvx import shared_rep_nuclear_norm
        Theta = shared_rep_nuclear_norm(data.X, data.y, data.task, T, lam)
        sv = linalg.svdvals(Theta)
        obj = data.theta_loss_grad(Theta, grad=False)[0] + lam * sv.sum()
        return SolverResult(coef=Theta, objective=float(obj),
                            extra={"rank": nuclear_rank(sv), "singular_values": sv})
    Theta = np.zeros((d, T)) if Theta0 is None else as_float_matrix(Theta0, "Theta0", 2)
    if Theta.shape != (d, T):
        raise ValueError(f"Theta0 must have shape (d, T) = ({d}, {T})")
    res = accelerated_proximal_gradient(
        lambda Th, grad: data.theta_loss_grad(Th, grad=grad), nuclear_prox(lam), Theta,
        1.0001 * data.max_task_eig() + 1e-300, tol=tol, max_iter=max_iter,
        name="fit_nuclear_norm", verbose=verbose)
    return nuclear_extras(res)


def adapt(B, X_new, y_new, shrink=None, w_mean=None, w_cov=None):
    r"""Fit a new task's coefficients w on a fixed representation B.

    Solves :math:`\min_w \frac{1}{2n} \|y - X B w\|^2 + \frac{s}{2} (w - \bar w)^\top
    \Sigma_w^{-1} (w - \bar w)` (s = ``shrink``, :math:`\bar w` = ``w_mean``,
    :math:`\Sigma_w` = ``w_cov``), i.e.
    :math:`w = (Z^\top Z / n + s P)^{-1} (Z^\top y / n + s P \bar w)` with
    :math:`Z = X B` and :math:`P = \Sigma_w^{-1}`. ``shrink=None`` (or 0) is least squares
    on the k columns of Z. With ``w_mean``, ``w_cov`` the mean and covariance of the learned
    w's and ``shrink = sigma2 / n``, this is the Gaussian posterior mean of w.

    Parameters
    ----------
    B : ndarray, shape (d, k)
    X_new : ndarray, shape (n, d)
    y_new : ndarray, shape (n,)
    shrink : None or float >= 0
    w_mean : ndarray, shape (k,), optional
        Shrinkage target; default 0.
    w_cov : ndarray, shape (k, k), optional
        Positive definite; default I_k.

    Returns
    -------
    w : ndarray, shape (k,)
        The new task's coefficients are ``B @ w``.
    """
    B = as_float_matrix(B, "B", 2)
    X_new = as_float_matrix(X_new, "X_new", 2)
    y_new = as_float_matrix(y_new, "y_new", 1)
    d, k = B.shape
    n = X_new.shape[0]
    if X_new.shape[1] != d:
        raise ValueError(f"X_new must have d = {d} columns (rows of B); got "
                         f"{X_new.shape[1]}")
    if y_new.shape[0] != n or n == 0:
        raise ValueError(f"y_new must have as many entries as X_new has rows (>= 1); got "
                         f"{y_new.shape[0]} and {n}")
    shrink = 0.0 if shrink is None else shrink
    if not (isinstance(shrink, numbers.Real) and np.isfinite(shrink) and shrink >= 0):
        raise ValueError(f"shrink must be None or a finite number >= 0; got {shrink!r}")
    m = np.zeros(k) if w_mean is None else as_float_matrix(w_mean, "w_mean", 1)
    if m.shape != (k,):
        raise ValueError(f"w_mean must have shape ({k},); got {m.shape}")
    if w_cov is None:
        P = np.eye(k)
    else:
        C = as_float_matrix(w_cov, "w_cov", 2)
        if C.shape != (k, k):
            raise ValueError(f"w_cov must have shape ({k}, {k}); got {C.shape}")
        try:
            P = linalg.cho_solve(linalg.cho_factor((C + C.T) / 2), np.eye(k))
        except linalg.LinAlgError:
            raise ValueError("w_cov must be positive definite") from None
    Z = X_new @ B
    if shrink == 0:
        return linalg.lstsq(Z, y_new)[0]
    A = Z.T @ Z / n + shrink * P
    return linalg.solve(A, Z.T @ y_new / n + shrink * (P @ m), assume_a="pos")


def subspace_distance(B1, B2):
    r"""sin-theta distance between the column spaces of two orthonormal matrices.

    :math:`\|P_1 - P_2\|_F / \sqrt2` with :math:`P_i = B_i B_i^\top`, that is

    .. math::

       \sqrt{(k_1 + k_2)/2 - \|B_1^\top B_2\|_F^2},

    which for :math:`k_1 = k_2 = k` is
    :math:`\|B_{1\perp}^\top B_2\|_F = \sqrt{k - \|B_1^\top B_2\|_F^2}`, the Frobenius
    norm of the sines of the principal angles. Symmetric, 0 iff the spans agree, at most
    :math:`\sqrt{(k_1 + k_2)/2}`; spans of different dimensions (a bootstrap
    replicate that selected another k) are compared too.

    Parameters
    ----------
    B1 : ndarray, shape (d, k1)
    B2 : ndarray, shape (d, k2)
        Orthonormal columns (checked to 1e-6).

    Returns
    -------
    float
    """
    B1 = as_float_matrix(B1, "B1", 2)
    B2 = as_float_matrix(B2, "B2", 2)
    if B1.shape[0] != B2.shape[0]:
        raise ValueError(f"B1 and B2 must have the same number of rows; got {B1.shape} "
                         f"and {B2.shape}")
    for name, Bm in (("B1", B1), ("B2", B2)):
        if not np.allclose(Bm.T @ Bm, np.eye(Bm.shape[1]), atol=1e-6):
            raise ValueError(f"{name} must have orthonormal columns")
    k = (B1.shape[1] + B2.shape[1]) / 2
    return float(np.sqrt(max(k - np.linalg.norm(B1.T @ B2) ** 2, 0.0)))
