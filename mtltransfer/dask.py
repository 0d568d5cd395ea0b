"""Fitting from Dask DataFrames: the statistics are computed where the data live.

Every estimator of the package fits from the sufficient statistics of
:mod:`mtltransfer.gram`, which merge exactly over row sets. A Dask DataFrame is therefore
fitted in three steps, none of which brings rows to the client:

1. **Design.** One patsy design is built from a small template: a sample of the data
   plus every level of each categorical factor, found in one pass over the data. Each
   partition is turned into its design matrix with that design (the same columns, in
   every partition and in memory).
2. **Statistics.** Each partition gives its :class:`~mtltransfer.gram.SufficientStats`,
   one per cross-validation fold; the per-partition statistics are merged pairwise in a
   tree of ``dask.delayed`` tasks (depth log2 of the number of partitions) by Chan's
   exact merge. The fold of a row is ``row_hash mod K``
   (:func:`mtltransfer.design.hash_folds`), a hash of the row's content: the fold
   statistics need no shuffle, and ``from_formula(..., folds="hash")`` gives the same
   folds in memory.
3. **Fit.** The model is the in-memory class with its rows replaced by the statistics
   (:class:`StatsModel`): the solvers, tuning rules and results are the in-memory ones.

Results hold no rows: ``ssr``, R-squared and the likelihood come from the statistics;
``predict(ddf)`` is a lazy Dask DataFrame computed partition by partition.

Dask is imported only when a Dask DataFrame is fitted or predicted: install it with
``pip install "mtltransfer[dask]"``. The formula may use the data's columns and NumPy
(``np.log(x)``); it is evaluated on the workers, where the names of the caller's session
do not exist. Stateful transforms (``center``, ``standardize``, splines) learn from the
rows and are refused.
"""

from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import linalg

from . import design
from .gram import SufficientStats, offset_moments
from .io import RemovedRows
from .models.base import PenalizedResults, check_backend, check_positive, \
    warn_penalty_scale
from .models.linear import NuclearNorm, OLS, ReducedRank, Ridge
from .models.smart import SMART

__all__ = ["StatsModel", "DaskOLS", "DaskRidge", "DaskReducedRank", "DaskNuclearNorm",
           "DaskSMART", "RowsOnCluster", "model_from_dask", "predict_partitions",
           "formula_stats", "formula_template", "DEFAULT_FOLDS"]

#: the number of hashed folds whose statistics the first pass computes (``fit``'s default
#: ``n_folds``); another number of folds takes one more pass over the data
DEFAULT_FOLDS = 5

_EXTRA = 'pip install "mtltransfer[dask]"'


def _require_dask():
    """Import Dask, or say which extra installs it."""
    try:
        import dask  # noqa: F401
        import dask.dataframe  # noqa: F401
        from dask import delayed  # noqa: F401
    except ImportError as err:
        raise ImportError(f"fitting or predicting from a Dask DataFrame needs Dask: "
                          f"{_EXTRA} (dask[dataframe,distributed] and pyarrow)") from err


class RowsOnCluster(RemovedRows):
    """Stands in for the rows of a model fitted from a Dask DataFrame.

    Only the shape is known (``shape``, ``ndim``, ``len()``): the rows stay on the
    cluster. Anything needing values raises ``ValueError``.
    """

    _MESSAGE = ("the rows of a model fitted from a Dask DataFrame stay on the cluster; use "
                "results.predict(ddf) for fitted values or residuals")


# ---- design ----------------------------------------------------------------------------
_INFO_CACHE = {}


def _design_infos(formula, template):
    """(lhs, rhs) patsy design infos of the formula built on the template (kept for the
    last few (formula, template) pairs: a worker builds them once, not per partition)."""
    import patsy

    key = (formula, pd.util.hash_pandas_object(template, index=True).sum(),
           tuple(map(str, template.columns)), tuple(map(str, template.dtypes)))
    if key in _INFO_CACHE:
        return _INFO_CACHE[key]
    Yf, Xf = patsy.dmatrices(formula, template, eval_env=design._default_env(),
                             NA_action="drop", return_type="dataframe")
    if len(_INFO_CACHE) >= 8:
        _INFO_CACHE.clear()
    _INFO_CACHE[key] = Yf.design_info, Xf.design_info
    return _INFO_CACHE[key]


