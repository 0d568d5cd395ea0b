"""Building blocks of the statsmodels-style ``summary()`` of every results object."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from statsmodels.iolib.summary import Summary
from statsmodels.iolib.table import SimpleTable, default_latex_fmt

from ._validation import declared_params

#: above this many coefficients the summary shows a compact per-response table
MAX_COEF_CELLS = 120

#: the text summary's width in characters: the top table's long values and the notes
#: are wrapped to it (statsmodels' own OLS summary is 78 wide)
WIDTH = 88

#: LaTeX escapes of table cells: statsmodels' own plus ``<``, ``^`` and ``~`` (applied
#: one key after the other in sorted order, so no replacement introduces a later key)
_LATEX_REPLACEMENTS = {**default_latex_fmt["replacements"], "<": r"$<$", "^": r"\^{}",
                       "~": r"\~{}"}

#: LaTeX formatting of the DataFrame tables: numbers right-aligned as in the text output
#: (header and data alike, so that each table is a single tabular)
_LATEX_FMT = {"data_aligns": "r", "header_align": "r", "replacements": _LATEX_REPLACEMENTS}


def latex_escape(text):
    """``text`` with the characters LaTeX treats specially in text mode escaped."""
    # one pass over the characters, so a replacement is never escaped again
    table = {**_LATEX_REPLACEMENTS, "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}"}
    return "".join(table.get(ch, ch) for ch in str(text))


def wrap_text(text, width=WIDTH):
    """``text`` with every line longer than ``width`` wrapped at spaces (continuation
    lines keep the line's indentation); shorter lines are left as they are."""
    out = []
    for line in str(text).split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        indent = line[:len(line) - len(line.lstrip())]
        out.append(textwrap.fill(line, width, subsequent_indent=indent,
                                 break_long_words=False, break_on_hyphens=False))
    return "\n".join(out)


class ModelSummary(Summary):
    """A statsmodels :class:`~statsmodels.iolib.summary.Summary` whose ``as_latex``
    writes every table as its own ``tabular``.

    statsmodels' ``as_latex`` merges all tables into a copy of the first one and sizes
    the columns of the first table's rows over *all* rows (the fewest columns of any
    table), so it raises ``ValueError: zip() argument 2 is shorter than argument 1``
    as soon as a later table has fewer columns than the first (here: the four-column
    top table followed by a coefficient table of one or two responses, the spectrum
    table, ...). Text, HTML and CSV exports are statsmodels' own.
    """

    def add_extra_txt(self, etext):
        """Notes below the tables (as statsmodels' ``add_extra_txt``, which replaces the
        earlier notes), each line wrapped to :data:`WIDTH` characters."""
        super().add_extra_txt([wrap_text(t) for t in etext])

    def as_text(self):
        """The tables and notes as text, as statsmodels' ``as_text`` (which drops the
        last line of every table but the last), except that a table marked
        ``keep_last_line`` keeps its closing rule."""
        keep = [str(t) if getattr(t, "keep_last_line", False) else str(t).rsplit("\n", 1)[0]
                for t in self.tables[:-1]]
        txt = "\n".join(keep + [str(self.tables[-1])])
        if self.extra_txt is not None:
            txt = txt + "\n\n" + self.extra_txt
        return txt

    def as_latex(self):
        """The tables as LaTeX (booktabs), one ``tabular`` per table, stacked in a
        ``center`` environment; titles of the later tables are shown above them; the
        extra text follows, escaped."""
        parts = [r"\begin{center}"]
        for i, table in enumerate(self.tables):
            if i:
                parts.append("")  # a paragraph break stacks the tables vertically
                if table.title:
                    parts.append(r"\textbf{%s}\\[2pt]" % latex_escape(table.title))
            parts.append(table.as_latex_tabular(center=False))
        parts.append(r"\end{center}")
        latex = "\n".join(parts)
        if self.extra_txt is not None:
            lines = [latex_escape(line) for line in self.extra_txt.split("\n")]
            latex += "\n\n" + " \\newline\n ".join(lines)
        return latex


def fmt(value):
    """Format a scalar for a summary cell."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return str(value)
        return f"{value:#.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(fmt(v) for v in value) + ")"
    return str(value)


def hyperparameter_rows(res):
    """The summary's rows of a fit's hyperparameters, read from the model's declaration.

    One row for each option the model declares (``_param_table``, see
    :mod:`mtltransfer._validation`) that the results report in ``res.hyperparameters``
    and that is tuned (``tuned=True``) or a number, in the order declared: the
    declaration's label, the fitted value and how it came, ``"given"`` when the fit call
    fixed it (``res.fit_kwargs``), else how the fit chose it (``res.chosen_by``:
    ``"RSC"``, ``"5-fold CV"``, ``"BIC"`` ...) or ``"default"``. A tuned option the fit
    neither was given nor chose (SMART's ``gamma`` left at 0) has no row; a value of
    None (not part of this fit) is shown as ``-``.

    Returns
    -------
    rows : list of (str, str)
        ``(label + ":", text)`` pairs for :func:`new_summary`.
    names : set of str
        Every declared name and label (a results' other configuration entries under
        these names are left out of the summary: the declaration speaks for them).
    """
    hyper = getattr(res, "hyperparameters", None) or {}
    chosen = getattr(res, "chosen_by", None) or {}
    given = getattr(res, "fit_kwargs", None) or {}
    declared = declared_params(type(res.model))
    rows = []
    names = {key for name, spec in declared.items()
             for key in (name, spec.summary_label(name))}
    for name, spec in declared.items():
        if name not in hyper or not (spec.tuned or spec.kind in ("int", "real", "parts")):
            continue
        value, label = hyper[name], spec.summary_label(name)
        if value is None:
            how = None
        elif spec.is_given(given.get(name)) and chosen.get(name) in (None, "given"):
            how = "given"               # (a holdout's candidate is given, then chosen)
        elif chosen.get(name) not in (None, "given"):
            how = chosen[name]
        elif spec.tuned and name not in chosen:
            continue                    # a tuned option left off: not part of this fit
        else:
            how = "default"
        rows.append((f"{label}:", "-" if how is None else f"{fmt(value)} ({how})"))
    return rows, names


def new_summary(res, title, left, right):
    """A :class:`ModelSummary` with its top two-column table.

    ``left`` and ``right`` are lists of (label, value) pairs; values are formatted here.
    """
    left = [(k, fmt(v)) for k, v in left]
    right = [(k, fmt(v)) for k, v in right]
    # the widest value column that keeps the two-column table within WIDTH; rows with
    # longer values follow it in a one-column table, so a phrase stays on one line
    # (statsmodels' columns are at least 18 wide anyway)
    longest = max(len(v) for _, v in left + right)
    for cap in range(max(longest, 18), 17, -1):
        smry = _two_column_summary(res, title, [r for r in left if len(r[1]) <= cap],
                                   [r for r in right if len(r[1]) <= cap])
        if len(smry.tables[0].as_text().splitlines()[-1]) <= WIDTH:
            break
    long_rows = [r for r in left + right if len(r[1]) > cap]
    # still too wide (long labels): the rows with the longest labels go below as well
    left = [r for r in left if len(r[1]) <= cap]
    right = [r for r in right if len(r[1]) <= cap]
    while len(smry.tables[0].as_text().splitlines()[-1]) > WIDTH and len(left + right) > 1:
        side = max((left, right), key=lambda rows: max((len(k) for k, _ in rows),
                                                        default=-1))
        row = max(side, key=lambda r: len(r[0]))
        side.remove(row)
        long_rows.append(row)
        smry = _two_column_summary(res, title, left, right)
    if long_rows:
        width = len(smry.tables[0].as_text().splitlines()[-1])
        smry.tables.append(_long_rows_table(long_rows, width))
    return smry


def _long_rows_table(rows, width):
    """(label, value) rows as a label column and a left-aligned value column, as wide
    as the table above (``width``); values wrapped at spaces onto continuation rows;
    closed by a rule."""
    stub = max(len(label) for label, _ in rows)
    room = max(width - stub - 1, 20)
    stubs, cells = [], []
    for label, value in rows:
        parts = textwrap.wrap(value, room, break_long_words=False,
                              break_on_hyphens=False) or [value]
        stubs += [label] + [""] * (len(parts) - 1)
        cells += [[part.ljust(room)] for part in parts]
    table = SimpleTable(cells, stubs=stubs,
                        txt_fmt={"data_aligns": "l", "stubs_align": "l", "colsep": " ",
                                 "table_dec_above": None, "table_dec_below": "="},
                        ltx_fmt={**_LATEX_FMT, "data_aligns": "l",
                                 "replacements": dict(_LATEX_REPLACEMENTS)})
    table.keep_last_line = True
    return table


def _two_column_summary(res, title, left, right):
    smry = ModelSummary()
    # equal lengths, as statsmodels' two-column table expects
    left = [(k, [v]) for k, v in left] or [(" ", [" "])]
    right = [(k, [v]) for k, v in right]
    while len(left) < len(right):
        left.append((" ", [" "]))
    while len(right) < len(left):
        right.append((" ", [" "]))
    yname = ", ".join(res.model.endog_names)
    smry.add_table_2cols(res, title=title, gleft=left, gright=right, yname=yname,
                         xname=list(res.model.exog_names))
    # labels such as "sigma^2 (RSS/N):" must not break the LaTeX export
    smry.tables[0].output_formats["latex"]["replacements"] = dict(_LATEX_REPLACEMENTS)
    return smry


def frame_table(frame, title=None, floatfmt=None):
    """A SimpleTable from a DataFrame (index as stubs, columns as headers)."""
    cells = [[fmt(v) if floatfmt is None else floatfmt(v) for v in row]
             for row in frame.to_numpy(dtype=object)]
    return SimpleTable(cells, headers=[str(c) for c in frame.columns],
                       stubs=[str(i) for i in frame.index], title=title,
                       txt_fmt={"data_aligns": "r", "header_align": "r"},
                       ltx_fmt={**_LATEX_FMT, "replacements": dict(_LATEX_REPLACEMENTS)})


def add_frame(smry, frame, title=None):
    """Append a DataFrame as a table of the summary."""
    smry.tables.append(frame_table(frame, title))


def coefficient_block(res, smry, alpha=0.05):
    """The coefficient tables.

    Least squares (results with closed-form inference): statsmodels' parameter table
    per response (coef, std err, t, P>|t| and the interval). Other models: with a
    bootstrap stored in ``res.bootstrap_results``, coef, bootstrap std err and
    percentile interval per response; otherwise the coefficients. Above
    ``MAX_COEF_CELLS`` coefficients, a compact per-response table.
    """
    params = res.params
    p, q = params.shape
    if p * q > MAX_COEF_CELLS:
        return _compact_block(res, smry, alpha)
    if callable(getattr(res, "t_test", None)) and hasattr(res, "param_names"):
        try:
            return _inference_block(res, smry, alpha)
        except ValueError as err:       # not identified: coefficients without errors
            smry.add_extra_txt([f"No standard errors: {err}"])
    boot = getattr(res, "bootstrap_results", None)
    if boot is not None:
        return _bootstrap_block(res, smry, boot, alpha)
    table = params.copy()
    if res.model.k_constant:
        table = pd.concat([res.intercept.to_frame("Intercept").T, table])
    add_frame(smry, table, "Coefficients (rows: predictors, columns: responses)")
    return smry


def _compact_block(res, smry, alpha=0.05):
    """One row per response; where intervals exist (least squares inference, or a
    stored bootstrap), how many slope intervals at level 1 - alpha exclude zero, and
    where the intervals themselves are."""
    params = res.params
    p, q = params.shape
    columns = {
        "intercept": res.intercept,
        "||coef||_2": np.sqrt((params ** 2).sum(axis=0)),
        "max|coef|": params.abs().max(axis=0),
        "nonzero": (params.abs() > 1e-10).sum(axis=0),
    }
    bounds, where = _slope_intervals(res, alpha)
    if bounds is not None:
        excl = (bounds["lower"] > 0) | (bounds["upper"] < 0)
        columns[f"CI excl. 0 ({1 - alpha:.0%})"] = excl.groupby(
            level="response").sum().reindex(params.columns).astype(int)
    columns["R2"] = res.rsquared
    compact = pd.DataFrame(columns)
    shown = compact if q <= 30 else compact.iloc[:30]
    title = "Per-response summary" + ("" if q <= 30 else f" (first 30 of {q})")
    add_frame(smry, shown, title + f"; {p} x {q} coefficients in .params")
    if where:
        smry.add_extra_txt([f"Every coefficient's {1 - alpha:.0%} interval: {where}."])
    return smry


def _slope_intervals(res, alpha):
    """(DataFrame lower/upper indexed by (predictor, response) for the slopes, where
    to read them), or (None, None) when the results have no intervals."""
    slopes = list(res.params.index)
    if callable(getattr(res, "t_test", None)) and hasattr(res, "param_names"):
        try:
            ci = res.conf_int(alpha)
        except ValueError:
            ci = None
        if ci is not None:
            if not isinstance(ci.index, pd.MultiIndex):   # one response
                ci = ci.set_axis(pd.MultiIndex.from_product(
                    [ci.index, res.model.endog_names], names=["predictor", "response"]))
            ci = ci.set_axis(["lower", "upper"], axis=1)
            keep = ci.index.get_level_values("predictor").isin(slopes)
            return ci[keep], f"res.conf_int(alpha={alpha:g})"
    boot = getattr(res, "bootstrap_results", None)
    if boot is not None:
        ci = boot.conf_int(alpha).set_axis(["lower", "upper"], axis=1)
        keep = ci.index.get_level_values("predictor").isin(slopes)
        return ci[keep], (f"res.bootstrap_results.conf_int(alpha={alpha:g}) "
                          f"({boot.method} bootstrap, {boot.n_boot} replicates)")
    return None, None


def _latex_ready(table):
    table.output_formats["latex"]["replacements"] = dict(_LATEX_REPLACEMENTS)
    return table


def _inference_block(res, smry, alpha):
    """statsmodels' parameter table (``summary_params``) for each response."""
    from statsmodels.iolib.summary import summary_params

    names = res.param_names
    ynames = res.model.endog_names
    for j, yname in enumerate(ynames):
        engine = res._engine(j)
        title = f"{yname} ({res.cov_type} covariance)" if len(ynames) > 1 else None
        table = summary_params(engine, yname=yname, xname=names, alpha=alpha,
                               use_t=res.use_t, title=title)
        smry.tables.append(_latex_ready(table))
    return smry


def _bootstrap_block(res, smry, boot, alpha):
    """coef, bootstrap std err and percentile interval of each response."""
    lo_name, hi_name = f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"
    ci = boot.conf_int(alpha)
    bse = boot.bse
    bse_b = getattr(boot, "bse_intercept", None)
    n_boot = getattr(boot, "n_boot", None)
    method = getattr(boot, "method", "")
    for yname in res.model.endog_names:
        coef = res.params[yname]
        se = bse[yname]
        if res.model.k_constant and bse_b is not None:
            coef = pd.concat([pd.Series({"Intercept": res.intercept[yname]}), coef])
            se = pd.concat([pd.Series({"Intercept": bse_b[yname]}), se])
        bounds = ci.xs(yname, level="response").reindex(coef.index)
        frame = pd.DataFrame({"coef": coef, "std err (bootstrap)": se,
                              lo_name: bounds.iloc[:, 0], hi_name: bounds.iloc[:, 1]})
        title = (f"{yname}: bootstrap ({method}, {n_boot} replicates) std err and "
                 f"percentile interval")
        add_frame(smry, frame, title)
    return smry
