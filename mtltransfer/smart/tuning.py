# Over 600 lines: one procedure, SMART's tuning (lambda path, structural-rank CV, tune_smart).
"""Deterministic tuning of SMART: structural ranks and penalties, from moments only.

* :func:`smart_lambda_path` -- lambda by BIC along a warm-started, log-spaced path.
* :func:`cv_structural_rank` -- structural ranks (r_u, r_v) by K-fold cross-validation,
  each fold's training statistics being ``total - fold`` (no pass over the rows after the
  per-fold statistics are gathered).
* :func:`tune_smart` -- fixes whatever is given and tunes the rest (a :class:`TuningResult`);
  the rank is chosen by :func:`mtltransfer.selection.select_rank_rsc`.

Everything here takes and returns plain arrays, numbers, dicts and
:class:`~mtltransfer.solvers.SolverResult`; tuning traces are dicts of equal-length lists.
The fits of a path or a fold share one :class:`~mtltransfer.smart.problem.SmartProblem`
(``problem=``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .._threads import smart_iteration_threads
from ..exceptions import ConvergenceWarning
from ..gram import total_stats, validation_loss
from ..selection import numerical_rank, select_rank_rsc
from ..solvers._base import SolverResult, argmin_simplest
from .admm import smart_solve
from .problem import SmartProblem, source_rank, source_svd

__all__ = ["smart_lambda_path", "cv_structural_rank", "tune_smart", "TuningResult",
           "default_structural_grid"]

# ---------------------------------------------------------------------------------------
# lambda: BIC along a warm-started path
# ---------------------------------------------------------------------------------------
def _lam_max(prob, rank, r_u, r_v):
    """Smallest tied lambda at which the restricted reduced-rank fit is stationary.

    At the reduced-rank fit restricted to ``U in span U0[:, :r_u]``, ``V in span
    V0[:, :r_v]`` (so ``Omega = 0``; :meth:`SmartProblem.restricted_rrr`), the SMART KKT
    conditions hold iff every entry of the Riemannian gradient of the data term on the
    penalised rows is at most lambda in magnitude; lam_max is the largest such entry.
    Needs r <= min(r_u, r_v) (otherwise Omega can never vanish and the path starts at
    10 max|H| instead).
    """
    A, B = prob.restricted_rrr(rank, r_u, r_v)
    _, _, g_u, g_v = prob.profiled_gradients(A, B)
    m = max(np.abs(g_u[r_u:]).max(initial=0.0), np.abs(g_v[r_v:]).max(initial=0.0))
    return float(m)


def _bic(rss, nnz, n, q):
    """BIC = log(RSS / (n q)) + nnz log(n q) / (n q)."""
    nq = n * q
    return float(np.log(max(rss, 1e-300) / nq) + nnz * np.log(nq) / nq)


def _lambda_pairs(lams, tied):
    """The (lam_u, lam_v) pairs of a path: 1-D lams tied or as a product grid, or (k, 2)."""
    lams = np.asarray(lams, float)
    if lams.ndim == 2 and lams.shape[1] == 2:
        return [(float(lu), float(lv)) for lu, lv in lams], False
    if lams.ndim != 1:
        raise ValueError(f"lams must be 1-D or of shape (k, 2); got shape {lams.shape}")
    if tied:
        return [(float(l), float(l)) for l in lams], False
    return [(float(lu), float(lv)) for lu in lams for lv in lams], True


#: iteration cap of one fit along a lambda path (the chosen fit is then polished)
_PATH_MAX_ITER = 100
#: iteration cap of the fits of a path after the BIC bound showed none of them can win
_DOMINATED_MAX_ITER = 1


def smart_lambda_path(Sxx, Sxy, Syy, n, C0, rank, structural_rank, *, n_lam=12,
                      lam_ratio=1e-3, lams=None, tied=True, svd0=None, tol=1e-6,
                      path_tol=1e-4, max_iter=2000, backend="fast", patience=None,
                      problem=None, solver_opts=None, path_max_iter=_PATH_MAX_ITER,
                      polish=True, dominated_max_iter=_DOMINATED_MAX_ITER):
    r"""Choose lambda by BIC along a warm-started, log-spaced path.

    ``lam_k = lam_max * lam_ratio^(k/(n_lam-1))``, k = 0..n_lam-1, then ``lam = 0``; lam_max
    (:func:`_lam_max`) is where Omega is all zero. Each fit starts from the previous one.
    :math:`\mathrm{BIC} = \log\frac{\mathrm{RSS}}{nq} + (\mathrm{nnz}\,\Omega_u
    + \mathrm{nnz}\,\Omega_v) \frac{\log(nq)}{nq}` with
    :math:`\mathrm{RSS} = \|Y - XC\|_F^2 = 2nf`; the smallest BIC wins (ties: the larger
    lambda).
    With ``tied=False`` the grid is the product of the path with itself for
    ``(lam_u, lam_v)`` (n_lam^2 fits; each row of the grid warm-started along lam_v).

    The path is solved inexactly, to ``path_tol`` and at most ``path_max_iter``
    iterations per lambda (the BIC only needs the fit and its support); while the fit with
    the smallest BIC is one stopped by that cap, it is solved to ``path_tol`` (at most
    ``max_iter`` iterations, accelerated) and its BIC recomputed; the chosen fit is
    then polished to ``tol`` (at most ``max_iter`` iterations) from its path solution,
    with safeguarded Anderson acceleration, when ``path_tol > tol`` or its path fit
    stopped at the cap (``polish=False`` keeps the path fit, as the cross-validation
    does).

    Parameters
    ----------
    Sxx, Sxy, Syy : ndarray or None
        Centred moments (None when ``problem`` is given).
    n : int
        Number of rows (for the BIC).
    C0 : ndarray (p, q) or None
        Source coefficient matrix (None when ``svd0`` or ``problem`` is given).
    rank : int
    structural_rank : (int, int)
    n_lam, lam_ratio : int, float
        The default grid (see above).
    lams : array_like or None
        The grid instead: 1-D values (tied, or the product grid with ``tied=False``), or
        a (k, 2) array of ``(lam_u, lam_v)`` pairs, fitted in that order.
    tied : bool
    svd0 : (U0, s0, V0) or None
    tol, path_tol : float
        Tolerances of the chosen fit and of the path.
    max_iter : int
    backend : {"fast", "cvxpy"}
    patience : int or None
        Stop a tied path after ``patience`` lambdas without a better BIC.
    problem : SmartProblem or None
        The problem built once (then Sxx, Sxy, Syy, C0 and svd0 must be None).
    solver_opts : dict or None
        CVXPY options (``backend="cvxpy"``).
    path_max_iter : int or None
        Iteration cap of each fit along the path (None: ``max_iter``).
    polish : bool
        Whether the chosen fit is polished (see above).
    dominated_max_iter : int or None
        Iteration cap of the fits of a tied path once no later lambda can have a smaller
        BIC (None: no such cap). Every fit of rank r has ``RSS >= RSS_r``, the exact
        reduced-rank fit's (the minimum over rank-r matrices), so a later fit's BIC is
        at least ``log(RSS_r / (n q)) + nnz log(n q) / (n q)`` with nnz its support size;
        taking the current support size as the bound (the supports grow as lambda
        decreases, as along a lasso path), once that bound exceeds the best BIC so far
        the rest of the path only needs rough fits: their BICs stay in the trace
        (approximate, ``converged`` false), and should one of them still come out
        best it is solved to ``path_tol`` by the rule above like any capped fit.

    Returns
    -------
    dict
        ``lam`` (chosen (lam_u, lam_v)), ``result`` (its SolverResult: ``n_iter`` and
        ``history`` are the final fit's own, the polishing when there is one; the path's
        iterations are in the trace), ``index``, and ``trace``: dict of lists ``lam_u,
        lam_v, bic, rss, nnz, objective, n_iter, converged``.
    """
    if problem is None:
        if svd0 is None:
            svd0 = source_svd(C0)
        problem = SmartProblem.from_moments(Sxx, Sxy, Syy, svd0=svd0)
    elif any(v is not None for v in (Sxx, Sxy, Syy, C0, svd0)):
        raise ValueError("pass either the moments and the source (Sxx, Sxy, Syy, C0/svd0) "
                         "or problem=, not both")
    return lambda_path(problem, n, rank, structural_rank, n_lam=n_lam, lam_ratio=lam_ratio,
                       lams=lams, tied=tied, tol=tol, path_tol=path_tol, max_iter=max_iter,
                       backend=backend, patience=patience, solver_opts=solver_opts,
                       path_max_iter=path_max_iter, polish=polish,
                       dominated_max_iter=dominated_max_iter)


def lambda_path(problem, n, rank, structural_rank, *, n_lam=12, lam_ratio=1e-3, lams=None,
                tied=True, tol=1e-6, path_tol=1e-4, max_iter=2000, backend="fast",
                patience=None, solver_opts=None, path_max_iter=_PATH_MAX_ITER, polish=True,
                dominated_max_iter=_DOMINATED_MAX_ITER):
    """:func:`smart_lambda_path` on a built :class:`~mtltransfer.smart.problem.SmartProblem`
    (the fits of a fold or of the structural-rank grid share one): same options, same
    result."""
    with smart_iteration_threads(problem.p, rank):
        return _lambda_path(problem, n, rank, structural_rank, n_lam=n_lam,
                            lam_ratio=lam_ratio, lams=lams, tied=tied, tol=tol,
                            path_tol=path_tol, max_iter=max_iter, backend=backend,
                            patience=patience, solver_opts=solver_opts,
                            path_max_iter=path_max_iter, polish=polish,
                            dominated_max_iter=dominated_max_iter)


def _lambda_path(problem, n, rank, structural_rank, *, n_lam, lam_ratio, lams, tied, tol,
                 path_tol, max_iter, backend, patience, solver_opts, path_max_iter,
                 polish, dominated_max_iter):
    """The body of :func:`smart_lambda_path` (arguments checked)."""
    p, q = problem.p, problem.q
    r_u, r_v = structural_rank
    if lams is None:
        if r_u >= p and r_v >= q:
            lams = np.array([0.0])
        else:
            lmax = _lam_max(problem, rank, r_u, r_v) if rank <= min(r_u, r_v) else \
                float(np.abs(problem.H).max()) * 10
            lmax = max(lmax * 1.0001, 1e-12)
            lams = np.append(lmax * np.logspace(0, np.log10(lam_ratio), n_lam), 0.0)
    pairs, grid = _lambda_pairs(lams, tied)
    n_row = int(np.sqrt(len(pairs))) if grid else len(pairs)
    trace = {k: [] for k in ("lam_u", "lam_v", "bic", "rss", "nnz", "objective", "n_iter",
                             "converged")}
    results = []
    if path_max_iter is None:
        path_max_iter = max_iter
    fit = dict(max_iter=path_max_iter, backend=backend, solver_opts=solver_opts)
    init, bic_floor, dominated = None, None, False
    for k, (lu, lv) in enumerate(pairs):
        if grid and k % n_row == 0:
            init = results[k - n_row].extra if k else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = smart_solve(problem, rank, (r_u, r_v), (lu, lv),
                              tol=max(tol, path_tol), init=init, certify=False, **fit)
        init = res.extra
        rss = 2.0 * n * res.extra["data_term"]
        trace["lam_u"].append(lu)
        trace["lam_v"].append(lv)
        trace["bic"].append(_bic(rss, res.extra["nnz"], n, q))
        trace["rss"].append(float(rss))
        trace["nnz"].append(res.extra["nnz"])
        trace["objective"].append(res.objective)
        trace["n_iter"].append(res.n_iter)
        trace["converged"].append(res.converged)
        results.append(res)
        if patience and not grid and len(trace["bic"]) > patience:
            b = trace["bic"]
            if min(b[-patience:]) > min(b[:-patience]):
                break
        if dominated_max_iter is not None and not grid and not dominated:
            # no later lambda can win: its RSS is at least the reduced-rank RSS, its
            # support at least this one (supports grow as lambda decreases)
            if bic_floor is None:
                bic_floor = 2.0 * n * problem.rrr_data_term(rank)
            if _bic(bic_floor, res.extra["nnz"], n, q) > min(trace["bic"]):
                dominated = True
                fit["max_iter"] = min(dominated_max_iter, path_max_iter)
    # a fit stopped by the iteration cap has an approximate BIC: while such a fit is the
    # best, it is solved to path_tol (accelerated) and its BIC recomputed
    finished = set()
    while True:
        best = argmin_simplest(trace["bic"])
        if trace["converged"][best] or best in finished:
            break
        finished.add(best)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = smart_solve(problem, rank, (r_u, r_v), pairs[best],
                              tol=max(tol, path_tol), init=results[best].extra,
                              accelerate=True, certify=False, **dict(fit, max_iter=max_iter))
        rss = 2.0 * n * res.extra["data_term"]
        trace["bic"][best] = _bic(rss, res.extra["nnz"], n, q)
        trace["rss"][best] = float(rss)
        trace["nnz"][best] = res.extra["nnz"]
        trace["objective"][best] = res.objective
        trace["n_iter"][best] += res.n_iter
        trace["converged"][best] = res.converged
        results[best] = res
    result = results[best]
    if polish and (path_tol > tol or not result.converged):
        # polish from the path's solution, with safeguarded Anderson acceleration from
        # the first iteration (the tail of a warm-started polish is where it pays most)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = smart_solve(problem, rank, (r_u, r_v), pairs[best],
                                 tol=tol, init=result.extra, accelerate=True,
                                 **dict(fit, max_iter=max_iter))
    return {"lam": pairs[best], "result": result, "index": best, "trace": trace}


# ---------------------------------------------------------------------------------------
# structural ranks: K-fold cross-validation on per-fold statistics
# ---------------------------------------------------------------------------------------
def default_structural_grid(rank, p, q, C0_rank=None):
    """Tied structural ranks ``s`` to cross-validate, plus ``(p, q)`` (no penalty).

    ``s`` in ``{r, ceil(1.5 r), 2r, 3r, 4r}`` (and the numerical rank of C0 when it is
    below min(p, q)): the source's leading subspaces must contain the target's (s >= r),
    and a source of rank about 2r is the design's and the papers' typical case; larger s
    lets the data use more source directions. A tied s is capped by p and q separately
    (with a single response, r_v = q = 1 and only U is penalised). ``(p, q)`` is the
    target-only reduced-rank fit, the fallback that protects against a misleading source.
    """
    cand = {rank, int(np.ceil(1.5 * rank)), 2 * rank, 3 * rank, 4 * rank}
    if C0_rank is not None and C0_rank < min(p, q):
        cand.add(int(C0_rank))
    grid = []
    for s in sorted(cand):
        pair = (min(s, p), min(s, q))
        if rank <= s and pair != (p, q) and pair not in grid:
            grid.append(pair)
    return grid + [(p, q)]


#: a candidate is dropped from the cross-validation once its total loss on the first
#: DROP_FOLDS folds exceeds the incumbent's on the same folds by more than this factor
DROP_FACTOR, DROP_FOLDS = 1.05, 2
#: tolerance of the cross-validation fits (only their held-out losses are used)
_CV_TOL = 1e-3


def _cv_fold_fit(problem, fold, train, rank, srank, lam, n_lam, lam_ratio, tol, max_iter,
                 center, patience, parallel=False):
    """One candidate on one fold: fit on ``train`` (lambda by BIC or given), score on
    ``fold``. Returns (validation loss, lam_u used). In a parallel worker it runs with
    one BLAS thread (the workers share the cores); otherwise the ADMM's own rule decides
    (one thread for small products, every thread for large ones)."""
    from contextlib import nullcontext

    from .._threads import one_blas_thread

    with one_blas_thread() if parallel else nullcontext():
        if srank[0] >= problem.p and srank[1] >= problem.q:
            # the target-only candidate: reduced rank (shared with the fold's SMART start)
            C, lu = problem.rrr_coef(rank), 0.0
        elif lam is None:
            out = lambda_path(problem, train.n, rank, srank, n_lam=n_lam,
                              lam_ratio=lam_ratio, tol=tol, path_tol=tol, max_iter=max_iter,
                              patience=patience, polish=False)
            C, lu = out["result"].coef, out["lam"][0]
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                C = smart_solve(problem, rank, srank, lam, tol=tol, max_iter=max_iter,
                                certify=False).coef
            lu = float(np.atleast_1d(lam)[0])
        return float(validation_loss(fold, train, C, center=center)), float(lu)


def _dominated(losses, ref_losses, n_folds):
    """The dropping rule of :func:`cv_structural_rank` on the folds evaluated so far."""
    k = len(losses)
    if ref_losses is None or k == 0:
        return False
    if sum(losses) > sum(ref_losses):          # exact: losses are >= 0
        return True
    return k >= DROP_FOLDS and sum(losses) > DROP_FACTOR * sum(ref_losses[:k])


def cv_structural_rank(fold_stats, C0, rank, *, grid=None, lam=None, n_lam=12,
                       lam_ratio=1e-3, tol=1e-4, max_iter=2000, center=True, svd0=None,
                       patience=2, drop=True, n_jobs=None, first=None):
    """Structural ranks (r_u, r_v) by K-fold cross-validation.

    For every candidate and fold, SMART is fitted on the training statistics
    ``total - fold`` (lambda by BIC on the training part, or the given ``lam``; the
    candidate ``(p, q)`` is the reduced-rank fit) and scored by :func:`validation_loss` on
    the fold. The candidate with the smallest mean loss wins (near-ties: the earlier one).
    The per-fold lambda paths stop early after ``patience`` lambdas without a better BIC.

    Dropping rule (``drop=True``). The target-only candidate ``(p, q)`` is scored first
    (it is cheap) and is the first *incumbent*; afterwards the incumbent is the complete
    candidate with the smallest mean loss so far. The folds of every other candidate are
    fitted in two batches, the first ``2`` folds and then the rest, and after the first
    batch the candidate is dropped when either

    * the sum of its losses so far exceeds the sum of the incumbent's losses over all K
      folds (exact: losses are nonnegative, so its mean cannot be smaller), or
    * its total loss on those 2 folds exceeds the incumbent's total on the same folds by
      more than 5% (a paired comparison on the same rows: a candidate this much worse on
      two folds is not expected to recover on the remaining ones; the near-tie rule of
      the final choice works at a far smaller scale).

    A dropped candidate has ``cv_mean = nan`` in the trace (``dropped`` true, and nan
    losses for the folds not fitted) and cannot be chosen. The batches do not depend on
    ``n_jobs``, so neither does the result.

    Parameters
    ----------
    fold_stats : list of SufficientStats
    C0 : ndarray (p, q) or None
    rank : int
    grid : list of (int, int) or None
        Candidates (default :func:`default_structural_grid`).
    lam : float, pair or None
        Fixed penalties; None: BIC path on each training part.
    n_lam, lam_ratio, tol, max_iter, center, svd0, patience
        As for :func:`smart_lambda_path`.
    drop : bool
        Apply the dropping rule.
    n_jobs : int or None
        Parallel fits (joblib; None or 1: sequential): the first batch of every candidate
        at once (candidates x folds), then the remaining folds of each candidate kept.
        In parallel each fit runs with one BLAS thread.
    first : (int, int) or None
        A candidate expected to win (e.g. the choice of the full-data fit, in a bootstrap
        replicate): it is scored right after ``(p, q)`` on all K folds, so that it is the
        incumbent of the dropping rule early and the others are dropped after 2 folds.
        The choice is still the smallest mean loss among the candidates kept.

    Returns
    -------
    best : (int, int)
    trace : dict of lists
        ``r_u, r_v, cv_mean, cv_se, lam_mean, dropped`` per candidate (plus
        ``fold_loss`` lists).
    """
    total = total_stats(fold_stats)
    p, q = total.p, total.q
    K = len(fold_stats)
    if svd0 is None:
        svd0 = source_svd(C0)
    if grid is None:
        grid = default_structural_grid(rank, p, q, numerical_rank(C0) if C0 is not None
                                       else None)
    grid = [(int(a), int(b)) for a, b in grid]
    trains = [total - f for f in fold_stats]
    probs = [None] * K

    def problem(k):
        if probs[k] is None:
            probs[k] = SmartProblem.from_moments(*trains[k].moments(center=center),
                                                 svd0=svd0)
        return probs[k]

    parallel = n_jobs is not None and n_jobs != 1

    def run(pairs):
        """Fold fits of (candidate index, fold) pairs, in this order."""
        jobs = [(problem(k), fold_stats[k], trains[k], rank, grid[i], lam, n_lam,
                 lam_ratio, tol, max_iter, center, patience, parallel) for i, k in pairs]
        if not parallel or len(jobs) == 1:
            return [_cv_fold_fit(*a) for a in jobs]
        from joblib import Parallel, delayed

        return Parallel(n_jobs=n_jobs)(delayed(_cv_fold_fit)(*a) for a in jobs)

    # (p, q) first, then the expected winner (first=), then the grid's order
    order = sorted(range(len(grid)), key=lambda i: (grid[i] != (p, q), grid[i] != first))
    hinted = first is not None and tuple(first) in grid and tuple(first) != (p, q)
    # the first batch of every candidate (all K folds of the first, the incumbent; the
    # first 2 of the others) does not depend on any decision: one parallel batch over
    # candidates and folds
    batch = {i: list(range(K)) if not drop or pos < 1 + hinted
             else list(range(min(DROP_FOLDS, K))) for pos, i in enumerate(order)}
    pairs = [(i, k) for i in order for k in batch[i]]
    done = dict(zip(pairs, run(pairs)))
    scores = {}
    ref = None                                     # the incumbent's fold losses
    for i in order:
        out = [done[(i, k)] for k in batch[i]]
        dropped = drop and len(out) < K and _dominated([o[0] for o in out], ref, K)
        if not dropped and len(out) < K:
            out += run([(i, k) for k in range(len(out), K)])
        scores[i] = (out, dropped)
        if not dropped:
            losses = [o[0] for o in out]
            if ref is None or np.mean(losses) < np.mean(ref):
                ref = losses
    trace = {k: [] for k in ("r_u", "r_v", "cv_mean", "cv_se", "lam_mean", "dropped",
                             "fold_loss")}
    for i, (r_u, r_v) in enumerate(grid):
        out, dropped = scores[i]
        losses = np.full(K, np.nan)
        losses[:len(out)] = [o[0] for o in out]
        trace["r_u"].append(r_u)
        trace["r_v"].append(r_v)
        trace["cv_mean"].append(float("nan") if dropped else float(losses.mean()))
        trace["cv_se"].append(float("nan") if dropped or K < 2 else
                              float(losses.std(ddof=1) / np.sqrt(K)))
        trace["lam_mean"].append(float(np.mean([o[1] for o in out])))
        trace["dropped"].append(bool(dropped))
        trace["fold_loss"].append(losses.tolist())
    best = argmin_simplest(trace["cv_mean"])
    return (trace["r_u"][best], trace["r_v"][best]), trace


# ---------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------
@dataclass
class TuningResult:
    """What :func:`tune_smart` returns: the configuration, how it was chosen, the fit.

    Attributes
    ----------
    rank : int
        Rank r of the fit.
    structural_rank : (int, int)
        ``(r_u, r_v)``.
    lam : (float, float)
        ``(lam_u, lam_v)``.
    how : dict of str to str
        How each of ``"rank"``, ``"structural_rank"``, ``"lam"`` was chosen: ``"given"``,
        ``"rsc"`` (rank selection criterion), ``"cv"`` (K-fold cross-validation) or
        ``"bic"`` (BIC).
    result : SolverResult
        The final fit (:func:`mtltransfer.smart.admm.smart_admm`), solved to ``tol``.
    rank_info : dict or None
        The trace of :func:`select_rank_rsc` when the rank was tuned.
    cv : dict of lists
        The trace of :func:`cv_structural_rank` (empty if not run).
    bic_path : dict of lists
        The trace of :func:`smart_lambda_path` on the full statistics (empty if not run).
    """

    rank: int
    structural_rank: tuple
    lam: tuple
    how: dict
    result: SolverResult
    rank_info: dict | None = None
    cv: dict = field(default_factory=dict)
    bic_path: dict = field(default_factory=dict)


def _lam_pair(lam):
    """A scalar or a pair -> (lam_u, lam_v) as floats."""
    return tuple(float(v) for v in np.broadcast_to(np.asarray(lam, float), (2,)))


def _structural_rank_by_bic(prob, n, rank, grid, lam_pair, *, n_lam, lam_ratio, path_tol,
                            max_iter):
    """The candidate of ``grid`` whose lambda path (or fit at ``lam_pair``) has the
    smallest BIC (ties: the earlier candidate)."""
    best = None
    for s in grid:
        out = lambda_path(prob, n, rank, s, n_lam=n_lam, lam_ratio=lam_ratio, tol=path_tol,
                          path_tol=path_tol, max_iter=max_iter,
                          lams=None if lam_pair is None else [lam_pair])
        b = out["trace"]["bic"][out["index"]]
        if best is None or b < best[0]:
            best = (b, tuple(s))
    return best[1]


def tune_smart(stats, C0, rank=None, structural_rank=None, lam=None, *, fold_stats=None,
               theta=0.1, grid=None, n_lam=12, lam_ratio=1e-3, tol=1e-6, path_tol=1e-4,
               max_iter=2000, backend="fast", center=True, svd0=None, rank_rows=None,
               solver_opts=None, n_jobs=None, drop=True, rows=None, multiplicity=None,
               structural_first=None):
    """Fit SMART, tuning whatever of (rank, structural_rank, lam) is not given.

    * rank: :func:`select_rank_rsc`, capped by the numerical rank of C0.
    * structural_rank: :func:`cv_structural_rank` on ``fold_stats`` (per-fold statistics,
      e.g. from :func:`kfold_stats`); without them, the candidate of the same grid with
      the smallest BIC (after its lambda path, or at the given ``lam``) is taken.
    * lam: :func:`smart_lambda_path` (BIC) on the full statistics.

    Lambda paths are solved to ``path_tol``, the cross-validation fits to ``1e-3`` (only
    their held-out losses are used; ``_CV_TOL``), the final fit to ``tol``.

    Parameters
    ----------
    stats : SufficientStats
        Target statistics (all rows). If ``fold_stats`` is given, ``stats`` may be None
        (their sum is used).
    C0 : ndarray (p, q)
    rank, structural_rank, lam : optional
        Fixed values (``structural_rank`` a pair, ``lam`` a float or a pair).
    fold_stats : list of SufficientStats or None
    theta : float
        Margin of the rank selection criterion.
    grid : list of (int, int) or None
        Structural-rank candidates (default :func:`default_structural_grid`).
    n_lam, lam_ratio : int, float
        The lambda grid (:func:`smart_lambda_path`).
    tol, path_tol : float
        Tolerances of the final fit and of the paths and cross-validation fits.
    max_iter : int
    backend : {"fast", "cvxpy"}
        Backend of the final lambda path and fit.
    center : bool
        Whether the moments are centred (the model has an intercept).
    svd0 : (U0, s0, V0) or None
        Precomputed :func:`mtltransfer.smart.problem.source_svd` of C0.
    rank_rows : (DesignSVD, ndarray) or None
        The rows' factorisation for the rank criterion (see :func:`select_rank_rsc`).
    solver_opts : dict or None
        CVXPY options (``backend="cvxpy"``).
    n_jobs : int or None
        Parallel cross-validation fits (joblib); the result does not depend on it.
    drop : bool
        Drop dominated cross-validation candidates (the rule of
        :func:`cv_structural_rank`).
    rows : ndarray (n, p) or None
        The centred rows behind ``stats``: the full-data fits then take their products
        through the rows (:meth:`SmartProblem.from_moments`), worth it when n < p / 2.
    multiplicity : ndarray (n,) or None
        With ``rank_rows``: copies of each row's observation (a pairs-bootstrap
        replicate; see :func:`select_rank_rsc`).
    structural_first : (int, int) or None
        The structural ranks expected to win the cross-validation (a warm start, e.g.
        the full-data choice in a bootstrap replicate; ``first`` of
        :func:`cv_structural_rank`).

    Returns
    -------
    TuningResult
    """
    if stats is None:
        if not fold_stats:
            raise ValueError("stats or fold_stats must be given")
        stats = total_stats(fold_stats)
    Sxx, Sxy, Syy = stats.moments(center=center)
    n, p, q = stats.n, stats.p, stats.q
    C0 = np.asarray(C0, float)
    if C0.shape != (p, q):
        raise ValueError(f"C0 must have shape (p, q) = {(p, q)}; got {C0.shape}")
    if svd0 is None:
        svd0 = source_svd(C0)
    lam_pair = None if lam is None else _lam_pair(lam)
    how, rank_info, cv_trace, bic_trace = {}, None, {}, {}
    C0_rank = source_rank(svd0[1])
    if rank is None:
        rank, rank_info = select_rank_rsc(Sxx, Sxy, Syy, n, theta=theta,
                                          cap=max(C0_rank, 1), center=center,
                                          rows=rank_rows,
                                          multiplicity=None if rank_rows is None
                                          else multiplicity)
        how["rank"] = "rsc"
    else:
        how["rank"] = "given"
    prob = SmartProblem.from_moments(Sxx, Sxy, Syy, svd0=svd0, rows=rows)
    if structural_rank is None:
        if grid is None:
            grid = default_structural_grid(rank, p, q, C0_rank)
        if fold_stats is not None:
            structural_rank, cv_trace = cv_structural_rank(
                fold_stats, C0, rank, grid=grid, lam=lam_pair, n_lam=n_lam,
                lam_ratio=lam_ratio, tol=_CV_TOL, max_iter=max_iter, center=center,
                svd0=svd0, drop=drop, n_jobs=n_jobs, first=structural_first)
            how["structural_rank"] = "cv"
        else:
            structural_rank = _structural_rank_by_bic(
                prob, n, rank, grid, lam_pair, n_lam=n_lam, lam_ratio=lam_ratio,
                path_tol=path_tol, max_iter=max_iter)
            how["structural_rank"] = "bic"
    else:
        how["structural_rank"] = "given"
    structural_rank = (int(structural_rank[0]), int(structural_rank[1]))
    fit = dict(tol=tol, max_iter=max_iter, backend=backend, solver_opts=solver_opts)
    if lam_pair is None:
        out = lambda_path(prob, n, rank, structural_rank, n_lam=n_lam, lam_ratio=lam_ratio,
                          path_tol=path_tol, polish=False, **fit)
        lam_pair, bic_trace = out["lam"], out["trace"]
        how["lam"] = "bic"
    else:
        how["lam"] = "given"
    # the final fit at the chosen settings is the fit of those settings given: the same
    # deterministic start and certified stopping rule (smart_solve, which warns when it
    # does not converge), so a refit at the tuned rank, structural ranks and lambda
    # returns this fit
    result = smart_solve(prob, rank, structural_rank, lam_pair, **fit)
    return TuningResult(rank=int(rank), structural_rank=structural_rank,
                        lam=(float(lam_pair[0]), float(lam_pair[1])), how=how,
                        result=result, rank_info=rank_info, cv=cv_trace,
                        bic_path=bic_trace)