def _partition_levels(part, columns):
    """The distinct non-missing values of each column of one partition."""
    return {c: set(pd.unique(part[c].dropna())) for c in columns}


def _merge_levels(a, b):
    return {c: a[c] | b[c] for c in a}


def _tree(items, combine):
    """Merge delayed items pairwise: a tree of depth ceil(log2 len(items))."""
    from dask import delayed

    merge = delayed(combine, pure=True)
    while len(items) > 1:
        items = [merge(items[i], items[i + 1]) if i + 1 < len(items) else items[i]
                 for i in range(0, len(items), 2)]
    return items[0]


def formula_template(formula, ddf, sample_rows=200):
    """A small DataFrame on which the formula's patsy design equals that of all the data.

    Numeric columns take the values of complete rows of a sample; each column read by a
    categorical factor takes every level it has in the data (one pass). Raises
    ``ValueError`` for stateful transforms, whose state depends on all the rows.
    """
    import dask

    used = design.formula_columns(formula, ddf.columns)
    if not used:
        raise ValueError(f"data has none of the columns of the formula {formula!r}")
    sample = ddf[used].head(sample_rows, npartitions=1, compute=True)
    complete = sample.dropna()
    if len(complete) == 0:
        raise ValueError("the first rows of data have a missing value in every row: no "
                         "complete row to build the formula's design from")
    try:
        _, rhs = _design_infos(formula, complete)
    except Exception as err:    # patsy's errors, names missing from the data
        raise ValueError(f"cannot build the design of {formula!r} from the data: "
                         f"{str(err).splitlines()[0]} (on Dask the formula may use the "
                         "data's columns and np only)") from None
    categorical = []
    for factor, info in rhs.factor_infos.items():
        if info.state.get("transforms"):
            raise ValueError(f"{factor.name()} is a stateful transform (its state is learnt "
                             "from all the rows); on Dask, compute it as a column first")
        if info.type == "categorical":
            names = set(design._formula_variables(factor.name()))
            categorical += [c for c in used if str(c) in names and c not in categorical]
    levels = {}
    if categorical:
        parts = [dask.delayed(_partition_levels, pure=True)(p, categorical)
                 for p in ddf[categorical].to_delayed()]
        (found,) = dask.compute(_tree(parts, _merge_levels))
        levels = {c: sorted(found[c], key=lambda v: (str(type(v)), v)) for c in categorical}
    n_rows = max([len(complete)] + [len(v) for v in levels.values()])
    columns = {}
    for c in used:
        values = levels[c] if c in levels else list(complete[c])
        if not values:
            raise ValueError(f"column {c!r} has no value in the data")
        cycled = [values[i % len(values)] for i in range(n_rows)]
        dtype = complete[c].dtype if c not in levels else None
        columns[c] = pd.Series(cycled, dtype=dtype)
    return pd.DataFrame(columns, index=pd.RangeIndex(n_rows)), used


# ---- statistics ------------------------------------------------------------------------
def _empty_stats(p, q):
    return SufficientStats.from_arrays(np.zeros((0, p)), np.zeros((0, q)))


#: rows of a partition turned into a design matrix at a time (bounds a worker's memory
#: to the partition plus one chunk's design: 2**18 rows of p + q = 60 columns is 126 MB)
CHUNK_ROWS = 1 << 18


def partition_design(part, formula, template, missing, infos=None):
    """(X, Y, ok) of one partition: the design built with the template's design info,
    and the mask of complete rows (NaN or inf anywhere in a row makes it incomplete)."""
    import patsy

    lhs, rhs = _design_infos(formula, template) if infos is None else infos
    work = part.reset_index(drop=True)
    n = len(work)
    keep = [c for c in rhs.column_names if c not in design._INTERCEPT_NAMES]
    if n == 0:
        return np.zeros((0, len(keep))), np.zeros((0, len(lhs.column_names))), \
            np.zeros(0, dtype=bool)
    Yf, Xf = patsy.build_design_matrices([lhs, rhs], work, NA_action="drop",
                                         return_type="dataframe")
    index = pd.RangeIndex(n)
    Y = Yf.reindex(index).to_numpy(dtype=float)
    X = Xf.reindex(index)[keep].to_numpy(dtype=float)
    ok = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
    _check_complete(ok, missing)
    return X, Y, ok


