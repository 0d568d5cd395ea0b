# Over 600 lines: ModelData and every path from user input to it, sharing their checks.
"""Formula and array front end shared by every model.

User input (arrays, DataFrames or a patsy formula with a DataFrame) becomes a
:class:`ModelData`: validated float arrays, their names, the rows that were used, and
what is needed to rebuild the design for new data. Nothing here modifies the caller's
objects, and nothing the caller does later changes a model: the arrays are copies (made
read-only), except a float array the caller has already made read-only, which is kept
as a view (the way to fit a large design without a copy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._validation import show

INTERCEPT_NAMES = ("Intercept", "const", "intercept")


@dataclass
class ModelData:
    """Validated data of a multi-response model.

    Attributes
    ----------
    endog : ndarray, shape (n, q)
    exog : ndarray, shape (n, p)
        Predictors, without the intercept's constant column.
    ynames, xnames : list of str
    intercept : bool
        Whether the model fits an (unpenalised) intercept, handled by centring.
    row_labels : pandas.Index
        Labels of the rows used (after dropping missing rows).
    formula : str or None
    design_info : patsy.DesignInfo or None
        Right-hand side design information, used by :meth:`exog_for`.
    data_template : pandas.DataFrame or None
        The columns of the formula's data the model was built from (to rebuild
        ``design_info`` after loading; patsy objects cannot be stored).
    exog_names_in : list of str
        For array input, every column of the exog given (the constant column included):
        new data for ``predict`` must have exactly these columns.
    const_idx : int or None
        Position in ``exog_names_in`` of the constant column that is the intercept.
    const_value : float
        The value of that column (the intercept multiplies ``x_const / const_value``).
    implicit_constant : bool
        The predictors span a constant without an intercept being fitted (a full set of
        dummies, or a constant column kept with ``intercept=False``): R-squared is then
        centred, as in statsmodels (``k_constant = 1``).
    design_names : list of str or None
        After :meth:`select_columns`, every predictor column of the design before the
        selection (new data are built with all of them, then restricted); None when
        ``xnames`` are all the design's columns.
    weights : ndarray, shape (n,), or None
        Observation weights of the rows used (as statsmodels' WLS), positive; None:
        unweighted.
    """

    endog: np.ndarray
    exog: np.ndarray
    ynames: list
    xnames: list
    intercept: bool
    row_labels: pd.Index
    formula: str | None = None
    design_info: object = None
    data_template: pd.DataFrame | None = None
    extra: dict = field(default_factory=dict)
    exog_names_in: list | None = None
    const_idx: int | None = None
    const_value: float = 1.0
    implicit_constant: bool = False
    #: left-hand side design information of a formula (None after loading)
    response_info: object = None
    design_names: list | None = None
    weights: np.ndarray | None = None

    @property
    def nobs(self):
        return self.endog.shape[0]

    @property
    def k_constant(self):
        """statsmodels' ``k_constant``: 1 if the model has a constant (fitted or implied)."""
        return int(self.intercept or self.implicit_constant)

    # -- new data ---------------------------------------------------------------------
    def exog_for(self, newdata, name="exog", transform=True):
        """The design of new data for prediction.

        A formula model rebuilds the design from a DataFrame with the stored patsy design
        info (same categories and transformations); ``transform=False`` takes the design
        matrix itself. An array model takes exactly the columns it was fitted on (a
        DataFrame by name, an array by position), the constant column included. After
        :meth:`select_columns`, new data have every column of the design and the result
        is restricted to the kept ones.

        Rows with a missing value give NaN rows (they are not dropped).

        Returns
        -------
        X : ndarray, shape (n_new, p)
            Predictors without the constant column; NaN in incomplete rows.
        const : ndarray, shape (n_new,)
            The multiplier of the intercept in each row (1, or ``x_const / const_value``
            where the constant column is given).
        index : pandas.Index
            Row labels of the output (the input's index for a DataFrame).
        """
        X, const, index = self._full_exog_for(newdata, name, transform)
        if self.design_names is not None:
            X = X[:, pd.Index(self.design_names).get_indexer(self.xnames)]
        return X, const, index

    def select_columns(self, names):
        """A copy restricted to the predictor columns ``names`` (a subset of ``xnames``).

        New data for :meth:`exog_for` still carry every column of the design (the
        formula's design is rebuilt, or an array has all its columns) and are restricted
        to ``names`` afterwards. Responses, rows and the intercept are unchanged.

        Parameters
        ----------
        names : list of str
            Kept predictor names, in the order of ``xnames``.

        Returns
        -------
        ModelData
        """
        from dataclasses import replace

        keep = {str(n) for n in names}
        unknown = sorted(keep.difference(self.xnames))
        if unknown or not keep:
            raise ValueError(f"names must be a nonempty subset of the predictors; unknown: "
                             f"{unknown[:5]}")
        idx = [j for j, x in enumerate(self.xnames) if x in keep]
        return replace(self, exog=self.exog[:, idx], xnames=[self.xnames[j] for j in idx],
                       design_names=list(self.design_names or self.xnames))

    def _full_exog_for(self, newdata, name, transform):
        """:meth:`exog_for` with every column of the design (before a selection)."""
        if self.formula is not None and transform:
            if isinstance(newdata, dict):
                newdata = pd.DataFrame(newdata)
            if not isinstance(newdata, pd.DataFrame):
                raise TypeError(f"{name} must be a DataFrame with the formula's columns for "
                                f"a formula model; got {type(newdata).__name__} (pass "
                                "transform=False to give the design matrix itself)")
            return self._formula_design(newdata, name)
        index = newdata.index if isinstance(newdata, (pd.DataFrame, pd.Series)) else None
        if self.formula is not None:           # transform=False: the design matrix
            wanted = list(self.design_names or self.xnames)
            with_const = ["Intercept"] + wanted if self.intercept else wanted
            X = _select_columns(newdata, name, [wanted, with_const])
            if X.shape[1] == len(wanted) + 1:
                const, X = X[:, 0], X[:, 1:]
            else:
                const = np.ones(X.shape[0])
        else:
            names_in = list(self.exog_names_in or self.xnames)
            X = _select_columns(newdata, name, [names_in])
            if self.const_idx is not None:
                const = X[:, self.const_idx] / self.const_value
                X = np.delete(X, self.const_idx, axis=1)
            else:
                const = np.ones(X.shape[0])
        X = np.where(np.isfinite(X), X, np.nan)
        index = pd.RangeIndex(X.shape[0]) if index is None else pd.Index(index)
        return X, const, index

    def take(self, rows=None, endog=None):
        """A copy on the rows ``rows`` (an index array, repeats allowed) and/or with new
        responses ``endog`` (same shape as the kept ones). Names, formula and design
        information are shared; the rows are relabelled 0..n-1."""
        from dataclasses import replace

        Y = self.endog if endog is None else np.asarray(endog, dtype=float).reshape(
            self.endog.shape)
        X, w = self.exog, self.weights
        # which observation each row is a copy of (rows drawn with repeats share it)
        row_id = self.extra.get("row_id") if self.extra else None
        if rows is not None:
            rows = np.asarray(rows)
            Y, X = Y[rows], X[rows]
            w = None if w is None else w[rows]
            row_id = rows if row_id is None else row_id[rows]
        n = Y.shape[0]
        extra = {"kept": np.ones(n, dtype=bool)}
        if row_id is not None:
            extra["row_id"] = row_id
        return replace(self, endog=Y, exog=X, row_labels=pd.RangeIndex(n),
                       extra=extra, weights=w)

    def _formula_design(self, frame, name):
        import patsy

        info = self.rhs_info()
        check_numeric_factors(frame, info, name)
        work = frame.reset_index(drop=True)          # positional rows, any index
        try:
            (X,) = patsy.build_design_matrices([info], work, NA_action="drop",
                                               return_type="dataframe")
        except patsy.PatsyError as err:
            missing = _missing_names(info, work)
            if missing:
                raise ValueError(f"{name} lacks column(s) needed by the formula: "
                                 f"{', '.join(missing)}") from None
            raise ValueError(f"cannot build the design for {name}: "
                             f"{str(err).splitlines()[0]}") from None
        except NameError as err:
            raise ValueError(f"{name} lacks a column needed by the formula: "
                             f"{err}") from None
        X = X.reindex(pd.RangeIndex(len(work)))      # rows patsy dropped come back as NaN
        X = X.drop(columns=[c for c in X.columns if c in INTERCEPT_NAMES])
        Xa = X.to_numpy(dtype=float)
        return Xa, np.ones(Xa.shape[0]), frame.index

    def rhs_info(self):
        if self.design_info is None:  # after loading: rebuild from the stored data
            try:
                info = _build_rhs(self.formula, self.data_template)
            except NameError as err:
                raise ValueError(f"cannot rebuild the formula's design after loading: "
                                 f"{err} (a function of your session is not available; "
                                 f"define it in the formula's data instead)") from None
            names = [c for c in info.column_names if c not in INTERCEPT_NAMES]
            fitted = list(self.design_names or self.xnames)
            if names != fitted:
                raise ValueError("the formula's design rebuilt after loading does not match "
                                 f"the fitted one: {names} vs {fitted}")
            self.design_info = info
        return self.design_info

    def __getstate__(self):
        state = self.__dict__.copy()
        state["design_info"] = None
        state["response_info"] = None
        return state


# ---- construction ----------------------------------------------------------------------
def column_or_aligned(data, value, name):
    """A per-row argument of ``from_formula`` (``groups=``, ``weights=``): a column name of
    ``data`` is read from it, a Series must share ``data``'s index; anything else is
    returned as given (one value per row, positional)."""
    if isinstance(value, str):
        if value not in data.columns:
            raise ValueError(f"{name}={value!r} is not a column of data")
        return data[value]
    if isinstance(value, pd.Series):
        check_aligned(("data", data), (name, value))
    return value


def check_aligned(*named):
    """Refuse pandas inputs whose row indexes differ (statsmodels' rule).

    ``named`` are ``(name, obj)`` pairs; objects that are not pandas are skipped. Rows are
    never paired by position when both sides carry labels.
    """
    labelled = [(n, o.index) for n, o in named if isinstance(o, (pd.Series, pd.DataFrame))]
    for (n1, i1), (n2, i2) in zip(labelled, labelled[1:]):
        if not i1.equals(i2):
            same_set = len(i1) == len(i2) and i1.sort_values().equals(i2.sort_values())
            hint = (" (the same labels in another order: reorder one with "
                    f"{n2}.loc[{n1}.index])" if same_set else "")
            raise ValueError(f"the indices for {n1} and {n2} are not aligned{hint}: {n1} "
                             f"index {_show_labels(i1)}, {n2} index {_show_labels(i2)}")


def from_arrays(endog, exog, *, intercept=None, missing="raise"):
    """Validate array / DataFrame input (statsmodels order: endog first).

    The intercept follows statsmodels: with ``intercept=None`` (default) one is fitted
    when ``exog`` has a constant column (statsmodels' ``hasconst`` detection; that column
    becomes the intercept), and none otherwise, so ``OLS(Y, X)`` equals ``sm.OLS(y, X)``.
    ``intercept=True`` fits one in any case, ``intercept=False`` never (a constant column
    is then an ordinary predictor). Every other column is kept.
    """
    check_missing(missing)
    if endog is None:
        raise ValueError("endog is required: the response(s), an array or DataFrame")
    if exog is None:
        raise ValueError("exog is required: the predictors, an array or DataFrame")
    if intercept not in (None, True, False):
        raise TypeError(f"intercept must be None (detect a constant column), True or "
                        f"False; got {intercept!r}")
    check_aligned(("endog", endog), ("exog", exog))
    ynames = _names(endog, "Y")
    xnames = _names(exog, "x")
    check_unique(ynames, "endog")
    check_unique(xnames, "exog")
    Y = as_float_2d(endog, "endog")
    X = as_float_2d(exog, "exog")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"endog and exog must have the same number of rows; got "
                         f"{Y.shape[0]} and {X.shape[0]}")
    labels = endog.index if isinstance(endog, (pd.Series, pd.DataFrame)) else \
        (exog.index if isinstance(exog, pd.DataFrame) else pd.RangeIndex(Y.shape[0]))
    ok = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
    if not ok.all():
        if missing == "raise":
            raise ValueError(_missing_message(
                [("endog", Y, ynames), ("exog", X, xnames)], labels, "missing='drop'"))
        X, Y, labels = X[ok], Y[ok], labels[ok]
    check_rows(Y.shape[0])
    const = _constant_columns(X)
    const_idx, const_value = (const[0], float(X[0, const[0]])) if const else (None, 1.0)
    if intercept is None:
        intercept = const_idx is not None
    implicit = False
    if not intercept:
        const_idx = None
        implicit = bool(const) or _spans_constant(X)
    names_in = list(xnames)
    if const_idx is not None:
        X = np.delete(X, const_idx, axis=1)
        xnames = [x for j, x in enumerate(xnames) if j != const_idx]
    if X.shape[1] == 0:
        raise ValueError("exog has no predictor besides the constant (intercept) column")
    return ModelData(Y, X, ynames, xnames, bool(intercept), pd.Index(labels),
                     extra={"kept": ok}, exog_names_in=names_in, const_idx=const_idx,
                     const_value=const_value, implicit_constant=implicit)


