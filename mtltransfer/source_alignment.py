"""A source's coefficients aligned to the target's design.

A source (a coefficient matrix or DataFrame, this package's results, statsmodels'
results or a dict/list of them) becomes a p x q array in the target's predictor and
response order (:func:`align_source`, :func:`source_layout`); categorical codings that
differ between the source's and the target's formulas are re-expressed exactly when they
can be (:func:`recode_contrasts`) and refused by name otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .design import INTERCEPT_NAMES, ModelData, check_unique


def source_frame(source):
    """A source given as fitted results becomes its coefficient DataFrame.

    Accepted: results of any mtltransfer multi-response model (``params``); a statsmodels
    OLS/WLS/GLS results of one response (its ``params`` Series, named by the response);
    a list or dict of those (one per response; a dict's keys name the responses); a
    statsmodels multivariate least-squares results (``MultivariateLS``). Anything else is
    returned unchanged (a DataFrame or an array).
    """
    if isinstance(source, dict) or (isinstance(source, (list, tuple)) and source and
                                    all(is_sm_single(s) for s in source)):
        items = source.items() if isinstance(source, dict) else \
            [(None, s) for s in source]
        cols = {}
        for key, res in items:
            if not is_sm_single(res):
                raise TypeError("a list or dict source must hold statsmodels results of "
                                f"one response each; got {type(res).__name__}")
            name = str(key) if key is not None else _sm_endog_name(res)
            if name in cols:
                raise ValueError(f"source names the response {name!r} twice")
            cols[name] = pd.Series(np.asarray(res.params, dtype=float),
                                   index=[str(x) for x in res.model.exog_names])
        return pd.DataFrame(cols)
    if is_sm_single(source):
        return pd.DataFrame({_sm_endog_name(source): pd.Series(
            np.asarray(source.params, dtype=float),
            index=[str(x) for x in source.model.exog_names])})
    params = getattr(source, "params", None)
    if isinstance(params, pd.DataFrame):
        model = getattr(source, "model", None)
        ynames = getattr(model, "endog_names", None)
        if type(source).__module__.startswith("statsmodels") and ynames is not None \
                and len(ynames) == params.shape[1]:
            params = params.set_axis([str(y) for y in ynames], axis=1)
        intercept = getattr(source, "intercept", None)
        if type(source).__module__.startswith("mtltransfer") and isinstance(
                intercept, pd.Series) and getattr(getattr(model, "data", None),
                                                  "intercept", False):
            # the intercept row (ignored by name alignment) lets a re-expression of a
            # categorical's contrasts in a full coding use it
            params = pd.concat([pd.DataFrame([intercept.to_numpy()], index=["Intercept"],
                                             columns=params.columns), params])
        return params
    return source


def is_sm_single(obj):
    """Whether ``obj`` is a statsmodels single-response results object (with ``params``
    and ``model``)."""
    params = getattr(obj, "params", None)
    model = getattr(obj, "model", None)
    return (type(obj).__module__.startswith("statsmodels") and model is not None and
            np.ndim(params) == 1 and hasattr(model, "exog_names"))


def _sm_endog_name(res):
    name = res.model.endog_names
    return str(name if isinstance(name, str) else name[0])


def align_source(source, xnames, ynames, name="source", target_info=None):
    """The source coefficient matrix as a p x q array aligned to the target.

    Parameters
    ----------
    source : results, DataFrame or array
        Fitted results (see :func:`source_frame`: mtltransfer, statsmodels single- or
        multi-response, or a list/dict of statsmodels fits, one per response); a
        DataFrame of coefficients indexed by predictor names with response names as
        columns (aligned by name; an ``Intercept``/``const`` row is ignored); or a
        p x q array (taken positionally).
    xnames, ynames : list of str
        The target's predictor and response names.
    target_info : patsy.DesignInfo, optional
        The target's design (a formula model): the source's codings are compared with
        it (see :func:`source_layout`).

    Raises
    ------
    ValueError
        When names do not match, the codings of a categorical differ in a way that cannot
        be re-expressed exactly, or the matrix is not finite or is all zero (a zero
        source has no singular subspaces to transfer).
    """
    return source_layout(source, xnames, ynames, name, target_info).coef


@dataclass
class SourceLayout:
    """How the target's source matrix is read from the source's own coefficients.

    ``coef = M @ F[:, cols]`` with ``F`` the source's coefficient table in its own row
    order (``Intercept`` row included where it has one; :func:`source_frame`), ``M``
    (p x p_source) the map of its rows to the target's predictors (a selection by name,
    or the re-expression of a categorical's contrasts in the target's coding) and
    ``cols`` the positions of the target's responses among the source's columns. For an
    array source ``M`` is None (the rows are the target's, by position).
    """

    coef: np.ndarray
    M: np.ndarray | None = None
    cols: np.ndarray | None = None
    rows: list | None = None

    def apply(self, F):
        """The aligned matrix of another table ``F`` of the same layout (a redraw)."""
        F = np.asarray(F, dtype=float)
        return F if self.M is None else self.M @ F[:, self.cols]


def source_layout(source, xnames, ynames, name="source", target_info=None):
    """:class:`SourceLayout` of ``source`` against the target (see :func:`align_source`).

    Categorical terms are compared by their codings, not their column names, when both
    the source (a results object fitted from a formula: mtltransfer's or statsmodels')
    and the target (``target_info``) carry a patsy design: for a categorical variable
    coded by a main-effect term in both, coded differently (another reference level,
    another contrast, other levels), the source's contrasts are re-expressed in the
    target's coding when that is exact (every level of the target occurs in the source)
    and refused with a ValueError naming the term and both references otherwise.
    """
    source_info = source_design_info(source)
    source = source_frame(source)
    if isinstance(source, pd.Series):
        source = source.to_frame(str(source.name) if source.name is not None else
                                 ynames[0])
    if isinstance(source, pd.DataFrame):
        rows, cols = [str(i) for i in source.index], [str(c) for c in source.columns]
        recoded = {}
        if source_info is not None and target_info is not None:
            recoded = recode_contrasts(source_info, target_info, rows, xnames, name)
        used_src = {j for block in recoded.values() for j in block[1]}
        done_tgt = {i for block in recoded.values() for i in block[0]}
        plain_rows = [r for j, r in enumerate(rows)
                      if r not in INTERCEPT_NAMES and j not in used_src]
        plain_x = [x for i, x in enumerate(xnames) if i not in done_tgt]
        miss_x = [x for x in plain_x if x not in plain_rows]
        extra_x = [x for x in plain_rows if x not in plain_x]
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
            raise ValueError(f"{name} does not match the target by name; " +
                             "; ".join(parts) + _levels_hint(rows, xnames))
        check_unique(rows, f"{name}'s coefficient table")
        M = np.zeros((len(xnames), len(rows)))
        where = {r: j for j, r in enumerate(rows)}
        for i, x in enumerate(xnames):
            if i not in done_tgt:
                M[i, where[x]] = 1.0
        for tgt, src, block in recoded.values():
            M[np.ix_(tgt, src)] = block
        col_idx = np.array([cols.index(y) for y in ynames], dtype=int)
        F = source.to_numpy(dtype=float, copy=True)
        C0 = M @ F[:, col_idx]
        layout = SourceLayout(C0, M, col_idx, rows)
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
        layout = SourceLayout(C0)
    C0 = layout.coef
    if not np.all(np.isfinite(C0)):
        raise ValueError(f"{name} contains NaN or inf")
    if not np.any(C0):
        raise ValueError(f"{name} coefficient matrix is all zero: it has no singular "
                         "subspaces to transfer")
    return layout


def source_design_info(source):
    """The patsy DesignInfo of the right-hand side of a results source fitted from a
    formula (mtltransfer's, statsmodels' or the first of a list/dict of statsmodels
    fits; statsmodels keeps it as ``model.data.design_info`` or, from 0.15,
    ``model.data.model_spec``); None for anything else."""
    if isinstance(source, dict):
        source = next(iter(source.values()), None)
    elif isinstance(source, (list, tuple)):
        source = source[0] if source else None
    data = getattr(getattr(source, "model", None), "data", None)
    if isinstance(data, ModelData):
        if data.formula is None:
            return None
        try:
            return data.rhs_info()
        except ValueError:
            return None
    # statsmodels: design_info, or (0.15) model_spec; a patsy DesignInfo only (a
    # formulaic spec is not read: its columns are then paired by name)
    for attr in ("design_info", "model_spec"):
        info = getattr(data, attr, None)
        if info is not None and hasattr(info, "term_codings"):
            return info
    return None


def _factor_variable(code):
    """The variable a patsy factor reads: ``x`` of ``C(x, ...)`` or the code itself."""
    code = code.strip()
    if code.startswith("C(") and code.endswith(")"):
        inner, depth = code[2:-1], 0
        for i, ch in enumerate(inner):
            depth += ch in "([{"
            depth -= ch in ")]}"
            if ch == "," and depth == 0:
                return inner[:i].strip()
        return inner.strip()
    return code


def _categorical_codings(info):
    """{variable: (term name, levels, contrast matrix, column positions, in interaction)}
    of the categorical factors of a patsy DesignInfo."""
    out = {}
    for term in info.terms:
        cats = [f for f in term.factors if info.factor_infos[f].type == "categorical"]
        for f in cats:
            var = _factor_variable(f.code)
            alone = len(term.factors) == 1
            sl = info.term_slices[term]
            matrix = None
            if alone:
                (sub,) = info.term_codings[term]
                matrix = np.asarray(sub.contrast_matrices[f].matrix, dtype=float)
            prev = out.get(var)
            entry = (term.name(), tuple(info.factor_infos[f].categories), matrix,
                     list(range(sl.start, sl.stop)), not alone)
            if prev is None or (prev[2] is None and matrix is not None):
                out[var] = entry if prev is None else entry[:4] + (True,)
            else:
                out[var] = prev[:4] + (True,)
    return out


def _reference(levels, matrix):
    """The reference level of a reduced (treatment-like) coding: the level coded all
    zero; else a description of the coding."""
    if matrix is None:
        return "(in an interaction)"
    if matrix.shape[1] == len(levels):
        return "none (full coding, no intercept)"
    zero = [lev for lev, row in zip(levels, matrix) if not np.any(row)]
    return repr(zero[0]) if len(zero) == 1 else "none (a sum or other contrast coding)"


def recode_contrasts(source_info, target_info, source_rows, xnames, name="source"):
    """Re-express the source's categorical contrasts in the target's coding.

    For each categorical variable coded differently in the two designs (other levels,
    another reference level, another contrast matrix), with ``K_s``, ``K_t`` the
    contrast matrices (levels x columns) and ``beta_s`` the source's coefficients of the
    term, the level effects ``m = K_s beta_s`` are known up to a common constant (the
    intercept), and the target's coefficients solve

        [K_t, 1] [beta_t; c] = S m          (reduced coding in the target),
        K_t beta_t = S (a_s 1 + K_s beta_s)  (full coding: no intercept, a_s the source's),

    ``S`` selecting the target's levels among the source's. This is exact when every
    level of the target occurs in the source and the variable enters both designs as a
    main effect only; otherwise it is refused.

    Returns
    -------
    dict
        variable -> (target columns, source rows, block of M) for the re-expressed terms
        (positions in ``xnames`` and ``source_rows``).

    Raises
    ------
    ValueError
        Naming the term and both references, where the re-expression is not exact.
    """
    src, tgt = _categorical_codings(source_info), _categorical_codings(target_info)
    src_names = [c for c in source_info.column_names]
    tgt_names = [c for c in target_info.column_names]
    out = {}
    for var, (t_term, t_levels, K_t, t_pos, t_inter) in tgt.items():
        if var not in src:
            continue
        s_term, s_levels, K_s, s_pos, s_inter = src[var]
        same = (t_levels == s_levels and K_t is not None and K_s is not None and
                K_t.shape == K_s.shape and np.array_equal(K_t, K_s) and
                [tgt_names[j] for j in t_pos] == [src_names[j] for j in s_pos])
        if same:
            continue        # identical codings: the columns pair by name
        where = (f"{name}: {s_term!r} reference {_reference(s_levels, K_s)}, levels "
                 f"{list(s_levels)}; target: {t_term!r} reference "
                 f"{_reference(t_levels, K_t)}, levels {list(t_levels)}")
        missing = [lev for lev in t_levels if lev not in s_levels]
        if missing:
            every = sorted(set(s_levels) | set(t_levels), key=str)
            raise ValueError(
                f"the {name} and the target code the categorical {var!r} differently "
                f"({where}); the target's level(s) {missing} do not occur in the {name}, "
                "so its coefficients cannot be re-expressed in the target's coding. Code "
                f"both with the same levels and reference, e.g. C({var}, levels={every!r})")
        if t_inter or s_inter:
            raise ValueError(
                f"the {name} and the target code the categorical {var!r} differently "
                f"({where}), and it enters an interaction: its coefficients are not "
                "re-expressed. Code it the same way in both formulas")
        t_cols = [xnames.index(tgt_names[j]) if tgt_names[j] in xnames else None
                  for j in t_pos]
        s_rows = [source_rows.index(src_names[j]) if src_names[j] in source_rows
                  else None for j in s_pos]
        if None in t_cols or None in s_rows:
            continue        # a design the names do not cover: the name check reports it
        S = np.zeros((len(t_levels), len(s_levels)))
        S[np.arange(len(t_levels)), [s_levels.index(lev) for lev in t_levels]] = 1.0
        k_t = len(t_levels)
        if K_t.shape[1] == k_t - 1:                    # reduced coding: up to a constant
            A = np.column_stack([K_t, np.ones(k_t)])
            block = np.linalg.solve(A, S @ K_s)[:-1]
            out[var] = (t_cols, s_rows, block)
        else:                                           # full coding: absolute effects
            icpt = [j for j, r in enumerate(source_rows) if r in INTERCEPT_NAMES]
            if K_s.shape[1] == len(s_levels) - 1 and not icpt:
                raise ValueError(f"the {name} codes {var!r} with a reference level "
                                 f"({where}) but has no intercept to re-express it in "
                                 "the target's full coding")
            block = np.linalg.solve(K_t, S @ K_s)
            out[var] = (t_cols, s_rows, block)
            if K_s.shape[1] == len(s_levels) - 1:
                out[var + " (intercept)"] = (t_cols, icpt[:1],
                                             np.linalg.solve(K_t, np.ones((k_t, 1))))
    return out


_LEVEL = re.compile(r"^(C\((?P<var>[^,)]+)[^)]*\))\[(?:T\.)?(?P<level>.*)\]$")


def _levels_hint(source_names, target_names):
    """A remedy when the source and target dummy-code a categorical with other levels."""
    def levels(names):
        out = {}
        for n in names:
            m = _LEVEL.match(n)
            if m:
                out.setdefault(m.group("var").strip(), []).append(m.group("level"))
        return out

    src, tgt = levels(source_names), levels(target_names)
    hints = []
    for var, lev in src.items():
        if var in tgt and set(lev) != set(tgt[var]):
            every = sorted(set(lev) | set(tgt[var]))
            hints.append(f"C({var}, levels={every!r})")
    if not hints:
        return ""
    return (". The categorical levels differ between the source and the target: fix them "
            "in both formulas, e.g. " + ", ".join(hints) + " (list the reference level "
            "first)")
