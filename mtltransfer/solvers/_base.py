"""The common return type of every numerical kernel in :mod:`mtltransfer.solvers`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ConvergenceWarning, user_stacklevel


@dataclass
class SolverResult:
    """What a solver returns: plain arrays and numbers, never pandas.

    Attributes
    ----------
    coef : ndarray
        The main estimate (for regression solvers, the p x q coefficient matrix).
    converged : bool
        Whether the stopping criterion was met before ``max_iter``.
    n_iter : int
        Number of iterations performed.
    history : dict of str to list
        Per-iteration diagnostics (objective, residuals, step sizes ...), equal lengths.
    objective : float
        Objective value at ``coef``.
    extra : dict
        Solver-specific arrays (factors, duals, ...).
    stop_reason : str
        Why the solver stopped: ``"converged"`` (its optimality criterion met ``tol``),
        ``"max_iter"``, ``"stalled"`` (no further progress possible although the
        criterion is above ``tol``: reported as not converged), or ``"closed_form"``.
    """

    coef: np.ndarray
    converged: bool = True
    n_iter: int = 0
    history: dict = field(default_factory=dict)
    objective: float = float("nan")
    extra: dict = field(default_factory=dict)
    stop_reason: str = ""

    def __post_init__(self):
        if not self.stop_reason:
            self.stop_reason = "converged" if self.converged else "max_iter"


#: scores within this relative distance of the best are a tie (see :func:`argmin_simplest`)
TIE_RTOL = 1e-8


def argmin_simplest(scores, rtol=TIE_RTOL):
    """Index of the best score, near-ties going to the simplest candidate.

    ``scores`` are ordered from the simplest candidate to the most complex (largest
    penalty first, smallest rank first). The first score within ``rtol`` (relative) of the
    minimum wins, so that rounding differences (a BLAS thread count, the order of a sum)
    cannot change a tuning decision. Non-finite scores never win unless all are.
    """
    s = np.asarray(scores, dtype=float)
    finite = np.isfinite(s)
    if not finite.any():
        return 0
    best = s[finite].min()
    within = finite & (s <= best + rtol * max(abs(best), np.finfo(float).tiny))
    return int(np.flatnonzero(within)[0])


def warn_not_converged(name, n_iter, criterion, tol):
    """Issue the package's single convergence warning, with the numbers and the remedy
    (at the user's line, :func:`~mtltransfer.exceptions.user_stacklevel`)."""
    warnings.warn(
        f"{name} did not converge in {n_iter} iterations: stopping criterion "
        f"{criterion:.3g} > tol={tol:.3g}. Increase max_iter or loosen tol; "
        "the results object has converged=False and a per-iteration history.",
        ConvergenceWarning,
        stacklevel=user_stacklevel(),
    )
