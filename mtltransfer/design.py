"""Formula and array front end shared by every model.

User input (arrays, DataFrames or a patsy formula with a DataFrame) becomes a
:class:`ModelData`: validated float arrays, their names, the rows that were used, and
what is needed to rebuild the design for new data. Nothing here modifies the caller's
objects: every array handed on is a fresh copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

_INTERCEPT_NAMES = ("Intercept", "const", "intercept")


@dataclass
class ModelData:
    """Validated data of a multi-response model.

    Attributes
    ----------
    endog : ndarray, shape (n, q)
    exog : ndarray, shape (n, p)
        Predictors, without any intercept column.
    ynames, xnames : list of str
    intercept : bool
        Whether the model has an (unpenalised) intercept, handled by centring.
    row_labels : pandas.Index
        Labels of the rows used (after dropping missing rows).
    formula : str or None
    design_info : patsy.DesignInfo or None
        Right-hand side design information, used by :meth:`exog_for`.
    data_template : pandas.DataFrame or None
        The columns of the formula's data the model was built from (to rebuild
        ``design_info`` after unpickling; patsy objects cannot be pickled).
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

    @property
    def nobs(self):
        return self.endog.shape[0]

    # -- new data ---------------------------------------------------------------------
    def exog_for(self, newdata, name="exog"):
        """Design matrix (n_new x p, no intercept column) for new data.

        ``newdata`` is a DataFrame for a formula model (the design is rebuilt with the
        stored patsy design info, so categories and transformations match), or an array /
        DataFrame with the p predictor columns otherwise.
        """
        if self.formula is not None and isinstance(newdata, (pd.DataFrame, dict)):
            import patsy

            frame = pd.DataFrame(newdata)
            info = self._rhs_info()
            try:
                (X,) = patsy.build_design_matrices([info], frame, NA_action="raise",
                                                   return_type="dataframe")
            except patsy.PatsyError as err:
                missing = _missing_names(info, frame)
                if missing:
                    raise ValueError(f"{name} lacks column(s) needed by the formula: "
                                     f"{', '.join(missing)}") from None
                raise ValueError(f"cannot build the design for {name}: {err}") from None
            except NameError as err:
                raise ValueError(f"{name} lacks a column needed by the formula: "
                                 f"{err}") from None
            X = X.drop(columns=[c for c in X.columns if c in _INTERCEPT_NAMES])
            return X.to_numpy(dtype=float)
        if isinstance(newdata, pd.DataFrame) and self.formula is None \
                and all(isinstance(c, str) for c in newdata.columns):
            lacking = [c for c in self.xnames if c not in newdata.columns]
            if lacking:
                raise ValueError(f"{name} lacks predictor column(s): {', '.join(lacking)}")
            newdata = newdata[self.xnames]
        X = _as_float_2d(newdata, name)
        if X.shape[1] == len(self.xnames) + 1 and self.intercept:
            const = _constant_columns(X)
            if const:
                X = np.delete(X, const[:1], axis=1)
        if X.shape[1] != len(self.xnames):
            raise ValueError(f"{name} must have {len(self.xnames)} predictor columns "
                             f"({', '.join(map(str, self.xnames[:8]))}...); got {X.shape[1]}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name} contains NaN or inf")
        return X

    def _rhs_info(self):
        if self.design_info is None:  # after unpickling: rebuild from the stored data
            try:
                info = _build_rhs(self.formula, self.data_template)
            except NameError as err:
                raise ValueError(f"cannot rebuild the formula's design after loading: "
                                 f"{err} (a function of your session is not available; "
                                 f"define it in the formula's data instead)") from None
            names = [c for c in info.column_names if c not in _INTERCEPT_NAMES]
            if names != list(self.xnames):
                raise ValueError("the formula's design rebuilt after loading does not match "
                                 f"the fitted one: {names} vs {list(self.xnames)}")
            self.design_info = info
        return self.design_info

    def __getstate__(self):
        state = self.__dict__.copy()
        state["design_info"] = None
        return state


