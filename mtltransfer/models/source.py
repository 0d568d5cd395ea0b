"""Models that borrow a source study's fitted coefficient matrix (never its rows)."""

from __future__ import annotations

import pandas as pd

from .. import source_alignment
from ..bootstrap import source_draws
from ..screening import screen_data
from ..smart.problem import source_rank, source_svd
from .base import MultiResponseModel
from .multi_source import combine_sources, is_source_list


class SourceModel(MultiResponseModel):
    """A multi-response model that borrows a source study's coefficient matrix.

    Parameters
    ----------
    endog, exog
        Target responses and predictors (see
        :class:`~mtltransfer.models.base.MultiResponseModel`).
    source : results, DataFrame or array_like, or a list of them
        The source's coefficient matrix, exactly as for :class:`~mtltransfer.SMART`:
        fitted results of mtltransfer or statsmodels, a DataFrame of coefficients aligned
        by name, or a p x q array. A zero or non-finite source is an error. A results
        source fitted from a formula is compared with a formula target by its codings:
        a categorical coded differently (another reference level or contrast, other
        levels) is re-expressed in the target's coding where that is exact, and refused
        naming the term and both references otherwise
        (:func:`mtltransfer.source_alignment.recode_contrasts`). A results source also
        gives the bootstrap its sampling distribution (``source_draws``; see
        :mod:`mtltransfer.bootstrap`). A list gives
        several sources: each is weighted by its cross-validated usefulness on the
        target and the model uses the weighted source
        (:func:`mtltransfer.models.multi_source.combine_sources`; the weights are
        ``model.source_weights``, None with one source).
    intercept : bool or None
    missing : {"raise", "drop"}
    screen : MarginalScreening, int or None
        Marginal screening of the predictors on the target's rows
        (:class:`~mtltransfer.MarginalScreening`; an int m is ``MarginalScreening(m)``).
        The source is aligned to every predictor first; the model then holds the kept
        predictors and the same rows of the source. The fitted screening is
        ``model.screening`` (None without screening).
    weights : array_like or Series, optional
        Observation weights of the target's rows (WLS; see
        :class:`~mtltransfer.models.base.MultiResponseModel`).
    """

    def __init__(self, endog, exog=None, *, source=None, intercept=None, missing="raise",
                 screen=None, weights=None):
        if source is None:
            raise TypeError(f"{type(self).__name__}() needs source=: the source study's "
                            "fitted results (of mtltransfer or statsmodels), a DataFrame of "
                            "its coefficients or a p x q array")
        super().__init__(endog, exog, intercept=intercept, missing=missing, weights=weights)
        if screen is not None and weights is not None:
            raise ValueError("screen= and weights= together are not supported: marginal "
                             "screening is unweighted; screen first, then fit with weights")
        self.source_weights = None
        target_info = self.data.design_info if self.data.formula is not None else None
        if is_source_list(source):
            names = [f"source{i + 1}" for i in range(len(source))]
            aligned = [source_alignment.align_source(s, self.data.xnames, self.data.ynames,
                                                     name=nm, target_info=target_info)
                       for s, nm in zip(source, names)]
            source, self.source_weights = combine_sources(self.data, aligned, names)
        layout = source_alignment.source_layout(source, self.data.xnames, self.data.ynames,
                                                target_info=target_info)
        # the source's sampling distribution (the bootstrap redraws it; None: exact)
        self.source_draws, self.source_exact_reason = source_draws(source, layout)
        source = layout.coef
        self.data, self.screening = screen_data(screen, self.data)
        self.source = source if self.screening is None else source[self.screening.support]
        if self.screening is not None and self.source_draws is not None:
            self.source_draws = self.source_draws.restrict(self.screening.support)
        self.source_svd = source_svd(self.source)

    def init_options(self):
        return {"source": self.source}

    @property
    def source_params(self):
        """The source coefficient matrix aligned to the target (DataFrame p x q)."""
        return pd.DataFrame(self.source, index=self.exog_names, columns=self.endog_names)

    @property
    def source_rank(self):
        """Numerical rank of the source (see :func:`~mtltransfer.smart.admm.source_rank`)."""
        return source_rank(self.source_svd[1])

    def folds(self, n_folds):
        """Per-fold statistics for K-fold cross-validation (checked against the rows)."""
        return self.cv_folds(n_folds)

    def target_rank(self):
        """The rank by the rank selection criterion, capped by the source's rank (as
        SMART does), and its trace."""
        from ..selection import rank_table

        rank, info = self.select_rank(cap=max(self.source_rank, 1))
        return rank, rank_table(info, rank)
