"""SMART with the magnitude pull ``(gamma/2)||C - C0||_F^2``: fixed gamma and its tuning.

The objective (docs/smart.rst, "Borrowing the source's magnitudes")

    (1/2n)||Y - X U diag(d) V^T||_F^2 + lam_u ||U_perp^T U||_1 + lam_v ||V_perp^T V||_1
        + (gamma/2)||U diag(d) V^T - C0||_F^2

is SMART on the augmented moments of
:func:`mtltransfer.smart.gamma.magnitude_moments`; this module fits it for a given
gamma and chooses gamma by K-fold cross-validation (``gamma="cv"``).

Tuning rule (deterministic). The rank, structural ranks and lambda are first chosen by
SMART's own rules at ``gamma = 0`` (RSC, CV, BIC; the paper's SMART). Then, on the same
folds, every pair (rank, gamma) of

* ranks ``{r, r_full}``, ``r_full = max(r, min(rank C0, p, q))`` (at ``r_full`` the source
  itself is feasible, so large gamma reaches it), the structural ranks raised to at least
  the rank, lambda kept;
* ``gamma = 0`` and ``gamma = s * 10^k``, k in ``linspace(-2, 4, 11)``, ``s = tr(Sxx) / p``
  (the data's curvature scale: gamma is comparable with the eigenvalues of ``Sxx``),

is fitted on each fold's training statistics (warm-started along gamma, to tolerance
1e-3 or 150 iterations, with Anderson acceleration: only held-out losses are used) and
scored on the held-out rows; a candidate whose loss on the first 2 folds exceeds the
best one's on those folds by more than 5% is dropped (``cv_mean`` nan), as in the
structural-rank cross-validation; the smallest mean held-out loss wins, near-ties going
to the earlier candidate (``gamma = 0`` at the selected rank first, then increasing
gamma).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..exceptions import ConvergenceWarning
from ..gram import total_stats, validation_loss
from ..solvers._base import argmin_simplest
from .admm import smart_solve
from .gamma import magnitude_moments
from .problem import SmartProblem
from .tuning import DROP_FACTOR, DROP_FOLDS

#: iteration cap of a cross-validation fit (only its held-out loss is used; the lambda
#: path of the structural-rank CV caps its fits at 100 the same way)
_CV_MAX_ITER = 150
#: the gamma grid relative to tr(Sxx) / p
GAMMA_GRID = tuple(float(v) for v in np.logspace(-2, 4, 11))


def _problem(model, Sxx, Sxy, Syy, gamma):
    return SmartProblem.from_moments(*magnitude_moments(Sxx, Sxy, Syy, model.source, gamma),
                                     svd0=model.source_svd, pull=gamma)


def _fit_fixed(model, moments, rank, srank, lam, gamma, *, tol, max_iter, backend,
               init=None, quiet=False, accelerate="auto", certify=True):
    prob = _problem(model, *moments, gamma)
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore", ConvergenceWarning)
        sol = smart_solve(prob, rank, srank, lam, tol=tol, max_iter=max_iter, init=init,
                          backend=backend, accelerate=accelerate, certify=certify)
    sol.extra["gamma"] = float(gamma)
    return sol


def gamma_candidates(model, rank, srank):
    """The (rank, structural rank, gamma) candidates of the tuning rule (module doc)."""
    p, q = model.k_exog, model.k_endog
    Sxx = model.moments()[0]
    scale = max(float(np.trace(Sxx)) / p, np.finfo(float).tiny)
    gammas = [0.0] + [scale * g for g in GAMMA_GRID]
    r_full = max(rank, min(max(model.source_rank, 1), p, q))
    out = [(rank, srank, g) for g in gammas]
    if r_full != rank:
        s_full = (max(srank[0], r_full), max(srank[1], r_full))
        out += [(r_full, s_full, g) for g in gammas[1:]]
    return out


def cv_gamma(model, lam, candidates, n_folds, *, tol=1e-3, max_iter=2000):
    """K-fold cross-validation of the (rank, structural rank, gamma) candidates.

    Returns the index of the winner and the trace (DataFrame: rank, r_u, r_v, gamma,
    cv_mean, cv_se and the fold losses).
    """
    folds, n_folds = model.cv_folds(n_folds, "cross-validation of gamma")
    total = total_stats(folds)
    losses = np.full((len(candidates), n_folds), np.nan)
    live = np.ones(len(candidates), dtype=bool)
    for k, fold in enumerate(folds):
        if k == DROP_FOLDS:
            # the dropping rule of the structural-rank CV: a candidate whose loss on the
            # first folds exceeds the best one's on the same folds by 5% is not pursued
            part = losses[:, :k].sum(axis=1)
            live = part <= DROP_FACTOR * part.min()
        train = total - fold
        moments = train.moments(center=model.center)
        init = {}
        for i, (rank, srank, gamma) in enumerate(candidates):
            if not live[i]:
                continue
            key = (rank, srank)
            sol = _fit_fixed(model, moments, rank, srank, lam, gamma, tol=tol,
                             max_iter=min(max_iter, _CV_MAX_ITER), backend="fast",
                             init=init.get(key), quiet=True, accelerate=True,
                             certify=False)     # only its held-out loss is used
            init[key] = sol.extra
            losses[i, k] = validation_loss(fold, train, sol.coef, center=model.center)
    w = np.array([f.n for f in folds], dtype=float)
    mean = losses @ w / w.sum()
    from ..selection import fold_se
    se = fold_se(losses, axis=1)
    table = pd.DataFrame({"rank": [c[0] for c in candidates],
                          "r_u": [c[1][0] for c in candidates],
                          "r_v": [c[1][1] for c in candidates],
                          "gamma": [c[2] for c in candidates], "cv_mean": mean,
                          "cv_se": se, "dropped": ~live})
    table = table.join(pd.DataFrame(losses, columns=[f"fold{k + 1}"
                                                     for k in range(n_folds)]))
    return argmin_simplest(mean), table


def fit_smart_magnitude(model, rank, structural_rank, lam, gamma, *, backend, tol,
                        max_iter, n_folds, init, verbose, n_jobs, results_cls):
    """:meth:`SMART.fit` with ``gamma != 0``: see the module docstring (``results_cls``
    is SMART's results class, passed in: this module sits below the SMART model)."""
    SMARTResults = results_cls

    moments = model.moments()
    if rank is not None and structural_rank is not None and lam is not None and \
            gamma != "cv":
        sol = _fit_fixed(model, moments, rank, structural_rank, lam, gamma, tol=tol,
                         max_iter=max_iter, backend=backend, init=init)
        return SMARTResults(model, sol, {"rank": "given", "structural_rank": "given",
                                         "lam": "given", "gamma": "given"}, {})
    # the other hyperparameters by SMART's own rules at gamma = 0
    base = model.fit(rank=rank, structural_rank=structural_rank, lam=lam, gamma=0.0,
                     backend=backend, tol=tol, max_iter=max_iter, n_folds=n_folds,
                     verbose=verbose, n_jobs=n_jobs)
    how, tuning = dict(base.chosen_by), dict(base.tuning)
    r0, s0, lam0 = base.rank, base.structural_rank, base.lam
    if gamma != "cv":
        sol = _fit_fixed(model, moments, r0, s0, lam0, gamma, tol=tol, max_iter=max_iter,
                         backend=backend)
        how["gamma"] = "given"
        return SMARTResults(model, sol, how, tuning)
    cands = gamma_candidates(model, r0, s0)
    if rank is not None:
        cands = [c for c in cands if c[0] == rank]
    if structural_rank is not None:
        cands = [c for c in cands if tuple(c[1]) == tuple(s0)]
    best, table = cv_gamma(model, lam0, cands, n_folds, max_iter=max_iter)
    tuning["gamma_cv"] = table
    how["gamma"] = f"{n_folds}-fold CV"
    r, s, g = cands[best]
    if g == 0.0 and r == r0:
        sol = base._solver
        sol.extra["gamma"] = 0.0
    else:
        sol = _fit_fixed(model, moments, r, s, lam0, g, tol=tol, max_iter=max_iter,
                         backend=backend)
        if r != r0:
            how["rank"] = f"{n_folds}-fold CV (with gamma)"
    return SMARTResults(model, sol, how, tuning)
