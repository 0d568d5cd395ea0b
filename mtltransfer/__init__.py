"""mtltransfer: transfer and multi-task linear regression for statisticians.

Estimators
----------
OLS, Ridge, ReducedRank, NuclearNorm
    Target-only multi-response baselines.
"""

from .exceptions import ConvergenceWarning, MtlWarning, SingularMatrixWarning
from .gram import SufficientStats
from .models.base import MultiResponseResults, load
from .models.linear import OLS, NuclearNorm, ReducedRank, Ridge
from . import datasets

__all__ = ["OLS", "Ridge", "ReducedRank", "NuclearNorm", "MultiResponseResults",
           "SufficientStats", "load", "datasets", "ConvergenceWarning", "MtlWarning",
           "SingularMatrixWarning"]
__version__ = "0.1.0"
