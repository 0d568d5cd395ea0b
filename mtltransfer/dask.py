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

import functools
import warnings
from functools import cached_property

import numpy as np
import pandas as pd

from . import design
from .gram import SufficientStats
from ._validation import RemovedRows, new_data_argument, register_front_end
from .access import StatsAccess, needs_rows_message
from .models.base import warn_penalty_scale
from .models.shared import SharedRepresentation, SharedRepresentationResults
from .solvers import shared_marginal as smg
from .exceptions import user_stacklevel

__all__ = ["RowsOnCluster", "model_from_dask", "predict_partitions",
           "formula_stats", "formula_template", "DEFAULT_FOLDS", "DaskSharedRepresentation",
           "DaskSharedRepresentationResults", "shared_from_dask", "grouped_stats",
           "plain_columns"]

#: the number of hashed folds whose statistics the first pass computes (``fit``'s default
#: ``n_folds``); another number of folds takes one more pass over the data
DEFAULT_FOLDS = 5

_EXTRA = 'pip install "mtltransfer[dask]"'
#: how a refusal names what the model was given
WHERE = "the statistics of a Dask DataFrame"


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

    lhs, rhs = _design_infos(formula, template) if infos is None else infos
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
    infos = _design_infos(spec.formula, spec.template)
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
    _require_dask()
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
    _require_dask()
    names = list(results.model.endog_names)
    meta = pd.DataFrame({y: pd.Series(dtype=float) for y in names},
                        index=ddf._meta.index[:0])
    return ddf.map_partitions(_predict_partition, results, transform, meta=meta)


# ---- SharedRepresentation: per-task statistics -----------------------------------------
#: per-task sums reduced over the partitions (raw: not centred), each of shape (T, ...):
#: ``n`` rows, ``sx`` = sum x, ``sy`` = sum y, ``XtX``, ``Xty``, ``yty``, and for the
#: noise moment of the W-step penalty ``xx_yy`` = sum ||x||^2 y^2, ``xx_y`` = sum ||x||^2 y,
#: ``xx`` = sum ||x||^2, ``x_yy`` = sum x y^2
_TASK_SUMS = ("n", "sx", "sy", "XtX", "Xty", "yty", "xx_yy", "xx_y", "xx", "x_yy")


class _TaskSpec(_Spec):
    """What every partition needs for the per-task statistics (one picklable argument)."""

    def __init__(self, formula, template, used, missing, groups):
        super().__init__(formula, template, used, missing, 0)
        self.groups = groups


def _no_tasks(d):
    return {"labels": np.zeros(0, dtype=object), "n": np.zeros(0), "sx": np.zeros((0, d)),
            "sy": np.zeros(0), "XtX": np.zeros((0, d, d)), "Xty": np.zeros((0, d)),
            "yty": np.zeros(0), "xx_yy": np.zeros(0), "xx_y": np.zeros(0),
            "xx": np.zeros(0), "x_yy": np.zeros((0, d))}


def _design_and_labels(chunk, spec, infos, plain, d):
    """(X, y, labels) of the complete rows of a chunk; a complete row without a task
    label raises ``ValueError`` (as in memory)."""
    cols, ok = _chunk_columns(chunk, spec, infos, plain)
    labels = chunk[spec.groups]
    if bool((pd.isna(labels).to_numpy() & ok).any()):
        raise ValueError(f"groups contains missing labels (column {spec.groups!r})")
    X = np.column_stack(cols[:d])[ok] if d else np.zeros((int(ok.sum()), 0))
    return X, cols[d][ok], labels.to_numpy()[ok]


def _chunk_tasks(X, y, labels):
    """The per-task sums of ``_TASK_SUMS`` of some rows: rows sorted by task once, d x d
    products batched over tasks of similar size (:meth:`TaskData.statistics`)."""
    from .solvers.shared_data import TaskData

    codes, uniques = pd.factorize(labels)
    td = TaskData(X, y, codes, route="rows")
    st = td.statistics()
    xx = np.sum(td.X ** 2, axis=1)
    return {"labels": np.asarray(uniques, dtype=object), "n": td.N, "sx": td.segsum(td.X),
            "sy": td.segsum(td.y), "XtX": st.XtX, "Xty": st.Xty, "yty": st.yty,
            "xx_yy": td.segsum(xx * td.y ** 2), "xx_y": td.segsum(xx * td.y),
            "xx": td.segsum(xx), "x_yy": td.segsum(td.X * (td.y ** 2)[:, None])}