def with_weights(data, weights, name="weights"):
    """``data`` (a ModelData) with observation weights, as statsmodels' WLS.

    ``weights`` has one value per row given (rows dropped for missing values are
    dropped from it too) or per row used; every weight must be finite and positive
    (drop a row with ``subset=`` rather than weighting it zero).
    """
    from dataclasses import replace

    if weights is None:
        return data
    if isinstance(weights, pd.DataFrame):
        if weights.shape[1] != 1:
            raise ValueError(f"{name} must be one column of weights")
        weights = weights.iloc[:, 0]
    try:
        w = np.array(weights, dtype=float, copy=True)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numbers, one per row; got "
                        f"{type(weights).__name__}") from None
    if w.ndim != 1:
        raise ValueError(f"{name} must be one weight per row; got shape {w.shape}")
    kept = data.extra.get("kept") if data.extra else None
    if kept is not None and len(w) == len(kept) and len(kept) != data.nobs:
        w = w[np.asarray(kept)]
    if len(w) != data.nobs:
        given = "" if kept is None or len(kept) == data.nobs else \
            f" used, or {len(kept)} given"
        raise ValueError(f"{name} must have one value per row of the data ({data.nobs}"
                         f"{given}); got {len(w)}")
    bad = ~(np.isfinite(w) & (w > 0))
    if bad.any():
        first = np.flatnonzero(bad)[0]
        raise ValueError(f"{name} must be finite and positive; got {float(w[first])!r} at "
                         f"row {show([data.row_labels[first]])[1:-1]} (drop rows with "
                         "subset= rather than weighting them zero)")
    w.flags.writeable = False
    return replace(data, weights=w)


