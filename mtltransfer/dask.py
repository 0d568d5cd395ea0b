# Over 600 lines: one front end (design, partition statistics, task sums, lazy predict).
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
3. **Fit.** The model is the in-memory class itself, reading the statistics through a
   :class:`~mtltransfer.access.StatsAccess` (the shared representation: its per-task
   sums through a :class:`~mtltransfer.access.TaskSumsAccess`): the solvers, tuning
   rules and results are the in-memory ones. A model that needs its rows declares why
   (``_needs_rows``) and is refused with that reason.

Results hold no rows: ``ssr``, R-squared and the likelihood come from the statistics;
``predict(ddf)`` is a lazy Dask DataFrame computed partition by partition.

Dask is imported only when a Dask DataFrame is fitted or predicted: install it with
``pip install "mtltransfer[dask]"``. The formula may use the data's columns and NumPy
(``np.log(x)``); it is evaluated on the workers, where the names of the caller's session
do not exist. Stateful transforms (``center``, ``standardize``, splines) learn from the
rows and are refused.
"""

from __future__ import annotations

import functools
import sys
import warnings

import numpy as np
import pandas as pd

from . import design
from .gram import SufficientStats
from ._validation import RemovedRows, register_front_end
from .access import StatsAccess, TaskSumsAccess, needs_rows_message
from .models.shared import SharedRepresentation
from .solvers.shared_sums import TaskSums
from .exceptions import user_stacklevel

__all__ = ["RowsOnCluster", "model_from_dask", "predict_shared", "predict_partitions",
           "formula_stats", "formula_template", "DEFAULT_FOLDS", "shared_from_dask",
           "grouped_stats", "plain_columns"]

#: the number of hashed folds whose statistics the first pass computes (``fit``'s default
#: ``n_folds``); another number of folds takes one more pass over the data
DEFAULT_FOLDS = 5

_EXTRA = 'pip install "mtltransfer[dask]"'
#: how a refusal names what the model was given
WHERE = "the statistics of a Dask DataFrame"


def require_dask():
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


def design_infos(formula, template):
    """(lhs, rhs) patsy design infos of the formula built on the template (kept for the
    last few (formula, template) pairs: a worker builds them once, not per partition)."""
    import patsy

    key = (formula, pd.util.hash_pandas_object(template, index=True).sum(),
           tuple(map(str, template.columns)), tuple(map(str, template.dtypes)))
    if key in _INFO_CACHE:
        return _INFO_CACHE[key]
    Yf, Xf = patsy.dmatrices(formula, template, eval_env=design.default_env(),
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


def _typed_sample(formula, ddf, used):
    """A two-row template from the columns' types alone (values 1 and 2), when
    every column the formula reads is numeric and every factor numerical: a numerical
    factor's design depends on its type, not its values, so no partition is read (a
    partition may be large). None otherwise, or when the formula fails on that row."""
    import patsy

    meta = ddf._meta
    if not all(pd.api.types.is_numeric_dtype(meta[c].dtype) and
               not pd.api.types.is_bool_dtype(meta[c].dtype) for c in used):
        return None
    sample = pd.DataFrame({c: pd.Series([1, 2], dtype=meta[c].dtype) for c in used})
    try:
        Yf, Xf = patsy.dmatrices(formula, sample, eval_env=design.default_env(),
                                 NA_action="drop", return_type="dataframe")
    except Exception:       # the formula's own error is raised from a sample of rows
        return None
    infos = (Yf.design_info, Xf.design_info)
    if len(Xf) != 2 or any(f.type != "numerical" or f.state.get("transforms")
                           for info in infos for f in info.factor_infos.values()):
        return None
    return sample


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
    complete = _typed_sample(formula, ddf, used)
    if complete is not None:         # numeric columns only: no read of the data needed
        return complete, used
    sample = ddf[used].head(sample_rows, npartitions=1, compute=True)
    complete = sample.dropna()
    if len(complete) == 0:
        raise ValueError("the first rows of data have a missing value in every row: no "
                         "complete row to build the formula's design from")
    try:
        _, rhs = design_infos(formula, complete)
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
            names = set(design.formula_variables(factor.name()))
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
#: to the partition plus one chunk's design: 2**17 rows of p + q = 60 columns is 63 MB,
#: below the 64 MiB malloc thresholds suggested in docs/larger_than_memory.rst)
CHUNK_ROWS = 1 << 17


def partition_design(part, formula, template, missing, infos=None):
    """(X, Y, ok) of one partition: the design built with the template's design info,
    and the mask of complete rows (NaN or inf anywhere in a row makes it incomplete)."""
    import patsy

    lhs, rhs = design_infos(formula, template) if infos is None else infos
    work = part.reset_index(drop=True)
    n = len(work)
    keep = [c for c in rhs.column_names if c not in design.INTERCEPT_NAMES]
    if n == 0:
        return np.zeros((0, len(keep))), np.zeros((0, len(lhs.column_names))), \
            np.zeros(0, dtype=bool)
    Yf, Xf = patsy.build_design_matrices([lhs, rhs], work, NA_action="drop",
                                         return_type="dataframe")
    index = pd.RangeIndex(n)
    Y = Yf.reindex(index).to_numpy(dtype=float)
    X = Xf.reindex(index)[keep].to_numpy(dtype=float)
    ok = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
    # patsy drops a row with a missing value from every column: name the data's columns
    _check_complete(ok, missing, lambda: [
        (c, work[c].to_numpy(dtype=float, na_value=np.nan)
         if pd.api.types.is_numeric_dtype(work[c]) else np.where(work[c].isna(), np.nan, 0.0))
        for c in design.formula_columns(formula, work.columns)])
    return X, Y, ok


def _check_complete(ok, missing, columns):
    """Refuse incomplete rows under ``missing="raise"``, naming the columns (as the
    in-memory front end): ``columns()`` gives (name, values) pairs."""
    if missing == "raise" and not ok.all():
        bad = [str(name) for name, v in columns()
               if not np.isfinite(np.asarray(v, dtype=float)).all()]
        raise ValueError(f"data has missing values (NaN or inf) in column(s) {bad} used by "
                         f"the formula, in {int((~ok).sum())} row(s) of a partition; pass "
                         "missing='drop' to drop those rows")


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
    expected = [c for c in info.column_names if c not in design.INTERCEPT_NAMES]
    return names if names == expected else None


def _chunk_columns(chunk, spec, infos, plain):
    """The design columns (predictors then responses, 1-d arrays) of one chunk of rows
    and the mask of complete rows."""
    if plain is not None:
        cols = [chunk[c].to_numpy(dtype=float, na_value=np.nan) for c in plain]
        ok = np.logical_and.reduce([np.isfinite(v) for v in cols])
        _check_complete(ok, spec.missing, lambda: list(zip(plain, cols)))
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

    Parameters
    ----------
    cols : list of ndarray, each shape (n,)
        The p predictor columns, then the q response columns.
    label : ndarray of int, shape (n,)
        Group of each row; rows labelled outside 0..n_groups-1 are left out.
    n_groups : int
    p : int
        How many of ``cols`` are predictors.

    Returns
    -------
    list of SufficientStats
        One per group (empty statistics for a group without rows).
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
    infos = design_infos(spec.formula, spec.template)
    lhs, rhs = infos
    p = len([c for c in rhs.column_names if c not in design.INTERCEPT_NAMES])
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
    per_partition = read_columns(ddf, used).map_partitions(_stats_series, spec,
                                                       meta=pd.Series(dtype=object))
    (folds,) = dask.compute(_tree(per_partition.to_delayed(), _merge_folds))
    if isinstance(folds, pd.Series):         # a single partition
        folds = folds.iloc[0]
    return folds


def read_columns(ddf, used):
    """``ddf[used]``, or ``ddf`` itself when it has no other column (a projection of
    every column would copy each partition on the workers)."""
    return ddf if list(used) == list(ddf.columns) else ddf[used]


def _total(folds):
    total = folds[0]
    for f in folds[1:]:
        total = total + f
    return total


# ---- models ----------------------------------------------------------------------------
def model_from_dask(cls, formula, ddf, *, missing="raise", eval_env=0, folds=None,
                    **kwargs):
    """``cls.from_formula(formula, ddf, ...)`` for a Dask DataFrame ``ddf``.

    Computes the categorical levels (one pass) and the per-fold statistics (one pass),
    then builds the model itself (no Dask subclass) reading them through a
    :class:`~mtltransfer.access.StatsAccess`: its solvers, tuning rules and results are
    the in-memory ones. A model that needs its rows declares why (``_needs_rows``) and
    is refused with that reason. ``eval_env`` is accepted for the common signature: the
    formula is evaluated with the data's columns and NumPy only.
    """
    require_dask()
    design.check_missing(missing)
    if folds not in (None, "hash"):
        raise ValueError(f"folds on Dask are hashed from the rows' content: pass "
                         f"folds='hash' or None; got {folds!r}")
    refused = needs_rows_message(cls, WHERE)
    if refused is not None:
        raise TypeError(refused)
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"formula must be a str 'Y1 + Y2 ~ x1 + x2'; got {formula!r}")
    template, used = formula_template(formula, ddf)
    info = design.from_formula(formula, template, missing="drop",
                               max_endog=cls._formula_max_endog,
                               eval_env=design.default_env())
    fold_list = formula_stats(formula, ddf, template, used, missing, DEFAULT_FOLDS)
    total = _total(fold_list)
    design.check_rows(total.n)
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
                            extra={}, implicit_constant=implicit,
                            response_info=info.response_info)
    more = functools.partial(formula_stats, formula, ddf, template, used, missing)
    access = StatsAccess(total, info.intercept, {DEFAULT_FOLDS: fold_list}, more,
                         where=WHERE)
    return cls._with_access(data, access, **kwargs)


# ---- prediction ------------------------------------------------------------------------
def _predict_partition(part, results, transform):
    out = results.predict(part, transform=transform)
    return out.astype(float)


def predict_partitions(results, ddf, transform=True):
    """``results.predict`` of each partition of ``ddf``: a lazy Dask DataFrame (one
    column per response, indexed like ``ddf``)."""
    require_dask()
    names = list(results.model.endog_names)
    meta = pd.DataFrame({y: pd.Series(dtype=float) for y in names},
                        index=ddf._meta.index[:0])
    return ddf.map_partitions(_predict_partition, results, transform, meta=meta)


# ---- SharedRepresentation: per-task statistics -----------------------------------------
# the per-task sums reduced over the partitions are one TaskSums (raw, not centred: a task
# may span partitions); see mtltransfer.solvers.shared_sums


class _TaskSpec(_Spec):
    """What every partition needs for the per-task statistics (one picklable argument)."""

    def __init__(self, formula, template, used, missing, groups):
        super().__init__(formula, template, used, missing, 0)
        self.groups = groups


def _design_and_labels(chunk, spec, infos, plain, d):
    """(X, y, labels) of the complete rows of a chunk; a complete row without a task
    label raises ``ValueError`` (as in memory)."""
    cols, ok = _chunk_columns(chunk, spec, infos, plain)
    labels = chunk[spec.groups]
    if bool((pd.isna(labels).to_numpy() & ok).any()):
        raise ValueError(f"groups contains missing labels (column {spec.groups!r})")
    X = np.column_stack(cols[:d])[ok] if d else np.zeros((int(ok.sum()), 0))
    return X, cols[d][ok], labels.to_numpy()[ok]


def _task_partition(part, spec):
    """Per-task sums of one partition (in a one-element Series), ``CHUNK_ROWS`` rows at a
    time."""
    infos = design_infos(spec.formula, spec.template)
    lhs, rhs = infos
    d = len([c for c in rhs.column_names if c not in design.INTERCEPT_NAMES])
    yplain, xplain = plain_columns(lhs, part.columns), plain_columns(rhs, part.columns)
    plain = None if yplain is None or xplain is None else xplain + yplain
    out = TaskSums.empty(d)
    for start in range(0, len(part), CHUNK_ROWS):
        chunk = part.iloc[start:start + CHUNK_ROWS]
        X, y, labels = _design_and_labels(chunk, spec, infos, plain, d)
        if len(y):
            out = out + TaskSums.from_rows(X, y, labels)
    return pd.Series([out], dtype=object)


def _spectral_partition(part, spec, labels, weight):
    """``sum_i weight[task_i] y_i^2 x_i x_i^T`` over one partition (in a Series)."""
    infos = design_infos(spec.formula, spec.template)
    lhs, rhs = infos
    d = len([c for c in rhs.column_names if c not in design.INTERCEPT_NAMES])
    yplain, xplain = plain_columns(lhs, part.columns), plain_columns(rhs, part.columns)
    plain = None if yplain is None or xplain is None else xplain + yplain
    V = np.zeros((d, d))
    index = pd.Index(labels)
    for start in range(0, len(part), CHUNK_ROWS):
        chunk = part.iloc[start:start + CHUNK_ROWS]
        X, y, lab = _design_and_labels(chunk, spec, infos, plain, d)
        code = index.get_indexer(lab)
        if np.any(code < 0):
            raise ValueError("the data changed between the passes over it: a task label "
                             "not seen in the first pass")
        w = weight[code] * y ** 2
        V += X.T @ (w[:, None] * X)
    return pd.Series([V], dtype=object)


def _add(a, b):
    """The merge of two partitions' results (TaskSums, or arrays)."""
    a, b = (x.iloc[0] if isinstance(x, pd.Series) else x for x in (a, b))
    return a + b