def _check_complete(ok, missing):
    if missing == "raise" and not ok.all():
        raise ValueError(f"data has missing values (NaN or inf) in {int((~ok).sum())} row(s) "
                         "of a partition in the formula's columns; pass missing='drop' to "
                         "drop those rows")


def plain_columns(info, columns):
    """The data column behind each non-intercept column of a patsy design, when every
    term is one numeric column used as it is (``y1 + y2 ~ x1 + x2``): the design is then
    the columns themselves and patsy need not run on the rows. None otherwise."""
    names = []
    for term in info.terms:
        if not term.factors:                    # the intercept
            continue
        if len(term.factors) != 1:
            return None
        factor = term.factors[0]
        finfo = info.factor_infos[factor]
        code = getattr(factor, "code", None)
        if finfo.type != "numerical" or finfo.num_columns != 1 or code not in columns:
            return None
        names.append(code)
    expected = [c for c in info.column_names if c not in design._INTERCEPT_NAMES]
    return names if names == expected else None


def _chunk_columns(chunk, spec, infos, plain):
    """The design columns (predictors then responses, 1-d arrays) of one chunk of rows
    and the mask of complete rows."""
    if plain is not None:
        cols = [chunk[c].to_numpy(dtype=float, na_value=np.nan) for c in plain]
        ok = np.logical_and.reduce([np.isfinite(v) for v in cols])
        _check_complete(ok, spec.missing)
        return cols, ok
    X, Y, ok = partition_design(chunk, spec.formula, spec.template, spec.missing, infos)
    return list(X.T) + list(Y.T), ok


def grouped_stats(cols, label, n_groups, p):
    """:class:`SufficientStats` of the rows of each group, in one sorted pass.

    ``cols`` are the p predictor then q response columns (1-d arrays of the same
    length), ``label`` the group of each row (0..n_groups-1; any other value drops the
    row). The rows are gathered once, sorted by group, into a column-major matrix Z
    shifted by its column means ``m``; each group's block then gives its statistics
    from two products: with ``s_g = sum_i (z_i - m)`` and ``S_g = sum_i (z_i - m)(z_i -
    m)^T`` over its ``n_g`` rows, the mean is ``m + s_g / n_g`` and the centred cross
    products ``S_g - s_g s_g^T / n_g`` (the shift keeps ``s_g / n_g`` small, so no
    precision is lost).
    """
    r = len(cols)
    label = np.asarray(label, dtype=np.int64)
    live = (label >= 0) & (label < n_groups)
    counts = np.bincount(label[live], minlength=n_groups)
    order = np.argsort(np.where(live, label, n_groups), kind="stable")[:int(counts.sum())]
    m = len(order)
    Z = np.empty((m, r), order="F")
    for j, v in enumerate(cols):
        np.take(v, order, out=Z[:, j])
    shift = Z.mean(axis=0) if m else np.zeros(r)
    Z -= shift
    out = []
    a = 0
    for n_g in counts:
        b = a + int(n_g)
        if n_g == 0:
            out.append(_empty_stats(p, r - p))
        else:
            Zg = Z[a:b]
            s = Zg.sum(axis=0)
            M = Zg.T @ Zg - np.outer(s, s / n_g)
            M = 0.5 * (M + M.T)
            mean = shift + s / n_g
            out.append(SufficientStats(int(n_g), mean[:p], mean[p:], M[:p, :p],
                                       M[:p, p:], M[p:, p:]))
        a = b
    return out