def _check_numeric_responses(lhs_info):
    """Refuse a response term that patsy dummy-codes (categorical, or several columns)."""
    for term, cols in lhs_info.term_name_slices.items():
        if cols.stop - cols.start != 1 or any(
                f.type == "categorical" for f in
                (lhs_info.factor_infos[fac] for fac in
                 lhs_info.terms[list(lhs_info.term_names).index(term)].factors)):
            raise TypeError(f"response {term!r} in the formula is not numeric (it would be "
                            "dummy-coded into several columns); responses must be numeric")


def from_formula(formula, data, *, missing="raise", max_endog=None, eval_env=None,
                 hash_rows=False):
    """Build :class:`ModelData` from a patsy formula such as ``"Y1 + Y2 ~ x1 + C(g)"``.

    The intercept (present unless the formula says ``- 1`` or ``0 +``) is not a column of
    ``exog``: the model centres X and Y instead and reports it separately.
    ``hash_rows=True`` keeps each used row's :func:`row_hash` in ``extra["row_hash"]``.
    """
    import patsy

    check_missing(missing)
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a str; got {type(formula).__name__}")
    if "~" not in formula:
        raise ValueError(f"formula has no response: expected 'Y1 + Y2 ~ x1 + x2', got "
                         f"{formula!r}")
    if is_dask_frame(data):
        raise TypeError("this model does not take a Dask DataFrame; OLS, Ridge, "
                        "ReducedRank, NuclearNorm, SMART and SharedRepresentation do "
                        "(see mtltransfer.dask)")
    if not isinstance(data, pd.DataFrame):
        if isinstance(data, dict):
            data = pd.DataFrame(data)
        else:
            raise TypeError(f"data must be a pandas DataFrame; got {type(data).__name__}")
    check_unique([str(c) for c in data.columns], "data")
    check_formula_columns(data, formula, "data")
    lhs, rhs = formula.split("~", 1)
    if not lhs.strip():
        raise ValueError(f"formula has no response on the left of '~': {formula!r}")
    env = eval_env if eval_env is not None else default_env()
    na = "drop" if missing == "drop" else "raise"
    # patsy sees positional row labels, so that duplicated labels cannot mix rows up
    work = data.set_axis(pd.RangeIndex(len(data)), axis=0)
    try:
        Yf, Xf = patsy.dmatrices(formula, work, eval_env=env, NA_action=na,
                                 return_type="dataframe")
    except patsy.PatsyError as err:
        msg = str(err).splitlines()[0]
        used = [v for v in dict.fromkeys(formula_variables(formula)) if v in data.columns]
        if "missing values" in msg.lower():
            frame = data[used]
            bad = [c for c in used if frame[c].isna().any()]
            rows = frame.isna().any(axis=1)
            raise ValueError(f"data has missing values in column(s) {bad} used by the "
                             f"formula, in {int(rows.sum())} row(s) (first: "
                             f"{_show_labels(data.index[rows.to_numpy()])}); pass "
                             "missing='drop' to drop those rows") from None
        lacking = _lacking_names(formula, data.columns, env.namespace)
        if lacking:
            raise ValueError(f"data lacks column(s) named in the formula: "
                             f"{', '.join(lacking)}") from None
        raise ValueError(f"cannot evaluate formula {formula!r}: {msg}"
                         f"{_shadow_hint(formula, env.namespace)}") from None
    except NameError as err:
        raise ValueError(f"data lacks a column named in the formula: {err}") from None
    except TypeError as err:
        raise TypeError(f"a formula column is not numeric: {err}"
                        f"{_shadow_hint(formula, env.namespace)}") from None
    lhs_info = Yf.design_info
    _check_numeric_responses(lhs_info)
    if max_endog is not None and Yf.shape[1] > max_endog:
        raise ValueError(f"formula has {Yf.shape[1]} response columns; this model takes at "
                         f"most {max_endog}")
    intercept = any(c in INTERCEPT_NAMES for c in Xf.columns)
    rhs_info = Xf.design_info
    Xf = Xf.drop(columns=[c for c in Xf.columns if c in INTERCEPT_NAMES])
    if Xf.shape[1] == 0:
        raise ValueError(f"formula {formula!r} has no predictor besides the intercept")
    Y = Yf.to_numpy(dtype=float, copy=True)
    X = Xf.to_numpy(dtype=float, copy=True)
    ok = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
    if not ok.all():
        if missing == "raise":
            raise ValueError(_missing_message(
                [("response", Y, list(Yf.columns)), ("design", X, list(Xf.columns))],
                data.index[Xf.index.to_numpy()], "missing='drop'"))
        X, Y, Xf = X[ok], Y[ok], Xf.loc[ok]
    check_rows(Y.shape[0])
    kept = np.zeros(len(data), dtype=bool)
    kept[Xf.index.to_numpy()] = True
    implicit = (not intercept) and (bool(_constant_columns(X)) or _spans_constant(X))
    # the formula's columns of the data are kept to rebuild the design after loading
    # (patsy objects cannot be stored): the same categories and transformations
    used = formula_columns(formula, data.columns)
    template = data[used].copy()
    extra = {"kept": kept}
    if hash_rows:
        extra["row_hash"] = row_hash(data, used)[kept]
    return ModelData(Y, X, [str(c) for c in Yf.columns], [str(c) for c in Xf.columns],
                     intercept, data.index[Xf.index.to_numpy()], formula=formula,
                     design_info=rhs_info, data_template=template, extra=extra,
                     implicit_constant=implicit, response_info=lhs_info)


