"""The factorised shared-representation estimator (scaled gradient descent on (B, W)).

:func:`fit_shared_representation` minimises the penalised task-averaged loss of
:mod:`.shared_data` over B with orthonormal columns and W, from a spectral start
(:func:`spectral_init`). The algorithm and the reasons behind its choices are described
in the documentation page "Shared representation"
(``docs/shared_representation.rst``).
"""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
from scipy import linalg

from ..exceptions import ConvergenceWarning, user_stacklevel
from ._base import SolverResult, warn_not_converged
from .shared_data import (TaskData, as_float_matrix, bayes_ridge_alpha, check_k,
                          per_task_ridge, problem_data, solve_w, w_ridge_penalty)
from .stiefel import qr_pos

__all__ = ["fit_shared_representation", "spectral_init"]

#: a relative decrease of F below this is no decrease at working precision (a stall)
_STALL = 4 * np.finfo(float).eps


# ---------------------------------------------------------------------------------------
# spectral starts
# ---------------------------------------------------------------------------------------

def _top_eigvecs(M, k):
    w, V = linalg.eigh((M + M.T) / 2, subset_by_index=[M.shape[0] - k, M.shape[0] - 1])
    return V[:, ::-1]


def spectral_start(data, k, init):
    if init == "mom":
        # M = (1/T) sum_t (1/N_t) sum_i y_ti^2 x_ti x_ti^T ; E M = c I + (2/T) Theta Theta^T
        M = data.X.T @ (data.X * (data.y ** 2 * data.inv_N_row / data.T)[:, None])
        return _top_eigvecs(M, k)
    if init == "ridge":
        Theta = per_task_ridge(data, bayes_ridge_alpha(data))
        return _top_eigvecs(Theta @ Theta.T, k)         # left singular vectors of Theta
    raise ValueError(f"init must be 'ridge', 'mom' or a d x k array; got {init!r}")


def spectral_init(X, y, task, k, *, init="ridge", center=False):
    r"""Spectral estimate of the representation B (d x k, orthonormal columns).

    Parameters
    ----------
    X, y, task : ndarray
        Stacked rows, responses and task labels (see :func:`fit_shared_representation`).
    k : int
    init : {"ridge", "mom"}
        ``"mom"``: top-k eigenvectors of
        :math:`\frac1T \sum_t \frac{1}{N_t} \sum_i y_{ti}^2 x_{ti} x_{ti}^\top`, whose
        expectation is :math:`c I + \frac2T \Theta\Theta^\top` for Gaussian x.
        ``"ridge"``: leading k left singular vectors of the d x T matrix of per-task ridge
        estimates (penalty as in
        :func:`~mtltransfer.solvers.shared_baselines.fit_per_task` with ``alpha=None``,
        for all tasks).
    center : bool

    Returns
    -------
    B : ndarray, shape (d, k)
    """
    data = TaskData.from_rows(X, y, task, center=center)
    k = check_k(k, data.d, data.T)
    return spectral_start(data, k, init)



# ---------------------------------------------------------------------------------------
# the factorised estimator and its iterative baseline
# ---------------------------------------------------------------------------------------

