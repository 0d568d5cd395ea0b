"""mtltransfer: transfer and multi-task linear regression for statisticians.

Estimators
----------
SMART
    Spectral transfer of a source study's singular subspaces to a small target study.
SharedRepresentation
    Many regression tasks sharing a d x k linear representation; transfer to new tasks.
    Given a random part (``re_formula`` / ``exog_re``) it is a linear mixed model whose
    random coefficients have rank k (MultilevelRepresentation; at full rank statsmodels'
    MixedLM).
OLS, Ridge, ReducedRank, NuclearNorm
    Target-only multi-response baselines with the same results API.
SparseReducedRank, SOFAR, RSSVD
    The sparse reduced-rank comparators of the R package rrpack.
Transfer
    The transfer family (SMART, ridge to the source, the source as is, ...) and target-only
    baselines, one chosen by cross-validation.

scikit-learn estimators wrapping these models are in :mod:`mtltransfer.sklearn`
(``pip install mtltransfer[sklearn]``).
"""

from .exceptions import ConvergenceWarning, MtlWarning, SingularMatrixWarning, ValueWarning
from .gram import SufficientStats
from .io import load
from .models.base import MultiResponseResults
from .models.linear import OLS, NuclearNorm, ReducedRank, Ridge
from .models.shared import AdaptedTask, SharedRepresentation, SharedRepresentationResults
from .models.shared_multilevel import (AdaptedGroup, MultilevelBootstrap,
                                       MultilevelRepresentation, MultilevelResults)
from .smart.model import SMART, SMARTResults
from .models.transfer import NuclearContrast, RidgeToSource, SourceMixture, SourceSubspaceRRR
from .models.transfer_family import Transfer, TransferResults
from .models.sparse import RSSVD, SOFAR, SparseReducedRank
from .models.revision import ReducedRankRidge
from .models.revision import TwoStageTransfer
from .smart.block_model import BISMART, BISMARTResults
from .smart.sparse_model import SparseSMART, SparseSMARTResults
from . import datasets
from .screening import MarginalScreening

__all__ = ["SMART", "SMARTResults", "SharedRepresentation", "SharedRepresentationResults",
           "AdaptedTask", "MultilevelRepresentation", "MultilevelResults", "AdaptedGroup",
           "MultilevelBootstrap", "OLS", "Ridge", "ReducedRank", "NuclearNorm",
           "RidgeToSource", "NuclearContrast", "SourceSubspaceRRR", "SourceMixture",
           "Transfer", "TransferResults",
           "SparseReducedRank", "SOFAR", "RSSVD",
           "ReducedRankRidge",
           "TwoStageTransfer",
           "BISMART", "BISMARTResults", "SparseSMART", "SparseSMARTResults",
           "MultiResponseResults", "SufficientStats", "load", "datasets",
           "ConvergenceWarning", "MtlWarning", "SingularMatrixWarning", "ValueWarning",
           "MarginalScreening"]
__version__ = "0.1.0"

# Optional front ends and heavy parts load on first use (PEP 562): ``import mtltransfer`` reads
# none of scipy.stats, cvxpy, dask, matplotlib, scikit-learn or statsmodels' formula/regression.
_LAZY_SUBMODULES = ("bootstrap", "cli", "dask", "inference", "io", "plotting", "sklearn")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_LAZY_SUBMODULES))