def _is_text(series):
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
                or isinstance(series.dtype, pd.CategoricalDtype))


def _refuse_complex(frame, columns, name):
    for c in columns:
        if pd.api.types.is_complex_dtype(frame[c]):
            raise TypeError(f"{name} column {str(c)!r} is complex ({frame[c].dtype}); the "
                            "models take real numbers")


def check_formula_columns(data, formula, name="data"):
    """Refuse, before patsy sees them, the formula's columns that cannot be what they
    look like: complex numbers, and numbers stored as text (a column of text whose
    values are mostly numbers, with some that are not, e.g. ``"n/a"``, or that are all
    numbers with decimals), which patsy would silently dummy-code as a categorical. A
    column wrapped in ``C(...)`` is categorical by the user's word and not checked."""
    names = set(formula_variables(formula))
    used = [c for c in data.columns
            if str(c) in names or f'Q("{c}")' in formula or f"Q('{c}')" in formula]
    _refuse_complex(data, used, name)
    for c in used:
        col = data[c]
        if not _is_text(col) or re.search(rf"C\(\s*{re.escape(str(c))}\b", formula):
            continue
        values = col.dropna()
        if len(values) == 0:
            continue
        text = values.astype(str).str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        parsed = numbers.notna()
        if not parsed.any():
            continue                            # words: a categorical
        if parsed.all() and (numbers == np.round(numbers)).all():
            continue                            # integer codes: a categorical
        if parsed.all() or parsed.mean() >= 0.5:
            odd = text[~parsed]
            example = (f", with text such as {odd.iloc[0]!r} (row {odd.index[0]!r})"
                       if len(odd) else "")
            raise TypeError(f"{name} column {str(c)!r} holds numbers stored as text "
                            f"(dtype {col.dtype}){example}: convert it with "
                            f"pd.to_numeric({name}[{str(c)!r}], errors='coerce') (missing "
                            "values then follow missing=), or write C("
                            f"{c}) in the formula if it is categorical")