def _merge_tasks(a, b):
    """The per-task sums of two row sets (a task may be in both)."""
    a, b = (x.iloc[0] if isinstance(x, pd.Series) else x for x in (a, b))
    if len(b["labels"]) == 0:
        return a
    if len(a["labels"]) == 0:
        return b
    union = pd.Index(a["labels"]).append(pd.Index(b["labels"])).unique()
    ia, ib = union.get_indexer(a["labels"]), union.get_indexer(b["labels"])
    out = {"labels": np.asarray(union, dtype=object)}
    for key in _TASK_SUMS:
        arr = np.zeros((len(union),) + a[key].shape[1:])
        arr[ia] += a[key]
        arr[ib] += b[key]
        out[key] = arr
    return out


def _task_partition(part, spec):
    """Per-task sums of one partition (in a one-element Series), ``CHUNK_ROWS`` rows at a
    time."""
    infos = _design_infos(spec.formula, spec.template)
    lhs, rhs = infos
    d = len([c for c in rhs.column_names if c not in design.INTERCEPT_NAMES])
    yplain, xplain = plain_columns(lhs, part.columns), plain_columns(rhs, part.columns)
    plain = None if yplain is None or xplain is None else xplain + yplain
    out = _no_tasks(d)
    for start in range(0, len(part), CHUNK_ROWS):
        chunk = part.iloc[start:start + CHUNK_ROWS]
        X, y, labels = _design_and_labels(chunk, spec, infos, plain, d)
        if len(y):
            out = _merge_tasks(out, _chunk_tasks(X, y, labels))
    return pd.Series([out], dtype=object)


def _spectral_partition(part, spec, labels, weight):
    """``sum_i weight[task_i] y_i^2 x_i x_i^T`` over one partition (in a Series)."""
    infos = _design_infos(spec.formula, spec.template)
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
    a, b = (x.iloc[0] if isinstance(x, pd.Series) else x for x in (a, b))
    return a + b


def _reduce(ddf, func, *args):
    """``func(partition, *args)`` on every partition (in the task reading it), its
    one-element Series results merged pairwise in a tree."""
    import dask

    merge = _merge_tasks if func is _task_partition else _add
    parts = ddf.map_partitions(func, *args, meta=pd.Series(dtype=object))
    (out,) = dask.compute(_tree(parts.to_delayed(), merge))
    return out.iloc[0] if isinstance(out, pd.Series) else out


