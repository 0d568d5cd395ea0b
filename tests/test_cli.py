"""Command line: the demo's comparison and ``fit`` on CSV files, errors without traceback."""

import io
import re
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
    out_file, pred_csv = tmp / "res.mtl", tmp / "pred.csv"
    proc = _run("fit", "--formula", d["formula"], "--data", str(target), "--source",
                str(source), "--rank", "3", "--out", str(out_file), "--predict", str(new),
                "--predict-out", str(pred_csv), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "SMART Results" in proc.stdout
    res = mt.load(out_file)
    assert res.rank == 3
    pred = pd.read_csv(pred_csv)
    np.testing.assert_allclose(pred.to_numpy(), res.predict(pd.read_csv(new)).to_numpy(),
                               atol=1e-8)


def test_fit_command_coefficient_source(csv_files):
    d, target, _, _, tmp = csv_files
    coef = tmp / "coef.csv"
    d["C0"].to_csv(coef)
    out_file = tmp / "res.mtl"
    proc = _run("fit", "--formula", d["formula"], "--data", str(target), "--source",
                str(coef), "--source-kind", "coef", "--rank", "3", "--out", str(out_file),
                "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "SMART Results" in proc.stdout
    # the command's fit is the library's fit with the coefficient frame as the source
    saved = mt.load(out_file)
    direct = mt.SMART.from_formula(d["formula"], d["target"], source=d["C0"]).fit(rank=3)
    assert saved.rank == 3 and saved.structural_rank == direct.structural_rank
    pd.testing.assert_frame_equal(saved.params, direct.params, atol=1e-8)
    np.testing.assert_allclose(saved.model.source, direct.model.source, atol=1e-12)


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
    # the default adapt() of the marginal fit is the posterior mean (named as such): at
    # 5 rows it beats least squares on B (shrink=0)
    assert table.loc[5, "adapt (posterior mean)"] < table.loc[5, "adapt (least squares on B)"]
    # errors fall towards the noise variance 0.25 as the new task gets rows
    assert table["adapt (shrink='auto')"].is_monotonic_decreasing
    assert table.loc[25, "adapt (shrink='auto')"] < 0.35


# -- messages of ``fit`` on the user's files (main() in-process, stderr via capsys) -----

def _main(capsys, *args):
    rc = cli.main(["fit", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, [ln for ln in err.splitlines() if ln.strip()]


def _one_error(lines):
    assert len(lines) == 1 and lines[0].startswith("mtltransfer: error: "), lines
    return lines[0]


def test_missing_values_point_to_the_flag(csv_files, capsys):
    d, target, source, _, tmp = csv_files
    frame = pd.read_csv(target)
    frame.loc[3, "x2"] = np.nan
    nan_target = tmp / "nan_target.csv"
    frame.to_csv(nan_target, index=False)
    rc, out, err = _main(capsys, "--formula", d["formula"], "--data", nan_target,
                         "--source", source, "--rank", "3", "--quiet")
    line = _one_error(err)
    assert rc == 2 and out == ""
    assert f"--data file {nan_target}" in line and "x2" in line
    assert "pass --missing drop to drop those rows" in line and "missing='drop'" not in line
    # the source data go through the same flag (--source-kind data)
    frame = pd.read_csv(source)
    frame.loc[[0, 5], "Y4"] = np.nan
    nan_source = tmp / "nan_source.csv"
    frame.to_csv(nan_source, index=False)
    rc, out, err = _main(capsys, "--formula", d["formula"], "--data", target, "--source",
                         nan_source, "--rank", "3", "--quiet")
    line = _one_error(err)
    assert rc == 2 and f"--source file {nan_source}" in line and "2 row(s)" in line
    assert "--missing drop" in line and "missing='drop'" not in line
    # with --missing drop both files lose their incomplete rows and the fit runs
    rc, out, err = _main(capsys, "--formula", d["formula"], "--data", nan_target,
                         "--source", nan_source, "--rank", "3", "--missing", "drop",
                         "--quiet")
    assert rc == 0 and err == []
    assert "SMART Results" in out
    nobs = re.search(r"No\. Observations:\s+(\d+)", out).group(1)
    assert int(nobs) == len(d["target"]) - 1


def test_missing_flag_accepts_only_raise_or_drop(csv_files, capsys):
    d, target, source, _, _ = csv_files
    with pytest.raises(SystemExit) as ex:
        cli.main(["fit", "--formula", d["formula"], "--data", str(target), "--source",
                  str(source), "--missing", "fill"])
    assert ex.value.code == 2
    assert "--missing: invalid choice: 'fill'" in capsys.readouterr().err


@pytest.mark.parametrize("content, problem", [
    ("header", "has no rows (only a header: "),
    ("empty", "is empty (no header, no rows)"),
    ("blank", "is empty (no header, no rows)"),
])
@pytest.mark.parametrize("flag", ["--data", "--source", "--predict"])
def test_files_without_rows_are_named(csv_files, capsys, flag, content, problem):
    d, target, source, new, tmp = csv_files
    bad = tmp / f"bad_{content}.csv"
    if content == "header":
        pd.read_csv({"--data": target, "--source": source, "--predict": new}[flag]).iloc[
            :0].to_csv(bad, index=False)
    else:
        bad.write_text("" if content == "empty" else "\n  \n")
    files = {"--data": target, "--source": source, "--predict": new, flag: bad}
    rc, out, err = _main(capsys, "--formula", d["formula"], "--data", files["--data"],
                         "--source", files["--source"], "--predict", files["--predict"],
                         "--predict-out", tmp / "pred.csv", "--rank", "3", "--quiet")
    line = _one_error(err)
    assert rc == 2
    assert f"{flag} file {bad} {problem}" in line
    assert "negative dimensions" not in line and "No columns to parse" not in line
    # every file is checked before anything is fitted or written
    assert out == "" and not (tmp / "pred.csv").exists()


@pytest.mark.parametrize("write, words", [
    # written without its index: the first column is a response, not the predictor names
    (lambda c, p: c.to_csv(p, index=False),
     ["the first column ('Y1') holds numbers, not predictor names"]),
    # a text first column that is not the predictor names
    (lambda c, p: c.rename(index=lambda x: f"coef of {x}").to_csv(p),
     ["does not match the target by name", "coef of x1",
      "the first column of a --source-kind coef table must hold the predictor names"]),
    (lambda c, p: c.astype(object).assign(
        Y2=lambda f: f["Y2"].where(f.index != "x2", "abc")).to_csv(p),
     ["missing or non-numeric coefficient(s)", "(x2, Y2) 'abc'"]),
    (lambda c, p: c.assign(Y5=lambda f: f["Y5"].where(f.index != "x7")).to_csv(p),
     ["missing or non-numeric coefficient(s)", "(x7, Y5) missing"]),
    (lambda c, p: pd.DataFrame({"name": c.index}).to_csv(p, index=False),
     ["has a single column"]),
], ids=["numeric first column", "names not predictors", "text cell", "empty cell",
        "one column"])
def test_bad_coefficient_tables_are_named(csv_files, capsys, write, words):
    d, target, _, _, tmp = csv_files
    coef = tmp / "coef.csv"
    write(d["C0"], coef)
    rc, out, err = _main(capsys, "--formula", d["formula"], "--data", target, "--source",
                         coef, "--source-kind", "coef", "--rank", "3", "--quiet")
    line = _one_error(err)
    assert rc == 2 and out == ""
    assert f"--source file {coef}" in line
    for w in words:
        assert w in line, (w, line)


def test_source_only_uses_the_target_means():
    d = mt.datasets.load_demo()
    src = mt.ReducedRank.from_formula(d["formula"], d["source"]).fit(rank=3)
    tmodel = mt.OLS.from_formula(d["formula"], d["target"])
    xn, yn = tmodel.exog_names, tmodel.endog_names
    C = src.params.loc[xn, yn].to_numpy()
    X, Y = d["target"][xn].to_numpy(), d["target"][yn].to_numpy()
    expected = d["test"][xn].to_numpy() @ C + (Y.mean(0) - C.T @ X.mean(0))
    got = cli._SourceOnly(src, tmodel).predict(d["test"])
    assert list(got.columns) == yn
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-12, atol=1e-12)
    # without an intercept the source coefficients are used as they are
    nocon = mt.OLS.from_formula(d["formula"] + " - 1", d["target"])
    got = cli._SourceOnly(src, nocon).predict(d["test"])
    np.testing.assert_allclose(got.to_numpy(), d["test"][xn].to_numpy() @ C, atol=1e-12)
