"""Type-II Anderson acceleration of a fixed-point map (private helper of the SMART ADMM).

:class:`Anderson` is the extrapolation only; :class:`SafeguardedAnderson` adds the
safeguard (whether an extrapolated point is kept, when acceleration is switched off). The
caller owns the fixed-point map, decides when the memory must be cleared and how a point
is stacked into a flat vector and mapped back.
"""

from __future__ import annotations

import numpy as np


class Anderson:
    """Type-II Anderson mixing with memory ``m`` on flat vectors.

    With fixed-point residuals ``f_i = g(x_i) - x_i`` and the differences
    ``dF = [f_{i+1} - f_i]``, ``dG = [g_{i+1} - g_i]`` of the last ``m`` pairs, the next point
    is ``g_k - dG gamma`` where ``gamma`` minimises ``||f_k - dF gamma||^2 + eps ||gamma||^2``
    (``eps = reg * ||dF||_F^2``, a relative Tikhonov term that keeps the small
    least-squares problem well conditioned). Deterministic; no randomness.
    """

    def __init__(self, memory=5, reg=1e-10):
        self.memory = int(memory)
        self.reg = float(reg)
        self.reset()

    def reset(self):
        self._g_prev = None
        self._f_prev = None
        self._dG = []
        self._dF = []

    def __len__(self):
        return len(self._dF)

    def step(self, x, gx):
        """Record the pair ``(x, g(x))`` and return the extrapolated next point.

        Returns ``gx`` itself (the plain step) while the memory is empty.
        """
        f = gx - x
        if self._f_prev is not None:
            self._dF.append(f - self._f_prev)
            self._dG.append(gx - self._g_prev)
            if len(self._dF) > self.memory:
                del self._dF[0], self._dG[0]
        self._g_prev, self._f_prev = gx, f
        if not self._dF:
            return gx
        dF = np.column_stack(self._dF)
        dG = np.column_stack(self._dG)
        M = dF.T @ dF
        eps = self.reg * max(float(np.trace(M)), 1e-300)
        M[np.diag_indices_from(M)] += eps
        try:
            gamma = np.linalg.solve(M, dF.T @ f)
        except np.linalg.LinAlgError:
            self.reset()
            return gx
        if not np.all(np.isfinite(gamma)):
            self.reset()
            return gx
        return gx - dG @ gamma


class SafeguardedAnderson:
    """The safeguard around :class:`Anderson` used by the SMART ADMM (docs/smart.rst).

    The caller runs a fixed-point iteration and, after each step that did not stop the
    run, calls :meth:`review` with the step's merit (a norm of its fixed-point residual),
    then :meth:`extrapolate` with the pair (input, output) when that pair is usable. The
    rules, all deterministic:

    * an extrapolated point is *pending* until the step taken from it has been reviewed;
      that step is kept when its merit is at most ``slack`` times the merit of the plain
      step it replaced, otherwise it is discarded (the plain output is restored and the
      memory cleared);
    * once ``give_up`` extrapolations have been rejected and the rejections outnumber the
      accepted ones, acceleration is switched off for the rest of the run;
    * so it is when the best merit seen has not improved by the factor ``improvement``
      for ``patience`` reviews.

    Parameters
    ----------
    memory, reg : int, float
        Of the underlying :class:`Anderson` mixing.
    slack, give_up, patience, improvement
        The safeguard's constants (see above).

    Attributes
    ----------
    active : bool
        False once acceleration has been switched off.
    pending : tuple or None
        ``(plain, report, merit)`` of the plain step an extrapolated point replaced.
    """

    def __init__(self, memory=5, reg=1e-10, *, slack=1.2, give_up=5, patience=30,
                 improvement=0.99):
        self.mixer = Anderson(memory, reg)
        self.slack, self.give_up = float(slack), int(give_up)
        self.patience, self.improvement = int(patience), float(improvement)
        self.active = True
        self.pending = None
        self.n_accepted = self.n_rejected = 0
        self._best, self._since_best = np.inf, 0

    def reset(self):
        """Clear the memory (the iteration's coordinates changed)."""
        self.mixer.reset()

    def review(self, merit, output, report):
        """Judge the step just made; returns ``(output, report, merit, restored)``.

        ``output`` and ``report`` are the step's result and whatever goes with it; when
        the step came from a rejected extrapolated point they are replaced by the plain
        step's (``restored=True``).
        """
        restored = False
        if self.pending is not None:
            plain, plain_report, ref = self.pending
            self.pending = None
            if merit <= self.slack * ref:
                self.n_accepted += 1
            else:
                output, report, merit, restored = plain, plain_report, ref, True
                self.mixer.reset()
                self.n_rejected += 1
                if self.n_rejected >= self.give_up and self.n_rejected > self.n_accepted:
                    self.active = False
        if self.active:
            if merit < self.improvement * self._best:
                self._best, self._since_best = merit, 0
            else:
                self._since_best += 1
                if self._since_best >= self.patience:
                    self.active = False
        return output, report, merit, restored

    def extrapolate(self, x, gx, output, report, merit):
        """Record the pair ``(x, gx = T(x))``; return the extrapolated point or None.

        None (no extrapolation: take the plain step) while the memory holds no
        difference; otherwise the plain ``output`` (with its ``report`` and ``merit``) is
        kept pending until the step from the returned point is reviewed.
        """
        x_next = self.mixer.step(x, gx)
        if not len(self.mixer):
            return None
        self.pending = (output, report, merit)
        return x_next