def _partition_stats(part, spec):
    """Per-fold statistics of one partition (a list of ``n_folds`` SufficientStats),
    ``CHUNK_ROWS`` rows at a time: the design columns (read straight from the data when
    the formula is plain numeric columns, else patsy's design), the hashed fold of each
    row, then the statistics of every fold in one sorted pass (:func:`grouped_stats`)."""
    infos = _design_infos(spec.formula, spec.template)
    lhs, rhs = infos
    p = len([c for c in rhs.column_names if c not in design._INTERCEPT_NAMES])
    q = len(lhs.column_names)
    yplain, xplain = plain_columns(lhs, part.columns), plain_columns(rhs, part.columns)
    plain = None if yplain is None or xplain is None else xplain + yplain
    K = spec.n_folds
    folds = [_empty_stats(p, q)] * K
    for start in range(0, len(part), CHUNK_ROWS):
        chunk = part.iloc[start:start + CHUNK_ROWS]
        cols, ok = _chunk_columns(chunk, spec, infos, plain)
        label = design.hash_folds(design.row_hash(chunk, spec.used), K)
        label[~ok] = K
        folds = [f + g for f, g in zip(folds, grouped_stats(cols, label, K, p))]
    return folds


def _merge_folds(a, b):
    a, b = (x.iloc[0] if isinstance(x, pd.Series) else x for x in (a, b))
    return [x + y for x, y in zip(a, b)]


class _Spec:
    """What every partition needs to compute its statistics (one picklable argument)."""

    def __init__(self, formula, template, used, missing, n_folds):
        self.formula, self.template, self.used = formula, template, used
        self.missing, self.n_folds = missing, n_folds


def _stats_series(part, spec):
    """The per-fold statistics of one partition in a one-element Series: as a
    ``map_partitions`` function it runs in the same task as the partition's reading, so
    a worker holds one partition at a time."""
    return pd.Series([_partition_stats(part, spec)], dtype=object)


def formula_stats(formula, ddf, template, used, missing="raise", n_folds=DEFAULT_FOLDS):
    """Per-fold statistics of the formula's design over all partitions of ``ddf``.

    One task per partition, then a pairwise tree of exact merges, computed on the
    current Dask scheduler (a ``distributed.Client`` when one is active).

    Returns
    -------
    list of SufficientStats
        One per hashed fold; their sum is the statistics of all the rows used.
    """
    import dask

    spec = _Spec(formula, template, used, missing, n_folds)
    per_partition = _columns(ddf, used).map_partitions(_stats_series, spec,
                                                       meta=pd.Series(dtype=object))
    (folds,) = dask.compute(_tree(per_partition.to_delayed(), _merge_folds))
    if isinstance(folds, pd.Series):         # a single partition
        folds = folds.iloc[0]
    return folds


def _columns(ddf, used):
    """``ddf[used]``, or ``ddf`` itself when it has no other column (a projection of
    every column would copy each partition on the workers)."""
    return ddf if list(used) == list(ddf.columns) else ddf[used]


def _total(folds):
    total = folds[0]
    for f in folds[1:]:
        total = total + f
    return total