def check_numeric_factors(frame, info, name="exog"):
    """Refuse new data whose columns behind a numeric term of the fitted design are text
    or complex (patsy would fail with an AttributeError), naming the column."""
    columns = {str(c): c for c in frame.columns}
    for factor, finfo in info.factor_infos.items():
        code = getattr(factor, "code", None) or factor.name()
        used = [columns[v] for v in dict.fromkeys(formula_variables(code)) if v in columns]
        _refuse_complex(frame, used, name)
        if finfo.type != "numerical":
            continue
        for c in used:
            if _is_text(frame[c]):
                raise TypeError(f"{name} column {str(c)!r} is not numeric (dtype "
                                f"{frame[c].dtype}) but the fitted term {code!r} is; "
                                f"convert it with pd.to_numeric")


def subset_positions(data, subset, name="subset"):
    """Positions of the rows of ``data`` that ``subset`` selects (statsmodels'
    ``from_formula(..., subset=...)``): a boolean mask (a Series aligned with ``data`` by
    index, or one value per row) or the row labels to keep; None keeps every row."""
    n = len(data)
    if subset is None:
        return np.arange(n)
    if isinstance(subset, pd.Series) and pd.api.types.is_bool_dtype(subset):
        check_aligned(("data", data), (name, subset))
        if subset.isna().any():
            raise ValueError(f"{name} has missing values")
        mask = subset.to_numpy(dtype=bool)
    else:
        arr = np.asarray(subset)
        if arr.dtype == bool:
            if arr.ndim != 1 or len(arr) != n:
                raise ValueError(f"{name} as a boolean mask must have one value per row of "
                                 f"data ({n}); got shape {arr.shape}")
            mask = arr
        else:
            labels = pd.Index(subset if np.ndim(subset) else [subset])
            lacking = labels.difference(data.index)
            if len(lacking):
                raise ValueError(f"{name} names rows that are not in data's index: "
                                 f"{_show_labels(lacking)}")
            if not data.index.is_unique:
                raise ValueError(f"{name} given as row labels needs a unique index of data")
            return data.index.get_indexer(labels)
    pos = np.flatnonzero(mask)
    if len(pos) == 0:
        raise ValueError(f"{name} selects no row of data")
    return pos


