"""Fits from Dask DataFrames on a real dask.distributed cluster equal the in-memory fits.

One LocalCluster (2 worker processes, 1 thread each) serves the module; the data are
written to parquet in a temporary directory and read back lazily.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer import design

import dask.dataframe as dd
from distributed import Client, LocalCluster

ROOT = Path(__file__).resolve().parent.parent
FORMULA = "y1 + y2 + y3 + y4 ~ x1 + x2 + np.log(x3) + x4 + C(site)"
RTOL = 1e-8


def _rows(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    site = rng.choice(["north", "south", "east"], n)
    C = rng.standard_normal((5, 2)) @ rng.standard_normal((2, 4))
    design_ = np.column_stack([X, site == "south"])     # x3 enters as log(exp(x3))
    Y = 1.0 + design_ @ C + 0.5 * rng.standard_normal((n, 4))
    frame = pd.DataFrame(X, columns=["x1", "x2", "x3", "x4"])
    frame["x3"] = np.exp(frame["x3"])
    frame["site"] = site
    for j in range(4):
        frame[f"y{j + 1}"] = Y[:, j]
    frame.loc[[i for i in (3, 50, 777) if i < n], "x2"] = np.nan   # dropped by missing="drop"
    return frame


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data(tmp_path_factory, client):
    frame = _rows(2400, seed=1)
    path = tmp_path_factory.mktemp("parquet") / "rows"
    dd.from_pandas(frame, npartitions=5).to_parquet(path)
    return frame, dd.read_parquet(path)


def _close(a, b, rtol=RTOL):
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = max(np.max(np.abs(b)), 1e-300)
    return np.max(np.abs(a - b)) <= rtol * scale


@pytest.fixture(scope="module")
def fits(data):
    """Each model on Dask (default hashed folds) and in memory with folds='hash'."""
    frame, ddf = data
    out = {}
    for cls in (mt.OLS, mt.Ridge, mt.ReducedRank, mt.NuclearNorm):
        on_dask = cls.from_formula(FORMULA, ddf, missing="drop").fit()
        in_memory = cls.from_formula(FORMULA, frame, missing="drop", folds="hash").fit()
        out[cls.__name__] = on_dask, in_memory
    return out


@pytest.mark.parametrize("name", ["OLS", "Ridge", "ReducedRank", "NuclearNorm"])
def test_dask_fit_equals_in_memory_fit(fits, name):
    on_dask, in_memory = fits[name]
    assert on_dask.nobs == in_memory.nobs == 2400 - 3
    assert list(on_dask.params.index) == list(in_memory.params.index)
    assert _close(on_dask.params, in_memory.params)
    assert _close(on_dask.intercept, in_memory.intercept)
    for key, value in getattr(in_memory, "hyperparameters", {}).items():
        assert on_dask.hyperparameters[key] == pytest.approx(value, rel=RTOL)
    # residual-based quantities come from the statistics, without the rows
    assert on_dask.ssr == pytest.approx(in_memory.ssr, rel=RTOL)
    assert _close(on_dask.rsquared, in_memory.rsquared)
    assert on_dask.llf == pytest.approx(in_memory.llf, rel=RTOL)
    assert on_dask.bic == pytest.approx(in_memory.bic, rel=RTOL)


def test_tuning_was_exercised(fits):
    # the chosen tuning is interior (not an end of the grids): the equality above is
    # an equality of selections, not of two defaults
    ridge = fits["Ridge"][0]
    assert ridge.chosen_by["alpha"] == "GCV"
    grid = ridge.tuning["gcv"]["alpha"]
    assert grid.min() < ridge.alpha < grid.max()
    nuc = fits["NuclearNorm"][0]
    assert nuc.chosen_by["lam"] == "5-fold CV"
    path = nuc.tuning["lam_cv"]["lam"]
    assert path.min() < nuc.lam < path.max()
    assert fits["ReducedRank"][0].rank == 2


def test_smart_source_on_dask_transfers_to_in_memory_target(data, fits):
    frame, ddf = data
    source = mt.ReducedRank.from_formula(FORMULA, ddf, missing="drop").fit(rank=2)
    target = _rows(150, seed=2).dropna()
    res = mt.SMART.from_formula(FORMULA, target, source=source).fit()
    same = mt.SMART.from_formula(FORMULA, target,
                                 source=fits["ReducedRank"][1].params).fit()
    assert _close(res.params, same.params)
    # SMART itself on Dask: ranks by RSC, structural ranks by hashed-fold CV, lambda path
    on_dask = mt.SMART.from_formula(FORMULA, ddf, missing="drop", source=source).fit()
    in_memory = mt.SMART.from_formula(FORMULA, frame, missing="drop", folds="hash",
                                      source=source).fit()
    assert on_dask.hyperparameters["rank"] == in_memory.hyperparameters["rank"]
    assert on_dask.structural_rank == in_memory.structural_rank
    assert np.allclose(on_dask.lam, in_memory.lam, rtol=RTOL)
    assert _close(on_dask.params, in_memory.params)
    assert _close(on_dask.intercept, in_memory.intercept)
    # residual-based quantities from the statistics, and a lazy prediction
    assert on_dask.ssr == pytest.approx(in_memory.ssr, rel=RTOL)
    assert on_dask.llf == pytest.approx(in_memory.llf, rel=RTOL)
    pred = on_dask.predict(ddf)
    assert design.is_dask_frame(pred)
    ok = frame["x2"].notna().to_numpy()
    assert _close(pred.compute().to_numpy()[ok], in_memory.predict(frame).to_numpy()[ok])


@pytest.mark.parametrize("name", ["OLS", "Ridge", "ReducedRank", "NuclearNorm"])
def test_predict_is_lazy_and_partitionwise(data, fits, name):
    frame, ddf = data
    on_dask, in_memory = fits[name]
    pred = on_dask.predict(ddf)
    assert design.is_dask_frame(pred) and pred.npartitions == ddf.npartitions
    got = pred.compute()
    want = in_memory.predict(frame)
    assert list(got.columns) == ["y1", "y2", "y3", "y4"]
    assert np.isnan(got.to_numpy()[[3, 50, 777]]).all()
    ok = frame["x2"].notna().to_numpy()
    assert _close(got.to_numpy()[ok], want.to_numpy()[ok])


def test_rows_stay_on_the_cluster(fits):
    on_dask = fits["OLS"][0]
    with pytest.raises(ValueError, match="stay on the cluster"):
        on_dask.fittedvalues
    with pytest.raises(TypeError, match="needs the training rows in memory"):
        fits["ReducedRank"][0].bootstrap(n_boot=4)


def test_save_and_load(fits, tmp_path, data):
    frame, _ = data
    on_dask = fits["ReducedRank"][0]
    on_dask.save(tmp_path / "rrr.zip")
    back = mt.load(tmp_path / "rrr.zip")
    assert np.array_equal(back.params.to_numpy(), on_dask.params.to_numpy())
    assert back.rank == on_dask.rank and back.llf == on_dask.llf
    assert np.allclose(back.predict(frame.head(20)), on_dask.predict(frame.head(20)),
                       equal_nan=True)


def test_missing_raise_is_an_error_on_the_workers(data):
    _, ddf = data
    with pytest.raises(ValueError, match="missing='drop'"):
        mt.OLS.from_formula(FORMULA, ddf)


def test_hashed_folds_follow_the_rows_not_their_order(data):
    frame, _ = data
    shuffled = frame.sample(frac=1.0, random_state=3)
    a = mt.NuclearNorm.from_formula(FORMULA, frame, missing="drop", folds="hash")
    b = mt.NuclearNorm.from_formula(FORMULA, shuffled, missing="drop", folds="hash")
    fa, fb = a.fold_stats(5), b.fold_stats(5)
    assert [f.n for f in fa] == [f.n for f in fb]
    assert all(np.allclose(x.Cxy, y.Cxy, rtol=1e-10) for x, y in zip(fa, fb))
    # the permutation rule (the in-memory default) depends on the order
    c = mt.NuclearNorm.from_formula(FORMULA, frame, missing="drop").fold_stats(5)
    d = mt.NuclearNorm.from_formula(FORMULA, shuffled, missing="drop").fold_stats(5)
    assert not np.allclose(c[0].Cxy, d[0].Cxy)


def test_core_package_does_not_import_dask():
    out = subprocess.run([sys.executable, "-c", "import sys, mtltransfer as mt; "
                          "mt.OLS; print('dask' in sys.modules)"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_import_error_names_the_extra(monkeypatch):
    fake = type("DataFrame", (), {"__module__": "dask.dataframe.dask_expr._collection"})()
    assert design.is_dask_frame(fake)
    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r'pip install "mtltransfer\[dask\]"'):
        mt.OLS.from_formula(FORMULA, fake)