def fit_shared_representation(X, y=None, task=None, k=None, *, method="gd", init=None,
                              tol=1e-8, max_iter=500, backend="fast", center=False,
                              verbose=False, w_ridge="auto"):
    r"""Fit :math:`y_t = X_t B w_t + \varepsilon_t` with a shared orthonormal basis B.

    Objective minimised (``objective`` of the result):

    .. math::

       F(B, W) = L(B, W) + \sum_t \frac{\lambda_t}{2} \|w_t\|^2, \qquad
       L(B, W) = \sum_t \frac{1}{2 N_t} \|y_t - X_t B w_t\|^2, \qquad
       \lambda_t = c / N_t,

    over B with orthonormal columns and W; :math:`c = 0` (``w_ridge=None``) is the pure
    likelihood, :math:`c > 0` its random-effects form
    :math:`w_t \sim N(0, (\sigma^2 / c) I_k)`.

    ``method="gd"`` (default): scaled gradient descent. Each iteration takes the exact
    W-step :math:`w_t = (B^\top S_t B + \lambda_t I)^{-1} B^\top s_t`, then the B-step
    :math:`B \leftarrow \operatorname{qr}(B - \eta\hat\Sigma^{-1}\nabla_B (WW^\top)^{-1})`
    with :math:`\eta` by Armijo backtracking on the profile
    :math:`f(B) = \min_W F(B, W)`. ``method="altmin"``: the same
    W-step and a plain gradient step on B with ``eta = 1 / L_B``. ``method="mom"``: the
    method-of-moments start and the W-step, no iterations. The derivation, the choice of
    the preconditioner and of the default ``w_ridge`` are in the documentation page
    "Shared representation" (``docs/shared_representation.rst``).

    Stopping (gd and altmin): converged when the relative scaled gradient
    :math:`\langle \nabla_B, D_B\rangle / (2F) \le` ``tol`` (a squared norm of the
    Riemannian gradient of the
    profile, in the metric of the preconditioner, relative to F: zero exactly at a
    stationary point). The fit stops as ``"stalled"`` (not converged, with a
    ConvergenceWarning) when F no longer decreases at working precision -- a relative
    decrease ``(F_prev - F) / F_prev`` below 4 machine epsilons, or none at all -- while
    that criterion is above ``tol``, and as ``"max_iter"`` after ``max_iter`` iterations.

    Parameters
    ----------
    X : ndarray, shape (N, d), or TaskData
        Stacked rows of all tasks (centred per task by the caller, or ``center=True``);
        or a :class:`~.shared_data.TaskData` (from rows, or
        ``TaskData.from_sums``), then without ``y`` and ``task``.
    y : ndarray, shape (N,)
    task : ndarray of int, shape (N,)
        Task label of each row, 0..T-1, every task present; need not be sorted.
    k : int
        Dimension of the representation, 1 <= k <= min(d, T).
    method : {"gd", "altmin", "mom"}
    init : None, {"ridge", "mom"} or ndarray of shape (d, k)
        Spectral start (see :func:`spectral_init`). ``None``: ``"mom"`` for
        ``method="mom"``, otherwise ``"ridge"``.
    tol : float
        Tolerance of the stopping criterion above.
    max_iter : int
    backend : {"fast", "cvxpy"}
        How each W-step (T independent least-squares problems) is solved: batched normal
        equations, or one CVXPY problem (reference; small problems only).
    center : bool
        Centre X and y within each task before fitting (a per-task intercept).
    verbose : bool
        Print one line per iteration.
    w_ridge : None, "auto" or float >= 0
        The constant c of the W-step penalty ``lambda_t = c / N_t``. ``None`` or 0: the
        pure likelihood L. ``"auto"`` (default): ``c = sigma2_hat k / tau2_hat``, the
        empirical-Bayes value for ``w_t ~ N(0, (tau2_hat / k) I_k)`` from pooled moments
        of the data (:func:`~mtltransfer.solvers.shared_data.w_ridge_penalty`).

    Returns
    -------
    SolverResult
        ``coef`` = B W (d x T); ``objective`` = F(B, W); ``history`` with per-iteration
        ``objective``, ``criterion``, ``step`` and ``n_backtracks``; ``extra`` with ``B``
        (d x k, orthonormal), ``W`` (k x T), ``B_init``, ``sigma2`` (RSS / N),
        ``rss``, ``likelihood_loss`` (L at the fit), ``w_ridge`` (c) and ``ridge``
        (lambda_t per task, or None), ``time`` (seconds) and ``route`` ("rows" or
        "stats").
    """
    t0 = time.perf_counter()
    # a TaskData (TaskData.from_rows or .from_sums) is used as it is
    data = problem_data(X, y, task, TaskData, lambda: TaskData.from_rows(X, y, task, center=center))
    k = check_k(k, data.d, data.T)
    _check_options(method, backend, tol, max_iter)
    B = _start(data, k, method, init)
    B_init = B.copy()
    lam, c_ridge = w_ridge_penalty(data, k, w_ridge)
    prof = _Profile(data, lam, backend)
    B, W, cache, loss, stop, n_iter, crit, hist = _descend(
        prof, B, method, tol, max_iter, verbose)
    name = f"fit_shared_representation(method={method!r})"
    if stop == "max_iter":
        warn_not_converged(name, n_iter, crit, tol)
    elif stop == "stalled":
        warnings.warn(f"{name} stalled after {n_iter} iterations: the objective no longer "
                      f"decreases while the stopping criterion is {crit:.3g} > tol={tol:.3g}"
                      " (often k too large for the data: W W^T nearly singular). The "
                      "results object has converged=False and stop_reason='stalled'.",
                      ConvergenceWarning, stacklevel=user_stacklevel())

    coef = B @ W
    rss = data.rss(coef)
    extra = {"B": B, "W": W, "B_init": B_init, "rss": rss, "sigma2": rss / data.n,
             "likelihood_loss": float(data.loss_grad(B, W, cache, grad=False)[0]),
             "w_ridge": c_ridge, "ridge": lam,
             "time": time.perf_counter() - t0, "route": data.route,
             "final_criterion": float(crit)}
    return SolverResult(coef=coef, converged=stop in ("converged", "closed_form"),
                        n_iter=n_iter, history=hist, objective=float(loss), extra=extra,
                        stop_reason=stop)