# ---- models ----------------------------------------------------------------------------
class StatsModel:
    """The rows of a model replaced by their sufficient statistics (mixin).

    ``stats`` holds the statistics of all rows; ``fold_stats`` those of the hashed folds
    (one more pass over the data for a number of folds not yet computed). Where a solver
    takes rows, ``centred_rows`` are p + q pseudo-rows Z with ``Z^T Z`` equal to the
    moments (``Z = diag(sqrt(w)) Q^T`` from ``M = Q diag(w) Q^T``, M the joint moment
    matrix of (X, Y)): least squares and reduced rank from them equal those of the rows;
    whatever depends on the number of rows (GCV, the rank criterion) runs on the moments
    with the true n.
    """

    def _attach(self, stats, folds, n_folds, frame):
        self.__dict__["stats"] = stats
        self._fold_cache = {n_folds: folds}
        self._frame = frame            # (ddf, formula, template, used, missing); not saved

    def rank_rows(self):
        return None

    def exog_sd(self):
        return np.sqrt(np.clip(np.diag(self.stats.Cxx), 0.0, None) / self.stats.n)

    def fold_stats(self, n_folds):
        if n_folds not in self._fold_cache:
            if getattr(self, "_frame", None) is None:
                raise ValueError(f"the statistics of {n_folds} folds were not computed and "
                                 "the Dask DataFrame is not at hand (a loaded model); "
                                 f"use n_folds={sorted(self._fold_cache)[0]}")
            ddf, formula, template, used, missing = self._frame
            self._fold_cache[n_folds] = formula_stats(formula, ddf, template, used, missing,
                                                      n_folds)
        folds = self._fold_cache[n_folds]
        if any(f.n == 0 for f in folds):
            raise ValueError(f"a hashed fold is empty ({n_folds} folds of {self.nobs} "
                             "rows); use fewer folds")
        return list(folds)

    @cached_property
    def centred_rows(self):
        Sxx, Sxy, Syy = self.moments()
        p = Sxx.shape[0]
        M = np.block([[Sxx, Sxy], [Sxy.T, Syy]])
        w, Q = linalg.eigh(0.5 * (M + M.T))
        Z = np.sqrt(np.clip(w, 0.0, None))[:, None] * Q.T      # Z^T Z = M
        return Z[:, :p], Z[:, p:]

    def residual_ss(self, coef, intercept):
        """From the statistics: ``diag(Cyy - 2 C^T Cxy + C^T Cxx C) + n (ybar - b -
        C^T xbar)^2`` per response."""
        s = self.stats
        C = np.asarray(coef)
        within = np.diag(s.Cyy) - 2 * np.sum(C * s.Cxy, axis=0) + \
            np.sum(C * (s.Cxx @ C), axis=0)
        shift = s.y_mean - intercept - C.T @ s.x_mean
        return np.clip(within, 0.0, None) + s.n * shift ** 2

    def total_ss(self):
        s = self.stats
        return np.diag(s.Cyy) if self.k_constant else np.diag(s.YtY)

    def warn_design(self):
        try:
            super().warn_design()
        except ValueError:      # the message about a constant column needs the rows
            from .exceptions import SingularMatrixWarning
            warnings.warn(f"the design is rank deficient (rank {self.design_svd.rank} of "
                          f"{self.k_exog} predictors): the minimum-norm solution is "
                          "reported", SingularMatrixWarning, stacklevel=3)

    def replace_data(self, rows=None, endog=None):
        raise TypeError(f"{type(self).__name__} holds statistics, not rows: the bootstrap "
                        "needs the rows in memory")

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_frame", None)
        return state


class DaskOLS(StatsModel, OLS):
    """:class:`~mtltransfer.OLS` fitted from the statistics of a Dask DataFrame."""


class DaskReducedRank(StatsModel, ReducedRank):
    """:class:`~mtltransfer.ReducedRank` fitted from the statistics of a Dask DataFrame."""


class DaskNuclearNorm(StatsModel, NuclearNorm):
    """:class:`~mtltransfer.NuclearNorm` fitted from the statistics of a Dask DataFrame."""


class DaskSMART(StatsModel, SMART):
    """:class:`~mtltransfer.SMART` fitted from the statistics of a Dask DataFrame."""


class DaskRidge(StatsModel, Ridge):
    """:class:`~mtltransfer.Ridge` fitted from the statistics of a Dask DataFrame.

    GCV needs the true number of rows, so ridge is solved on the moments: with
    ``Sxx = Q diag(w) Q^T``, ``C = Q diag(1 / (w + alpha)) Q^T Sxy`` and the GCV curve of
    :func:`mtltransfer.solvers.linear.ridge_gcv` over the same grid as in memory.
    """

    def fit(self, alpha=None, *, backend="fast", n_alphas=50, tol=None, max_iter=None,
            verbose=False):
        from .solvers import linear as lin
        from .solvers._base import argmin_simplest

        check_backend(backend)
        if alpha is not None:
            alpha = check_positive("alpha", alpha)
        if alpha == 0:
            return super().fit(0.0, backend=backend)
        warn_penalty_scale(self)
        C0 = self.offset()
        Sxx, Sxy, Syy = offset_moments(*self.moments(), C0)
        w, Q = linalg.eigh(Sxx)
        w = np.clip(w, 0.0, None)
        QtSxy = Q.T @ Sxy
        tuning, how = {}, "given" if alpha is not None else "GCV"
        if alpha is None:
            alphas = max(w.max(initial=0.0), 1e-12) * np.logspace(-6, 2, n_alphas)
            rss, dfs, gcv = lin.ridge_gcv(w, QtSxy, float(np.trace(Syy)), self.nobs, alphas,
                                          n_fixed=int(self.center))
            alpha = float(alphas[len(alphas) - 1 - argmin_simplest(gcv[::-1])])
            tuning["gcv"] = pd.DataFrame({"alpha": alphas, "df": dfs, "rss": rss,
                                          "gcv": gcv})
        D = Q @ (QtSxy / (w + alpha)[:, None])
        C = D if C0 is None else C0 + D
        df = float(np.sum(w / (w + alpha)))
        if backend == "cvxpy":
            from .solvers.cvx import ridge_cvx
            C, _ = ridge_cvx(*self.moments(), alpha, C0=C0)
        return PenalizedResults(self, C, hyperparameters={"alpha": alpha},
                                chosen_by={"alpha": how}, df_model=df * self.k_endog,
                                tuning=tuning)


