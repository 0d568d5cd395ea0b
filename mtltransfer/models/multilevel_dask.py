"""The multilevel model (:class:`~.shared_multilevel.MultilevelRepresentation`) fitted
from a Dask DataFrame: ``SharedRepresentation.from_formula(formula, ddf, groups="g",
re_formula="~ x")``.

The marginal likelihood needs only per-group sums of the rows (the solver's
:func:`~mtltransfer.solvers.shared_multilevel.group_stats_from_sums`): with ``a = (1,
x, z)`` the fixed part's predictors and the random part's columns of a row,

    sum_i a_i a_i^T,   sum_i a_i y_i,   sum_i y_i^2,   n_t        (per group t),

which add over row sets. Each partition gives its per-group
:class:`~mtltransfer.solvers.shared_sums.TaskSums` of ``(a, y)`` (the shared
representation's one statistics form; a group may span partitions), merged pairwise in
a tree; the model is then the in-memory class, holding
the statistics instead of rows. Both task-variance models fit from them (the separate
one needs each group's own ``X^T X``, ``X^T y``, ``y^T y``, which are among the sums),
as do ``summary()``, ``predict`` for the fitted groups, ``adapt()`` for a new group
(its rows given in memory) and the cluster bootstrap; the fitted values and residuals
need the rows (``predict(ddf)`` per partition is not provided for this model).
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from .. import design
from ..solvers.shared_sums import TaskSums

__all__ = ["multilevel_from_dask"]


class _Spec:
    """What every partition needs (one picklable argument): with the Dask front end's
    design builder and chunk size (the front end passes itself in, so this module does
    not import it back)."""

    def __init__(self, formula, re_rhs, template, missing, groups, design_infos,
                 chunk_rows):
        self.formula, self.re_rhs, self.template = formula, re_rhs, template
        self.missing, self.groups = missing, groups
        self.design_infos, self.chunk_rows = design_infos, chunk_rows


def _re_info(re_rhs, template):
    import patsy

    return patsy.dmatrix(re_rhs, template, eval_env=design.default_env(),
                         NA_action="drop", return_type="dataframe").design_info


def _partition_sums(part, spec):
    """:class:`~mtltransfer.solvers.shared_sums.TaskSums` of one partition's complete
    rows (in a one-element Series)."""
    import patsy

    lhs, rhs = spec.design_infos(spec.formula, spec.template)
    zinfo = _re_info(spec.re_rhs, spec.template)
    keep = [c for c in rhs.column_names if c not in design.INTERCEPT_NAMES]
    w = 1 + len(keep) + len(zinfo.column_names)
    out = TaskSums.empty(w)
    keep_na = patsy.NAAction(NA_types=[])
    for start in range(0, len(part), spec.chunk_rows):
        work = part.iloc[start:start + spec.chunk_rows].reset_index(drop=True)
        if len(work) == 0:
            continue
        Yf, Xf, Zf = patsy.build_design_matrices([lhs, rhs, zinfo], work,
                                                 NA_action=keep_na,
                                                 return_type="dataframe")
        y = Yf.to_numpy(dtype=float)[:, 0]
        A = np.column_stack([np.ones(len(work)), Xf[keep].to_numpy(dtype=float),
                             Zf.to_numpy(dtype=float)])
        ok = np.isfinite(A).all(1) & np.isfinite(y)
        if spec.missing == "raise" and not ok.all():
            raise ValueError(f"data has missing values (NaN or inf) in the columns of "
                             f"formula or re_formula in {int((~ok).sum())} row(s) of a "
                             "partition; pass missing='drop' to drop those rows")
        labels = work[spec.groups]
        if bool((pd.isna(labels).to_numpy() & ok).any()):
            raise ValueError(f"groups contains missing labels (column {spec.groups!r})")
        if ok.any():
            out = out + TaskSums.from_rows(A[ok], y[ok], labels.to_numpy()[ok])
    return pd.Series([out], dtype=object)


def multilevel_from_dask(dk, cls, formula, ddf, groups, re_formula, *, missing="raise"):
    """``SharedRepresentation.from_formula(formula, ddf, groups="g", re_formula=...)``
    for a Dask DataFrame: one pass for the categorical levels (if any), one for the
    per-group sums.

    Parameters
    ----------
    dk : module
        The Dask front end (:mod:`mtltransfer.dask`, which registers this function with
        itself bound here): its template, reduction and placeholder helpers.
    cls, formula, ddf, groups, re_formula, missing
        As ``from_formula``.

    Returns
    -------
    MultilevelRepresentation
        Holding the per-group statistics (its rows stay on the cluster).
    """
    from .shared_multilevel import MultilevelRepresentation

    RowsOnCluster, formula_template = dk.RowsOnCluster, dk.formula_template
    dk.require_dask()
    design.check_missing(missing)
    if not isinstance(re_formula, str):
        raise TypeError(f"re_formula must be a str such as '~ x1 + x2'; got "
                        f"{type(re_formula).__name__}")
    dk.check_shared_formula(formula, ddf, groups)
    re_rhs = re_formula.split("~", 1)[-1]
    # one template for both formulas (the fixed part's intercept does not matter to it)
    template, used = formula_template(f"{formula} + {re_rhs}", ddf)
    info = design.from_formula(formula, template, missing="drop", max_endog=1,
                               eval_env=design.default_env())
    try:
        zinfo = _re_info(re_rhs, template)
    except Exception as err:     # patsy's errors, names missing from the data
        raise ValueError(f"cannot evaluate re_formula {re_formula!r}: "
                         f"{str(err).splitlines()[0]}") from None
    read = list(used) + ([groups] if groups not in used else [])
    spec = _Spec(formula, re_rhs, template, missing, groups, dk.design_infos,
                 dk.CHUNK_ROWS)
    sums = dk.reduce_partitions(dk.read_columns(ddf, read), _partition_sums, spec)
    if sums.T == 0:
        raise ValueError("data has no complete row")
    sums = sums.sorted()
    data, names = dk.cluster_task_data(sums, len(info.xnames), info, formula, template)
    re_template = template[design.formula_columns(re_rhs, template.columns)].copy()
    re_names = [str(c) for c in zinfo.column_names]
    return from_sums(MultilevelRepresentation, data, sums, names, re_names, zinfo, groups,
                     re_rhs, re_template, missing, RowsOnCluster)


def _moved_columns(sums, p0, q):
    """The random part's constant column (the random intercept) and the columns constant
    within every group, from the sums (as the in-memory ``_setup_parts``)."""
    zc = 1 + p0 + np.arange(q)
    n = float(sums.N.sum())
    tot2 = np.einsum("tjj->j", sums.XtX)[zc]                 # sum z^2
    s1 = sums.XtX[:, 0, zc]                                  # per group sum z
    mean = s1.sum(0) / n
    var = tot2 / n - mean ** 2
    const = np.flatnonzero((var <= 1e-12 * np.maximum(tot2 / n, 1e-300)) & (mean != 0))
    re_const = int(const[0]) if len(const) else None
    moved = []
    if re_const is not None:
        within = tot2 - np.sum(s1 ** 2 / sums.N[:, None], 0)
        moved = [j for j in range(q) if j != re_const and
                 within[j] <= 1e-12 * max(tot2[j], 1e-300)]
    return re_const, moved


def _gram_rank(G):
    w = np.linalg.eigvalsh((G + G.T) / 2)
    return int(np.sum(w > 1e-10 * max(w.max(), 1e-300)))


def from_sums(cls, data, sums, task_names, re_names, re_info, gname, re_rhs,
              re_template, missing, placeholder):
    """The model of per-group sums (:class:`~mtltransfer.solvers.shared_sums.TaskSums`
    of the rows ``(1, x, z)``, groups
    in the order of ``task_names``) without rows: ``data`` is a ModelData whose arrays
    are ``placeholder``s; the checks of the in-memory constructor (a constant column of
    the random part, columns constant within every group, linearly dependent columns)
    are made on the sums."""
    from ..solvers import shared_multilevel as sml

    self = cls.__new__(cls)
    self.data, self.missing, self.groups_name = data, missing, gname
    self._re_formula, self._re_template, self._re_info = re_rhs, re_template, re_info
    self.task_names = list(task_names)
    self.N = sums.N.astype(np.int64)
    n = int(self.N.sum())
    self.task_codes = placeholder((n,))
    p0, q = len(data.xnames), len(re_names)
    re_const, moved = _moved_columns(sums, p0, q)
    self.re_const = re_const
    self.set_group_level(re_names, moved, data.xnames)
    keep = [j for j in range(q) if j not in moved]
    self._Zall_names, self._re_keep = list(re_names), keep
    self.exog_re_names = [re_names[j] for j in keep]
    self.exog_re = placeholder((n, len(keep)))
    self._Zextra = placeholder((n, len(self.fe_extra)))
    xcols = ([0] if data.intercept else []) + list(range(1, 1 + p0)) + \
        [1 + p0 + j for j in self.fe_extra]
    zcols = [1 + p0 + j for j in keep]
    G = sums.XtX.sum(0)
    if _gram_rank(G[np.ix_(zcols, zcols)]) < len(zcols):
        raise ValueError(f"exog_re: the random part {self.exog_re_names} has linearly "
                         "dependent columns")
    if _gram_rank(G[np.ix_(xcols, xcols)]) < len(xcols):
        raise ValueError(f"exog: the fixed part {self.fe_names} has linearly dependent "
                         "columns")
    self.__dict__["_st"] = sml.group_stats_from_sums(sums.XtX, sums.Xty, sums.yty,
                                                     sums.N, xcols, zcols, sums.Xty[:, 0])
    return self