def _check_options(method, backend, tol, max_iter):
    if method not in ("gd", "altmin", "mom"):
        raise ValueError(f"method must be 'gd', 'altmin' or 'mom'; got {method!r}")
    if backend not in ("fast", "cvxpy"):
        raise ValueError(f"backend must be 'fast' or 'cvxpy'; got {backend!r}")
    if not (isinstance(tol, numbers.Real) and tol > 0):
        raise ValueError(f"tol must be a positive number; got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) \
            or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative integer; got {max_iter!r}")


def _start(data, k, method, init):
    """The starting B: a spectral start by name, or the user's d x k matrix, made
    orthonormal."""
    if init is None:
        init = "mom" if method == "mom" else "ridge"
    if isinstance(init, str):
        return spectral_start(data, k, init)
    B0 = as_float_matrix(init, "init", 2)
    if B0.shape != (data.d, k):
        raise ValueError(f"init must have shape (d, k) = ({data.d}, {k}); got {B0.shape}")
    return qr_pos(B0)[0]


class _Profile:
    """The penalised objective F(B, W), its exact W-step and the B-step preconditioner.

    ``lam`` is lambda_t per task (or None); ``Sigma_hat = (1/T) sum_t S_t`` is factorised
    once (a relative jitter 1e-10 tr(Sigma_hat) / d keeps it positive definite).
    """

    def __init__(self, data, lam, backend):
        self.data, self.lam, self.backend = data, lam, backend
        d = data.d
        Sigma = data.pooled_cov()
        self.Sigma_cho = linalg.cho_factor(Sigma + (1e-10 * np.trace(Sigma) / d + 1e-300)
                                           * np.eye(d))
        self.sigma_max = float(linalg.eigvalsh(Sigma, subset_by_index=[d - 1, d - 1])[0])

    def exact_w(self, B):
        """W minimising F(B, .) (batched k x k solves) and the cache for :meth:`value`."""
        data = self.data
        G, b, cache = data.w_system(B)
        if self.backend == "cvxpy":
            from .cvx import shared_rep_w_step
            W = shared_rep_w_step(data.X @ B, data.y, data.task, data.T, ridge=self.lam)
        else:
            W = solve_w(G, b, self.lam)
        return W, cache

    def value(self, B, W, cache, grad=True):
        """F(B, W) and the Grassmann gradient of the profile in B (P_perp grad_B F)."""
        loss, g = self.data.loss_grad(B, W, cache, grad=grad)
        if self.lam is not None:
            loss = loss + 0.5 * float(np.dot(self.lam, np.einsum("kt,kt->t", W, W)))
            if grad:
                g = g - B @ (B.T @ g)
        return loss, g

    def scaled_gradient(self, g, W):
        """D_B = Sigma_hat^{-1} grad_B (W W^T)^{-1}, and W W^T."""
        k = W.shape[0]
        WWt = W @ W.T
        WWt_inv = np.linalg.inv(WWt + 1e-12 * np.trace(WWt) / k * np.eye(k))
        return linalg.cho_solve(self.Sigma_cho, g) @ WWt_inv, WWt