def reduce_partitions(ddf, func, *args):
    """``func(partition, *args)`` on every partition (in the task reading it), its
    one-element Series results merged pairwise in a tree."""
    import dask

    parts = ddf.map_partitions(func, *args, meta=pd.Series(dtype=object))
    (out,) = dask.compute(_tree(parts.to_delayed(), _add))
    return out.iloc[0] if isinstance(out, pd.Series) else out


def cluster_task_data(sums, p, info, formula, template):
    """The :class:`~mtltransfer.design.ModelData` of per-task sums whose rows stay on the
    cluster (``n`` rows, ``p`` predictor columns, arrays that are
    :class:`RowsOnCluster` placeholders) and the task names in the sums' order (integers
    when the labels are integers)."""
    n = int(round(float(sums.N.sum())))
    design.check_rows(n)
    data = design.ModelData(RowsOnCluster((n, 1)), RowsOnCluster((n, p)),
                            list(info.ynames), list(info.xnames), info.intercept,
                            pd.RangeIndex(n), formula=formula,
                            design_info=info.design_info, data_template=template,
                            extra={}, implicit_constant=False)
    labels = pd.Index(sums.labels)
    names = [int(t) for t in labels] if labels.inferred_type == "integer" else \
        [str(t) for t in labels]
    return data, names