# ---- construction ----------------------------------------------------------------------
def from_arrays(endog, exog, *, intercept=True, missing="raise"):
    """Validate array / DataFrame input (statsmodels order: endog first)."""
    _check_missing(missing)
    if endog is None:
        raise ValueError("endog is required: the response(s), an array or DataFrame")
    if exog is None:
        raise ValueError("exog is required: the predictors, an array or DataFrame")
    ynames = _names(endog, "Y")
    xnames = _names(exog, "x")
    Y = _as_float_2d(endog, "endog")
    X = _as_float_2d(exog, "exog")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"endog and exog must have the same number of rows; got "
                         f"{Y.shape[0]} and {X.shape[0]}")
    labels = endog.index if isinstance(endog, (pd.Series, pd.DataFrame)) else \
        (exog.index if isinstance(exog, pd.DataFrame) else pd.RangeIndex(Y.shape[0]))
    ok = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
    if not ok.all():
        if missing == "raise":
            bad = np.flatnonzero(~ok)
            raise ValueError(f"endog/exog contain NaN or inf in {bad.size} row(s) (first: "
                             f"{list(labels[bad[:5]])}); pass missing='drop' to drop them")
        X, Y, labels = X[ok], Y[ok], labels[ok]
    _check_rows(Y.shape[0])
    # A constant column is the intercept: it is removed and handled by centring.
    const = _constant_columns(X)
    if const and intercept:
        keep = [j for j in range(X.shape[1]) if j not in const]
        X = X[:, keep]
        xnames = [xnames[j] for j in keep]
    if X.shape[1] == 0:
        raise ValueError("exog has no predictor besides the intercept")
    return ModelData(Y, X, ynames, xnames, bool(intercept), pd.Index(labels),
                     extra={"kept": ok})


def from_formula(formula, data, *, missing="raise", max_endog=None, eval_env=None):
    """Build :class:`ModelData` from a patsy formula such as ``"Y1 + Y2 ~ x1 + C(g)"``.

    The intercept (present unless the formula says ``- 1`` or ``0 +``) is not a column of
    ``exog``: the model centres X and Y instead and reports it separately.
    """
    import patsy

    _check_missing(missing)
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a str; got {type(formula).__name__}")
    if "~" not in formula:
        raise ValueError(f"formula has no response: expected 'Y1 + Y2 ~ x1 + x2', got "
                         f"{formula!r}")
    if not isinstance(data, pd.DataFrame):
        if isinstance(data, dict):
            data = pd.DataFrame(data)
        else:
            raise TypeError(f"data must be a pandas DataFrame; got {type(data).__name__}")
    lhs, rhs = formula.split("~", 1)
    if not lhs.strip():
        raise ValueError(f"formula has no response on the left of '~': {formula!r}")
    env = eval_env if eval_env is not None else _default_env()
    na = "drop" if missing == "drop" else "raise"
    try:
        Yf, Xf = patsy.dmatrices(formula, data, eval_env=env, NA_action=na,
                                 return_type="dataframe")
    except patsy.PatsyError as err:
        msg = str(err).splitlines()[0]
        if "missing values" in msg.lower():
            raise ValueError(f"data has missing values in columns used by the formula "
                             f"(missing='raise'); pass missing='drop' to drop those rows: "
                             f"{msg}") from None
        lacking = [v for v in _formula_variables(formula) if v not in data.columns
                   and v not in env.namespace]
        if lacking:
            raise ValueError(f"data lacks column(s) named in the formula: "
                             f"{', '.join(lacking)}") from None
        raise ValueError(f"cannot evaluate formula {formula!r}: {msg}") from None
    except NameError as err:
        raise ValueError(f"data lacks a column named in the formula: {err}") from None
    except TypeError as err:
        raise TypeError(f"a formula column is not numeric: {err}") from None
    lhs_info = Yf.design_info
    for term, cols in lhs_info.term_name_slices.items():
        if cols.stop - cols.start != 1 or any(
                f.type == "categorical" for f in
                (lhs_info.factor_infos[fac] for fac in
                 lhs_info.terms[list(lhs_info.term_names).index(term)].factors)):
            raise TypeError(f"response {term!r} in the formula is not numeric (it would be "
                            "dummy-coded into several columns); responses must be numeric")
    if max_endog is not None and Yf.shape[1] > max_endog:
        raise ValueError(f"formula has {Yf.shape[1]} response columns; this model takes at "
                         f"most {max_endog}")
    intercept = any(c in _INTERCEPT_NAMES for c in Xf.columns)
    rhs_info = Xf.design_info
    Xf = Xf.drop(columns=[c for c in Xf.columns if c in _INTERCEPT_NAMES])
    if Xf.shape[1] == 0:
        raise ValueError(f"formula {formula!r} has no predictor besides the intercept")
    Y = Yf.to_numpy(dtype=float, copy=True)
    X = Xf.to_numpy(dtype=float, copy=True)
    ok = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
    if not ok.all():
        if missing == "raise":
            raise ValueError("data contains inf in columns used by the formula; pass "
                             "missing='drop' to drop those rows")
        X, Y, Xf = X[ok], Y[ok], Xf.loc[ok]
    _check_rows(Y.shape[0])
    # every row and column of the data is kept to rebuild the design after unpickling
    # (patsy objects cannot be pickled): the same categories and transformations
    template = data.copy()
    return ModelData(Y, X, [str(c) for c in Yf.columns], [str(c) for c in Xf.columns],
                     intercept, Xf.index, formula=formula, design_info=rhs_info,
                     data_template=template)


