"""The tutorials run as scripts, and what they compute is what their text claims.

Each tutorial runs in its own interpreter (the same Python as the tests, matplotlib on
Agg), started all at once so that the two cores are used; the variables the checks need
are sent back pickled.
"""

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"

# the variables each check reads from the tutorial's namespace
WANTED = {
    "smart_quickstart": ["comparison", "res_summary", "rank", "converged", "n_figures"],
    "smart_macrodata": ["relative", "relative_1993", "responses"],
    "shared_representation": ["k_hat", "distance", "methods_table", "scaling",
                              "new_tasks"],
    "verify_with_cvxpy": ["backend_table", "tolerance", "kkt_default", "kkt_tight",
                          "smart_backend_diff", "rrr_diff", "shared_diff", "nuclear_diff",
                          "obj_fast", "obj_cvx"],
    "dask_source": ["source_rank", "relative", "n_partitions", "dask_vs_memory"],
    "smart_uncertainty": ["coverage", "row", "truth0", "source_sd_hat", "ci"],
}

DRIVER = textwrap.dedent("""
    import pickle, runpy, sys
    path, out, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    ns = runpy.run_path(path, run_name="__main__")
    if "res" in ns and hasattr(ns["res"], "summary"):
        ns.setdefault("res_summary", ns["res"].summary().as_text())
        ns.setdefault("rank", getattr(ns["res"], "rank", None))
        ns.setdefault("converged", ns["res"].converged)
    try:
        import matplotlib.pyplot as plt
        ns.setdefault("n_figures", {n: len(plt.figure(n).axes) for n in plt.get_fignums()})
    except ImportError:
        ns.setdefault("n_figures", None)
    with open(out, "wb") as fh:
        pickle.dump({k: ns.get(k) for k in names}, fh)
""")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start every tutorial at once; collect (returncode, stdout, stderr, variables)."""
    tmp = tmp_path_factory.mktemp("tutorials")
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
    procs = {}
    for name, names in WANTED.items():
        out = tmp / f"{name}.pkl"
        procs[name] = (subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(TUTORIALS / f"{name}.py"), str(out),
             ",".join(names)], cwd=tmp, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True), out)
    results = {}
    for name, (proc, out) in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        values = pickle.loads(out.read_bytes()) if proc.returncode == 0 else None
        results[name] = (proc.returncode, stdout, stderr, values)
    return results


def _ok(runs, name):
    code, stdout, stderr, values = runs[name]
    assert code == 0, f"{name}.py failed:\n{stderr[-3000:]}"
    return stdout, values


def test_every_tutorial_is_covered():
    scripts = {p.stem for p in TUTORIALS.glob("*.py")}
    assert scripts == set(WANTED)
    for script in TUTORIALS.glob("*.py"):
        text = script.read_text()
        assert "# %% [markdown]" in text and "\n# %%\n" in text   # jupytext percent


def test_smart_quickstart(runs):
    stdout, v = _ok(runs, "smart_quickstart")
    cmp = v["comparison"]
    assert list(cmp.index) == ["SMART", "OLS", "Ridge", "ReducedRank"]
    # transfer wins clearly in the papers' design: lower test error than every
    # target-only fit, close to the noise floor (1.0), and close to the truth
    for other in ("OLS", "Ridge", "ReducedRank"):
        assert cmp.loc["SMART", "test MSE"] < cmp.loc[other, "test MSE"]
        assert cmp.loc["SMART", "relative coef error"] < \
            cmp.loc[other, "relative coef error"]
    assert 1.0 < cmp.loc["SMART", "test MSE"] < 1.15
    assert cmp.loc["SMART", "relative coef error"] < 0.25
    assert v["rank"] == 3 and v["converged"]
    assert "SMART Results" in v["res_summary"] and "SMART Results" in stdout
    assert "rank 3 | structural rank" in stdout
    if v["n_figures"] is not None:   # the four plots: 3, 3, 1 and 2 axes + colour bar
        assert sorted(v["n_figures"].values()) == [1, 3, 3, 3]


def test_smart_macrodata(runs):
    stdout, v = _ok(runs, "smart_macrodata")
    rel, rel93 = v["relative"], v["relative_1993"]
    methods = ["SMART", "OLS", "Ridge", "ReducedRank", "NuclearNorm", "source only",
               "mean only"]
    assert list(rel.columns) == methods and list(rel.index) == [12, 16, 24, 32, 48]
    assert list(rel93.index) == [16, 32]
    assert len(v["responses"]) == 9
    both = np.vstack([rel.to_numpy(), rel93.to_numpy()])
    assert np.all(np.isfinite(both)) and np.all(both > 0)
    np.testing.assert_allclose(rel["mean only"], 1.0)
    # the claims of the tutorial's conclusion, checked on what it computed
    for table in (rel, rel93):
        shrink = table[["Ridge", "NuclearNorm"]].min(axis=1)
        assert (table["SMART"] > shrink).all()             # transfer does not win
        assert (table["source only"] > 1).all()             # source alone < mean
        short = table.index.min()
        assert table.loc[short, "SMART"] < table.loc[short, "ReducedRank"]
        assert table.loc[short, "SMART"] < table.loc[short, "OLS"]
    assert rel[["Ridge", "NuclearNorm"]].min(axis=1).min() < 0.9   # some predictability
    assert "share of settings where SMART beats" in stdout


def test_shared_representation(runs):
    stdout, v = _ok(runs, "shared_representation")
    assert v["k_hat"] == 3
    assert v["distance"] < 0.3
    m = v["methods_table"]
    assert m.loc["gd", "subspace distance"] < m.loc["mom", "subspace distance"]
    assert m.loc["gd", "relative coef error"] < m.loc["per_task", "relative coef error"]
    assert m.loc["gd", "iterations"] <= m.loc["altmin", "iterations"]
    s = v["scaling"]
    assert s["iterations"].iloc[-1] <= s["iterations"].iloc[0]        # flat in T
    assert s["subspace distance"].iloc[-1] < s["subspace distance"].iloc[0] / 2
    mse = v["new_tasks"]["test MSE"]
    assert mse.loc[10, "adapt"] < mse.loc[10, "ridge on the task alone"]
    assert mse.loc[50, "adapt"] < mse.loc[50, "OLS on the task alone"]
    assert mse.loc[5, "adapt (shrink='auto')"] < mse.loc[5, "ridge on the task alone"]
    assert mse.loc[50, "adapt"] < 1.2                       # near the noise floor (1.0)


def test_verify_with_cvxpy(runs):
    stdout, v = _ok(runs, "verify_with_cvxpy")
    table = v["backend_table"]
    assert list(table.index) == ["OLS", "Ridge", "ReducedRank", "NuclearNorm"]
    for name, tol in v["tolerance"].items():
        assert table.loc[name, "max |coef diff|"] < tol
    assert table.loc[["OLS", "Ridge", "ReducedRank"], "max |coef diff|"].max() < 1e-10
    assert v["obj_fast"] <= v["obj_cvx"] + 1e-7
    assert v["kkt_tight"] < v["kkt_default"] / 10
    assert v["smart_backend_diff"] < 1e-6
    assert v["rrr_diff"] < 1e-5
    assert v["shared_diff"] < 1e-6 and v["nuclear_diff"] < 1e-4
    assert "KKT residual" in stdout


def test_dask_source(runs):
    _, v = _ok(runs, "dask_source")
    assert v["n_partitions"] == 8
    assert v["dask_vs_memory"] < 1e-8                  # the statistics merge exactly
    rel = v["relative"]
    for other in ("OLS", "ReducedRank"):
        assert rel.loc["SMART (source on Dask)", "test MSE"] < rel.loc[other, "test MSE"]
    assert rel.loc["SMART (source on Dask)", "test MSE"] < 1.15     # noise floor 1.0
    assert 6 <= v["source_rank"] <= 20


def test_smart_uncertainty(runs):
    stdout, v = _ok(runs, "smart_uncertainty")
    cov = v["coverage"]
    redrawn, exact = cov.loc["source redrawn"], cov.loc["source exact"]
    # the text's claims: redrawing the source widens the intervals and they miss less
    assert redrawn["mean width"] > exact["mean width"]
    assert redrawn["covered"] > exact["covered"]
    assert 0.0075 < v["source_sd_hat"] < 0.0125          # simulated 0.01
    row = v["row"]
    assert row["lower"] < row["mean"] < row["upper"]
    assert "95% interval [" in stdout and f"{v['truth0']:.3f}" in stdout
    assert (v["ci"][0] < v["ci"][1]).all() and len(v["ci"]) == 21 * 8