def formula_columns(formula, columns):
    """The columns of the data a formula may read (in the data's order)."""
    return [c for c in columns if str(c) in formula]


# ---- hashed folds ----------------------------------------------------------------------
def is_dask_frame(obj):
    """Whether ``obj`` is a Dask DataFrame (by its type's module: Dask is not imported)."""
    return any(k.__module__.split(".")[0] in ("dask", "dask_expr") and
               k.__name__ == "DataFrame" for k in type(obj).__mro__)


def row_hash(frame, columns):
    """A deterministic 64-bit hash of each row's values in ``columns``.

    It depends on the row's content only (not its index or position): numeric columns
    are hashed as float64, every other column as the text of its values, so a row read
    back from parquet, in any partition, hashes as it did in memory. Identical rows
    share a hash (and so a fold).
    """
    columns = list(columns)
    if all(frame[c].dtype == np.float64 for c in columns):    # hashed as they are
        return pd.util.hash_pandas_object(frame[columns], index=False).to_numpy(
            dtype=np.uint64)
    parts = {}
    for c in columns:
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col.dtype) and not \
                pd.api.types.is_bool_dtype(col.dtype):
            parts[str(c)] = col.to_numpy(dtype=float, na_value=np.nan)
        else:
            parts[str(c)] = np.array([str(v) for v in col.astype(object)], dtype=object)
    table = pd.DataFrame(parts, index=pd.RangeIndex(len(frame)))
    return pd.util.hash_pandas_object(table, index=False).to_numpy(dtype=np.uint64)


def hash_folds(hashes, n_folds):
    """Fold of each row for K-fold cross-validation: ``row_hash mod n_folds``.

    Each row's fold follows from its own content, so the per-fold statistics of data
    spread over partitions (or machines) need no shuffle, and the same rows give the
    same folds in memory and on Dask.
    """
    return (np.asarray(hashes, dtype=np.uint64) % np.uint64(n_folds)).astype(np.int64)


def groups_for(groups, rows_like, kept=None, name="groups"):
    """Task labels of the rows of a model, aligned like the data.

    ``groups`` is an array (positional, one label per row given) or a Series, which must
    carry the same index as the data (``rows_like``, a pandas object or None); ``kept``
    is the boolean mask of rows kept after missing-value handling.
    """
    if groups is None:
        raise ValueError(f"{name} is required: the task label of each row")
    if isinstance(groups, (pd.Series, pd.DataFrame)):
        if isinstance(groups, pd.DataFrame):
            if groups.shape[1] != 1:
                raise ValueError(f"{name} must be one column of labels; got "
                                 f"{groups.shape[1]} columns")
            groups = groups.iloc[:, 0]
        if isinstance(rows_like, (pd.Series, pd.DataFrame)):
            check_aligned(("exog", rows_like), (name, groups))
    labels = np.asarray(groups)
    n_rows = len(rows_like) if rows_like is not None and hasattr(rows_like, "__len__") \
        else None
    if labels.ndim != 1 or (n_rows is not None and len(labels) != n_rows):
        raise ValueError(f"{name} must have one label per row ({n_rows}); got shape "
                         f"{labels.shape}")
    return labels if kept is None else labels[kept]


