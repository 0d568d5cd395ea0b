"""Type-II Anderson acceleration of a fixed-point map (private helper of the SMART ADMM).

Only the extrapolation: the caller owns the safeguard (whether an extrapolated point is
kept) and decides when to restart the memory.
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
