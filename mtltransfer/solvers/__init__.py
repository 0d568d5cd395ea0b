"""Numerical kernels: plain NumPy arrays in, :class:`SolverResult` out. No pandas here."""

from ._base import SolverResult, warn_not_converged

__all__ = ["SolverResult", "warn_not_converged"]