def _check_shared_formula(formula, ddf, groups):
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
    DaskSharedRepresentation
    """
    _require_dask()
    design.check_missing(missing)
    if not issubclass(cls, SharedRepresentation):
        raise TypeError(f"{cls.__name__} is not a SharedRepresentation")
    _check_shared_formula(formula, ddf, groups)
    template, used = formula_template(formula, ddf)
    info = design.from_formula(formula, template, missing="drop", max_endog=1,
                               eval_env=design.default_env())
    read = list(used) + ([groups] if groups not in used else [])
    spec = _TaskSpec(formula, template, used, missing, groups)
    sums = _reduce(_columns(ddf, read), _task_partition, spec)
    if len(sums["labels"]) == 0:
        raise ValueError("data has no complete row")
    labels = pd.Index(sums["labels"])
    try:
        order = np.argsort(np.asarray(labels), kind="stable")
    except TypeError:                 # labels of mixed types: as pandas sorts them
        order = np.argsort(np.asarray(labels.astype(str)), kind="stable")
    sums = {k: (v[order] if k != "labels" else np.asarray(labels)[order])
            for k, v in sums.items()}
    n = int(round(float(sums["n"].sum())))
    design.check_rows(n)
    data = design.ModelData(RowsOnCluster((n, 1)), RowsOnCluster((n, sums["sx"].shape[1])),
                            list(info.ynames), list(info.xnames), info.intercept,
                            pd.RangeIndex(n), formula=formula,
                            design_info=info.design_info, data_template=template,
                            extra={}, implicit_constant=False)
    return DaskSharedRepresentation._from_sums(data, sums, groups, missing,
                                               (ddf[read] if read != list(ddf.columns)
                                                else ddf, spec))


class _MarginalTaskStats(smg._Rows):
    """The marginal-likelihood solver's data from per-task sums instead of rows.

    The same quantities as from the rows: ``M_t = B^T S_t B``, ``m_t = B^T b_t``
    (raw ``S_t = X_t^T X_t``, ``b_t = X_t^T y_t``, less ``N_t xbar_t xbar_t^T`` terms
    with an intercept), ``G = sum_t S_t``; the spectral start's fourth moment
    ``sum_i w_t y_i^2 x_i x_i^T`` (``w_t = 1 / (N_t (N_t - 1))``) by one more pass
    over the data (``spectral``).
    """

    def __init__(self, sums, center, spectral):
        self.S, self.bt = sums["XtX"], sums["Xty"]
        self.T, self.d = self.bt.shape
        self.N = sums["n"].astype(float)
        self.n = int(round(float(self.N.sum())))
        self.center = bool(center)
        self.n_eff = self.N - 1.0 if center else self.N.copy()
        self.c = sums["yty"].copy()
        if center:
            self.xbar = sums["sx"] / self.N[:, None]
            self.ybar = sums["sy"] / self.N
            self.c = self.c - self.N * self.ybar ** 2
        G = self.S.sum(axis=0)
        if center:
            G -= self.xbar.T @ (self.N[:, None] * self.xbar)
        self.G = (G + G.T) / 2
        self.D = np.ones(self.d)
        self._spectral = spectral

    # the solver may equilibrate (smg._Rows.equilibrate: G and xbar rescaled, D set);
    # the raw sums S_t, b_t are read through B / D, as the rows are
    def proj(self, B):
        Bs = B / self.D[:, None]
        SB = self.S @ Bs                                 # T x d x k
        M = np.matmul(Bs.T, SB)
        M = 0.5 * (M + np.swapaxes(M, 1, 2))
        return self._centred(M, self.bt @ Bs, B)

    def _xt(self, B, P, Wbar=None):
        Bs = B / self.D[:, None]
        AB = np.einsum("tdk,tkl->dl", self.S @ Bs, P)    # sum_t S_t B P_t
        out = AB if Wbar is None else np.hstack([self.bt.T @ Wbar, AB])
        return out / self.D[:, None]

    def spectral_moment(self):
        N, D = self.N, self.D
        wt = np.where(N > 1, 1.0 / (N * np.maximum(N - 1, 1)), 0.0)
        bt = self.bt / D
        if self.center:
            bt = bt - (N * self.ybar)[:, None] * self.xbar
        return bt.T @ (wt[:, None] * bt) - self._spectral(wt) / np.outer(D, D)

class DaskSharedRepresentation(SharedRepresentation):
    """:class:`~mtltransfer.SharedRepresentation` fitted from the per-task statistics
    of a Dask DataFrame (``from_formula(formula, ddf, groups="column")``).

    Holds, per task, the sums ``N_t``, ``sum x``, ``sum y``, ``X_t^T X_t``,
    ``X_t^T y_t``, ``y_t^T y_t`` (and three fourth-order sums for the W-step
    penalty of ``method="gd"``), reduced over the partitions so that a task may
    span partitions. ``method="marginal"`` (default; k given or by BIC),
    ``"gd"``/``"altmin"`` (k given or by BIC) and the baselines ``"per_task"`` and
    ``"nuclear"`` fit from them; the spectral start of the marginal fit takes one more
    pass over the data. Cross-validated k, ``"mom"`` and ``backend="cvxpy"`` need the
    rows and are refused.
    """

    @classmethod
    def _from_sums(cls, data, sums, groups, missing, frame):
        self = cls.__new__(cls)
        self.data, self.missing, self.groups_name = data, missing, groups
        self.sums = sums
        self._frame = frame
        self._spectral_cache = {}
        labels = pd.Index(sums["labels"])
        self._labels = np.asarray(labels, dtype=object)
        self.task_names = [int(t) for t in labels] if labels.inferred_type == \
            "integer" else [str(t) for t in labels]
        self.N = sums["n"].astype(np.int64)
        self.task_codes = RowsOnCluster((data.nobs,)) if hasattr(data, "nobs") else \
            RowsOnCluster((int(self.N.sum()),))
        single = [self.task_names[t] for t in np.flatnonzero(self.N < 2)]
        if single:
            from .exceptions import ValueWarning
            warnings.warn(f"{len(single)} task(s) have a single row ({single[:5]})",
                          ValueWarning, stacklevel=user_stacklevel())
        return self

    # -- statistics in place of rows -------------------------------------------------
    def exog_sd(self):
        s, n = self.sums, float(self.N.sum())
        mean = s["sx"].sum(0) / n
        return np.sqrt(np.clip(np.einsum("tdd->d", s["XtX"]) / n - mean ** 2, 0, None))

    def task_means(self, X=None, y=None, codes=None):
        if X is not None or y is not None or codes is not None:
            raise ValueError(RowsOnCluster._MESSAGE)
        N = self.N.astype(float)
        return self.sums["sx"] / N[:, None], self.sums["sy"] / N

    def task_stats(self):
        """Per-task statistics of the rows as fitted (centred within each task when
        the model has an intercept) and ``sum_i ||x_i||^2 y_i^2`` of those rows."""
        from .solvers.shared_data import TaskStats

        s, N = self.sums, self.N.astype(float)
        if not self.center:
            return TaskStats(s["XtX"], s["Xty"], s["yty"], N), s["xx_yy"]
        xb, yb = s["sx"] / N[:, None], s["sy"] / N
        XtX = s["XtX"] - N[:, None, None] * xb[:, :, None] * xb[:, None, :]
        Xty = s["Xty"] - (N * yb)[:, None] * xb
        yty = s["yty"] - N * yb ** 2
        # sum_i ||x_i - xb||^2 (y_i - yb)^2, expanded in the raw sums
        xbxb = np.sum(xb ** 2, 1)
        cross = (s["xx_yy"] - 2 * yb * s["xx_y"] + yb ** 2 * s["xx"]
                 - 2 * np.sum(xb * s["x_yy"], 1) + 4 * yb * np.sum(xb * s["Xty"], 1)
                 - 2 * yb ** 2 * np.sum(xb * s["sx"], 1)
                 + xbxb * (s["yty"] - 2 * yb * s["sy"] + N * yb ** 2))
        return TaskStats(XtX, Xty, yty, N), cross

    def _spectral(self, wt):
        key = wt.tobytes()
        if key not in self._spectral_cache:
            if getattr(self, "_frame", None) is None:
                raise ValueError("the spectral start needs one more pass over the data "
                                 "and the Dask DataFrame is not at hand (a loaded "
                                 "model); pass init= a d x k array")
            ddf, spec = self._frame
            self._spectral_cache = {key: _reduce(ddf, _spectral_partition, spec,
                                                 self._labels, wt)}
        return self._spectral_cache[key]

    def replace_data(self, rows=None, endog=None):
        raise TypeError(f"{type(self).__name__} holds statistics, not rows: the "
                        "bootstrap needs the rows in memory")

    # -- fit -------------------------------------------------------------------------
    def fit(self, k=None, *, method="marginal", lam=None, init=None, backend="fast",
            tol=1e-8, max_iter=None, criterion="bic", w_ridge="auto", verbose=False):
        """As :meth:`SharedRepresentation.fit`, from the per-task statistics:
        ``method`` "marginal", "gd", "altmin", "per_task" or "nuclear",
        ``criterion="bic"``, ``backend="fast"``; ``init`` "ridge" or a d x k array."""
        from .models.base import check_int, check_positive
        from .solvers.shared_baselines import fit_nuclear_norm, fit_per_task
        from .solvers.shared_data import TaskData
        from .solvers.shared_fit import fit_shared_representation

        if method not in ("marginal", "gd", "altmin", "per_task", "nuclear"):
            raise ValueError(f"on a Dask DataFrame method must be 'marginal', 'gd', "
                             f"'altmin', 'per_task' or 'nuclear' (they fit from per-task"
                             f" statistics); got {method!r}")
        if backend != "fast" or criterion != "bic":
            raise ValueError("on a Dask DataFrame the fit supports backend='fast' and "
                             "criterion='bic' (cross-validation folds within tasks "
                             "would need the rows)")
        if isinstance(init, str) and init != "ridge":
            raise ValueError("on a Dask DataFrame init must be 'ridge' or a d x k "
                             f"array; got {init!r}")
        if method != "marginal":     # the marginal likelihood does not depend on units
            warn_penalty_scale(self)
        if max_iter is None:
            max_iter = {"nuclear": 5000, "marginal": 2000}.get(method, 500)
        max_iter = check_int("max_iter", max_iter, 1, 10 ** 7)
        d, T = self.k_exog, self.n_tasks
        how, scores = "given", None
        if method in ("per_task", "nuclear"):       # baselines, no representation
            data = TaskData.from_statistics(*self.task_stats())
            if method == "per_task":
                sol = fit_per_task(data, None, None)
            else:
                if lam is None:
                    raise ValueError("method='nuclear' needs lam= (the nuclear-norm "
                                     "penalty)")
                lam = check_positive("lam", lam)
                sol = fit_nuclear_norm(data, None, None, lam, tol=tol,
                                       max_iter=max_iter)
            return DaskSharedRepresentationResults(self, sol, method, None, how, None,
                                                   None, None, lam)
        if method == "marginal":
            data = _MarginalTaskStats(self.sums, self.center, self._spectral)
            init_B = init if isinstance(init, np.ndarray) else None
            if k is None:
                k, scores, sol = smg.select_k_marginal(data, None, None,
                                                       center=self.center, tol=tol,
                                                       max_iter=max_iter)
                how = "BIC"
            else:
                k = check_int("k", k, 1, min(d, T))
                sol = smg.fit_marginal(data, None, None, k, center=self.center,
                                       init=init_B, tol=tol, max_iter=max_iter)
        else:
            data = TaskData.from_statistics(*self.task_stats())
            opts = dict(method=method, max_iter=max_iter, w_ridge=w_ridge)
            if k is None:
                k, scores = _select_k_stats(data, opts, tol)
                how = "BIC"
            k = check_int("k", k, 1, min(d, T))
            sol = fit_shared_representation(data, None, None, k, init=init, tol=tol,
                                            verbose=verbose, **opts)
        return DaskSharedRepresentationResults(self, sol, method, k, how, scores,
                                                sol.extra["B"], sol.extra["W"], lam)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_frame", None)
        state["_spectral_cache"] = {}
        return state

class DaskSharedRepresentationResults(SharedRepresentationResults):
    """Results of :class:`DaskSharedRepresentation`: the residual sums of squares
    and R-squared from the per-task statistics; ``predict(ddf)`` lazy."""

    @property
    def fittedvalues(self):
        raise ValueError(RowsOnCluster._MESSAGE)

    @property
    def resid(self):
        raise ValueError(RowsOnCluster._MESSAGE)

    def _task_ssr(self):
        """``sum_i (y_i - b_t - x_i^T theta_t)^2`` per task, from the raw sums."""
        s, th, b = self.model.sums, self._theta.T, self._b
        return (s["yty"] - 2 * np.sum(th * s["Xty"], 1) - 2 * b * s["sy"]
                + np.einsum("td,tde,te->t", th, s["XtX"], th)
                + 2 * b * np.sum(th * s["sx"], 1) + s["n"] * b ** 2)

    @cached_property
    def ssr(self):
        return float(np.sum(np.clip(self._task_ssr(), 0.0, None)))

    @cached_property
    def rsquared(self):
        m, s = self.model, self.model.sums
        tss = s["yty"] - (s["sy"] ** 2 / s["n"] if m.center else 0.0)
        rss = np.clip(self._task_ssr(), 0.0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            return pd.Series(np.where(tss > 0, 1 - rss / tss, np.nan),
                             index=m.task_names, name="R2")

    def bootstrap_spec(self, method):
        raise TypeError("the bootstrap needs the rows in memory")

    def predict(self, exog=None, transform=True, *, groups=None, newdata=None):
        exog = new_data_argument(exog, newdata)
        if design.is_dask_frame(exog):
            if groups is not None:
                raise ValueError("for a Dask DataFrame the task labels are read from "
                                 f"its column {self.model.groups_name!r}; groups= is "
                                 "not taken")
            _require_dask()
            meta = pd.Series(dtype=float, name=self.model.endog_names[0],
                             index=exog._meta.index[:0])
            return exog.map_partitions(_predict_shared_partition, self, transform,
                                       meta=meta)
        return super().predict(exog, transform, groups=groups)



def _select_k_stats(data, opts, tol):
    """k for ``method="gd"``/``"altmin"`` by the BIC of
    :func:`mtltransfer.solvers.shared_select.select_k`, each candidate fitted from the
    per-task statistics ``data`` (a :class:`TaskData` built from statistics)."""
    from .exceptions import ConvergenceWarning
    from .solvers import shared_select as sel
    from .solvers.shared_fit import fit_shared_representation

    class _StatsScan(sel._Scan):
        def _fit(self, k, rows, center):
            return fit_shared_representation(self.data, None, None, k, **self.fit_kw)

    ks = list(range(1, min(data.d, data.T, 10) + 1))
    scan = _StatsScan(data, 2, dict(opts, tol=max(tol, 1e-6)))
    sel._bic_scores(scan, ks)
    if scan.not_converged:
        warnings.warn(f"select_k: the fits for k in {sorted(scan.not_converged)} did not "
                      "converge (often a sign that k is too large for the data); their "
                      "scores are those of the last iterate", ConvergenceWarning,
                      stacklevel=user_stacklevel())
    return sel._best_k(scan.scores), scan.scores


def _predict_shared_partition(part, results, transform):
    return results.predict(part, transform).astype(float)


register_front_end("dask", model_from_dask=model_from_dask, formula_stats=formula_stats,
                   predict_partitions=predict_partitions, shared_from_dask=shared_from_dask)