# ---- source alignment ------------------------------------------------------------------
def align_source(source, xnames, ynames, name="source"):
    """The source coefficient matrix as a p x q array aligned to the target.

    Parameters
    ----------
    source : results object, DataFrame or array
        A fitted mtltransfer multi-response results object (its ``params``); a DataFrame
        of coefficients indexed by predictor names with response names as columns
        (aligned by name; an ``Intercept``/``const`` row is ignored); or a p x q array
        (taken positionally).
    xnames, ynames : list of str
        The target's predictor and response names.
    """
    if hasattr(source, "params") and isinstance(getattr(source, "params"), pd.DataFrame):
        source = source.params
    if isinstance(source, pd.DataFrame):
        frame = source.drop(index=[i for i in source.index if i in _INTERCEPT_NAMES])
        rows, cols = [str(i) for i in frame.index], [str(c) for c in frame.columns]
        miss_x = [x for x in xnames if x not in rows]
        extra_x = [x for x in rows if x not in xnames]
        miss_y = [y for y in ynames if y not in cols]
        extra_y = [y for y in cols if y not in ynames]
        if miss_x or extra_x or miss_y or extra_y:
            parts = []
            if miss_x:
                parts.append(f"predictors in the target but not the {name}: {miss_x}")
            if extra_x:
                parts.append(f"predictors in the {name} but not the target: {extra_x}")
            if miss_y:
                parts.append(f"responses in the target but not the {name}: {miss_y}")
            if extra_y:
                parts.append(f"responses in the {name} but not the target: {extra_y}")
            raise ValueError(f"{name} does not match the target by name; " + "; ".join(parts))
        frame.index, frame.columns = rows, cols
        C0 = frame.loc[list(xnames), list(ynames)].to_numpy(dtype=float, copy=True)
    else:
        try:
            C0 = np.array(source, dtype=float, copy=True)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a results object, a DataFrame of coefficients "
                            f"or a p x q array; got {type(source).__name__}") from None
        if C0.ndim == 1 and len(ynames) == 1:
            C0 = C0[:, None]
        if C0.shape != (len(xnames), len(ynames)):
            raise ValueError(f"{name} must be a {len(xnames)} x {len(ynames)} array "
                             f"(predictors x responses); got shape {C0.shape}")
    if not np.all(np.isfinite(C0)):
        raise ValueError(f"{name} contains NaN or inf")
    return C0


# ---- helpers ---------------------------------------------------------------------------
def _check_missing(missing):
    if missing not in ("raise", "drop"):
        raise ValueError(f"missing must be 'raise' or 'drop'; got {missing!r}")


def _check_rows(n):
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


def _as_float_2d(obj, name):
    if isinstance(obj, pd.DataFrame):
        bad = [str(c) for c, t in obj.dtypes.items()
               if not (pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t))]
        if bad:
            raise TypeError(f"{name} has non-numeric column(s): {', '.join(bad)}")
        arr = obj.to_numpy(dtype=float, copy=True)
    else:
        try:
            arr = np.array(obj, dtype=float, copy=True)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be numeric (an array or DataFrame of numbers); "
                            f"got {type(obj).__name__}") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1- or 2-dimensional; got {arr.ndim} dimensions")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    return arr


def _constant_columns(X):
    if X.shape[0] < 2:
        return []
    span = X.max(0) - X.min(0)
    return [j for j in np.flatnonzero(span == 0) if X[0, j] != 0]


def _formula_variables(formula):
    """Identifiers in a formula (a superset of the data columns it uses)."""
    return re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", formula)


def _default_env():
    import patsy

    return patsy.EvalEnvironment([{"np": np, "numpy": np}])


def _build_rhs(formula, data):
    import patsy

    rhs = formula.split("~", 1)[1]
    return patsy.dmatrix(rhs, data, eval_env=_default_env(), NA_action="drop",
                         return_type="dataframe").design_info


def _missing_names(info, frame):
    names = set()
    for factor in info.factor_infos:
        code = getattr(factor, "code", None) or factor.name()
        names.update(_formula_variables(code))
    known = set(frame.columns) | {"np", "numpy", "C", "I", "Q", "center", "standardize",
                                  "scale", "log", "exp", "Treatment", "Sum", "Poly"}
    return sorted(n for n in names if n not in known and "." not in n)
