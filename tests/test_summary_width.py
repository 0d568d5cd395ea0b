"""summary() fits a terminal: every estimator's text summary on the demo data is at most
90 characters wide, and the wrapping that keeps it so loses no word."""

import warnings

import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer.summary import WIDTH, fmt, wrap_text

MAX_WIDTH = 90


@pytest.fixture(scope="module")
def demo():
    d = mt.datasets.load_demo()
    d["source_fit"] = mt.ReducedRank.from_formula(d["formula"], d["source"]).fit()
    return d


TARGET_ONLY = ["OLS", "Ridge", "ReducedRank", "NuclearNorm", "SparseReducedRank",
               "SOFAR", "RSSVD", "ReducedRankRidge"]
WITH_SOURCE = ["SMART", "RidgeToSource", "NuclearContrast", "SourceSubspaceRRR",
               "SourceMixture"]


def _fit(name, demo):
    f, target = demo["formula"], demo["target"]
    cls = getattr(mt, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mt.ConvergenceWarning)
        if name in TARGET_ONLY:
            return cls.from_formula(f, target).fit()
        if name == "Transfer":
            return cls.from_formula(f, target, source=demo["source_fit"]).fit(
                candidates=["source", "SourceMixture", "OLS"])
        if name == "TwoStageTransfer":
            return cls.from_formula(f, target, source_data=demo["source"]).fit()
        return cls.from_formula(f, target, source=demo["source_fit"]).fit()


def _width(text):
    return max(len(line) for line in text.splitlines())


@pytest.mark.parametrize("name", TARGET_ONLY + WITH_SOURCE + ["Transfer",
                                                              "TwoStageTransfer"])
def test_summary_fits_in_90_columns(demo, name):
    text = _fit(name, demo).summary().as_text()
    assert _width(text) <= MAX_WIDTH, text


def test_shared_representation_summary_fits_in_90_columns():
    X, y, task, B, W = mt.datasets.simulate_shared(T=30, N=20, d=8, k=2, random_state=0)
    df = pd.DataFrame(X, columns=[f"x{j + 1}" for j in range(X.shape[1])])
    df["y"], df["task"] = y, task
    formula = "y ~ " + " + ".join(df.columns[:-2])
    res = mt.SharedRepresentation.from_formula(formula, df, groups="task").fit(k=2)
    text = res.summary().as_text()
    assert _width(text) <= MAX_WIDTH, text


def test_smart_summary_keeps_every_setting_on_its_line(demo):
    """Fitting the width loses nothing: every row of the tuned SMART fit's top table
    (ranks, lambda and how each was chosen, convergence) is on one line of the text,
    its label beside its whole value; the long ones below the two-column table."""
    res = _fit("SMART", demo)
    lines = res.summary().as_text().splitlines()
    left, right = res._summary_rows()
    assert len(left) + len(right) >= 15
    for label, value in left + right:
        assert any(label in line and fmt(value) in line for line in lines), (label, value)
    # the long method name did not fit the two columns: it has a line of its own,
    # closed by the rule of the top table's width
    i = next(i for i, line in enumerate(lines) if line.startswith("Method:"))
    assert lines[i].split(":", 1)[1].strip() == "SMART (spectral transfer, ADMM)"
    rule = next(line for line in lines[i:] if line.startswith("="))
    assert len(rule) == len(lines[1]) and set(lines[1]) == {"="}


def test_long_values_wrap_at_spaces_in_their_own_table():
    """A value longer than the summary is wide continues on the next row, split only
    at spaces, under its label."""
    from mtltransfer.summary import _long_rows_table

    value = " ".join(f"w{i}" for i in range(60))
    text = _long_rows_table([("Method:", "short"), ("Sources:", value)], 80).as_text()
    lines = text.splitlines()
    assert lines[0].split() == ["Method:", "short"]
    assert lines[1].startswith("Sources:") and len(lines) > 3
    assert all(len(line) <= 80 for line in lines) and set(lines[-1]) == {"="}
    assert " ".join(lines[1:-1]).split()[1:] == value.split()


def test_wrap_text_wraps_long_lines_only_and_keeps_indent():
    long = "  " + " ".join(["word"] * 40)
    short = "a short line"
    out = wrap_text(long + "\n" + short).split("\n")
    assert out[-1] == short
    assert all(len(line) <= WIDTH for line in out)
    assert all(line.startswith("  ") for line in out[:-1])
    assert " ".join(" ".join(out[:-1]).split()) == " ".join(long.split())