# ---- helpers ---------------------------------------------------------------------------
def check_missing(missing):
    """Refuse a ``missing=`` other than "raise" or "drop"."""
    if missing not in ("raise", "drop"):
        raise ValueError(f"missing must be 'raise' or 'drop'; got {missing!r}")


def check_unique(names, what):
    """Refuse duplicated names (``what``: which names, for the message)."""
    seen, dup = set(), []
    for n in names:
        if n in seen and n not in dup:
            dup.append(n)
        seen.add(n)
    if dup:
        raise ValueError(f"{what} has duplicate column name(s): {dup}; rename them")


def _show_labels(index, k=5):
    shown = [str(v) for v in list(index[:k])]
    return "[" + ", ".join(shown) + (", ...]" if len(index) > k else "]")


def _missing_message(blocks, labels, remedy):
    """'column(s) ... have NaN or inf in N row(s) (first: ...)' for the given blocks."""
    bad_cols, bad_rows = [], np.zeros(len(labels), dtype=bool)
    for what, arr, names in blocks:
        fin = np.isfinite(arr)
        bad_cols += [f"{names[j]}" for j in np.flatnonzero(~fin.all(0))]
        bad_rows |= ~fin.all(1)
    return (f"NaN or inf in column(s) {bad_cols}, in {int(bad_rows.sum())} row(s) (first: "
            f"{_show_labels(pd.Index(labels)[bad_rows])}); pass {remedy} to drop those rows")


def _spans_constant(X, chunk=65536):
    """Whether a column of ones lies in the span of the columns of X (statsmodels'
    implicit-constant test: adding it does not raise the rank).

    statsmodels compares ``matrix_rank([1, X])`` with ``matrix_rank(X)``: singular values
    above ``s_max max(n, d) eps``. The same singular values come here from the triangular
    factor R of ``[1, X] = Q R``, built by QR factorisations of row chunks stacked on the
    previous R (those of X are the singular values of ``R[:, 1:]``), so that no copy of
    the whole design and no n-row SVD is made. A well-conditioned ``[1, X]`` (the
    eigenvalues of its cross-product matrix within a factor 1e8 of each other, so that
    every singular value is far above the cut-off) has full rank and X one less: the
    answer is then read from that (d+1) x (d+1) matrix alone.
    """
    n, d = X.shape
    if n <= d:
        return False
    colsum = X.sum(axis=0)
    gram = np.block([[np.array([[float(n)]]), colsum[None, :]],
                     [colsum[:, None], X.T @ X]])
    w = np.linalg.eigvalsh(gram)
    if w[0] > 1e-8 * w[-1]:
        return False
    R = np.zeros((0, d + 1))
    for start in range(0, n, chunk):
        block = X[start:start + chunk]
        block = np.column_stack([np.ones(len(block)), block])
        R = np.linalg.qr(np.vstack([R, block]), mode="r")

    def rank(A):
        sv = np.linalg.svd(A, compute_uv=False)
        return int(np.sum(sv > sv.max(initial=0.0) * n * np.finfo(float).eps))

    return rank(R) == rank(R[:, 1:])


def _select_columns(newdata, name, layouts):
    """New data as a float array with one of the allowed column ``layouts``.

    A DataFrame is matched by column name (any order; every listed column, no other); an
    array by its number of columns.
    """
    if isinstance(newdata, pd.Series):
        newdata = newdata.to_frame().T if len(layouts[0]) > 1 else newdata.to_frame()
    if isinstance(newdata, pd.DataFrame) and not isinstance(newdata.columns, pd.RangeIndex):
        cols = [str(c) for c in newdata.columns]
        check_unique(cols, name)
        for names in layouts:
            if set(cols) == set(names):
                frame = newdata.set_axis(cols, axis=1)[names]
                return as_float_2d(frame, name)
        names = layouts[0]
        lacking = [c for c in names if c not in cols]
        extra = [c for c in cols if c not in names and
                 not any(c in other for other in layouts)]
        raise ValueError(f"{name} must have exactly the fitted columns {names}; " +
                         "; ".join(part for part in (
                             f"missing: {lacking}" if lacking else "",
                             f"not fitted: {extra}" if extra else "") if part))
    X = as_float_2d(newdata, name)
    if X.shape[1] == 1 and len(layouts[0]) > 1 and np.ndim(newdata) == 1:
        X = X.T                                    # one new row given as a vector
    widths = [len(names) for names in layouts]
    if X.shape[1] not in widths:
        raise ValueError(f"{name} must have {widths[0]} columns, the fitted ones "
                         f"({', '.join(map(str, layouts[0][:8]))}"
                         f"{', ...' if widths[0] > 8 else ''}); got {X.shape[1]}")
    return X