def check_shared_formula(formula, ddf, groups):
    if not isinstance(groups, str):
        raise TypeError("on a Dask DataFrame, groups must be the name of the column "
                        f"holding the task labels; got {type(groups).__name__}")
    if groups not in ddf.columns:
        raise ValueError(f"groups={groups!r} is not a column of data")
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"formula must be a str 'y ~ x1 + x2'; got {formula!r}")


def shared_from_dask(cls, formula, ddf, groups, *, missing="raise"):
    """``SharedRepresentation.from_formula(formula, ddf, groups="col")`` for a Dask
    DataFrame: one pass for the categorical levels (if any), one for the per-task
    sums, reduced over the partitions task by task.

    Parameters
    ----------
    cls : type
        SharedRepresentation (or a subclass).
    formula : str
        ``"y ~ x1 + x2 + C(z)"`` (the data's columns and NumPy only).
    ddf : dask.dataframe.DataFrame
    groups : str
        The column holding each row's task label.
    missing : {"raise", "drop"}

    Returns
    -------
    SharedRepresentation
        ``cls`` itself, reading the per-task sums through a
        :class:`~mtltransfer.access.TaskSumsAccess`.
    """
    require_dask()
    design.check_missing(missing)
    if not issubclass(cls, SharedRepresentation):
        raise TypeError(f"{cls.__name__} is not a SharedRepresentation")
    check_shared_formula(formula, ddf, groups)
    template, used = formula_template(formula, ddf)
    info = design.from_formula(formula, template, missing="drop", max_endog=1,
                               eval_env=design.default_env())
    read = list(used) + ([groups] if groups not in used else [])
    spec = _TaskSpec(formula, template, used, missing, groups)
    sums = reduce_partitions(read_columns(ddf, read), _task_partition, spec)
    if sums.T == 0:
        raise ValueError("data has no complete row")
    sums = sums.sorted()
    data, names = cluster_task_data(sums, sums.d, info, formula, template)
    single = [names[t] for t in np.flatnonzero(sums.n < 2)]
    if single:
        from .exceptions import ValueWarning
        warnings.warn(f"{len(single)} task(s) have a single row ({single[:5]})",
                      ValueWarning, stacklevel=user_stacklevel())
    spectral = _SpectralPass(ddf[read] if read != list(ddf.columns) else ddf, spec,
                             np.asarray(sums.labels, dtype=object))
    access = TaskSumsAccess(sums, info.intercept, spectral, where=WHERE)
    return cls._with_task_access(data, access, names, RowsOnCluster((data.nobs,)), groups,
                                 missing)