_TWINS = {OLS: DaskOLS, Ridge: DaskRidge, ReducedRank: DaskReducedRank,
          NuclearNorm: DaskNuclearNorm, SMART: DaskSMART}


def model_from_dask(cls, formula, ddf, *, missing="raise", eval_env=0, folds=None,
                    **kwargs):
    """``cls.from_formula(formula, ddf, ...)`` for a Dask DataFrame ``ddf``.

    Computes the categorical levels (one pass) and the per-fold statistics (one pass),
    then builds the statistics-backed twin of ``cls`` (``DaskOLS`` for ``OLS`` ...).
    ``eval_env`` is accepted for the common signature: the formula is evaluated with
    the data's columns and NumPy only.
    """
    _require_dask()
    design._check_missing(missing)
    if folds not in (None, "hash"):
        raise ValueError(f"folds on Dask are hashed from the rows' content: pass "
                         f"folds='hash' or None; got {folds!r}")
    twin = _TWINS.get(cls, cls if issubclass(cls, StatsModel) else None)
    if twin is None:
        raise TypeError(f"{cls.__name__}.from_formula does not take a Dask DataFrame; "
                        f"these models do: {', '.join(c.__name__ for c in _TWINS)}")
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"formula must be a str 'Y1 + Y2 ~ x1 + x2'; got {formula!r}")
    template, used = formula_template(formula, ddf)
    info = design.from_formula(formula, template, missing="drop",
                               max_endog=cls._formula_max_endog,
                               eval_env=design._default_env())
    fold_list = formula_stats(formula, ddf, template, used, missing, DEFAULT_FOLDS)
    total = _total(fold_list)
    design._check_rows(total.n)
    p, q = total.p, total.q
    implicit = False
    if not info.intercept:       # statsmodels' implicit constant, from the raw moments
        live = np.diag(total.Cxx) <= 1e-14 * max(float(np.trace(total.Cxx)), 1e-300)
        aug = np.block([[np.array([[total.n]]), total.x_sum[None, :]],
                        [total.x_sum[:, None], total.XtX]])
        implicit = bool(np.any(live & (total.x_mean != 0))) or (
            total.n > p and np.linalg.matrix_rank(aug) == np.linalg.matrix_rank(total.XtX))
    data = design.ModelData(RowsOnCluster((total.n, q)), RowsOnCluster((total.n, p)),
                            list(info.ynames), list(info.xnames), info.intercept,
                            pd.RangeIndex(total.n), formula=formula,
                            design_info=info.design_info, data_template=template,
                            extra={}, implicit_constant=implicit)
    model = twin(data, **kwargs)
    model._attach(total, fold_list, DEFAULT_FOLDS, (ddf, formula, template, used, missing))
    return model


# ---- prediction ------------------------------------------------------------------------
def _predict_partition(part, results, transform):
    out = results.predict(part, transform=transform)
    return out.astype(float)


def predict_partitions(results, ddf, transform=True):
    """``results.predict`` of each partition of ``ddf``: a lazy Dask DataFrame (one
    column per response, indexed like ``ddf``)."""
    _require_dask()
    names = list(results.model.endog_names)
    meta = pd.DataFrame({y: pd.Series(dtype=float) for y in names},
                        index=ddf._meta.index[:0])
    return ddf.map_partitions(_predict_partition, results, transform, meta=meta)