def check_rows(n):
    """Refuse fewer than 2 complete rows."""
    if n < 2:
        raise ValueError(f"endog/exog need at least 2 complete rows to fit; got {n}")


def _names(obj, prefix):
    if isinstance(obj, pd.DataFrame):
        return [str(c) for c in obj.columns]
    if isinstance(obj, pd.Series):
        return [str(obj.name) if obj.name is not None else f"{prefix}1"]
    arr = np.asarray(obj)
    k = 1 if arr.ndim == 1 else (arr.shape[1] if arr.ndim == 2 else 0)
    return [f"{prefix}{j + 1}" for j in range(k)]


def as_float_2d(obj, name):
    """The data as a read-only 2-d float array, copied from the input: results computed
    later from the rows (residuals, robust covariances, the bootstrap) must not change
    when the caller reuses their array. A float ndarray that is already read-only is
    kept as a view without a copy (the caller has promised not to change it: the way to
    avoid the copy of a large design, ``X.flags.writeable = False``)."""
    if isinstance(obj, pd.DataFrame):
        bad = [str(c) for c, t in obj.dtypes.items()
               if not (pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t))]
        if bad:
            raise TypeError(f"{name} has non-numeric column(s): {', '.join(bad)}")
        _refuse_complex(obj, obj.columns, name)
        arr = obj.to_numpy(dtype=float, copy=True)
    elif isinstance(obj, np.ndarray) and obj.dtype == np.float64 and \
            not obj.flags.writeable:
        arr = obj.view()
    else:
        if isinstance(obj, pd.Series) and pd.api.types.is_complex_dtype(obj) or \
                np.iscomplexobj(obj):
            raise TypeError(f"{name} is complex; the models take real numbers")
        try:
            arr = np.array(obj, dtype=float, copy=True)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be numeric (an array or DataFrame of numbers); "
                            f"got {type(obj).__name__}") from None
    arr.flags.writeable = False
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1- or 2-dimensional; got {arr.ndim} dimensions")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    return arr


def _constant_columns(X):
    """Columns that are constant and nonzero over the rows (statsmodels' ``hasconst``);
    a column of ones first, as statsmodels prefers it."""
    if X.shape[0] < 2:
        return []
    span = X.max(0) - X.min(0)
    const = [int(j) for j in np.flatnonzero(span == 0) if X[0, j] != 0]
    return sorted(const, key=lambda j: X[0, j] != 1)


#: names of patsy's formula language (functions and contrasts)
_PATSY_BUILTINS = ("C", "I", "Q", "center", "standardize", "scale", "bs", "cr", "cc", "te",
                   "Treatment", "Sum", "Poly", "Helmert", "Diff")


def _lacking_names(formula, columns, namespace):
    """Identifiers of the formula that are neither data columns nor names of the
    evaluation environment nor patsy's own (``np.log`` counts as ``np``)."""
    known = {str(c) for c in columns}
    out = []
    for v in dict.fromkeys(formula_variables(formula)):
        root = v.split(".")[0]
        if v in known or root in known or root in namespace or root in _PATSY_BUILTINS:
            continue
        out.append(v)
    return out


def _shadow_hint(formula, namespace):
    """A hint when variables of the user's session hide patsy's formula functions."""
    shadow = [n for n in _PATSY_BUILTINS if n in namespace and
              not callable(namespace[n]) and re.search(rf"\b{n}\(", formula)]
    if not shadow:
        return ""
    return (f" (the name(s) {shadow} of the formula language are variables of your "
            "session and hide the formula functions: rename those variables)")


def formula_variables(formula):
    """Identifiers in a formula (a superset of the data columns it uses)."""
    return re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", formula)


def default_env():
    """The patsy environment of a formula evaluated away from the caller's session (the
    data's columns and NumPy only)."""
    import patsy

    return patsy.EvalEnvironment([{"np": np, "numpy": np}])


def _build_rhs(formula, data):
    import patsy

    rhs = formula.split("~", 1)[1]
    return patsy.dmatrix(rhs, data, eval_env=default_env(), NA_action="drop",
                         return_type="dataframe").design_info


def _missing_names(info, frame):
    names = set()
    for factor in info.factor_infos:
        code = getattr(factor, "code", None) or factor.name()
        names.update(formula_variables(code))
    known = set(frame.columns) | {"np", "numpy", "log", "exp"} | set(_PATSY_BUILTINS)
    return sorted(n for n in names if n not in known and "." not in n)
