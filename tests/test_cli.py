"""Command line: the demo's comparison and ``fit`` on CSV files, errors without traceback."""

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer import cli


@pytest.fixture(scope="module")
def demo_table():
    out = io.StringIO()
    table = cli.run_demo(quiet=True, out=out)
    return table, out.getvalue()


def test_demo_compares_smart_with_baselines(demo_table):
    table, text = demo_table
    assert "SMART Results" in text and "held-out" in text
    for method in ("SMART (tuned)", "OLS", "Ridge (GCV)", "ReducedRank (RSC)",
                   "NuclearNorm (CV)", "source coefficients only"):
        assert method in table.index
    # recompute one entry independently: OLS test error on the held-out rows
    d = mt.datasets.load_demo()
    ols = mt.OLS.from_formula(d["formula"], d["target"]).fit()
    ynames = ols.model.endog_names
    mse = np.mean((d["test"][ynames].to_numpy() - ols.predict(d["test"]).to_numpy()) ** 2)
    assert table.loc["OLS", "test MSE"] == pytest.approx(mse, rel=1e-10)
    # the embedded source is informative: transfer must beat every target-only fit
    target_only = table.drop(index=["SMART (tuned)", "source coefficients only"])
    assert table.loc["SMART (tuned)", "coef RMSE"] < target_only["coef RMSE"].min()
    assert table.loc["SMART (tuned)", "test MSE"] < target_only["test MSE"].min()


@pytest.fixture
def csv_files(tmp_path):
    d = mt.datasets.load_demo()
    target, source, test = (tmp_path / f for f in ("t.csv", "s.csv", "new.csv"))
    d["target"].to_csv(target, index=False)
    d["source"].to_csv(source, index=False)
    d["test"].iloc[:20].drop(columns=[c for c in d["test"] if c.startswith("Y")]).to_csv(
        test, index=False)
    return d, target, source, test, tmp_path


def _run(*args):
    return subprocess.run([sys.executable, "-m", "mtltransfer", *args], capture_output=True,
                          text=True, timeout=300)


def test_fit_command_writes_results_and_predictions(csv_files):
    d, target, source, new, tmp = csv_files
    out_pkl, pred_csv = tmp / "res.pkl", tmp / "pred.csv"
    proc = _run("fit", "--formula", d["formula"], "--data", str(target), "--source",
                str(source), "--rank", "3", "--out", str(out_pkl), "--predict", str(new),
                "--predict-out", str(pred_csv), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "SMART Results" in proc.stdout
    res = mt.load(out_pkl)
    assert res.rank == 3
    pred = pd.read_csv(pred_csv)
    np.testing.assert_allclose(pred.to_numpy(), res.predict(pd.read_csv(new)).to_numpy(),
                               atol=1e-8)


def test_fit_command_coefficient_source(csv_files):
    d, target, _, _, tmp = csv_files
    coef = tmp / "coef.csv"
    d["C0"].to_csv(coef)
    proc = _run("fit", "--formula", d["formula"], "--data", str(target), "--source",
                str(coef), "--source-kind", "coef", "--rank", "3", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "SMART Results" in proc.stdout


@pytest.mark.parametrize("change, words", [
    (lambda f: f.drop(columns=["x2"]), "x2"),
    (lambda f: f.assign(x3=["a"] * len(f)), "x3"),
])
def test_fit_command_bad_files_give_one_line(csv_files, change, words):
    d, target, source, _, tmp = csv_files
    bad = tmp / "bad.csv"
    change(pd.read_csv(target)).to_csv(bad, index=False)
    proc = _run("fit", "--formula", d["formula"], "--data", str(bad), "--source",
                str(source), "--rank", "3", "--quiet")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mtltransfer: error:") and words in lines[0]


def test_fit_command_missing_file(csv_files):
    d, target, _, _, tmp = csv_files
    proc = _run("fit", "--formula", d["formula"], "--data", str(target), "--source",
                str(tmp / "nope.csv"), "--quiet")
    assert proc.returncode == 2 and "nope.csv" in proc.stderr and "Traceback" not in \
        proc.stderr


def test_demo_shared_adapt_beats_single_task_fits():
    out = io.StringIO()
    table = cli.run_demo_shared(quiet=True, out=out)
    text = out.getvalue()
    assert "SharedRepresentation Results" in text and "3 (BIC)" in text
    ridge = table["Ridge on the new task alone"]
    # a new task fitted on the learned representation beats the task alone at every size
    assert (table["adapt (shrink='auto')"] < ridge).all()
    assert (table["adapt (least squares on B)"] < ridge).all()
    # with 5 rows (fewer than d), shrinking towards the learned tasks helps
    assert table.loc[5, "adapt (shrink='auto')"] < table.loc[5, "adapt (least squares on B)"]
    # errors fall towards the noise variance 0.25 as the new task gets rows
    assert table["adapt (shrink='auto')"].is_monotonic_decreasing
    assert table.loc[25, "adapt (shrink='auto')"] < 0.35
