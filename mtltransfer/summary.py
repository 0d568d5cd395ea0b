"""Building blocks of the statsmodels-style ``summary()`` of every results object."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.iolib.summary import Summary
from statsmodels.iolib.table import SimpleTable

#: above this many coefficients the summary shows a compact per-response table
MAX_COEF_CELLS = 120


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


def new_summary(res, title, left, right):
    """A Summary with its top two-column table.

    ``left`` and ``right`` are lists of (label, value) pairs; values are formatted here.
    """
    smry = Summary()
    left = [(k, [fmt(v)]) for k, v in left]
    right = [(k, [fmt(v)]) for k, v in right]
    # equal lengths, as statsmodels' two-column table expects
    while len(left) < len(right):
        left.append((" ", [" "]))
    while len(right) < len(left):
        right.append((" ", [" "]))
    yname = ", ".join(res.model.endog_names)
    smry.add_table_2cols(res, title=title, gleft=left, gright=right, yname=yname,
                         xname=list(res.model.exog_names))
    return smry


def frame_table(frame, title=None, floatfmt=None):
    """A SimpleTable from a DataFrame (index as stubs, columns as headers)."""
    cells = [[fmt(v) if floatfmt is None else floatfmt(v) for v in row]
             for row in frame.to_numpy(dtype=object)]
    return SimpleTable(cells, headers=[str(c) for c in frame.columns],
                       stubs=[str(i) for i in frame.index], title=title,
                       txt_fmt={"data_aligns": "r", "header_align": "r"})


def add_frame(smry, frame, title=None):
    """Append a DataFrame as a table of the summary."""
    smry.tables.append(frame_table(frame, title))


def coefficient_block(res, smry):
    """The coefficient table: full when small, else compact per response."""
    params = res.params
    p, q = params.shape
    if p * q <= MAX_COEF_CELLS:
        table = params.copy()
        if res.model.k_constant:
            table = pd.concat([res.intercept.to_frame("Intercept").T, table])
        add_frame(smry, table, "Coefficients (rows: predictors, columns: responses)")
    else:
        compact = pd.DataFrame({
            "intercept": res.intercept,
            "||coef||_2": np.sqrt((params ** 2).sum(axis=0)),
            "max|coef|": params.abs().max(axis=0),
            "nonzero": (params.abs() > 1e-10).sum(axis=0),
            "R2": res.rsquared,
        })
        shown = compact if q <= 30 else compact.iloc[:30]
        title = "Per-response summary" + ("" if q <= 30 else f" (first 30 of {q})")
        add_frame(smry, shown, title + f"; {p} x {q} coefficients in .params")
    return smry