class _SpectralPass:
    """``sum_i w[task_i] y_i^2 x_i x_i^T`` by one pass over the Dask DataFrame (the
    spectral start of the marginal fit), the last result kept."""

    def __init__(self, ddf, spec, labels):
        self.ddf, self.spec, self.labels = ddf, spec, labels
        self._cache = {}

    def __call__(self, w):
        key = w.tobytes()
        if key not in self._cache:
            self._cache = {key: reduce_partitions(self.ddf, _spectral_partition, self.spec,
                                        self.labels, w)}
        return self._cache[key]


def predict_shared(results, ddf, transform=True, groups=None):
    """``results.predict`` of a shared representation on each partition of ``ddf`` (the
    task labels in its groups column): a lazy Dask Series."""
    if groups is not None:
        raise ValueError("for a Dask DataFrame the task labels are read from its column "
                         f"{results.model.groups_name!r}; groups= is not taken")
    require_dask()
    meta = pd.Series(dtype=float, name=results.model.endog_names[0],
                     index=ddf._meta.index[:0])
    return ddf.map_partitions(_predict_shared_partition, results, transform, meta=meta)


def _predict_shared_partition(part, results, transform):
    return results.predict(part, transform).astype(float)


register_front_end("dask", model_from_dask=model_from_dask, formula_stats=formula_stats,
                   predict_partitions=predict_partitions, shared_from_dask=shared_from_dask,
                   predict_shared=predict_shared)

from .models.multilevel_dask import multilevel_from_dask  # noqa: E402  (multilevel model)

register_front_end("dask", multilevel_from_dask=functools.partial(
    multilevel_from_dask, sys.modules[__name__]))