def _descend(prof, B, method, tol, max_iter, verbose):
    """The gd / altmin iterations from B (none for ``method="mom"``).

    Returns ``(B, W, cache, F, stop_reason, n_iter, criterion, history)``, stop_reason
    one of "converged" (criterion <= tol), "stalled", "max_iter", "closed_form" (mom).
    """
    W, cache = prof.exact_w(B)
    loss, g = prof.value(B, W, cache)
    hist = {"objective": [], "criterion": [], "step": [], "n_backtracks": []}
    stop, n_iter, crit = "closed_form" if method == "mom" else "max_iter", 0, float("nan")
    eta, nb = 0.0, 0                   # step and backtracks that produced the iterate
    rel_change = np.inf                # relative decrease of F in the last iteration
    for it in range(max_iter + 1 if method != "mom" else 0):
        D, WWt = prof.scaled_gradient(g, W)
        decr = float(np.sum(g * D))                            # <grad_B, D_B> >= 0
        crit = decr / (2 * max(loss, 1e-300))
        _record(hist, loss, crit, eta, nb, verbose)
        if crit <= tol:
            stop = "converged"
            break
        if rel_change <= _STALL:       # F no longer decreases at working precision
            stop = "stalled"
            break
        if it == max_iter:
            break
        if method == "gd":
            direction, eta, slope = D, 1.0, 1e-4 * decr
        else:
            direction, slope = g, 0.0
            eta = 1.0 / (float(np.linalg.eigvalsh(WWt)[-1]) * prof.sigma_max)
        B_new, W_new, cache_new, loss_new, eta, nb = _backtrack(
            prof, B, direction, eta, loss, slope)
        if loss_new > loss:            # no decrease even for a tiny step: stop here
            stop = "stalled"
            break
        rel_change = (loss - loss_new) / max(loss, 1e-300)
        B, W, cache = B_new, W_new, cache_new
        loss, g = prof.value(B, W, cache)
        n_iter = it + 1
    if method == "mom":
        _record(hist, loss, crit, eta, nb, verbose)
    return B, W, cache, loss, stop, n_iter, crit, hist


def _backtrack(prof, B, direction, eta, loss, slope):
    """Halve eta (at most 40 times) until ``F(qr(B - eta direction)) <= F - eta slope``."""
    nb = 0
    while True:
        B_new, _ = qr_pos(B - eta * direction)
        W_new, cache_new = prof.exact_w(B_new)
        loss_new = prof.value(B_new, W_new, cache_new, grad=False)[0]
        if loss_new <= loss - eta * slope or nb >= 40:
            return B_new, W_new, cache_new, loss_new, eta, nb
        eta *= 0.5
        nb += 1


def _record(hist, loss, crit, eta, nb, verbose):
    hist["objective"].append(float(loss))
    hist["criterion"].append(float(crit))
    hist["step"].append(float(eta))
    hist["n_backtracks"].append(int(nb))
    if verbose:
        print(f"iter {len(hist['objective']) - 1:4d}  L={loss:.10g}  crit={crit:.3e}  "
              f"step={eta:.3g}  backtracks={nb}")
